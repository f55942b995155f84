"""One logical SMPP session: connect, bind, stay bound across reconnects and failover."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from enum import Enum
from typing import Final

from o2sms.client.backoff import delay, rotation
from o2sms.client.config import Endpoint, SessionConfig
from o2sms.client.connection import (
    InboundBatchHandler,
    InboundHandler,
    RefillGate,
    SmppProtocol,
)
from o2sms.client.errors import (
    SESSION_LIMIT_STATUSES,
    BindConfigError,
    BindError,
    ClientClosedError,
    ClientError,
    ConnectError,
    ConnectionLost,
    ResponseTimeout,
    SubmitError,
    UnreadableResponse,
    again,
)
from o2sms.client.transport import open_connection
from o2sms.smpp.connection import Connection
from o2sms.smpp.constants import CommandStatus
from o2sms.smpp.errors import PduEncodeError
from o2sms.smpp.pdu import BindReceiver, BindTransceiver, BindTransmitter, Pdu
from o2sms.smpp.state import BindType, Role

log = logging.getLogger("o2sms.client")

_BIND_PDU: Final = {
    BindType.TRANSMITTER: BindTransmitter,
    BindType.RECEIVER: BindReceiver,
    BindType.TRANSCEIVER: BindTransceiver,
}

CREDENTIAL_STATUSES: Final = frozenset(
    {CommandStatus.ESME_RINVPASWD, CommandStatus.ESME_RINVSYSID, CommandStatus.ESME_RINVSYSTYP}
)
"""Bind refusals that retrying cannot fix: once every endpoint gave one since the last bind,
the session stops and reports it (one host refusing may be one host's trouble)."""


STABLE_LINK_SECONDS: Final = 30.0
"""A link up at least this long resets the reconnect backoff."""


class SessionStatus(Enum):
    """What a session is doing now."""

    CONNECTING = "connecting"
    BOUND = "bound"
    BACKING_OFF = "backing_off"
    FAILED = "failed"  #: stopped for good (credentials refused); see Session.error
    CLOSED = "closed"


_BOUND: Final = SessionStatus.BOUND  # members off their class are slow on Python 3.11


class Session:
    """Keeps one bind of ``config.bind`` up, reconnecting with backoff through the endpoints."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        name: str = "session",
        on_inbound: InboundHandler | None = None,
        on_inbound_batch: InboundBatchHandler | None = None,
        on_status: Callable[[Session], None] | None = None,
        rng: random.Random | None = None,
        refill_gate: RefillGate | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.status = SessionStatus.CONNECTING
        self.error: ClientError | None = None  #: the last connect or bind failure
        #: attempts since the last successful bind, over the number of endpoints
        self.failed_rounds = 0
        self._on_inbound = on_inbound
        self._on_inbound_batch = on_inbound_batch
        self._on_status = on_status
        self._rng = rng or random.Random()
        self._protocol: SmppProtocol | None = None
        self._refill_gate = refill_gate
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def bind_type(self) -> BindType:
        """How this session binds."""
        return self.config.bind

    @property
    def is_bound(self) -> bool:
        """True while bound and usable: not once the SMSC unbound it, nor while closing."""
        protocol = self._protocol
        return (
            protocol is not None
            and protocol.is_open
            and self.status is _BOUND
            and protocol.connection.state.is_bound
            and not self._closing.is_set()
        )

    @property
    def protocol(self) -> SmppProtocol | None:
        """The bound connection, or None while not bound."""
        protocol = self._protocol
        return protocol if protocol is not None and self.is_bound else None

    @property
    def window_free(self) -> int:
        """Room for more requests on the current connection (0 when not bound)."""
        protocol = self._protocol
        return protocol.connection.window_free if protocol is not None and self.is_bound else 0

    def start(self) -> None:
        """Start connecting in the background."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def wait_bound(self) -> SmppProtocol:
        """The bound connection, once there is one; raises when the session failed or closed."""
        while True:
            protocol = self._protocol
            if protocol is not None and self.is_bound:
                return protocol
            if self.status is SessionStatus.FAILED:
                assert self.error is not None
                raise again(self.error)
            if self.status is SessionStatus.CLOSED:
                raise ClientClosedError(f"{self.name} is closed")
            self._changed.clear()
            await self._changed.wait()

    async def request(self, pdu: Pdu) -> Pdu:
        """Send a request on the bound connection and return its response."""
        protocol = await self.wait_bound()
        return await protocol.request(pdu)

    async def close(self) -> None:
        """Close gracefully and stop reconnecting.

        In order: take no new requests; fail those still queued for the window (never sent)
        with ClientClosedError; give running inbound handlers and outstanding requests
        ``close_timeout`` to finish; unbind (waiting at most ``unbind_timeout``); close. The
        unbind thus never waits behind queued submits, and a handler storing a receipt is not
        cancelled half-way.
        """
        self._closing.set()
        protocol = self._protocol
        try:
            if protocol is not None:
                protocol.fail_queued(
                    ClientClosedError(f"{self.name} closed before the request was sent")
                )
                await protocol.drain(self.config.close_timeout)
                await protocol.unbind(self.config.unbind_timeout)
                try:
                    async with asyncio.timeout(self.config.unbind_timeout):
                        await protocol.wait_closed()
                except TimeoutError:  # a TLS peer that never answers the goodbye
                    protocol.abort("the SMSC did not close the connection in time")
                    await protocol.wait_closed()
        finally:  # whatever went wrong above, the session ends and says so
            if protocol is not None:
                protocol.close()
            if self._task is not None:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            self._set_status(SessionStatus.CLOSED)

    def _set_status(self, status: SessionStatus) -> None:
        self.status = status
        self._changed.set()
        if self._on_status is not None:
            self._on_status(self)

    async def _run(self) -> None:
        endpoints = rotation(self.config.endpoints)
        attempt = 0
        failures = 0
        refused: set[Endpoint] = set()  # endpoints that refused the credentials since a bind
        while not self._closing.is_set():
            endpoint = next(endpoints)
            self._set_status(SessionStatus.CONNECTING)
            try:
                protocol = await self._connect_and_bind(endpoint)
            except BindConfigError as exc:
                self.error = exc
                log.error("%s: %s; not retrying", self.name, exc)
                self._set_status(SessionStatus.FAILED)
                return
            except BindError as exc:
                self.error = exc
                if exc.command_status in CREDENTIAL_STATUSES:
                    refused.add(endpoint)
                    if refused.issuperset(self.config.endpoints):
                        log.error("%s: %s; not retrying", self.name, exc)
                        self._set_status(SessionStatus.FAILED)
                        return
                backoff = (
                    self.config.session_limit_backoff
                    if exc.command_status in SESSION_LIMIT_STATUSES
                    else self.config.reconnect
                )
                log.warning("%s: %s (%s)", self.name, exc, endpoint.host)
            except ConnectError as exc:
                self.error = exc
                backoff = self.config.reconnect
                log.warning("%s: %s", self.name, exc)
            except Exception as exc:  # a bug: say so and retry, never end the session silently
                log.exception("%s: unexpected error connecting to %s", self.name, endpoint.host)
                self.error = ConnectError(f"unexpected error: {type(exc).__name__}: {exc}")
                backoff = self.config.reconnect
            else:
                failures = self.failed_rounds = 0
                self.error = None
                refused.clear()
                self._protocol = protocol
                self._set_status(SessionStatus.BOUND)
                log.info(
                    "%s: bound as %s to %s", self.name, self.bind_type.name.lower(), endpoint.host
                )
                bound_at = asyncio.get_running_loop().time()
                reason = await protocol.closed
                self._protocol = None
                # Only a link that stayed up resets the backoff: an SMSC that accepts binds
                # and drops them at once must not be hammered.
                if asyncio.get_running_loop().time() - bound_at >= STABLE_LINK_SECONDS:
                    attempt = 0
                if self._closing.is_set():
                    return
                log.warning("%s: %s; reconnecting", self.name, reason)
                backoff = self.config.reconnect
            if self.error is not None:
                failures += 1
                self.failed_rounds = failures // len(self.config.endpoints)
            self._set_status(SessionStatus.BACKING_OFF)
            wait = delay(attempt, backoff, self._rng)
            attempt += 1
            try:
                async with asyncio.timeout(wait):
                    await self._closing.wait()
            except TimeoutError:
                pass

    async def _connect_and_bind(self, endpoint: Endpoint) -> SmppProtocol:
        config = self.config
        loop = asyncio.get_running_loop()
        connection = Connection(
            Role.ESME,
            window=config.window,
            # the bind's own deadline (bind_timeout, below) only: response_timeout once bound
            response_timeout=max(config.response_timeout, config.bind_timeout),
            enquire_link_interval=config.enquire_link_interval,
            now=loop.time(),
        )
        _, protocol = await open_connection(
            endpoint,
            lambda: SmppProtocol(
                connection,
                on_inbound=self._on_inbound,
                on_inbound_batch=self._on_inbound_batch,
                inbound_concurrency=config.inbound_concurrency,
                name=self.name,
                refill_gate=self._refill_gate,
            ),
            tls=config.tls,
            timeout=config.connect_timeout,
        )
        bind = _BIND_PDU[config.bind](
            system_id=config.system_id,
            password=config.password,
            system_type=config.system_type,
            addr_ton=config.addr_ton,
            addr_npi=config.addr_npi,
            address_range=config.address_range,
        )
        try:
            async with asyncio.timeout(config.bind_timeout):
                response = await protocol.request(bind)
            connection.response_timeout = config.response_timeout  # for every later request
        except PduEncodeError as exc:
            protocol.close()
            raise BindConfigError(f"the bind cannot be sent: {exc}") from None
        except SubmitError as exc:  # a generic_nack: refused like a bind_resp with that status
            protocol.close()
            raise BindError(exc.command_status, infobip=config.infobip) from None
        except BaseException as exc:
            protocol.close()  # never leave a half-bound connection behind (close, cancel)
            if not isinstance(
                exc,
                TimeoutError
                | ResponseTimeout
                | ConnectionLost
                | ClientClosedError
                | UnreadableResponse,
            ):
                raise
            raise ConnectError(
                f"no bind response from {endpoint.host}:{endpoint.port}: {exc}"
            ) from None
        if response.command_status != 0:
            protocol.close()
            raise BindError(response.command_status, infobip=config.infobip)
        return protocol
