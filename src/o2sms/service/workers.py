"""The two pipelines between the store and the SMPP client.

``SubmitWorker`` claims queued messages (with a lease, so several processes share one queue),
submits them and records the outcome. ``EventRecorder`` is the client's event handler: it
commits every delivery receipt and inbound SMS before returning, and the client sends the
deliver_sm_resp only after it returned, so nothing is acknowledged that is not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, Protocol

from o2sms.client.api import Resume, SendError, SendResult
from o2sms.client.errors import (
    AddressError,
    ClientClosedError,
    ClientError,
    ConnectionLost,
    NotSentError,
    ResponseTimeout,
    SubmitError,
    UnreadableResponse,
)
from o2sms.client.events import DeliveryReport, Event, InboundSms, UnreadableDeliverSm
from o2sms.errors import O2smsError
from o2sms.receipts import DeliveryReceipt, message_id_keys
from o2sms.service.batching import GroupCommit
from o2sms.service.metrics import Metrics
from o2sms.service.settings import WorkerSettings
from o2sms.smpp.constants import status_name
from o2sms.store import MessageStore
from o2sms.store.errors import LeaseLostError, unavailable
from o2sms.store.models import (
    Message,
    MessageStatus,
    NewInbound,
    ReceiptOutcome,
    ReceiptResult,
)

__all__ = ["EventRecorder", "Sender", "SubmitRecords", "SubmitWorker"]

log = logging.getLogger("o2sms.service")

_STORE_RETRIES = 5  #: tries to record a failure or retry before leaving it to the lease
_FIRST_DELAY = 0.05  #: seconds before the second try of a store call; each next waits 4 times more
_MAX_DELAY = 5.0  #: ... but at most this long (a submit's record is tried until it lands)
_LATENCY_MEMORY = 200_000  #: submit times kept for the receipt-latency histogram
_KEPT_LEASES = 10_000  #: sent-but-unrecorded ids remembered for the stop (see _keep_leased)
_RECORD_WAIT = 5.0  #: seconds a receipt waits for the record of its own submit, at most
# Parts whose submits one transaction records, at most. On PostgreSQL each part's SMSC id
# takes one or two advisory locks until the commit, from a lock table the whole server
# shares (max_locks_per_transaction x max_connections, 6,400 by default): a batch of 500
# six-part messages would take 6,000 in one transaction.
_RECORD_PARTS = 500
_APPLIED = ReceiptResult.APPLIED  # members off their class are slow on Python 3.11


_Record = tuple[str, Sequence[str]]  #: a message id and its parts' SMSC message_ids


def _parts_of(record: _Record) -> int:
    """A submit record's weight in a group commit: its parts (see _RECORD_PARTS)."""
    return len(record[1])


class _Gathered:
    """The submit records of one loop iteration, queued to the group commit in one call.

    The submit_sm_resps that one read of the socket resolves end their sends in the same loop
    iteration; their records are then queued together (:meth:`GroupCommit.queue_many`), so no
    coroutine waits per message for its record (see SubmitWorker._record_soon).
    """

    __slots__ = ("done", "recording", "records")

    def __init__(self, done: asyncio.Future[None], recording: _Recording) -> None:
        #: what the messages wait for while in flight: set once every record is stored or
        #: handed to a task retrying it; cancelled by a stop, which withdraws the records
        self.done = done
        self.recording = recording  #: entered: a receipt for these ids waits for the record
        self.records: list[_Record] = []


