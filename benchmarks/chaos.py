"""Chaos run: SIGKILL ``o2sms serve`` processes while they work, then check nothing was lost.

It starts ``o2sms simulator`` in a process of its own (receipts after ``--receipt-delay``,
every answer after ``--latency``), then ``--instances`` gateway-mode services on one store
(SQLite file, or a fresh schema on the PostgreSQL server of ``O2SMS_TEST_PG_URL``), and
posts ``--messages`` messages (some of two parts, some requests to three recipients), each
request with an Idempotency-Key from a ledger and retried with the same key after a 503, a
timeout or a refused connection. Meanwhile it SIGKILLs a random instance ``--kills`` times
at random moments and starts it again (``--term`` makes a share of them SIGTERM, ``--pause``
a SIGSTOP for one to two leases then SIGCONT; ``--drop`` has the SMSC drop links too).
Leases are 5 s (``--lease``). Once the store is quiet it checks the promises of
docs/operations.md ("After a crash: at-least-once"):

* every request was accepted once: one stored message per recipient, the same ids on replay;
* every message is final (``delivered``: the simulator delivers every message);
* no uncounted duplicate: the submit_sm the SMSC received for each part, minus one, is at
  most the message's ``resends``;
* no receipt lost: every part has its receipt, and every SMSC id the simulator issued has
  a stored receipt;
* nothing stuck: no message left queued with a lease that has run out.

It prints one line per kill and the result; exit status 1 when an invariant fails (the
working folder, with every process's log, is kept then).

    .venv/bin/python benchmarks/chaos.py --store sqlite --instances 1 --messages 3000 --kills 30
    .venv/bin/python benchmarks/chaos.py --store postgresql --instances 2 --messages 3000 --kills 30
    .venv/bin/python benchmarks/chaos.py --store postgresql --instances 2 --term 0.2 --pause 0.3 \
        --drop 0.005 --latency 0.1 --receipt-delay 0.3 --rate 40 --restart 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from o2sms.store import create_engine

PG_URL = os.environ.get("O2SMS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
API_KEY = "chaos-key-0123456789abcdef"
ACCOUNT = ("chaos", "chaos-password-1")
FINAL = {"delivered", "undelivered", "expired", "rejected", "deleted", "unknown", "failed"}
PART = 153  # GSM 7-bit characters in one part of a concatenated SMS (8-bit UDH)


@dataclass
class Request:
    """One POST of the ledger: its key, recipients, text, and what the service answered."""

    key: str
    to: list[str]
    text: str
    ids: list[str] | None = None  #: message ids, in recipient order, once answered 202
    tries: int = 0


@dataclass
class Instance:
    """One ``o2sms serve`` slot: its current process and HTTP base URL."""

    number: int
    env: dict[str, str]
    workdir: Path
    process: asyncio.subprocess.Process | None = None
    base: str | None = None
    starts: int = 0
    restart: asyncio.Task[None] | None = None  #: the pending restart (or SIGCONT) after a kill
    paused: bool = False  #: SIGSTOPped
    logs: list[Path] = field(default_factory=list)


def _token(number: int, part: int) -> str:
    return f"chaos-{number:06d}-p{part}"


def _text(number: int, parts: int) -> str:
    """A text whose every SMS part begins with its own token (GSM 7-bit, 153 a part)."""
    if parts == 1:
        return f"{_token(number, 1)} short"
    chunks = [(_token(number, p) + " ").ljust(PART, "x") for p in range(1, parts + 1)]
    return "".join(chunks)[: PART * parts - 10]


async def _wait_line(path: Path, pattern: str, process: Any, timeout: float = 60.0) -> str:
    """The first match of ``pattern`` in the file a process writes its stdout to."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            found = regex.search(path.read_text(errors="replace"))
            if found:
                return found.group(1)
        if process.returncode is not None:
            raise RuntimeError(f"{path.name}: the process exited ({process.returncode})")
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{path.name}: no line matching {pattern!r}")


