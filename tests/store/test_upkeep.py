"""Statistics upkeep: the planner must learn the tables grew (servers may run no autovacuum)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from o2sms.store import MessageStore, NewMessage

pytestmark = pytest.mark.asyncio


async def test_analyze_refreshes_statistics(store: MessageStore) -> None:
    for i in range(20):
        await store.enqueue(NewMessage(f"+4219000{i:05d}", "x"))
    await store.analyze()
    async with store.engine.connect() as connection:
        if store.engine.dialect.name == "postgresql":
            analysed = await connection.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'messages' "
                    "AND schemaname = current_schema() AND last_analyze IS NOT NULL"
                )
            )
            assert analysed == 1
        else:
            analysed = await connection.scalar(
                sa.text("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'messages'")
            )
            assert (analysed or 0) > 0


@pytest.mark.parametrize("backend", ["postgresql"])  # a PostgreSQL setting
async def test_analyze_samples_with_a_small_statistics_target(store: MessageStore) -> None:
    # Target 10 for the store's own ANALYZE (a tenth of the default's work), for that
    # transaction only. A unique column's histogram has at most target + 1 bounds.
    assert store.engine.dialect.name == "postgresql"
    async with store.engine.connect() as connection:
        target = await connection.scalar(sa.text("SHOW default_statistics_target"))
    for i in range(30):
        await store.enqueue(NewMessage(f"+4219000{i:05d}", "x"))
    await store.analyze()
    async with store.engine.connect() as connection:
        bounds = await connection.scalar(
            sa.text(
                "SELECT array_length(histogram_bounds, 1) FROM pg_stats WHERE tablename = "
                "'messages' AND attname = 'id' AND schemaname = current_schema()"
            )
        )
        assert await connection.scalar(sa.text("SHOW default_statistics_target")) == target
    assert bounds == 11
