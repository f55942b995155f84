"""Locks held on a store's database from outside it, so the store under test must wait.

Both hold for ``seconds``, call ``taken.set()`` once the lock is held and
``before_release()`` just before letting go (a test moves its fake clock there).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from o2sms.store import create_engine
from tests.pg import PG_URL


def _nothing() -> None:
    pass


def hold_sqlite_write_lock(
    path: Path | str,
    seconds: float,
    taken: threading.Event,
    before_release: Callable[[], None] = _nothing,
) -> None:
    """Hold SQLite's write lock from another connection (blocking: run it in a thread)."""
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        taken.set()
        threading.Event().wait(seconds)
        before_release()
        connection.execute("COMMIT")
    finally:
        connection.close()


async def hold_pg_table_lock(
    schema: str,
    seconds: float,
    taken: asyncio.Event | threading.Event,
    before_release: Callable[[], None] = _nothing,
) -> None:
    """Hold ACCESS EXCLUSIVE on the schema's messages table: reads and writes wait."""
    engine = create_engine(PG_URL, schema=schema, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
            taken.set()
            await asyncio.sleep(seconds)
            before_release()
    finally:
        await engine.dispose()
