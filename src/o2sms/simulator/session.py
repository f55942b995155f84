"""One accepted SMPP connection: an asyncio Protocol moving bytes and time into a sans-IO Connection.

All protocol rules live in :class:`o2sms.smpp.connection.Connection` (role SMSC): state table,
enquire_link, unbind, undecodable frames, timers. This class only feeds it what the socket read
(``data_received`` is the reader), writes what it produced once per read or batch, calls
``tick`` at the deadline it asked for, and hands requests to the :class:`Host` (the simulator)
for the decisions that need accounts: binds, submit_sm, deliver_sm responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Protocol

from o2sms.simulator.delivery import Outbound
from o2sms.simulator.faults import FaultView
from o2sms.smpp.connection import (
    Connection,
    ConnectionClosed,
    PduRejected,
    RequestExpired,
    RequestReceived,
    ResponseReceived,
    Unbound,
)
from o2sms.smpp.constants import CommandStatus
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
_RECEIVING = frozenset({SessionState.BOUND_RX, SessionState.BOUND_TRX})
_RECEIVING_RESPS = (BindReceiverResp, BindTransceiverResp)


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
    def on_closed(self, session: SmppSession, now: float) -> None: ...
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
    ) -> None:
        self.host = host
        self.session_id = session_id
        self.tls = tls
        self.faults = faults  #: global until bound, then the account's view
        self.system_id = ""
        self.system_type = ""
        self.flash = False
        self.bind_type: BindType | None = None
        self.peer = ""
        self.submitted = 0
        self.pdus = 0
        self._loop = asyncio.get_running_loop()
        self.conn: Connection = make_connection(self._loop.time())
        self.transport: asyncio.Transport | None = None
        self._outbound: dict[int, Outbound] = {}  # sequence_number -> deliver_sm in flight
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = float("inf")
        self._closing = False
        self._closed = False
        self.closed_event = asyncio.Event()

    # --- asyncio callbacks ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Set TCP_NODELAY, remember the peer, start the session-init timer."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = f"{peer[0]}:{peer[1]}"
        now = self._loop.time()
        self._arm(self.conn.tick(now))

    def data_received(self, data: bytes) -> None:
        """Feed the bytes, handle every event, write the answers in one go."""
        now = self._loop.time()
        self.conn.receive_data(data, now)
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
        self.conn.close("connection lost" if exc is None else f"connection lost: {exc}")
        self._drain_events(now)
        self._finish(now)

    def pause_writing(self) -> None:
        """The peer does not read: stop reading its requests until it does (bounded memory)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        """The peer reads again."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

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

    # --- sending ----------------------------------------------------------------------

    def send_outbound(self, item: Outbound, now: float) -> None:
        """Queue a deliver_sm (call :meth:`flush` after a batch); the caller checked can_take."""
        sent = self.conn.send(item.pdu, now)
        self._outbound[sent.sequence_number] = item
        self._arm(now + self.conn.response_timeout)

    def flush(self) -> None:
        """Write everything the Connection has queued."""
        data = self.conn.data_to_send()
        transport = self.transport
        if data and transport is not None and not transport.is_closing():
            transport.write(data)
        if self._closing and transport is not None and not transport.is_closing():
            transport.close()

    def unbind(self) -> None:
        """Start an orderly close from the SMSC side (shutdown)."""
        now = self._loop.time()
        if self.conn.state.is_bound:
            try:
                self.conn.send(Unbind(), now)
            except LocalProtocolError:
                self._closing = True
            self.flush()
            self._arm(now + self.conn.response_timeout)
        else:
            self._closing = True
            self.flush()

    def abort(self) -> None:
        """Drop the connection abruptly (fault injection, shutdown after the grace period)."""
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    def respond(self, pdu: Pdu, now: float, *, then_close: bool = False) -> None:
        """Send a response, after the configured latency if any."""
        latency = self.faults.latency() if self.faults.any_active else 0.0
        if latency > 0:
            self._loop.call_later(latency, self._respond_late, pdu, then_close)
            return
        self._send_response(pdu, now)
        if then_close:
            self._closing = True

    def _respond_late(self, pdu: Pdu, then_close: bool) -> None:
        if self._closed:
            return
        now = self._loop.time()
        self._send_response(pdu, now)
        if then_close:
            self._closing = True
        self._process(now)

    def _send_response(self, pdu: Pdu, now: float) -> None:
        if self.conn.state is SessionState.CLOSED:
            return
        try:
            self.conn.send(pdu, now)
        except LocalProtocolError:
            return
        if isinstance(pdu, _RECEIVING_RESPS) and pdu.command_status == 0:
            self.host.on_receiving(self, now)

    # --- events -----------------------------------------------------------------------

    def _process(self, now: float) -> None:
        self._drain_events(now)
        self.flush()
        if self.conn.state is SessionState.CLOSED:
            self._finish(now)

    def _drain_events(self, now: float) -> None:
        conn = self.conn
        host = self.host
        while (event := conn.next_event()) is not None:
            if type(event) is RequestReceived:
                pdu = event.pdu
                if self.faults.any_active and self._drop_now():
                    return
                if type(pdu) is SubmitSm:
                    self.submitted += 1
                    answer = host.on_submit(self, pdu, now)
                    if answer is not None:
                        self.respond(answer, now)
                elif isinstance(pdu, _BINDS):
                    answer = host.on_bind(self, pdu, now)  # type: ignore[arg-type]
                    self.respond(answer, now, then_close=answer.command_status != 0)
                else:
                    self.respond(host.on_other_request(self, pdu, now), now)
            elif type(event) is ResponseReceived:
                if self.faults.any_active and self._drop_now():
                    return
                item = self._outbound.pop(event.request.sequence_number, None)
                if item is not None:
                    host.on_deliver_resp(self, item, event.response, now)
            elif type(event) is RequestExpired:
                item = self._outbound.pop(event.request.sequence_number, None)
                if item is not None:
                    host.on_deliver_lost(self, item, now)
            elif type(event) is PduRejected:
                host.count("pdus_rejected")
                if self.faults.any_active and self._drop_now():
                    return
            elif type(event) is Unbound:
                self._closing = True
                host.on_closed(self, now)
            elif type(event) is ConnectionClosed:
                self._closing = True

    def _drop_now(self) -> bool:
        """Count a received PDU; True (and the connection aborted) when a drop fault fires."""
        self.pdus += 1
        limit = self.faults.drop_after()
        chance = self.faults.drop_probability()
        if (limit is not None and self.pdus > limit) or (
            chance > 0 and self.host.random() < chance
        ):
            self.host.count("connections_dropped")
            self.abort()
            return True
        return False

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
        self._process(now)
        if self._closing and self.conn.state is SessionState.UNBOUND:
            self.abort()  # our unbind got no unbind_resp in time
            return
        self._arm(due)

    def _finish(self, now: float) -> None:
        """Once: stop timers, close the transport, resend unacknowledged deliver_sm."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.host.on_closed(self, now)
        lost = list(self._outbound.values())
        self._outbound.clear()
        for item in lost:
            self.host.on_deliver_lost(self, item, now)
        self.closed_event.set()


def nack(pdu: Pdu, status: int = CommandStatus.ESME_RINVCMDID) -> GenericNack:
    """generic_nack for a request the gateway does not support."""
    return GenericNack(sequence_number=pdu.sequence_number, command_status=status)


__all__ = ["Host", "SmppSession", "nack"]
