"""Open the database: an async engine from a URL or file path, and its schema migrated.

SQLite (the default, a file) is tuned for one process with many tasks: WAL journal so readers
never wait for the writer, ``busy_timeout`` so a second writer waits instead of failing, foreign
keys on, and every write transaction started with ``BEGIN IMMEDIATE`` so it takes the write
lock up front (a deferred transaction that reads then writes can fail with SQLITE_BUSY when
another writer got in between; an immediate one just waits its turn). Reads go through
:func:`reader`, whose transactions stay deferred and run alongside the writer.

PostgreSQL (``postgresql://...``) goes through asyncpg with a connection pool; ``schema``
puts the tables in a schema of their own (the tests use one per test).

:func:`migrate` runs the Alembic migrations shipped in ``o2sms/store/migrations`` up to head,
under a lock, so several processes starting at once neither race nor repeat them.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from o2sms.store import sqlite_inline

__all__ = [
    "MIGRATIONS_DIR",
    "READ_ONLY_OPTION",
    "create_engine",
    "current_revision",
    "is_postgresql",
    "migrate",
    "reader",
    "store_url",
]

MIGRATIONS_DIR: Final = Path(__file__).with_name("migrations")
"""The Alembic script directory, shipped inside the package (and so inside the wheel)."""

READ_ONLY_OPTION: Final = "o2sms_read_only"
"""Execution option marking read-only use: SQLite then starts a deferred transaction."""

_MIGRATION_LOCK: Final = 0x6F32736D  # "o2sm": the PostgreSQL advisory lock id for migrations
_SYNCHRONOUS: Final = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


def store_url(url: str | Path) -> URL:
    """The SQLAlchemy URL for a store location, with the async driver filled in.

    A path (or any string without ``://``) is an SQLite file; ``sqlite://`` becomes
    ``sqlite+aiosqlite://`` and ``postgresql://``/``postgres://`` become
    ``postgresql+asyncpg://``. An in-memory SQLite database is refused: each pooled
    connection would see a different, empty database.
    """
    if isinstance(url, Path) or "://" not in url:
        return URL.create("sqlite+aiosqlite", database=str(Path(url).expanduser().resolve()))
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("the store needs an SQLite file, not an in-memory database")
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported store URL {url!r}: use a file path, sqlite:// or postgresql://")


def is_postgresql(engine: AsyncEngine) -> bool:
    """True for PostgreSQL (row locks, SKIP LOCKED, advisory locks), False for SQLite."""
    return engine.dialect.name == "postgresql"


def create_engine(
    url: str | Path,
    *,
    schema: str | None = None,
    busy_timeout: float = 30.0,
    synchronous: str = "FULL",
    pool_size: int = 10,
    echo: bool = False,
) -> AsyncEngine:
    """An async engine for ``url`` (see :func:`store_url`), tuned for its backend.

    SQLite: WAL, ``busy_timeout`` seconds of waiting for the write lock, ``synchronous``
    (FULL by default: a commit survives a power cut, which the "accepted only once durably
    stored" promise needs; NORMAL is faster and survives process crashes only).
    PostgreSQL: a pool of ``pool_size`` connections, tables in ``schema`` when given.
    """
    sa_url = store_url(url)
    if sa_url.get_backend_name() == "sqlite":
        if schema is not None:
            raise ValueError("schema is a PostgreSQL option; SQLite keeps one file per store")
        mode = synchronous.upper()
        if mode not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {sorted(_SYNCHRONOUS)}, got {mode!r}")
        engine = create_async_engine(
            sa_url,
            echo=echo,
            hide_parameters=True,
            # Statements run on the event loop's thread; only what may wait hops to the
            # driver's thread (see sqlite_inline). The URL's path is all it takes.
            async_creator=functools.partial(sqlite_inline.connect, str(sa_url.database)),
            # Every transaction ends in COMMIT or ROLLBACK already; the pool's own rollback
            # on check-in would cost one more round trip to the driver's thread each time.
            pool_reset_on_return=None,
        )
        _tune_sqlite(engine, busy_timeout_ms=int(busy_timeout * 1000), synchronous=mode)
        return engine
    connect_args: dict[str, Any] = {}
    if schema is not None:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(
        sa_url,
        echo=echo,
        hide_parameters=True,  # errors and logs must not carry message texts and numbers
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def _tune_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int, synchronous: str) -> None:
    """Pragmas on every new connection, and our own BEGIN instead of the driver's."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # The driver's implicit transactions would defeat BEGIN IMMEDIATE; take them over.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def reader(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) for read-only work: no write lock taken on SQLite."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def _alembic_config(connection: Connection) -> Config:
    """An Alembic configuration in code: no alembic.ini needed at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Held until the transaction ends: concurrent starters migrate one after another.
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
    command.upgrade(_alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema up to the newest migration, in one transaction; a no-op when current."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    async with reader(engine).connect() as connection:
        return await connection.run_sync(_current)
