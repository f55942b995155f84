"""Several connectors on one store, and connectors that stop or die with work in hand.

The SMSC here is a Simulator the test runs itself (the connectors are in gateway mode), so it
outlives the connectors and counts every submit_sm it was sent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from o2sms.simulator import Account, Simulator
from o2sms.store import MessageStatus, NewMessage, open_store
from tests.pg import PG_URL, fresh_schema
from tests.service.conftest import API_KEY, open_service, settings_for

pytestmark = pytest.mark.asyncio

_DRAINS: set[asyncio.Task[None]] = set()  #: readers of the child processes' output

ACCOUNT = Account("acct", "a-password-longer-than-8")


@pytest_asyncio.fixture
async def smsc() -> AsyncIterator[Simulator]:
    async with Simulator(accounts=(ACCOUNT,), receipt_delay=0.05) as simulator:
        yield simulator


def gateway(smsc: Simulator, sessions: int) -> dict[str, Any]:
    return {
        "hosts": [f"127.0.0.1:{smsc.port}"],
        "system_id": ACCOUNT.system_id,
        "password": ACCOUNT.password,
        "sessions": sessions,
    }


async def wait_all_final(store_options: dict[str, Any], count: int, timeout: float) -> Counter[str]:
    """Poll the shared store until ``count`` messages are final; their statuses."""
    store = await open_store(
        store_options["store_url"], schema=store_options.get("store_schema"), run_migrations=False
    )
    try:
        async with asyncio.timeout(timeout):
            while True:
                statuses: Counter[str] = Counter()
                cursor = None
                while True:
                    page = await store.list_messages(limit=1000, cursor=cursor)
                    statuses.update(m.status.value for m in page.items)
                    cursor = page.next_cursor
                    if cursor is None:
                        break
                final = sum(n for s, n in statuses.items() if MessageStatus(s).is_final)
                if final == count and sum(statuses.values()) == count:
                    return statuses
                await asyncio.sleep(0.1)
    finally:
        await store.close()


@asynccontextmanager
async def shared_store(backend: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """Store options several instances share: one SQLite file, or one PostgreSQL schema."""
    if backend == "sqlite":
        yield {"store_url": f"sqlite:///{tmp_path / 'shared.db'}"}
        return
    async with fresh_schema("o2sms_pair") as schema:
        yield {"store_url": PG_URL, "store_schema": schema}


# SQLite too: operations.md says several processes on one host may share its file.
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_two_instances_share_one_queue(smsc: Simulator, tmp_path: Path, backend: str) -> None:
    async with shared_store(backend, tmp_path) as shared:
        worker = {"poll_interval": 0.02, "batch": 10, "concurrency": 20}
        first = settings_for(
            tmp_path / "a",
            **shared,
            gateway=gateway(smsc, 2),
            worker=worker,
            instance="a",
            sender="O2 Test",
        )
        second = settings_for(
            tmp_path / "b",
            **shared,
            gateway=gateway(smsc, 2),
            worker=worker,
            instance="b",
            sender="O2 Test",
        )
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        async with open_service(first) as a, open_service(second) as b:
            numbers = [f"+4219031{n:05d}" for n in range(100)]
            for round_ in range(3):
                response = await a.http.post(
                    "/v1/messages", json={"to": numbers, "text": f"round {round_}"}
                )
                assert response.status_code == 202
            statuses = await wait_all_final(shared, 300, timeout=60)
            assert statuses == {"delivered": 300}
            submitted_by = [
                instance.running.connector.metrics.registry.get_sample_value(
                    "o2sms_messages_submitted_total"
                )
                for instance in (a, b)
            ]
        sent = Counter((m.destination_addr, m.text) for m in smsc.messages())
        assert len(sent) == 300
        assert max(sent.values()) == 1, "a message was sent twice in normal operation"
        assert all(n is not None and n > 0 for n in submitted_by), submitted_by
        assert sum(n or 0 for n in submitted_by) == 300


async def _start_serve(env: dict[str, str], cwd: Path) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "o2sms",
        "serve",
        cwd=cwd,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(30):
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise AssertionError("o2sms serve exited:\n" + "".join(seen))
            seen.append(line)
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                break

    async def drain() -> None:
        assert process.stdout is not None
        while await process.stdout.readline():
            pass

    _DRAINS.add(asyncio.get_running_loop().create_task(drain()))
    return process, found.group(1)


def _submitted(metrics: str) -> float:
    found = re.search(r"^o2sms_messages_submitted_total (\S+)$", metrics, re.MULTILINE)
    assert found is not None, metrics
    return float(found.group(1))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_two_serve_processes_share_one_queue(
    smsc: Simulator, tmp_path: Path, backend: str
) -> None:
    # The same as above with two real `o2sms serve` processes, as they run in production.
    async with shared_store(backend, tmp_path) as shared:
        store_env = {"O2SMS_STORE_URL": shared["store_url"]}
        if "store_schema" in shared:
            store_env["O2SMS_STORE_SCHEMA"] = shared["store_schema"]
        env = store_env | {
            "O2SMS_API_KEYS": API_KEY,
            "O2SMS_HTTP_PORT": "0",
            "O2SMS_GATEWAY__HOSTS": f"127.0.0.1:{smsc.port}",
            "O2SMS_GATEWAY__SYSTEM_ID": ACCOUNT.system_id,
            "O2SMS_GATEWAY__PASSWORD": ACCOUNT.password,
            "O2SMS_GATEWAY__SESSIONS": "2",  # each its share of the account's 4
            "O2SMS_WORKER__POLL_INTERVAL": "0.02",
            "O2SMS_WORKER__BATCH": "10",
            "O2SMS_WORKER__CONCURRENCY": "20",
            "O2SMS_LOG_LEVEL": "warning",
            "O2SMS_SENDER": "O2 Test",
        }
        processes = []
        try:
            for name in ("a", "b"):
                (tmp_path / name).mkdir()
                processes.append(
                    await _start_serve(env | {"O2SMS_INSTANCE": name}, tmp_path / name)
                )
            numbers = [f"+4219033{n:05d}" for n in range(100)]
            submitted = []
            for round_ in range(4):
                _, url = processes[round_ % 2]  # both take requests
                async with httpx.AsyncClient(
                    base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}
                ) as http:
                    response = await http.post(
                        "/v1/messages", json={"to": numbers, "text": f"round {round_}"}
                    )
                    assert response.status_code == 202
            statuses = await wait_all_final(shared, 400, timeout=60)
            for _, url in processes:
                async with httpx.AsyncClient(
                    base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}
                ) as http:
                    submitted.append(_submitted((await http.get("/metrics")).text))
        finally:
            for process, _ in processes:
                process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(20):
                    for process, _ in processes:
                        await process.wait()
            finally:
                for process, _ in processes:  # never leave one running
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
        assert statuses == {"delivered": 400}
        assert [process.returncode for process, _ in processes] == [0, 0]
        sent = Counter((m.destination_addr, m.text) for m in smsc.messages())
        assert len(sent) == 400
        assert max(sent.values()) == 1, "a message was sent twice in normal operation"
        assert all(n > 0 for n in submitted), submitted  # both processes did their share
        assert sum(submitted) == 400


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_sigkill_with_messages_in_flight_loses_nothing(
    smsc: Simulator, tmp_path: Path, backend: str
) -> None:
    async with fresh_schema("o2sms_kill") as schema:
        if backend == "sqlite":
            store = {"O2SMS_STORE_URL": f"sqlite:///{tmp_path / 'o2sms.db'}"}
            options: dict[str, Any] = {"store_url": f"sqlite:///{tmp_path / 'o2sms.db'}"}
        else:
            store = {"O2SMS_STORE_URL": PG_URL, "O2SMS_STORE_SCHEMA": schema}
            options = {"store_url": PG_URL, "store_schema": schema}
        env = {
            **store,
            "O2SMS_API_KEYS": API_KEY,
            "O2SMS_HTTP_PORT": "0",
            "O2SMS_GATEWAY__HOSTS": f"127.0.0.1:{smsc.port}",
            "O2SMS_GATEWAY__SYSTEM_ID": ACCOUNT.system_id,
            "O2SMS_GATEWAY__PASSWORD": ACCOUNT.password,
            "O2SMS_GATEWAY__SESSIONS": "2",
            "O2SMS_WORKER__LEASE_SECONDS": "5",
            "O2SMS_WORKER__POLL_INTERVAL": "0.05",
            "O2SMS_WORKER__RETRY_BASE": "0.2",
            "O2SMS_LOG_LEVEL": "warning",
            "O2SMS_SENDER": "O2 Test",
        }
        smsc.faults.latency = 0.3  # submits stay on the wire long enough to be killed there
        first, url = await _start_serve(env, tmp_path)
        numbers = [f"+4219032{n:05d}" for n in range(100)]
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}
        ) as http:
            for round_ in range(2):
                response = await http.post(
                    "/v1/messages", json={"to": numbers, "text": f"before kill {round_}"}
                )
                assert response.status_code == 202
        await smsc.wait_until(lambda: smsc.counters["submit_sm"] >= 20, timeout=20)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        smsc.faults.latency = None

        second, _ = await _start_serve(env, tmp_path)
        try:
            statuses = await wait_all_final(options, 200, timeout=90)
        finally:
            second.send_signal(signal.SIGTERM)
            async with asyncio.timeout(20):
                await second.wait()
        assert second.returncode == 0
        assert statuses == {"delivered": 200}
        sent = Counter((m.destination_addr, m.text) for m in smsc.messages())
        assert len(sent) == 200  # every message reached the SMSC; some perhaps twice


async def test_a_message_whose_lease_expired_on_the_wire_is_resent_and_counted(
    smsc: Simulator, store_options: dict[str, Any], tmp_path: Path
) -> None:
    # A worker that died holding the message: claimed, on the wire, never answered.
    store = await open_store(store_options["store_url"], schema=store_options.get("store_schema"))
    try:
        stored = await store.enqueue(NewMessage(recipient="+421903555001", text="on the wire"))
        [held] = await store.claim("dead-worker", lease_seconds=1.0)
        assert held.id == stored.message.id
    finally:
        await store.close()
    settings = settings_for(tmp_path, **store_options, gateway=gateway(smsc, 1), sender="O2 Test")
    async with open_service(settings) as service:
        resent = await service.wait_status(held.id, {"delivered"}, timeout=20)
        response = await service.http.post(
            "/v1/messages", json={"to": "+421903555002", "text": "x"}
        )
        fresh = await service.wait_status(response.json()["messages"][0]["id"], {"delivered"})
        metrics = (await service.http.get("/metrics")).text
    assert "\no2sms_resends_total 1.0\n" in metrics, metrics
    assert (resent["attempts"], resent["resends"]) == (2, 1)
    assert (fresh["attempts"], fresh["resends"]) == (1, 0)
    expired = [e["detail"] for e in resent["timeline"] if e["kind"] == "lease_expired"]
    assert [d["previous_owner"] for d in expired] == ["dead-worker"]
    assert len(smsc.messages()) == 2


async def test_each_run_of_an_instance_leases_under_a_name_of_its_own(tmp_path: Path) -> None:
    # A restarted "sms-1" must not give back, at its stop, the leases its crashed
    # predecessor left on messages that may be on the wire.
    from o2sms.service.runtime import Connector

    settings = settings_for(tmp_path, instance="sms-1")
    first, second = Connector(settings), Connector(settings)
    try:
        assert first.worker_id.startswith("sms-1#")
        assert second.worker_id.startswith("sms-1#")
        assert first.worker_id != second.worker_id
    finally:
        await first.store.close()
        await second.store.close()


@pytest.mark.parametrize("ahead", [0.0, 120.0, -120.0])
async def test_an_instance_whose_clock_disagrees_with_the_servers_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, ahead: float
) -> None:
    # Leases are compared with each instance's own clock: one running two minutes ahead
    # takes over, after a third of a minute, messages the others are still sending.
    from o2sms.service.runtime import Connector

    async with fresh_schema("o2sms_clock") as schema:
        store = await open_store(
            PG_URL,
            schema=schema,
            clock=lambda: datetime.now(UTC) + timedelta(seconds=ahead),
        )
        connector = Connector(
            settings_for(tmp_path, store_url=PG_URL, store_schema=schema), store=store
        )
        try:
            with caplog.at_level(logging.WARNING, logger="o2sms.service"):
                offset = await connector.check_clock()
        finally:
            await store.close()
    assert offset is not None
    assert abs(offset - ahead) < 5.0
    warned = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
    if ahead:
        [line] = warned
        assert ("ahead of" if ahead > 0 else "behind") in line
        assert "NTP" in line
    else:
        assert warned == []


async def test_on_sqlite_there_is_one_clock_to_compare(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "one.db")
    try:
        assert await store.clock_offset() is None
    finally:
        await store.close()