async def _start_simulator(workdir: Path, args: argparse.Namespace) -> tuple[Any, int, str]:
    config = {
        "host": "127.0.0.1",
        "port": 0,
        "http_port": 0,
        "receipt_delay": args.receipt_delay,
        "store_size": args.messages * 20 + 10_000,
        "accounts": [{"system_id": ACCOUNT[0], "password": ACCOUNT[1], "session_limit": 4}],
        "faults": {
            **({"latency": args.latency} if args.latency else {}),
            **({"drop_probability": args.drop} if args.drop else {}),
        },
    }
    path = workdir / "simulator.json"
    path.write_text(json.dumps(config))
    out = workdir / "simulator.out"
    with out.open("wb") as stdout, (workdir / "simulator.err").open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "o2sms", "simulator", "--config", str(path),
            stdout=stdout, stderr=stderr,
        )  # fmt: skip
    smpp = int(await _wait_line(out, r"SMPP\s+smpp://[\d.]+:(\d+)", process))
    http = await _wait_line(out, r"HTTP\s+(http://[\d.]+:\d+)/", process)
    return process, smpp, http


async def _start(instance: Instance) -> None:
    instance.starts += 1
    stem = f"serve-{instance.number}-{instance.starts}"
    out = instance.workdir / f"{stem}.out"
    err = instance.workdir / f"{stem}.err"
    instance.logs.append(err)
    with out.open("wb") as stdout, err.open("wb") as stderr:
        instance.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "o2sms", "serve",
            cwd=instance.workdir, env=instance.env, stdout=stdout, stderr=stderr,
        )  # fmt: skip
    instance.base = await _wait_line(out, r"listening on (http://[\d.]+:\d+)", instance.process)


async def _kill(instance: Instance, how: signal.Signals = signal.SIGKILL) -> None:
    process = instance.process
    instance.base = None
    if process is not None and process.returncode is None:
        process.send_signal(how)
        try:
            await asyncio.wait_for(process.wait(), 30.0)
        except TimeoutError:  # a graceful stop that hangs: the check will tell what it left
            process.send_signal(signal.SIGKILL)
            await process.wait()


async def _post(
    http: httpx.AsyncClient,
    instances: list[Instance],
    request: Request,
    stats: collections.Counter[str],
) -> None:
    """POST until answered 202, with the same Idempotency-Key every time."""
    body = {"to": request.to, "text": request.text, "from": "Chaos"}
    while True:
        request.tries += 1
        live = [i.base for i in instances if i.base is not None]
        if not live:
            stats["no instance"] += 1
            await asyncio.sleep(0.2)
            continue
        try:
            answer = await http.post(
                f"{random.choice(live)}/v1/messages",
                json=body,
                headers={"Idempotency-Key": request.key},
            )
        except httpx.HTTPError as exc:
            stats[type(exc).__name__] += 1
            await asyncio.sleep(0.2)
            continue
        if answer.status_code == 202:
            ids = [m["id"] for m in answer.json()["messages"]]
            if answer.headers.get("Idempotent-Replayed") == "true":
                stats["replayed"] += 1
            if request.ids is not None and request.ids != ids:
                raise AssertionError(f"{request.key}: ids {request.ids} then {ids}")
            request.ids = ids
            return
        stats[f"HTTP {answer.status_code}"] += 1
        if answer.status_code not in (500, 502, 503, 504):
            raise AssertionError(f"{request.key}: {answer.status_code} {answer.text}")
        await asyncio.sleep(0.2)


async def _post_all(
    instances: list[Instance], ledger: list[Request], rate: float, stats: collections.Counter[str]
) -> None:
    queue: asyncio.Queue[Request] = asyncio.Queue()
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10.0
    ) as http:

        async def worker() -> None:
            while True:
                request = await queue.get()
                try:
                    await _post(http, instances, request, stats)
                except Exception as exc:  # the check reports the request as not accepted
                    stats[f"gave up: {exc}"[:200]] += 1
                finally:
                    queue.task_done()

        workers = [asyncio.create_task(worker()) for _ in range(16)]
        started = time.monotonic()
        for n, request in enumerate(ledger):
            await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
            queue.put_nowait(request)
        await queue.join()
        for task in workers:
            task.cancel()


