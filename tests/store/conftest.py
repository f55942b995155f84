"""Store fixtures: every test runs on SQLite (a real file) and on the real PostgreSQL server.

PostgreSQL tests get a schema of their own, created for the test and dropped after it, so
parallel runs and reruns never see each other's rows. When the server cannot be reached the
PostgreSQL tests fail (CI has the server; a skipped half of the suite would go unnoticed).
Set ``O2SMS_TEST_PG_URL`` to use another server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from o2sms.store import MessageStore, open_store
from tests.pg import PG_URL, fresh_schema


class FakeClock:
    """A clock the test moves by hand: leases expire and backoffs pass without sleeping."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Location:
    """Where a test's store lives: a URL, plus a PostgreSQL schema when on PostgreSQL."""

    backend: str
    url: str
    schema: str | None = None


OpenStore = Callable[..., Awaitable[MessageStore]]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test; every store test runs once per backend."""
    return str(request.param)


@pytest_asyncio.fixture
async def location(backend: str, tmp_path: Path) -> AsyncIterator[Location]:
    """A fresh, empty database for one test (a file, or a new PostgreSQL schema)."""
    if backend == "sqlite":
        yield Location(backend, str(tmp_path / "store.db"))
        return
    async with fresh_schema() as schema:
        yield Location(backend, PG_URL, schema)


@pytest.fixture
def clock() -> FakeClock:
    """The fake clock the ``store`` fixture uses."""
    return FakeClock()


@pytest_asyncio.fixture
async def open_at(location: Location, clock: FakeClock) -> AsyncIterator[OpenStore]:
    """Open further stores on the test's database (another "process": its own engine/pool)."""
    opened: list[MessageStore] = []

    async def _open(**options: Any) -> MessageStore:
        options.setdefault("clock", clock)
        store = await open_store(location.url, schema=location.schema, **options)
        opened.append(store)
        return store

    yield _open
    for store in opened:
        await store.close()


@pytest_asyncio.fixture
async def store(open_at: OpenStore) -> MessageStore:
    """A migrated store on the test's database, driven by the fake clock."""
    return await open_at(retry_base=2.0, retry_cap=60.0, max_attempts=5)
