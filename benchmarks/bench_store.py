"""The store alone, stage by stage: what each message costs in enqueue, claim, submit, receipt.

The service's pipeline writes every message four times (accepted, leased, submitted, receipt);
this measures those calls straight on the store, with no HTTP, SMPP or simulator, in the
batch sizes the service's group commits reach. It prints wall and CPU time (this process,
the driver threads of aiosqlite included) per message for each stage.

    .venv/bin/python benchmarks/bench_store.py --store sqlite --messages 20000 --runs 3
    .venv/bin/python benchmarks/bench_store.py --store postgresql --messages 20000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from o2sms.receipts import DeliveryReceipt, ReceiptStat
from o2sms.store import Message, MessageStore, NewMessage, create_engine, open_store

PG_URL = os.environ.get("O2SMS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
STAGES = ("enqueue", "claim", "submitted", "receipts")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def smsc_id(n: int) -> str:
    """An SMSC message id with a letter in it, so no two read alike in hex and decimal."""
    return f"F{n:015X}"


async def _timed(stage: Callable[[], Awaitable[None]], messages: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per message of ``stage``."""
    wall, cpu = time.perf_counter(), _cpu()
    await stage()
    return (
        (time.perf_counter() - wall) * 1e6 / messages,
        (_cpu() - cpu) * 1e6 / messages,
    )


async def run_once(
    store: MessageStore, messages: int, batch: int, receipt_batch: int
) -> dict[str, tuple[float, float]]:
    """Push ``messages`` through the four stages; per-stage (wall, CPU) µs per message."""
    claimed: list[Message] = []
    done = datetime(2026, 11, 26, 3, 0)

    async def enqueue() -> None:
        for start in range(0, messages, batch):
            await store.enqueue_many(
                [
                    NewMessage(recipient=f"+4219{n:08d}", text=f"bench {n}", sender="Bench")
                    for n in range(start, min(start + batch, messages))
                ]
            )

    async def claim() -> None:
        while len(claimed) < messages:
            taken = await store.claim("bench", limit=batch, lease_seconds=600)
            if not taken:
                raise RuntimeError("the queue ran dry before every message was claimed")
            claimed.extend(taken)

    async def submitted() -> None:
        for start in range(0, messages, batch):
            await store.mark_submitted_many(
                [(m.id, [smsc_id(n)]) for n, m in enumerate(claimed[start : start + batch], start)],
                worker_id="bench",
            )

    async def receipts() -> None:
        for start in range(0, messages, receipt_batch):
            await store.apply_receipts(
                [
                    (
                        DeliveryReceipt(
                            smsc_id(n), 1, 1, done, done, ReceiptStat.DELIVRD, "000", ""
                        ),
                        smsc_id(n),
                    )
                    for n in range(start, min(start + receipt_batch, messages))
                ]
            )

    return {
        name: await _timed(stage, messages)
        for name, stage in zip(STAGES, (enqueue, claim, submitted, receipts), strict=True)
    }


async def main_async(args: argparse.Namespace) -> None:
    """Run ``args.runs`` times on fresh stores; print each run and the medians."""
    runs: list[dict[str, tuple[float, float]]] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="o2sms-bench-store-") as workdir:
            schema = None
            if args.store == "postgresql":
                schema = f"o2sms_bench_store_{uuid.uuid4().hex[:12]}"
                admin = create_engine(PG_URL, pool_size=1)
                async with admin.begin() as connection:
                    await connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
                store = await open_store(PG_URL, schema=schema)
            else:
                store = await open_store(f"sqlite:///{Path(workdir) / 'bench.db'}")
            try:
                runs.append(await run_once(store, args.messages, args.batch, args.receipt_batch))
            finally:
                await store.engine.dispose()
                if schema is not None:
                    async with admin.begin() as connection:
                        await connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
                    await admin.dispose()
        print(
            "run: "
            + "; ".join(f"{k} {w:.0f}/{c:.0f}" for k, (w, c) in runs[-1].items())
            + " µs per message (wall/CPU)",
            flush=True,
        )
    print(f"median of {len(runs)} runs, {args.store}, µs per message:")
    for name in STAGES:
        wall = statistics.median(r[name][0] for r in runs)
        cpu = statistics.median(r[name][1] for r in runs)
        print(f"  {name:10s} wall {wall:7.1f}  CPU {cpu:7.1f}")
    total_wall = statistics.median(sum(w for w, _ in r.values()) for r in runs)
    total_cpu = statistics.median(sum(c for _, c in r.values()) for r in runs)
    print(f"  {'all':10s} wall {total_wall:7.1f}  CPU {total_cpu:7.1f}")


def main() -> None:
    """Parse options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100, help="enqueue, claim, submit batch")
    parser.add_argument("--receipt-batch", type=int, default=25)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
