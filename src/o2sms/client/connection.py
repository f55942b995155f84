"""One socket driving one sans-IO :class:`o2sms.smpp.connection.Connection`.

The protocol object moves bytes between the transport and the state machine, turns responses
into results of the futures that :meth:`SmppProtocol.request` awaits, runs the state machine's
timers on the event loop, and hands inbound requests (deliver_sm) to the application's handler,
answering each only after the handler returned.

Requests that wait in the protocol's queue (the window is full) have not reached the wire: when
the connection closes or the SMSC unbinds first they fail with :class:`NotSentError`, which the
pool answers by sending them on another session, while requests already on the wire fail with
:class:`ConnectionLost` (the SMSC may have them). :meth:`SmppProtocol.drain` is the first half of
a graceful close: no more inbound work is taken, running handlers and outstanding requests get
a bounded time to finish.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, cast

from o2sms.client.errors import (
    BACKOFF_STATUSES,
    ClientError,
    ConnectionLost,
    EventNotConfirmedError,
    NotSentError,
    ResponseTimeout,
    SubmitError,
    UnreadableResponse,
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
from o2sms.smpp.errors import LocalProtocolError, PduEncodeError
from o2sms.smpp.pdu import Pdu, Unbind
from o2sms.smpp.state import SessionState

log = logging.getLogger("o2sms.client")

# Enum members of the per-PDU paths as module constants: on Python 3.11 reading one off its
# class goes through EnumType.__getattr__'s slow hook.
_GENERIC_NACK: Final = CommandId.GENERIC_NACK
_INBOUND_COMMANDS: Final = (CommandId.DELIVER_SM, CommandId.DATA_SM)
_CLOSED: Final = SessionState.CLOSED

_UNMATCHED_LOG_INTERVAL: Final = 1.0  #: seconds between warnings about unmatched responses

InboundHandler = Callable[[Pdu], Awaitable[int]]
"""Handles an inbound request (deliver_sm, data_sm) and returns the command_status to answer."""
InboundAnswer = Callable[[Pdu, int | BaseException], None]
"""Answers one inbound request with a command_status, or with ESME_RX_T_APPN for an error (the
SMSC delivers that one again); a request is answered once, later calls are ignored."""
InboundBatchHandler = Callable[[list[Pdu], InboundAnswer], Awaitable[None]]
"""Handles the inbound requests of one read together, answering each through the callback as
soon as it is done with it (see SmppProtocol)."""


class RefillGate:
    """Holds window refills from a "slow down" answer (ESME_RTHROTTLED, ESME_RMSGQFUL) until the
    task waiting for it has run, for every session that shares it: a pool's sessions share one.

    The pool decides a pause when the task waiting for such an answer reads it, and then takes
    back what waits for the windows. A slot freed in the meantime, on that session or another,
    would send a queued request into the pause; those refills run after the readers instead.
    """

    def __init__(self) -> None:
        #: True from a slow-down answer until its reader has run (read on every response)
        self.held = False
        self._handle: asyncio.Handle | None = None
        self._waiting: dict[SmppProtocol, None] = {}  # an ordered set

    def hold(self, loop: asyncio.AbstractEventLoop) -> None:
        """A slow-down answer was just handed to its reader: open right after that reader."""
        if self._handle is not None:
            self._handle.cancel()  # open after this answer's reader too
        self.held = True
        self._handle = loop.call_soon(self._open)

    def wait(self, protocol: SmppProtocol) -> None:
        """Refill ``protocol``'s window when the gate opens."""
        self._waiting[protocol] = None

    def _open(self) -> None:
        self.held = False
        self._handle = None
        waiting, self._waiting = self._waiting, {}
        for protocol in waiting:
            try:
                protocol.refill()
            except Exception:  # a bug in one session must not leave the others' queues stuck
                log.exception("%s: cannot refill the window", protocol.name)