async def _chaos(
    instances: list[Instance], args: argparse.Namespace, period: float, log: list[str]
) -> None:
    """Stop a random instance ``args.kills`` times, one in each ``period``, and restart it."""
    started = time.monotonic()
    for n in range(args.kills):
        await asyncio.sleep(max(0.0, started + (n + random.random()) * period - time.monotonic()))
        victim = random.choice(instances)
        draw = random.random()
        how = signal.SIGTERM if draw < args.term else signal.SIGKILL
        if args.term <= draw < args.term + args.pause:
            how = signal.SIGSTOP
        at = time.monotonic() - started
        if victim.restart is not None:  # still starting (maybe migrating), or paused
            victim.restart.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await victim.restart
            if victim.paused:
                how = signal.SIGKILL  # a stopped process takes no SIGTERM, nor a second STOP
        if how is signal.SIGSTOP and victim.process is not None:
            # hung past its lease: the others take its messages over while it still has them
            victim.process.send_signal(signal.SIGSTOP)
            victim.paused = True
            delay = random.uniform(args.lease, 2 * args.lease)
            victim.restart = asyncio.create_task(_resume(victim, delay))
        else:
            await _kill(victim, how)
            victim.paused = False
            delay = random.uniform(0.0, args.restart)
            victim.restart = asyncio.create_task(_restart(victim, delay))
        log.append(f"kill {n + 1}: {how.name} instance {victim.number} at {at:.1f}s")
        print(log[-1], flush=True)
    for instance in instances:
        if instance.restart is not None:
            await instance.restart


async def _resume(instance: Instance, delay: float) -> None:
    await asyncio.sleep(delay)
    if instance.process is not None and instance.process.returncode is None:
        instance.process.send_signal(signal.SIGCONT)
    instance.paused = False


async def _restart(instance: Instance, delay: float) -> None:
    await asyncio.sleep(delay)
    await _start(instance)


async def _rows(engine: Any) -> tuple[list[Any], list[Any], set[str]]:
    async with engine.connect() as connection:
        messages = (
            await connection.exec_driver_sql(
                "SELECT id, recipient, text, status, resends, attempts, parts, lease_owner,"
                " lease_until, idempotency_key FROM messages"
            )
        ).all()
        parts = (
            await connection.exec_driver_sql(
                "SELECT message_id, part_no, smsc_id, status, receipt_at FROM message_parts"
            )
        ).all()
        receipts = {
            r[0]
            for r in (await connection.exec_driver_sql("SELECT receipt_id FROM receipts")).all()
        }
    return messages, parts, receipts


async def _quiet(engine: Any, total: int, timeout: float) -> list[Any]:
    """Wait until every message is final, or nothing changed for ``timeout`` seconds."""
    last, changed = None, time.monotonic()
    while True:
        async with engine.connect() as connection:
            counts = tuple(
                (
                    await connection.exec_driver_sql(
                        "SELECT status, count(*) FROM messages GROUP BY status ORDER BY status"
                    )
                ).all()
            )
        done = sum(c for s, c in counts if s in FINAL)
        if done >= total:
            return list(counts)
        if counts != last:
            last, changed = counts, time.monotonic()
        elif time.monotonic() - changed > timeout:
            return list(counts)
        await asyncio.sleep(1.0)


