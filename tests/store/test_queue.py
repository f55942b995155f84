"""Enqueue, read, list, idempotency, claims with leases, retries, release and cancel."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from o2sms.store import (
    EventKind,
    IdempotencyConflictError,
    LeaseLostError,
    MessageNotFoundError,
    MessageStatus,
    MessageStore,
    NewMessage,
    NotCancellableError,
    PartialSend,
    ReceiptResult,
)
from o2sms.store.schema import message_events
from tests.locks import hold_pg_table_lock, hold_sqlite_write_lock
from tests.store.conftest import FakeClock, Location, OpenStore
from tests.store.test_receipts import receipt

pytestmark = pytest.mark.asyncio


def sms(n: int = 0, **fields: object) -> NewMessage:
    """A message to a numbered recipient; ``fields`` override the rest."""
    values: dict[str, object] = {"recipient": f"+42190000{n:04d}", "text": f"message {n}"}
    values.update(fields)
    return NewMessage(**values)  # type: ignore[arg-type]


def detailed(**fields: object) -> NewMessage:
    """A message with the optional fields set; ``fields`` set more or override them."""
    values: dict[str, object] = {
        "recipient": "+421900123456",
        "text": "Ahoj",
        "sender": "O2",
        "encoding": "gsm",
        "parts": 1,
        "flash": True,
        "validity": timedelta(hours=2),
        "reference": "order-7",
        "callback_url": "https://example.test/hook",
    }
    values.update(fields)
    return NewMessage(**values)  # type: ignore[arg-type]


async def test_enqueue_stores_every_field_and_get_reads_it_back(
    store: MessageStore, clock: FakeClock
) -> None:
    result = await store.enqueue(detailed())
    assert result.created
    got = await store.get(result.message.id)
    assert got is not None
    assert replace(got, events=()) == result.message  # what enqueue returned is what is stored
    assert (got.recipient, got.sender, got.text, got.flash) == ("+421900123456", "O2", "Ahoj", True)
    assert got.validity == timedelta(hours=2)
    assert got.status is MessageStatus.QUEUED
    assert got.created_at == clock()
    assert got.created_at.tzinfo is not None
    assert [e.kind for e in got.events] == [EventKind.QUEUED]
    assert await store.get("no-such-id") is None


async def test_what_enqueue_many_returns_is_what_get_reads_back(
    store: MessageStore, clock: FakeClock
) -> None:
    # the returned messages are built from the rows as written, not read back: every field,
    # each kind of row (plain, scheduled, idempotent, a caller's own id) must agree with get()
    later = clock() + timedelta(hours=1)
    batch = [
        detailed(),
        detailed(schedule_at=later, parts=3, owner="tenant"),
        detailed(idempotency_key="k-1", owner="tenant", validity=None, sender=None),
        detailed(id="my-own-id", flash=False, callback_url=None, validity=timedelta(seconds=90.5)),
    ]
    results = await store.enqueue_many(batch)
    assert [r.created for r in results] == [True] * 4
    for new, result in zip(batch, results, strict=True):
        got = await store.get(result.message.id)
        assert got is not None
        assert replace(got, events=()) == result.message
        # read without building the message (the HTTP answer), they are the message's
        assert (result.id, result.recipient, result.status) == (got.id, got.recipient, got.status)
        fields = ["recipient", "sender", "text", "encoding", "flash", "reference", "callback_url"]
        fields += ["idempotency_key", "owner", "schedule_at"]
        assert [getattr(got, f) for f in fields] == [getattr(new, f) for f in fields]
        assert got.parts_count == new.parts
    assert results[1].message.status is MessageStatus.SCHEDULED
    assert results[1].message.next_attempt_at == later
    assert results[3].message.id == "my-own-id"
    assert results[3].message.validity == timedelta(seconds=91)  # whole seconds, rounded up


async def test_the_queued_entry_is_derived_from_the_row_and_never_doubled(
    store: MessageStore, clock: FakeClock
) -> None:
    now = clock()
    later = now + timedelta(minutes=10)
    plain = (await store.enqueue(sms(1))).message
    scheduled = (await store.enqueue(sms(2, schedule_at=later))).message
    past = (await store.enqueue(sms(3, schedule_at=now - timedelta(minutes=1)))).message
    details = {}
    for message in (plain, scheduled, past):
        got = await store.get(message.id)
        assert got is not None
        first = got.events[0]
        assert (first.kind, first.at, first.id) == (EventKind.QUEUED, now, 0)
        details[message.id] = first.detail
    assert details[plain.id] == {"status": "queued", "schedule_at": None}
    assert details[scheduled.id] == {"status": "scheduled", "schedule_at": later.isoformat()}
    assert details[past.id]["status"] == "queued"
    # A store written by an earlier version holds the entry as a row: shown once, as stored.
    async with store.engine.begin() as connection:
        await connection.execute(
            message_events.insert().values(
                message_id=plain.id, at=now, kind="queued", detail={"status": "queued", "v": 1}
            )
        )
    got = await store.get(plain.id)
    assert got is not None
    assert [(e.kind, e.detail.get("v")) for e in got.events] == [(EventKind.QUEUED, 1)]


async def test_a_future_schedule_makes_the_message_scheduled_until_due(
    store: MessageStore, clock: FakeClock
) -> None:
    later = clock() + timedelta(minutes=10)
    message = (await store.enqueue(sms(schedule_at=later))).message
    assert message.status is MessageStatus.SCHEDULED
    assert await store.claim("w1") == []
    clock.advance(600)
    assert [m.id for m in await store.claim("w1")] == [message.id]


async def test_list_filters_and_paginates_newest_first(
    store: MessageStore, clock: FakeClock
) -> None:
    ids = []
    for n in range(7):
        ids.append((await store.enqueue(sms(n, reference="a" if n % 2 else "b"))).message.id)
        clock.advance(1)
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.list_messages(limit=3, cursor=cursor)
        seen += [m.id for m in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ids[::-1]
    refs = await store.list_messages(reference="a")
    assert [m.id for m in refs.items] == [ids[5], ids[3], ids[1]]
    start = clock() - timedelta(seconds=5)  # messages 2..6 were created from here on
    window = await store.list_messages(created_from=start, created_to=start + timedelta(seconds=2))
    assert [m.id for m in window.items] == [ids[3], ids[2]]
    await store.cancel(ids[0])
    cancelled = await store.list_messages(status=MessageStatus.CANCELLED)
    assert [m.id for m in cancelled.items] == [ids[0]]
    queued = await store.list_messages(status=[MessageStatus.QUEUED, MessageStatus.SCHEDULED])
    assert len(queued.items) == 6
    with pytest.raises(ValueError, match="cursor"):
        await store.list_messages(cursor="garbage!")


async def test_the_same_idempotency_key_returns_the_first_message(store: MessageStore) -> None:
    first = await store.enqueue(sms(1, idempotency_key="k1", owner="key-a"))
    again = await store.enqueue(sms(1, idempotency_key="k1", owner="key-a", sender="Other"))
    other_owner = await store.enqueue(sms(3, idempotency_key="k1", owner="key-b"))
    assert first.created
    assert not again.created
    assert other_owner.created
    assert again.message.id == first.message.id
    assert again.message.sender is None  # the stored one, not the new body
    assert other_owner.message.id != first.message.id
    assert len((await store.list_messages()).items) == 2


async def test_an_idempotency_key_used_for_another_recipient_or_text_is_a_conflict(
    store: MessageStore,
) -> None:
    await store.enqueue(sms(1, idempotency_key="k1"))
    with pytest.raises(IdempotencyConflictError):
        await store.enqueue(sms(2, idempotency_key="k1"))  # another recipient and text
    with pytest.raises(IdempotencyConflictError):
        await store.enqueue(sms(1, idempotency_key="k1", text="changed"))
    assert len((await store.list_messages()).items) == 1


def request_of(numbers: list[int], key: str, text: str = "hi") -> list[NewMessage]:
    """The messages of one request with ``key`` to the numbered recipients."""
    return [sms(n, text=text, idempotency_key=key) for n in numbers]


async def test_a_keyed_request_is_replayed_whole_and_stored_under_one_key_per_message(
    store: MessageStore,
) -> None:
    [first] = await store.enqueue_requests([request_of([1, 2, 3], "order-7")])
    assert not isinstance(first, IdempotencyConflictError)
    assert [r.created for r in first] == [True, True, True]
    assert [r.message.idempotency_key for r in first] == [f"order-7\x1f{i}" for i in range(3)]
    [again] = await store.enqueue_requests([request_of([1, 2, 3], "order-7")])
    assert not isinstance(again, IdempotencyConflictError)
    assert [r.created for r in again] == [False, False, False]
    assert [r.message.id for r in again] == [r.message.id for r in first]
    assert len((await store.list_messages()).items) == 3


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ([1, 2], [1]),  # a recipient dropped
        ([1], [1, 2]),  # a recipient added to a one-message request
        ([1, 2], [1, 3, 2]),  # one added in the middle: "#2" would be new
        ([1, 2, 3], [1, 2]),  # the last one dropped: "#0" and "#1" alone would match
        ([1, 2], [2, 1]),  # the same recipients in another order
    ],
)
async def test_a_keyed_request_with_other_recipients_is_a_conflict_and_writes_nothing(
    store: MessageStore, before: list[int], after: list[int]
) -> None:
    await store.enqueue_requests([request_of(before, "k")])
    plain = sms(9)  # in the same transaction as the refused request: stored all the same
    [stored_plain, refused] = await store.enqueue_requests([[plain], request_of(after, "k")])
    assert isinstance(refused, IdempotencyConflictError)
    assert not isinstance(stored_plain, IdempotencyConflictError)
    stored = (await store.list_messages()).items
    assert len(stored) == len(before) + 1
    assert plain.recipient in {m.recipient for m in stored}
    with pytest.raises(IdempotencyConflictError):  # enqueue_many: all or none
        await store.enqueue_many([sms(8), sms(7, text="other", idempotency_key="k")])
    assert len((await store.list_messages()).items) == len(before) + 1


async def test_a_key_twice_in_one_batch_stores_once_and_replays_once(store: MessageStore) -> None:
    first, again = await store.enqueue_requests([request_of([1, 2], "k"), request_of([1, 2], "k")])
    assert not isinstance(first, IdempotencyConflictError)
    assert not isinstance(again, IdempotencyConflictError)
    assert [r.created for r in first] == [True, True]
    assert [r.created for r in again] == [False, False]
    assert [r.message.id for r in again] == [r.message.id for r in first]
    assert len((await store.list_messages()).items) == 2


async def test_keys_of_a_clients_own_that_end_in_hash_digits_are_keys_like_any_other(
    store: MessageStore,
) -> None:
    await store.enqueue_many(
        [sms(1, text="hi", idempotency_key="k#0"), sms(2, text="hi", idempotency_key="k#1")]
    )
    [request] = await store.enqueue_requests([request_of([1, 2], "k")])
    assert not isinstance(request, IdempotencyConflictError)
    assert [r.created for r in request] == [True, True]  # another key: sent, not replayed
    assert len((await store.list_messages()).items) == 4


async def test_a_keyed_request_beyond_one_statements_parameters_is_stored_and_replayed(
    store: MessageStore,
) -> None:
    numbers = list(range(17_000))  # its family names more keys than PostgreSQL's 32,767 binds
    [first] = await store.enqueue_requests([request_of(numbers, "huge")])
    assert not isinstance(first, IdempotencyConflictError)
    assert all(r.created for r in first)
    [again] = await store.enqueue_requests([request_of(numbers, "huge")])
    assert not isinstance(again, IdempotencyConflictError)
    assert not any(r.created for r in again)
    assert [r.message.id for r in again] == [r.message.id for r in first]


async def test_a_key_taken_without_the_lock_meanwhile_leaves_nothing_of_the_request(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What an instance of an older version, which takes no lock, could write between this
    # request's read of the key's family and its insert.
    taken = await store.enqueue(sms(2, text="hi", idempotency_key="k\x1f1"))

    async def read_before_it_was_taken(*_: object) -> dict[tuple[str, str], object]:
        return {}

    monkeypatch.setattr(store, "_keyed_rows", read_before_it_was_taken)
    [refused] = await store.enqueue_requests([request_of([1, 2], "k")])
    assert isinstance(refused, IdempotencyConflictError)
    assert [m.id for m in (await store.list_messages()).items] == [taken.message.id]


async def test_batches_of_the_same_keys_in_two_processes_neither_deadlock_nor_duplicate(
    store: MessageStore, open_at: OpenStore
) -> None:
    other = await open_at()  # a second process: its own pool of connections
    numbers = list(range(6))
    rounds = await asyncio.gather(
        *(
            (store if turn % 2 else other).enqueue_requests(
                [request_of([n], f"key-{n}") for n in (numbers if turn % 2 else numbers[::-1])]
            )
            for turn in range(6)
        )
    )
    ids = {
        result.message.idempotency_key: result.message.id
        for batch in rounds
        for request in batch
        for result in request  # type: ignore[union-attr]
    }
    for batch in rounds:
        assert not any(isinstance(request, IdempotencyConflictError) for request in batch)
        for request in batch:
            for result in request:  # type: ignore[union-attr]
                assert ids[result.message.idempotency_key] == result.message.id
    assert len((await store.list_messages()).items) == len(numbers)


async def test_the_messages_of_a_request_share_one_key_and_owner(store: MessageStore) -> None:
    with pytest.raises(ValueError, match="share"):
        await store.enqueue_requests([[sms(1, idempotency_key="a"), sms(2, idempotency_key="b")]])
    with pytest.raises(ValueError, match="at least one"):
        await store.enqueue_requests([[]])


async def test_concurrent_enqueues_with_one_key_make_one_row(
    store: MessageStore, open_at: OpenStore
) -> None:
    other = await open_at()  # a second process: its own pool of connections
    results = await asyncio.gather(
        *((store if i % 2 else other).enqueue(sms(1, idempotency_key="same")) for i in range(20))
    )
    assert len({r.message.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len((await store.list_messages()).items) == 1


async def test_enqueue_many_keeps_order_and_dedupes_within_the_batch(
    store: MessageStore,
) -> None:
    results = await store.enqueue_many(
        [sms(1), sms(2, idempotency_key="x"), sms(3), sms(2, idempotency_key="x")]
    )
    assert [r.created for r in results] == [True, True, True, False]
    assert results[3].message.id == results[1].message.id
    assert [r.message.recipient for r in results[:3]] == [sms(n).recipient for n in (1, 2, 3)]


async def test_claim_leases_due_messages_oldest_first(
    store: MessageStore, clock: FakeClock
) -> None:
    ids = []
    for n in range(5):
        ids.append((await store.enqueue(sms(n))).message.id)
        clock.advance(0.001)
    claimed = await store.claim("w1", limit=3, lease_seconds=30)
    assert [m.id for m in claimed] == ids[:3]
    assert all(m.lease_owner == "w1" and m.attempts == 1 for m in claimed)
    assert claimed[0].lease_until == clock() + timedelta(seconds=30)
    assert [m.id for m in await store.claim("w2", limit=10)] == ids[3:]
    assert await store.claim("w3") == []
    assert await store.queue_depth() == 5


async def test_a_claimed_message_carries_every_stored_field(
    store: MessageStore, clock: FakeClock
) -> None:
    new = detailed(
        parts=2,
        schedule_at=clock() - timedelta(seconds=5),
        idempotency_key="key-1",
        owner="tenant",
    )
    message = (await store.enqueue(new)).message
    clock.advance(1)
    [claimed] = await store.claim("w1", lease_seconds=30)
    got = await store.get(message.id)
    assert got is not None
    assert claimed == replace(got, events=())  # the claim's own read agrees with get's
    assert (claimed.lease_owner, claimed.attempts) == ("w1", 1)
    assert claimed.lease_until == clock() + timedelta(seconds=30)
    assert claimed.updated_at == clock()
    assert claimed.schedule_at == new.schedule_at
    assert claimed.created_at.tzinfo is not None


@pytest.mark.parametrize("batch", [1, 7])
async def test_two_concurrent_claimers_never_get_the_same_message(
    store: MessageStore, open_at: OpenStore, batch: int
) -> None:
    await store.enqueue_many([sms(n) for n in range(120)])
    other = await open_at()

    async def drain(s: MessageStore, worker: str) -> list[str]:
        got: list[str] = []
        while claimed := await s.claim(worker, limit=batch, lease_seconds=300):
            got += [m.id for m in claimed]
        return got

    a, b = await asyncio.gather(drain(store, "a"), drain(other, "b"))
    assert not set(a) & set(b)
    assert len(a) + len(b) == len(set(a) | set(b)) == 120


async def test_an_expired_lease_is_claimed_again_and_counted_as_a_resend(
    store: MessageStore, clock: FakeClock
) -> None:
    message = (await store.enqueue(sms())).message
    [first] = await store.claim("dead-worker", lease_seconds=60)
    assert not first.resend
    clock.advance(59)
    assert await store.claim("w2") == []  # still leased
    clock.advance(1)
    [again] = await store.claim("w2")
    assert again.id == message.id
    assert (again.attempts, again.resends, again.lease_owner) == (2, 1, "w2")
    assert again.resend  # this claim took it over from the expired lease
    got = await store.get(message.id)
    assert got is not None
    assert not got.resend  # only claim sets it
    expired = [e for e in got.events if e.kind is EventKind.LEASE_EXPIRED]
    assert [e.detail["previous_owner"] for e in expired] == ["dead-worker"]
    with pytest.raises(LeaseLostError):
        await store.requeue(message.id, "dead-worker", error="too late")


async def test_a_late_final_error_leaves_a_message_another_worker_is_sending(
    store: MessageStore, clock: FakeClock
) -> None:
    message = (await store.enqueue(sms(parts=2))).message
    await store.claim("w1", lease_seconds=10)
    clock.advance(11)
    [taken] = await store.claim("w2")  # w1's lease ran out while its submit waited
    assert taken.resend
    with pytest.raises(LeaseLostError):  # w1's final error, too late
        await store.mark_failed(
            message.id, error_code=0x45, worker_id="w1", smsc_ids=["W1-PART1", None]
        )
    got = await store.get(message.id)
    assert got is not None
    assert (got.status, got.lease_owner, got.error_name, got.parts) == (
        MessageStatus.QUEUED,
        "w2",
        None,
        (),
    )
    await store.mark_submitted(message.id, ["W2-1", "W2-2"], worker_id="w2")
    for smsc_id in ("W2-1", "W2-2"):
        await store.apply_receipt(receipt(smsc_id))
    delivered = await store.get(message.id)
    assert delivered is not None
    assert delivered.status is MessageStatus.DELIVERED
    # without a worker the lease is not asked about (the holder's own final error still is)
    other = (await store.enqueue(sms())).message
    await store.claim("w3")
    assert (await store.mark_failed(other.id, error_name="X")).status is MessageStatus.FAILED


async def test_a_claim_after_a_retry_is_no_resend(store: MessageStore, clock: FakeClock) -> None:
    message = (await store.enqueue(sms())).message
    await store.claim("w1", lease_seconds=60)
    clock.advance(70)  # long past the first lease: the requeue cleared it, so no takeover
    await store.requeue(message.id, "w1", error="ESME_RTHROTTLED", delay=0)
    [again] = await store.claim("w2")
    assert (again.attempts, again.resends, again.resend) == (2, 0, False)


async def test_a_message_whose_leases_keep_expiring_fails_after_max_attempts(
    store: MessageStore, clock: FakeClock
) -> None:
    message = (await store.enqueue(sms())).message
    for _ in range(store.max_attempts):
        assert await store.claim("crashy", lease_seconds=10)
        clock.advance(10)
    assert await store.claim("w") == []
    got = await store.get(message.id)
    assert got is not None
    assert (got.status, got.error_name, got.attempts) == (MessageStatus.FAILED, "MAX_ATTEMPTS", 5)
    assert got.resends == store.max_attempts - 1
    assert store.exhausted == 1  # what the service's final-status metric counts


async def test_a_claim_leaves_alone_what_its_worker_still_holds(
    store: MessageStore, clock: FakeClock
) -> None:
    held, other = [(await store.enqueue(sms(n))).message for n in range(2)]
    await store.claim("w1", lease_seconds=10)
    clock.advance(10)  # both leases ran out (say the store was away) while w1 was sending
    [again] = await store.claim("w1", holding={held.id})
    assert (again.id, again.resend) == (other.id, True)
    got = await store.get(held.id)
    assert got is not None
    assert (got.attempts, got.resends, got.lease_owner) == (1, 0, "w1")  # not counted
    assert not [e for e in got.events if e.kind is EventKind.LEASE_EXPIRED]
    # ``holding`` speaks for its own worker only: another one takes the message over.
    [taken] = await store.claim("w2", holding={held.id})
    assert (taken.id, taken.resends, taken.lease_owner) == (held.id, 1, "w2")


async def test_a_held_message_at_its_last_attempt_is_not_failed(
    store: MessageStore, clock: FakeClock
) -> None:
    message = (await store.enqueue(sms())).message
    for _ in range(store.max_attempts):
        assert await store.claim("w1", lease_seconds=10)
        clock.advance(10)
    assert await store.claim("w1", holding={message.id}) == []
    got = await store.get(message.id)
    assert got is not None
    assert (got.status, got.attempts) == (MessageStatus.QUEUED, store.max_attempts)
    await store.mark_submitted(message.id, ["F00001"], worker_id="w1")
    got = await store.get(message.id)
    assert got is not None
    assert got.status is MessageStatus.SUBMITTED


async def test_a_lease_runs_from_when_the_claim_got_its_rows(
    store: MessageStore, clock: FakeClock, location: Location
) -> None:
    """A claim that waits for a lock leases from the end of the wait, not from its start."""
    await store.enqueue(sms())
    taken = threading.Event()

    def the_wait_lasted_100_s() -> None:
        clock.advance(100)

    if location.backend == "sqlite":
        holder = asyncio.create_task(
            asyncio.to_thread(
                hold_sqlite_write_lock, location.url, 0.3, taken, the_wait_lasted_100_s
            )
        )
    else:
        assert location.schema is not None
        holder = asyncio.create_task(
            hold_pg_table_lock(location.schema, 0.3, taken, the_wait_lasted_100_s)
        )
    while not taken.is_set():
        await asyncio.sleep(0.01)
    [claimed] = await store.claim("w1", lease_seconds=30)
    await holder
    assert claimed.lease_until == clock() + timedelta(seconds=30)


async def test_a_requeued_message_waits_for_its_backoff(
    store: MessageStore, clock: FakeClock
) -> None:
    message = (await store.enqueue(sms())).message
    await store.claim("w1")
    requeued = await store.requeue(message.id, "w1", error="ESME_RTHROTTLED")
    assert requeued.status is MessageStatus.QUEUED
    assert requeued.lease_owner is None
    assert requeued.next_attempt_at == clock() + timedelta(seconds=2)  # base * 2**0
    clock.advance(1.999)
    assert await store.claim("w1") == []
    clock.advance(0.001)
    [second] = await store.claim("w1")
    assert second.attempts == 2
    assert second.resends == 0
    await store.requeue(message.id, "w1", error="ESME_RMSGQFUL")
    clock.advance(3)
    assert await store.claim("w1") == []  # second backoff is 4 s
    clock.advance(1)
    assert await store.claim("w1")
    await store.requeue(message.id, "w1", error="x", delay=0)
    assert await store.claim("w1")  # an explicit delay wins
    got = await store.get(message.id)
    assert got is not None
    retries = [e.detail for e in got.events if e.kind is EventKind.RETRY]
    assert [(r["error"], r["delay"]) for r in retries] == [
        ("ESME_RTHROTTLED", 2.0),
        ("ESME_RMSGQFUL", 4.0),
        ("x", 0),
    ]


async def test_a_long_message_requeued_with_its_reference_keeps_what_went_out(
    store: MessageStore, clock: FakeClock
) -> None:
    message = (await store.enqueue(NewMessage("+421900000001", "x" * 400, parts=3))).message
    await store.claim("w1")
    requeued = await store.requeue(
        message.id, "w1", error="link lost", sent=["A-1", None, "A-3"], concat_reference=0x42
    )
    assert requeued.resends == 0  # the retry sends only part 2: nothing goes out twice
    assert requeued.partial_send == PartialSend(0x42, ("A-1", None, "A-3"))
    clock.advance(2)
    [claimed] = await store.claim("w1")
    assert claimed.partial_send == PartialSend(0x42, ("A-1", None, "A-3"))
    await store.requeue(message.id, "w1", error="link lost", sent=["A-1", None, None])
    stored = await store.get(message.id)
    assert stored is not None
    assert stored.resends == 1  # without a reference the parts that went out go again
    assert stored.partial_send is None
    retries = [e.detail for e in stored.events if e.kind is EventKind.RETRY]
    assert [r["sent_parts"] for r in retries] == [{"1": "A-1", "3": "A-3"}, {"1": "A-1"}]


async def _interrupted(store: MessageStore, clock: FakeClock) -> str:
    """A 3-part message whose parts 1 and 3 went out (A-1, A-3) before a retriable error,
    part 1's receipt already in (kept unmatched: its part is not recorded yet)."""
    message = (await store.enqueue(NewMessage("+421900000001", "x" * 400, parts=3))).message
    await store.claim("w1")
    await store.requeue(
        message.id, "w1", error="link lost", sent=["A-1", None, "A-3"], concat_reference=0x42
    )
    assert (await store.apply_receipt(receipt("A-1"))).result is ReceiptResult.PENDING
    return message.id


