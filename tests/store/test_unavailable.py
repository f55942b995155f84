"""What counts as "the store is away" (retry, answer 503) against real drivers' own errors."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from o2sms.store import open_store
from o2sms.store.errors import unavailable
from o2sms.store.rows import fetch

pytestmark = pytest.mark.asyncio

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def _error_of(connection: AsyncConnection, sql: str) -> BaseException:
    return await _raised(connection.execute(sa.text(sql)))


async def _raised(call: Awaitable[object]) -> BaseException:
    """What awaiting ``call`` raised (an AssertionError when it did not)."""
    try:
        await call
    except Exception as exc:
        return exc
    raise AssertionError("the call did not fail")


async def test_sqlite_busy_is_an_outage_and_a_missing_table_is_not(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.commit()
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 0.05})
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        async with engine.connect() as connection:
            busy = await _error_of(connection, "INSERT INTO t VALUES (1)")
        holder.rollback()
        async with engine.connect() as connection:
            missing = await _error_of(connection, "SELECT * FROM no_such_table")
    finally:
        holder.close()
        await engine.dispose()
    assert "locked" in str(busy)
    assert unavailable(busy)
    assert not unavailable(missing)  # a bug: retrying would only repeat it


async def test_postgresql_server_gone_is_an_outage_and_a_bad_statement_is_not() -> None:
    engine = create_async_engine(PG_URL)
    try:
        async with engine.connect() as victim, engine.connect() as admin:
            pid = (await victim.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
            await victim.commit()
            # The server goes away in the middle of a statement (a restart, a failover).
            running = asyncio.create_task(_error_of(victim, "SELECT pg_sleep(5)"))
            await asyncio.sleep(0.2)
            await admin.execute(sa.text(f"SELECT pg_terminate_backend({pid})"))
            terminated = await running
        async with engine.connect() as connection:
            syntax = await _error_of(connection, "SELEC 1")
    finally:
        await engine.dispose()
    assert unavailable(terminated), repr(terminated)
    assert not unavailable(syntax)


async def test_postgresql_server_gone_under_a_driver_statement_is_an_outage() -> None:
    store = await open_store(PG_URL, run_migrations=False)
    engine = store._engine
    try:
        async with engine.connect() as victim, engine.connect() as admin:
            pid = await fetch(victim, "SELECT pg_backend_pid() AS pid", ())
            await victim.commit()
            await admin.execute(sa.text(f"SELECT pg_terminate_backend({pid[0].pid})"))
            await asyncio.sleep(0.2)
            terminated = await _raised(fetch(victim, "SELECT 1 AS one", ()))
    finally:
        await store.close()
    assert unavailable(terminated), repr(terminated)


async def test_the_postgresql_drivers_own_complaint_is_no_outage() -> None:
    engine = create_async_engine(PG_URL)
    statement = sa.text("SELECT 1 WHERE 1 IN :values").bindparams(
        sa.bindparam("values", expanding=True)
    )
    try:
        async with engine.connect() as connection:
            too_many = await _raised(connection.execute(statement, {"values": list(range(40_000))}))
    finally:
        await engine.dispose()
    assert "cannot exceed" in str(too_many)
    assert not unavailable(too_many)  # the same statement would fail the same way for ever
