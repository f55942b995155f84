"""Rows to dataclasses and the small SQL helpers every store module shares.

Kept apart so ``queue`` and ``messages`` read rows the same way and agree on how a history
entry, a correlation lock and a backend-specific INSERT look.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from collections import namedtuple
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar, cast

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from o2sms.receipts import ReceiptStat
from o2sms.store.models import (
    EventKind,
    InboundMessage,
    Message,
    MessageEvent,
    MessageStatus,
    Part,
    PartialSend,
    StoredReceipt,
    Webhook,
    WebhookAttempt,
    WebhookEvent,
    WebhookStatus,
)
from o2sms.store.schema import (
    aware_utc,
    from_postgresql,
    from_sqlite_text,
    message_events,
    messages,
    sqlite_text,
)
from o2sms.store.sqlite_inline import OFF_LOOP, InlineConnection

__all__ = [
    "MESSAGE_COLUMNS",
    "add_event_rows",
    "add_events",
    "backoff_delay",
    "cached_reads",
    "driver_time",
    "execute_many",
    "fetch",
    "fetch_in",
    "insert",
    "insert_sql",
    "json_scalar",
    "json_text",
    "lock_keys",
    "message_from_driver",
    "numbered",
    "partial_send",
    "partial_send_json",
    "queued_event",
    "read_time",
    "time_as_is",
    "to_events",
    "to_inbound",
    "to_message",
    "to_part",
    "to_receipt",
    "to_webhook",
    "to_webhook_attempt",
]

T = TypeVar("T")

_KEY_LOCK_SPACE: Final = 0x6F32726B  # "o2rk": advisory lock namespace of correlation keys
_TRY_LOCK_KEYS: Final = (
    "SELECT bool_and(pg_try_advisory_xact_lock($1, hashtext(k))) "
    "FROM (SELECT k FROM unnest(CAST($2 AS text[])) AS t(k) ORDER BY hashtext(k), k) AS s"
)
_LOCK_KEYS: Final = (
    "SELECT pg_advisory_xact_lock($1, hashtext(k)) "
    "FROM (SELECT k FROM unnest(CAST($2 AS text[])) AS t(k) ORDER BY hashtext(k), k) AS s"
)


# -- statements on the driver's own terms ---------------------------------------------------
# The hot paths write several rows per message. SQLAlchemy compiles each statement (from a
# cache) and converts every value of every row through its type; for these statements the
# values are handed over already in the form the driver stores, and SQLAlchemy passes the
# SQL text straight through (``exec_driver_sql``), several times cheaper per row. On
# PostgreSQL they go one step further, to the asyncpg connection itself (inside the same
# transaction): SQLAlchemy's asyncpg adapter costs ~80 µs of CPU per statement on its own,
# more than the statement, and the service runs several per small batch.


class _Record(asyncpg.Record):  # type: ignore[misc]  # asyncpg ships no type hints
    """An asyncpg row that also reads by attribute, as SQLAlchemy's ``Row`` does."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


async def _on_asyncpg(
    connection: AsyncConnection, sql: str, run: Callable[[Any], Awaitable[T]]
) -> T | None:
    """``run(asyncpg connection)`` inside ``connection``'s transaction (begun if need be),
    its errors raised as SQLAlchemy raises them (``IntegrityError`` etc.). None, without
    running, on SQLite or when SQLAlchemy's adapter is not the one this was written against:
    the caller then goes through SQLAlchemy."""
    if connection.dialect.name != "postgresql":
        return None
    adapted: Any = (await connection.get_raw_connection()).dbapi_connection
    start = getattr(adapted, "_start_transaction", None)
    driver = getattr(adapted, "_connection", None)
    if start is None or not hasattr(adapted, "_transaction"):
        return None
    if not isinstance(driver, asyncpg.Connection):
        return None
    try:
        if adapted._transaction is None:
            await start()  # what the adapter does before its own first statement (BEGIN)
        return await run(driver)
    except Exception as error:
        try:
            adapted._handle_exception(error)  # raises it in its DB-API form
        except Exception as dbapi_error:
            dialect = connection.dialect
            gone = dialect.is_disconnect(cast(Any, dbapi_error), adapted, None)
            if gone:  # as SQLAlchemy does: the pool must not hand this connection out again
                await connection.invalidate(dbapi_error)
            raise sa.exc.DBAPIError.instance(
                sql,
                None,
                dbapi_error,
                dialect.loaded_dbapi.Error,
                connection_invalidated=gone,
                dialect=dialect,
            ) from error
        raise


