"""Group commits: ``mark_submitted_many`` and ``apply_receipts`` must leave the store exactly
as the one-at-a-time calls would, for the common case and every unusual one mixed in."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa

from o2sms.receipts import ReceiptStat
from o2sms.store import MessageStatus, MessageStore, NewMessage, ReceiptResult, open_store
from o2sms.store.schema import message_events, receipts
from tests.pg import PG_URL, fresh_schema
from tests.store.conftest import FakeClock
from tests.store.test_receipts import DECIMAL_ID, HEX_ID, receipt

pytestmark = pytest.mark.asyncio


async def claimed(store: MessageStore, count: int, parts: int = 1) -> list[str]:
    """``count`` messages enqueued and claimed by worker w."""
    ids = [
        (await store.enqueue(NewMessage(f"+4219000{i:05d}", f"m{i}", parts=parts))).message.id
        for i in range(count)
    ]
    await store.claim("w", limit=count)
    return ids


async def snapshot(store: MessageStore, ids: list[str]) -> list[Any]:
    """What a test compares: status and parts of each message, and its history kinds."""
    result = []
    for message_id in ids:
        message = await store.get(message_id)
        assert message is not None
        result.append(
            (
                message.status,
                message.lease_owner,
                [(p.part_no, p.smsc_id, p.status, p.error_code) for p in message.parts],
                [e.kind.value for e in message.events],  # in order: a batch writes as one at a time
            )
        )
    return result


async def test_mark_submitted_many_records_every_message(store: MessageStore) -> None:
    ids = await claimed(store, 5)
    await store.mark_submitted_many([(m, [f"id-{n}"]) for n, m in enumerate(ids)], worker_id="w")
    for n, message_id in enumerate(ids):
        message = await store.get(message_id)
        assert message is not None
        assert message.status is MessageStatus.SUBMITTED
        assert message.lease_owner is None
        assert [p.smsc_id for p in message.parts] == [f"id-{n}"]
    outcome = await store.apply_receipt(receipt("id-3"))
    assert outcome.message_id == ids[3]
    assert outcome.message_status is MessageStatus.DELIVERED


async def test_mark_submitted_many_handles_the_unusual_ones(store: MessageStore) -> None:
    ids = await claimed(store, 4)
    early = await store.apply_receipt(receipt("early-1"))  # before its submit is recorded
    assert early.result is ReceiptResult.PENDING
    cancelled = (await store.enqueue(NewMessage("+421900000099", "x"))).message.id
    await store.cancel(cancelled)
    await store.mark_submitted_many(
        [
            (ids[0], ["plain-0"]),
            (ids[1], ["early-1"]),  # a receipt waits for it: applied now
            (ids[2], ["dup-2a"]),
            (ids[2], ["dup-2b"]),  # the same message twice: a resend's answer
            (cancelled, ["late-9"]),  # not waiting any more: ids recorded, status kept
        ],
        worker_id="w",
    )
    statuses = [(await store.get(m)) for m in (*ids[:3], cancelled)]
    assert [m.status for m in statuses if m] == [
        MessageStatus.SUBMITTED,
        MessageStatus.DELIVERED,
        MessageStatus.SUBMITTED,
        MessageStatus.CANCELLED,
    ]
    resent = statuses[2]
    assert resent is not None
    assert [p.smsc_id for p in resent.parts] == ["dup-2b"]
    for smsc_id in ("dup-2a", "dup-2b", "late-9"):
        outcome = await store.apply_receipt(receipt(smsc_id, err=smsc_id[-2:]))
        assert outcome.result in {ReceiptResult.APPLIED, ReceiptResult.IGNORED}


async def test_mark_submitted_many_is_all_or_nothing(store: MessageStore) -> None:
    ids = await claimed(store, 2)
    with pytest.raises(ValueError, match="at least one"):
        await store.mark_submitted_many([(ids[0], ["a"]), (ids[1], [])], worker_id="w")
    message = await store.get(ids[0])
    assert message is not None
    assert message.status is MessageStatus.QUEUED


async def test_apply_receipts_common_and_unusual_cases(store: MessageStore) -> None:
    ids = await claimed(store, 4, parts=2)
    await store.mark_submitted_many(
        [
            (ids[0], ["a1", "a2"]),
            (ids[1], ["b1", "b2"]),
            (ids[2], [HEX_ID, "c2"]),
            (ids[3], ["d1", "d2"]),
        ],
        worker_id="w",
    )
    await store.apply_receipt(receipt("d1", ReceiptStat.UNDELIV, "001"))
    outcomes = await store.apply_receipts(
        [
            (receipt("a1"), None),
            (receipt("a2"), None),  # both parts in one batch: delivered once
            (receipt("b1"), None),
            (receipt("b1"), None),  # the same receipt twice in one batch
            (receipt(DECIMAL_ID), None),  # decimal id for a hex submit: by keys
            (receipt("nobody"), None),  # no such part yet
            (receipt("b2", ReceiptStat.ENROUTE), None),  # intermediate: no state change
            (receipt("d1"), "d1"),  # a later verdict for a part already final
        ]
    )
    results = [o.result for o in outcomes]
    assert results == [
        ReceiptResult.APPLIED,
        ReceiptResult.APPLIED,
        ReceiptResult.APPLIED,
        ReceiptResult.DUPLICATE,
        ReceiptResult.APPLIED,
        ReceiptResult.PENDING,
        ReceiptResult.APPLIED,
        ReceiptResult.IGNORED,
    ]
    assert [o.status_changed for o in outcomes[:2]] == [False, True]
    assert outcomes[1].message_status is MessageStatus.DELIVERED
    first = await store.get(ids[0])
    assert first is not None
    assert first.status is MessageStatus.DELIVERED
    assert sum(1 for e in first.events if e.kind.value == "status") == 1
    second = await store.get(ids[1])
    assert second is not None
    assert [p.status for p in second.parts] == [MessageStatus.DELIVERED, MessageStatus.SUBMITTED]
    assert second.status is MessageStatus.SUBMITTED


@pytest.mark.parametrize("seed", [20261126, 15, 22])  # 15, 22: orders a batch got wrong
async def test_batches_equal_one_at_a_time(store: MessageStore, seed: int) -> None:
    """The same random mix of submits, resends, early receipts, repeats and verdicts, applied
    in batches to one set of messages and one call at a time to a twin set, leaves both sets
    in the same state."""
    rng = random.Random(seed)
    count = 30
    for prefix in ("b", "s"):
        for i in range(count):
            await store.enqueue(
                NewMessage(f"+4219000{i:05d}", f"m{i}", parts=2, id=f"{prefix}-{i:03d}")
            )
    await store.claim("w", limit=2 * count)
    order = list(range(count))
    rng.shuffle(order)
    stats = [
        ReceiptStat.DELIVRD,
        ReceiptStat.UNDELIV,
        ReceiptStat.ENROUTE,
        ReceiptStat.ACCEPTD,
        ReceiptStat.REJECTD,
    ]
    resent = order[5:15]  # sent twice: a receipt may name either copy
    verdicts = [  # a part may get a second verdict (which a final part ignores)
        (i, part, rng.choice(stats), f"{rng.randrange(3):03d}", rng.choice("xy"))
        for i in order
        for part in (1, 2)
        for _ in range(rng.randint(1, 2))
    ]
    verdicts += rng.sample(verdicts, 10)  # repeats
    rng.shuffle(verdicts)
    early = order[:5]  # their first part's receipt comes before the submit is recorded

    def smsc_id(prefix: str, i: int, part: int, copy: str = "x") -> str:
        return f"{prefix}{i:03d}{copy if i in resent else 'x'}{part}"

    for prefix, batched in (("b", True), ("s", False)):
        for i in early:
            await store.apply_receipt(receipt(smsc_id(prefix, i, 1)))
        submits = [
            (f"{prefix}-{i:03d}", [smsc_id(prefix, i, 1), smsc_id(prefix, i, 2)]) for i in order
        ]
        if batched:
            for start in range(0, len(submits), 7):
                await store.mark_submitted_many(submits[start : start + 7], worker_id="w")
        else:
            for message_id, smsc_ids in submits:
                await store.mark_submitted(message_id, smsc_ids, worker_id="w")
        for i in resent:
            await store.mark_submitted(
                f"{prefix}-{i:03d}", [smsc_id(prefix, i, 1, "y"), smsc_id(prefix, i, 2, "y")]
            )
        receipts_ = [
            (receipt(smsc_id(prefix, i, part, copy), stat, err), None)
            for i, part, stat, err, copy in verdicts
        ]
        if batched:
            for start in range(0, len(receipts_), 16):
                await store.apply_receipts(receipts_[start : start + 16])
        else:
            for r, submitted_id in receipts_:
                await store.apply_receipt(r, submitted_id=submitted_id)

    def plain(rows: list[Any], prefix: str) -> list[Any]:
        return [
            (
                status,
                owner,
                [
                    (n, sid.replace(prefix, "", 1) if sid else sid, st, err)
                    for n, sid, st, err in parts
                ],
                kinds,
            )
            for status, owner, parts, kinds in rows
        ]

    in_batches = await snapshot(store, [f"b-{i:03d}" for i in range(count)])
    one_by_one = await snapshot(store, [f"s-{i:03d}" for i in range(count)])
    assert plain(in_batches, "b") == plain(one_by_one, "s")
    assert {row[0] for row in in_batches} > {MessageStatus.DELIVERED}
    assert await details(store, "b", count) == await details(store, "s", count)
    await assert_json_as_json_dumps_writes_it(store)


async def details(store: MessageStore, prefix: str, count: int) -> list[Any]:
    """Each message's history details, its SMSC ids without ``prefix``, times left out."""

    def plain(key: str, value: Any) -> Any:
        if key == "id":
            return value.replace(prefix, "", 1)
        if key == "ids":
            return [v.replace(prefix, "", 1) for v in value]
        return value

    result = []
    for i in range(count):
        message = await store.get(f"{prefix}-{i:03d}")
        assert message is not None
        result.append(
            [
                (e.kind, {k: plain(k, v) for k, v in e.detail.items() if k != "received_at"})
                for e in message.events
            ]
        )
    return result


