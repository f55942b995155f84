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
