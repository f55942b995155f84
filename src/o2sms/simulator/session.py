"""One accepted SMPP connection: an asyncio Protocol moving bytes and time into a sans-IO Connection.

All protocol rules live in :class:`o2sms.smpp.connection.Connection` (role SMSC): state table,
enquire_link, unbind, undecodable frames, timers. This class only feeds it what the socket read
(``data_received`` is the reader), writes what it produced once per read or batch, calls
``tick`` at the deadline it asked for, and hands requests to the :class:`Host` (the simulator)
for the decisions that need accounts: binds, submit_sm, deliver_sm responses.

Fault injection acts here, on the byte stream, so that it treats every PDU alike, including
those the Connection answers on its own (enquire_link, unbind, PDUs that break the rules): a
:class:`FrameCounter` finds where each received PDU ends, so the drop faults count every PDU
and cut the stream before the one that trips them; and the latency fault holds back
everything written, in order, instead of a single kind of response. What it holds is bounded:
past ``max_held`` octets the session stops reading from the socket until the held output has
been written, so a client blasting requests under latency is slowed down by TCP instead of
growing the simulator's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Final, Protocol, cast

from o2sms.simulator.delivery import Outbound, Receipt
from o2sms.simulator.faults import FaultView
from o2sms.smpp.codec import HEADER_SIZE, with_sequence_number
from o2sms.smpp.connection import (
    Connection,
    ConnectionClosed,
    PduRejected,
    RequestExpired,
    RequestReceived,
    ResponseReceived,
    Unbound,
)
from o2sms.smpp.constants import INTERFACE_VERSION, CommandId, CommandStatus
from o2sms.smpp.errors import LocalProtocolError
from o2sms.smpp.pdu import (
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    GenericNack,
    Pdu,
    SubmitSm,
    Unbind,
)
from o2sms.smpp.state import BindType, SessionState

_BINDS = (BindTransmitter, BindReceiver, BindTransceiver)
_BIND_IDS = frozenset(cls.command_id for cls in _BINDS)
_RECEIVING = frozenset({SessionState.BOUND_RX, SessionState.BOUND_TRX})
_RECEIVING_RESPS = (BindReceiverResp, BindTransceiverResp)
# Read once: reading enum members off their class is slow on Python 3.11.
_CLOSED: Final = SessionState.CLOSED
_UNBOUND: Final = SessionState.UNBOUND
_WORD: Final = struct.Struct(">I")
_UNBIND_RESP: Final = int(CommandId.UNBIND_RESP)

MAX_HELD: Final = 64 * 1024
"""Default octets of output the latency fault may hold per session before reading pauses."""


class FrameCounter:
    """Finds where each SMPP frame ends in a TCP byte stream, without decoding anything.

    Only the four-octet command_length of each frame is read, so it is cheap enough to run on
    every read; the session needs it to count received PDUs for the drop faults even when the
    Connection answers them itself, and to cut the stream exactly before the PDU that trips a
    fault. A command_length below 16 makes the stream unframeable (the Connection closes the
    connection); the counter then stops.
    """

    __slots__ = ("_broken", "_head", "_left")

    def __init__(self) -> None:
        self._left = 0  # octets still to come of a frame whose length is known
        self._head = b""  # the first octets of a command_length split over reads
        self._broken = False

    def feed(self, data: bytes) -> list[int]:
        """Offsets in ``data`` just past each frame that ends in it, in order."""
        ends: list[int] = []
        if self._broken:
            return ends
        size = len(data)
        pos = 0
        if self._left:
            if size < self._left:
                self._left -= size
                return ends
            pos = self._left
            self._left = 0
            ends.append(pos)
        elif self._head:
            pos = 4 - len(self._head)
            head = self._head + data[:pos]
            if len(head) < 4:
                self._head = head
                return ends
            self._head = b""
            length: int = _WORD.unpack(head)[0]
            if length < HEADER_SIZE:
                self._broken = True
                return ends
            pos += length - 4
            if pos > size:
                self._left = pos - size
                return ends
            ends.append(pos)
        unpack = _WORD.unpack_from
        while size - pos >= 4:
            length = unpack(data, pos)[0]
            if length < HEADER_SIZE:
                self._broken = True
                return ends
            pos += length
            if pos > size:
                self._left = pos - size
                return ends
            ends.append(pos)
        if pos < size:
            self._head = bytes(data[pos:])
        return ends


def patch_statuses(data: bytes, statuses: Mapping[int, int]) -> bytes:
    """Whole encoded PDUs with each command_status found in ``statuses`` replaced by its value.

    The Connection encodes its own answers to undecodable PDUs with the SMPP 3.4 status; the
    gateway profile may answer some of them with Infobip's code instead (header-only answers,
    so only the status word changes).
    """
    out = bytearray(data)
    pos = 0
    while len(out) - pos >= HEADER_SIZE:
        length: int = _WORD.unpack_from(out, pos)[0]
        status: int = _WORD.unpack_from(out, pos + 8)[0]
        replacement = statuses.get(status)
        if replacement is not None:
            _WORD.pack_into(out, pos + 8, replacement)
        pos += max(length, HEADER_SIZE)
    return bytes(out)


def unbind_resp_offset(data: bytes) -> int | None:
    """Where the first unbind_resp starts in whole encoded PDUs, or None without one."""
    pos = 0
    while len(data) - pos >= HEADER_SIZE:
        if _WORD.unpack_from(data, pos + 4)[0] == _UNBIND_RESP:
            return pos
        pos += max(_WORD.unpack_from(data, pos)[0], HEADER_SIZE)
    return None


class Host(Protocol):
    """What a session asks of the simulator."""

    def on_bind(self, session: SmppSession, pdu: BindTransmitter, now: float) -> Pdu: ...
    def on_submit(self, session: SmppSession, pdu: SubmitSm, now: float) -> Pdu | None: ...
    def on_other_request(self, session: SmppSession, pdu: Pdu, now: float) -> Pdu: ...
    def on_receiving(self, session: SmppSession, now: float) -> None: ...
    def on_deliver_resp(
        self, session: SmppSession, item: Outbound, response: Pdu, now: float
    ) -> None: ...
    def on_deliver_lost(self, session: SmppSession, item: Outbound, now: float) -> None: ...
    def on_deliver_unreadable(self, session: SmppSession, item: Outbound, now: float) -> None: ...
    def on_closed(self, session: SmppSession, now: float) -> None: ...
    def on_connected(self, session: SmppSession) -> None: ...
    def count(self, name: str) -> None: ...
    def random(self) -> float: ...


class SmppSession(asyncio.Protocol):
    """One SMPP connection of the simulator (role SMSC)."""

    def __init__(
        self,
        host: Host,
        session_id: int,
        make_connection: Callable[[float], Connection],
        faults: FaultView,
        *,
        tls: bool,
        statuses: Mapping[int, int] | None = None,
        inactivity_timeout: float | None = None,
        max_held: int = MAX_HELD,
    ) -> None:
        self.host = host
        self.session_id = session_id
        self.tls = tls
        self.faults = faults  #: global until bound, then the account's view
        self.system_id = ""
        self.system_type = ""
        self.flash = False
        self.bind_type: BindType | None = None
        #: from the bind; below 0x34 the peer is an SMPP 3.3 ESME and is sent no TLVs
        self.interface_version = INTERFACE_VERSION
        self.peer = ""
        self.submitted = 0
        self.pdus = 0  #: PDUs received while a fault switch was set (the drop faults' count)
        self._loop = asyncio.get_running_loop()
        self.conn: Connection = make_connection(self._loop.time())
        #: no whole PDU for this long closes the connection. Counted here from the frames the
        #: FrameCounter sees end, not by the Connection from octets: a peer trickling octets
        #: (one a second) must not hold a session, or its slot of the account, for ever.
        self.inactivity_timeout = inactivity_timeout
        self._last_pdu = self._loop.time()
        self.transport: asyncio.Transport | None = None
        self._statuses: Mapping[int, int] = statuses or {}  # SMPP status -> gateway's status
        self._frames = FrameCounter()
        self._auto = b""  # the Connection's own answers to the last read, not yet written
        self._patch = False  # _auto holds an answer whose status the profile replaces
        self._late: deque[tuple[float, bytes]] = deque()  # (due, bytes) held by the latency fault
        self._late_timer: asyncio.TimerHandle | None = None
        self._held = 0  # octets in _late
        #: past this many held octets reading pauses until they are written (bounded memory)
        self.max_held = max_held
        self._paused_by_peer = False  # the transport's buffer is full (pause_writing)
        self._paused_by_latency = False  # _late holds more than max_held octets
        self._outbound: dict[int, Outbound] = {}  # sequence_number -> deliver_sm in flight
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = float("inf")
        self._closing = False
        #: when our own unbind (shutdown) is due an answer; past it the connection is aborted
        self._unbind_deadline: float | None = None
        self._closed = False
        self.closed_event = asyncio.Event()

    # --- asyncio callbacks ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register with the host, set TCP_NODELAY, remember the peer, start the timers."""
        self.transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass it
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = f"{peer[0]}:{peer[1]}"
        now = self._loop.time()
        self.host.on_connected(self)
        self._arm(self._with_inactivity(self.conn.tick(now)))

    def data_received(self, data: bytes) -> None:
        """Feed the bytes, handle every event, write the answers in one go.

        While a fault switch is set, every PDU in the read counts for the drop faults; when
        one trips, only the PDUs before it are handled and the connection is aborted.
        """
        ends = self._frames.feed(data)
        if ends:
            self._last_pdu = self._loop.time()
        if ends and self.faults.any_active:
            cut = self._drop_cut(ends)
            if cut is not None:
                if cut:
                    self._feed(data[:cut])
                self.host.count("connections_dropped")
                self.abort()
                return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        now = self._loop.time()
        conn = self.conn
        conn.receive_data(data, now)
        self._auto = conn.data_to_send()  # what the Connection answered on its own
        self._process(now)

    def eof_received(self) -> bool | None:
        """The peer closed its side: the Connection reports it as closed."""
        now = self._loop.time()
        self.conn.receive_data(b"", now)
        self._process(now)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """The transport is gone: resend what was not acknowledged, forget the session."""
        now = self._loop.time()
        self._drop_late()
        self.conn.close("connection lost" if exc is None else f"connection lost: {exc}")
        self._drain_events(now)
        self._finish(now)

    def pause_writing(self) -> None:
        """The peer does not read: stop reading its requests until it does (bounded memory)."""
        self._paused_by_peer = True
        self._update_reading()

    def resume_writing(self) -> None:
        """The peer reads again."""
        self._paused_by_peer = False
        self._update_reading()

    def _update_reading(self) -> None:
        """Read from the socket only while neither the peer nor the latency fault holds us up.

        Two independent reasons pause reading (a full transport buffer, too much output held
        by the latency fault); reading resumes only when both are gone.
        """
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self._paused_by_peer or self._paused_by_latency:
            if transport.is_reading():
                transport.pause_reading()
        elif not transport.is_reading():
            transport.resume_reading()

    # --- state ------------------------------------------------------------------------

    @property
    def can_take(self) -> bool:
        """True when a deliver_sm may be sent now (receiving bind, window not full)."""
        conn = self.conn
        return conn.state in _RECEIVING and conn.window_free > 0 and not self._closing

    @property
    def outstanding(self) -> int:
        """deliver_sm sent and not yet answered."""
        return len(self._outbound)

    @property
    def held(self) -> int:
        """Octets of output the latency fault holds back (at most about ``max_held``)."""
        return self._held

    @property
    def smpp33(self) -> bool:
        """True when the peer bound with an interface_version below 0x34 (SMPP 3.3, no TLVs)."""
        return self.interface_version < INTERFACE_VERSION

    # --- sending ----------------------------------------------------------------------

    def send_outbound(self, item: Outbound, now: float) -> None:
        """Queue a deliver_sm (call :meth:`flush` after a batch); the caller checked can_take.

        An SMPP 3.3 peer gets it without TLVs (3.3 has none; the receipt text says it all).
        A receipt is made into its PDU with the Connection's next sequence_number at once,
        where the Connection would copy a PDU built beforehand to number it, and goes with
        the wire bytes it wrote (:meth:`Receipt.encode`) when it could.
        """
        conn = self.conn
        sequence_number = conn.take_sequence_number()
        pdu = item.pdu
        smpp33 = self.interface_version < INTERFACE_VERSION
        deliver_sm: Pdu
        if isinstance(pdu, Receipt):
            deliver_sm = pdu.deliver_sm(sequence_number, tlvs=not smpp33)
            conn.send(deliver_sm, now, encoded=pdu.encode(sequence_number, tlvs=not smpp33))
        else:
            if pdu.tlvs and smpp33:
                deliver_sm = replace(pdu, sequence_number=sequence_number, tlvs=())
            else:
                deliver_sm = with_sequence_number(pdu, sequence_number)
            conn.send(deliver_sm, now)
        self._outbound[sequence_number] = item
        self._arm(now + conn.response_timeout)

    def flush(self) -> None:
        """Write everything the Connection has queued (held back while latency is set).

        The Connection's own answers to the last read go first, except from an unbind_resp
        on: the simulator's answers to requests read before that unbind precede it, as the
        session ends with the unbind_resp.
        """
        data = self.conn.data_to_send()
        if self._auto:
            auto = self._auto
            self._auto = b""
            if self._patch:
                self._patch = False
                auto = patch_statuses(auto, self._statuses)
            cut = unbind_resp_offset(auto) if data else None
            data = auto + data if cut is None else auto[:cut] + data + auto[cut:]
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if data:
            latency = self.faults.latency() if self.faults.any_active else 0.0
            if latency > 0 or self._late:
                self._hold(data, latency)
            else:
                transport.write(data)
        if self._closing and not self._late:
            transport.close()

    def _hold(self, data: bytes, latency: float) -> None:
        """Write ``data`` ``latency`` s from now, never before what is already held (order).

        Past ``max_held`` held octets, reading pauses: the answers to one read (at most what
        one read of requests produces) and deliver_sm (at most a window) may still be added,
        nothing else until :meth:`_write_late` has written them.
        """
        due = self._loop.time() + latency
        if self._late:
            due = max(due, self._late[-1][0])
        self._late.append((due, data))
        self._held += len(data)
        if self._held > self.max_held and not self._paused_by_latency:
            self._paused_by_latency = True
            self._update_reading()
        if self._late_timer is None:
            self._late_timer = self._loop.call_at(self._late[0][0], self._write_late)

    def _write_late(self) -> None:
        """Write what the latency fault held and is now due; close if the session is ending."""
        self._late_timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            self._late.clear()
            self._held = 0
            return
        now = self._loop.time()
        late = self._late
        chunks: list[bytes] = []
        while late and late[0][0] <= now:
            chunks.append(late.popleft()[1])
        if chunks:
            data = b"".join(chunks)
            self._held -= len(data)
            transport.write(data)
        if self._paused_by_latency and self._held <= self.max_held // 2:
            self._paused_by_latency = False  # resume at half, not to pause again at once
            self._update_reading()
        if late:
            self._late_timer = self._loop.call_at(late[0][0], self._write_late)
        elif self._closing or self._closed:
            transport.close()

    def _drop_late(self) -> None:
        self._late.clear()
        self._held = 0
        if self._late_timer is not None:
            self._late_timer.cancel()
            self._late_timer = None

    def unbind(self) -> None:
        """Start an orderly close from the SMSC side (shutdown)."""
        now = self._loop.time()
        if self.conn.state.is_bound:
            try:
                self.conn.send(Unbind(), now)
            except LocalProtocolError:
                self._closing = True
            else:
                self._unbind_deadline = now + self.conn.response_timeout
            self.flush()
            self._arm(now + self.conn.response_timeout)
        else:
            self._closing = True
            self.flush()

    def abort(self) -> None:
        """Drop the connection abruptly (fault injection, shutdown after the grace period)."""
        self._closing = True
        self._drop_late()
        if self.transport is not None:
            self.transport.abort()

    def respond(self, pdu: Pdu, now: float, *, then_close: bool = False) -> None:
        """Queue a response (the latency fault applies when it is written, see :meth:`flush`)."""
        if self.conn.state is not _CLOSED:
            try:
                self.conn.send(pdu, now)
            except LocalProtocolError:
                return
            if isinstance(pdu, _RECEIVING_RESPS) and pdu.command_status == 0:
                self.host.on_receiving(self, now)
        if then_close:
            self._closing = True

    # --- events -----------------------------------------------------------------------

    def _process(self, now: float) -> None:
        self._drain_events(now)
        self.flush()
        if self.conn.state is _CLOSED:
            self._finish(now)

    def _drain_events(self, now: float) -> None:
        conn = self.conn
        host = self.host
        while (event := conn.next_event()) is not None:
            if type(event) is RequestReceived:
                pdu = event.pdu
                if type(pdu) is SubmitSm:
                    self.submitted += 1
                    answer = host.on_submit(self, pdu, now)
                    # respond() inlined: a submit_sm_resp is no bind_resp, and is not sent
                    # once the connection is closed
                    if answer is not None and conn.state is not _CLOSED:
                        try:  # noqa: SIM105 - cheaper than contextlib.suppress, per message
                            conn.send(answer, now)
                        except LocalProtocolError:
                            pass
                elif isinstance(pdu, _BINDS):
                    if self._closing:
                        continue  # after a refused bind: the rest of its read goes unheard
                    bound = self.bind_type is not None
                    answer = host.on_bind(self, pdu, now)  # type: ignore[arg-type]
                    # a refused bind closes the connection, unless it was bound already
                    # (ESME_RALYBND): the bind it has stays usable
                    self.respond(answer, now, then_close=answer.command_status != 0 and not bound)
                else:
                    self.respond(host.on_other_request(self, pdu, now), now)
            elif type(event) is ResponseReceived:
                item = self._outbound.pop(event.request.sequence_number, None)
                if item is not None:
                    host.on_deliver_resp(self, item, event.response, now)
            elif type(event) is RequestExpired:
                item = self._outbound.pop(event.request.sequence_number, None)
                if item is not None:
                    host.on_deliver_lost(self, item, now)
            elif type(event) is PduRejected:
                host.count("pdus_rejected")
                request = event.request
                if request is not None:  # an undecodable deliver_sm_resp: the Connection
                    # dropped its deliver_sm from the window; without this it stays in flight
                    item = self._outbound.pop(request.sequence_number, None)
                    if item is not None:
                        host.on_deliver_unreadable(self, item, now)
                answer = event.answer
                if answer is not None and answer.command_status in self._statuses:
                    self._patch = True
                if event.error.command_id in _BIND_IDS and self.bind_type is None:
                    # a bind the codec refused (a 70-character password...) ends the
                    # connection like one on_bind refuses, once its answer is written
                    host.count("binds_refused")
                    self._closing = True
            elif type(event) is Unbound:
                self._closing = True
                if not event.by_peer:
                    self._unbind_deadline = None  # our unbind was answered
                host.on_closed(self, now)
            elif type(event) is ConnectionClosed:
                self._closing = True

    def _drop_cut(self, ends: list[int]) -> int | None:
        """Count the PDUs ending at ``ends``; where to cut the read if a drop fault trips.

        Returns the offset just past the last PDU to handle (0: none), or None to keep all.
        """
        faults = self.faults
        limit = faults.drop_after()
        chance = faults.drop_probability()
        previous = 0
        for end in ends:
            self.pdus += 1
            if (limit is not None and self.pdus > limit) or (
                chance > 0 and self.host.random() < chance
            ):
                return previous
            previous = end
        return None

    # --- timers -----------------------------------------------------------------------

    def _arm(self, due: float | None) -> None:
        if due is None or due >= self._timer_due or self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = self._loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_due = float("inf")
        if self._closed:
            return
        now = self._loop.time()
        due = self.conn.tick(now)
        timeout = self.inactivity_timeout
        if (
            timeout is not None
            and now >= self._last_pdu + timeout
            and self.conn.state is not _CLOSED
        ):
            self.conn.close(f"no PDU received for {timeout:g} s")
        self._process(now)
        deadline = self._unbind_deadline
        if deadline is not None and now >= deadline and self.conn.state is _UNBOUND:
            # Our unbind got no unbind_resp in time. Not after the peer's unbind: that
            # session is UNBOUND too, and its unbind_resp may still be held (latency fault).
            self.abort()
            return
        self._arm(self._with_inactivity(due))

    def _with_inactivity(self, due: float | None) -> float | None:
        """``due``, or the inactivity deadline when that comes first."""
        if self.inactivity_timeout is None:
            return due
        deadline = self._last_pdu + self.inactivity_timeout
        return deadline if due is None else min(due, deadline)

    def _finish(self, now: float) -> None:
        """Once: stop timers, close the transport, resend unacknowledged deliver_sm.

        Output the latency fault still holds is written first (the transport is closed
        after it).
        """
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self.transport
        if transport is not None and not transport.is_closing() and not self._late:
            transport.close()
        self.host.on_closed(self, now)
        lost = list(self._outbound.values())
        self._outbound.clear()
        for item in lost:
            self.host.on_deliver_lost(self, item, now)
        self.closed_event.set()


def nack(pdu: Pdu, status: int = CommandStatus.ESME_RINVCMDID) -> GenericNack:
    """generic_nack for a request the gateway does not support."""
    return GenericNack(sequence_number=pdu.sequence_number, command_status=status)


__all__ = [
    "FrameCounter",
    "Host",
    "SmppSession",
    "nack",
    "patch_statuses",
    "unbind_resp_offset",
]
