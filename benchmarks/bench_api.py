"""The HTTP API alone: ``POST /v1/messages`` straight into the ASGI app, on a real SQLite store.

No sockets, no uvicorn, no SMPP: what the endpoint (served past FastAPI's middleware and router
since the eleventh sitting), the request's validation and the group-committed enqueue cost per
request, ``--concurrency`` requests at a time. It prints wall and CPU time
per request (this process, aiosqlite's thread included).

    .venv/bin/python benchmarks/bench_api.py --requests 5000 --runs 3

The machine's speed drifts; for a change of a few per cent count instructions instead, which
repeat to a fraction of a per cent: run under ``valgrind --tool=callgrind`` at two sizes and
divide the difference of the two totals ("Collected") by the difference of the sizes:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/bench_api.py --requests 200 --runs 1
    (the same with --requests 1000)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from o2sms.service.http import ApiContext, create_app
from o2sms.service.metrics import Metrics
from o2sms.service.settings import Settings
from o2sms.store import open_store

API_KEY = "bench-key-0123456789abcdef"
WARM_UP = 50  #: requests before the clock starts: first statements compile and cache


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _scope(app: Any, body: bytes) -> dict[str, Any]:
    """An ASGI scope for one ``POST /v1/messages`` with a JSON body and the API key."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/messages",
        "raw_path": b"/v1/messages",
        "root_path": "",
        "query_string": b"",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {API_KEY}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "state": {},
        "app": app,
    }


async def post(app: Any, n: int, recipients: int = 1) -> int:
    """Send request ``n`` (to ``recipients`` numbers) through ``app``; the answer's status."""
    to: str | list[str] = (
        "+421903123456" if recipients == 1 else [f"+4219{i:08d}" for i in range(recipients)]
    )
    body = json.dumps({"to": to, "from": "O2 Demo", "text": f"Ahoj {n}"}).encode()
    delivered = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(app, body), receive, send)
    return status


async def run_once(requests: int, concurrency: int, recipients: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per request over ``requests`` requests on a fresh store."""
    with tempfile.TemporaryDirectory(prefix="o2sms-bench-api-") as workdir:
        url = f"sqlite:///{Path(workdir) / 'bench.db'}"
        store = await open_store(url)
        try:
            settings = Settings(
                store_url=url, api_keys=[SecretStr(API_KEY)], max_recipients=max(recipients, 1000)
            )
            app = create_app(
                ApiContext(settings=settings, store=store, metrics=Metrics(), api_keys=[API_KEY])
            )
            for n in range(WARM_UP):
                if await post(app, n, recipients) != 202:
                    raise RuntimeError("the warm-up request was not accepted")
            wall, cpu = time.perf_counter(), _cpu()
            for start in range(0, requests, concurrency):
                batch = range(start, min(start + concurrency, requests))
                statuses = await asyncio.gather(*(post(app, n, recipients) for n in batch))
                if set(statuses) != {202}:
                    raise RuntimeError(f"requests answered {sorted(set(statuses))}, not 202")
            return (
                (time.perf_counter() - wall) * 1e6 / requests,
                (_cpu() - cpu) * 1e6 / requests,
            )
        finally:
            await store.engine.dispose()


async def main_async(args: argparse.Namespace) -> None:
    """Run ``args.runs`` times; print each run and the medians."""
    runs = []
    for _ in range(args.runs):
        runs.append(await run_once(args.requests, args.concurrency, args.recipients))
        print(f"run: {runs[-1][0]:.0f} µs wall, {runs[-1][1]:.0f} µs CPU per request", flush=True)
    print(
        f"median of {len(runs)} runs: {statistics.median(w for w, _ in runs):.0f} µs wall, "
        f"{statistics.median(c for _, c in runs):.0f} µs CPU per request"
    )


def main() -> None:
    """Parse options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=20, help="requests at a time")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--recipients", type=int, default=1, help="recipients per request")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
