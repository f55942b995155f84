"""One socket driving one sans-IO :class:`o2sms.smpp.connection.Connection`.

The protocol object moves bytes between the transport and the state machine, turns responses
into results of the futures that :meth:`SmppProtocol.request` awaits, runs the state machine's
timers on the event loop, and hands inbound requests (deliver_sm) to the application's handler,
answering each only after the handler returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from o2sms.client.errors import (
    ClientClosedError,
    ConnectionLost,
    EventNotConfirmedError,
    ResponseTimeout,
    SubmitError,
)
from o2sms.smpp.connection import (
    Connection,
    ConnectionClosed,
    PduRejected,
    RequestExpired,
    RequestReceived,
    ResponseReceived,
    Unbound,
    UnexpectedResponse,
)
from o2sms.smpp.constants import CommandId, CommandStatus
from o2sms.smpp.errors import LocalProtocolError
from o2sms.smpp.pdu import Pdu, Unbind
from o2sms.smpp.state import SessionState

log = logging.getLogger("o2sms.client")

InboundHandler = Callable[[Pdu], Awaitable[int]]
"""Handles an inbound request (deliver_sm, data_sm) and returns the command_status to answer."""


class SmppProtocol(asyncio.Protocol):
    """asyncio protocol for one SMPP connection (ESME side)."""

    def __init__(
        self,
        connection: Connection,
        *,
        on_inbound: InboundHandler | None = None,
        inbound_concurrency: int = 8,
        name: str = "smpp",
    ) -> None:
        self.connection = connection
        self.name = name
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._futures: dict[int, asyncio.Future[Pdu]] = {}
        # Requests waiting for room in the window (or for the transport to drain), sent from
        # data_received as responses free slots: the waiting task is woken once, by its response.
        self._queued: deque[tuple[Pdu, asyncio.Future[Pdu]]] = deque()
        self._writing_paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._flush_scheduled = False
        self._on_inbound = on_inbound
        self._inbound: asyncio.Queue[Pdu] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._inbound_concurrency = inbound_concurrency
        self.closed: asyncio.Future[str] = self._loop.create_future()

    # --- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self._on_inbound is not None:
            self._workers = [
                self._loop.create_task(self._inbound_worker(), name=f"{self.name}-inbound-{i}")
                for i in range(self._inbound_concurrency)
            ]
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        self.connection.receive_data(data, self._loop.time())
        self._dispatch()
        self._flush()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "the SMSC closed the connection"
        self.connection.receive_data(b"", self._loop.time())
        self._dispatch(reason)
        self._shutdown(reason)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._send_queued()
        self._flush()

    # --- requests -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True until the connection is closed."""
        return not self.closed.done()

    async def request(self, pdu: Pdu) -> Pdu:
        """Send a request and return its response (which may carry an error status).

        Queues while the window is full. Raises ConnectionLost if the link dies first,
        ResponseTimeout if no response comes in time, SubmitError for a generic_nack.
        """
        if self.closed.done():
            raise ConnectionLost(f"{self.name}: {self.closed.result()}")
        future: asyncio.Future[Pdu] = self._loop.create_future()
        if self._queued or self._writing_paused or self.connection.window_free <= 0:
            self._queued.append((pdu, future))
        else:
            self._send_request(pdu, future)
            self._schedule_flush()
        response = await future
        if response.command_id == CommandId.GENERIC_NACK:
            raise SubmitError(response.command_status)
        return response

    def _send_request(self, pdu: Pdu, future: asyncio.Future[Pdu]) -> None:
        connection = self.connection
        now = self._loop.time()
        try:
            sent = connection.send(pdu, now)
        except LocalProtocolError as exc:
            future.set_exception(ClientClosedError(f"{self.name}: {exc}"))
            return
        self._futures[sent.sequence_number] = future
        timer = self._timer
        if timer is None or timer.when() > now + connection.response_timeout:
            self._arm_timer()

    def _send_queued(self) -> None:
        queued = self._queued
        connection = self.connection
        while queued and connection.window_free > 0 and not self._writing_paused:
            pdu, future = queued.popleft()
            if not future.done():  # skipped when the caller gave up (cancelled)
                self._send_request(pdu, future)

    async def unbind(self, timeout: float) -> None:
        """Send unbind and wait (at most ``timeout``) for unbind_resp, then close."""
        if self.connection.state.is_bound:
            try:
                async with asyncio.timeout(timeout):
                    await self.request(Unbind())
            except (TimeoutError, ConnectionLost, ResponseTimeout, ClientClosedError):
                pass
        self.close()

    def close(self) -> None:
        """Close the transport now; outstanding requests fail with ConnectionLost."""
        if self._transport is not None and not self._transport.is_closing():
            self._flush()
            self._transport.close()

    async def wait_closed(self) -> None:
        """Return once the connection is closed."""
        await asyncio.shield(self.closed)

    # --- internals ------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        data = self.connection.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _resolve(self, sequence_number: int, response: Pdu | None, error: Exception | None) -> None:
        future = self._futures.pop(sequence_number, None)
        if self._queued:
            self._send_queued()
            self._schedule_flush()
        if future is None or future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            assert response is not None
            future.set_result(response)

    def _dispatch(self, reason: str = "") -> None:
        connection = self.connection
        while (event := connection.next_event()) is not None:
            if type(event) is ResponseReceived:
                self._resolve(event.request.sequence_number, event.response, None)
            elif type(event) is RequestReceived:
                self._accept_inbound(event.pdu)
            elif type(event) is RequestExpired:
                seconds = connection.response_timeout
                self._resolve(
                    event.request.sequence_number,
                    None,
                    ResponseTimeout(
                        f"{self.name}: no response to {event.request.command_id.name.lower()} "
                        f"within {seconds:g} s"
                    ),
                )
                if event.request.command_id == CommandId.ENQUIRE_LINK:
                    log.warning("%s: no enquire_link_resp, the link is dead; closing", self.name)
                    self.close()
            elif type(event) is UnexpectedResponse:
                log.warning(
                    "%s: dropped %s with unknown sequence_number %d (late or unsolicited)",
                    self.name,
                    event.pdu.command_id.name.lower(),
                    event.pdu.sequence_number,
                )
            elif type(event) is PduRejected:
                log.warning("%s: rejected a PDU from the SMSC: %s", self.name, event.error)
                if event.request is not None:
                    self._resolve(
                        event.request.sequence_number,
                        None,
                        SubmitError(event.error.command_status),
                    )
            elif type(event) is Unbound:
                if event.by_peer:
                    log.info("%s: the SMSC unbound the session", self.name)
                    self._loop.call_soon(self.close)
            elif type(event) is ConnectionClosed:
                self._fail_all(event.reason or reason)
                self.close()

    def _accept_inbound(self, pdu: Pdu) -> None:
        if self._on_inbound is None or pdu.command_id not in (
            CommandId.DELIVER_SM,
            CommandId.DATA_SM,
        ):
            if pdu.response_class is not None:
                self._answer(pdu, CommandStatus.ESME_RINVCMDID)
            return
        self._inbound.put_nowait(pdu)

    async def _inbound_worker(self) -> None:
        assert self._on_inbound is not None
        while True:
            pdu = await self._inbound.get()
            try:
                status = await self._on_inbound(pdu)
            except asyncio.CancelledError:
                raise
            except EventNotConfirmedError:
                log.info("%s: event left unconfirmed; the SMSC will deliver it again", self.name)
                status = CommandStatus.ESME_RX_T_APPN
            except Exception:
                log.exception("%s: inbound handler failed; asking the SMSC to redeliver", self.name)
                status = CommandStatus.ESME_RX_T_APPN
            self._answer(pdu, status)

    def _answer(self, pdu: Pdu, status: int) -> None:
        if self.closed.done() or self.connection.state is SessionState.CLOSED:
            return  # unanswered: the SMSC redelivers it on another session
        try:
            self.connection.send(pdu.response(command_status=status), self._loop.time())
        except LocalProtocolError as exc:
            log.warning("%s: could not answer %s: %s", self.name, pdu.command_id.name, exc)
            return
        self._schedule_flush()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.closed.done():
            return
        deadline = self.connection.tick(self._loop.time())
        self._dispatch()
        self._flush()
        if deadline is not None and not self.closed.done():
            self._timer = self._loop.call_at(deadline, self._arm_timer)

    def _fail_all(self, reason: str) -> None:
        futures, self._futures = self._futures, {}
        for future in futures.values():
            if not future.done():
                future.set_exception(ConnectionLost(f"{self.name}: {reason}"))
        queued, self._queued = self._queued, deque()
        for _, future in queued:
            if not future.done():
                future.set_exception(ConnectionLost(f"{self.name}: {reason}"))

    def _shutdown(self, reason: str) -> None:
        self._fail_all(reason)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for worker in self._workers:
            worker.cancel()
        if not self.closed.done():
            self.closed.set_result(reason)
