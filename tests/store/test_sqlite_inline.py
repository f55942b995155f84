"""The SQLite driver runs plain statements on the event loop's thread, and whatever may wait
for another connection (BEGIN, COMMIT, ...) on its own thread, so the loop never blocks."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from o2sms.store import MessageStatus, NewMessage, create_engine, open_store
from o2sms.store.sqlite_inline import OFF_LOOP, InlineConnection, _inline


def test_what_runs_inline() -> None:
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    cursor = connection.cursor()
    assert _inline(cursor.execute, ("SELECT 1",))
    assert _inline(cursor.executemany, ("INSERT INTO t VALUES (?)", [(1,)]))
    assert _inline(cursor.fetchall, ())
    assert _inline(cursor.close, ())
    assert _inline(connection.cursor, ())
    for may_wait in ("BEGIN IMMEDIATE", "  begin", "COMMIT", "ROLLBACK", "PRAGMA busy_timeout = 1"):
        assert not _inline(cursor.execute, (may_wait,)), may_wait
    assert not _inline(cursor.execute, (f"SELECT {OFF_LOOP} count(*) FROM t",))
    assert _inline(cursor.execute, (f"SELECT 1 FROM t WHERE note = '{OFF_LOOP}'",))  # not a prefix
    marked: set[sqlite3.Cursor] = set()
    assert not _inline(cursor.execute, (f"SELECT {OFF_LOOP} 1",), marked)
    assert not _inline(cursor.fetchall, (), marked)  # the rest of that scan
    assert _inline(cursor.execute, ("SELECT 1",), marked)
    assert _inline(cursor.fetchall, (), marked)
    assert not _inline(cursor.execute, (f"SELECT {OFF_LOOP} 1",), marked)
    assert not _inline(cursor.close, (), marked)
    assert not marked  # closed: forgotten
    assert not _inline(connection.commit, ())
    assert not _inline(connection.rollback, ())
    assert not _inline(connection.close, ())
    connection.close()


@pytest.mark.asyncio
async def test_statements_run_on_the_loops_thread_and_marked_ones_on_the_drivers(
    tmp_path: Path,
) -> None:
    engine = create_engine(tmp_path / "inline.db")
    try:
        async with engine.begin() as connection:
            raw = await connection.get_raw_connection()
            driver = raw.driver_connection
            assert isinstance(driver, InlineConnection)
            assert driver._connection is not None
            driver._connection.create_function("thread_id", 0, threading.get_ident)
            # 50 rows: those after the first are computed while they are fetched
            many = sa.select(sa.func.thread_id()).select_from(
                sa.text(
                    "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                    "WHERE i < 50) SELECT i FROM n)"
                )
            )
            inline = set((await connection.execute(many)).scalars())
            marked = set((await connection.execute(many.prefix_with(OFF_LOOP))).scalars())
        assert inline == {threading.get_ident()}
        assert marked == {driver._thread.ident}
        assert driver._thread.ident != threading.get_ident()
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_a_writer_waiting_for_the_lock_does_not_block_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    first, second = create_engine(path), create_engine(path)
    try:
        async with first.begin() as connection:
            await connection.execute(sa.text("CREATE TABLE t (n INTEGER)"))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        holder = await first.connect()
        await holder.begin()  # BEGIN IMMEDIATE: holds the write lock
        await holder.execute(sa.text("INSERT INTO t VALUES (1)"))

        async def write() -> None:
            async with second.begin() as connection:  # waits for the lock, on its thread
                await connection.execute(sa.text("INSERT INTO t VALUES (2)"))

        waiting = asyncio.create_task(write())
        await asyncio.sleep(0.3)
        assert not waiting.done()
        assert ticks >= 10  # the loop kept running while the second writer waited
        await holder.commit()
        await holder.close()
        await asyncio.wait_for(waiting, 10)
        ticking.cancel()
        async with first.connect() as connection:
            rows = (await connection.execute(sa.text("SELECT n FROM t ORDER BY n"))).scalars()
            assert list(rows) == [1, 2]
    finally:
        await first.dispose()
        await second.dispose()


@pytest.mark.asyncio
async def test_listing_messages_scans_on_the_drivers_thread(tmp_path: Path) -> None:
    # GET /v1/messages?status=failed walks the whole (created_at, id) index when few messages
    # match: half a second per million messages, which on the loop's thread stalled every
    # SMPP session and HTTP request of the process meanwhile.
    store = await open_store(tmp_path / "list.db")
    ran: list[tuple[str, int]] = []

    def trace(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_connection.driver_connection._connection
        driver.set_trace_callback(lambda sql: ran.append((sql, threading.get_ident())))

    sa.event.listen(store.engine.sync_engine, "checkout", trace)
    try:
        await store.enqueue(NewMessage("+421900000001", "hi"))
        page = await store.list_messages(status=MessageStatus.FAILED)
        assert page.items == ()
        await store.list_messages(reference="order-7", limit=10)
    finally:
        await store.close()
    listings = [ident for sql, ident in ran if "ORDER BY messages.created_at DESC" in sql]
    assert len(listings) == 2
    assert threading.get_ident() not in listings