async def _parts(store: MessageStore, message_id: str) -> list[tuple[int, str | None, str]]:
    stored = await store.get(message_id)
    assert stored is not None
    assert stored.partial_send is None  # final: nothing left to resume
    return [(p.part_no, p.smsc_id, p.status.value) for p in stored.parts]


async def test_cancelling_an_interrupted_message_records_the_parts_that_went_out(
    store: MessageStore, clock: FakeClock
) -> None:
    message_id = await _interrupted(store, clock)
    assert (await store.cancel(message_id)).status is MessageStatus.CANCELLED
    assert await _parts(store, message_id) == [(1, "A-1", "delivered"), (3, "A-3", "submitted")]
    assert (await store.apply_receipt(receipt("A-3"))).result is ReceiptResult.APPLIED
    cancelled = await store.get(message_id)
    assert cancelled is not None
    assert cancelled.status is MessageStatus.CANCELLED


async def test_giving_up_after_the_last_attempt_records_every_part_that_went_out(
    store: MessageStore, clock: FakeClock
) -> None:
    message_id = await _interrupted(store, clock)
    for attempt in range(2, store.max_attempts + 1):
        clock.advance(600)
        assert await store.claim("w1")
        # the resumed tries send part 2 alone; the last one got it out, then lost the link
        sent = [None, "B-2", None] if attempt == store.max_attempts else [None, None, None]
        last = await store.requeue(
            message_id, "w1", error="link lost", sent=sent, concat_reference=0x42
        )
    assert last.status is MessageStatus.FAILED
    assert await _parts(store, message_id) == [
        (1, "A-1", "delivered"),
        (2, "B-2", "submitted"),
        (3, "A-3", "submitted"),
    ]
    stored = await store.get(message_id)
    assert stored is not None
    [failed] = [e.detail for e in stored.events if e.kind is EventKind.FAILED]
    assert failed["sent_parts"] == {"1": "A-1", "2": "B-2", "3": "A-3"}


