"""``o2sms bench``: throughput and latency of ``Client.send()`` against an SMSC.

Without ``--port`` it starts ``o2sms simulator`` in a child process (pinned to the second core
when ``taskset`` exists) and measures against that; ``benchmarks/bench_client.py`` runs the
same measurement against the neutral smpp-sink, for figures that compare with other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console

from o2sms.cli.send import quiet_client_logs
from o2sms.client import Client, ClientError, DeliveryReport
from o2sms.client.addresses import international_number

TEXT = "Your parcel 4711 arrives today between 14:00 and 16:00. Reply STOP to."  # 70 GSM chars


@dataclass(frozen=True, slots=True)
class SendFigures:
    """One benchmark run."""

    rate: float  #: messages per second, receipts included when asked for
    p50_ms: float  #: send() to submit_sm_resp
    p99_ms: float
    peak_rss_mb: float
    cpu_us: float = 0.0  #: this process's CPU time (user + system) per message, in µs


async def measure_send(
    host: str,
    port: int,
    *,
    system_id: str = "bench",
    password: str = "bench",
    messages: int = 20_000,
    window: int = 64,
    sessions: int = 1,
    receipts: bool = False,
) -> SendFigures:
    """Send ``messages`` 70-character SMS to distinct numbers through one Client and measure.

    Enough tasks call send() to keep every window full; with ``receipts`` the run ends when
    every delivery receipt has been handled.
    """
    international_number.cache_clear()  # every run validates its numbers afresh
    latencies: list[float] = []
    received = 0
    all_received = asyncio.Event()

    async def on_event(event: object) -> None:
        nonlocal received
        if isinstance(event, DeliveryReport):
            received += 1
            if received >= messages:
                all_received.set()

    numbers = [f"+4219{n % 10_000_000 + 10_000_000:08d}" for n in range(messages)]
    clock = time.perf_counter
    async with Client(
        host,
        port,
        system_id,
        password,
        sessions=sessions,
        window=window,
        sender="O2 Bench",
        handler=on_event,
    ) as sms:
        workers = max(1, window * sessions * 2)

        async def worker(batch: list[str]) -> None:
            for number in batch:
                start = clock()
                await sms.send(number, TEXT, report=receipts)
                latencies.append(clock() - start)

        started = clock()
        cpu_started = time.process_time()
        await asyncio.gather(*(worker(numbers[i::workers]) for i in range(workers)))
        if receipts:
            await asyncio.wait_for(all_received.wait(), timeout=120)
        finished = clock()
        cpu = time.process_time() - cpu_started
    latencies.sort()
    return SendFigures(
        rate=messages / (finished - started),
        p50_ms=statistics.median(latencies) * 1e3,
        p99_ms=latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1e3,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        cpu_us=cpu / messages * 1e6,
    )


def pin_to_core(core: int) -> None:
    """Run this process on one core, when the platform allows it."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {core})


@contextlib.contextmanager
def child_simulator(receipt_delay: float = 0.0) -> Iterator[int]:
    """``o2sms simulator`` in a child process on core 1 with account bench:bench; its port."""
    command = [
        sys.executable, "-m", "o2sms", "simulator", "--port", "0",
        "--account", "bench:bench", "--receipt-delay", str(receipt_delay),
    ]  # fmt: skip
    if shutil.which("taskset"):
        command = ["taskset", "-c", "1", *command]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, "NO_COLOR": "1"}
    )
    try:
        assert process.stdout is not None
        port = None
        for line in process.stdout:
            found = re.search(r"smpp://[^:]+:(\d+)", line)
            if found:
                port = int(found.group(1))
                break
        if port is None:
            raise RuntimeError("the simulator did not start")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


DEFAULT_HOST = "127.0.0.1"
"""Where the simulator bench starts listens, and the SMSC host without --host."""


def bench_command(
    host: Annotated[str, typer.Option(help="SMSC host (with --port).")] = DEFAULT_HOST,
    port: Annotated[
        int | None, typer.Option(help="SMSC port; default: start the simulator.")
    ] = None,
    system_id: Annotated[
        str, typer.Option(envvar="O2SMS_SYSTEM_ID", help="Account (with --port).")
    ] = "bench",
    password: Annotated[
        str, typer.Option(envvar="O2SMS_PASSWORD", help="Password (with --port).")
    ] = "bench",
    messages: Annotated[int, typer.Option(min=1, help="Messages per run.")] = 20_000,
    window: Annotated[int, typer.Option(min=1, help="Requests outstanding per session.")] = 64,
    sessions: Annotated[int, typer.Option(min=1, max=16, help="Sessions.")] = 1,
    receipts: Annotated[bool, typer.Option(help="Ask for a receipt per message.")] = False,
    runs: Annotated[int, typer.Option(min=1, help="Runs; the median is reported.")] = 3,
) -> None:
    """Measure send() throughput, latency to submit_sm_resp and peak memory."""
    if port is not None and not 1 <= port <= 65535:
        typer.echo(f"error: --port must be 1 to 65535, got {port}", err=True)
        raise typer.Exit(2)
    if not host.strip():
        typer.echo("error: --host is empty: give the SMSC's host name or address", err=True)
        raise typer.Exit(2)
    if port is None and host != DEFAULT_HOST:  # the simulator started here listens locally
        typer.echo(
            "error: --host needs --port (without both, bench starts its own simulator)", err=True
        )
        raise typer.Exit(2)
    if port is None:
        # Its own simulator, with its address and account: not O2SMS_SYSTEM_ID and
        # O2SMS_PASSWORD, which may be set for o2sms send (a real account).
        host, system_id, password = "127.0.0.1", "bench", "bench"
    console = Console()
    pin_to_core(0)
    with contextlib.ExitStack() as stack, quiet_client_logs():
        target = port if port is not None else stack.enter_context(child_simulator())
        try:
            figures = [
                asyncio.run(
                    measure_send(
                        host,
                        target,
                        system_id=system_id,
                        password=password,
                        messages=messages,
                        window=window,
                        sessions=sessions,
                        receipts=receipts,
                    )
                )
                for _ in range(runs)
            ]
        except (ClientError, OSError, ValueError) as exc:  # no SMSC there, a bad port...
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
    for number, f in enumerate(figures, start=1):
        console.print(
            f"run {number}: {f.rate:,.0f} msg/s, p50 {f.p50_ms:.2f} ms, p99 {f.p99_ms:.2f} ms",
            highlight=False,
        )
    median = sorted(figures, key=lambda f: f.rate)[len(figures) // 2]
    console.print(
        f"median of {runs}: {median.rate:,.0f} msg/s (window {window}, {sessions} session(s), "
        f"receipts {'on' if receipts else 'off'}), p50 {median.p50_ms:.2f} ms, "
        f"p99 {median.p99_ms:.2f} ms, peak RSS {max(f.peak_rss_mb for f in figures):.0f} MB",
        highlight=False,
    )
