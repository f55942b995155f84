"""Throughput and latency of ``Client.send()`` against a neutral SMSC (smpp-sink).

Build the sink (see ../shared/tools/smpp-sink/README.md), then let this script start it pinned
to core 1 (it pins itself to core 0):

    .venv/bin/python benchmarks/bench_client.py --sink /path/to/smpp-sink --matrix

or point it at a sink already running: ``--port 2775 --window 64 [--receipts]``. The
measurement itself is ``o2sms.cli.bench.measure_send``, also behind ``o2sms bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from o2sms.cli.bench import SendFigures, measure_send, pin_to_core

T = TypeVar("T")


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


async def raw_baseline(port: int, messages: int, window: int) -> tuple[float, float]:
    """No library: pre-packed submit_sm over one asyncio protocol; (msg/s, p50 ms of window 1).

    The floor to compare the client with, measured in the same session against the same sink.
    """
    bind = bytes.fromhex("0000001b 00000009 00000000 00000001 626e00 626e00 00 34 00 00 00")
    body = b"\0\x05\x00O2 Bench\0\x01\x01421910000000\0\0\0\0\0\0\0\0\0\0" + bytes([70]) + b"x" * 70
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(bind)
    await reader.readexactly(int.from_bytes(await reader.readexactly(4), "big") - 4)

    def submit(seq: int) -> bytes:
        return (
            (16 + len(body)).to_bytes(4, "big")
            + b"\0\0\0\x04\0\0\0\0"
            + seq.to_bytes(4, "big")
            + body
        )

    async def responses(count: int) -> None:
        for _ in range(count):
            size = int.from_bytes(await reader.readexactly(4), "big")
            await reader.readexactly(size - 4)

    start = loop.time()
    sent = 0
    while sent < messages:
        batch = min(window, messages - sent)
        writer.write(b"".join(submit(sent + i + 2) for i in range(batch)))
        await responses(batch)
        sent += batch
    rate = messages / (loop.time() - start)
    latencies = []
    for seq in range(2000):
        t0 = loop.time()
        writer.write(submit(seq + 100_000))
        await responses(1)
        latencies.append(loop.time() - t0)
    writer.close()
    latencies.sort()
    return rate, latencies[len(latencies) // 2] * 1e3


def run(main: Coroutine[Any, Any, T], loop: str) -> T:
    """Run ``main`` on asyncio's default event loop or on uvloop (what ``o2sms serve`` uses)."""
    if loop == "uvloop":
        import uvloop  # noqa: PLC0415 - only when asked for

        result: T = uvloop.run(main)
        return result
    return asyncio.run(main)


def one(
    port: int, messages: int, window: int, sessions: int, receipts: bool, *, loop: str = "asyncio"
) -> SendFigures:
    """One run against the sink."""
    return run(
        measure_send(
            "127.0.0.1",
            port,
            messages=messages,
            window=window,
            sessions=sessions,
            receipts=receipts,
        ),
        loop,
    )


def main() -> None:
    """One configuration, or with --matrix every window 1/10/64 x 1/4 sessions x receipts."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=2775)
    parser.add_argument("--sink", help="path of smpp-sink to start (pinned to core 1)")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--receipts", action="store_true")
    parser.add_argument("--matrix", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="runs per point; the median is shown")
    parser.add_argument("--baseline", action="store_true", help="also the no-library floor")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="also this process's CPU time per message (min and median of the runs): steadier "
        "than msg/s on a busy machine",
    )
    args = parser.parse_args()
    if args.sink:
        pin_to_core(0)
    points = (
        [(r, s, w) for r in (False, True) for s in (1, 4) for w in (1, 10, 64)]
        if args.matrix
        else [(args.receipts, args.sessions, args.window)]
    )
    if args.baseline:
        with sink_process(args.sink, args.port, False):
            rates, p50s = zip(
                *(
                    run(raw_baseline(args.port, args.messages, 64), args.loop)
                    for _ in range(args.runs)
                ),
                strict=True,
            )
        print(
            f"raw {args.loop}, pre-packed PDUs, window 64: {sorted(rates)[len(rates) // 2]:,.0f} msg/s;"
            f" window 1 round trip p50 {sorted(p50s)[len(p50s) // 2]:.3f} ms"
        )
    cpu_header, cpu_rule = (" CPU µs/msg (min / median) |", "---|") if args.cpu else ("", "")
    print(
        "| window | sessions | receipts | msg/s (median) | p50 ms | p99 ms | peak RSS MB |"
        + cpu_header
    )
    print("|---|---|---|---|---|---|---|" + cpu_rule)
    for receipts in sorted({p[0] for p in points}):
        with sink_process(args.sink, args.port + receipts, receipts):
            for _, sessions, window in [p for p in points if p[0] == receipts]:
                runs = [
                    one(
                        args.port + receipts,
                        args.messages,
                        window,
                        sessions,
                        receipts,
                        loop=args.loop,
                    )
                    for _ in range(args.runs)
                ]
                mid = sorted(runs, key=lambda f: f.rate)[len(runs) // 2]
                cpu = sorted(f.cpu_us for f in runs)
                cpu_cell = f" {cpu[0]:.1f} / {cpu[len(cpu) // 2]:.1f} |" if args.cpu else ""
                print(
                    f"| {window} | {sessions} | {'yes' if receipts else 'no'} | {mid.rate:,.0f} | "
                    f"{mid.p50_ms:.2f} | {mid.p99_ms:.2f} | {max(f.peak_rss_mb for f in runs):.0f} |"
                    + cpu_cell,
                    flush=True,
                )


if __name__ == "__main__":
    main()