async def test_a_lease_expiring_after_the_last_attempt_records_the_parts_that_went_out(
    store: MessageStore, clock: FakeClock
) -> None:
    message_id = await _interrupted(store, clock)
    for _ in range(store.max_attempts - 1):
        clock.advance(600)
        assert await store.claim("w1", lease_seconds=10)
    clock.advance(600)
    assert await store.claim("w2") == []  # the last lease ran out: given up
    stored = await store.get(message_id)
    assert stored is not None
    assert stored.status is MessageStatus.FAILED
    assert await _parts(store, message_id) == [(1, "A-1", "delivered"), (3, "A-3", "submitted")]


async def test_a_final_error_on_a_resumed_message_records_the_earlier_parts(
    store: MessageStore, clock: FakeClock
) -> None:
    message_id = await _interrupted(store, clock)
    clock.advance(600)
    assert await store.claim("w1")
    failed = await store.mark_failed(message_id, error_code=0x0B, worker_id="w1")
    assert failed.status is MessageStatus.FAILED
    assert await _parts(store, message_id) == [
        (1, "A-1", "delivered"),
        (2, None, "failed"),
        (3, "A-3", "submitted"),
    ]


@pytest.mark.parametrize("ending", ["claim", "cancel"])
async def test_recording_an_interrupted_messages_parts_does_not_deadlock_with_a_late_submit(
    store: MessageStore, open_at: OpenStore, clock: FakeClock, ending: str
) -> None:
    # The ending transaction holds the message row while it records the earlier parts; a
    # worker whose lease ran out records its resumed submit meanwhile, which takes the parts'
    # keys first, then the row. Both must finish (on PostgreSQL one was a deadlock victim).
    message_id = await _interrupted(store, clock)
    clock.advance(600)
    if ending == "claim":
        for _ in range(store.max_attempts - 1):
            assert await store.claim("w1", lease_seconds=10)
            clock.advance(600)  # each lease runs out: the last one is given up by the claim
    late = await open_at()
    recording, go_on = asyncio.Event(), asyncio.Event()
    record = store._record_sent_parts

    async def paused(*args: object, **kwargs: object) -> None:
        recording.set()
        await go_on.wait()
        await record(*args, **kwargs)  # type: ignore[arg-type]

    store._record_sent_parts = paused  # type: ignore[method-assign]
    end = asyncio.create_task(store.claim("w2") if ending == "claim" else store.cancel(message_id))
    await asyncio.wait_for(recording.wait(), 10)
    submit = asyncio.create_task(
        late.mark_submitted_many([(message_id, ["A-1", "B-2", "A-3"])], worker_id="w1")
    )
    await asyncio.sleep(0.5)  # the late submit waits for the keys (or for the row)
    go_on.set()
    await asyncio.wait_for(asyncio.gather(end, submit), 30)  # neither raises
    stored = await store.get(message_id)
    assert stored is not None
    assert stored.status in (MessageStatus.FAILED, MessageStatus.CANCELLED)


