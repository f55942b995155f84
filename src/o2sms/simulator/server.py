"""The simulated O2 SMSC: listeners, accounts, submit_sm handling, receipts and inbound SMS.

``async with Simulator(config) as smsc:`` listens (port 0: any free port, read ``smsc.port``),
and on exit unbinds every session and closes. Decisions that need accounts live here; each
socket is a :class:`~o2sms.simulator.session.SmppSession` around a sans-IO Connection.

Receipts: an accepted submit_sm gets an outcome from the first matching rule (default DELIVRD)
and a due time (its schedule, plus the rule's delay). At that time the receipt deliver_sm goes
to the account's receiving sessions in turn; with none bound (or every window full) it waits
in a bounded per-account queue until one binds or it expires. A receipt still unanswered when
its connection drops, or answered with an error, is sent again: at-least-once. A rule's
intermediate notifications (ENROUTE, ACCEPTD) go out the same way as soon as the message is
accepted, when registered_delivery asks for them (0x10).

Binds with an interface_version below 0x34 are SMPP 3.3 ESMEs, which the gateway does not
support: refused with ESME_RBINDFAIL, unless ``accept_smpp33`` is on, when they are answered
without the sc_interface_version TLV and sent deliver_sm without TLVs; any value above 0x34 is
treated as 3.4.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import random
import ssl
import tempfile
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Self

from o2sms.receipts import ReceiptStat
from o2sms.simulator import http, tls
from o2sms.simulator.config import Account, OutcomeRule, SimulatorConfig
from o2sms.simulator.delivery import (
    MessageIds,
    Outbound,
    ReceiptSubject,
    Timeline,
    receipt,
)
from o2sms.simulator.faults import Faults, FaultView
from o2sms.simulator.o2_profile import (
    BIND_LIMIT_STATUS,
    FLASH_SYSTEM_TYPE,
    INFOBIP_STATUSES,
    Rejected,
    check_submit,
    seconds_until,
    sender_address,
)
from o2sms.simulator.session import SmppSession, nack
from o2sms.simulator.store import LongMessage, MessageStore, StoredMessage
from o2sms.smpp.codec import encode
from o2sms.smpp.connection import Connection
from o2sms.smpp.constants import (
    INTERFACE_VERSION,
    CommandStatus,
    EsmClass,
    MessageState,
    RegisteredDelivery,
    TlvTag,
)
from o2sms.smpp.errors import PduEncodeError
from o2sms.smpp.pdu import (
    BindTransmitter,
    CancelSm,
    CancelSmResp,
    DeliverSm,
    Pdu,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
)
from o2sms.smpp.state import BindType, Role
from o2sms.smpp.times import absolute_time
from o2sms.smpp.tlv import Tlv
from o2sms.text import Encoding, split

log = logging.getLogger("o2sms.simulator")
_S = CommandStatus
_TIMER_GRANULARITY: Final = 0.001  # receipts due within 1 ms go out in one batch
_MAX_RETRIES: Final = 10  # deliver_sm answered with an error is retried this often
_FINAL_DROP: Final = frozenset({_S.ESME_RX_P_APPN, _S.ESME_RX_R_APPN})
_MAX_ADDR: Final = 20  # source_addr/destination_addr: C-Octet String of at most 21 octets
#: seconds the receipts_first fault holds a submit_sm_resp at most while its receipt is not
#: acknowledged (a client may rightly wait for the submit_sm_resp before it answers a receipt
#: it cannot match yet, as o2sms's client does)
RECEIPT_FIRST_HOLD: Final = 0.2
_SC_INTERFACE_VERSION: Final = (Tlv(TlvTag.SC_INTERFACE_VERSION, INTERFACE_VERSION),)
# Read once: reading enum members off their class (and .value) is slow on Python 3.11.
_DELIVRD: Final = ReceiptStat.DELIVRD
_INTERMEDIATE: Final = EsmClass.INTERMEDIATE_NOTIFICATION
#: stat -> (the stored message's state, its stat text), set on every final outcome
_OUTCOMES: Final = {stat: (stat.message_state, stat.value) for stat in ReceiptStat}
_ENCODING_VALUES: Final = {encoding: encoding.value for encoding in Encoding}

COUNTERS: Final = (
    "connections",
    "connections_dropped",
    "binds",
    "binds_refused",
    "pdus_rejected",
    "submit_sm",
    "submit_sm_accepted",
    "submit_sm_rejected",
    "submit_sm_throttled",
    "submit_sm_queue_full",
    "submit_sm_withheld",
    "submit_sm_receipt_first",
    "receipts_sent",
    "receipts_acknowledged",
    "receipts_resent",
    "receipts_dropped",
    "mo_injected",
    "mo_sent",
    "mo_acknowledged",
)
"""Names of the counters in :attr:`Simulator.counters`."""


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A snapshot of one connection for inspection."""

    session_id: int
    system_id: str
    system_type: str
    bind_type: str | None  #: "transmitter", "receiver", "transceiver" or None before bind
    state: str
    peer: str
    tls: bool
    flash: bool
    submitted: int
    outstanding_deliver_sm: int
    interface_version: int = INTERFACE_VERSION  #: from the bind (below 0x34: SMPP 3.3)
    held_octets: int = 0  #: output the latency fault holds back (bounded by max_held_output)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the JSON endpoint."""
        return {
            "session_id": self.session_id,
            "system_id": self.system_id,
            "system_type": self.system_type,
            "bind_type": self.bind_type,
            "state": self.state,
            "peer": self.peer,
            "tls": self.tls,
            "flash": self.flash,
            "submitted": self.submitted,
            "outstanding_deliver_sm": self.outstanding_deliver_sm,
            "interface_version": self.interface_version,
            "held_octets": self.held_octets,
        }


