"""The high-level client: ``async with Client(...) as sms: await sms.send(to, text)``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Final

from o2sms import receipts
from o2sms.client import addresses
from o2sms.client.config import (
    FLASH_SYSTEM_TYPE,
    GATEWAY_MAX_PARTS,
    O2_PORT,
    O2_TLS_PORT,
    RECONNECT_BACKOFF,
    SESSION_LIMIT_BACKOFF,
    Backoff,
    Endpoint,
    SessionConfig,
    TlsSettings,
)
from o2sms.client.connection import InboundAnswer
from o2sms.client.errors import ClientClosedError, ClientError, EventNotConfirmedError, again
from o2sms.client.events import (
    DeliveryReport,
    Event,
    InboundSms,
    UnreadableDeliverSm,
)
from o2sms.client.pool import Pool, Submission
from o2sms.fastinit import fast_init
from o2sms.smpp.constants import CommandStatus, is_receipt
from o2sms.smpp.pdu import DataSm, DeliverSm, Pdu, SubmitSm, SubmitSmResp
from o2sms.smpp.state import BindType
from o2sms.smpp.times import MAX_RELATIVE_DAYS, SmppTimeError, relative_time
from o2sms.text import (
    MAX_PARTS,
    Encoding,
    MessageTooLongError,
    Reassembled,
    Reassembler,
    SplitMethod,
    TextError,
    concat_reference,
    encoding_for_data_coding,
    plan,
    split,
)
from o2sms.text.encoding import check_max_parts

log = logging.getLogger("o2sms.client")

ACCOUNT_SESSIONS: Final = 4
"""Sessions the O2 gateway allows an account by default."""
CORRELATION_CAPACITY: Final = 200_000
"""Submitted parts remembered for matching receipts (oldest forgotten first)."""
RETRY_TIMEOUT: Final = 60.0
"""Seconds ``send`` keeps retrying a part (throttled, queue full, waiting for a session)."""
MAX_PENDING_EVENTS: Final = 100
"""Events waiting for ``events()`` to take them; beyond it deliver_sm stay unanswered."""
MAX_RELATIVE_TIME: Final = timedelta(days=MAX_RELATIVE_DAYS + 1) - timedelta(seconds=1)
"""The longest interval an SMPP relative time can say: 99 days 23:59:59."""

EventHandler = Callable[[Event], Awaitable[None]]
BatchHandler = Callable[[Sequence[Event]], Awaitable[Sequence[BaseException | None]]]
"""Handles several events at once; per event None once it is done with, or the error that
makes the client answer its deliver_sm with a temporary error (the SMSC delivers it again)."""

_SECOND: Final = timedelta(seconds=1)
_ROK: Final = CommandStatus.ESME_ROK  # members off their class are slow on Python 3.11


@fast_init
@dataclass(frozen=True, slots=True)
class SendResult:
    """What ``send`` did: one SMSC message_id per part, in order."""

    message_ids: tuple[str, ...]
    encoding: Encoding
    parts: int
    to: str
    reference: str | None = None


class SendError(ClientError):
    """Some part of a message could not be submitted; ``message_ids`` has None for those parts.

    ``retriable`` and ``command_status`` (None when no SMSC status is involved) come from
    ``cause``: a part still throttled (ESME_RTHROTTLED, ESME_RMSGQFUL) when ``send``'s
    ``retry_timeout`` ran out is retriable and carries that status. ``concat_reference`` is the
    concatenation reference the parts of a long message carried (None for one part): with
    ``message_ids`` it makes the :class:`Resume` that sends only the missing parts later.
    """

    def __init__(
        self,
        cause: ClientError,
        message_ids: Sequence[str | None],
        concat_reference: int | None = None,
    ) -> None:
        sent = sum(1 for m in message_ids if m is not None)
        super().__init__(f"{cause} ({sent} of {len(message_ids)} parts submitted)")
        self.cause = cause
        self.message_ids = tuple(message_ids)
        self.concat_reference = concat_reference
        self.retriable = cause.retriable
        status = getattr(cause, "command_status", None)
        self.command_status: int | None = status if isinstance(status, int) else None


@dataclass(frozen=True, slots=True)
class Resume:
    """Where an interrupted long message stopped, so that ``send`` sends only its other parts.

    ``concat_reference`` is the reference its parts carried and ``message_ids`` the SMSC
    message_id of each part, None for those still to send (both from :class:`SendError`).
    Sent again under the same reference, the parts join those that went out on the phone,
    instead of making a second, overlapping message.
    """

    concat_reference: int
    message_ids: tuple[str | None, ...]


@dataclass(slots=True, eq=False)  # hashed by identity: one entry per part; never changed
class _Sent:
    submitted_id: str
    reference: str | None
    to: str
    part: int
    parts: int
    keys: frozenset[str]  #: receipts.message_id_keys(submitted_id)


def _bind_types(bind: str | Sequence[str], sessions: int | None) -> list[BindType]:
    """One bind type per session; ValueError for an unknown mode or no session at all."""
    if sessions is not None and sessions < 1:
        # 0 is not "not given": four sessions would bind where the caller asked for none.
        raise ValueError(f"sessions must be at least 1, got {sessions}")
    if isinstance(bind, str):
        names = [bind] * (sessions or ACCOUNT_SESSIONS)
    else:
        names = list(bind)
        if sessions is not None and sessions != len(names):
            raise ValueError("give one bind mode and a session count, or one mode per session")
        if not names:
            raise ValueError("bind lists no session: give at least one bind mode")
    try:
        return [BindType[name.strip().upper()] for name in names]
    except KeyError as exc:
        raise ValueError(
            f"unknown bind mode {exc.args[0]!r}: use transmitter, receiver or transceiver"
        ) from None


def session_kinds(
    bind: str | Sequence[str], sessions: int | None = None, *, flash_session: bool = False
) -> list[BindType]:
    """The bind type of each ordinary session a Client with these options binds (the NSMS
    flash session, a transmitter, comes on top); ValueError says what is wrong with them.

    Public so a configuration can be checked before anything connects (``o2sms config check``).
    """
    kinds = _bind_types(bind, sessions)
    if flash_session:
        _make_room_for_flash(kinds)
    return kinds


def _make_room_for_flash(kinds: list[BindType]) -> None:
    """Remove one session from ``kinds`` so the NSMS flash session fits the session count.

    The flash session counts towards the account's limit (4 on the O2 gateway), so the pool
    never binds more sessions than configured: it replaces the last session that can send
    when another one can send too (a transmitter before a transceiver), else the last
    receiver-only session. It never removes the only session that receives (the flash session
    is a transmitter): receipts would stop. With no session it may remove, ValueError says so
    rather than bind a session the gateway would refuse.
    """
    receiving = sum(kind.can_receive for kind in kinds)
    senders = [i for i, kind in enumerate(kinds) if kind.can_submit]
    candidates = [i for i, kind in enumerate(kinds) if not kind.can_submit]
    if len(senders) > 1:
        # tried first, latest first, transmitters before transceivers (which also receive)
        candidates = sorted(senders, key=lambda i: (kinds[i].can_receive, -i)) + candidates[::-1]
    else:
        candidates.reverse()
    for i in candidates:
        if receiving > 1 or not kinds[i].can_receive:
            del kinds[i]
            return
    if candidates:
        raise ValueError(
            "the flash session needs a session of its own within the "
            f"{len(kinds)} configured, and taking it from them would leave no session that "
            "receives (the NSMS session is a transmitter): give one more session, or a "
            "transceiver"
        )
    raise ValueError(
        f"the flash session needs a session of its own within the {len(kinds)} "
        "configured: the NSMS session counts towards the account's limit; give 2 sessions "
        "or more (or a bind list with a session to spare)"
    )


def _smpp_time(value: timedelta | datetime | None, what: str) -> str:
    """``value`` as an SMPP relative time: the only format the O2 gateway documents.

    More than 99 days 23:59:59 ahead cannot be written as one (DD has two digits); rather than
    switch to an absolute time the gateway does not document, that raises SmppTimeError (a
    ValueError) before anything is sent.
    """
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{what} must be timezone-aware (e.g. datetime.now(UTC) + ...)")
        # in UTC: two datetimes sharing a tzinfo subtract as wall clocks, an hour off
        # across a DST change
        at = value
        try:
            value = at.astimezone(UTC) - datetime.now(UTC)
        except OverflowError:  # within a day of year 1 or of year 9999: outside UTC's range
            value = timedelta.min if at.year == 1 else timedelta.max
    elif not isinstance(value, timedelta):
        raise ValueError(
            f"{what} must be a timedelta or a timezone-aware datetime, "
            f"not {type(value).__name__} {value!r:.40}"
        )
    if value <= timedelta(0):
        raise ValueError(f"{what} is in the past")
    if value < _SECOND and what == "validity":  # it would go out as 0: expired at once
        raise ValueError("validity is under a second; SMPP relative times count whole seconds")
    if value > MAX_RELATIVE_TIME:
        raise SmppTimeError(
            f"{what} is {value.days} days ahead; SMPP relative times, the only kind the gateway "
            f"takes, reach {MAX_RELATIVE_DAYS} days 23:59:59"
        )
    return relative_time(value)


def _retry_timeout(value: float) -> float:
    """``value`` when it is a time to retry for (0 or more seconds, ``math.inf``), else ValueError.

    NaN compares false with every deadline check: a throttled part would be retried for ever.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(
            f"retry_timeout must be 0 or more seconds (math.inf: for ever), not {value!r}"
        )
    return value