async def test_requeue_after_the_last_attempt_fails_the_message(store: MessageStore) -> None:
    message = (await store.enqueue(sms())).message
    for _ in range(store.max_attempts):
        await store.claim("w")
        last = await store.requeue(message.id, "w", error="throttled", delay=0)
    assert last.status is MessageStatus.FAILED
    assert last.error_name == "MAX_ATTEMPTS"
    assert "throttled" in (last.error_detail or "")


async def test_release_gives_leases_back_without_counting_the_attempt(
    store: MessageStore,
) -> None:
    await store.enqueue_many([sms(1), sms(2)])
    claimed = await store.claim("w1")
    assert await store.release("w1") == 2
    again = await store.claim("w2")
    assert {m.id for m in again} == {m.id for m in claimed}
    assert all(m.attempts == 1 and m.resends == 0 for m in again)
    assert await store.extend_lease("w2", [m.id for m in again], lease_seconds=5) == 2
    assert await store.extend_lease("w1", [m.id for m in again]) == 0


async def test_cancel_only_while_waiting(store: MessageStore, clock: FakeClock) -> None:
    waiting = (await store.enqueue(sms(1))).message
    cancelled = await store.cancel(waiting.id)
    assert cancelled.status is MessageStatus.CANCELLED
    assert (await store.cancel(waiting.id)).status is MessageStatus.CANCELLED  # idempotent
    assert await store.claim("w") == []  # never sent

    leased = (await store.enqueue(sms(2))).message
    await store.claim("w")
    with pytest.raises(NotCancellableError, match="a worker is sending it"):
        await store.cancel(leased.id)
    await store.mark_submitted(leased.id, ["abc"], worker_id="w")
    with pytest.raises(NotCancellableError, match="submitted"):
        await store.cancel(leased.id)
    with pytest.raises(MessageNotFoundError):
        await store.cancel("nope")


