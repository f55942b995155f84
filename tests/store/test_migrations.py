"""Migrations create the schema on an empty database, are idempotent, and match schema.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from o2sms.store import NewMessage, create_engine, current_revision, migrate
from o2sms.store.engine import _alembic_config
from o2sms.store.schema import metadata
from tests.store.conftest import Location, OpenStore

pytestmark = pytest.mark.asyncio

HEAD = "0007"

TABLES = {
    "messages",
    "message_parts",
    "part_keys",
    "message_events",
    "receipts",
    "receipt_keys",
    "inbound",
    "webhooks",
    "webhook_attempts",
    "alembic_version",
}


def _tables(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_an_empty_database_gets_the_whole_schema(location: Location) -> None:
    engine = create_engine(location.url, schema=location.schema)
    try:
        assert await current_revision(engine) is None
        await migrate(engine)
        assert await current_revision(engine) == HEAD
        async with engine.connect() as connection:
            assert await connection.run_sync(_tables) == TABLES
            # head and schema.py agree: no migration is missing
            assert await connection.run_sync(_diff) == []
    finally:
        await engine.dispose()


def _index_conditions(connection: Connection, schema: str | None) -> dict[str, str]:
    """Each index's row condition as the database keeps it ("" for a whole-table index)."""
    if connection.dialect.name == "postgresql":
        rows = connection.execute(
            sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :schema"),
            {"schema": schema},
        )
    else:
        rows = connection.execute(
            sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        )
    found = {}
    for name, definition in rows:
        _, _, condition = definition.upper().partition(" WHERE ")
        found[name] = condition.replace("(", "").replace(")", "").strip()
    return found


async def test_indexes_keep_exactly_the_rows_schema_py_says(location: Location) -> None:
    # compare_metadata does not look at an index's WHERE: check the conditions here.
    expected = {}
    for table in metadata.tables.values():
        for index in table.indexes:
            where = index.dialect_options[location.backend]["where"]
            expected[str(index.name)] = "" if where is None else str(where).upper()
    assert any(expected.values())  # the partial indexes of revision 0004 are declared
    engine = create_engine(location.url, schema=location.schema)
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            found = await connection.run_sync(_index_conditions, location.schema)
    finally:
        await engine.dispose()
    assert {name: found.get(name) for name in expected} == expected


def _fill_factors(connection: Connection, schema: str | None) -> dict[str, str]:
    """Each table's storage parameters as PostgreSQL keeps them (``fillfactor=50`` etc.)."""
    rows = connection.execute(
        sa.text(
            "SELECT c.relname, c.reloptions FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = :schema AND c.relkind = 'r'"
        ),
        {"schema": schema},
    )
    return {name: ",".join(options or ()) for name, options in rows}


async def test_tables_keep_the_fill_factors_schema_py_says(location: Location) -> None:
    # compare_metadata does not look at storage parameters either.
    expected = {
        table.name: ",".join(
            f"{k}={v}" for k, v in (table.dialect_options["postgresql"]["with"] or {}).items()
        )
        for table in metadata.tables.values()
    }
    assert expected["message_parts"] == "fillfactor=50"  # revision 0006
    engine = create_engine(location.url, schema=location.schema)
    try:
        await migrate(engine)
        if location.backend != "postgresql":
            return  # SQLite has no such setting: migrating was all there was to check
        async with engine.connect() as connection:
            found = await connection.run_sync(_fill_factors, location.schema)
    finally:
        await engine.dispose()
    assert {name: found.get(name) for name in expected} == expected


async def test_downgrading_the_fill_factors_resets_them(location: Location) -> None:
    engine = create_engine(location.url, schema=location.schema)

    def downgrade(connection: Connection) -> None:
        command.downgrade(_alembic_config(connection), "0005")

    try:
        await migrate(engine)
        async with engine.begin() as connection:
            await connection.run_sync(downgrade)
        assert await current_revision(engine) == "0005"
        if location.backend == "postgresql":
            async with engine.connect() as connection:
                found = await connection.run_sync(_fill_factors, location.schema)
            assert found["message_parts"] == ""
        await migrate(engine)  # and up again
        assert await current_revision(engine) == HEAD
    finally:
        await engine.dispose()


async def test_reopening_migrates_nothing_and_keeps_the_data(open_at: OpenStore) -> None:
    first = await open_at()
    kept = (await first.enqueue(NewMessage("+421900000001", "hello"))).message
    await first.close()
    second = await open_at()
    assert await current_revision(second.engine) == HEAD
    got = await second.get(kept.id)
    assert got is not None
    assert got.text == "hello"


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = create_engine(tmp_path / "w.db", busy_timeout=7.5)
    try:
        async with engine.connect() as connection:
            assert (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 7500
            assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
    finally:
        await engine.dispose()


async def test_downgrading_the_resume_column_keeps_every_part_and_event(
    open_at: OpenStore, location: Location
) -> None:
    store = await open_at()
    message = (await store.enqueue(NewMessage("+421900000001", "x" * 400, parts=3))).message
    await store.claim("w")
    await store.mark_submitted(message.id, ["A-1", "A-2", "A-3"], worker_id="w")
    await store.close()
    engine = create_engine(location.url, schema=location.schema)

    def downgrade(connection: Connection) -> None:
        command.downgrade(_alembic_config(connection), "0004")

    try:
        async with engine.begin() as connection:
            await connection.run_sync(downgrade)
        assert await current_revision(engine) == "0004"
    finally:
        await engine.dispose()
    reopened = await open_at()  # migrates back up to the head
    got = await reopened.get(message.id)
    assert got is not None
    assert [part.smsc_id for part in got.parts] == ["A-1", "A-2", "A-3"]
    assert len(got.events) >= 2  # queued, submitted
