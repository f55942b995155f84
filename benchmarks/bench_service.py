"""End-to-end benchmark of the connector: HTTP accept -> SMPP submit -> receipt -> delivered.

Starts ``o2sms serve`` in sandbox mode as a child process (its simulator in-process, as a
newcomer runs it), drives its HTTP API from this process with keep-alive connections, and
counts delivered messages straight from the store. Reports the accept rate, the end-to-end rate
(first request to last ``delivered``) and the service's peak RSS.

    .venv/bin/python benchmarks/bench_service.py --store sqlite --messages 20000 --recipients 1
    .venv/bin/python benchmarks/bench_service.py --store postgresql --messages 100000 --recipients 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from o2sms.store import create_engine

API_KEY = "bench-key-0123456789abcdef"
PG_URL = os.environ.get("O2SMS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class Result:
    """One run's figures."""

    messages: int
    requests: int
    accept_seconds: float
    end_to_end_seconds: float
    peak_rss_mib: float
    rss_samples: list[float]
    cpu_seconds: float = 0.0  #: the service's CPU time (all its threads) during the run
    #: the local PostgreSQL server's CPU time (all its processes) during the run, if measured
    store_cpu_seconds: float | None = None

    @property
    def cpu_per_message_us(self) -> float:
        """The service's CPU time per message: steadier than rates on a shared machine."""
        return self.cpu_seconds * 1e6 / self.messages

    @property
    def store_cpu_per_message_us(self) -> float | None:
        """The PostgreSQL server's CPU time per message: the other half of the machine's work."""
        if self.store_cpu_seconds is None:
            return None
        return self.store_cpu_seconds * 1e6 / self.messages

    @property
    def accept_rate(self) -> float:
        """Messages accepted per second."""
        return self.messages / self.accept_seconds

    @property
    def end_to_end_rate(self) -> float:
        """Messages delivered per second, from the first request to the last receipt."""
        return self.messages / self.end_to_end_seconds


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (all threads)."""
    try:
        fields = _stat_fields(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def _postgres_cpu_seconds() -> float | None:
    """CPU time of every ``postgres`` process on this machine, exited backends included.

    Live processes count their own user + system time; backends that exited count through the
    postmaster's (the ``postgres`` process whose parent is not one) reaped-children time. None
    when no PostgreSQL server runs here to read.
    """

    def comm(pid: str) -> str:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return ""

    ticks, found = 0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or comm(entry.name) != "postgres":
            continue
        try:
            fields = _stat_fields(entry.name)
        except OSError:
            continue
        found = True
        ticks += int(fields[11]) + int(fields[12])
        if comm(fields[1]) != "postgres":
            ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK") if found else None


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def _post_loop(host: str, port: int, bodies: list[bytes], latencies: list[float]) -> None:
    """One keep-alive HTTP/1.1 connection posting ``bodies`` one after another."""
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {API_KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n"
    )
    try:
        for body in bodies:
            started = time.perf_counter()
            writer.write(head.format(len(body)).encode() + body)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if b" 202 " not in status_line:
                raise RuntimeError(f"unexpected answer {status_line!r}")
            latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


async def _count_delivered(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        value = await connection.scalar(
            sa.text("SELECT count(*) FROM messages WHERE status = 'delivered'")
        )
    return int(value or 0)


async def _wait_delivered(engine: AsyncEngine, total: int, started: float) -> None:
    """Return once ``total`` messages are delivered, polling the store.

    Each poll counts the whole table (a sequential scan, dead row versions included): polled
    every 0.2 s, that was about a twentieth of the PostgreSQL server's CPU per message in a
    30,000 message run. Polls now wait a third of the time the rate so far says is left (0.2
    to 1 s), so the last ones still come every 0.2 s and the end is timed as closely as before.
    """
    while (delivered := await _count_delivered(engine)) < total:
        elapsed = time.perf_counter() - started
        rate = delivered / elapsed if delivered and elapsed > 0 else 0.0
        left = (total - delivered) / rate if rate else 0.0
        await asyncio.sleep(min(max(left / 3, 0.2), 1.0))


@dataclass
class Child:
    """``o2sms serve`` running as a child process, and where its store is."""

    process: asyncio.subprocess.Process
    address: tuple[str, int]
    url: str
    schema: str | None


@asynccontextmanager
async def serve_child(
    env: dict[str, str], store: str, workdir: Path, prefix: str
) -> AsyncIterator[Child]:
    """Run ``o2sms serve`` (settings in ``env``) on a fresh store: a SQLite file in ``workdir``
    or a new PostgreSQL schema named from ``prefix``, dropped afterwards."""
    env = dict(env)
    schema = None
    if store == "postgresql":
        schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
        await _pg_admin(f'CREATE SCHEMA "{schema}"')
        env |= {"O2SMS_STORE_URL": PG_URL, "O2SMS_STORE_SCHEMA": schema}
        url = PG_URL
    else:
        url = f"sqlite:///{workdir / 'bench.db'}"
        env["O2SMS_STORE_URL"] = url
    profile = (
        ["-m", "cProfile", "-o", os.environ["O2SMS_BENCH_PROFILE"]]
        if os.environ.get("O2SMS_BENCH_PROFILE")
        else []
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *profile,
        "-m",
        "o2sms",
        "serve",
        cwd=workdir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    address = None
    while address is None:
        line = (await process.stdout.readline()).decode()
        if not line:
            raise RuntimeError("o2sms serve exited before listening")
        found = re.search(r"listening on http://([\d.]+):(\d+)", line)
        if found:
            address = (found.group(1), int(found.group(2)))

    async def drain() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            sys.stderr.write("serve: " + line.decode())

    drainer = asyncio.create_task(drain())
    try:
        yield Child(process, address, url, schema)
    finally:
        process.terminate()
        await process.wait()
        drainer.cancel()
        if schema is not None:
            await _pg_admin(f'DROP SCHEMA "{schema}" CASCADE')


async def _pg_admin(sql: str) -> None:
    admin = create_engine(PG_URL, pool_size=1)
    try:
        async with admin.begin() as connection:
            await connection.exec_driver_sql(sql)
    finally:
        await admin.dispose()


async def run_once(
    store: str,
    messages: int,
    recipients: int,
    connections: int,
    workdir: Path,
    *,
    trace: bool = False,
) -> Result:
    """Start a service, push ``messages`` through it, stop it; return the figures.

    ``trace`` prints the service's RSS and the delivered count every five seconds.
    """
    env = {
        **os.environ,
        "O2SMS_API_KEYS": API_KEY,
        "O2SMS_HTTP_PORT": "0",
        "O2SMS_SANDBOX__RECEIPT_DELAY": "0",
        "O2SMS_LOG_LEVEL": "warning",
        "O2SMS_MAX_RECIPIENTS": str(max(recipients, 1000)),
    }
    async with serve_child(env, store, workdir, "o2sms_bench") as child:
        return await _drive(child, messages, recipients, connections, trace=trace)


async def _drive(
    child: Child, messages: int, recipients: int, connections: int, *, trace: bool = False
) -> Result:
    """Post ``messages`` to the running ``child`` and wait until all are delivered."""
    process, address, url, schema = child.process, child.address, child.url, child.schema
    engine = create_engine(url, schema=schema)
    numbers = [f"+4219{n:08d}" for n in range(recipients)]
    requests = messages // recipients
    bodies = [
        json.dumps(
            {
                "to": numbers[0] if recipients == 1 else numbers,
                "text": f"bench {i}",
                "from": "Bench",
            }
        ).encode()
        for i in range(requests)
    ]
    latencies: list[float] = []
    samples: list[float] = []
    done = asyncio.Event()

    async def sample() -> None:
        tick = 0
        while not done.is_set():
            samples.append(_rss_mib(process.pid))
            if trace and tick % 10 == 0:
                delivered = await _count_delivered(engine)
                print(
                    f"  {tick / 2:6.0f} s  RSS {samples[-1]:6.1f} MiB  delivered {delivered:,}",
                    flush=True,
                )
            tick += 1
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    cpu_before = _cpu_seconds(process.pid)
    store_cpu_before = _postgres_cpu_seconds() if schema is not None else None
    started = time.perf_counter()
    share = [bodies[i::connections] for i in range(connections)]
    await asyncio.gather(*(_post_loop(*address, part, latencies) for part in share if part))
    accepted = time.perf_counter() - started
    await _wait_delivered(engine, requests * recipients, started)
    finished = time.perf_counter() - started
    cpu = _cpu_seconds(process.pid) - cpu_before
    store_cpu_after = _postgres_cpu_seconds() if store_cpu_before is not None else None
    store_cpu = (
        store_cpu_after - store_cpu_before
        if store_cpu_before is not None and store_cpu_after is not None
        else None
    )
    done.set()
    await sampler
    await engine.dispose()
    return Result(
        requests * recipients,
        requests,
        accepted,
        finished,
        max(samples or [0.0]),
        samples,
        cpu,
        store_cpu,
    )


def main() -> None:
    """Parse options, run, print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--recipients", type=int, default=1, help="recipients per request")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--trace", action="store_true", help="RSS and progress every 5 s")
    args = parser.parse_args()
    # The interpreter's build matters: see docs/operations.md, "Which Python".
    print(
        f"# {platform.python_implementation()} {platform.python_version()} "
        f"({os.path.realpath(sys.executable)}), {platform.machine()}",
        flush=True,
    )
    results = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="o2sms-bench-") as workdir:
            result = asyncio.run(
                run_once(
                    args.store,
                    args.messages,
                    args.recipients,
                    args.connections,
                    Path(workdir),
                    trace=args.trace,
                )
            )
        results.append(result)
        print(
            f"run {run + 1}: {result.messages} messages in {result.requests} requests; "
            f"accepted {result.accept_rate:,.0f} msg/s; end to end {result.end_to_end_rate:,.0f} "
            f"msg/s; service CPU {result.cpu_per_message_us:,.0f} µs/msg; "
            + (
                f"PostgreSQL CPU {result.store_cpu_per_message_us:,.0f} µs/msg; "
                if result.store_cpu_per_message_us is not None
                else ""
            )
            + f"peak RSS {result.peak_rss_mib:.0f} MiB "
            f"(first/last sample {result.rss_samples[0]:.0f}/{result.rss_samples[-1]:.0f} MiB)",
            flush=True,
        )
    if len(results) > 1:
        print(
            f"median: accepted {statistics.median(r.accept_rate for r in results):,.0f} msg/s; "
            f"end to end {statistics.median(r.end_to_end_rate for r in results):,.0f} msg/s; "
            f"service CPU {statistics.median(r.cpu_per_message_us for r in results):,.0f} µs/msg"
            + (
                f"; PostgreSQL CPU {statistics.median(store):,.0f} µs/msg"
                if (
                    store := [
                        r.store_cpu_per_message_us
                        for r in results
                        if r.store_cpu_per_message_us is not None
                    ]
                )
                else ""
            )
        )


if __name__ == "__main__":
    main()
