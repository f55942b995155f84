"""Soak test: messages through the HTTP API for a long time, with faults, watching for loss.

This process runs the SMSC (an o2sms Simulator with one account, 4 sessions allowed) and the
HTTP load generator; ``o2sms serve`` runs as a child process in gateway mode against it, with
its store on SQLite or PostgreSQL. Every ``--fault-every`` seconds the SMSC drops the
connections that carry the next PDUs (``drop_after``), for a few seconds. Every 5 s the script
records delivered messages and the service's RSS; at the end it prints the loss ledger
(accepted, final, delivered, duplicates at the SMSC, lost) and writes a CSV and, when
matplotlib is installed (it is not a dependency), a PNG plot.

    .venv/bin/python benchmarks/soak.py --messages 200000 --png docs/soak.png
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import importlib
import itertools
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from o2sms.simulator import Account, Simulator
from o2sms.store import create_engine

sys.path.insert(0, str(Path(__file__).parents[1]))  # run as a script from anywhere
from benchmarks.bench_service import API_KEY, Child, _post_loop, _rss_mib, serve_child

ACCOUNT = Account("soak", "soak-password-123")


async def _counts(engine: AsyncEngine) -> Counter[str]:
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                sa.text("SELECT status, count(*) FROM messages GROUP BY status")
            )
        ).all()
    return Counter({str(status): int(count) for status, count in rows})


async def soak(args: argparse.Namespace, workdir: Path) -> int:
    """Run the soak; return the process exit status (1 when anything was lost)."""
    smsc = Simulator(accounts=(ACCOUNT,), receipt_delay=0.05, store_size=1000)
    await smsc.start()
    env = {
        **os.environ,
        "O2SMS_API_KEYS": API_KEY,
        "O2SMS_HTTP_PORT": "0",
        "O2SMS_LOG_LEVEL": "warning",
        "O2SMS_SENDER": "Soak",
        "O2SMS_GATEWAY__HOSTS": f"127.0.0.1:{smsc.port}",
        "O2SMS_GATEWAY__SYSTEM_ID": ACCOUNT.system_id,
        "O2SMS_GATEWAY__PASSWORD": ACCOUNT.password,
        "O2SMS_GATEWAY__SESSIONS": "4",
        "O2SMS_WORKER__RETRY_BASE": "0.5",
    }
    try:
        async with serve_child(env, args.store, workdir, "o2sms_soak") as child:
            return await _soak(args, smsc, child)
    finally:
        await smsc.stop()


async def _soak(args: argparse.Namespace, smsc: Simulator, child: Child) -> int:
    """Drive the running ``child`` with faults injected into ``smsc``; print the ledger."""
    process, address = child.process, child.address
    engine = create_engine(child.url, schema=child.schema)
    samples: list[tuple[float, int, float]] = []  # seconds, delivered, RSS MiB
    started = time.perf_counter()
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            counts = await _counts(engine)
            samples.append(
                (time.perf_counter() - started, counts["delivered"], _rss_mib(process.pid))
            )
            await asyncio.sleep(5.0)

    faults = 0

    async def inject() -> None:
        nonlocal faults
        while not stop.is_set():
            await asyncio.sleep(args.fault_every)
            smsc.faults.drop_after = 200  # cut each link after its next 200 PDUs
            faults += 1
            await asyncio.sleep(3.0)
            smsc.faults.clear()

    sampler = asyncio.create_task(sample())
    injector = asyncio.create_task(inject()) if args.fault_every > 0 else None
    numbers = [f"+4219{n:08d}" for n in range(args.recipients)]
    requests = args.messages // args.recipients
    chunk = 2000
    for start in range(0, requests, chunk):  # bodies made as we go: memory stays flat here too
        bodies = [
            json.dumps(
                {"to": numbers[0] if args.recipients == 1 else numbers, "text": f"soak {i}"}
            ).encode()
            for i in range(start, min(start + chunk, requests))
        ]
        latencies: list[float] = []
        share = [bodies[i :: args.connections] for i in range(args.connections)]
        await asyncio.gather(*(_post_loop(*address, part, latencies) for part in share if part))
    accepted_at = time.perf_counter() - started
    total = requests * args.recipients
    deadline = time.perf_counter() + 600
    while time.perf_counter() < deadline:
        counts = await _counts(engine)
        final = sum(
            n
            for s, n in counts.items()
            if s not in ("queued", "scheduled", "submitted", "accepted")
        )
        if final >= total:
            break
        await asyncio.sleep(1.0)
    finished_at = time.perf_counter() - started
    stop.set()
    await sampler
    if injector is not None:
        injector.cancel()
    counts = await _counts(engine)
    copies = Counter((m.destination_addr, m.text) for m in smsc.messages())
    await engine.dispose()

    final = sum(
        n for s, n in counts.items() if s not in ("queued", "scheduled", "submitted", "accepted")
    )
    lost = total - final
    print(f"ledger: accepted {total}, final {final} {dict(counts)}, lost {lost}")
    print(
        f"SMSC: submit_sm accepted {smsc.counters['submit_sm_accepted']}, connections dropped "
        f"{smsc.counters['connections_dropped']}, fault windows {faults}; duplicates among the "
        f"last {len(copies)} kept: {sum(n - 1 for n in copies.values() if n > 1)}"
    )
    print(
        f"accepted in {accepted_at:.0f} s ({total / accepted_at:,.0f} msg/s); all final after "
        f"{finished_at:.0f} s ({total / finished_at:,.0f} msg/s end to end)"
    )
    rss = [s[2] for s in samples if s[2] > 0]
    if rss:
        print(
            f"service RSS: first {rss[0]:.0f} MiB, max {max(rss):.0f} MiB, last {rss[-1]:.0f} MiB"
        )
    if args.csv:
        with open(args.csv, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["seconds", "delivered", "rss_mib"])
            writer.writerows(samples)
    if args.png:
        plot(samples, Path(args.png), title=f"soak: {total:,} messages, {args.store}")
    return 1 if lost else 0


def plot(samples: list[tuple[float, int, float]], path: Path, *, title: str) -> None:
    """Throughput (per 5 s sample) and RSS over time, as a PNG; skipped without matplotlib."""
    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        print("matplotlib is not installed: no PNG")
        return
    times = [s[0] for s in samples[1:]]
    rates = [
        (b[1] - a[1]) / (b[0] - a[0]) if b[0] > a[0] else 0.0
        for a, b in itertools.pairwise(samples)
    ]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    top.plot(times, rates)
    top.set_ylabel("delivered msg/s")
    top.set_title(title)
    bottom.plot([s[0] for s in samples], [s[2] for s in samples], color="tab:red")
    bottom.set_ylabel("service RSS (MiB)")
    bottom.set_xlabel("seconds")
    bottom.set_ylim(bottom=0)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    print(f"wrote {path}")


def main() -> None:
    """Parse options and soak."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--recipients", type=int, default=1, help="recipients per request")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--fault-every", type=float, default=60.0, help="seconds; 0: none")
    parser.add_argument("--csv")
    parser.add_argument("--png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="o2sms-soak-") as workdir:
        raise SystemExit(asyncio.run(soak(args, Path(workdir))))


if __name__ == "__main__":
    main()
