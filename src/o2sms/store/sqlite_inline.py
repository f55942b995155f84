"""aiosqlite, with the statements that cannot wait run on the event loop's own thread.

aiosqlite hands every call (open a cursor, execute, fetch, close the cursor) to its connection's
thread and wakes the event loop with the answer: four thread hops per statement. On a local
file, inside a transaction that already holds SQLite's write lock (``BEGIN IMMEDIATE``), or in
a WAL read snapshot, a statement takes microseconds and never waits for another connection, so
the hops cost more than the work. Here those calls run inline; what may wait still goes to the
thread: ``BEGIN`` (waits up to ``busy_timeout`` for another process's writer), ``COMMIT`` (the
fsync), ``ROLLBACK``, ``PRAGMA``, opening and closing. Measured with
``benchmarks/bench_service.py --store sqlite --recipients 1``: about 15 % more messages a
second end to end, 10 % less CPU per message.

A statement that may read much of a large table (retention's scan, the queue-depth count)
starts with :data:`OFF_LOOP` and goes to the thread, with the fetches of its rows: inline, it
would stall every connection and session the loop serves while it runs (about 0.2 s per
million rows scanned; ``benchmarks/bench_retention.py``).

It relies on aiosqlite's ``Connection._execute``, ``_connection`` and ``_thread`` (pinned in
pyproject.toml); the store's tests run every statement through it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, Final

import aiosqlite

__all__ = ["OFF_LOOP", "InlineConnection", "connect"]

OFF_LOOP: Final = "/* off-loop */"
"""A comment that sends a statement to the driver's thread: ``select(...).prefix_with(OFF_LOOP)``
(SQLAlchemy writes it right after ``SELECT``)."""

_MAY_WAIT: Final = (
    "BEGIN",
    "COMMIT",
    "END",
    "ROLLBACK",
    "PRAGMA",
    "VACUUM",
    "SAVEPOINT",
    "RELEASE",
)
_STATEMENTS: Final = frozenset({"execute", "executemany", "executescript"})


def _inline(
    function: Callable[..., Any],
    args: tuple[Any, ...],
    off_loop: set[sqlite3.Cursor] | None = None,
) -> bool:
    """True for a call that cannot wait for another connection (see the module's docstring).

    ``off_loop`` holds the cursors whose statement is marked :data:`OFF_LOOP`: their fetches
    step through the rest of the scan, so they go to the thread too. A marked statement adds
    its cursor; another statement on it, or closing it, takes it out again.
    """
    owner = getattr(function, "__self__", None)
    if isinstance(owner, sqlite3.Cursor):
        if function.__name__ in _STATEMENTS:
            sql = args[0] if args and isinstance(args[0], str) else ""
            if OFF_LOOP in sql[:24]:
                if off_loop is not None:
                    off_loop.add(owner)
                return False
            if off_loop:
                off_loop.discard(owner)
            return not sql.lstrip()[:9].upper().startswith(_MAY_WAIT)
        # fetchone/fetchmany/fetchall/close: SQLite computes each row as it is fetched, which
        # takes no lock and is quick, except after a marked statement.
        if off_loop and owner in off_loop:
            if function.__name__ == "close":
                off_loop.discard(owner)
            return False
        return True
    return isinstance(owner, sqlite3.Connection) and function.__name__ == "cursor"


class InlineConnection(aiosqlite.Connection):
    """An :class:`aiosqlite.Connection` that runs calls that cannot wait without a thread hop."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], iter_chunk_size: int) -> None:
        super().__init__(connector, iter_chunk_size)
        self._thread.daemon = True  # as SQLAlchemy does for the connections it opens itself
        self._off_loop: set[sqlite3.Cursor] = set()  #: see _inline

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is not None and _inline(fn, args, self._off_loop):
            return fn(*args, **kwargs)
        return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]


def connect(database: str, *, iter_chunk_size: int = 64) -> InlineConnection:
    """An :class:`InlineConnection` to the SQLite file ``database`` (await it to open it).

    The :mod:`sqlite3` connection is opened on the connection's thread and used from the event
    loop's thread too, one call at a time, hence ``check_same_thread=False``.
    """

    def connector() -> sqlite3.Connection:
        return sqlite3.connect(database, check_same_thread=False)

    return InlineConnection(connector, iter_chunk_size)