class Client:
    """An SMPP client for one account: a pool of sessions and the send/events API.

    The gateway only documents the relative time format, so ``schedule`` and ``validity`` are
    sent as relative times whether given as a timedelta or an aware datetime (at most 99 days
    23:59:59 ahead; more raises ValueError).

    ``addr_ton``, ``addr_npi`` and ``address_range`` go into every session's bind (some
    accounts route inbound SMS by them). ``reconnect`` is the backoff between reconnect
    attempts and ``session_limit_backoff`` the (longer) one after a bind refused because the
    account has all its sessions; None keeps SessionConfig's defaults.

    With ``flash_session`` the NSMS session takes the place of one configured session (the
    last that can send, else the last receiver-only one), so the pool never binds more than
    ``sessions`` (or ``len(bind)``); with a single session there is no room and ValueError is
    raised.

    ``max_parts`` (the O2 gateway's 25 by default, up to 255) bounds the parts of a text: a
    longer one raises MessageTooLongError before any part goes.

    ``retry_timeout`` bounds how long ``send`` retries a part (throttled, SMSC queue full,
    waiting for a bound session); ``close_timeout`` how long ``close`` lets running handlers and
    outstanding requests finish; ``max_pending_events`` how many events wait for ``events()``
    before deliver_sm are left unanswered (the SMSC's window then stops it).

    ``batch_handler`` (with ``handler``) takes the events of the deliver_sm one read brought in
    one call, so that an application storing them pays one wake-up and one transaction for
    all of them: those that are ready at once (receipts whose message is known or cannot be
    waited for, unreadable receipts) go to it together, the others to ``handler`` one by one.
    At most ``inbound_concurrency`` deliver_sm per session are being handled at once, either way.
    """

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        system_id: str = "",
        password: str = "",
        *,
        hosts: Sequence[str | tuple[str, int]] | None = None,
        secondary_host: str | None = None,
        tls: bool = False,
        tls_ca_file: str | None = None,
        tls_insecure_skip_verify: bool = False,
        bind: str | Sequence[str] = "transceiver",
        sessions: int | None = None,
        flash_session: bool = False,
        window: int = 10,
        system_type: str = "",
        keepalive: float = 25.0,
        response_timeout: float = 15.0,
        connect_timeout: float = 10.0,
        bind_timeout: float = 10.0,
        rate_limit: float | None = None,
        sender: str | None = None,
        region: str = "SK",
        short_code_ton: int = 3,
        short_code_npi: int = 0,
        split_method: SplitMethod | str = SplitMethod.UDH8,
        max_parts: int = GATEWAY_MAX_PARTS,
        handler: EventHandler | None = None,
        batch_handler: BatchHandler | None = None,
        inbound_concurrency: int = 8,
        retry_timeout: float = RETRY_TIMEOUT,
        close_timeout: float = 5.0,
        max_pending_events: int = MAX_PENDING_EVENTS,
        addr_ton: int = 0,
        addr_npi: int = 0,
        address_range: str = "",
        reconnect: Backoff | None = None,
        session_limit_backoff: Backoff | None = None,
    ) -> None:
        default_port = port if port is not None else (O2_TLS_PORT if tls else O2_PORT)
        names: list[str | tuple[str, int]] = list(hosts or [])
        if host:
            names.insert(0, host)
        if secondary_host:
            names.append(secondary_host)
        if not names:
            raise ValueError("give host= (and secondary_host=) or hosts=")
        endpoints = tuple(
            Endpoint(n, default_port, tls) if isinstance(n, str) else Endpoint(n[0], n[1], tls)
            for n in names
        )
        tls_settings = TlsSettings(
            ca_file=tls_ca_file, insecure_skip_verify=tls_insecure_skip_verify
        )
        if system_type.upper() == FLASH_SYSTEM_TYPE:
            # the gateway makes every message of an NSMS bind a flash notification
            raise ValueError(
                f"system_type {system_type!r} is the flash system_type: every message of "
                "every session would be flash; use flash_session=True for flash messages"
            )
        kinds = session_kinds(bind, sessions, flash_session=flash_session)
        reconnect_backoff = reconnect if reconnect is not None else RECONNECT_BACKOFF
        limit_backoff = (
            session_limit_backoff if session_limit_backoff is not None else SESSION_LIMIT_BACKOFF
        )

        def config(kind: BindType, system_type_: str) -> SessionConfig:
            return SessionConfig(
                endpoints=endpoints,
                system_id=system_id,
                password=password,
                system_type=system_type_,
                bind=kind,
                addr_ton=addr_ton,
                addr_npi=addr_npi,
                address_range=address_range,
                reconnect=reconnect_backoff,
                session_limit_backoff=limit_backoff,
                window=window,
                response_timeout=response_timeout,
                connect_timeout=connect_timeout,
                bind_timeout=bind_timeout,
                enquire_link_interval=keepalive,
                tls=tls_settings,
                inbound_concurrency=inbound_concurrency,
                close_timeout=close_timeout,
            )

        if batch_handler is not None and handler is None:
            raise ValueError("batch_handler needs handler too: it takes the events a batch cannot")
        configs = [config(kind, system_type) for kind in kinds]
        if flash_session:
            configs.append(config(BindType.TRANSMITTER, FLASH_SYSTEM_TYPE))
        self._new_pool = functools.partial(
            Pool,
            configs,
            on_inbound=self._on_inbound,
            on_inbound_batch=self._on_inbound_batch if batch_handler is not None else None,
            rate_limit=rate_limit,
        )
        self._pool = self._new_pool()
        # a bind_timeout longer than response_timeout is waited out, not cut short by start()
        self._connect_timeout = connect_timeout + max(response_timeout, bind_timeout)
        self._sender = sender
        self._sender_address: addresses.Address | None = None  # _source(None), once valid
        self._region = addresses.known_region(region)
        for name, octet in (("short_code_ton", short_code_ton), ("short_code_npi", short_code_npi)):
            if isinstance(octet, bool) or not isinstance(octet, int) or not 0 <= octet <= 0xFF:
                raise ValueError(f"{name} must be 0..255 (an SMPP octet), not {octet!r}")
        self._short_code = (short_code_ton, short_code_npi)
        self._split_method = split_method
        check_max_parts(max_parts)
        self._max_parts = max_parts
        self._handler = handler
        self._batch_handler = batch_handler
        if max_pending_events < 1:
            raise ValueError("max_pending_events must be at least 1")
        # Bounded: when nobody reads events(), workers wait to put theirs and the deliver_sm
        # stay unanswered, so the SMSC's window stops it (backpressure instead of memory).
        # None, put there by close(), ends the events() loops.
        self._events: asyncio.Queue[tuple[Event, asyncio.Future[None]] | None] = asyncio.Queue(
            max_pending_events
        )
        self._unconfirmed: set[asyncio.Future[None]] = set()  # events() events not yet answered
        self._retry_timeout = _retry_timeout(retry_timeout)
        self._closed = False
        self._sent: dict[str, _Sent] = {}  # every reading of a submitted id -> its part
        self._parts: OrderedDict[_Sent, None] = OrderedDict()  # parts remembered, oldest first
        self._correlation_capacity = CORRELATION_CAPACITY
        # send() calls waiting for their submit_sm_resp, by serial (insertion order = age), with
        # what the pool counts of their parts out
        self._sending: dict[int, Submission] = {}
        self._send_serial = 0
        self._recorded = asyncio.Event()  # set when a submit finished: correlation may now match
        self._correlation_waiters = 0
        self._response_timeout = response_timeout
        self._reassembler = Reassembler()
        self._can_receive = any(kind.can_receive for kind in kinds)
        self._flash_session = flash_session

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def sessions(self) -> list[object]:
        """The pool's sessions (for status and metrics)."""
        return list(self._pool.sessions)

    def can_send(self, flash: bool = False) -> bool:
        """True when a configured session can send (``flash``: flash messages), bound or not:
        False for a client of receivers only."""
        return self._pool.can_send(flash)

    async def start(self) -> None:
        """Connect and bind; return once a session can send, or raise why none can.

        A client none of whose sessions can send (receivers only, perhaps with the NSMS flash
        session) is started once any session is bound.

        After a failed start the client may be started again (a gateway down while a service
        starts is retried, not fatal); after :meth:`close` it may not.
        """
        if self._closed:
            raise ClientClosedError("the client is closed")
        self._pool.start()
        try:
            async with asyncio.timeout(self._connect_timeout):
                await self._pool.wait_ready()
        except TimeoutError:
            errors = [s.error for s in self._pool.sessions if s.error is not None]
            await self._fresh_pool()
            if errors:
                raise again(errors[0]) from None
            raise ClientError("no session bound within the connect timeout") from None
        except BaseException:
            await self._fresh_pool()
            raise

    async def _fresh_pool(self) -> None:
        """Close the pool of a failed start and put an unstarted one in its place."""
        try:
            await self._pool.close()
        finally:
            self._pool = self._new_pool()

    async def close(self) -> None:
        """Close gracefully: no new sends, in-flight work finishes (bounded), then unbind.

        ``send`` calls from now on, and parts still queued for a session's window or waiting
        for the rate limit or a throttling pause (never sent), fail with ClientClosedError;
        handlers already running get ``close_timeout`` to finish and their deliver_sm is
        answered; events handed to ``events()`` and not yet confirmed are not acknowledged
        (the SMSC delivers them again), and ``events()`` loops end; then every session unbinds.
        """
        self._closed = True
        for done in list(self._unconfirmed):
            if not done.done():
                done.set_exception(
                    EventNotConfirmedError("the client closed before it was confirmed")
                )
        with contextlib.suppress(asyncio.QueueFull):  # full: no events() loop waits in get()
            self._events.put_nowait(None)
        await self._pool.close()

    def withdraw_unsent(self) -> None:
        """Fail the sends that have nothing out, now and from now on, for a graceful stop.

        A send none of whose parts has gone out (waiting for the rate limit, a throttling pause
        or a session) raises SendError with ClientClosedError; one with a part out goes on, so
        the rest of a long message still follows. :meth:`close` afterwards finishes the stop.
        """
        self._pool.withdraw_unsent()

    # --- sending ----------------------------------------------------------------------

    async def send(
        self,
        to: str,
        text: str,
        *,
        sender: str | None = None,
        flash: bool = False,
        schedule: timedelta | datetime | None = None,
        validity: timedelta | datetime | None = None,
        report: bool = True,
        encoding: Encoding | str | None = None,
        transliterate: bool = False,
        reference: str | None = None,
        retry_timeout: float | None = None,
        resume: Resume | None = None,
    ) -> SendResult:
        """Send one SMS (split into parts when long) and return the SMSC's message_ids.

        Bad input (number, sender, text, times) raises before anything is sent. A flash message
        that needs more than one part is refused: the gateway does not support long flash;
        ``flash=True`` on a client created without ``flash_session=True`` raises ClientError at
        once (only the NSMS session delivers flash).

        A part that is throttled, finds the SMSC's queue full or waits for a bound session is
        retried for ``retry_timeout`` seconds (None: the client's ``retry_timeout``, 60 s by
        default; ``math.inf``: for ever); then ``SendError`` with ``retriable=True`` (and the
        last ``command_status`` when the SMSC gave one) is raised.

        ``resume`` (from the SendError of an earlier try of the same text) sends only the parts
        that did not go out, under the earlier concatenation reference; the result has every
        part's message_id. It must come from a client with the same split method. When the text
        no longer splits into that many parts, or the reference does not fit the split method,
        every part is sent, under a new reference.
        """
        destination = addresses.destination(to, self._region)
        source = self._source(sender) if sender is not None else self._default_source()
        if not isinstance(text, str):
            raise TextError(f"the text must be a string, not {type(text).__name__} {text!r:.40}")
        if reference is not None and not isinstance(reference, str):
            # it comes back in every DeliveryReport, far from here
            raise ValueError(f"reference must be a string, not {type(reference).__name__}")
        if resume is not None and not isinstance(resume, Resume):
            raise ValueError(f"resume must be a Resume (from a SendError), not {resume!r:.40}")
        if "\x00" in text:  # not GSM: it went out as UCS-2 0x0000, which no handset shows
            raise TextError("the text contains a NUL character (U+0000)")
        try:
            parts = split(
                text,
                encoding=encoding,
                method=self._split_method,
                transliterate=transliterate,
                reference=resume.concat_reference if resume is not None else None,
                max_parts=self._max_parts,
            )
        except TextError:
            if resume is None:
                raise
            parts = []  # a reference this split method cannot carry: sent anew below
        if resume is not None and (not parts or len(resume.message_ids) != len(parts)):
            resume = None  # the earlier parts cannot be completed: a whole new message
            parts = split(
                text,
                encoding=encoding,
                method=self._split_method,
                transliterate=transliterate,
                max_parts=self._max_parts,
            )
        if not parts[0].short_message and not parts[0].tlvs:  # nobody wants an empty SMS
            raise TextError(
                "the text is empty once transliterated (it has only characters "
                "transliteration drops)"
                if text
                else "the text is empty: give the message text"
            )
        # a text in message_payload (tlvs) is long too: one part fits short_message
        if flash and (len(parts) > 1 or parts[0].tlvs):
            needs = plan(
                text, encoding=encoding, transliterate=transliterate, max_parts=MAX_PARTS
            ).parts
            raise MessageTooLongError(
                f"a flash message must fit one SMS; this one needs {needs} parts",
                parts=needs,
                max_parts=1,
            )
        if flash and not self._flash_session:
            # Without this, the pool would wait for an NSMS session that never comes and
            # report some unrelated session's error.
            raise ClientError("no flash session: create the Client with flash_session=True")
        schedule_delivery_time = _smpp_time(schedule, "schedule") if schedule else ""
        # ``is not None``: a zero validity is refused as not ahead, not dropped as falsy.
        validity_period = _smpp_time(validity, "validity") if validity is not None else ""
        pdus = [
            SubmitSm(
                source_addr_ton=source.ton,
                source_addr_npi=source.npi,
                source_addr=source.addr,
                dest_addr_ton=destination.ton,
                dest_addr_npi=destination.npi,
                destination_addr=destination.addr,
                esm_class=part.esm_class,
                schedule_delivery_time=schedule_delivery_time,
                validity_period=validity_period,
                registered_delivery=1 if report else 0,
                data_coding=part.data_coding,
                short_message=part.short_message,
                tlvs=part.tlvs,
            )
            for part in parts
        ]
        encoding_used = encoding_for_data_coding(parts[0].data_coding)
        if self._closed:
            error = ClientClosedError("the client is closed")
            raise SendError(error, [None] * len(pdus)) from error
        patience = self._retry_timeout if retry_timeout is None else _retry_timeout(retry_timeout)
        deadline = None if math.isinf(patience) else asyncio.get_running_loop().time() + patience
        serial = self._send_serial
        self._send_serial = serial + 1
        sending = self._sending
        # One for all parts: a stop cuts no message in two.
        sending[serial] = submission = Submission()
        try:
            if len(pdus) == 1:  # the common case, kept short
                if resume is not None and (earlier := resume.message_ids[0]) is not None:
                    return SendResult((earlier,), encoding_used, 1, destination.addr, reference)
                try:
                    response = await self._pool.submit(
                        pdus[0], flash=flash, deadline=deadline, submission=submission
                    )
                except ClientError as exc:
                    raise SendError(exc, [None]) from exc
                assert isinstance(response, SubmitSmResp)
                submitted = response.message_id
                if report:
                    self._remember(submitted, reference, destination.addr, 1, 1)
                return SendResult((submitted,), encoding_used, 1, destination.addr, reference)
            # The parts that went out before need not be followed at once: their ids and the
            # reference are kept by the caller, so a stop may withdraw the rest like any send.
            done = resume.message_ids if resume is not None else (None,) * len(pdus)
            outcomes = await asyncio.gather(
                *(
                    self._pool.submit(pdu, flash=flash, deadline=deadline, submission=submission)
                    for pdu, sent in zip(pdus, done, strict=True)
                    if sent is None
                ),
                return_exceptions=True,
            )
        finally:
            del sending[serial]
            if self._correlation_waiters:
                self._recorded.set()
        answers = iter(outcomes)
        fresh: list[str | None] = []  # this call's message_id per part (None: sent before)
        message_ids: list[str | None] = []
        for sent in done:
            if sent is None:
                outcome = next(answers)
                new = outcome.message_id if isinstance(outcome, SubmitSmResp) else None
                fresh.append(new)
                message_ids.append(new)
            else:
                fresh.append(None)
                message_ids.append(sent)
        if report:
            for number, message_id in enumerate(fresh, start=1):
                if message_id is not None:
                    self._remember(message_id, reference, destination.addr, number, len(parts))
            if self._correlation_waiters:
                self._recorded.set()
        for outcome in outcomes:
            if isinstance(outcome, ClientError):
                raise SendError(outcome, message_ids, concat_reference(parts[0])) from outcome
            if isinstance(outcome, BaseException):
                raise outcome
        return SendResult(
            tuple(m for m in message_ids if m is not None),
            encoding_used,
            len(parts),
            destination.addr,
            reference,
        )

    def _default_source(self) -> addresses.Address:
        """``_source(None)``, kept once it is known to be valid (the same every call)."""
        source = self._sender_address
        if source is None:
            source = self._sender_address = self._source(None)
        return source

    def _source(self, sender: str | None) -> addresses.Address:
        value = sender if sender is not None else self._sender
        if value is None:
            return addresses.Address(0, 0, "")  # the account's default sender at the SMSC
        if not isinstance(value, str):  # before sender()'s cache, which needs it hashable
            raise addresses.not_a_string("the sender", value, "'O2 Shop'")
        return addresses.sender(
            value,
            region=self._region,
            short_code_ton=self._short_code[0],
            short_code_npi=self._short_code[1],
        )

    def _remember(
        self, submitted_id: str, reference: str | None, to: str, part: int, parts: int
    ) -> None:
        keys = receipts.message_id_keys(submitted_id)
        sent = _Sent(submitted_id, reference, to, part, parts, keys)
        store = self._sent
        for key in keys:
            store[key] = sent
        remembered = self._parts
        remembered[sent] = None
        # The capacity counts parts, not keys (an id has several readings, hex and decimal).
        while len(remembered) > self._correlation_capacity:
            self._forget(remembered.popitem(last=False)[0])
        if self._correlation_waiters:
            self._recorded.set()

    def _forget(self, sent: _Sent) -> None:
        """Drop every reading of one part's id that still points at it."""
        store = self._sent
        for key in sent.keys:
            if store.get(key) is sent:
                del store[key]

    def _older_sends_pending(self, horizon: int) -> bool:
        """True while a send() that started before serial ``horizon`` has a part out (handed to a
        session, not refused) and still awaits a response.

        Only such a part can be the message of a receipt that came at ``horizon``: a send still
        waiting for the rate limit, a throttling pause or a bound session has no submit_sm out.
        """
        for serial, submission in self._sending.items():  # oldest first
            if serial >= horizon:
                return False
            if submission.out:
                return True
        return False

    async def _correlate_soon(self, receipt: receipts.DeliveryReceipt) -> _Sent | None:
        """Correlate a receipt, waiting for the submits outstanding when it arrived: on another
        session, a receipt can overtake the submit_sm_resp of its own message.

        Sends started after the receipt arrived cannot be its message, so a steady stream of
        new submits does not hold the receipt (nor the worker handling it) up; the wait is also
        capped at the response timeout.
        """
        sent = self._correlate(receipt)
        horizon = self._send_serial
        if sent is not None or not self._older_sends_pending(horizon):
            return sent
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._response_timeout
        self._correlation_waiters += 1
        try:
            while sent is None and self._older_sends_pending(horizon) and loop.time() < deadline:
                self._recorded.clear()
                try:
                    async with asyncio.timeout(deadline - loop.time()):
                        await self._recorded.wait()
                except TimeoutError:
                    break
                sent = self._correlate(receipt)
        finally:
            self._correlation_waiters -= 1
        return sent

    def _correlate(self, receipt: receipts.DeliveryReceipt) -> _Sent | None:
        """The submitted part a receipt reports: by its exact id first (short ids can collide
        across hex and decimal readings), then by every reading of it."""
        store = self._sent
        sent = store.get(receipt.id.strip().lower())
        if sent is None:
            for key in receipts.message_id_keys(receipt.id):
                sent = store.get(key)
                if sent is not None:
                    break
        return sent

    def _handled(self, event: Event) -> None:
        """The application is done with ``event``: the part of a final receipt is forgotten.

        Not before: a receipt whose handling failed is delivered again by the SMSC, and must
        then be matched to its send again.
        """
        if type(event) is not DeliveryReport or not event.receipt.is_final:
            return
        sent = self._correlate(event.receipt)
        if sent is not None and sent.submitted_id == event.submitted_id:
            self._forget(sent)
            self._parts.pop(sent, None)

    # --- receiving --------------------------------------------------------------------

    async def _on_inbound(self, session: str, pdu: Pdu) -> int:
        """Turn a deliver_sm into an event and answer only after the application handled it."""
        if not isinstance(pdu, DeliverSm | DataSm):
            return CommandStatus.ESME_RINVCMDID
        event: Event | None
        if isinstance(pdu, DeliverSm) and is_receipt(pdu.esm_class):
            ready = self._receipt_event(pdu, session)
            if isinstance(ready, receipts.DeliveryReceipt):
                return await self._late_receipt(ready, session)
            event = ready
        elif isinstance(pdu, DeliverSm):
            try:
                message = self._reassembler.feed(pdu, asyncio.get_running_loop().time())
            except TextError as exc:
                event = UnreadableDeliverSm(pdu, str(exc), session)
            else:
                if message is None:
                    return _ROK  # a part; the message comes with the last one
                event = InboundSms(
                    message.text,
                    message.source_addr,
                    message.destination_addr,
                    message.data_coding,
                    message.total,
                    session,
                )
                if message.total > 1:
                    try:
                        await self._deliver(event)
                    except BaseException:
                        self._keep_for_redelivery(message, pdu)
                        raise
                    return _ROK
        else:
            event = UnreadableDeliverSm(pdu, "data_sm is not handled by this client", session)
        await self._deliver(event)
        self._handled(event)
        return _ROK

    async def _on_inbound_batch(
        self, session: str, pdus: Sequence[Pdu], answer: InboundAnswer
    ) -> None:
        """The deliver_sm of one read: the events ready at once go to the batch handler in one
        call, the others to :meth:`_on_inbound` each, all at the same time; each deliver_sm is
        answered once its own handling is done: those of the batch handler's events when that
        call returns, each of the others as soon as it is handled."""
        batch_handler = self._batch_handler
        assert batch_handler is not None
        events: list[Event] = []
        taken: list[Pdu] = []  # the deliver_sm of each of ``events``
        alone: list[Pdu] = []
        for pdu in pdus:
            if type(pdu) is DeliverSm and is_receipt(pdu.esm_class):
                ready = self._receipt_event(pdu, session)
                if not isinstance(ready, receipts.DeliveryReceipt):
                    events.append(ready)
                    taken.append(pdu)
                    continue
            alone.append(pdu)
        others = (
            asyncio.gather(*(self._answer_alone(session, pdu, answer) for pdu in alone))
            if alone
            else None
        )
        try:
            if events:
                failures: Sequence[BaseException | None]
                try:
                    failures = await batch_handler(events)
                    if len(failures) != len(events):
                        raise RuntimeError(
                            f"the batch handler gave {len(failures)} outcomes "
                            f"for {len(events)} events"
                        )
                except Exception as exc:
                    failures = [exc] * len(events)
                for pdu, event, failure in zip(taken, events, failures, strict=True):
                    if failure is None:
                        self._handled(event)
                    answer(pdu, _ROK if failure is None else failure)
            if others is not None:
                await others
        except BaseException:
            if others is not None:
                others.cancel()
            raise

    async def _answer_alone(self, session: str, pdu: Pdu, answer: InboundAnswer) -> None:
        """Handle one deliver_sm of a batch as :meth:`_on_inbound` does; answer it when done."""
        outcome: int | BaseException
        try:
            outcome = await self._on_inbound(session, pdu)
        except Exception as exc:
            outcome = exc
        answer(pdu, outcome)

    def _receipt_event(
        self, pdu: DeliverSm, session: str
    ) -> DeliveryReport | UnreadableDeliverSm | receipts.DeliveryReceipt:
        """The event of a receipt deliver_sm, or the parsed receipt itself when the submit of
        its message may still be answered (see :meth:`_late_receipt`)."""
        try:
            receipt = receipts.from_deliver_sm(pdu)
        except receipts.ReceiptParseError as exc:
            return UnreadableDeliverSm(pdu, str(exc), session)
        sent = self._correlate(receipt)
        if sent is None and self._sending:
            return receipt
        return self._report(receipt, sent, session)

    async def _late_receipt(self, receipt: receipts.DeliveryReceipt, session: str) -> int:
        """Deliver the report of a receipt once the submits it may belong to were answered."""
        report = self._report(receipt, await self._correlate_soon(receipt), session)
        await self._deliver(report)
        self._handled(report)
        return _ROK

    @staticmethod
    def _report(
        receipt: receipts.DeliveryReceipt, sent: _Sent | None, session: str
    ) -> DeliveryReport:
        """The event of ``receipt``, with what ``send`` knew of its part when it correlates."""
        if sent is None:
            return DeliveryReport(receipt, None, None, None, None, None, session)
        return DeliveryReport(
            receipt, sent.submitted_id, sent.reference, sent.to, sent.part, sent.parts, session
        )

    def _keep_for_redelivery(self, message: Reassembled, last: object) -> None:
        """Put back the parts of a message the application did not take, all but ``last``.

        The other parts were acknowledged when they arrived, so the SMSC redelivers only
        ``last`` (answered with a temporary error); with the others back in the reassembler,
        that redelivered part completes the message again and it is offered anew. They are
        kept as any incomplete message is: for the reassembler's timeout, within its bounds.
        """
        now = asyncio.get_running_loop().time()
        for part in message.parts:
            if part is not last:
                try:
                    self._reassembler.feed(part, now)
                except TextError:  # cannot happen: it was read once already
                    log.warning("could not keep a part of an inbound message for redelivery")

    async def _deliver(self, event: Event) -> None:
        """Hand ``event`` to the handler, or to ``events()`` and wait until it is confirmed."""
        if self._handler is not None:
            await self._handler(event)
            return
        if self._closed:
            raise EventNotConfirmedError("the client is closing")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        unconfirmed = self._unconfirmed
        unconfirmed.add(done)
        done.add_done_callback(unconfirmed.discard)
        try:
            try:
                self._events.put_nowait((event, done))
            except asyncio.QueueFull:
                # Backpressure: wait for room (the deliver_sm stays unanswered meanwhile), or
                # for close(), which fails ``done``.
                put = asyncio.ensure_future(self._events.put((event, done)))
                try:
                    await asyncio.wait((put, done), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    put.cancel()
            await done
        except BaseException:
            if not done.done():
                done.cancel()  # left in the queue, events() skips it
            raise

    async def events(self) -> AsyncIterator[Event]:
        """Delivery reports and inbound SMS from every session, merged.

        Each is acknowledged to the SMSC when the loop asks for the next one, so an event is
        never acknowledged before the code handling it has finished. The loop ends once the
        client is closed: no event can come any more. A client with no session that receives
        (transmitters only) raises ClientError at once rather than wait for ever.
        """
        if not self._can_receive:
            raise ClientError(
                "no session receives: events() needs a receiver or transceiver in bind "
                "(transmitters get no receipts or inbound SMS)"
            )
        pending: asyncio.Future[None] | None = None
        events = self._events
        try:
            while True:
                # Asked for the next event: the one handed out before is done with.
                if pending is not None and not pending.done():
                    pending.set_result(None)
                pending = None
                if self._closed and events.empty():
                    return
                item = await events.get()
                if item is None:  # put by close()
                    with contextlib.suppress(asyncio.QueueFull):
                        events.put_nowait(item)  # for the other events() loops
                    return
                event, pending = item
                if pending.done():
                    pending = None
                    continue  # its worker gave up (connection lost, closing): stale
                yield event
        finally:
            # Left with an event in hand (break or error): not acknowledged, so the SMSC
            # redelivers it rather than risk losing it.
            if pending is not None and not pending.done():
                pending.set_exception(EventNotConfirmedError("left the events() loop holding it"))
