"""The submit worker when the store fails or the service stops mid-send: no SMS twice unseen.

A real SQLite store on a fake clock (leases run out without waiting) and a sender that
counts what it was asked to send.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from o2sms.client.api import Resume, SendError, SendResult
from o2sms.client.errors import (
    ClientClosedError,
    ClientError,
    ConnectionLost,
    NotSentError,
    ResponseTimeout,
    SubmitError,
)
from o2sms.client.events import DeliveryReport, Event, InboundSms, UnreadableDeliverSm
from o2sms.receipts import DeliveryReceipt, parse
from o2sms.service import workers
from o2sms.service.batching import GroupCommit
from o2sms.service.metrics import Metrics
from o2sms.service.settings import WorkerSettings
from o2sms.service.workers import EventRecorder, SubmitRecords, SubmitWorker
from o2sms.smpp.constants import CommandStatus
from o2sms.smpp.pdu import DeliverSm
from o2sms.store import (
    EventKind,
    Message,
    MessageStatus,
    MessageStore,
    NewMessage,
    PartialSend,
    open_store,
)
from o2sms.text import Encoding
from tests.store.conftest import FakeClock

pytestmark = pytest.mark.asyncio


class CountingSender:
    """Answers every send with a new SMSC message_id, and remembers each send."""

    def __init__(self) -> None:
        self.sent: list[str] = []  #: the ``reference`` (message id) of each send

    async def send(
        self, to: str, text: str, *, reference: str | None = None, **_: Any
    ) -> SendResult:
        assert reference is not None
        self.sent.append(reference)
        return SendResult((f"ID{len(self.sent)}",), Encoding.GSM7, 1, to, reference)

    def withdraw_unsent(self) -> None:
        """Nothing waits here: every send answers at once."""


@pytest_asyncio.fixture
async def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[MessageStore]:
    opened = await open_store(f"sqlite:///{tmp_path / 'o2sms.db'}", clock=clock)
    try:
        yield opened
    finally:
        await opened.close()


def worker_on(store: MessageStore, sender: CountingSender) -> SubmitWorker:
    settings = WorkerSettings(poll_interval=0.01, lease_seconds=60)
    return SubmitWorker(store, sender, worker_id="w1", settings=settings, metrics=Metrics())


async def wait_status(store: MessageStore, message_id: str, status: MessageStatus) -> None:
    async with asyncio.timeout(10):
        while (message := await store.get(message_id)) is None or message.status is not status:
            await asyncio.sleep(0.01)


async def test_a_sent_message_whose_record_fails_for_long_is_recorded_not_sent_again(
    store: MessageStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "_FIRST_DELAY", 0.001)
    monkeypatch.setattr(workers, "_MAX_DELAY", 0.01)
    message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message
    record = store.mark_submitted_many
    failures = 0

    async def store_away(batch: Sequence[tuple[str, Sequence[str]]], **options: Any) -> None:
        nonlocal failures
        if failures < 12:  # more tries than a failure's record gets
            failures += 1
            clock.advance(61)  # the store stays away longer than a lease
            raise OSError("the database is down")
        await record(batch, **options)

    monkeypatch.setattr(store, "mark_submitted_many", store_away)
    sender = CountingSender()
    worker = worker_on(store, sender)
    worker.start()
    try:
        await wait_status(store, message.id, MessageStatus.SUBMITTED)
        await asyncio.sleep(0.1)  # a second claim of the message would have come by now
    finally:
        await worker.stop()
    assert sender.sent == [message.id]
    stored = await store.get(message.id)
    assert stored is not None
    assert stored.resends == 0
    assert [part.smsc_id for part in stored.parts] == ["ID1"]


async def test_a_message_still_being_recorded_at_shutdown_keeps_its_lease(
    store: MessageStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    unsent = (await store.enqueue(NewMessage("+421900000002", "later"))).message
    clock.advance(1)
    message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message
    # Claimed by this worker but never handed to a task (as when a claim commits as it stops).
    assert [m.id for m in await store.claim("w1", limit=1)] == [unsent.id]
    slow = asyncio.Event()

    async def slow_store(batch: Sequence[tuple[str, Sequence[str]]], **options: Any) -> None:
        slow.set()
        await asyncio.sleep(1.0)  # longer than the stop waits; holds the writer's turn

    monkeypatch.setattr(store, "mark_submitted_many", slow_store)
    sender = CountingSender()
    worker = worker_on(store, sender)
    worker.start()
    async with asyncio.timeout(5):
        await slow.wait()  # sent; its record hangs
    await worker.stop(timeout=0.1)
    assert sender.sent == [message.id]
    kept = await store.get(message.id)
    given_back = await store.get(unsent.id)
    assert kept is not None
    assert given_back is not None
    assert kept.lease_owner == "w1"  # not given back: it went out
    assert given_back.lease_owner is None  # given back: it never went out
    clock.advance(61)
    claimed = {m.id: m for m in await store.claim("w2", limit=10, lease_seconds=60)}
    assert claimed[message.id].resend  # its second send is counted, not silent
    assert not claimed[unsent.id].resend


class FailsFirst(CountingSender):
    """Its first send fails with ``error``; later sends succeed."""

    def __init__(self, error: SendError) -> None:
        super().__init__()
        self.error = error

    async def send(
        self, to: str, text: str, *, reference: str | None = None, **_: Any
    ) -> SendResult:
        if not self.sent:
            self.sent.append(str(reference))
            raise self.error
        return await super().send(to, text, reference=reference)


async def retried_once(
    store: MessageStore, sender: CountingSender, message_id: str
) -> tuple[Message, Metrics]:
    """Run a worker until ``message_id`` is back in the queue after one attempt."""
    metrics = Metrics()
    settings = WorkerSettings(poll_interval=0.01, lease_seconds=60)
    worker = SubmitWorker(store, sender, worker_id="w1", settings=settings, metrics=metrics)
    worker.start()
    try:
        async with asyncio.timeout(10):
            while (
                (stored := await store.get(message_id)) is None
                or stored.attempts < 1
                or (stored.status is not MessageStatus.QUEUED)
                or stored.lease_owner is not None  # claimed (queued, leased), not yet back
            ):
                await asyncio.sleep(0.01)
    finally:
        await worker.stop()
    return stored, metrics


async def test_a_retry_after_some_parts_went_out_is_counted_as_a_resend(
    store: MessageStore,
) -> None:
    message = (await store.enqueue(NewMessage("+421900000001", "x" * 200, parts=2))).message
    # The link is lost after part 1 went out; no concatenation reference to resume with.
    cut = SendError(ConnectionLost("the link went down"), ["PART1-A", None])
    stored, metrics = await retried_once(store, FailsFirst(cut), message.id)
    assert stored.resends == 1  # its next send repeats part 1: a possible duplicate
    [retry] = [e for e in stored.events if e.kind is EventKind.RETRY]
    assert retry.detail["sent_parts"] == {"1": "PART1-A"}
    assert "o2sms_resends_total 1.0" in metrics.render().decode()


async def test_a_record_that_fails_for_another_reason_than_an_outage_gives_up(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "_FIRST_DELAY", 0.001)
    message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message
    calls = 0

    async def broken(batch: Sequence[tuple[str, Sequence[str]]], **options: Any) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug, not an outage: it would fail the same way for ever")

    monkeypatch.setattr(store, "mark_submitted_many", broken)
    worker = worker_on(store, CountingSender())
    worker.start()
    try:
        async with asyncio.timeout(10):
            while calls < workers._STORE_RETRIES or worker.in_flight:
                await asyncio.sleep(0.01)
    finally:
        await worker.stop()
    assert calls == workers._STORE_RETRIES  # then left to the lease, not retried for ever
    stored = await store.get(message.id)
    assert stored is not None
    assert stored.status is MessageStatus.QUEUED
    assert stored.lease_owner == "w1"  # it went out: the stop did not hand it back as unsent


async def test_a_failed_record_of_several_submits_is_retried_message_by_message(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Submits are recorded together; one record the store refuses must not leave the others
    unrecorded (sent again after their leases) nor be retried for ever."""
    monkeypatch.setattr(workers, "_FIRST_DELAY", 0.001)
    good = [(await store.enqueue(NewMessage(f"+42190000000{i}", "hi"))).message for i in range(3)]
    bad = (await store.enqueue(NewMessage("+421900000009", "refused"))).message
    record = store.mark_submitted_many
    refused = 0

    async def refusing(batch: Sequence[tuple[str, Sequence[str]]], **options: Any) -> None:
        nonlocal refused
        if any(message_id == bad.id for message_id, _ in batch):
            refused += 1
            raise RuntimeError("a bug, not an outage: this record fails the same way for ever")
        await record(batch, **options)

    monkeypatch.setattr(store, "mark_submitted_many", refusing)
    sender = CountingSender()
    worker = worker_on(store, sender)
    worker.start()
    try:
        for message in good:
            await wait_status(store, message.id, MessageStatus.SUBMITTED)
        async with asyncio.timeout(10):
            while worker.in_flight:
                await asyncio.sleep(0.01)
    finally:
        await worker.stop()
    assert sorted(sender.sent) == sorted(m.id for m in [*good, bad])  # each sent once
    # The batch of them all, the refused one alone, then its retries: a few, not for ever.
    assert workers._STORE_RETRIES <= refused <= workers._STORE_RETRIES + 2
    stored = await store.get(bad.id)
    assert stored is not None
    assert stored.status is MessageStatus.QUEUED
    assert stored.lease_owner == "w1"  # it went out: left to its lease, not given back