def _check(
    ledger: list[Request],
    messages: list[Any],
    parts: list[Any],
    receipts: set[str],
    smsc: list[dict[str, Any]],
    *,
    lease: float,
) -> list[str]:
    """Every invariant that does not hold, one line each (at most 20 per kind)."""
    problems: dict[str, list[str]] = collections.defaultdict(list)
    by_id = {row.id: row for row in messages}
    expected: dict[str, tuple[int, str]] = {}  # message id -> (request number, recipient)
    for number, request in enumerate(ledger):
        if request.ids is None or len(request.ids) != len(request.to):
            problems["not accepted"].append(request.key)
            continue
        for message_id, to in zip(request.ids, request.to, strict=True):
            expected[message_id] = (number, to)
            if message_id not in by_id:
                problems["accepted, not stored"].append(message_id)
    for row in messages:
        if row.id not in expected:
            problems["stored, never accepted (a duplicate request?)"].append(row.id)
        if row.status not in FINAL:
            stale = row.lease_until is not None and row.lease_until < datetime.now(UTC) - timedelta(
                seconds=lease
            )
            kind = "stuck: lease ran out, not claimed again" if stale else "not final"
            problems[kind].append(
                f"{row.id} {row.status} lease={row.lease_owner}@{row.lease_until}"
            )
        elif row.status != "delivered":
            problems["final but not delivered"].append(f"{row.id} {row.status}")
    parts_of: dict[str, list[Any]] = collections.defaultdict(list)
    for part in parts:
        parts_of[part.message_id].append(part)
    for row in messages:
        if row.status == "delivered":
            got = parts_of[row.id]
            if len(got) != row.parts or any(p.receipt_at is None for p in got):
                problems["delivered without every part's receipt"].append(row.id)
    # submit_sm per (message, part): the SMSC sees the text's token and the destination
    sent: collections.Counter[tuple[str, int]] = collections.Counter()
    by_token = {(n, "+" + to.lstrip("+")): mid for mid, (n, to) in expected.items()}
    for received in smsc:
        text: str = received["text"] or ""
        found = re.match(r"chaos-(\d{6})-p(\d+)", text)
        if found is None:
            problems["unknown text at the SMSC"].append(text[:40])
            continue
        destination = "+" + received["destination_addr"].lstrip("+")
        matched = by_token.get((int(found.group(1)), destination))
        if matched is None:
            problems["SMSC got a message no request made"].append(found.group(0))
            continue
        sent[(matched, int(found.group(2)))] += 1
        if received["message_id"] not in receipts:
            problems["receipt lost (SMSC id never stored)"].append(
                f"{matched} part {found.group(2)} smsc_id={received['message_id']}"
            )
    copies: dict[str, int] = collections.defaultdict(int)
    for (message_id, _), count in sent.items():
        copies[message_id] = max(copies[message_id], count)
    for message_id, count in copies.items():
        row = by_id.get(message_id)
        if row is not None and count - 1 > row.resends:
            problems["uncounted duplicate"].append(
                f"{message_id}: {count} submit_sm, resends={row.resends}, attempts={row.attempts}"
            )
    for row in messages:
        if row.status == "delivered" and copies.get(row.id, 0) == 0:
            problems["delivered, never at the SMSC"].append(row.id)
    lines = []
    for kind, items in problems.items():
        lines.append(f"{kind}: {len(items)}")
        lines += [f"    {item}" for item in items[:20]]
    return lines


def _ledger(messages: int, seed: int) -> list[Request]:
    rng = random.Random(seed)
    ledger: list[Request] = []
    count = 0
    while count < messages:
        number = len(ledger)
        recipients = 3 if rng.random() < 0.1 else 1
        parts = 2 if rng.random() < 0.2 else 1
        to = [f"+421903{rng.randrange(10**6):06d}" for _ in range(recipients)]
        if len(set(to)) != len(to):
            continue
        ledger.append(Request(f"chaos-{seed}-{number}", to, _text(number, parts)))
        count += recipients
    return ledger


