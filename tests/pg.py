"""The real PostgreSQL server the store and service tests use (O2SMS_TEST_PG_URL overrides it).

A test gets a schema of its own, dropped afterwards, so runs never see each other's rows. An
unreachable server fails the test: CI has the server, and a skipped half would go unnoticed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.exc import DBAPIError

from o2sms.store import create_engine

PG_URL = os.environ.get("O2SMS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def admin(sql: str) -> None:
    """Run one statement on the server (outside any test schema)."""
    engine = create_engine(PG_URL, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql(sql)
    finally:
        await engine.dispose()


@asynccontextmanager
async def fresh_schema(prefix: str = "o2sms_test") -> AsyncIterator[str]:
    """A new, empty schema for one test, dropped with everything in it afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    try:
        await admin(f'CREATE SCHEMA "{schema}"')
    except (OSError, DBAPIError) as exc:
        pytest.fail(
            f"PostgreSQL at {PG_URL} is unreachable ({exc.__class__.__name__}: {exc}); these "
            "tests need it (set O2SMS_TEST_PG_URL to use another server)",
            pytrace=False,
        )
    try:
        yield schema
    finally:
        await admin(f'DROP SCHEMA "{schema}" CASCADE')