@functools.lru_cache(maxsize=64)
def numbered(sql: str) -> str:
    """``?`` placeholders as asyncpg's ``$1, $2, ...``."""
    pieces = sql.split("?")
    return "".join(
        piece + (f"${number}" if number < len(pieces) else "")
        for number, piece in enumerate(pieces, 1)
    )


async def execute_many(
    connection: AsyncConnection, sql: str, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Run ``sql`` (``?`` placeholders) once per row, values as :func:`driver_time` etc. give.

    On PostgreSQL a statement made by :func:`insert_sql` or :func:`update_sql` runs once for
    the whole batch, each column an array (an update whose batch names a row twice runs row
    by row, so the last values win as they would).
    """
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        form = _ARRAY_FORMS.get(sql)
        if form is not None and form.distinct(rows):
            arrays = form.sql
            columns = [list(column) for column in zip(*rows, strict=True)]
            done = await _on_asyncpg(
                connection, arrays, lambda driver: _true(driver.execute(arrays, *columns))
            )
            if done:
                return
        sql = numbered(sql)
        done = await _on_asyncpg(
            connection, sql, lambda driver: _true(driver.executemany(sql, rows))
        )
        if done:
            return
    else:
        driver = _inline_sqlite(connection, sql)
        if driver is not None:
            _on_sqlite(connection, sql, lambda: driver.executemany(sql, rows))
            return
    await connection.exec_driver_sql(sql, list(rows))


async def _true(call: Awaitable[Any]) -> bool:
    await call
    return True


async def fetch_in(
    connection: AsyncConnection,
    sql: str,
    values: Sequence[Any],
    *,
    lock: bool = False,
    leading: Sequence[Any] = (),
    tuples: bool = False,
) -> list[Any]:
    """Rows of ``sql``, whose one ``IN_LIST`` stands for "is one of ``values``".

    SQLite gets ``IN (?, ?, ...)``, PostgreSQL one array parameter (``= ANY($1)``), so the
    statement text does not change with the number of values there. ``leading`` are the
    values of the ``?`` placeholders before ``IN_LIST``. ``lock`` appends ``FOR UPDATE`` on
    PostgreSQL. Time columns come back as the driver gives them (see :func:`read_time`).
    ``tuples``: see :func:`fetch`.
    """
    if not values:
        return []
    if connection.dialect.name == "postgresql":
        sql = numbered(sql.replace("IN_LIST", "= ANY(?)")) + (" FOR UPDATE" if lock else "")
        parameters: tuple[Any, ...] = (*leading, list(values))
    else:
        sql = sql.replace("IN_LIST", f"IN ({', '.join('?' * len(values))})")
        parameters = (*leading, *values)
    return await fetch(connection, sql, parameters, tuples=tuples)


async def fetch(
    connection: AsyncConnection, sql: str, parameters: Sequence[Any], *, tuples: bool = False
) -> list[Any]:
    """Rows of a driver statement (``?`` on SQLite, ``$n`` on PostgreSQL), readable by
    attribute and by position; time columns as the driver gives them (:func:`read_time`).
    ``tuples``: rows read by position only (on SQLite plain tuples, without the named row
    each would cost), for a caller that reads many of them."""
    rows: list[Any] | None = await _on_asyncpg(
        connection, sql, lambda driver: driver.fetch(sql, *parameters, record_class=_Record)
    )
    if rows is not None:
        return rows
    driver = _inline_sqlite(connection, sql)
    if driver is not None:
        if tuples:
            return _on_sqlite(connection, sql, lambda: driver.execute(sql, parameters).fetchall())
        return _on_sqlite(connection, sql, lambda: _sqlite_rows(driver.execute(sql, parameters)))
    return list((await connection.exec_driver_sql(sql, tuple(parameters))).all())


def _inline_sqlite(connection: AsyncConnection, sql: str) -> sqlite3.Connection | None:
    """The :mod:`sqlite3` connection under ``connection`` when ``sql`` may run on it directly:
    inside a transaction SQLAlchemy has begun (so ``BEGIN IMMEDIATE`` went out) on one of
    :mod:`~o2sms.store.sqlite_inline`'s connections, and not marked :data:`OFF_LOOP`.
    Otherwise None: the caller goes through SQLAlchemy.

    What SQLAlchemy adds on top of such a statement (a greenlet, its execution context, the
    adapter's cursor) costs several times the statement on a local file, and the service runs
    one per stage of every batch; the call runs on the event loop's thread either way.
    """
    sync = connection.sync_connection
    if sync is None or sync.invalidated or not sync.in_transaction() or OFF_LOOP in sql[:24]:
        return None
    adapted = getattr(sync.connection.dbapi_connection, "_connection", None)
    if not isinstance(adapted, InlineConnection):
        return None
    driver = adapted._connection
    return driver if isinstance(driver, sqlite3.Connection) else None


def _on_sqlite(connection: AsyncConnection, sql: str, run: Callable[[], T]) -> T:
    """``run()`` on the sqlite3 connection, its errors raised as SQLAlchemy raises them."""
    try:
        return run()
    except sqlite3.Error as error:
        dialect = connection.dialect
        raise sa.exc.DBAPIError.instance(
            sql, None, error, dialect.loaded_dbapi.Error, dialect=dialect
        ) from error


def _sqlite_rows(cursor: sqlite3.Cursor) -> list[Any]:
    """A cursor's rows, readable by attribute and by position as SQLAlchemy's ``Row`` is."""
    row = _row_class(tuple(column[0] for column in cursor.description or ()))
    return list(map(row._make, cursor.fetchall()))


@functools.lru_cache(maxsize=128)
def _row_class(names: tuple[str, ...]) -> Any:
    return namedtuple("Row", names, rename=True)


def read_time(connection: AsyncConnection) -> Callable[[Any], datetime | None]:
    """The inverse of :func:`driver_time`, for rows of :func:`fetch_in`."""
    return from_postgresql if connection.dialect.name == "postgresql" else from_sqlite_text


def driver_time(connection: AsyncConnection) -> Callable[[datetime | None], Any]:
    """How this backend's driver takes a :class:`~o2sms.store.schema.UtcDateTime` value."""
    return aware_utc if connection.dialect.name == "postgresql" else sqlite_text


@dataclass(frozen=True, slots=True)
class _ArrayForm:
    """A batch statement as PostgreSQL runs it once for all rows: one array per column.

    Running the row form once per row costs the server about twice as much (an executor
    start, a Bind and an Execute per row; ``benchmarks/bench_service.py`` on PostgreSQL).
    """

    sql: str
    keys: tuple[int, ...] = ()  #: an update's key columns, as positions in a row

    def distinct(self, rows: Sequence[tuple[Any, ...]]) -> bool:
        """True unless two rows of an update name the same row (its outcome would be either)."""
        if not self.keys or len(rows) < 2:
            return True
        keys = self.keys
        return len({tuple(row[i] for i in keys) for row in rows}) == len(rows)


_ARRAY_FORMS: Final[dict[str, _ArrayForm]] = {}  #: by the statement's row form
_LENGTH: Final = re.compile(r"\(\d+\)")
_POSTGRESQL: Final[sa.Dialect] = postgresql.dialect()  # type: ignore[no-untyped-call]


def _unnest(table: sa.Table, columns: Sequence[str]) -> str:
    """``unnest($1::type[], ...) WITH ORDINALITY AS given(columns..., position)``."""
    for name in columns:
        table.c[name]  # a typo fails here, at import, not in production
    # VARCHAR[] rather than VARCHAR(32)[]: a cast would cut a value that is too long short,
    # where storing it in the column refuses it, as the row form does
    arrays = ", ".join(
        f"${number}::{_LENGTH.sub('', table.c[name].type.compile(dialect=_POSTGRESQL))}[]"
        for number, name in enumerate(columns, 1)
    )
    return f"unnest({arrays}) WITH ORDINALITY AS given({', '.join(columns)}, position)"


def insert_sql(
    table: sa.Table, columns: Sequence[str], *, on_conflict_nothing: bool = False
) -> str:
    """``INSERT INTO table (columns) VALUES (?, ...)`` for :func:`execute_many`."""
    rows = _unnest(table, columns)
    marks = ", ".join("?" * len(columns))
    tail = " ON CONFLICT DO NOTHING" if on_conflict_nothing else ""
    names = ", ".join(columns)
    sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks}){tail}"
    # ORDER BY position: serial ids in the order given, as row by row
    _ARRAY_FORMS[sql] = _ArrayForm(
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {rows} ORDER BY position{tail}"
    )
    return sql


