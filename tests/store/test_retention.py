"""Inbound SMS, retention purges, and all-or-nothing writes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import asyncpg  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

import o2sms.store.messages
import o2sms.store.queue
from o2sms.receipts import DeliveryReceipt, ReceiptStat
from o2sms.store import (
    MessageStatus,
    MessageStore,
    NewInbound,
    NewMessage,
    ReceiptResult,
    WebhookStatus,
    open_store,
)
from o2sms.store.schema import message_events, message_parts, messages, part_keys
from tests.pg import PG_URL, fresh_schema
from tests.store.conftest import FakeClock

pytestmark = pytest.mark.asyncio


def delivrd(receipt_id: str) -> DeliveryReceipt:
    return DeliveryReceipt(receipt_id, 1, 1, None, None, ReceiptStat.DELIVRD, "000", None)


async def count(store: MessageStore, table: sa.Table) -> int:
    async with store.engine.connect() as connection:
        return int(await connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def delivered(store: MessageStore, n: int) -> str:
    message = (await store.enqueue(NewMessage(f"+4219000000{n:02d}", f"secret {n}"))).message
    await store.claim("w")
    await store.mark_submitted(message.id, [f"id-{n}"], worker_id="w")
    await store.apply_receipt(delivrd(f"id-{n}"))
    return message.id


async def test_inbound_sms_are_recorded_and_listed_newest_first(
    store: MessageStore, clock: FakeClock
) -> None:
    first = await store.record_inbound(NewInbound("+421900000001", "4444", "STOP", parts=1))
    clock.advance(1)
    second = await store.record_inbound(
        NewInbound("+421900000002", "4444", "Ahoj 👋", data_coding=8, session="s1")
    )
    assert first.received_at == clock() - timedelta(seconds=1)
    assert [m.id for m in await store.list_inbound()] == [second.id, first.id]
    assert [m.text for m in await store.list_inbound(before_id=second.id)] == ["STOP"]
    assert second.data_coding == 8
    assert second.session == "s1"


async def test_an_inbound_sms_with_a_nul_character_is_recorded_with_a_replacement(
    store: MessageStore,
) -> None:
    # UCS-2 0x0000 or Latin-1 0x00 decode to U+0000, which PostgreSQL text cannot hold: left
    # as it is, the SMS would be refused, redelivered and refused again for ever.
    recorded = await store.record_inbound(
        NewInbound("+421900000001", "4444", "a\x00b", data_coding=8)
    )
    assert recorded.text == "a\ufffdb"
    assert [m.text for m in await store.list_inbound()] == ["a\ufffdb"]


async def test_retention_blanks_the_text_of_finished_messages_only(
    store: MessageStore, clock: FakeClock
) -> None:
    old = await delivered(store, 1)
    waiting = (await store.enqueue(NewMessage("+421900000099", "still queued"))).message
    clock.advance(3600)
    recent = await delivered(store, 2)
    clock.advance(10)
    result = await store.purge(text_after=timedelta(seconds=3600))
    assert result.texts == 1
    got_old, got_recent, got_waiting = [await store.get(i) for i in (old, recent, waiting.id)]
    assert got_old is not None
    assert got_recent is not None
    assert got_waiting is not None
    assert got_old.text is None
    assert got_old.text_purged_at == clock()
    assert got_old.status is MessageStatus.DELIVERED
    assert got_old.parts
    assert got_recent.text == "secret 2"
    assert got_waiting.text == "still queued"
    assert (await store.purge(text_after=timedelta(seconds=3600))).texts == 0


async def test_retention_deletes_old_finished_messages_and_their_rows(
    store: MessageStore, clock: FakeClock
) -> None:
    old = await delivered(store, 1)
    await store.apply_receipt(delivrd("unknown-old"))
    await store.record_inbound(NewInbound("+421900000001", "4444", "old"))
    waiting = (await store.enqueue(NewMessage("+421900000099", "queued"))).message
    clock.advance(86_400 + 1)
    recent = await delivered(store, 2)
    result = await store.purge(delete_after=timedelta(days=1))
    assert (result.messages, result.inbound, result.receipts) == (1, 1, 2)
    assert await store.get(old) is None
    assert await store.get(recent) is not None
    assert await store.get(waiting.id) is not None
    assert await count(store, message_parts) == 1
    assert await count(store, part_keys) == 1
    assert await store.list_receipts() == []


async def submitted(store: MessageStore, n: int) -> str:
    message = (await store.enqueue(NewMessage(f"+4219100000{n:02d}", f"no report {n}"))).message
    await store.claim("w")
    await store.mark_submitted(message.id, [f"nr-{n}"], worker_id="w")
    return message.id


async def test_retention_also_settles_messages_no_receipt_came_for(
    store: MessageStore, clock: FakeClock
) -> None:
    # A route without reports, or a lost receipt, leaves a message submitted for ever: the
    # store would grow without bound if retention waited for a final status.
    old = await submitted(store, 1)
    in_flight = (await store.enqueue(NewMessage("+421910000099", "leased"))).message
    clock.advance(86_400 + 1)
    await store.claim("w", lease_seconds=3 * 86_400)  # old, leased, not submitted: not settled
    recent = await submitted(store, 2)
    # Sent once, then back in the queue for a retry (a submit recorded after a lease ran out
    # and another worker requeued it): a submit time but waiting, so not settled.
    retried = await submitted(store, 3)
    async with store.engine.begin() as connection:
        await connection.execute(
            sa.update(messages)
            .where(messages.c.id == retried)
            .values(status=MessageStatus.QUEUED.value, next_attempt_at=clock() - timedelta(days=3))
        )
    clock.advance(86_400 + 1)
    recent_2 = await submitted(store, 4)
    texts = await store.purge(text_after=timedelta(days=1))
    assert texts.texts == 2  # old and recent, submitted more than a day ago
    got_retried = await store.get(retried)
    assert got_retried is not None
    assert got_retried.text == "no report 3"
    got_old, got_recent = await store.get(old), await store.get(recent)
    assert got_old is not None
    assert got_recent is not None
    assert got_old.text is None
    assert got_old.status is MessageStatus.SUBMITTED  # retention reports nothing it does not know
    assert got_recent.text is None
    recent_got = await store.get(recent_2)
    assert recent_got is not None
    assert recent_got.text == "no report 4"
    deleted = await store.purge(delete_after=timedelta(days=1))
    assert deleted.messages == 2
    assert await store.get(old) is None
    assert await store.get(recent) is None
    assert await store.get(retried) is not None
    assert await store.get(recent_2) is not None
    assert await store.get(in_flight.id) is not None
    assert await count(store, message_parts) == 2  # retried and recent_2
    assert await count(store, part_keys) == 2


async def test_a_purge_works_in_transactions_of_at_most_batch_rows(
    store: MessageStore, clock: FakeClock
) -> None:
    # A first run on a large old store must not hold SQLite's write lock for the whole purge.
    for n in range(5):
        await delivered(store, n)
    for n in range(3):
        await submitted(store, n)
        await store.record_inbound(NewInbound(f"+42190000{n:04d}", "4444", f"in {n}"))
        await store.apply_receipt(delivrd(f"nobody-{n}"))  # kept unmatched
    clock.advance(2 * 86_400)
    keep = await delivered(store, 9)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()[:3]))

    def began(_conn: Any) -> None:
        statements.append("<transaction>")

    engine = store.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", seen)
    sa.event.listen(engine, "begin", began)
    try:
        texts = await store.purge(text_after=timedelta(days=1), batch=3)
        assert texts.texts == 8
        # 5 delivered (3 + 2) and 3 with no receipt, a transaction a batch, one read a kind
        assert statements.count("UPDATE messages SET") == 3
        assert statements.count("<transaction>") == 2 + 3
        statements.clear()
        result = await store.purge(delete_after=timedelta(days=1), batch=3)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
        sa.event.remove(engine, "begin", began)
    assert (result.messages, result.inbound) == (8, 3)
    assert result.receipts == 5 + 3  # the delivered messages' receipts, then the unmatched
    assert statements.count("DELETE FROM messages") == 3  # 3 + 3 + 2
    assert statements.count("DELETE FROM inbound") == 1
    # messages 3 + 3 + 2; old webhooks 0; inbound 3, then 0; unmatched receipts 3, then 0
    assert statements.count("<transaction>") == 3 + 1 + 2 + 2
    assert await count(store, messages) == 1
    got = await store.get(keep)
    assert got is not None
    assert got.text is not None
    assert len(got.parts) == 1
    assert await count(store, message_parts) == 1
    assert await count(store, part_keys) == 1
    with pytest.raises(ValueError, match="batch"):
        await store.purge(text_after=timedelta(days=1), batch=0)


async def test_a_text_purge_reads_on_from_where_it_stopped(
    store: MessageStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The walk meets the rows already blanked too: each read must go on from the last one,
    # not start over (which made a first run on an old store quadratic).
    monkeypatch.setattr(o2sms.store.messages, "_PURGE_READ_AHEAD", 1)
    blanked = [await delivered(store, n) for n in range(4)]
    await store.purge(text_after=timedelta(seconds=0))
    # Same finish times for several messages: the order within them is by id.
    fresh = [await delivered(store, n) for n in range(10, 15)]
    unreported = [await submitted(store, n) for n in range(3)]
    clock.advance(10)
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("SELECT /* off-loop */"):
            reads.append(statement)

    sa.event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
    try:
        result = await store.purge(text_after=timedelta(seconds=5), batch=2)
    finally:
        sa.event.remove(store.engine.sync_engine, "before_cursor_execute", seen)
    assert result.texts == len(fresh) + len(unreported)
    for message_id in blanked + fresh + unreported:
        got = await store.get(message_id)
        assert got is not None
        assert got.text is None, message_id
    # pages of 2: finished 2 + 2 + 1, unreported 2 + 1; every page after a kind's first goes
    # on from the last row read
    assert len(reads) == 3 + 2
    assert [("finished_at >=" in r, "next_attempt_at >=" in r) for r in reads] == [
        (False, False),
        (True, False),
        (True, False),
        (False, False),
        (False, True),
    ]


@asynccontextmanager
async def settled_on_postgresql(clock: FakeClock) -> AsyncIterator[tuple[MessageStore, str, str]]:
    """A PostgreSQL store in a fresh schema with one delivered message two days old, due
    for purging: ``(store, schema, message id)``."""
    async with fresh_schema("o2sms_purge") as schema:
        store = await open_store(PG_URL, schema=schema, clock=clock)
        try:
            doomed = await submitted(store, 1)
            clock.advance(2 * 86_400)
            yield store, schema, doomed
        finally:
            await store.close()


async def test_on_postgresql_a_purge_locks_the_messages_it_deletes_first(
    clock: FakeClock,
) -> None:
    # Each purge statement re-reads which messages are settled: unlocked, a late receipt could
    # move one out of the set after its history was deleted, leaving the message without it.
    async with settled_on_postgresql(clock) as (store, schema, doomed):
        seen: list[str] = []

        async def try_to_lock() -> str:
            other = await asyncpg.connect(PG_URL, server_settings={"search_path": schema})
            try:
                await other.execute(
                    "SELECT id FROM messages WHERE id = $1 FOR UPDATE NOWAIT", doomed
                )
            except asyncpg.LockNotAvailableError:
                return "locked"
            finally:
                await other.close()
            return "free"

        def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement.startswith("DELETE FROM message_events") and not seen:
                # A receipt's transaction, in the middle of the purge (its own loop).
                thread = threading.Thread(target=lambda: seen.append(asyncio.run(try_to_lock())))
                thread.start()
                thread.join()

        sa.event.listen(store.engine.sync_engine, "before_cursor_execute", before)
        result = await store.purge(delete_after=timedelta(days=1))
        assert seen == ["locked"]
        assert result.messages == 1
        assert await store.get(doomed) is None


async def _a_session_waits_for_a_message_lock() -> None:
    """Return once a PostgreSQL session waits for a lock on a ``messages`` row."""
    watcher = await asyncpg.connect(PG_URL)
    try:
        for _ in range(500):
            waiting = await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%FROM messages%FOR UPDATE%'"
            )
            if waiting:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the receipt never waited for the purge's lock")
    finally:
        await watcher.close()


@pytest.mark.parametrize("batch", [False, True], ids=["one", "batch"])
async def test_a_receipt_racing_the_purge_of_its_message_is_kept_unmatched(
    clock: FakeClock, batch: bool
) -> None:
    # PostgreSQL: the receipt finds the part, then waits for the message row the purge holds;
    # once the purge commits the message is gone. The receipt must be kept as unmatched, not
    # fail its transaction (a KeyError on the batch path, MessageNotFoundError on the other),
    # which makes the SMSC deliver it again and fails the other receipts of its batch.
    async with settled_on_postgresql(clock) as (store, schema, doomed):
        outcomes: list[Any] = []

        async def receive() -> None:
            other = await open_store(PG_URL, schema=schema, run_migrations=False)
            try:
                if batch:
                    outcomes.extend(await other.apply_receipts([(delivrd("nr-1"), "nr-1")]))
                else:
                    outcomes.append(await other.apply_receipt(delivrd("nr-1")))
            except Exception as exc:
                outcomes.append(exc)
            finally:
                await other.close()

        receiver = threading.Thread(target=lambda: asyncio.run(receive()))

        def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement.startswith("DELETE FROM message_events") and not receiver.ident:
                # The purge holds the message's row lock: the receipt arrives now.
                receiver.start()
                waiter = threading.Thread(
                    target=lambda: asyncio.run(_a_session_waits_for_a_message_lock())
                )
                waiter.start()
                waiter.join()

        sa.event.listen(store.engine.sync_engine, "before_cursor_execute", before)
        result = await store.purge(delete_after=timedelta(days=1))
        await asyncio.to_thread(receiver.join)
        assert result.messages == 1
        assert await store.get(doomed) is None
        [outcome] = outcomes
        assert not isinstance(outcome, Exception), repr(outcome)
        assert outcome.result is ReceiptResult.PENDING
        [kept] = await store.list_receipts()
        assert (kept.receipt_id, kept.message_id) == ("nr-1", None)


async def test_a_failing_enqueue_batch_saves_nothing(store: MessageStore) -> None:
    batch = [NewMessage("+421900000001", "a", id="dup"), NewMessage("+421900000002", "b", id="dup")]
    with pytest.raises(IntegrityError):
        await store.enqueue_many([NewMessage("+421900000000", "ok"), *batch])
    assert await count(store, messages) == 0


def _boom(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise RuntimeError("crash in the middle")


async def test_an_error_after_the_message_rows_rolls_the_enqueue_back(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The plain messages' rows are written first, then the one with a key: make that fail.
    monkeypatch.setattr(o2sms.store.queue, "insert", _boom)
    batch = [
        NewMessage("+421900000001", "a"),
        NewMessage("+4219", "b"),
        NewMessage("+421900000002", "c", idempotency_key="k1"),
    ]
    with pytest.raises(RuntimeError, match="crash"):
        await store.enqueue_many(batch)
    assert await count(store, messages) == 0


async def test_an_error_in_mark_submitted_leaves_the_message_as_it_was(
    store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = (await store.enqueue(NewMessage("+421900000001", "a", parts=2))).message
    await store.claim("w")
    events_before = await count(store, message_events)
    monkeypatch.setattr(o2sms.store.messages, "add_events", _boom)
    with pytest.raises(RuntimeError, match="crash"):
        await store.mark_submitted(message.id, ["A1", "A2"], worker_id="w")
    monkeypatch.undo()
    got = await store.get(message.id)
    assert got is not None
    assert got.status is MessageStatus.QUEUED
    assert got.lease_owner == "w"
    assert got.parts == ()
    assert await count(store, part_keys) == 0
    assert await count(store, message_events) == events_before
    # the receipt for it is not lost either: kept as pending until the submit is recorded
    assert (await store.apply_receipt(delivrd("A1"))).message_id is None
    after = await store.mark_submitted(message.id, ["A1", "A2"], worker_id="w")
    assert after.status is MessageStatus.SUBMITTED


async def test_retention_finds_old_messages_through_indexes_on_sqlite(tmp_path: Any) -> None:
    # Run hourly over a store holding months of messages: neither arm of "settled" may read
    # every finished or every submitted row.
    store = await open_store(tmp_path / "plan.db")
    try:
        query = sa.select(messages.c.id).where(MessageStore._settled_before(datetime.now(UTC)))
        async with store.engine.connect() as connection:
            compiled = query.compile(connection.sync_connection)
            params = tuple(compiled.construct_params().values())
            rows = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params)
            plan = " | ".join(str(detail) for *_, detail in rows)
    finally:
        await store.close()
    assert "USING INDEX ix_messages_finished_at (finished_at>? AND finished_at<?)" in plan, plan
    assert "ix_messages_status_next_attempt_at_id (status=? AND next_attempt_at<?)" in plan, plan
    assert "SCAN messages" not in plan, plan


async def test_retention_keeps_what_a_pending_webhook_reports_until_it_is_settled(
    open_at: Any, clock: FakeClock
) -> None:
    # Retention shorter than the webhooks' retry time, receiver down: deleting the message,
    # the inbound SMS and their pending webhooks would lose the notices for good.
    store: MessageStore = await open_at(
        webhook_url="https://hooks.example.test/o2sms", webhook_retry_for=86_400
    )
    message = await delivered(store, 1)
    sms = await store.record_inbound(NewInbound("+421900000001", "4444", "STOP", parts=1))
    settled = await delivered(store, 2)
    for webhook in await store.list_webhooks(message_id=settled):
        await store.webhook_delivered(webhook.id, "nobody", status_code=204)
    waiting = await store.list_webhooks(status=WebhookStatus.PENDING)
    assert {(w.message_id, w.inbound_id) for w in waiting} == {(message, None), (None, sms.id)}
    clock.advance(13 * 3600)
    result = await store.purge(delete_after=timedelta(hours=12))
    assert result.messages == 1  # the one whose webhooks were all delivered
    assert result.inbound == 0
    assert await store.get(settled) is None
    assert await store.get(message) is not None
    assert [m.id for m in await store.list_inbound()] == [sms.id]
    pending = await store.list_webhooks(status=WebhookStatus.PENDING)
    assert [w.id for w in pending] == [w.id for w in waiting]
    for webhook in pending:  # the receiver comes back, or the retries run out
        await store.webhook_failed(webhook.id, "nobody", error="down", give_up=True)
    result = await store.purge(delete_after=timedelta(hours=12))
    assert (result.messages, result.inbound, result.webhooks) == (1, 1, len(waiting))
    assert await store.get(message) is None
    assert await store.list_inbound() == []