async def test_trying_correlation_keys_another_transaction_holds_never_waits(
    store: MessageStore, open_at: OpenStore, backend: str
) -> None:
    from o2sms.store.rows import lock_keys, try_lock_keys

    if backend == "sqlite":  # one writer at a time already: nothing to lock, nothing held
        async with store.engine.connect() as connection:
            assert await try_lock_keys(connection, ["k1"])
        return
    other = await open_at()
    async with store.engine.begin() as holder:
        await lock_keys(holder, ["k1", "k2"])
        async with other.engine.begin() as trying:
            assert not await asyncio.wait_for(try_lock_keys(trying, ["k2", "k3"]), 5)
    async with other.engine.begin() as trying:
        assert await try_lock_keys(trying, ["k1", "k2"])


async def test_the_enqueue_insert_leaves_out_only_columns_every_new_row_has_empty(
    store: MessageStore, clock: FakeClock
) -> None:
    from o2sms.store.queue import _COLUMNS, _UNSET

    full = NewMessage(
        "+421900000001",
        "hi",
        sender="Shop",
        encoding="ucs2",
        flash=True,
        schedule_at=clock() + timedelta(hours=1),
        validity=timedelta(minutes=5),
        reference="r",
        callback_url="https://example.com/hook",
        idempotency_key="k",
        owner="o",
    )
    row = store._row(full, clock())
    assert {c for c, value in zip(_COLUMNS, row, strict=True) if value is None} == _UNSET
    # the insert without a key (the batch statement) stores what enqueue answered
    accepted = (await store.enqueue(replace(full, idempotency_key=None))).message
    read = await store.get(accepted.id)
    assert read is not None
    assert replace(read, events=()) == accepted