def update_sql(
    table: sa.Table, columns: Sequence[str], keys: Sequence[str], *, also: str = ""
) -> str:
    """``UPDATE table SET column = ?, ... [, also] WHERE key = ? AND ...`` for :func:`execute_many`.

    A row gives the new values, then the keys. ``also`` holds assignments of constants.
    """
    rows = _unnest(table, (*columns, *keys))
    extra = f", {also}" if also else ""
    sets = ", ".join(f"{name} = ?" for name in columns) + extra
    where = " AND ".join(f"{name} = ?" for name in keys)
    sql = f"UPDATE {table.name} SET {sets} WHERE {where}"
    given_sets = ", ".join(f"{name} = given.{name}" for name in columns) + extra
    given_where = " AND ".join(f"{table.name}.{name} = given.{name}" for name in keys)
    _ARRAY_FORMS[sql] = _ArrayForm(
        f"UPDATE {table.name} SET {given_sets} FROM {rows} WHERE {given_where}",
        keys=tuple(range(len(columns), len(columns) + len(keys))),
    )
    return sql


_INSERT_EVENT: Final = insert_sql(message_events, ("message_id", "at", "kind", "detail"))


def backoff_delay(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait after the ``attempt``-th failed try: ``base * 2**(attempt-1)``, capped."""
    return min(cap, base * 2.0 ** max(0, min(attempt - 1, 62)))


MESSAGE_COLUMNS: Final = (
    "id",
    "owner",
    "idempotency_key",
    "recipient",
    "sender",
    "text",
    "encoding",
    "parts",
    "flash",
    "schedule_at",
    "validity_seconds",
    "reference",
    "callback_url",
    "status",
    "attempts",
    "resends",
    "error_code",
    "error_name",
    "error_detail",
    "next_attempt_at",
    "lease_owner",
    "lease_until",
    "created_at",
    "updated_at",
    "submitted_at",
    "finished_at",
    "text_purged_at",
    "resume",
)
"""The ``messages`` columns in the order :func:`message_from_driver` reads them."""
assert set(MESSAGE_COLUMNS) == set(messages.c.keys()), "MESSAGE_COLUMNS must name every column"


def message_from_driver(
    row: Sequence[Any],
    read: Callable[[Any], datetime | None],
    *,
    resend: bool = False,
    parts: Sequence[Part] = (),
    events: Sequence[MessageEvent] = (),
) -> Message:
    """A :class:`Message` from a row of :data:`MESSAGE_COLUMNS` in that order, times read by
    ``read`` (:func:`read_time` for a driver statement's row, which skips SQLAlchemy's row and
    column types; :func:`to_message` for the rest)."""
    (
        id_,
        owner,
        idempotency_key,
        recipient,
        sender,
        text,
        encoding,
        parts_count,
        flash,
        schedule_at,
        validity,
        reference,
        callback_url,
        status,
        attempts,
        resends,
        error_code,
        error_name,
        error_detail,
        next_attempt_at,
        lease_owner,
        lease_until,
        created_at,
        updated_at,
        submitted_at,
        finished_at,
        text_purged_at,
        resume,
    ) = row
    # by position, in _MESSAGE_FIELDS' order: one per message claimed or enqueued, and
    # thirty-one keywords cost more than filling the object
    return Message(
        id_,
        recipient,
        sender,
        text,
        encoding,
        parts_count,
        bool(flash),
        read(schedule_at),
        None if validity is None else timedelta(seconds=validity),
        reference,
        idempotency_key,
        owner,
        callback_url,
        _STATUSES.get(status) or MessageStatus(status),
        attempts,
        resends,
        error_code,
        error_name,
        error_detail,
        cast(datetime, read(next_attempt_at)),
        lease_owner,
        read(lease_until),
        cast(datetime, read(created_at)),
        cast(datetime, read(updated_at)),
        read(submitted_at),
        read(finished_at),
        read(text_purged_at),
        None if resume is None else partial_send(resume),
        tuple(parts),
        tuple(events),
        resend,
    )


_MESSAGE_FIELDS: Final = (
    *("id", "recipient", "sender", "text", "encoding", "parts_count", "flash", "schedule_at"),
    *("validity", "reference", "idempotency_key", "owner", "callback_url", "status"),
    *("attempts", "resends", "error_code", "error_name", "error_detail", "next_attempt_at"),
    *("lease_owner", "lease_until", "created_at", "updated_at", "submitted_at", "finished_at"),
    *("text_purged_at", "partial_send", "parts", "events", "resend"),
)
assert tuple(f.name for f in fields(Message)) == _MESSAGE_FIELDS, "message_from_driver's order"
_STATUSES: Final = {status.value: status for status in MessageStatus}


def cached_reads(read: Callable[[Any], datetime | None]) -> Callable[[Any], datetime | None]:
    """``read`` remembering what it read, for the rows of one statement: a claim's messages
    share their lease's times, and those enqueued together their creation time."""
    memory: dict[Any, datetime | None] = {None: None}

    def cached(value: Any) -> datetime | None:
        try:
            return memory[value]
        except KeyError:
            result = memory[value] = read(value)
            return result

    return cached


def partial_send(stored: str) -> PartialSend:
    """The ``resume`` column's JSON as a :class:`PartialSend`."""
    data = json.loads(stored)
    return PartialSend(int(data["concat_reference"]), tuple(data["message_ids"]))


def partial_send_json(concat_reference: int, message_ids: Sequence[str | None]) -> str:
    """What the ``resume`` column keeps: the reference and each part's id (None: not sent)."""
    return json.dumps({"concat_reference": concat_reference, "message_ids": list(message_ids)})


def to_message(
    row: sa.Row[Any] | Mapping[str, Any],
    parts: Sequence[Part] = (),
    events: Sequence[MessageEvent] = (),
) -> Message:
    """A :class:`Message` from a ``messages`` row read through SQLAlchemy (times already
    converted), or a mapping with the same keys."""
    m = row._mapping if isinstance(row, sa.Row) else row
    return message_from_driver(
        [m[name] for name in MESSAGE_COLUMNS], time_as_is, parts=parts, events=events
    )


def time_as_is(value: Any) -> datetime | None:
    """The time reader for rows whose times are datetimes already (read through SQLAlchemy's
    column types, or a row just built)."""
    return cast(datetime | None, value)


def to_part(row: sa.Row[Any]) -> Part:
    """A :class:`Part` from a ``message_parts`` row."""
    m = row._mapping
    return Part(
        part_no=m["part_no"],
        smsc_id=m["smsc_id"],
        status=MessageStatus(m["status"]),
        error_code=m["error_code"],
        submitted_at=m["submitted_at"],
        receipt_at=m["receipt_at"],
    )


def to_events(rows: Iterable[sa.Row[Any]]) -> list[MessageEvent]:
    """The history entries of ``message_events`` rows, in their order.

    A ``receipt`` row whose detail holds ``status`` (``{"from": ..., "to": ...}``) stands for
    two entries: the receipt, then the status change it caused, both with the row's ``id``
    and ``at``. The receipts path stores them so to save every message a row; a status
    change with no single receipt behind it has a row of its own.
    """
    events = []
    for row in rows:
        m = row._mapping
        kind, detail = EventKind(m["kind"]), dict(m["detail"])
        change = detail.pop("status", None) if kind is EventKind.RECEIPT else None
        events.append(MessageEvent(m["id"], m["message_id"], m["at"], kind, detail))
        if change is not None:
            events.append(MessageEvent(m["id"], m["message_id"], m["at"], EventKind.STATUS, change))
    return events


def queued_event(row: sa.Row[Any]) -> MessageEvent:
    """The ``queued`` history entry of a ``messages`` row, from its ``created_at`` and
    ``schedule_at``.

    Not stored: it says no more than those two columns do, and every message would pay a row
    for it on the busiest path. Its ``id`` is 0, before every stored entry. (Stores written by
    earlier versions hold it as a row; :meth:`MessageStore.get` then shows that one.)
    """
    m = row._mapping
    created, schedule_at = m["created_at"], m["schedule_at"]
    scheduled = schedule_at is not None and schedule_at > created
    return MessageEvent(
        id=0,
        message_id=m["id"],
        at=created,
        kind=EventKind.QUEUED,
        detail={
            "status": (MessageStatus.SCHEDULED if scheduled else MessageStatus.QUEUED).value,
            "schedule_at": None if schedule_at is None else schedule_at.isoformat(),
        },
    )


def to_inbound(row: sa.Row[Any]) -> InboundMessage:
    """An :class:`InboundMessage` from an ``inbound`` row."""
    m = row._mapping
    return InboundMessage(
        id=m["id"],
        source=m["source"],
        destination=m["destination"],
        text=m["text"],
        data_coding=m["data_coding"],
        parts=m["parts"],
        session=m["session"],
        received_at=m["received_at"],
    )


def to_receipt(row: sa.Row[Any]) -> StoredReceipt:
    """A :class:`StoredReceipt` from a ``receipts`` row."""
    m = row._mapping
    return StoredReceipt(
        id=m["id"],
        receipt_id=m["receipt_id"],
        stat=ReceiptStat(m["stat"]),
        err=m["err"],
        received_at=m["received_at"],
        message_id=m["message_id"],
        part_no=m["part_no"],
        matched_at=m["matched_at"],
        detail=dict(m["detail"]),
    )


def to_webhook(row: sa.Row[Any]) -> Webhook:
    """A :class:`Webhook` from a ``webhooks`` row."""
    m = row._mapping
    return Webhook(
        id=m["id"],
        event_id=m["event_id"],
        event=WebhookEvent(m["event"]),
        url=m["url"],
        payload=dict(m["payload"]),
        status=WebhookStatus(m["status"]),
        attempts=m["attempts"],
        message_id=m["message_id"],
        inbound_id=m["inbound_id"],
        next_attempt_at=m["next_attempt_at"],
        lease_owner=m["lease_owner"],
        lease_until=m["lease_until"],
        last_error=m["last_error"],
        created_at=m["created_at"],
        delivered_at=m["delivered_at"],
        give_up_at=m["give_up_at"],
    )


def to_webhook_attempt(row: sa.Row[Any]) -> WebhookAttempt:
    """A :class:`WebhookAttempt` from a ``webhook_attempts`` row joined with its webhook."""
    m = row._mapping
    return WebhookAttempt(
        id=m["id"],
        webhook_id=m["webhook_id"],
        event_id=m["event_id"],
        event=WebhookEvent(m["event"]),
        url=m["url"],
        at=m["at"],
        status_code=m["status_code"],
        error=m["error"],
        duration_ms=m["duration_ms"],
    )


def _json_text_function() -> Callable[[Any], str]:
    """``json.dumps`` with its default options, minus the C encoder it builds on every call.

    That set-up is most of the cost of dumping the small dicts the store writes several times
    per message. Where the C accelerator is missing, plain ``json.dumps``.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.dumps
    defaults = json.JSONEncoder()
    # markers=None: no circular-reference check; the store's values are trees it just built.
    encode = make(
        None,
        defaults.default,
        json.encoder.encode_basestring_ascii,
        None,  # indent
        defaults.key_separator,
        defaults.item_separator,
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )

    def json_text(value: Any) -> str:
        return "".join(encode(value, 0))

    return json_text


json_text: Final = _json_text_function()
"""``json.dumps(value)``, byte for byte, faster on small values (history, receipt details).

Unlike ``json.dumps`` it does not look for circular references (one would end in
RecursionError rather than ValueError)."""


_json_string: Final = json.encoder.encode_basestring_ascii  # json.dumps's own, for a str


def json_scalar(value: Any) -> str:
    """``json.dumps(value)`` for None, a str, a bool or an int, without building an encoder
    or a container: the history entries and receipt details of the batch paths are written
    as f-strings of these (several times cheaper than encoding a dict). Anything else goes
    through :data:`json_text`."""
    if value is None:
        return "null"
    kind = value.__class__
    if kind is str:
        return _json_string(value)
    if kind is int:
        return int.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    return json_text(value)


def insert(connection: AsyncConnection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """The backend's INSERT construct, which knows ``ON CONFLICT DO NOTHING``."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def add_events(
    connection: AsyncConnection,
    at: datetime,
    entries: Iterable[tuple[str, EventKind, Mapping[str, Any]]],
) -> None:
    """Append ``(message_id, kind, detail)`` entries to the history, in one statement."""
    stamp = driver_time(connection)(at)
    await add_event_rows(
        connection,
        [
            (message_id, stamp, kind._value_, json_text(dict(detail)))
            for message_id, kind, detail in entries
        ],
    )


