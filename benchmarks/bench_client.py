"""Throughput and latency of ``Client.send()`` against a neutral SMSC (smpp-sink).

Build the sink (see ../shared/tools/smpp-sink/README.md), then, pinning it and the client to
different cores:

    taskset -c 1 /path/to/smpp-sink --port 2775 --quiet [--dlr] &
    taskset -c 0 .venv/bin/python benchmarks/bench_client.py --port 2775 --window 64 [--receipts]

or let the script start the sink itself: ``--sink /path/to/smpp-sink`` (pinned to core 1,
the script pins itself to core 0). Reports messages per second through ``send()``, p50/p99
latency from send() to its submit_sm_resp, and peak RSS of this process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator

from o2sms.client import Client, DeliveryReport

TEXT = "Your parcel 4711 arrives today between 14:00 and 16:00. Reply STOP to."  # 70 GSM chars


@contextlib.contextmanager
def sink_process(path: str | None, port: int, receipts: bool) -> Iterator[None]:
    """Start smpp-sink on core 1 when a path is given; otherwise expect one running."""
    if path is None:
        yield
        return
    command = [path, "--host", "127.0.0.1", "--port", str(port), "--quiet"]
    if receipts:
        command.append("--dlr")
    if shutil.which("taskset"):
        command = ["taskset", "-c", "1", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        yield
    finally:
        process.terminate()
        process.wait()


async def run(
    port: int, messages: int, window: int, sessions: int, receipts: bool
) -> dict[str, float]:
    """Send ``messages`` through one Client and measure."""
    latencies: list[float] = []
    received = 0
    all_received = asyncio.Event()

    async def on_event(event: object) -> None:
        nonlocal received
        if isinstance(event, DeliveryReport):
            received += 1
            if received >= messages:
                all_received.set()

    # Distinct valid Slovak mobile numbers, so number validation is measured, not cached.
    numbers = [f"+4219{n % 10_000_000 + 10_000_000:08d}" for n in range(messages)]
    async with Client(
        "127.0.0.1",
        port,
        "bench",
        "bench",
        sessions=sessions,
        window=window,
        sender="O2 Bench",
        handler=on_event,
    ) as sms:
        workers = max(1, window * sessions * 2)
        per_worker = [numbers[i::workers] for i in range(workers)]
        clock = time.perf_counter

        async def worker(batch: list[str]) -> None:
            for number in batch:
                start = clock()
                await sms.send(number, TEXT, report=receipts)
                latencies.append(clock() - start)

        started = clock()
        await asyncio.gather(*(worker(batch) for batch in per_worker))
        sent_at = clock()
        if receipts:
            await asyncio.wait_for(all_received.wait(), timeout=60)
        finished = clock()
    latencies.sort()
    return {
        "rate": messages / (finished - started),
        "send_rate": messages / (sent_at - started),
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1e3,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    """Parse arguments, run, print one line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=2775)
    parser.add_argument("--sink", help="path of smpp-sink to start (pinned to core 1)")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--receipts", action="store_true")
    args = parser.parse_args()
    if shutil.which("taskset") and args.sink:
        os.sched_setaffinity(0, {0})
    with sink_process(args.sink, args.port, args.receipts):
        result = asyncio.run(
            run(args.port, args.messages, args.window, args.sessions, args.receipts)
        )
    print(
        f"window={args.window} sessions={args.sessions} receipts={args.receipts} "
        f"messages={args.messages}: {result['rate']:,.0f} msg/s "
        f"(sends {result['send_rate']:,.0f}/s), p50 {result['p50_ms']:.2f} ms, "
        f"p99 {result['p99_ms']:.2f} ms, peak RSS {result['peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
