"""The SMPP session as a sans-IO state machine: bytes and time in, events and bytes out.

Like h11's ``Connection``, it owns no socket and reads no clock. The I/O layer calls
:meth:`Connection.receive_data` with what the socket read, takes :meth:`Connection.next_event`
until it returns None, writes :meth:`Connection.data_to_send`, and calls
:meth:`Connection.tick` at the deadline it returned. The connection answers on its own what
needs no application decision: enquire_link, the peer's unbind, PDUs that break the rules in
:mod:`o2sms.smpp.state`, and undecodable frames; it numbers requests, keeps the window of
outstanding ones with their deadlines, and sends enquire_link when the link is idle.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from o2sms.fastinit import fast_init
from o2sms.smpp.codec import HEADER, encode, with_sequence_number
from o2sms.smpp.constants import RESPONSE_BIT, CommandId, CommandStatus
from o2sms.smpp.errors import FramingError, LocalProtocolError, PduError, WindowFullError
from o2sms.smpp.framer import DEFAULT_MAX_COMMAND_LENGTH, Framer
from o2sms.smpp.pdu import (
    PDU_CLASSES,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    UnbindResp,
)
from o2sms.smpp.state import BIND_RESPONSES, BOUND_STATE, BindType, Role, SessionState, may_send

MAX_SEQUENCE_NUMBER: Final = 0x7FFFFFFF

# Enum members the per-PDU paths compare with, as module constants: on Python 3.11 reading
# one off its class goes through EnumType.__getattr__'s slow hook (about 0.2 µs each).
_OPEN: Final = SessionState.OPEN
_UNBOUND: Final = SessionState.UNBOUND
_CLOSED: Final = SessionState.CLOSED
_UNBIND: Final = CommandId.UNBIND
_ENQUIRE_LINK: Final = CommandId.ENQUIRE_LINK
_GENERIC_NACK: Final = CommandId.GENERIC_NACK
_RINVCMDLEN: Final = CommandStatus.ESME_RINVCMDLEN

_CLASS_BY_ID: Final = {int(cls.command_id): cls for cls in PDU_CLASSES}
_BINDS: Final = frozenset(int(bind_type.value) for bind_type in BindType)


# --- events ----------------------------------------------------------------------------


@fast_init
@dataclass(frozen=True, slots=True)
class RequestReceived:
    """The peer sent a request the application must answer with ``conn.send(pdu.response())``.

    Each is answered once, even when the peer reused the sequence_number of one still unanswered.
    """

    pdu: Pdu


@fast_init
@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The answer to one of our requests (a generic_nack counts as one)."""

    request: Pdu
    response: Pdu


@dataclass(frozen=True, slots=True)
class RequestExpired:
    """No response to ``request`` within the response timeout; it is no longer outstanding."""

    request: Pdu


@dataclass(frozen=True, slots=True)
class UnexpectedResponse:
    """A response whose sequence_number matches nothing outstanding: log it and drop it."""

    pdu: Pdu


@dataclass(frozen=True, slots=True)
class PduRejected:
    """The peer sent a PDU that broke the rules; it was answered with ``answer``.

    ``request`` is our outstanding request when the bad PDU was its (undecodable) response.
    """

    error: PduError
    answer: Pdu | None
    request: Pdu | None = None


