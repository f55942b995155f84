"""Retention on a large SQLite store: how long a purge runs and how long it stalls the event loop.

Writes ``--rows`` delivered messages, finished about 60 days ago (one every 2 ms) with their text already blanked
(what a store holds after months of traffic) except the first ``--texts`` of them, then runs
``purge(text_after=30 days)`` three times while a task ticks every 5 ms, and prints each run's
time and the longest gap between ticks: what every HTTP request and SMPP session served by the
same event loop waits at worst. The first run blanks the ``--texts`` texts, the others find
nothing left to do.

    .venv/bin/python benchmarks/bench_retention.py --rows 1000000
    .venv/bin/python benchmarks/bench_retention.py --rows 1000000 --texts 200000
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from o2sms.store import open_store


def _fill(path: Path, rows: int, texts: int) -> None:
    """``rows`` finished messages, the first ``texts`` with a text, written with sqlite3."""
    start = (datetime.now(UTC) - timedelta(days=60)).replace(tzinfo=None)

    def at(i: int) -> str:  # one message finished every 2 ms, as steady traffic would
        return (start + timedelta(milliseconds=2 * i)).isoformat(" ", "microseconds")

    database = sqlite3.connect(path)
    database.executemany(
        "INSERT INTO messages (id, recipient, text, status, next_attempt_at, created_at, "
        "updated_at, submitted_at, finished_at, text_purged_at, parts, flash, attempts, "
        "resends, owner) VALUES (?, ?, ?, 'delivered', ?, ?, ?, ?, ?, ?, 1, 0, 1, 0, '')",
        (
            (f"m{i:09d}", "+421900000000", "a text" if i < texts else None, *[at(i)] * 6)
            for i in range(rows)
        ),
    )
    database.commit()
    database.execute("ANALYZE")
    database.close()


async def run(rows: int, texts: int) -> None:
    """Fill a store, then time three purges and the event loop's longest stall in each."""
    with tempfile.TemporaryDirectory(prefix="o2sms-retention-") as workdir:
        path = Path(workdir) / "big.db"
        await (await open_store(path)).close()  # the schema
        _fill(path, rows, texts)
        store = await open_store(path)
        gaps: list[float] = []

        async def tick() -> None:
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        try:
            for run_number in range(1, 4):
                gaps.clear()
                started = time.perf_counter()
                result = await store.purge(text_after=timedelta(days=30))
                elapsed = time.perf_counter() - started
                print(
                    f"run {run_number}: text purge over {rows:,} rows took {elapsed:.2f} s "
                    f"({result.texts} texts); longest event-loop stall "
                    f"{max(gaps, default=0.0) * 1000:.0f} ms",
                    flush=True,
                )
        finally:
            ticker.cancel()
            await store.close()


def main() -> None:
    """Parse options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--texts", type=int, default=0, help="rows that still have a text")
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.texts))


if __name__ == "__main__":
    main()