@dataclass(slots=True)
class _Decision(ReceiptSubject):
    """A message's outcome, to apply (and report) when due; or an intermediate notification.

    It is the receipt's facts (a ReceiptSubject), not the StoredMessage: up to
    ``max_scheduled`` decisions wait, and the message itself is looked up in the store when
    due (gone if forgotten).
    """

    stat: ReceiptStat
    err: int
    receipt: bool
    intermediate: bool = False  #: only report ``stat`` (esm_class 0x20); the message goes on


def _settled(item: Outbound, now: float) -> None:
    """A deliver_sm is done with (acknowledged or given up): run what waited for it, once."""
    after = item.after
    if after is not None:
        item.after = None
        after(now)


def _outstanding(message: StoredMessage) -> bool:
    """Not yet delivered nor otherwise final: what cancel_sm may still cancel.

    ``done_at`` too, as a rule may end a message with stat ENROUTE (its state stays ENROUTE).
    """
    return message.state is MessageState.ENROUTE and message.done_at is None


def _addresses_match(message: StoredMessage, pdu: CancelSm, *, by_id: bool) -> bool:
    """Whether a cancel_sm's addresses (and service_type) are those of ``message``'s submit_sm.

    SMPP 3.4 4.9.1: source_addr_ton/npi/source_addr "must match that supplied in the original
    message submission request"; where that source_addr was NULL (here: the account's default
    sender filled it in), the cancel_sm's should be NULL too. dest_addr_ton/npi/
    destination_addr must match as well, but "may be set to NULL when the message_id is
    provided" (``by_id``). Without a message_id, service_type, when given, takes only
    messages of that service_type ("and service_type if specified").
    """
    if message.default_sender:
        if pdu.source_addr:
            return False
    elif (pdu.source_addr_ton, pdu.source_addr_npi, pdu.source_addr) != (
        message.source_addr_ton,
        message.source_addr_npi,
        message.source_addr,
    ):
        return False
    if by_id and not pdu.destination_addr:
        return True
    if (pdu.dest_addr_ton, pdu.dest_addr_npi, pdu.destination_addr) != (
        message.dest_addr_ton,
        message.dest_addr_npi,
        message.destination_addr,
    ):
        return False
    return by_id or not pdu.service_type or pdu.service_type == message.service_type


class _AccountState:
    """An account at runtime: bound sessions, round-robin position, waiting deliver_sm."""

    __slots__ = ("account", "faults", "pending", "rr", "sessions", "view")

    def __init__(self, account: Account, global_faults: Faults) -> None:
        self.account = account
        self.faults = Faults()
        if account.faults is not None:
            self.faults.update(account.faults)
        self.view = FaultView(self.faults, global_faults)
        self.sessions: list[SmppSession] = []  # bound sessions, in bind order
        self.pending: deque[Outbound] = deque()
        self.rr = 0

    def receivers(self) -> list[SmppSession]:
        return [s for s in self.sessions if s.bind_type is not None and s.bind_type.can_receive]


_BIND_NAMES: Final = {
    BindType.TRANSMITTER: "transmitter",
    BindType.RECEIVER: "receiver",
    BindType.TRANSCEIVER: "transceiver",
}