@dataclass(frozen=True, slots=True)
class Unbound:
    """The session ended by unbind: the peer's (answered already) or ours (acknowledged)."""

    by_peer: bool


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The connection is over; close the transport. ``unanswered`` requests never got a response."""

    reason: str
    unanswered: tuple[Pdu, ...] = ()


Event = (
    RequestReceived
    | ResponseReceived
    | RequestExpired
    | UnexpectedResponse
    | PduRejected
    | Unbound
    | ConnectionClosed
)


# --- the connection --------------------------------------------------------------------


class Connection:
    """One SMPP session seen from one end (``role``)."""

    def __init__(
        self,
        role: Role,
        *,
        window: int = 10,
        response_timeout: float = 30.0,
        enquire_link_interval: float | None = 25.0,
        inactivity_timeout: float | None = None,
        session_init_timeout: float | None = None,
        max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH,
        now: float = 0.0,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        if enquire_link_interval is not None and enquire_link_interval <= 0:
            raise ValueError("enquire_link_interval must be positive (None: no keepalive)")
        self.role = role
        self.window = window
        self.response_timeout = response_timeout
        self.enquire_link_interval = enquire_link_interval
        self.inactivity_timeout = inactivity_timeout
        self.session_init_timeout = session_init_timeout
        self.state = SessionState.OPEN
        self.bind_type: BindType | None = None
        self._framer = Framer(max_command_length)
        self._events: deque[Event] = deque()
        self._outgoing: list[bytes] = []
        # sequence_number -> (request, deadline); deadlines grow with insertion order.
        self._in_flight: dict[int, tuple[Pdu, float]] = {}
        # sequence_number -> command_id of peer requests we still have to answer
        self._to_answer: dict[int, int] = {}
        # sequence_number -> command_ids of more requests the peer sent with a sequence_number
        # still in _to_answer (a peer bug, but each of them is still owed its response)
        self._to_answer_again: dict[int, list[int]] = {}
        self._next_sequence_number = 1
        self._keepalive = 0  # sequence_number of our last automatic enquire_link
        self._opened_at = now
        self._last_sent = now
        self._last_received = now

    # --- reading state ------------------------------------------------------------

    @property
    def outstanding(self) -> int:
        """Our requests sent and not yet answered."""
        return len(self._in_flight)

    @property
    def window_free(self) -> int:
        """How many more requests may be sent before the window is full."""
        return self.window - len(self._in_flight)

    def outstanding_requests(self) -> tuple[Pdu, ...]:
        """Our unanswered requests, oldest first."""
        return tuple(request for request, _ in self._in_flight.values())

    # --- sending ------------------------------------------------------------------

    def send(self, pdu: Pdu, now: float, *, encoded: bytes | None = None) -> Pdu:
        """Queue a PDU for sending and return it as sent (requests get their sequence_number).

        Raises LocalProtocolError when the PDU may not be sent now, WindowFullError when the
        window of outstanding requests is full, PduEncodeError for values off the spec; after
        any of these the connection is as it was.

        ``encoded``: the wire bytes of a request numbered already (its sequence_number not 0),
        for a caller that writes them faster than :func:`encode` can for its kind of PDU (the
        simulator's receipts); they are sent as they are, so they must be what :func:`encode`
        makes of ``pdu``; their header must say so (length, command_id, status 0 and the
        sequence_number). Checked and windowed like any request.
        """
        if self.state is _CLOSED:
            raise LocalProtocolError("the connection is closed")
        command_id = pdu.command_id
        if command_id & RESPONSE_BIT:
            if encoded is not None:
                raise LocalProtocolError("encoded bytes come with a numbered request only")
            self._check_response(pdu)
            data = encode(pdu)
            if self._to_answer_again and pdu.sequence_number in self._to_answer_again:
                self._answered_again(pdu)
            else:
                self._to_answer.pop(pdu.sequence_number, None)
            bind_type = BIND_RESPONSES.get(command_id)
            if bind_type is not None and pdu.command_status == 0 and self.state is _OPEN:
                self.bind_type = bind_type
                self.state = BOUND_STATE[bind_type]
        else:
            if encoded is not None:
                if pdu.sequence_number == 0:
                    raise LocalProtocolError("encoded bytes come with a numbered request only")
                if encoded[:16] != HEADER.pack(len(encoded), command_id, 0, pdu.sequence_number):
                    raise LocalProtocolError("encoded bytes' header does not match the PDU")
            pdu = self._number_request(pdu)
            data = encode(pdu) if encoded is None else encoded
            if pdu.response_class is not None:
                self._in_flight[pdu.sequence_number] = (pdu, now + self.response_timeout)
            if command_id == _UNBIND:
                self.state = _UNBOUND
        self._outgoing.append(data)
        self._last_sent = now
        return pdu

    def _number_request(self, pdu: Pdu) -> Pdu:
        """Check that the request may go now and give it its sequence_number."""
        command_id = pdu.command_id
        if not may_send(self.role, command_id, self.state):
            raise LocalProtocolError(
                f"{command_id.name.lower()} may not be sent by the {self.role.value} "
                f"in state {self.state.value}"
            )
        # outbind and alert_notification get no response: numbered like any request (never 0,
        # reference section 9), but they take no room in the window and are never outstanding.
        answered = pdu.response_class is not None
        if answered and len(self._in_flight) >= self.window:
            raise WindowFullError(
                f"{len(self._in_flight)} requests outstanding, window {self.window}"
            )
        sequence_number = pdu.sequence_number
        if sequence_number == 0:
            return with_sequence_number(pdu, self.take_sequence_number())
        if not 1 <= sequence_number <= MAX_SEQUENCE_NUMBER:
            raise LocalProtocolError(f"sequence_number {sequence_number} is outside 1..0x7FFFFFFF")
        if answered and sequence_number in self._in_flight:
            raise LocalProtocolError(f"sequence_number {sequence_number} is already outstanding")
        return pdu

    def take_sequence_number(self) -> int:
        """The sequence_number of the next request, taken now (never one still outstanding).

        For a caller that builds its request already numbered, which :meth:`send` then sends
        as it is instead of copying it to number it. A number taken and not sent is skipped.
        """
        sequence_number = self._next_sequence_number
        while sequence_number in self._in_flight:  # only after a wrap with a stuck request
            sequence_number = sequence_number % MAX_SEQUENCE_NUMBER + 1
        self._next_sequence_number = sequence_number % MAX_SEQUENCE_NUMBER + 1
        return sequence_number

    def _check_response(self, pdu: Pdu) -> None:
        """Refuse a response that answers no request of the peer still waiting for one."""
        if pdu.command_id == _GENERIC_NACK:
            return
        request_id = self._to_answer.get(pdu.sequence_number)
        if (request_id is None or request_id | RESPONSE_BIT != pdu.command_id) and (
            pdu.command_id ^ RESPONSE_BIT not in self._to_answer_again.get(pdu.sequence_number, ())
        ):
            raise LocalProtocolError(
                f"{pdu.command_id.name.lower()} sequence_number {pdu.sequence_number} "
                "answers no request of the peer"
            )

    def _answered_again(self, pdu: Pdu) -> None:
        """Take the request ``pdu`` answers off the several the peer sent with its sequence_number.

        The one of the response's type goes, the oldest for a generic_nack; the others still
        wait, so each request the peer sent gets its own response.
        """
        sequence_number = pdu.sequence_number
        waiting = [self._to_answer[sequence_number], *self._to_answer_again.pop(sequence_number)]
        request_id = pdu.command_id ^ RESPONSE_BIT
        waiting.remove(request_id if request_id in waiting else waiting[0])
        self._to_answer[sequence_number] = waiting[0]
        if len(waiting) > 1:
            self._to_answer_again[sequence_number] = waiting[1:]

    def data_to_send(self) -> bytes:
        """Every byte queued since the last call, to write to the transport."""
        if not self._outgoing:
            return b""
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        return data

    def close(self, reason: str = "closed locally") -> None:
        """End the connection now; a ConnectionClosed event lists the unanswered requests."""
        if self.state is not SessionState.CLOSED:
            self._close(reason)

    # --- receiving ----------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Take bytes read from the transport; ``b""`` means the peer closed it."""
        if self.state is _CLOSED:
            return
        if not data:
            self._close("the peer closed the connection")
            return
        self._last_received = now
        framer = self._framer
        try:
            framer.feed(data)
            while True:
                try:
                    for pdu in framer:
                        self._handle(pdu)
                    return
                except FramingError:
                    raise
                except PduError as error:
                    self._reject(error)
        except FramingError as error:
            self._reject(error)
            self._close(f"unframeable stream: {error.message}")

    def next_event(self) -> Event | None:
        """The next event, or None when all input so far is handled."""
        return self._events.popleft() if self._events else None

    def _handle(self, pdu: Pdu) -> None:
        command_id = pdu.command_id
        if command_id & RESPONSE_BIT:
            self._handle_response(pdu)
            return
        if command_id == _UNBIND and self.state is _UNBOUND:
            # Both ends unbound at once: answer theirs; ours is answered too, or times out.
            self._answer(UnbindResp(sequence_number=pdu.sequence_number))
            return
        if self.state is _UNBOUND or not may_send(self.role.peer, command_id, self.state):
            status = (
                CommandStatus.ESME_RALYBND
                if command_id in _BINDS and self.state.is_bound
                else CommandStatus.ESME_RINVBNDSTS
            )
            self._refuse(pdu, status, f"is not allowed in state {self.state.value}")
            return
        if self.state is _OPEN and command_id in _BINDS and self._bind_pending():
            # State rule 2: the first bind decides; OPEN until its bind_resp goes out.
            self._refuse(pdu, CommandStatus.ESME_RALYBND, "arrived before the bind_resp")
            return
        if command_id == _ENQUIRE_LINK:
            self._answer(EnquireLinkResp(sequence_number=pdu.sequence_number))
            return
        if command_id == _UNBIND:
            self._answer(UnbindResp(sequence_number=pdu.sequence_number))
            self.state = _UNBOUND
            self._events.append(Unbound(by_peer=True))
            return
        if pdu.response_class is not None:
            sequence_number = pdu.sequence_number
            if sequence_number in self._to_answer:
                self._to_answer_again.setdefault(sequence_number, []).append(command_id)
            else:
                self._to_answer[sequence_number] = command_id
        self._events.append(RequestReceived(pdu))

    def _bind_pending(self) -> bool:
        """True when the peer's bind was received and our bind_resp is not sent yet."""
        return any(request_id in _BINDS for request_id in self._to_answer.values())

    def _refuse(self, pdu: Pdu, status: int, why: str) -> None:
        """Answer a well-formed request the session rules forbid now with ``status``."""
        command_id = pdu.command_id
        error = PduError(
            f"{command_id.name.lower()} {why}",
            command_status=status,
            sequence_number=pdu.sequence_number,
            command_id=command_id,
        )
        self._reject(error)

    def _handle_response(self, pdu: Pdu) -> None:
        entry = self._in_flight.get(pdu.sequence_number)
        if entry is None:
            self._events.append(UnexpectedResponse(pdu))
            return
        request = entry[0]
        expected = request.response_class
        if expected is not None and pdu.command_id not in (
            expected.command_id,
            _GENERIC_NACK,
        ):
            self._events.append(UnexpectedResponse(pdu))
            return
        del self._in_flight[pdu.sequence_number]
        request_id = request.command_id
        if (
            request_id in _BINDS
            and pdu.command_status == 0
            and pdu.command_id != _GENERIC_NACK  # a negative acknowledgement never binds
            and self.state is _OPEN
        ):
            self.bind_type = BindType(request_id)
            self.state = BOUND_STATE[self.bind_type]
        self._events.append(ResponseReceived(request, pdu))
        if request_id == _UNBIND:
            self._events.append(Unbound(by_peer=False))

    def _answer(self, pdu: Pdu) -> None:
        self._outgoing.append(encode(pdu))

    def _reject(self, error: PduError) -> None:
        """Answer a bad PDU as SMPP 3.4 section 3 says, and report it.

        A request of a known command_id gets its own response with the error status, except a
        bad command_length (ESME_RINVCMDLEN: the frame is cut short), which gets generic_nack
        like an unknown command_id or an unframeable stream. A response is never answered: a
        bad one of the type its request expects (or a bad generic_nack) fails that request;
        one of another type, or whose command_id is unknown, answers no request we sent, so it
        is dropped and the requests in flight are left alone.
        """
        # The event outlives the read: a traceback would keep every frame of the decoder alive,
        # and with them the framer's copy of the whole read.
        error.with_traceback(None)
        command_id = error.command_id
        sequence_number = error.sequence_number or 0
        cls = _CLASS_BY_ID.get(command_id) if command_id is not None else None
        request: Pdu | None = None
        answer: Pdu | None = None
        if command_id is not None and command_id & RESPONSE_BIT:
            # generic_nack included: it is never answered. Only a response of the type our
            # request expects (or generic_nack) fails it; any other is unexpected, as in
            # _handle_response, and leaves the request outstanding.
            entry = self._in_flight.get(sequence_number) if cls is not None else None
            if entry is not None and (
                command_id == entry[0].command_id | RESPONSE_BIT or command_id == _GENERIC_NACK
            ):
                del self._in_flight[sequence_number]
                request = entry[0]
        elif cls is None or command_id is None:
            answer = GenericNack(
                sequence_number=sequence_number, command_status=error.command_status
            )
        else:
            response_class = cls.response_class
            if response_class is None or error.command_status == _RINVCMDLEN:
                response_class = GenericNack
            answer = response_class(
                sequence_number=sequence_number, command_status=error.command_status
            )
        if answer is not None:
            self._answer(answer)
        self._events.append(PduRejected(error, answer, request))

    # --- time ---------------------------------------------------------------------

    def tick(self, now: float) -> float | None:
        """Expire overdue requests, send a due enquire_link, close on timeouts.

        Returns when to call again (None when nothing is scheduled).
        """
        if self.state is SessionState.CLOSED:
            return None
        in_flight = self._in_flight
        while in_flight:
            sequence_number, (request, deadline) = next(iter(in_flight.items()))
            if deadline > now:
                break
            del in_flight[sequence_number]
            self._events.append(RequestExpired(request))
        deadlines: list[float] = []
        if in_flight:
            deadlines.append(next(iter(in_flight.values()))[1])
        if self.state is SessionState.OPEN and self.session_init_timeout is not None:
            due = self._opened_at + self.session_init_timeout
            if now >= due:
                self._close(f"no bind within {self.session_init_timeout:g} s")
                return None
            deadlines.append(due)
        if self.inactivity_timeout is not None:
            due = self._last_received + self.inactivity_timeout
            if now >= due:
                self._close(f"no PDU received for {self.inactivity_timeout:g} s")
                return None
            deadlines.append(due)
        if (
            self.enquire_link_interval is not None
            and self.state.is_bound
            and self._keepalive not in in_flight
        ):
            due = min(self._last_sent, self._last_received) + self.enquire_link_interval
            if now < due:
                deadlines.append(due)
            elif self.window_free > 0:
                self._keepalive = self.send(EnquireLink(), now).sequence_number
                deadlines.append(now + self.response_timeout)
            # else: the window is full of requests whose own deadlines probe the link
        if (
            self.enquire_link_interval is not None
            and in_flight
            and (self.state is _OPEN or self.state.is_bound)
        ):
            # An answer (the bind_resp, the last enquire_link_resp) can bring the keepalive
            # forward to before the response deadlines above: look again within an interval.
            deadlines.append(now + self.enquire_link_interval)
        return min(deadlines) if deadlines else None

    def _close(self, reason: str) -> None:
        unanswered = self.outstanding_requests()
        self._in_flight.clear()
        self.state = SessionState.CLOSED
        self._events.append(ConnectionClosed(reason, unanswered))


__all__ = [
    "Connection",
    "ConnectionClosed",
    "Event",
    "PduRejected",
    "RequestExpired",
    "RequestReceived",
    "ResponseReceived",
    "Unbound",
    "UnexpectedResponse",
]