async def run(args: argparse.Namespace) -> int:
    """One chaos run; 0 when every invariant holds."""
    workdir = Path(tempfile.mkdtemp(prefix="o2sms-chaos-"))
    main_task = asyncio.current_task()
    if main_task is not None:  # SIGTERM (and Ctrl+C) stop the run through its clean-up
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    schema = None
    processes: list[Instance] = []
    simulator = None
    engine = None
    try:
        simulator, smpp_port, sim_http = await _start_simulator(workdir, args)
        if args.store == "postgresql":
            schema = f"o2sms_chaos_{uuid.uuid4().hex[:10]}"
            admin = create_engine(PG_URL, pool_size=1)
            async with admin.begin() as connection:
                await connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            await admin.dispose()
            url = PG_URL
        else:
            url = f"sqlite:///{workdir / 'chaos.db'}"
        for number in range(args.instances):
            env = {k: v for k, v in os.environ.items() if not k.startswith("O2SMS_")} | {
                "O2SMS_API_KEYS": API_KEY,
                "O2SMS_HTTP_PORT": "0",
                "O2SMS_LOG_LEVEL": "info",
                "O2SMS_STORE_URL": url,
                "O2SMS_INSTANCE": f"chaos-{number}",
                "O2SMS_GATEWAY__HOSTS": f"127.0.0.1:{smpp_port}",
                "O2SMS_GATEWAY__SYSTEM_ID": ACCOUNT[0],
                "O2SMS_GATEWAY__PASSWORD": ACCOUNT[1],
                "O2SMS_GATEWAY__SESSIONS": str(4 // args.instances),
                "O2SMS_WORKER__LEASE_SECONDS": str(args.lease),
                "O2SMS_WORKER__POLL_INTERVAL": "0.2",
                "O2SMS_WORKER__RETRY_BASE": "0.5",
                "O2SMS_WORKER__RETRY_CAP": "2",
                "O2SMS_WORKER__MAX_ATTEMPTS": "1000",
                **({"O2SMS_STORE_SCHEMA": schema} if schema else {}),
            }
            processes.append(Instance(number, env, workdir))
            await _start(processes[-1])  # one at a time: the first one migrates the store
        ledger = _ledger(args.messages, args.seed)
        random.seed(args.seed)
        stats: collections.Counter[str] = collections.Counter()
        log: list[str] = []
        post_seconds = len(ledger) / args.rate
        started = time.monotonic()
        await asyncio.gather(
            _post_all(processes, ledger, args.rate, stats),
            _chaos(processes, args, post_seconds / max(1, args.kills), log),
        )
        posted = time.monotonic() - started
        engine = create_engine(url, schema=schema)
        counts = await _quiet(engine, sum(len(r.to) for r in ledger), args.quiet)
        waited = time.monotonic() - started
        async with httpx.AsyncClient(timeout=60) as http:
            smsc = (await http.get(f"{sim_http}/messages")).json()
        smsc_messages = smsc["messages"] if isinstance(smsc, dict) else smsc
        messages, parts, receipts = await _rows(engine)
        problems = _check(ledger, messages, parts, receipts, smsc_messages, lease=args.lease)
        resends = sum(row.resends for row in messages)
        duplicates = len(smsc_messages) - len(parts)
        print(
            f"{args.store}, {args.instances} instance(s): {len(ledger)} requests, "
            f"{len(messages)} messages, {len(parts)} parts, {len(smsc_messages)} submit_sm "
            f"at the SMSC ({duplicates} more than parts), resends {resends}; "
            f"{len(log)} kills; posted in {posted:.0f} s, quiet after {waited:.0f} s; "
            f"statuses {dict(counts)}; client saw {dict(stats)}",
            flush=True,
        )
        if problems:
            print("FAILED:\n" + "\n".join(problems), flush=True)
            print(f"logs kept in {workdir}", flush=True)
            return 1
        print("OK: every invariant holds", flush=True)
        shutil.rmtree(workdir, ignore_errors=True)
        return 0
    finally:
        if engine is not None:
            await engine.dispose()
        for instance in processes:
            if instance.restart is not None:  # interrupted: no restart after the clean-up
                instance.restart.cancel()
                with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                    await instance.restart
            if instance.process is not None and instance.process.returncode is None:
                if instance.paused:
                    instance.process.send_signal(signal.SIGCONT)
                instance.process.terminate()
                await instance.process.wait()
        if simulator is not None and simulator.returncode is None:
            simulator.terminate()
            await simulator.wait()
        if schema is not None and not args.keep_schema:
            admin = create_engine(PG_URL, pool_size=1)
            async with admin.begin() as connection:
                await connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            await admin.dispose()


def main() -> None:
    """Parse options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--instances", type=int, choices=[1, 2], default=1)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    parser.add_argument("--lease", type=float, default=5.0, help="worker.lease_seconds")
    parser.add_argument("--receipt-delay", type=float, default=1.0)
    parser.add_argument("--latency", type=float, default=0.05, help="SMSC answer delay (s)")
    parser.add_argument("--restart", type=float, default=2.0, help="most seconds down")
    parser.add_argument("--drop", type=float, default=0.0, help="SMSC link drop per PDU")
    parser.add_argument("--pause", type=float, default=0.0, help="share of SIGSTOP pauses")
    parser.add_argument("--term", type=float, default=0.0, help="share of SIGTERM stops")
    parser.add_argument("--quiet", type=float, default=60.0, help="seconds without change")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-schema", action="store_true")
    args = parser.parse_args()
    try:
        sys.exit(asyncio.run(run(args)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit("interrupted")


if __name__ == "__main__":
    main()