async def test_the_records_of_submits_that_end_together_are_queued_in_one_call(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No coroutine waits per message for its record: the sends answered in one loop
    iteration queue their records to the group commit at once."""
    ids = [(await store.enqueue(NewMessage(f"+42190000000{i}", "hi"))).message.id for i in range(5)]
    queued: list[int] = []
    queue_many = GroupCommit.queue_many

    def counting(group: GroupCommit[Any, Any], items: Sequence[Any]) -> Any:
        queued.append(len(items))
        return queue_many(group, items)

    monkeypatch.setattr(GroupCommit, "queue_many", counting)
    metrics = Metrics()
    settings = WorkerSettings(poll_interval=0.01, lease_seconds=60)
    worker = SubmitWorker(
        store, CountingSender(), worker_id="w1", settings=settings, metrics=metrics
    )
    worker.start()
    try:
        for message_id in ids:
            await wait_status(store, message_id, MessageStatus.SUBMITTED)
    finally:
        await worker.stop()
    assert queued == [5]  # claimed together, answered at once: one call for them all
    assert "o2sms_messages_submitted_total 5.0" in metrics.render().decode()


async def test_receipts_of_a_stored_submit_do_not_wait_while_a_neighbour_record_retries(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records queued together are marked together; once one is stored its receipts go on,
    even while the record of another, gathered with it, is still retried."""
    monkeypatch.setattr(workers, "_FIRST_DELAY", 0.05)
    monkeypatch.setattr(workers, "_MAX_DELAY", 0.05)
    good = (await store.enqueue(NewMessage("+421900000001", "good"))).message
    bad = (await store.enqueue(NewMessage("+421900000002", "bad"))).message
    record = store.mark_submitted_many

    async def outage_for_bad(batch: Sequence[tuple[str, Sequence[str]]], **options: Any) -> None:
        if any(message_id == bad.id for message_id, _ in batch):
            raise OSError("the database is down")  # an outage: retried for as long as it lasts
        await record(batch, **options)

    monkeypatch.setattr(store, "mark_submitted_many", outage_for_bad)
    records = SubmitRecords()
    sender = CountingSender()
    settings = WorkerSettings(poll_interval=0.01, lease_seconds=60)
    worker = SubmitWorker(
        store, sender, worker_id="w1", records=records, settings=settings, metrics=Metrics()
    )
    worker.start()
    try:
        await wait_status(store, good.id, MessageStatus.SUBMITTED)
        await asyncio.sleep(0.2)  # a few retries of the other
        assert worker.in_flight == 1  # the other, still being recorded
        good_id = f"ID{sender.sent.index(good.id) + 1}"
        bad_id = f"ID{sender.sent.index(bad.id) + 1}"
        async with asyncio.timeout(0.5):  # not the 5 s a receipt waits at most
            await records.wait_for([good_id])
        assert records.busy([bad_id])  # its own receipts still wait for it
    finally:
        await worker.stop(timeout=0.2)


async def test_a_stop_that_gives_up_on_gathered_records_leaves_nothing_in_flight(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message
    taken = asyncio.Event()
    record = store.mark_submitted_many

    async def slow(batch: Sequence[tuple[str, Sequence[str]]], **options: Any) -> None:
        taken.set()
        await asyncio.sleep(0.5)  # longer than the stop waits
        await record(batch, **options)

    monkeypatch.setattr(store, "mark_submitted_many", slow)
    worker = worker_on(store, CountingSender())
    worker.start()
    async with asyncio.timeout(5):
        await taken.wait()
    assert worker.in_flight == 1
    await worker.stop(timeout=0.1)
    assert worker.in_flight == 0  # the gauge says what the worker still waits for: nothing
    # Its batch was taken before the stop gave up: the record still lands, never given back.
    await wait_status(store, message.id, MessageStatus.SUBMITTED)


async def test_a_final_error_after_the_lease_was_lost_leaves_the_message_to_its_new_holder(
    store: MessageStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message

    class LosesItsLease(CountingSender):
        async def send(
            self, to: str, text: str, *, reference: str | None = None, **_: Any
        ) -> SendResult:
            self.sent.append(str(reference))
            clock.advance(61)  # the submit outlived the lease: another worker took it
            [taken] = await store.claim("w2")
            assert taken.id == message.id
            raise SendError(SubmitError(CommandStatus.ESME_RINVDSTADR), [None])

    metrics = Metrics()
    settings = WorkerSettings(poll_interval=0.01, lease_seconds=60)
    sender = LosesItsLease()
    worker = SubmitWorker(store, sender, worker_id="w1", settings=settings, metrics=metrics)
    worker.start()
    try:
        async with asyncio.timeout(10):
            while not sender.sent or worker.in_flight:
                await asyncio.sleep(0.01)
    finally:
        await worker.stop()
    stored = await store.get(message.id)
    assert stored is not None
    assert (stored.status, stored.lease_owner) == (MessageStatus.QUEUED, "w2")
    assert 'o2sms_messages_final_total{status="failed"} 0.0' in metrics.render().decode()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def stopped_during_send(store: MessageStore, message_id: str, error: SendError) -> Message:
    """Run a worker whose send waits until the worker stops, then fails with ``error``;
    return the message as stored after the stop."""
    sending = asyncio.Event()
    closing = asyncio.Event()

    class FailsAtStop(CountingSender):
        async def send(
            self, to: str, text: str, *, reference: str | None = None, **_: Any
        ) -> SendResult:
            self.sent.append(str(reference))
            sending.set()
            await closing.wait()
            raise error

    worker = worker_on(store, FailsAtStop())
    worker.start()
    async with asyncio.timeout(10):
        await sending.wait()
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0.05)
    closing.set()
    await stopping
    stored = await store.get(message_id)
    assert stored is not None
    return stored


async def test_a_message_half_sent_when_the_client_closes_on_stop_is_a_counted_resend(
    store: MessageStore,
) -> None:
    message = (await store.enqueue(NewMessage("+421900000001", "x" * 200, parts=2))).message
    # The service stops: the client closes with part 2 unsent.
    closed = SendError(ClientClosedError("the client is closed"), ["PART1-A", None])
    stored = await stopped_during_send(store, message.id, closed)
    assert stored.status is MessageStatus.QUEUED
    assert stored.resends == 1  # its next send repeats part 1: counted, not silent
    [retry] = [e for e in stored.events if e.kind is EventKind.RETRY]
    assert retry.detail["sent_parts"] == {"1": "PART1-A"}


@pytest.mark.parametrize(
    ("cause", "counted"),
    [
        (ConnectionLost("the link went down with the submit_sm outstanding"), True),
        (ResponseTimeout("no submit_sm_resp within 10 s"), True),
        (NotSentError("it never went out"), False),
        (SubmitError(CommandStatus.ESME_RTHROTTLED), False),
    ],
)
async def test_a_retry_after_a_submit_left_unanswered_is_a_counted_resend(
    store: MessageStore, cause: ClientError, counted: bool
) -> None:
    message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message
    stored, metrics = await retried_once(store, FailsFirst(SendError(cause, [None])), message.id)
    # The SMSC may have taken a submit whose answer never came: its retry may be a duplicate.
    assert stored.resends == (1 if counted else 0)
    [retry] = [e for e in stored.events if e.kind is EventKind.RETRY]
    assert retry.detail.get("unanswered", False) is counted
    assert (f"o2sms_resends_total {1.0 if counted else 0.0}") in metrics.render().decode()


async def test_a_long_message_cut_short_is_resumed_with_only_its_missing_part(
    store: MessageStore, clock: FakeClock
) -> None:
    message = (await store.enqueue(NewMessage("+421900000001", "x" * 200, parts=2))).message
    resumes: list[Resume | None] = []

    class CutThenResumed(CountingSender):
        async def send(
            self,
            to: str,
            text: str,
            *,
            reference: str | None = None,
            resume: Resume | None = None,
            **_: Any,
        ) -> SendResult:
            resumes.append(resume)
            self.sent.append(str(reference))
            if len(self.sent) == 1:  # part 2 never left: the link went down first
                raise SendError(NotSentError("the link went down"), ["PART1-A", None], 0x42)
            assert resume is not None
            return SendResult(("PART1-A", "PART2-B"), Encoding.GSM7, 2, to, reference)

    metrics = Metrics()
    settings = WorkerSettings(poll_interval=0.01, lease_seconds=60)
    worker = SubmitWorker(
        store, CutThenResumed(), worker_id="w1", settings=settings, metrics=metrics
    )
    worker.start()
    try:
        async with asyncio.timeout(10):
            while len(resumes) < 2:
                clock.advance(1)  # past the retry's backoff
                await asyncio.sleep(0.01)
            await wait_status(store, message.id, MessageStatus.SUBMITTED)
    finally:
        await worker.stop()
    assert resumes == [None, Resume(0x42, ("PART1-A", None))]
    stored = await store.get(message.id)
    assert stored is not None
    assert [part.smsc_id for part in stored.parts] == ["PART1-A", "PART2-B"]
    assert stored.resends == 0  # part 1 went out once
    assert "o2sms_resends_total 0.0" in metrics.render().decode()


async def test_a_resumed_message_withdrawn_at_stop_goes_back_uncounted_with_its_parts(
    store: MessageStore, clock: FakeClock
) -> None:
    message = (await store.enqueue(NewMessage("+421900000001", "x" * 200, parts=2))).message
    await store.claim("w0")
    await store.requeue(
        message.id, "w0", error="link lost", sent=["PART1-A", None], concat_reference=0x42
    )
    await store.release("w0")
    clock.advance(10)  # past the retry's backoff
    # Part 2 waits for the rate limit; the stop withdraws it.
    withdrawn = SendError(ClientClosedError("withdrawn"), ["PART1-A", None], 0x42)
    stored = await stopped_during_send(store, message.id, withdrawn)
    assert stored.lease_owner is None  # given back at once: nothing of this try went out
    assert stored.attempts == 1  # this try's attempt uncounted
    assert stored.resends == 0
    assert stored.partial_send == PartialSend(0x42, ("PART1-A", None))


@pytest.mark.parametrize("ending", ["unanswered", "final_after_a_part"])
async def test_a_send_that_may_have_gone_out_keeps_its_lease_when_its_record_fails(
    store: MessageStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    # Its record gave up (the store away) and a stop came before the lease ran out: handed
    # back as unsent, it went again uncounted though the SMSC may have it.
    monkeypatch.setattr(workers, "_FIRST_DELAY", 0.001)
    monkeypatch.setattr(workers, "_MAX_DELAY", 0.002)
    if ending == "unanswered":
        text, parts, method = "hi", 1, "requeue"
        error = SendError(ResponseTimeout("no submit_sm_resp"), [None])
    else:
        text, parts, method = "x" * 200, 2, "mark_failed"
        error = SendError(SubmitError(CommandStatus.ESME_RINVDSTADR), ["PART-1", None])
    message = (await store.enqueue(NewMessage("+421900000001", text, parts=parts))).message
    tries = 0

    async def store_away(*_: Any, **__: Any) -> None:
        nonlocal tries
        tries += 1
        raise OSError("the database is down")

    monkeypatch.setattr(store, method, store_away)

    class Fails(CountingSender):
        async def send(self, to: str, text: str, **options: Any) -> SendResult:
            raise error

    worker = worker_on(store, Fails())
    worker.start()
    async with asyncio.timeout(10):
        while tries < workers._STORE_RETRIES or worker.in_flight:
            await asyncio.sleep(0.01)
    await worker.stop()
    stored = await store.get(message.id)
    assert stored is not None
    assert stored.lease_owner == "w1"  # kept: the claim after the lease counts the resend
    clock.advance(61)
    [again] = await store.claim("w2")
    assert again.resend


async def test_the_leases_of_sends_under_way_are_kept_while_a_stop_waits_for_them(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'lease.db'}", clock=clock)
    try:
        message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message
        sending, answer = asyncio.Event(), asyncio.Event()

        class Slow(CountingSender):
            async def send(self, to: str, text: str, **options: Any) -> SendResult:
                sending.set()
                await answer.wait()  # on the wire, its submit_sm_resp slow
                return await super().send(to, text, **options)

        settings = WorkerSettings(poll_interval=0.01, lease_seconds=5)
        worker = SubmitWorker(store, Slow(), worker_id="w1", settings=settings, metrics=Metrics())
        worker.start()
        await asyncio.wait_for(sending.wait(), 5)
        stopping = asyncio.create_task(worker.stop(timeout=10))
        clock.advance(4)
        await asyncio.sleep(2.0)  # the heartbeat (every 5/3 s) pushes the lease to now + 5
        clock.advance(4)  # 8 s after the claim: the first lease alone would have run out
        assert await store.claim("w2") == []
        answer.set()
        await stopping
        stored = await store.get(message.id)
        assert stored is not None
        assert stored.status is MessageStatus.SUBMITTED
    finally:
        await store.close()


async def test_a_stop_that_cannot_give_back_its_leases_says_so(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def store_away(*_: Any, **__: Any) -> int:
        raise OSError("the database is down")

    monkeypatch.setattr(store, "release", store_away)
    worker = worker_on(store, CountingSender())
    worker.start()
    with caplog.at_level(logging.WARNING, logger="o2sms.service"):
        await worker.stop()  # does not raise
    assert any("could not give back" in r.getMessage() for r in caplog.records)


async def test_one_transaction_records_at_most_500_parts(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each part's id takes PostgreSQL advisory locks until the commit, from a table the
    server shares: a burst of long messages must not become one huge record."""
    ids = [
        (await store.enqueue(NewMessage(f"+4219000{i:05d}", "x" * 900, parts=6))).message.id
        for i in range(300)
    ]
    record = store.mark_submitted_many
    batches: list[int] = []

    async def counting(batch: Sequence[tuple[str, Sequence[str]]], **options: Any) -> None:
        batches.append(sum(len(smsc_ids) for _, smsc_ids in batch))
        await record(batch, **options)

    class LongSender(CountingSender):
        async def send(
            self, to: str, text: str, *, reference: str | None = None, **_: Any
        ) -> SendResult:
            assert reference is not None
            self.sent.append(reference)
            parts = tuple(f"ID{len(self.sent)}-{n}" for n in range(6))
            return SendResult(parts, Encoding.GSM7, 6, to, reference)

    monkeypatch.setattr(store, "mark_submitted_many", counting)
    worker = worker_on(store, LongSender())
    worker.start()
    try:
        for message_id in ids:
            await wait_status(store, message_id, MessageStatus.SUBMITTED)
    finally:
        await worker.stop()
    assert sum(batches) == 300 * 6
    assert max(batches) <= 500
    assert len(batches) < 300  # still batched


async def test_a_batch_of_events_commits_its_receipts_together_and_fails_only_the_bad_one(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = []
    for n in range(3):
        ids.append((await store.enqueue(NewMessage(f"+42190000001{n}", "hi"))).message.id)
    await store.claim("w1", limit=3, lease_seconds=60)
    await store.mark_submitted_many(
        [(mid, [str(1001 + n)]) for n, mid in enumerate(ids)], worker_id="w1"
    )
    apply = store.apply_receipts
    transactions: list[int] = []

    async def apply_receipts(batch: list[tuple[DeliveryReceipt, str | None]]) -> Any:
        transactions.append(len(batch))
        if any(receipt.id == "1002" for receipt, _ in batch):
            raise ValueError("a receipt the store refuses")
        return await apply(batch)

    monkeypatch.setattr(store, "apply_receipts", apply_receipts)
    metrics = Metrics()
    changes: list[None] = []
    recorder = EventRecorder(store, metrics=metrics, on_change=lambda: changes.append(None))
    events: list[Event] = [
        DeliveryReport(parse(f"id:{sid} stat:DELIVRD err:000"), sid) for sid in ("1001", "1002")
    ]
    events.append(UnreadableDeliverSm(DeliverSm(), "not a receipt", "session-1"))
    events.append(DeliveryReport(parse("id:1003 stat:DELIVRD err:000"), "1003"))
    failures = await recorder.batch(events)
    assert [type(f).__name__ if f else None for f in failures] == [None, "ValueError", None, None]
    assert transactions == [3, 1, 1, 1]  # together first, then one by one
    statuses = [m.status if m else None for m in await asyncio.gather(*map(store.get, ids))]
    delivered, submitted = MessageStatus.DELIVERED, MessageStatus.SUBMITTED
    assert statuses == [delivered, submitted, delivered]
    sample = metrics.registry.get_sample_value
    assert sample("o2sms_receipts_total", {"result": "applied"}) == 2
    assert sample("o2sms_receipts_total", {"result": "unreadable"}) == 1
    assert sample("o2sms_messages_final_total", {"status": "delivered"}) == 2
    assert changes == [None]  # one wake-up for the batch


async def test_an_inbound_sms_wakes_the_webhook_sender_once_stored(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its webhook is in the outbox from that commit on: without the wake-up it waited for the
    # sender's next poll, as status webhooks do not.
    changes: list[int] = []
    recorder = EventRecorder(
        store, metrics=Metrics(), on_change=lambda: changes.append(len(store_inbound))
    )
    store_inbound: list[object] = []
    record = store.record_inbound

    async def record_inbound(new: Any) -> Any:
        stored = await record(new)
        store_inbound.append(stored)
        return stored

    monkeypatch.setattr(store, "record_inbound", record_inbound)
    await recorder(InboundSms("STOP", "421903999888", "4444", 0, session="session-1"))
    assert changes == [1]  # once, after the commit


async def test_a_receipt_whose_submit_is_being_recorded_does_not_hold_up_the_commit_of_its_batch(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    apply = store.apply_receipts
    transactions: list[list[str]] = []

    async def apply_receipts(batch: list[tuple[DeliveryReceipt, str | None]]) -> Any:
        transactions.append([receipt.id for receipt, _ in batch])
        return await apply(batch)

    monkeypatch.setattr(store, "apply_receipts", apply_receipts)
    records = SubmitRecords()
    recorder = EventRecorder(store, metrics=Metrics(), records=records)
    events: list[Event] = [
        DeliveryReport(parse(f"id:{sid} stat:DELIVRD err:000"), sid)
        for sid in ("2001", "2002", "2003")
    ]
    with records.recording(["2002"]):
        batch = asyncio.create_task(recorder.batch(events))
        async with asyncio.timeout(5):
            while not transactions:
                await asyncio.sleep(0.01)
        assert transactions == [["2001", "2003"]]
        assert not batch.done()  # 2002 waits for the record of its submit
    assert await batch == [None, None, None]
    assert transactions == [["2001", "2003"], ["2002"]]