async def assert_json_as_json_dumps_writes_it(store: MessageStore) -> None:
    """Every history detail and receipt detail is stored as ``json.dumps`` writes it (the
    batch paths write some of them as f-strings)."""
    async with store.engine.connect() as connection:
        for table in (message_events, receipts):
            texts = (await connection.execute(sa.select(sa.cast(table.c.detail, sa.Text)))).all()
            assert texts
            for (text,) in texts:
                assert text == json.dumps(json.loads(text))


def _hex(twin: int) -> str:
    return f"0A000000000000{twin:02d}"


Verdict = tuple[str, ReceiptStat]
# name -> twin -> (parts, the submits' ids in turn, receipts before the batch, the batch)
Scenario = Callable[[int], tuple[int, list[list[str]], list[Verdict], list[Verdict]]]
D, U, A, R = ReceiptStat.DELIVRD, ReceiptStat.UNDELIV, ReceiptStat.ACCEPTD, ReceiptStat.REJECTD
ORDER_SCENARIOS: dict[str, Scenario] = {
    # the old id's receipt goes the one-receipt way (by keys), the new id's the set-based way
    "resent part, old id first": lambda t: (
        1,
        [[f"old{t}"], [f"new{t}"]],
        [],
        [(f"old{t}", U), (f"new{t}", D)],
    ),
    "decimal form first": lambda t: (
        1,
        [[_hex(t)]],
        [],
        [(str(int(_hex(t), 16)), U), (_hex(t), D)],
    ),
    # an accepted part may still change, a final message may not
    "accepted part after the other": lambda t: (
        2,
        [[f"p{t}a", f"p{t}b"]],
        [(f"p{t}a", A)],
        [(f"p{t}b", U), (f"p{t}a", R)],
    ),
    "a part twice, then the other": lambda t: (
        2,
        [[f"q{t}a", f"q{t}b"]],
        [],
        [(f"q{t}a", A), (f"q{t}a", R), (f"q{t}b", U)],
    ),
}


