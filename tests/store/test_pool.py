"""PostgreSQL connections that died (a server restart): replaced, and the store carries on."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from o2sms.store import MessageStore, NewMessage, open_store
from o2sms.store.rows import _on_asyncpg, fetch
from tests.pg import PG_URL, admin, fresh_schema

pytestmark = pytest.mark.asyncio


async def _kill_pooled_connection(store: MessageStore) -> None:
    """Terminate, from outside, the server process behind the store's one pooled connection."""
    async with store.engine.connect() as connection:
        pid = await connection.scalar(sa.text("SELECT pg_backend_pid()"))
    await admin(f"SELECT pg_terminate_backend({int(pid)})")


async def test_an_idle_connection_that_died_is_replaced_before_use() -> None:
    async with fresh_schema() as schema:
        store = await open_store(PG_URL, schema=schema, pool_size=1)
        try:
            await store.enqueue(NewMessage("+421900000001", "before"))
            await _kill_pooled_connection(store)
            await asyncio.sleep(0.2)
            await store.enqueue(NewMessage("+421900000002", "after"))  # no error
            assert await store.queue_depth() == 2
        finally:
            await store.close()


async def test_a_connection_that_dies_mid_transaction_is_invalidated_not_pooled_again() -> None:
    async with fresh_schema() as schema:
        store = await open_store(PG_URL, schema=schema, pool_size=1)
        try:
            async with store.engine.connect() as connection:
                pid = await connection.scalar(sa.text("SELECT pg_backend_pid()"))
                await admin(f"SELECT pg_terminate_backend({int(pid)})")
                with pytest.raises(DBAPIError) as caught:
                    await fetch(connection, "SELECT 1", ())
                assert caught.value.connection_invalidated
            await store.enqueue(NewMessage("+421900000003", "after"))
            assert await store.queue_depth() == 1
        finally:
            await store.close()


async def test_driver_statements_run_on_the_asyncpg_connection_inside_the_transaction() -> None:
    # If a SQLAlchemy upgrade renamed what rows._on_asyncpg relies on, the store would still
    # work (through SQLAlchemy) but lose its fast path: this notices.
    async with fresh_schema() as schema:
        store = await open_store(PG_URL, schema=schema, pool_size=1)
        try:
            async with store.engine.connect() as connection:
                ran = await _on_asyncpg(
                    connection, "SELECT 1", lambda driver: driver.fetchval("SELECT 1")
                )
                assert ran == 1
                in_transaction = await fetch(
                    connection, "SELECT now() = statement_timestamp() AS fresh", ()
                )
                # inside a transaction begun earlier, now() is that transaction's start
                assert in_transaction[0].fresh is False
        finally:
            await store.close()
