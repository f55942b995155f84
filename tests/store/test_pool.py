"""PostgreSQL connections that died (a server restart): replaced, and the store carries on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from o2sms.store import MessageStore, NewMessage, open_store
from o2sms.store.rows import _on_asyncpg, fetch
from tests.pg import PG_URL, admin, fresh_schema

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def pg_store() -> AsyncIterator[MessageStore]:
    """A PostgreSQL store whose pool holds one connection, so a test knows which one it uses."""
    async with fresh_schema() as schema:
        store = await open_store(PG_URL, schema=schema, pool_size=1)
        try:
            yield store
        finally:
            await store.close()


async def _backend_pid(connection: AsyncConnection) -> int:
    return int(await connection.scalar(sa.text("SELECT pg_backend_pid()")))


async def _kill(pid: int) -> None:
    """Terminate, from outside, the server process ``pid``."""
    await admin(f"SELECT pg_terminate_backend({pid})")


async def test_an_idle_connection_that_died_is_replaced_before_use(pg_store: MessageStore) -> None:
    await pg_store.enqueue(NewMessage("+421900000001", "before"))
    async with pg_store.engine.connect() as connection:
        pid = await _backend_pid(connection)
    await _kill(pid)  # while the connection waits in the pool
    await asyncio.sleep(0.2)
    await pg_store.enqueue(NewMessage("+421900000002", "after"))  # no error
    assert await pg_store.queue_depth() == 2


async def test_a_connection_that_dies_mid_transaction_is_invalidated_not_pooled_again(
    pg_store: MessageStore,
) -> None:
    async with pg_store.engine.connect() as connection:
        await _kill(await _backend_pid(connection))
        with pytest.raises(DBAPIError) as caught:
            await fetch(connection, "SELECT 1", ())
        assert caught.value.connection_invalidated
    await pg_store.enqueue(NewMessage("+421900000003", "after"))
    assert await pg_store.queue_depth() == 1


async def test_driver_statements_run_on_the_asyncpg_connection_inside_the_transaction(
    pg_store: MessageStore,
) -> None:
    # If a SQLAlchemy upgrade renamed what rows._on_asyncpg relies on, the store would still
    # work (through SQLAlchemy) but lose its fast path: this notices.
    async with pg_store.engine.connect() as connection:
        ran = await _on_asyncpg(connection, "SELECT 1", lambda driver: driver.fetchval("SELECT 1"))
        assert ran == 1
        in_transaction = await fetch(
            connection, "SELECT now() = statement_timestamp() AS fresh", ()
        )
        # inside a transaction begun earlier, now() is that transaction's start
        assert in_transaction[0].fresh is False