@pytest.mark.parametrize("scenario", ORDER_SCENARIOS)
async def test_a_batch_applies_each_messages_receipts_in_arrival_order(
    store: MessageStore, scenario: str
) -> None:
    """Whichever way each receipt of a batch goes, the message ends as one receipt at a time
    would leave it (the first final status stays; a part's later receipt is ignored)."""
    seen = []
    for twin, batched in ((1, True), (2, False)):
        parts, submits, before, verdicts = ORDER_SCENARIOS[scenario](twin)
        message = (await store.enqueue(NewMessage("+421900000001", "hi", parts=parts))).message
        await store.claim("w")
        for ids in submits:
            await store.mark_submitted(message.id, ids, worker_id="w")
        for receipt_id, stat in before:
            await store.apply_receipt(receipt(receipt_id, stat))
        batch = [(receipt(receipt_id, stat), None) for receipt_id, stat in verdicts]
        if batched:
            outcomes = await store.apply_receipts(batch)
        else:
            outcomes = [await store.apply_receipt(r) for r, _ in batch]
        got = await store.get(message.id)
        assert got is not None
        seen.append(
            (
                got.status,
                [p.status for p in got.parts],
                [(o.result, o.message_status) for o in outcomes],
            )
        )
    assert seen[0] == seen[1]
    twice = scenario == "a part twice, then the other"
    assert seen[0][0] is (MessageStatus.REJECTED if twice else MessageStatus.UNDELIVERED)