class Simulator:
    """An SMPP 3.4 SMSC that behaves like the O2 gateway; an async context manager.

    ``Simulator(config, **options)``: options replace config fields, e.g.
    ``Simulator(accounts=(Account("acct", "secret"),), receipt_delay=0.01)``.
    """

    def __init__(self, config: SimulatorConfig | None = None, **options: Any) -> None:
        config = config or SimulatorConfig()
        if options:
            config = replace(config, **options)
        self.config = config
        self.faults = Faults()  #: global fault switches (accounts override with faults_for)
        if config.faults is not None:
            self.faults.update(config.faults)
        self.store = MessageStore(config.store_size)
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._rules: tuple[OutcomeRule, ...] = config.rules
        self._accounts: dict[str, _AccountState] = {
            a.system_id: _AccountState(a, self.faults) for a in config.accounts
        }
        self._global_view = FaultView(Faults(), self.faults)
        #: SMPP status -> the status the gateway answers with (empty: plain SMPP 3.4)
        self._statuses: dict[int, int] = dict(INFOBIP_STATUSES) if config.infobip_statuses else {}
        self._ids = MessageIds(config.message_id_format)
        self._session_ids = itertools.count(1)
        self._sessions: dict[int, SmppSession] = {}
        # every connection until it is collected: an unbound one may still hold output back
        # (latency fault) after it left _sessions, and stop() must not leave it open
        self._connections: weakref.WeakSet[SmppSession] = weakref.WeakSet()
        self._timeline: Timeline[_Decision | Outbound] = Timeline()
        #: cancel_sm'd messages whose outcome is still pending (dropped when it comes due), so
        #: a cancel holds even when the store forgets the message before then
        self._cancelled: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = float("inf")
        self._wall_at = -1.0  # the loop time _wall_now was read at
        self._wall_now = datetime.now(UTC)
        self._random = random.Random(config.seed)
        self._servers: list[asyncio.Server] = []
        self._http: asyncio.Server | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port: int | None = None  #: the plain SMPP port, once started
        self.tls_port: int | None = None  #: the TLS port, once started
        self.http_port: int | None = None  #: the JSON endpoint's port, once started
        self.certificate_pem: bytes | None = None  #: the TLS certificate in use (PEM)

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Open the listeners the config asks for."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        cfg = self.config
        try:
            if cfg.port is not None:
                server = await loop.create_server(
                    lambda: self._new_session(tls=False), cfg.host, cfg.port
                )
                self._servers.append(server)
                self.port = server.sockets[0].getsockname()[1]
            if cfg.tls_port is not None:
                context = self._server_ssl_context()
                server = await loop.create_server(
                    lambda: self._new_session(tls=True), cfg.host, cfg.tls_port, ssl=context
                )
                self._servers.append(server)
                self.tls_port = server.sockets[0].getsockname()[1]
            if cfg.http_port is not None:
                self._http = await http.serve(self, cfg.host, cfg.http_port)
                self.http_port = self._http.sockets[0].getsockname()[1]
        except BaseException:
            await self.stop()
            raise

    async def stop(self, grace: float = 2.0) -> None:
        """Stop listening, unbind every session (waiting up to ``grace`` s), close the rest."""
        for server in self._servers:
            server.close()
        if self._http is not None:
            self._http.close()
        sessions = list(self._sessions.values())
        for session in sessions:
            session.unbind()
        if sessions:
            waits = [asyncio.ensure_future(s.closed_event.wait()) for s in sessions]
            _, pending = await asyncio.wait(waits, timeout=grace)
            for task in pending:
                task.cancel()
            for session in list(self._sessions.values()):
                session.abort()
            await asyncio.sleep(0)
        held = [
            session
            for session in self._connections
            if session.transport is not None and not session.transport.is_closing()
        ]
        for session in held:
            session.abort()  # unbound, its last answers still held by the latency fault
        if held:
            await asyncio.sleep(0)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._http is not None:
            await self._http.wait_closed()
            self._http = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _server_ssl_context(self) -> ssl.SSLContext:
        cfg = self.config
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if cfg.certfile is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="o2sms-sim-")
            certfile, keyfile = tls.write_self_signed(self._tmp.name, hosts=(cfg.host, "localhost"))
        else:
            certfile, keyfile = cfg.certfile, cfg.keyfile or cfg.certfile
        context.load_cert_chain(certfile, keyfile)
        with open(certfile, "rb") as f:
            self.certificate_pem = f.read()
        return context

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context for clients that trusts this simulator's certificate."""
        if self.certificate_pem is None:
            raise RuntimeError("TLS is not enabled (set tls_port)")
        return ssl.create_default_context(cadata=self.certificate_pem.decode("ascii"))

    def _new_session(self, *, tls: bool) -> SmppSession:
        cfg = self.config
        session_id = next(self._session_ids)

        def make(now: float) -> Connection:
            return Connection(
                Role.SMSC,
                window=cfg.window,
                response_timeout=cfg.response_timeout,
                enquire_link_interval=None,
                inactivity_timeout=None,  # the session's: counted in PDUs, not octets
                session_init_timeout=cfg.session_init_timeout,
                now=now,
            )

        return SmppSession(
            self,
            session_id,
            make,
            self._global_view,
            tls=tls,
            statuses=self._statuses,
            inactivity_timeout=cfg.inactivity_timeout,
            max_held=cfg.max_held_output,
        )

    # --- runtime settings -----------------------------------------------------------------

    def faults_for(self, system_id: str) -> Faults:
        """The fault switches of one account (None fields follow :attr:`faults`)."""
        return self._account(system_id).faults

    @property
    def rules(self) -> tuple[OutcomeRule, ...]:
        """Outcome rules, first match on the destination prefix wins."""
        return self._rules

    @rules.setter
    def rules(self, rules: Iterable[OutcomeRule]) -> None:
        self._rules = tuple(rules)

    def add_account(self, account: Account) -> None:
        """Add (or replace the settings of) an account at runtime."""
        state = self._accounts.get(account.system_id)
        if state is None:
            self._accounts[account.system_id] = _AccountState(account, self.faults)
        else:
            state.account = account

    def _account(self, system_id: str) -> _AccountState:
        try:
            return self._accounts[system_id]
        except KeyError:
            raise KeyError(f"no account {system_id!r}") from None

    # --- inspection -----------------------------------------------------------------------

    def messages(self, system_id: str | None = None) -> list[StoredMessage]:
        """Received messages (one per submit_sm part), oldest first."""
        found = self.store.messages()
        return found if system_id is None else [m for m in found if m.system_id == system_id]

    def message(self, message_id: str) -> StoredMessage | None:
        """One received message by its message_id, while the store keeps it."""
        return self.store.get(message_id)

    def long_messages(self) -> list[LongMessage]:
        """Concatenated messages reassembled from their parts, oldest first."""
        return self.store.long_messages()

    def sessions(self) -> list[SessionInfo]:
        """Every open connection."""
        return [
            SessionInfo(
                s.session_id,
                s.system_id,
                s.system_type,
                None if s.bind_type is None else _BIND_NAMES[s.bind_type],
                s.conn.state.value,
                s.peer,
                s.tls,
                s.flash,
                s.submitted,
                s.outstanding,
                s.interface_version,
                s.held,
            )
            for s in self._sessions.values()
        ]

    def pending_receipts(self, system_id: str) -> int:
        """deliver_sm of an account waiting for a receiving session (expired ones dropped)."""
        state = self._account(system_id)
        return self._expire(state, self._now())

    @property
    def scheduled(self) -> int:
        """Outcomes and resends not yet due."""
        return len(self._timeline)

    def snapshot(self, limit: int | None = None) -> dict[str, Any]:
        """Everything inspection shows, as plain data (the JSON endpoint's answer)."""
        now = self._now()
        messages = self.store.messages()
        if limit is not None:
            messages = messages[-limit:] if limit > 0 else []
        return {
            "messages": [m.to_json() for m in messages],
            "long_messages": [m.to_json() for m in self.store.long_messages()],
            "sessions": [s.to_json() for s in self.sessions()],
            "counters": dict(self.counters),
            "pending_receipts": {sid: self._expire(a, now) for sid, a in self._accounts.items()},
            "scheduled": len(self._timeline),
        }

    async def wait_until(
        self, condition: Callable[[], bool], timeout: float = 5.0, interval: float = 0.002
    ) -> None:
        """Wait until ``condition()`` holds (TimeoutError after ``timeout`` s); for tests."""
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(interval)

    # --- inbound SMS (MO) -------------------------------------------------------------------

    def inject_mo(
        self,
        system_id: str,
        source_addr: str,
        destination_addr: str,
        text: str,
        *,
        encoding: str | None = None,
    ) -> int:
        """Deliver an SMS from a handset to the account as deliver_sm; returns the part count.

        A long text is split with an 8-bit concatenation UDH; every part goes to the same
        receiving session when it can take them. Queued while no receiving session is bound.
        Addresses are checked first (ValueError, nothing queued): a deliver_sm that cannot be
        encoded would otherwise only fail once a receiver binds.
        """
        state = self._account(system_id)
        for name, addr in (("source_addr", source_addr), ("destination_addr", destination_addr)):
            if not (len(addr) <= _MAX_ADDR and addr.isascii() and "\0" not in addr):
                raise ValueError(
                    f"{name} must be at most {_MAX_ADDR} ASCII characters without NUL, got {addr!r}"
                )
        now = self._now()
        parts = split(text, encoding=encoding)
        pdus = [
            DeliverSm(
                source_addr_ton=1,
                source_addr_npi=1,
                source_addr=source_addr,
                dest_addr_ton=0,
                dest_addr_npi=0,
                destination_addr=destination_addr,
                esm_class=part.esm_class,
                data_coding=part.data_coding,
                short_message=part.short_message,
                tlvs=part.tlvs,
            )
            for part in parts
        ]
        for pdu in pdus:
            encode(pdu)  # PduEncodeError (a ValueError) for anything else off the spec
        self.counters["mo_injected"] += 1
        expires = now + self.config.receipt_expiry
        touched: set[SmppSession] = set()
        prefer: SmppSession | None = None
        for pdu in pdus:
            item = Outbound(pdu, system_id, expires, "mo")
            prefer = self._route(state, item, now, touched, prefer)
        for session in touched:
            session.flush()
        return len(parts)

    # --- the Host interface (called by sessions) ------------------------------------------------

    def on_connected(self, session: SmppSession) -> None:
        """A connection is established (TLS: its handshake done): register the session.

        Not done when the socket is accepted: a TLS handshake that never completes (a port
        scan, a plain TCP health check) never calls connection_made nor connection_lost, so
        a session registered then would stay in :meth:`sessions` for ever.
        """
        self._sessions[session.session_id] = session
        self._connections.add(session)
        self.counters["connections"] += 1

    def count(self, name: str) -> None:
        """Increment a counter."""
        self.counters[name] += 1

    def random(self) -> float:
        """A draw from the seeded generator of the random-drop fault."""
        return self._random.random()

    def on_bind(self, session: SmppSession, pdu: BindTransmitter, now: float) -> Pdu:
        """Check credentials, system_type and the session limit; register the session.

        interface_version: 0x34 and above bind as SMPP 3.4 (bind_resp with the
        sc_interface_version TLV); below 0x34 (SMPP 3.3, "not supported" by the gateway)
        refused with ESME_RBINDFAIL, the reference's generic bind failure (SMPP 3.4 has no
        version status), or, with ``accept_smpp33``, bound as SMPP 3.3, whose bind_resp and
        deliver_sm carry no TLVs.

        A session already bound gets ESME_RALYBND and keeps its bind, whatever the
        Connection's state table let through (two binds in one read both reach here): a
        session is registered with one account at most once, so its close frees its slot.
        """
        if session.bind_type is not None:
            self.counters["binds_refused"] += 1
            return pdu.response(command_status=_S.ESME_RALYBND)
        state = self._accounts.get(pdu.system_id)
        status = 0
        system_type = pdu.system_type
        flash = system_type.upper() == FLASH_SYSTEM_TYPE
        smpp33 = pdu.interface_version < INTERFACE_VERSION
        if state is None:
            status = _S.ESME_RINVSYSID
        elif not hmac.compare_digest(pdu.password.encode(), state.account.password.encode()):
            status = _S.ESME_RINVPASWD
        elif (
            state.account.system_types is not None
            and system_type not in state.account.system_types
            and not flash
        ):
            status = _S.ESME_RINVSYSTYP
        elif smpp33 and not self.config.accept_smpp33:
            status = _S.ESME_RBINDFAIL
        else:
            limit = state.account.session_limit
            if limit is None:  # 0 is a limit (no bind), not "unset"
                limit = self.config.session_limit
            if len(state.sessions) >= limit:
                status = BIND_LIMIT_STATUS
        if status or state is None:
            self.counters["binds_refused"] += 1
            return pdu.response(command_status=status)
        self.counters["binds"] += 1
        session.system_id = pdu.system_id
        session.system_type = system_type
        session.flash = flash
        session.bind_type = BindType(pdu.command_id)
        session.faults = state.view
        session.interface_version = pdu.interface_version
        if session not in state.sessions:
            state.sessions.append(session)
        tlvs = () if smpp33 else _SC_INTERFACE_VERSION
        return pdu.response(system_id=self.config.system_id, tlvs=tlvs)

    def on_receiving(self, session: SmppSession, now: float) -> None:
        """A receiving bind is complete: send what waited for one."""
        state = self._accounts.get(session.system_id)
        if state is not None:
            self._drain(state, now, skip=session)  # flushed after its bind_resp, by its read

    def on_submit(self, session: SmppSession, pdu: SubmitSm, now: float) -> Pdu | None:
        """Answer a submit_sm: faults first, then validation, then accept and schedule."""
        counters = self.counters
        counters["submit_sm"] += 1
        view = session.faults
        active = view.any_active  # nothing below switches a fault on or off
        if active:
            if view.withhold():
                counters["submit_sm_withheld"] += 1
                return None
            if view.take_queue_full():
                counters["submit_sm_queue_full"] += 1
                return pdu.response(command_status=_S.ESME_RMSGQFUL)
            if view.throttled(now):
                counters["submit_sm_throttled"] += 1
                return pdu.response(command_status=_S.ESME_RTHROTTLED)
        default_sender = False
        if not pdu.source_addr:
            defaulted = self._default_sender(session, pdu)
            default_sender = defaulted is not pdu
            pdu = defaulted
        cfg = self.config
        wall = self._wall(now)
        try:
            sub = check_submit(
                pdu,
                now=wall,
                flash=session.flash,
                data_codings=cfg.data_codings,
                max_parts=cfg.max_parts,
                max_payload=cfg.max_payload,
            )
        except Rejected as rejected:
            counters["submit_sm_rejected"] += 1
            status = rejected.command_status
            return pdu.response(command_status=self._statuses.get(status, status))
        state = self._accounts.get(session.system_id)
        if len(self._timeline) >= cfg.max_scheduled or (
            state is not None
            and len(state.pending) >= cfg.max_pending_receipts
            and self._expire(state, now) >= cfg.max_pending_receipts
        ):
            # Backpressure, not loss: an ESME that takes its receipts more slowly than it
            # submits is told to wait (and retries), instead of losing receipts later.
            counters["submit_sm_queue_full"] += 1
            return pdu.response(command_status=_S.ESME_RMSGQFUL)
        message_id = self._ids.next()
        concat = sub.concat
        message = StoredMessage(
            message_id,
            session.system_id,
            session.system_type,
            session.session_id,
            pdu.source_addr,
            pdu.destination_addr,
            pdu.data_coding,
            _ENCODING_VALUES[sub.encoding],
            sub.text,
            session.flash,
            sub.scheme,
            None if concat is None else concat.reference,
            1 if concat is None else concat.seq,
            1 if concat is None else concat.total,
            pdu.registered_delivery,
            pdu.schedule_delivery_time,
            pdu.validity_period,
            sub.schedule,
            sub.validity,
            wall,
            pdu.source_addr_ton,
            pdu.source_addr_npi,
            pdu.dest_addr_ton,
            pdu.dest_addr_npi,
            pdu.service_type,
            default_sender,
        )
        if concat is not None and concat.total > 1:
            self.store.add_part(
                message,
                short_message=pdu.short_message,
                esm_class=pdu.esm_class,
                tlvs=pdu.tlvs,
                now=now,
            )
        else:
            self.store.add(message)
        counters["submit_sm_accepted"] += 1
        response = SubmitSmResp(sequence_number=pdu.sequence_number, message_id=message_id)
        if active and self._receipt_first(session, message, wall, now, response):
            return None  # answered once the receipt is
        self._decide(message, wall, now, view if active else None)
        return response

    def _default_sender(self, session: SmppSession, pdu: SubmitSm) -> SubmitSm:
        """The submit_sm from the account's default sender, when it has one (else as is)."""
        state = self._accounts.get(session.system_id)
        sender = None if state is None else state.account.default_sender
        if sender is None:
            return pdu
        ton, npi, addr = sender_address(sender)
        return replace(pdu, source_addr_ton=ton, source_addr_npi=npi, source_addr=addr)

    def on_other_request(self, session: SmppSession, pdu: Pdu, now: float) -> Pdu:
        """query_sm/cancel_sm when enabled; any other request: generic_nack ESME_RINVCMDID."""
        if self.config.accept_query_cancel:
            if type(pdu) is QuerySm:
                return self._query(session, pdu)
            if type(pdu) is CancelSm:
                return self._cancel(session, pdu, now)
        return nack(pdu)

    def on_deliver_resp(
        self, session: SmppSession, item: Outbound, response: Pdu, now: float
    ) -> None:
        """A deliver_sm was answered: done, dropped, or retried later."""
        status = response.command_status
        state = self._accounts.get(item.system_id)
        if status == 0:
            self.counters[
                "receipts_acknowledged" if item.kind == "receipt" else "mo_acknowledged"
            ] += 1
            if item.after is not None:
                _settled(item, now)
        elif status in _FINAL_DROP or item.attempts >= _MAX_RETRIES:
            self.counters["receipts_dropped"] += 1
            _settled(item, now)
        else:
            item.attempts += 1
            self._schedule(now + self.config.receipt_retry_delay, item, now)
        if state is not None and state.pending:
            self._drain(state, now, skip=session)

    def on_deliver_unreadable(self, session: SmppSession, item: Outbound, now: float) -> None:
        """A deliver_sm_resp could not be decoded: send the deliver_sm again after a delay.

        Not counted acknowledged, even if its header's status was 0: a body that does not
        decode says the peer's stack is confused, and a receipt it never stored would be lost.
        Nor an error answer, whose retries are capped at _MAX_RETRIES and then dropped: it is
        resent, like an unanswered one, until it expires (at-least-once). Unlike an
        unanswered one it is resent only after ``receipt_retry_delay``, so a client that
        always answers so is sent one attempt per delay, not a ping-pong at network speed.
        """
        state = self._accounts.get(item.system_id)
        if state is None:
            return
        if self._another_attempt(item, now):
            self._schedule(now + self.config.receipt_retry_delay, item, now)
        if state.pending:
            self._drain(state, now, skip=session)  # the slot this item held is free

    def on_deliver_lost(self, session: SmppSession, item: Outbound, now: float) -> None:
        """A deliver_sm got no answer (timeout or connection lost): send it again."""
        state = self._accounts.get(item.system_id)
        if state is None or not self._another_attempt(item, now):
            return
        touched: set[SmppSession] = set()
        self._route(state, item, now, touched)
        for other in touched:
            if other is not session:
                other.flush()
        if state.pending:
            self._drain(state, now)  # the slot this item held may be free now

    def _another_attempt(self, item: Outbound, now: float) -> bool:
        """Count one more attempt at ``item`` (True), or drop it once it has expired (False):
        a deliver_sm goes out at least once until it expires, not for ever."""
        if item.expires_at <= now:
            self.counters["receipts_dropped"] += 1
            _settled(item, now)
            return False
        item.attempts += 1
        self.counters["receipts_resent"] += 1
        return True

    def on_closed(self, session: SmppSession, now: float) -> None:
        """Forget a session (idempotent): every entry of it in its account's bound sessions."""
        self._sessions.pop(session.session_id, None)
        state = self._accounts.get(session.system_id)
        if state is not None and session in state.sessions:
            state.sessions[:] = [s for s in state.sessions if s is not session]

    # --- outcomes and delivery ----------------------------------------------------------------

    def _now(self) -> float:
        loop = self._loop or asyncio.get_running_loop()
        return loop.time()

    def _wall(self, now: float) -> datetime:
        """The wall-clock time at loop time ``now``, read once for all the PDUs of one read
        (they share ``now``) or the receipts of one timer tick, not once per message."""
        if now != self._wall_at:
            self._wall_at = now
            self._wall_now = datetime.now(UTC)
        return self._wall_now

    def _rule(self, destination_addr: str) -> OutcomeRule | None:
        addr = destination_addr.lstrip("+")
        for rule in self._rules:
            if addr.startswith(rule.prefix.lstrip("+")):
                return rule
        return None

    def _asked(self, message: StoredMessage) -> int:
        """The message's registered_delivery as its route honours it: 0 on a route without
        delivery reports (the account's ``routes_without_receipts``)."""
        state = self._accounts.get(message.system_id)
        if state is not None and message.system_type in state.account.routes_without_receipts:
            return 0
        return message.registered_delivery

    def _decide(
        self, message: StoredMessage, wall: datetime, now: float, view: FaultView | None
    ) -> None:
        """Pick the outcome and schedule it (the receipt, if asked for, goes out then).

        ``view``: the submitter's fault switches, None when none is set.
        """
        rule = self._rule(message.destination_addr) if self._rules else None
        if rule is None:
            stat, err, delay = _DELIVRD, 0, self.config.receipt_delay
        else:
            stat, err = rule.stat, rule.err
            delay = self.config.receipt_delay if rule.delay is None else rule.delay
            if rule.intermediate and self._asked(message) & RegisteredDelivery.INTERMEDIATE:
                for notification in rule.intermediate:
                    self._schedule(now, _Decision.of(message, notification, 0, True, True), now)
        if view is not None:
            delay += view.receipt_delay()
        if message.scheduled_for is not None:
            delay += seconds_until(message.scheduled_for, wall)
        if message.expires_at is not None:
            left = seconds_until(message.expires_at, wall)
            if left < delay:
                stat, err, delay = ReceiptStat.EXPIRED, 0, left
        flags = self._asked(message) & 0x03
        receipt = flags == 1 or (flags == 2 and stat is not _DELIVRD)
        self._schedule(now + delay, _Decision.of(message, stat, err, receipt, False), now)

    def _receipt_first(
        self,
        session: SmppSession,
        message: StoredMessage,
        wall: datetime,
        now: float,
        response: SubmitSmResp,
    ) -> bool:
        """The receipts_first fault: decide the outcome now, send its receipt (on another
        receiving session of the account when one has room), and answer the submit_sm when
        that deliver_sm is acknowledged or given up, or RECEIPT_FIRST_HOLD seconds after it
        was sent, whichever comes first. False when it does not apply: no receipt asked for,
        a scheduled message, or no receiving session bound.
        """
        state = self._accounts.get(session.system_id)
        if state is None or message.scheduled_for is not None or not state.receivers():
            return False
        rule = self._rule(message.destination_addr) if self._rules else None
        stat, err = (ReceiptStat.DELIVRD, 0) if rule is None else (rule.stat, rule.err)
        flags = self._asked(message) & 0x03
        if not (flags == 1 or (flags == 2 and stat is not ReceiptStat.DELIVRD)):
            return False
        if not session.faults.take_receipts_first():
            return False
        message.state = stat.message_state
        message.stat = stat.value
        message.err = err
        message.done_at = wall

        def answer(at: float) -> None:
            session.respond(response, at)  # a no-op once the submitter's connection is gone
            session.flush()

        item = Outbound(
            receipt(message, stat, err, wall),
            message.system_id,
            now + self.config.receipt_expiry,
            "receipt",
            message.message_id,
            after=answer,
        )
        touched: set[SmppSession] = set()
        self._route(state, item, now, touched, prefer=self._next_receiver(state, avoid=session))
        for other in touched:
            if other is not session:  # the submitter's own output is written after this read
                other.flush()
        loop = self._loop or asyncio.get_running_loop()
        loop.call_later(RECEIPT_FIRST_HOLD, lambda: _settled(item, self._now()))
        self.counters["submit_sm_receipt_first"] += 1
        return True

    def _schedule(self, due: float, item: _Decision | Outbound, now: float) -> None:
        self._timeline.push(due, item)
        self._arm(due, now)

    def _arm(self, due: float, now: float) -> None:
        if due >= self._timer_due:
            return
        due = max(due, now + _TIMER_GRANULARITY)  # batch what is due within 1 ms
        if due >= self._timer_due:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = self._loop or asyncio.get_running_loop()
        self._timer_due = due
        self._timer = loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_due = float("inf")
        now = self._now()
        try:
            due_items = self._timeline.pop_due(now)
            if due_items:
                wall = self._wall(now)
                touched: set[SmppSession] = set()
                for item in due_items:
                    try:
                        if type(item) is _Decision:
                            self._apply(item, wall, now, touched)
                        else:
                            assert isinstance(item, Outbound)
                            state = self._accounts.get(item.system_id)
                            if state is not None:
                                self._route(state, item, now, touched)
                    except Exception:
                        # A bug in one item must not take the tick's other receipts with it.
                        log.exception("simulator: could not deliver a due item; skipped")
                for session in touched:
                    session.flush()
        finally:  # whatever happened, what is due later is still delivered
            next_due = self._timeline.next_due()
            if next_due is not None:
                self._arm(next_due, now)

    def _apply(
        self, decision: _Decision, wall: datetime, now: float, touched: set[SmppSession]
    ) -> None:
        """Apply a due decision: update the stored message (if still kept) and report it.

        A final outcome is never dated before the message's schedule: the timer runs on the
        loop's monotonic clock, and ``wall`` may trail the scheduled wall-clock time by the
        clocks' drift, which would date the receipt before the time the client asked for.
        """
        message_id = decision.message_id
        if message_id in self._cancelled:
            if not decision.intermediate:
                self._cancelled.discard(message_id)  # the final outcome: nothing else waits
            return  # cancelled by cancel_sm
        message = self.store.get(message_id)  # None once the store forgot it
        if decision.intermediate:
            if message is None or message.done_at is None:  # never after the final receipt
                self._report(decision, decision.stat, 0, wall, now, touched, intermediate=True)
            return
        scheduled = decision.scheduled_for
        done = wall if scheduled is None or scheduled <= wall else scheduled
        if message is not None:
            message.state, message.stat = _OUTCOMES[decision.stat]
            message.err = decision.err
            message.done_at = done
        if decision.receipt:
            self._report(decision, decision.stat, decision.err, done, now, touched)

    def _report(  # noqa: PLR0917 - positional: called per receipt
        self,
        message: ReceiptSubject,
        stat: ReceiptStat,
        err: int,
        wall: datetime,
        now: float,
        touched: set[SmppSession],
        *,
        intermediate: bool = False,
    ) -> None:
        """Send a receipt (or an intermediate notification) to the account's receivers."""
        state = self._accounts.get(message.system_id)
        if state is None:
            return
        item = Outbound(
            receipt(message, stat, err, wall, esm_class=_INTERMEDIATE)
            if intermediate
            else receipt(message, stat, err, wall),
            message.system_id,
            now + self.config.receipt_expiry,
            "receipt",
            message.message_id,
        )
        self._route(state, item, now, touched)

    def _route(
        self,
        state: _AccountState,
        item: Outbound,
        now: float,
        touched: set[SmppSession],
        prefer: SmppSession | None = None,
    ) -> SmppSession | None:
        """Send on the next receiving session with room (round robin), else queue it."""
        if prefer is not None and prefer.can_take:
            self._send(prefer, item, now, touched)
            return prefer
        pending = state.pending
        if pending and pending[0].expires_at <= now:
            self._expire(state, now)
        if not pending:  # else it queues behind them, in order
            session = self._next_receiver(state)
            if session is not None:
                self._send(session, item, now, touched)
                return session
        # Submits are refused from max_pending_receipts on; receipts already scheduled then
        # still queue, up to twice that, a last bound on memory (then the oldest is dropped).
        if len(pending) >= 2 * self.config.max_pending_receipts:
            _settled(pending.popleft(), now)
            self.counters["receipts_dropped"] += 1
        pending.append(item)
        return None

    def _send(
        self, session: SmppSession, item: Outbound, now: float, touched: set[SmppSession]
    ) -> None:
        """Send one deliver_sm; one that cannot be encoded is logged and dropped.

        Never raised: this runs inside a session's read (a bind, a deliver_sm_resp), and an
        exception there would lose that session's answers and kill its connection.
        """
        try:
            session.send_outbound(item, now)
        except PduEncodeError as exc:
            log.error("dropping a %s deliver_sm of %s: %s", item.kind, item.system_id, exc)
            self.counters["receipts_dropped"] += 1
            _settled(item, now)
            return
        touched.add(session)
        self.counters["receipts_sent" if item.kind == "receipt" else "mo_sent"] += 1

    @staticmethod
    def _next_receiver(
        state: _AccountState, avoid: SmppSession | None = None
    ) -> SmppSession | None:
        """The account's next receiving session with room, round robin; None when all are full.

        The one place that picks a receiver, so receipts sent at once (:meth:`_route`) and
        receipts that waited (:meth:`_drain`) share the rotation: "sent equally over all of
        your currently available sessions", as the gateway's description says. ``avoid`` is
        passed over (the receipts_first fault wants a session other than the submitter's).
        """
        sessions = state.sessions
        count = len(sessions)
        start = state.rr
        for i in range(count):
            index = (start + i) % count
            session = sessions[index]
            if session.can_take and session is not avoid:
                state.rr = index + 1
                return session
        return None

    def _expire(self, state: _AccountState, now: float) -> int:
        """Drop the expired deliver_sm at the front of the account's queue; how many remain.

        Only the front is looked at: items are queued oldest first, so the queue is in
        expiry order except for a resent one (it keeps its first expiry), which goes as soon
        as those before it have: at most ``receipt_expiry`` late. Called where a full queue
        matters (the submit_sm queue-full check, inspection) and when one is queued, so
        receipts nobody binds for do not hold the queue full for ever; O(1) amortised.
        """
        pending = state.pending
        while pending and pending[0].expires_at <= now:
            _settled(pending.popleft(), now)
            self.counters["receipts_dropped"] += 1
        return len(pending)

    def _drain(self, state: _AccountState, now: float, skip: SmppSession | None = None) -> None:
        """Send waiting deliver_sm while some receiving session has room.

        The sessions sent to are flushed, except ``skip``: the session whose read is being
        handled, which writes everything it queued in one go once the read is done.
        """
        pending = state.pending
        touched: set[SmppSession] = set()
        while pending:
            if pending[0].expires_at <= now:
                _settled(pending.popleft(), now)
                self.counters["receipts_dropped"] += 1
                continue
            session = self._next_receiver(state)
            if session is None:
                break
            self._send(session, pending.popleft(), now, touched)
        for session in touched:
            if session is not skip:
                session.flush()

    # --- query_sm / cancel_sm (optional) ---------------------------------------------------------

    def _owned(self, session: SmppSession, message_id: str) -> StoredMessage | None:
        message = self.store.get(message_id)
        if message is None or message.system_id != session.system_id:
            return None
        return message

    def _query(self, session: SmppSession, pdu: QuerySm) -> Pdu:
        """query_sm (SMPP 3.4 4.8.1): the state of one of the account's messages.

        source_addr "must match that supplied in the original message submission", and is
        NULL when "not known": an empty one is accepted, another address than the one the
        message went out with (the default sender's, when the account filled it in) is
        ESME_RQUERYFAIL. Its TON/NPI are not compared: ESMEs often leave them 0 here.
        """
        message = self._owned(session, pdu.message_id)
        if message is None or (pdu.source_addr and pdu.source_addr != message.source_addr):
            return QuerySmResp(
                sequence_number=pdu.sequence_number, command_status=_S.ESME_RQUERYFAIL
            )
        final_date = "" if message.done_at is None else absolute_time(message.done_at)
        return QuerySmResp(
            sequence_number=pdu.sequence_number,
            message_id=message.message_id,
            final_date=final_date,
            message_state=int(message.state),
            error_code=min(message.err, 0xFF),
        )

    def _cancel(self, session: SmppSession, pdu: CancelSm, now: float) -> Pdu:
        """cancel_sm (SMPP 3.4 4.9.1): cancel the account's outstanding message(s).

        With a message_id, that message; with a NULL one, "all outstanding undelivered
        messages" of the account with the given source and destination addresses, of the
        given service_type if one is given. The addresses must be those of the original
        submit_sm (:func:`_addresses_match`); nothing to cancel is ESME_RCANCELFAIL.

        A cancelled message whose submit_sm asked for a final receipt gets one with stat
        DELETED, the outcome it now has: registered_delivery 1 ("success or failure") and 2
        ("failure", which DELETED is; SMPP 3.4 5.2.17). It goes out as any receipt does
        (round robin, queued, resent), put on the timeline rather than sent here so that it
        follows this cancel_sm_resp, which the session writes after this returns.

        A NULL message_id looks at every message the store keeps (O(store_size)): cancel_sm
        is rare and optional, and an index by address would cost every submit_sm.
        """
        system_id = session.system_id
        found: list[StoredMessage]
        if pdu.message_id:
            message = self._owned(session, pdu.message_id)
            found = (
                [message]
                if message is not None
                and _outstanding(message)
                and _addresses_match(message, pdu, by_id=True)
                else []
            )
        else:
            found = [
                m
                for m in self.store.messages()
                if m.system_id == system_id
                and _outstanding(m)
                and _addresses_match(m, pdu, by_id=False)
            ]
        if not found:
            return CancelSmResp(
                sequence_number=pdu.sequence_number, command_status=_S.ESME_RCANCELFAIL
            )
        wall = datetime.now(UTC)
        expires = now + self.config.receipt_expiry
        for message in found:
            message.state = MessageState.DELETED
            message.stat = ReceiptStat.DELETED.value
            message.done_at = wall
            self._cancelled.add(message.message_id)  # its outcome is pending (it is ENROUTE)
            flags = self._asked(message) & 0x03
            if flags in {1, 2}:
                deleted = receipt(message, ReceiptStat.DELETED, 0, wall)
                item = Outbound(deleted, system_id, expires, "receipt", message.message_id)
                self._schedule(now, item, now)
        return CancelSmResp(sequence_number=pdu.sequence_number)


__all__ = ["COUNTERS", "SessionInfo", "Simulator"]
