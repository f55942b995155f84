"""Several ``o2sms serve`` processes on one store, against a simulator in a process of its own.

Answers "would more processes help on this machine?": it starts ``o2sms simulator`` (one
account, receipts at once), then ``--instances`` gateway-mode services sharing one store, the
account's four sessions split between them, posts 100-recipient requests spread over their
HTTP ports and counts ``delivered`` rows. It prints the end-to-end rate and the CPU per message
of the services (all of them) and of the simulator, so the figures compare with
``bench_service.py`` (one process, simulator in it).

    .venv/bin/python benchmarks/bench_instances.py --instances 1 --store sqlite --messages 50000
    .venv/bin/python benchmarks/bench_instances.py --instances 2 --store postgresql --messages 50000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

from o2sms.store import create_engine

sys.path.insert(0, str(Path(__file__).parents[1]))  # run as a script from anywhere
from benchmarks.bench_service import (
    API_KEY,
    PG_URL,
    _count_delivered,
    _cpu_seconds,
    _pg_admin,
    _post_loop,
)

ACCOUNT = ("bench", "bench-password-1")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _wait_listening(port: int, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return


async def run_once(instances: int, store: str, messages: int, connections: int) -> str:
    """One run; the line of figures."""
    with tempfile.TemporaryDirectory(prefix="o2sms-instances-") as workdir:
        return await _run_in(Path(workdir), instances, store, messages, connections)


async def _run_in(
    workdir: Path, instances: int, store: str, messages: int, connections: int
) -> str:
    smpp_port = _free_port()
    simulator = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "o2sms",
        "simulator",
        "--host",
        "127.0.0.1",
        "--port",
        str(smpp_port),
        "--account",
        ":".join(ACCOUNT),
        "--receipt-delay",
        "0",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    schema = None
    if store == "postgresql":
        schema = f"o2sms_inst_{uuid.uuid4().hex[:10]}"
        await _pg_admin(f'CREATE SCHEMA "{schema}"')
        url = PG_URL
    else:
        url = f"sqlite:///{workdir / 'bench.db'}"
    services: list[asyncio.subprocess.Process] = []
    ports = []
    try:
        await _wait_listening(smpp_port)
        for number in range(instances):
            port = _free_port()
            env = {
                **os.environ,
                "O2SMS_API_KEYS": API_KEY,
                "O2SMS_HTTP_PORT": str(port),
                "O2SMS_LOG_LEVEL": "warning",
                "O2SMS_MAX_RECIPIENTS": "1000",
                "O2SMS_GATEWAY__HOSTS": f"127.0.0.1:{smpp_port}",
                "O2SMS_GATEWAY__SYSTEM_ID": ACCOUNT[0],
                "O2SMS_GATEWAY__PASSWORD": ACCOUNT[1],
                # the account's four sessions, shared out (the first instances take the rest)
                "O2SMS_GATEWAY__SESSIONS": str(4 // instances + (number < 4 % instances)),
                "O2SMS_STORE_URL": url,
                "O2SMS_INSTANCE": f"bench-{number}",
                **({"O2SMS_STORE_SCHEMA": schema} if schema else {}),
            }
            services.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "o2sms",
                    "serve",
                    cwd=workdir,
                    env=env,
                    stdout=asyncio.subprocess.DEVNULL,
                )
            )
            await _wait_listening(port)  # one at a time: the first one migrates the store
            ports.append(port)
        await asyncio.sleep(2.0)  # sessions bound
        engine = create_engine(url, schema=schema)
        numbers = [f"+4219{n:08d}" for n in range(100)]
        bodies = [
            json.dumps({"to": numbers, "text": f"bench {i}", "from": "Bench"}).encode()
            for i in range(messages // 100)
        ]
        latencies: list[float] = []
        cpu_before = sum(_cpu_seconds(p.pid) for p in services)
        simulator_before = _cpu_seconds(simulator.pid)
        started = time.perf_counter()
        await asyncio.gather(
            *(
                _post_loop("127.0.0.1", ports[k % instances], bodies[k::connections], latencies)
                for k in range(connections)
            )
        )
        accepted = time.perf_counter() - started
        total = len(bodies) * 100
        while await _count_delivered(engine) < total:
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - started
        cpu = sum(_cpu_seconds(p.pid) for p in services) - cpu_before
        simulator_cpu = _cpu_seconds(simulator.pid) - simulator_before
        await engine.dispose()
        return (
            f"{instances} instance(s), {store}: accepted {total / accepted:,.0f} msg/s; "
            f"end to end {total / elapsed:,.0f} msg/s; services CPU {cpu * 1e6 / total:,.0f} "
            f"µs/msg; simulator CPU {simulator_cpu * 1e6 / total:,.0f} µs/msg"
        )
    finally:
        for process in (*services, simulator):
            if process.returncode is None:
                process.terminate()
                await process.wait()
        if schema is not None:
            await _pg_admin(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    """Parse options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, choices=range(1, 5), default=2)
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for run in range(args.runs):
        line = asyncio.run(run_once(args.instances, args.store, args.messages, args.connections))
        print(f"run {run + 1}: {line}", flush=True)


if __name__ == "__main__":
    main()