class SubmitRecords:
    """SMSC message_ids whose submit this process is recording right now.

    A receipt can arrive before the record of its submit_sm_resp is committed (a fast SMSC, a
    busy store). The store then keeps it as unmatched and matches it when the submit is
    recorded, message by message: correct, but several times dearer than the batch path,
    and under load it feeds itself (slower records, more receipts overtaking them). A receipt
    for an id being recorded here waits for that record (bounded) and takes the batch path.
    """

    def __init__(self) -> None:
        self._pending: dict[str, _Recording] = {}

    def recording(self, smsc_ids: Sequence[str | None]) -> _Recording:
        """A context manager marking ``smsc_ids`` as being recorded for the block's duration."""
        return _Recording(self._pending, smsc_ids)

    def busy(self, ids: Sequence[str | None]) -> bool:
        """True while a submit of one of ``ids`` is being recorded (:meth:`wait_for` would wait)."""
        pending = self._pending
        return bool(pending) and any(key in pending for i in ids if i for key in message_id_keys(i))

    async def wait_for(self, ids: Sequence[str | None], timeout: float = _RECORD_WAIT) -> None:
        """Return once no submit of ``ids`` is being recorded (or after ``timeout``)."""
        pending = self._pending
        if not pending:
            return
        waiting = {pending[key] for i in ids if i for key in message_id_keys(i) if key in pending}
        if not waiting:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for record in waiting:
            if record.active:
                waiter = loop.create_future()
                record.waiters.append(waiter)
                # a timer handle, not asyncio.timeout: most receipts of a busy pipeline wait
                timer = loop.call_at(deadline, _wake, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _end_mark(recording: _Recording, _: object) -> None:
    """A done callback ending ``recording`` (see SubmitWorker._stored)."""
    recording.__exit__(None, None, None)


def _keys_of(smsc_ids: Sequence[str | None]) -> list[str]:
    """The correlation keys of the ids a record holds (None: a part that did not go out)."""
    return [key for sid in smsc_ids if sid for key in message_id_keys(sid)]


class _Recording:
    """One record in progress: its keys, and the receipts waiting for it (most have none)."""

    __slots__ = ("_keys", "_pending", "active", "waiters")

    def __init__(self, pending: dict[str, _Recording], smsc_ids: Sequence[str | None]) -> None:
        self._pending = pending
        self._keys = _keys_of(smsc_ids)
        self.active = False
        self.waiters: list[asyncio.Future[None]] = []

    def __enter__(self) -> None:
        self._pending.update(dict.fromkeys(self._keys, self))
        self.active = True

    def add(self, smsc_ids: Sequence[str | None]) -> None:
        """Mark ``smsc_ids`` too as being recorded, from now on (a record gathering more)."""
        keys = _keys_of(smsc_ids)
        self._keys.extend(keys)
        if self.active:
            self._pending.update(dict.fromkeys(keys, self))

    def __exit__(self, *_: object) -> None:
        self.active = False
        pending = self._pending
        for key in self._keys:
            if pending.get(key) is self:
                del pending[key]
        for waiter in self.waiters:
            _wake(waiter)


class Sender(Protocol):
    """What the worker needs of :class:`o2sms.client.Client`."""

    async def send(
        self,
        to: str,
        text: str,
        *,
        sender: str | None = ...,
        flash: bool = ...,
        validity: timedelta | None = ...,
        encoding: str | None = ...,
        reference: str | None = ...,
        resume: Resume | None = ...,
    ) -> SendResult: ...

    def withdraw_unsent(self) -> None:
        """Fail the sends with nothing out yet (a stop began); those with a part out go on."""


def _unanswered(cause: ClientError) -> bool:
    """True when a part was on the wire and its answer never came (or could not be read):
    the SMSC may have taken it, so sending it again may be a second SMS."""
    unknown = (ConnectionLost, ResponseTimeout, UnreadableResponse)
    return isinstance(cause, unknown) and not isinstance(cause, NotSentError)


async def _persist(
    what: str, call: Callable[[], Awaitable[Any]], *, tries: int | None = _STORE_RETRIES
) -> Any:
    """Run a store call, retrying with backoff (``tries=None``: while the store is away).

    An outcome not recorded is left to the lease, which sends the message again: fine for a
    message that did not go out, not for one that did, whose record is therefore retried
    for as long as the store is unreachable (the claim leaves a message its worker holds
    alone). An error that would only come again (a bug) still gives up after a few tries.
    """
    try:
        return await call()
    except LeaseLostError:
        raise
    except Exception as exc:
        return await _persist_after(what, call, exc, tries=tries)


async def _persist_after(
    what: str, call: Callable[[], Awaitable[Any]], failed: Exception, *, tries: int | None
) -> Any:
    """:func:`_persist` once its first try failed with ``failed``. Callers on a hot path make
    the first try themselves (one coroutine less per call) and come here on its failure."""
    delay = _FIRST_DELAY
    attempt = 1
    exc = failed
    while True:
        limit = _STORE_RETRIES if tries is None else tries
        if attempt >= limit and (tries is not None or not unavailable(exc)):
            raise exc
        if attempt <= _STORE_RETRIES or attempt % 10 == 0:
            log.warning("store error recording %s (try %d): %s", what, attempt, exc)
        await asyncio.sleep(delay)
        delay = min(delay * 4, _MAX_DELAY)
        attempt += 1
        try:
            return await call()
        except LeaseLostError:
            raise
        except Exception as error:
            exc = error


class SubmitWorker:
    """Claims due messages from the shared queue and submits them, ``concurrency`` at a time.

    A retriable failure (throttled, queue full, link lost, timeout) goes back to the queue with
    backoff; a final one fails the message with the status's name and meaning. Should this
    process die with messages on the wire, their leases expire and another worker sends them
    again (at-least-once; the store counts those ``resends``).
    """

    def __init__(
        self,
        store: MessageStore,
        sender: Sender,
        *,
        worker_id: str,
        settings: WorkerSettings,
        metrics: Metrics,
        submitted_at: OrderedDict[str, float] | None = None,
        on_change: Callable[[], None] = lambda: None,
        records: SubmitRecords | None = None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._records = records if records is not None else SubmitRecords()
        self._on_change = on_change
        self._submits: GroupCommit[_Record, None] = GroupCommit(
            self._record_submits,
            weight=_parts_of,
            max_weight=_RECORD_PARTS,
            turn=store.write_turn,
        )
        self.worker_id = worker_id
        self._settings = settings
        # Claim in batches: wait for this many free slots (each claim is a write transaction)
        # unless nothing at all is in flight.
        self._refill = max(1, min(settings.batch, settings.concurrency // 2))
        self._metrics = metrics
        #: message id -> what it waits for: its send's task, then the records it is gathered
        #: with, then (should its record fail) the task retrying it
        self._in_flight: dict[str, asyncio.Future[None]] = {}
        self._gathering: _Gathered | None = None  #: records of this loop iteration, not queued
        #: messages that went out (wholly or in part) but whose outcome could not be stored:
        #: left to their leases, never handed back by stop() as if unsent
        self._sent_unrecorded: OrderedDict[str, None] = OrderedDict()
        self._wake = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        #: message id -> loop time of its submit, for the receipt-latency histogram
        self.submitted_at = submitted_at if submitted_at is not None else OrderedDict()

    @property
    def in_flight(self) -> int:
        """Messages this worker is submitting now."""
        return len(self._in_flight)

    def wake(self) -> None:
        """New work was stored: claim now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        """Start claiming and the lease heartbeat."""
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="o2sms-claim"),
            asyncio.create_task(self._heartbeat(), name="o2sms-lease-heartbeat"),
        ]

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming, let submits on the wire finish (bounded), give back the rest."""
        self._stopping = True
        self._wake.set()
        # The claims stop now; the heartbeat keeps the leases of sends under way until they end.
        claims, others = self._tasks[:1], self._tasks[1:]
        for task in claims:
            task.cancel()
        await asyncio.gather(*claims, return_exceptions=True)
        # Sends only waiting for their turn (rate limit, a pause) fail now and go back to the
        # queue uncounted; the parts of a long message under way still all go out.
        self._sender.withdraw_unsent()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # A message moves from its send's task to its gathered record, and from a record that
        # failed to a task retrying it: wait for whatever it waits for now, until the timeout.
        while pending := {f for f in self._in_flight.values() if not f.done()}:
            if loop.time() >= deadline:
                break
            await asyncio.wait(pending, timeout=deadline - loop.time())
        # Still running: perhaps on the wire, or sent and not recorded. Their leases stay,
        # so the claim that takes them after the lease counts them as resends.
        unsure = [mid for mid, waited in self._in_flight.items() if not waited.done()]
        still = {waited for waited in self._in_flight.values() if not waited.done()}
        for waited in still:
            waited.cancel()
        await asyncio.gather(*still, return_exceptions=True)
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        keep = [*unsure, *self._sent_unrecorded]
        try:
            released = await self._store.release(self.worker_id, keep=keep)
        except Exception as exc:
            log.warning(
                "could not give back the claimed messages (%s); they are sent once their "
                "leases run out, counted as resends though they never went out",
                type(exc).__name__,
            )
            released = 0
        if released:
            log.info("gave back %d claimed messages to the queue", released)
        if unsure:
            log.warning(
                "%d messages were still being submitted or recorded at shutdown; they keep "
                "their leases and are sent again (counted as resends) once those run out",
                len(unsure),
            )

    async def _claim_loop(self) -> None:
        settings = self._settings
        idle = settings.poll_interval
        while not self._stopping:
            free = settings.concurrency - len(self._in_flight)
            if free < self._refill and self._in_flight:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            self._wake.clear()
            exhausted = self._store.exhausted
            try:
                batch = await self._store.claim(
                    self.worker_id,
                    limit=min(free, settings.batch),
                    lease_seconds=settings.lease_seconds,
                    # A lease may run out while the store is away (no heartbeat gets through);
                    # the running task still sends or records that message, so never take it
                    # again here: that would be a second SMS.
                    holding=self._in_flight.keys(),
                )
            except Exception as exc:
                log.warning("cannot claim messages (store unavailable?): %s", exc)
                await asyncio.sleep(min(idle * 4, 5.0))
                continue
            if self._store.exhausted > exhausted:  # failed by the claim: out of attempts
                self._metrics.final.labels(MessageStatus.FAILED.value).inc(
                    self._store.exhausted - exhausted
                )
                self._on_change()
            for message in batch:
                if message.resend:  # its lease expired while it was on the wire: a resend
                    self._metrics.resends.inc()
                self._sent_unrecorded.pop(message.id, None)
                task = asyncio.create_task(self._submit(message))
                self._in_flight[message.id] = task
                task.add_done_callback(functools.partial(self._done, message.id))
            if len(batch) < min(free, settings.batch):
                # The queue is drained: sleep until new work is stored or the poll is due
                # (scheduled messages and retries become due on the clock).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(idle):
                        await self._wake.wait()

    def _keep_leased(self, message_id: str) -> None:
        """``message_id`` went out but its outcome is not stored: its lease must run out."""
        kept = self._sent_unrecorded
        kept[message_id] = None
        if len(kept) > _KEPT_LEASES:  # bounded; the oldest leases have long run out
            kept.popitem(last=False)

    def _done(self, message_id: str, finished: asyncio.Future[None]) -> None:
        """``finished`` (a send's or a retry's task) ended: the message is no longer in
        flight, unless it now waits for something else (its gathered record)."""
        if self._leave(message_id, finished):
            self._freed()

    def _leave(self, message_id: str, waited: asyncio.Future[None]) -> bool:
        """Take ``message_id`` out of the flight if it still waits for ``waited``."""
        in_flight = self._in_flight
        if in_flight.get(message_id) is waited:
            del in_flight[message_id]
            return True
        return False

    def _freed(self) -> None:
        """Messages left the flight: wake the claim loop when a batch's worth of slots is free."""
        if self._settings.concurrency - len(self._in_flight) >= self._refill or not self._in_flight:
            self._slot_free.set()

    async def _heartbeat(self) -> None:
        """Push out the leases of messages still being submitted (throttling may take long)."""
        interval = self._settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            ids = list(self._in_flight)
            if ids:
                try:
                    await self._store.extend_lease(
                        self.worker_id, ids, lease_seconds=self._settings.lease_seconds
                    )
                except Exception as exc:
                    log.warning("cannot extend leases: %s", exc)

    async def _submit(self, message: Message) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            if message.text is None:
                raise ValueError("the message's text was purged before it was sent")
            partial = message.partial_send
            result = await self._sender.send(
                message.recipient,
                message.text,
                sender=message.sender,
                flash=message.flash,
                validity=message.validity,
                encoding=message.encoding,
                reference=message.id,
                resume=None
                if partial is None
                else Resume(partial.concat_reference, partial.message_ids),
            )
        except SendError as exc:
            await self._failed(message, exc.cause, exc.message_ids, exc.concat_reference)
        except ClientError as exc:
            await self._failed(message, exc, ())
        except (O2smsError, ValueError) as exc:
            self._metrics.failed.labels("INVALID_MESSAGE").inc()  # a failed submit too
            await self._final(message, "INVALID_MESSAGE", str(exc), None, ())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave the message leased forever
            log.exception("unexpected error submitting %s", message.id)
            await self._retry(message, f"{type(exc).__name__}: {exc}")
        else:
            self._metrics.submit_latency.observe(loop.time() - started)
            self._record_soon((message.id, result.message_ids))

    def _record_soon(self, record: _Record) -> None:
        """Record a submit with the others that end in this loop iteration (see _Gathered).

        The message stays in flight (its lease kept, a stop waits for it) until it is stored.
        """
        gathered = self._gathering
        if gathered is None:
            loop = asyncio.get_running_loop()
            recording = self._records.recording(())
            recording.__enter__()
            gathered = self._gathering = _Gathered(loop.create_future(), recording)
            loop.call_soon(self._queue_gathered, gathered)
        gathered.records.append(record)
        gathered.recording.add(record[1])  # now, as a receipt may be read next
        self._in_flight[record[0]] = gathered.done

    def _queue_gathered(self, gathered: _Gathered) -> None:
        """Queue the gathered records to the group commit, each as its own item, in one call."""
        if self._gathering is gathered:
            self._gathering = None
        if gathered.done.done():  # cancelled by a stop before it was queued
            self._given_up(gathered)
            return
        committed = self._submits.queue_many(gathered.records)
        committed.add_done_callback(functools.partial(self._stored, gathered))
        # A stop that gives up on the records withdraws those whose batch is not taken yet.
        gathered.done.add_done_callback(
            lambda done: committed.cancel() if done.cancelled() else None
        )

    def _given_up(self, gathered: _Gathered) -> None:
        """A stop gave up on the gathered records: they keep their leases (see stop), and
        leave the flight with nothing more to wait for."""
        gathered.recording.__exit__(None, None, None)
        for message_id, _ in gathered.records:
            self._leave(message_id, gathered.done)

    def _stored(
        self, gathered: _Gathered, committed: asyncio.Future[list[BaseException | None]]
    ) -> None:
        """The gathered records were committed, each or failed alone (the group commit isolates
        the records of a batch that fails): count those stored, retry the others."""
        done = gathered.done
        if done.cancelled():
            self._given_up(gathered)
            return
        stored: list[str] = []
        for record, outcome in zip(gathered.records, committed.result(), strict=True):
            message_id = record[0]
            if outcome is None:
                stored.append(message_id)
                self._leave(message_id, done)
                continue
            # Its own mark, so that only its receipts wait for its retries, not its neighbours'.
            retrying = self._records.recording(record[1])
            retrying.__enter__()
            task = asyncio.create_task(self._record_again(record, outcome))
            self._in_flight[message_id] = task
            task.add_done_callback(functools.partial(self._done, message_id))
            # ended with the task however it ends, cancelled before its first step included
            task.add_done_callback(functools.partial(_end_mark, retrying))
        gathered.recording.__exit__(None, None, None)
        if stored:
            self._recorded(stored)
            self._freed()
        done.set_result(None)

    async def _record_again(self, record: _Record, failed: BaseException) -> None:
        """Retry the record of a submit whose first try failed with ``failed``, as
        :func:`_persist` does, but for as long as the store is away: it went out, so
        sending it again would be a second SMS."""
        message_id = record[0]
        try:
            if isinstance(failed, LeaseLostError) or not isinstance(failed, Exception):
                raise failed
            await _persist_after(
                f"submit of {message_id}",
                lambda: self._submits.queue(record),
                failed,
                tries=None,
            )
        except Exception:
            log.exception("submitted %s but could not record it", message_id)
            self._keep_leased(message_id)
            return
        self._recorded([message_id])

    def _recorded(self, message_ids: Sequence[str]) -> None:
        """Submits stored: count them, remember when (for the receipt latency), tell."""
        now = asyncio.get_running_loop().time()
        for message_id in message_ids:
            self._remember(message_id, now)
        self._metrics.submitted.inc(len(message_ids))
        self._on_change()

    async def _record_submits(self, batch: list[_Record]) -> list[None]:
        await self._store.mark_submitted_many(batch, worker_id=self.worker_id)
        return [None] * len(batch)

    def _remember(self, message_id: str, at: float) -> None:
        memory = self.submitted_at
        memory[message_id] = at
        if len(memory) > _LATENCY_MEMORY:
            memory.popitem(last=False)

    async def _failed(
        self,
        message: Message,
        cause: ClientError,
        smsc_ids: Sequence[str | None],
        concat_reference: int | None = None,
    ) -> None:
        reason = type(cause).__name__
        if isinstance(cause, SubmitError):
            reason = status_name(cause.command_status)
        self._metrics.failed.labels(reason).inc()
        earlier = message.partial_send.message_ids if message.partial_send else ()
        fresh = [i for n, i in enumerate(smsc_ids) if i is not None and i not in earlier[n : n + 1]]
        if isinstance(cause, ClientClosedError) and self._stopping and not fresh:
            # Nothing of this try went out (the parts of an earlier one stay in partial_send):
            # back, attempt uncounted.
            with contextlib.suppress(Exception):
                await self._store.release(self.worker_id, [message.id])
            return
        if cause.retriable or isinstance(cause, ClientClosedError):
            await self._retry(
                message,
                str(cause),
                smsc_ids,
                unanswered=_unanswered(cause),
                concat_reference=concat_reference,
            )
            return
        code = cause.command_status if isinstance(cause, SubmitError) else None
        name = "INVALID_ADDRESS" if isinstance(cause, AddressError) else None
        await self._final(message, name, str(cause), code, smsc_ids)

    async def _retry(
        self,
        message: Message,
        error: str,
        smsc_ids: Sequence[str | None] = (),
        *,
        unanswered: bool = False,
        concat_reference: int | None = None,
    ) -> None:
        """Back to the queue. Parts already sent (``smsc_ids``) are kept with their
        ``concat_reference`` so the retry sends only the others (without it they are sent
        again: a resend); a part the SMSC may have taken unheard (``unanswered``) makes the
        retry a resend too."""
        try:
            updated = await _persist(
                f"retry of {message.id}",
                lambda: self._store.requeue(
                    message.id,
                    self.worker_id,
                    error=error,
                    sent=smsc_ids,
                    unanswered=unanswered,
                    concat_reference=concat_reference,
                ),
            )
        except LeaseLostError:
            return
        except Exception:
            log.exception("could not requeue %s; its lease will expire", message.id)
            if any(smsc_ids) or unanswered:
                self._keep_leased(message.id)  # parts went out, or may have
            return
        if updated.status is MessageStatus.FAILED:
            self._metrics.final.labels(MessageStatus.FAILED.value).inc()
            self._on_change()
        else:
            self._metrics.retried.inc()
            if (any(smsc_ids) and concat_reference is None) or unanswered:
                self._metrics.resends.inc()

    async def _final(
        self,
        message: Message,
        name: str | None,
        detail: str,
        code: int | None,
        smsc_ids: Sequence[str | None],
    ) -> None:
        try:
            await _persist(
                f"failure of {message.id}",
                lambda: self._store.mark_failed(
                    message.id,
                    error_code=code,
                    error_name=name,
                    error_detail=detail if code is None else None,
                    worker_id=self.worker_id,
                    smsc_ids=smsc_ids if any(smsc_ids) else (),
                    infobip=True,
                ),
            )
        except LeaseLostError:  # another worker has the message now: its outcome counts
            return
        except Exception:
            log.exception("could not record the failure of %s", message.id)
            if any(smsc_ids):
                self._keep_leased(message.id)  # parts went out: a retry is a resend
            return
        self._metrics.final.labels(MessageStatus.FAILED.value).inc()
        self._on_change()


class EventRecorder:
    """The client's event handler: stores receipts and inbound SMS, then lets it acknowledge."""

    def __init__(
        self,
        store: MessageStore,
        *,
        metrics: Metrics,
        submitted_at: OrderedDict[str, float] | None = None,
        on_change: Callable[[], None] | None = None,
        records: SubmitRecords | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._records = records if records is not None else SubmitRecords()
        self._submitted_at = submitted_at if submitted_at is not None else OrderedDict()
        self._on_change = on_change
        self._receipts: GroupCommit[tuple[DeliveryReceipt, str | None], ReceiptOutcome] = (
            GroupCommit(self._store.apply_receipts, turn=store.write_turn)
        )

    async def __call__(self, event: Event) -> None:
        """Commit ``event``; an exception makes the client answer a temporary error."""
        if isinstance(event, DeliveryReport):
            await self._receipt(event)
        elif isinstance(event, InboundSms):
            await self._store.record_inbound(
                NewInbound(
                    source=event.source_addr,
                    destination=event.destination_addr,
                    text=event.text,
                    data_coding=event.data_coding,
                    parts=event.parts,
                    session=event.session,
                )
            )
            self._metrics.inbound.inc()
            if self._on_change is not None:  # its webhook is in the outbox: send it now
                self._on_change()
        elif isinstance(event, UnreadableDeliverSm):
            # Acknowledged (a redelivery would be just as unreadable) but never silently.
            log.warning("unreadable deliver_sm on %s: %s", event.session, event.reason)
            self._metrics.receipts.labels("unreadable").inc()

    async def batch(self, events: Sequence[Event]) -> list[BaseException | None]:
        """Commit ``events`` (the client's batch handler): their receipts as one group-commit
        entry, waking this task once for all of them (those whose submit is being recorded
        as a second one, once it is: the others are committed meanwhile, but the call returns
        after both); the others one by one. Per event None once it is committed, or the error
        that makes the client answer a temporary error."""
        failures: list[BaseException | None] = [None] * len(events)
        now: list[tuple[int, DeliveryReport]] = []
        later: list[tuple[int, DeliveryReport]] = []
        records = self._records
        for index, event in enumerate(events):
            if isinstance(event, DeliveryReport):
                if records.busy((event.receipt.id, event.submitted_id)):
                    later.append((index, event))
                else:
                    now.append((index, event))
                continue
            try:
                await self(event)
            except Exception as exc:
                failures[index] = exc
        first = self._queue_reports(now)
        try:
            if later:
                await records.wait_for(
                    [i for _, e in later for i in (e.receipt.id, e.submitted_id)]
                )
                self._settle(later, await self._queue_reports(later), failures)
            self._settle(now, await first, failures)
        finally:
            first.cancel()  # withdrawn if this task is cancelled before its batch was taken
        return failures

    def _queue_reports(
        self, reports: list[tuple[int, DeliveryReport]]
    ) -> asyncio.Future[list[ReceiptOutcome | BaseException]]:
        """Queue the receipts of ``reports`` to the group commit together."""
        return self._receipts.queue_many([(e.receipt, e.submitted_id) for _, e in reports])

    def _settle(
        self,
        reports: list[tuple[int, DeliveryReport]],
        outcomes: list[ReceiptOutcome | BaseException],
        failures: list[BaseException | None],
    ) -> None:
        """Count the receipts committed and put the errors of the others in their places."""
        committed: list[ReceiptOutcome] = []
        for (index, _), outcome in zip(reports, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                failures[index] = outcome
            else:
                committed.append(outcome)
        self._count(committed)

    async def _receipt(self, event: DeliveryReport) -> None:
        await self._records.wait_for((event.receipt.id, event.submitted_id))
        self._count((await self._receipts.queue((event.receipt, event.submitted_id)),))

    def _count(self, outcomes: Sequence[ReceiptOutcome]) -> None:
        """The metrics of receipts committed together, and one change if any moved its
        message: each label's counter is bumped once by its total."""
        results: dict[ReceiptResult, int] = {}
        finals: dict[MessageStatus, int] = {}
        changed = False
        submitted_at = self._submitted_at
        now = asyncio.get_running_loop().time()  # when all of them were committed
        latency = self._metrics.receipt_latency
        for outcome in outcomes:
            result = outcome.result
            results[result] = results.get(result, 0) + 1
            status = outcome.message_status
            if result is _APPLIED and outcome.status_changed and status:
                changed = True
                if status.is_final:
                    finals[status] = finals.get(status, 0) + 1
                    sent = submitted_at.pop(outcome.message_id or "", None)
                    if sent is not None:
                        latency.observe(now - sent)
        for result, count in results.items():
            self._metrics.receipts.labels(result.value).inc(count)
        for status, count in finals.items():
            self._metrics.final.labels(status.value).inc(count)
        if changed and self._on_change is not None:
            self._on_change()