async def test_write_turn_is_held_across_transactions_of_its_task(store: MessageStore) -> None:
    """Inside write_turn the owner's own writes go ahead; on SQLite other writers wait."""
    other_done = asyncio.Event()

    async def other_writer() -> None:
        await store.enqueue(NewMessage("+421900000002", "other"))
        other_done.set()

    async with store.write_turn():
        await store.enqueue(NewMessage("+421900000001", "mine"))  # re-entrant: no deadlock
        other = asyncio.create_task(other_writer())
        await asyncio.sleep(0.2)
        sqlite = store.engine.dialect.name == "sqlite"
        assert other_done.is_set() is not sqlite  # PostgreSQL writers run side by side
        await store.enqueue(NewMessage("+421900000003", "mine again"))
    await asyncio.wait_for(other, 5)
    assert other_done.is_set()


class _DriverCalls:
    """Counts the row-by-row batches asyncpg is asked to run (none on SQLite)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import asyncpg  # type: ignore[import-untyped]

        self.row_by_row = 0
        original = asyncpg.Connection.executemany

        async def executemany(connection: Any, *args: Any, **kwargs: Any) -> Any:
            self.row_by_row += 1
            return await original(connection, *args, **kwargs)

        monkeypatch.setattr(asyncpg.Connection, "executemany", executemany)


async def test_batch_inserts_keep_the_order_given(
    store: MessageStore, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from o2sms.store.models import EventKind
    from o2sms.store.rows import add_events

    (message_id,) = await claimed(store, 1)
    calls = _DriverCalls(monkeypatch)
    order = [f"entry {n}" for n in random.Random(5).sample(range(500), 300)]
    async with store.engine.begin() as connection:
        await add_events(
            connection,
            datetime(2026, 1, 2, tzinfo=UTC),
            [(message_id, EventKind.RETRY, {"note": note}) for note in order],
        )
    message = await store.get(message_id)
    assert message is not None
    assert [e.detail["note"] for e in message.events if e.kind is EventKind.RETRY] == order
    assert calls.row_by_row == 0  # one statement for the batch on PostgreSQL


async def test_a_batch_update_naming_a_row_twice_leaves_the_last_values(
    store: MessageStore, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from o2sms.store.rows import execute_many, update_sql
    from o2sms.store.schema import messages

    ids = await claimed(store, 3)
    sql = update_sql(messages, ("error_name", "resends"), ("id",))
    calls = _DriverCalls(monkeypatch)
    async with store.engine.begin() as connection:
        await execute_many(connection, sql, [("A", 1, ids[0]), ("B", 2, ids[1])])
    assert calls.row_by_row == 0
    async with store.engine.begin() as connection:
        await execute_many(connection, sql, [("C", 3, ids[2]), ("D", 4, ids[0]), ("E", 5, ids[2])])
    assert calls.row_by_row == (1 if backend == "postgresql" else 0)
    async with store.engine.connect() as connection:
        rows = (
            await connection.execute(
                messages.select()
                .with_only_columns(messages.c.id, messages.c.error_name, messages.c.resends)
                .where(messages.c.id.in_(ids))
            )
        ).all()
    assert {row.id: (row.error_name, row.resends) for row in rows} == {
        ids[0]: ("D", 4),
        ids[1]: ("B", 2),
        ids[2]: ("E", 5),
    }


async def test_a_value_too_long_for_its_column_is_never_cut_short(
    store: MessageStore, backend: str
) -> None:
    from sqlalchemy.exc import DBAPIError

    too_long = NewMessage("+421900000001", "hi", reference="r" * 300)  # the column holds 255
    if backend == "postgresql":
        with pytest.raises(DBAPIError, match="too long"):
            await store.enqueue_many([too_long, NewMessage("+421900000002", "ok")])
        assert (await store.list_messages()).items == ()  # all or nothing
        return
    [result, _] = await store.enqueue_many([too_long, NewMessage("+421900000002", "ok")])
    stored = await store.get(result.message.id)  # SQLite does not limit lengths: kept whole
    assert stored is not None
    assert stored.reference == "r" * 300


async def test_driver_statements_keep_sqlalchemy_errors_rows_and_transactions(
    store: MessageStore, backend: str
) -> None:
    """The hot statements skip SQLAlchemy's execution path on both backends; what callers
    rely on must not change: its exception classes, rows read by name and by position, and
    the transaction (a failed batch leaves nothing behind)."""
    import sqlalchemy as sa

    from o2sms.store.rows import execute_many, fetch, update_sql
    from o2sms.store.schema import messages

    ids = await claimed(store, 2)
    sql = update_sql(messages, ("error_name",), ("id",))
    sql_events: list[str] = []

    def seen(*args: Any) -> None:
        sql_events.append(args[2])

    async def failing_batch() -> None:
        async with store.engine.begin() as connection:
            await execute_many(connection, sql, [("kept?", ids[0])])
            select = "SELECT id, status FROM messages WHERE id = " + (
                "$1" if backend == "postgresql" else "?"
            )
            [row] = await fetch(connection, select, (ids[1],))
            assert (row.id, row.status) == (row[0], row[1]) == (ids[1], "queued")
            await execute_many(connection, "INSERT INTO messages (id) VALUES (?)", [(ids[1],)])

    sa.event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
    try:
        with pytest.raises(sa.exc.IntegrityError):
            await failing_batch()
    finally:
        sa.event.remove(store.engine.sync_engine, "before_cursor_execute", seen)
    stored = await store.get(ids[0])
    assert stored is not None
    assert stored.error_name is None  # rolled back with the failed batch
    assert not any("UPDATE messages" in statement for statement in sql_events)


@pytest.mark.parametrize("batched", [True, False])
async def test_a_recycled_id_goes_to_the_most_recently_submitted_part(
    store: MessageStore, clock: FakeClock, batched: bool
) -> None:
    """An SMSC that recycles ids: the receipt goes to the newest part with that id, also when
    the client's submitted_id and the receipt's id name different parts."""
    ids = await claimed(store, 4)
    for message_id, smsc_ids in [
        (ids[0], ["dup"]),
        (ids[1], ["dup"]),  # later: wins
        (ids[2], ["resp-id"]),
        (ids[3], ["rcpt-id"]),  # later than resp-id: wins
    ]:
        clock.advance(1)
        await store.mark_submitted(message_id, smsc_ids, worker_id="w")
    later = replace(receipt("rcpt-id"), err="001")
    batch = [(receipt("dup"), None), (later, "resp-id")]
    if batched:
        outcomes = await store.apply_receipts(batch)
    else:
        outcomes = [await store.apply_receipt(r, submitted_id=s) for r, s in batch]
    assert [o.message_id for o in outcomes] == [ids[1], ids[3]]


async def test_receipt_batches_of_two_instances_crossing_on_messages_never_deadlock() -> None:
    # PostgreSQL. Each instance gets receipts for the parts it sent (exact ids: the set-based
    # path) and for parts the other sent (decimal ids: the one-receipt path). Each batch used
    # to lock its own messages first, then the other's one by one, so two such batches held
    # one half each and waited for the other: a deadlock, one batch lost after a second and
    # its receipts committed again one by one.
    async with fresh_schema("o2sms_cross") as schema:
        store = await open_store(PG_URL, schema=schema)
        try:
            ids = await claimed(store, 20, parts=2)
            sent = {m: [f"AB{n:04d}01", f"AB{n:04d}02"] for n, m in enumerate(ids)}
            for message_id, smsc_ids in sent.items():
                await store.mark_submitted(message_id, smsc_ids, worker_id="w")
        finally:
            await store.close()
        mine, theirs = ids[:10], ids[10:]

        def batch(own: list[str], other: list[str]) -> list[tuple[Any, None]]:
            exact = [(receipt(sent[m][0]), None) for m in own]
            decimal = [(receipt(str(int(sent[m][1], 16))), None) for m in other]
            return exact + decimal

        ready = [threading.Event(), threading.Event()]
        errors: list[BaseException] = []

        def instance(number: int, receipts_: list[tuple[Any, None]]) -> None:
            async def run() -> None:
                other = await open_store(PG_URL, schema=schema, run_migrations=False)

                def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
                    # the one-receipt path's first statement: this batch holds what it
                    # locked so far; the other's gets there too unless it waits for a lock
                    if statement.startswith("INSERT INTO receipts") and not ready[number].is_set():
                        ready[number].set()
                        ready[1 - number].wait(2.0)

                sa.event.listen(other.engine.sync_engine, "before_cursor_execute", before)
                try:
                    await other.apply_receipts(receipts_)
                except BaseException as exc:
                    errors.append(exc)
                finally:
                    await other.close()

            asyncio.run(run())

        threads = [
            threading.Thread(target=instance, args=(0, batch(mine, theirs))),
            threading.Thread(target=instance, args=(1, batch(theirs, mine))),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            await asyncio.to_thread(thread.join)
        assert errors == []
        store = await open_store(PG_URL, schema=schema, run_migrations=False)
        try:
            for message_id in ids:
                got = await store.get(message_id)
                assert got is not None
                assert got.status is MessageStatus.DELIVERED
        finally:
            await store.close()