class SmppProtocol(asyncio.Protocol):
    """asyncio protocol for one SMPP connection (ESME side).

    Inbound requests go to ``on_inbound`` one by one, on ``inbound_concurrency`` worker tasks;
    or, given ``on_inbound_batch``, those of one read to it together, on one task (at most
    ``inbound_concurrency`` requests in hand at once either way): one task wake-up, not one per
    request. Each request is answered once its handler is done with it; one the batch handler
    left unanswered when it returned or raised gets ESME_RX_T_APPN.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        on_inbound: InboundHandler | None = None,
        on_inbound_batch: InboundBatchHandler | None = None,
        inbound_concurrency: int = 8,
        name: str = "smpp",
        refill_gate: RefillGate | None = None,
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
        # Slots freed just after a "slow down" answer wait until the pool has read it.
        self._gate = refill_gate if refill_gate is not None else RefillGate()
        self._timer: asyncio.TimerHandle | None = None
        self._flush_scheduled = False
        self._aborted = ""  # why abort() ended the connection: the reason it closed with
        self._unbound_by_peer = False  # close once the requests out are answered (or expire)
        self._on_inbound = on_inbound
        self._on_inbound_batch = on_inbound_batch
        self._takes_inbound = on_inbound is not None or on_inbound_batch is not None
        self._inbound: asyncio.Queue[Pdu] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._busy: set[asyncio.Task[None]] = set()  # tasks running a handler now
        self._held: deque[Pdu] = deque()  # waiting for room among the batches in hand
        self._in_hand = 0  # requests of the batches not answered yet
        self._start_scheduled = False  # True while a call of _start_batches is due
        self._inbound_stopped = False  # draining for close: take no more inbound work
        self._inbound_concurrency = inbound_concurrency
        self._unmatched_unlogged = 0  # unmatched responses since the last warning about one
        self._unmatched_logged_at = -math.inf
        self.closed: asyncio.Future[str] = self._loop.create_future()

    # --- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass it
        if self._on_inbound is not None and self._on_inbound_batch is None:
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
        reason = self._aborted or (
            f"connection lost: {exc}" if exc else "the SMSC closed the connection"
        )
        self.connection.receive_data(b"", self._loop.time())
        self._dispatch(reason)
        self._shutdown(reason)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._gate.held:
            self._gate.wait(self)
        else:
            self._send_queued()
        self._flush()

    # --- requests -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True until the connection starts closing (nothing more can be written)."""
        transport = self._transport
        return not self.closed.done() and not (transport is not None and transport.is_closing())

    async def request(self, pdu: Pdu) -> Pdu:
        """Send a request and return its response (which may carry an error status).

        Queues while the window is full. Raises NotSentError if the link closes or unbinds
        before the request went out, ConnectionLost if it dies with the request outstanding,
        ResponseTimeout if no response comes in time, SubmitError for a generic_nack.
        """
        if self.closed.done():
            raise NotSentError(f"{self.name}: {self.closed.result()}")
        if self._transport is not None and self._transport.is_closing():
            raise NotSentError(f"{self.name}: the connection is closing")  # nothing is written
        future: asyncio.Future[Pdu] = self._loop.create_future()
        if self._queued or self._writing_paused or self.connection.window_free <= 0:
            self._queued.append((pdu, future))
        else:
            self._send_request(pdu, future)
            self._schedule_flush()
        response = await future
        if response.command_id == _GENERIC_NACK:
            raise SubmitError(response.command_status)
        return response

    def _send_request(self, pdu: Pdu, future: asyncio.Future[Pdu]) -> None:
        connection = self.connection
        now = self._loop.time()
        try:
            sent = connection.send(pdu, now)
        except LocalProtocolError as exc:
            # Unbound (by the SMSC) or closed while the request waited: it never went out.
            future.set_exception(NotSentError(f"{self.name}: {exc}"))
            return
        except PduEncodeError as exc:
            future.set_exception(exc)  # raised to the caller, never into data_received
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

    def fail_queued(self, error: ClientError) -> None:
        """Fail every request still waiting for room in the window (none of them went out)."""
        queued, self._queued = self._queued, deque()
        for _, future in queued:
            if not future.done():
                future.set_exception(error)

    async def drain(self, timeout: float) -> None:
        """Take no more inbound work; give running handlers and outstanding requests ``timeout``.

        Deliver_sm not yet picked up by a worker stay unanswered (the SMSC delivers them again,
        on another session or later); a handler already running finishes and its deliver_sm is
        answered, so a receipt being stored is not cut off half-way.
        """
        self._inbound_stopped = True
        for worker in self._workers:
            if worker not in self._busy:
                worker.cancel()  # idle: waiting for a PDU it will not get now
        waiting: set[asyncio.Future[Any]] = set(self._busy)
        waiting.update(f for f in self._futures.values() if not f.done())
        if waiting:
            await asyncio.wait(waiting, timeout=timeout)

    async def unbind(self, timeout: float) -> None:
        """Send unbind and wait (at most ``timeout``) for unbind_resp, then close.

        With the window still full (requests unanswered after the drain) the unbind could only
        queue behind them: the connection is closed without it.
        """
        try:
            if self.connection.state.is_bound and self.connection.window_free > 0:
                async with asyncio.timeout(timeout):
                    await self.request(Unbind())
        except (TimeoutError, ClientError) as exc:  # a generic_nack, an unreadable answer...
            if not isinstance(exc, (TimeoutError, ConnectionLost, ResponseTimeout)):
                log.warning("%s: the unbind was answered %s; closing anyway", self.name, exc)
        finally:
            self.close()

    def close(self) -> None:
        """Close the transport now; outstanding requests fail with ConnectionLost."""
        if self._transport is not None and not self._transport.is_closing():
            self._flush()
            self._transport.close()

    def abort(self, reason: str) -> None:
        """End the connection at once, for a peer that is gone: requests out fail with
        ConnectionLost, queued ones with NotSentError, and the transport is dropped without
        the TLS close_notify exchange a dead peer would never answer (asyncio waits 30 s)."""
        self._aborted = self._aborted or reason
        self.connection.close(reason)
        self._dispatch(reason)
        if self._transport is not None:
            self._transport.abort()

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
        backoff = response is not None and response.command_status in BACKOFF_STATUSES
        gate = self._gate
        if self._queued and not backoff and not gate.held:
            self._send_queued()
            self._schedule_flush()
        if future is not None and not future.done():
            if error is not None:
                future.set_exception(error)
            else:
                assert response is not None
                future.set_result(response)
        if backoff:
            gate.hold(self._loop)  # after the waiting task, woken above, has read the answer
        if self._queued and gate.held:
            gate.wait(self)

    def refill(self) -> None:
        """Send what waits for room in the window, as far as there is room (see RefillGate)."""
        if self._queued:
            self._send_queued()
            self._schedule_flush()

    def _dispatch(self, reason: str = "") -> None:
        connection = self.connection
        # Inbound requests wait in ``inbound`` while the responses read after them are
        # resolved, and are queued for the workers before any other event: the tasks waiting
        # for those responses then run first, so a send() has recorded its message id before
        # a worker reads the receipt that came right behind its submit_sm_resp.
        inbound: list[Pdu] = []
        while (event := connection.next_event()) is not None:
            if type(event) is ResponseReceived:
                self._resolve(event.request.sequence_number, event.response, None)
                continue
            if type(event) is RequestReceived:
                inbound.append(event.pdu)
                continue
            if inbound:
                self._accept_all(inbound)
            if type(event) is RequestExpired:
                if event.request.command_id == CommandId.ENQUIRE_LINK:
                    # Ended now, before this or any later expiry frees a slot of the window: a
                    # request waiting for one must not go out into a link found dead (it would
                    # fail as perhaps sent), but fail unsent, to go to another session.
                    log.warning("%s: no enquire_link_resp, the link is dead; closing", self.name)
                    self.abort("no enquire_link_resp: the link is dead")
                seconds = connection.response_timeout
                self._resolve(
                    event.request.sequence_number,
                    None,
                    ResponseTimeout(
                        f"{self.name}: no response to {event.request.command_id.name.lower()} "
                        f"within {seconds:g} s"
                    ),
                )
            elif type(event) is UnexpectedResponse:
                self._unmatched(event.pdu)
            elif type(event) is PduRejected:
                log.warning("%s: rejected a PDU from the SMSC: %s", self.name, event.error)
                if event.request is not None:
                    # Its response is unreadable, status included: the outcome is unknown.
                    self._resolve(
                        event.request.sequence_number,
                        None,
                        UnreadableResponse(
                            f"{self.name}: the response to "
                            f"{event.request.command_id.name.lower()} could not be decoded "
                            f"({event.error.message}); the SMSC may or may not have acted on it"
                        ),
                    )
            elif type(event) is Unbound:
                if event.by_peer:
                    # Its answers to our requests may still follow the unbind (responses travel
                    # while unbinding): read them before closing. What waits for the window
                    # can never go on this session now: it goes to another one at once.
                    log.info("%s: the SMSC unbound the session", self.name)
                    self._unbound_by_peer = True
                    self.fail_queued(NotSentError(f"{self.name}: the SMSC unbound the session"))
            elif type(event) is ConnectionClosed:
                self._fail_all(event.reason or reason)
                self.close()
        if inbound:
            self._accept_all(inbound)
        if self._unbound_by_peer and not connection.outstanding:
            self._unbound_by_peer = False
            self._loop.call_soon(self.close)

    def _unmatched(self, pdu: Pdu) -> None:
        """Warn about a response nobody waits for, at most once a second with a count of the
        rest: a peer flooding junk responses must not flood the log (or the CPU with it)."""
        now = self._loop.time()
        if now - self._unmatched_logged_at < _UNMATCHED_LOG_INTERVAL:
            self._unmatched_unlogged += 1
            return
        more = self._unmatched_unlogged
        log.warning(
            "%s: dropped %s with unknown sequence_number %d (late or unsolicited)%s",
            self.name,
            pdu.command_id.name.lower(),
            pdu.sequence_number,
            f"; {more} more since the last warning" if more else "",
        )
        self._unmatched_logged_at = now
        self._unmatched_unlogged = 0

    def _accept_all(self, inbound: list[Pdu]) -> None:
        """Take the inbound requests gathered by _dispatch, in order, and empty the list."""
        for pdu in inbound:
            self._accept_inbound(pdu)
        inbound.clear()
        if self._held:
            self._start_batches()

    def _accept_inbound(self, pdu: Pdu) -> None:
        if not self._takes_inbound or pdu.command_id not in _INBOUND_COMMANDS:
            if pdu.response_class is not None:
                self._answer(pdu, CommandStatus.ESME_RINVCMDID)
            return
        if self._inbound_stopped:
            return  # closing: left unanswered, so the SMSC delivers it again
        if self._on_inbound_batch is not None:
            self._held.append(pdu)
        else:
            self._inbound.put_nowait(pdu)

    def _start_batches(self) -> None:
        """Hand the requests held to a batch task, as many as the room in hand allows."""
        self._start_scheduled = False
        held = self._held
        while held and not self._inbound_stopped and not self.closed.done():
            room = self._inbound_concurrency - self._in_hand
            if room <= 0:
                return
            if room >= len(held):
                pdus = list(held)
                held.clear()
            else:
                pdus = [held.popleft() for _ in range(room)]
            self._in_hand += len(pdus)
            task = self._loop.create_task(self._inbound_batch(pdus))
            self._busy.add(task)

    async def _inbound_batch(self, pdus: list[Pdu]) -> None:
        handler = self._on_inbound_batch
        assert handler is not None
        unanswered = {id(pdu): pdu for pdu in pdus}  # by identity: PDUs compare by value

        def answer(pdu: Pdu, outcome: int | BaseException) -> None:
            if unanswered.pop(id(pdu), None) is None:
                return  # answered before, or given up on
            self._in_hand -= 1
            self._answer(
                pdu, outcome if isinstance(outcome, int) else self._handler_failed(outcome)
            )
            if self._held and not self._start_scheduled:
                # once the answers given together are in: one batch for the room they made
                self._start_scheduled = True
                self._loop.call_soon(self._start_batches)

        try:
            try:
                await handler(pdus, answer)
                if unanswered:
                    raise RuntimeError(f"{len(unanswered)} requests of the batch left unanswered")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                for pdu in list(unanswered.values()):
                    answer(pdu, exc)
        finally:
            self._busy.discard(cast("asyncio.Task[None]", asyncio.current_task()))
            self._in_hand -= len(unanswered)  # cancelled: unanswered, the SMSC delivers again
            unanswered.clear()
            if self._held:
                self._start_batches()

    async def _inbound_worker(self) -> None:
        assert self._on_inbound is not None
        task = asyncio.current_task()
        assert task is not None
        busy = self._busy
        while not self._inbound_stopped:
            pdu = await self._inbound.get()
            busy.add(task)
            try:
                try:
                    status = await self._on_inbound(pdu)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    status = self._handler_failed(exc)
                self._answer(pdu, status)
            finally:
                busy.discard(task)

    def _handler_failed(self, exc: BaseException) -> int:
        """Log why an inbound request was not handled; the status that has it delivered again."""
        if isinstance(exc, EventNotConfirmedError):
            log.info("%s: event left unconfirmed; the SMSC will deliver it again", self.name)
        else:
            log.error(
                "%s: inbound handler failed; asking the SMSC to redeliver", self.name, exc_info=exc
            )
        return CommandStatus.ESME_RX_T_APPN

    def _answer(self, pdu: Pdu, status: int) -> None:
        if self.closed.done() or self.connection.state is _CLOSED:
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
        # Still queued: never written, so the pool may send them elsewhere without a duplicate.
        self.fail_queued(NotSentError(f"{self.name}: {reason} before the request was sent"))

    def _shutdown(self, reason: str) -> None:
        self._fail_all(reason)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for worker in self._workers:
            worker.cancel()
        for task in list(self._busy):
            task.cancel()  # a batch's handler, as a busy worker's above
        if not self.closed.done():
            self.closed.set_result(reason)
