"""Fault suites: the connector (in gateway mode, in this process) against simulators the test
owns and breaks. Each prints its ledger (tests/reliability/ledger.py) and fails when a message
is lost or a count does not add up. Sizes are constants, bounded so the module runs in CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from o2sms.service import http as service_http
from o2sms.service.runtime import start_service
from o2sms.service.settings import Settings
from o2sms.simulator import Account, Simulator
from o2sms.store import MessageStore, open_store
from tests.locks import hold_pg_table_lock, hold_sqlite_write_lock
from tests.pg import PG_URL, fresh_schema
from tests.reliability.ledger import build_ledger, wait_final, wait_quiet
from tests.service.conftest import API_KEY, Service, settings_for
from tests.service.webhook_receiver import HANG, SECRET, Receiver

pytestmark = pytest.mark.asyncio

ACCOUNT = Account("acct", "a-password-longer-than-8")

#: Messages in the dropped-connection stream. The issue asks for 5,000; that is what runs: on
#: SQLite it takes about 15 s here (drops and reconnects included), inside the CI budget.
DROP_STREAM = 5_000
#: PDUs a session may send before the SMSC cuts it (mid-stream, so its window is full then).
#: Not much lower: a session's reconnect backoff only resets after a link stayed up 30 s
#: (client.session.STABLE_LINK_SECONDS), so a drop every second or two grows the pauses to
#: 30 s and the stream crawls (by design: a gateway that drops binds must not be hammered).
DROP_AFTER = 600
FAILOVER_STREAM = 1_000  #: messages while the primary gateway dies
RECEIPT_ROUND = 200  #: messages per round of the early/duplicate-receipt suite
EARLY_SHORT = 60  #: one-part messages whose receipts all come before their submit_sm_resp
EARLY_LONG = 20  #: two-part messages, likewise for every part
STORE_OUTAGE = 300  #: messages in flight while the store is locked
STORE_LOCK_SECONDS = 6.0  #: how long the store stays unavailable
WEBHOOK_STREAM = 300  #: messages with a callback while the receiver is down
STORM_STREAM = 500  #: messages through throttling and queue-full storms


def numbers(prefix: int, count: int) -> list[str]:
    """``count`` distinct Slovak mobile numbers (one per message: the ledger's identity)."""
    return [f"+4219{prefix:02d}{n:06d}" for n in range(count)]


def gateway(*smscs: Simulator | int, sessions: int = 4, **extra: Any) -> dict[str, Any]:
    """Gateway settings for the connector: these simulators (or ports), in order."""
    ports = [s if isinstance(s, int) else s.port for s in smscs]
    return {
        "hosts": [f"127.0.0.1:{p}" for p in ports],
        "system_id": ACCOUNT.system_id,
        "password": ACCOUNT.password,
        "sessions": sessions,
        **extra,
    }


def fast_settings(tmp_path: Path, **options: Any) -> Settings:
    """Test settings with quick polls, retries and leases."""
    worker = {"poll_interval": 0.05, "retry_base": 0.1, "retry_cap": 2.0, "lease_seconds": 5}
    worker.update(options.pop("worker", {}))
    return settings_for(tmp_path, sender="O2 Test", worker=worker, **options)


@asynccontextmanager
async def running(settings: Settings, store: MessageStore | None = None) -> AsyncIterator[Service]:
    """The connector with ``settings`` (and ``store`` when given: the test keeps it open)."""
    service = await start_service(settings, store=store)
    try:
        async with httpx.AsyncClient(
            base_url=service.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30.0
        ) as http:
            yield Service(service, http)
    finally:
        await service.stop()


async def post_all(http: httpx.AsyncClient, recipients: Sequence[str], text: str) -> list[str]:
    """POST the recipients in requests of up to 1,000; the accepted ids."""
    ids: list[str] = []
    for start in range(0, len(recipients), 1000):
        response = await http.post(
            "/v1/messages", json={"to": list(recipients[start : start + 1000]), "text": text}
        )
        assert response.status_code == 202, response.text
        ids += [m["id"] for m in response.json()["messages"]]
    return ids


def store_of(service: Service) -> MessageStore:
    return service.running.connector.store


@pytest_asyncio.fixture
async def smsc() -> AsyncIterator[Simulator]:
    async with Simulator(accounts=(ACCOUNT,), receipt_delay=0.05, store_size=50_000) as sim:
        yield sim


# --- 1. connections dropped with a full window -----------------------------------------------


async def test_connections_dropped_with_a_full_window(smsc: Simulator, tmp_path: Path) -> None:
    settings = fast_settings(
        tmp_path, gateway=gateway(smsc, window=10), worker={"concurrency": 200, "batch": 100}
    )
    async with running(settings) as service:
        smsc.faults.drop_after = DROP_AFTER  # every session, again after each reconnect
        # Responses wait a little, so a drop also loses submit_sm_resp of accepted messages:
        # those are the messages that may be sent twice.
        smsc.faults.latency = 0.02
        ids = await post_all(service.http, numbers(3, DROP_STREAM), "dropped stream")
        await wait_final(store_of(service), DROP_STREAM, timeout=120)
        smsc.faults.clear()
        await wait_quiet([smsc])
        ledger = await build_ledger("connections dropped", store_of(service), ids, [smsc])
    ledger.check()
    assert smsc.counters["connections_dropped"] >= 10, smsc.counters
    assert ledger.final == {"delivered": DROP_STREAM}


# --- 2. the primary gateway dies mid-stream ----------------------------------------------------


class Proxy:
    """A TCP forwarder in front of a simulator: ``kill()`` is the host dying (listener gone,
    every connection cut), ``revive()`` brings it back on the same port. The simulator behind
    keeps its state, like a gateway whose front end restarted."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._tasks.update(pipes)
        await asyncio.gather(*pipes, return_exceptions=True)
        self._tasks.difference_update(pipes)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def kill(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def revive(self) -> None:
        await self.start()


async def test_primary_gateway_killed_mid_stream(smsc: Simulator, tmp_path: Path) -> None:
    async with Simulator(accounts=(ACCOUNT,), receipt_delay=0.05, store_size=50_000) as second:
        primary = Proxy(smsc.port or 0)
        await primary.start()
        settings = fast_settings(tmp_path, gateway=gateway(primary.port, second, sessions=2))
        try:
            async with running(settings) as service:
                ids = await post_all(service.http, numbers(4, FAILOVER_STREAM), "failover")
                await smsc.wait_until(
                    lambda: smsc.counters["submit_sm"] >= FAILOVER_STREAM // 4, timeout=30
                )
                await primary.kill()  # mid-stream: submits and receipts in flight are cut
                await second.wait_until(lambda: second.counters["binds"] >= 2, timeout=30)
                store = store_of(service)
                # Everything is sent through the secondary; receipts the dead primary still owes
                # wait there for a receiving session (the gateway's at-least-once).
                await second.wait_until(
                    lambda: (
                        second.counters["submit_sm_accepted"] + smsc.counters["submit_sm_accepted"]
                        >= FAILOVER_STREAM
                    ),
                    timeout=60,
                )
                # The two simulators are separate platforms (the real hosts share one), so each
                # owes its own receipts: let the secondary deliver all of its receipts first.
                await wait_quiet([second], timeout=30)
                owed = smsc.pending_receipts(ACCOUNT.system_id)
                # Primary back: the documented policy is "tried in order on every reconnect",
                # so sessions return to it the next time their link drops.
                await primary.revive()
                second.faults.drop_after = 0  # cut the secondary's links once
                await smsc.wait_until(lambda: len(smsc.sessions()) >= 1, timeout=30)
                second.faults.clear()
                await wait_final(store, FAILOVER_STREAM, timeout=60)
                await wait_quiet([smsc, second])
                ledger = await build_ledger("primary killed", store, ids, [smsc, second])
        finally:
            await primary.kill()
    ledger.check()
    print(f"  receipts owed by the dead primary, delivered after it came back: {owed}")
    assert second.counters["submit_sm_accepted"] > 0
    assert ledger.final == {"delivered": FAILOVER_STREAM}


# --- 3. receipts early, on other sessions, after a restart, and twice ---------------------------


def sample(service: Service, name: str, **labels: str) -> float:
    value = service.running.connector.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def test_receipts_early_elsewhere_after_restart_and_twice(
    smsc: Simulator, tmp_path: Path
) -> None:
    settings = fast_settings(tmp_path, gateway=gateway(smsc, sessions=4))
    store = await open_test_store(settings)
    ids: list[str] = []
    try:
        async with running(settings, store) as service:
            # Early: the receipt leaves at once, the submit_sm_resp 0.3 s later.
            smsc.config = smsc.config.with_options(receipt_delay=0.0)
            smsc.faults.latency = 0.3
            ids += await post_all(service.http, numbers(5, RECEIPT_ROUND), "early")
            await wait_final(store, len(ids), timeout=30)
            smsc.faults.clear()
            early = sample(service, "o2sms_receipts_total", result="pending")
            # Twice: the SMSC cuts links often, so acknowledged receipts are sent again.
            smsc.config = smsc.config.with_options(receipt_delay=0.05)
            smsc.faults.drop_after = 40
            ids += await post_all(service.http, numbers(6, RECEIPT_ROUND), "twice")
            await wait_final(store, len(ids), timeout=60)
            smsc.faults.clear()
            await wait_quiet([smsc])
            twice = sample(service, "o2sms_receipts_total", result="duplicate")
            # After a restart: receipts become due while the connector is down.
            smsc.faults.receipt_delay = 1.5
            ids += await post_all(service.http, numbers(7, RECEIPT_ROUND), "restart")
            await smsc.wait_until(
                lambda: smsc.counters["submit_sm_accepted"] >= len(ids), timeout=30
            )
            await asyncio.sleep(0.5)
        smsc.faults.clear()
        async with running(settings, store) as service:
            await wait_final(store, len(ids), timeout=30)
            await wait_quiet([smsc])
            after_restart = sample(service, "o2sms_receipts_total", result="applied")
        ledger = await build_ledger("receipts", store, ids, [smsc])
    finally:
        await store.close()
    ledger.check()
    print(
        f"  receipts before their submit_sm_resp: {early:.0f}; redelivered duplicates:"
        f" {twice:.0f}; applied after the restart: {after_restart:.0f}"
    )
    assert ledger.final == {"delivered": len(ids)}
    # How many receipts overtake their submit_sm_resp here depends on scheduling (the latency
    # fault holds each session's output in order, so only receipts routed to another session
    # can overtake), so ``early`` is reported, not asserted; the ledger above still proves each
    # was applied once. The deterministic cases are in tests/store/test_receipts.py and
    # tests/store/test_batches.py (receipt stored as pending, applied by mark_submitted), and
    # at service level in the receipts_first suite below (every receipt overtakes).
    assert twice > 0, "no receipt was delivered twice"
    assert after_restart > 0
    sessions = Counter(m.session_id for m in smsc.messages())
    assert len(sessions) > 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_every_receipt_overtakes_its_submit_sm_resp_and_is_applied_once(
    smsc: Simulator, tmp_path: Path, backend: str
) -> None:
    """Deterministic: the receipts_first fault sends every part's receipt first, on the other
    session, and its submit_sm_resp only after it (when the receipt is acknowledged, or 0.2 s
    later: o2sms's client answers a receipt it cannot match yet once the submit_sm_resp of its
    outstanding submits arrived). How many receipts then reach the store before the worker
    recorded the submit (``pending``) still depends on scheduling and is only reported."""
    async with fresh_schema("o2sms_early") as schema:
        options: dict[str, Any] = (
            {} if backend == "sqlite" else {"store_url": PG_URL, "store_schema": schema}
        )
        settings = fast_settings(tmp_path, gateway=gateway(smsc, sessions=2), **options)
        short = numbers(15, EARLY_SHORT)
        long = numbers(16, EARLY_LONG)
        long_text = "Two parts, each with its own receipt before its submit_sm_resp. " * 3
        parts = {**dict.fromkeys(short, 1), **dict.fromkeys(long, 2)}
        smsc.faults.receipts_first = sum(parts.values())
        async with running(settings) as service:
            ids = await post_all(service.http, short, "receipt first")
            ids += await post_all(service.http, long, long_text)
            views = [await service.wait_status(i, {"delivered"}, timeout=30) for i in ids]
            await wait_quiet([smsc])
            early = sample(service, "o2sms_receipts_total", result="pending")
            duplicates = sample(service, "o2sms_receipts_total", result="duplicate")
    total = sum(parts.values())
    print(
        f"  {len(ids)} messages, {total} parts, every receipt before its submit_sm_resp;"
        f" {early:.0f} stored before the submit was recorded"
    )
    assert smsc.counters["submit_sm_receipt_first"] == total  # every part's receipt came first
    assert smsc.faults.receipts_first == 0
    assert smsc.counters["receipts_sent"] == smsc.counters["receipts_acknowledged"] == total
    assert duplicates == 0
    assert smsc.counters["submit_sm"] == total  # exactly one submit_sm per part
    at_smsc = Counter("+" + m.destination_addr for m in smsc.messages())
    assert at_smsc == parts
    sessions = {m.session_id for m in smsc.messages()}
    assert len(sessions) == 2
    for view in views:
        assert len(view["parts"]) == parts[view["to"]]
        receipts = [e["detail"] for e in view["timeline"] if e["kind"] == "receipt"]
        assert sorted(r["part"] for r in receipts) == list(range(1, parts[view["to"]] + 1))
        assert not any(r["ignored"] for r in receipts)
        assert {r["id"] for r in receipts} == {p["smsc_id"] for p in view["parts"]}
        assert all(p["status"] == "delivered" for p in view["parts"])
        assert view["attempts"] == 1


async def open_test_store(settings: Settings, **options: Any) -> MessageStore:
    """The store of ``settings``, migrated, with quick retries (the test closes it)."""
    return await open_store(
        settings.store_url,
        schema=settings.store_schema,
        retry_base=settings.worker.retry_base,
        retry_cap=settings.worker.retry_cap,
        webhook_url=settings.webhooks.url,
        **options,
    )


# --- 4. the store unavailable for a while -------------------------------------------------------


@contextlib.contextmanager
def sqlite_locked(path: Path, seconds: float) -> Iterator[threading.Event]:
    """Hold SQLite's write lock from another connection for ``seconds`` (in a thread)."""
    taken = threading.Event()
    thread = threading.Thread(
        target=hold_sqlite_write_lock, args=(path, seconds, taken), name="sqlite-locker"
    )
    thread.start()
    try:
        yield taken
    finally:
        thread.join()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_store_unavailable_for_a_while(
    smsc: Simulator, tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_http, "STORE_TIMEOUT", 1.5)
    async with fresh_schema("o2sms_outage") as schema:
        options: dict[str, Any] = (
            {} if backend == "sqlite" else {"store_url": PG_URL, "store_schema": schema}
        )
        settings = fast_settings(tmp_path, gateway=gateway(smsc, sessions=2), **options)
        # SQLite: a writer gives up after 1 s instead of 30 (the receipt is then refused with
        # ESME_RX_T_APPN and redelivered; a submit outcome is retried by the worker).
        store = await open_test_store(
            settings, **({"busy_timeout": 1.0} if backend == "sqlite" else {})
        )
        ids: list[str] = []
        try:
            async with running(settings, store) as service:
                smsc.faults.receipt_delay = 1.0  # receipts fall due during the outage
                # Slow answers keep submits on the wire when the lock comes; the lock outlasts
                # their lease, so the claimer sees them again when the store is back.
                smsc.faults.latency = 0.4
                ids += await post_all(service.http, numbers(8, STORE_OUTAGE), "before outage")
                taken = asyncio.Event()
                if backend == "sqlite":
                    locker = contextlib.ExitStack()
                    thread_taken = locker.enter_context(
                        sqlite_locked(tmp_path / "o2sms.db", STORE_LOCK_SECONDS)
                    )
                    await asyncio.to_thread(thread_taken.wait, 10)
                    lock_task = None
                else:
                    locker = contextlib.ExitStack()
                    lock_task = asyncio.create_task(
                        hold_pg_table_lock(schema, STORE_LOCK_SECONDS, taken)
                    )
                    await asyncio.wait_for(taken.wait(), 10)
                await asyncio.sleep(0.3)
                acked_at_lock = smsc.counters["receipts_acknowledged"]
                refused: list[tuple[str, list[str]]] = []
                for n in range(2):
                    recipients = numbers(14, 30)[n * 10 : n * 10 + 10]
                    response = await service.http.post(
                        "/v1/messages",
                        json={"to": recipients, "text": "during outage"},
                        headers={"Idempotency-Key": f"outage-{n}"},
                    )
                    assert response.status_code == 503, response.text
                    assert response.headers["Retry-After"] == "5"
                    assert response.json() == {
                        "error": "the message store is unavailable; try again"
                    }
                    refused.append((f"outage-{n}", recipients))
                if backend == "postgresql":  # reads wait too (SQLite's WAL readers do not)
                    response = await service.http.get(f"/v1/messages/{ids[0]}")
                    assert response.status_code == 503
                    assert response.headers["Retry-After"] == "5"
                acked_in_outage = smsc.counters["receipts_acknowledged"] - acked_at_lock
                if lock_task is not None:
                    await lock_task
                await asyncio.to_thread(locker.close)
                # Back: the refused requests, retried with their keys, are stored once.
                for key, recipients in refused:
                    response = await service.http.post(
                        "/v1/messages",
                        json={"to": recipients, "text": "during outage"},
                        headers={"Idempotency-Key": key},
                    )
                    assert response.status_code == 202, response.text
                    ids += [m["id"] for m in response.json()["messages"]]
                smsc.faults.clear()
                await wait_final(store, len(ids), timeout=60)
                await wait_quiet([smsc])
                ledger = await build_ledger(f"store unavailable ({backend})", store, ids, [smsc])
                stored = [await store.get(i) for i in ids]
                taken_again = [m.id for m in stored if m is not None and m.resends]
        finally:
            await store.close()
    ledger.check()
    print(f"  receipts acknowledged while the store was locked: {acked_in_outage}")
    assert acked_in_outage == 0, "a receipt was acknowledged without a commit"
    assert ledger.final == {"delivered": len(ids)}
    assert ledger.duplicates == 0, "a submit still in flight was sent again"
    assert taken_again == [], "a claim took back a message its worker was still sending"


# --- 5. the webhook receiver down or slow -------------------------------------------------------


async def test_webhook_receiver_down_then_back(smsc: Simulator, tmp_path: Path) -> None:
    receiver = Receiver(plans={"/hook": [503]})
    await receiver.start()
    settings = fast_settings(
        tmp_path,
        gateway=gateway(smsc),
        webhooks={"url": receiver.url("/hook"), "secret": SECRET.decode(), "timeout": 1.0},
    )
    store = await open_test_store(settings, webhook_retry_base=0.2, webhook_retry_cap=1.0)
    try:
        async with running(settings, store) as service:
            loop = asyncio.get_running_loop()
            started = loop.time()
            ids = await post_all(service.http, numbers(10, WEBHOOK_STREAM), "hooks down")
            await wait_final(store, WEBHOOK_STREAM, timeout=30)
            took_down = loop.time() - started
            async with asyncio.timeout(10):  # the pipeline may finish before the first attempt
                while not receiver.requests:
                    await asyncio.sleep(0.05)
            refused = len(receiver.requests)
            receiver.plans["/hook"] = [HANG, 200]  # slow: the first hangs past the timeout
            async with asyncio.timeout(60):
                while len(_delivered_hooks(receiver)) < WEBHOOK_STREAM:
                    await asyncio.sleep(0.1)
            await wait_quiet([smsc])
            ledger = await build_ledger("webhook receiver down", store, ids, [smsc])
    finally:
        await store.close()
        await receiver.close()
    ledger.check()
    delivered = _delivered_hooks(receiver)
    print(
        f"  pipeline with the receiver down: {WEBHOOK_STREAM} messages final in {took_down:.1f} s;"
        f" webhooks refused meanwhile {refused}, then delivered {len(delivered)}"
    )
    assert refused > 0
    assert delivered == set(ids)
    assert all(r.signed for r in receiver.requests)
    assert took_down < 20


def _delivered_hooks(receiver: Receiver) -> set[str]:
    """Message ids whose ``delivered`` webhook the receiver answered 200."""
    ids: set[str] = set()
    for request in receiver.at("/hook")[-100_000:]:
        body = request.json()
        if body["type"] == "message.status" and body["message"]["status"] == "delivered":
            ids.add(body["message"]["id"])
    return ids


# --- 6. throttling and queue-full storms --------------------------------------------------------


async def test_throttling_and_queue_full_storms(smsc: Simulator, tmp_path: Path) -> None:
    settings = fast_settings(tmp_path, gateway=gateway(smsc), worker={"retry_base": 1.0})
    async with running(settings) as service:
        smsc.faults.max_submit_rate = 100.0
        smsc.faults.queue_full = 300
        ids = await post_all(service.http, numbers(11, STORM_STREAM), "storm")
        await wait_final(store_of(service), STORM_STREAM, timeout=60)
        smsc.faults.clear()
        await wait_quiet([smsc])
        ledger = await build_ledger("throttling storms", store_of(service), ids, [smsc])
    ledger.check()
    counters = smsc.counters
    refused = counters["submit_sm_throttled"] + counters["submit_sm_queue_full"]
    print(
        f"  submit_sm {counters['submit_sm']} for {STORM_STREAM} messages: throttled"
        f" {counters['submit_sm_throttled']}, queue full {counters['submit_sm_queue_full']}"
    )
    assert ledger.final == {"delivered": STORM_STREAM}
    assert refused > 0
    # Backoff, not a busy loop: refusals stay within a small multiple of the messages.
    assert counters["submit_sm"] <= 3 * STORM_STREAM, counters