async def add_event_rows(
    connection: AsyncConnection, rows: Sequence[tuple[str, Any, str, str]]
) -> None:
    """:func:`add_events` for entries already as ``(message_id, at, kind, detail)`` rows:
    ``at`` as :func:`driver_time` gives it, ``kind`` an :class:`EventKind`'s value and
    ``detail`` the JSON text exactly as ``json.dumps`` writes the detail (see
    :func:`json_scalar`)."""
    await execute_many(connection, _INSERT_EVENT, rows)


async def lock_keys(connection: AsyncConnection, keys: Iterable[str]) -> None:
    """Serialise, on PostgreSQL, transactions that correlate the same SMSC id keys.

    A receipt and the submit it belongs to may be recorded at the same moment by two
    processes; without this each would miss the other's uncommitted row and the receipt would
    stay unmatched. Transaction-scoped advisory locks, taken in one order (by the hash that is
    locked, then by key: no deadlock). Take them before locking any message row, as the
    submit and receipt paths do. SQLite needs nothing: its write transactions already run one
    at a time.
    """
    await _take_keys(connection, _LOCK_KEYS, keys)


async def try_lock_keys(connection: AsyncConnection, keys: Iterable[str]) -> bool:
    """:func:`lock_keys` without waiting: False when another transaction holds one of them
    (the ones it got stay held until the transaction ends). For a transaction that already
    holds message rows, where waiting for a key could close a cycle with the submit path."""
    return await _take_keys(connection, _TRY_LOCK_KEYS, keys)


async def _take_keys(connection: AsyncConnection, sql: str, keys: Iterable[str]) -> bool:
    """Run a key-locking statement on the set of ``keys`` (PostgreSQL only), in one round
    trip: the statement's ORDER BY fixes the locking order. True unless a try came back empty."""
    if connection.dialect.name != "postgresql":
        return True
    ordered = sorted(set(keys))
    if not ordered:
        return True
    rows = await fetch(connection, sql, (_KEY_LOCK_SPACE, ordered))
    return all(row[0] is not False for row in rows)  # a wait's rows say nothing: True
