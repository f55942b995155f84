"""Pools, TLS, flash, inbound SMS, acknowledgements, the blocking facade and the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import trustme

from o2sms.client import (
    BindConfigError,
    Client,
    ConnectError,
    DeliveryReport,
    Event,
    InboundSms,
    RateLimiter,
    SendError,
    SyncClient,
    assign,
)
from o2sms.client.session import Session
from o2sms.client.transport import open_connection
from o2sms.smpp import CommandStatus, DeliverSm
from o2sms.text import split
from tests.client.fake_smsc import FakeSmsc, Faults, client

pytestmark = pytest.mark.asyncio

NUMBER = "+421903123456"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


async def test_tls_with_a_trusted_certificate(server_tls: ssl.SSLContext, ca_file: str) -> None:
    async with (
        FakeSmsc(ssl_context=server_tls) as smsc,
        client(smsc, tls=True, tls_ca_file=ca_file) as sms,
    ):
        assert (await sms.send(NUMBER, "over TLS")).message_ids


class FreezingProxy:
    """A TCP relay in front of an SMSC that can stop forwarding for good: a network partition,
    where the peer answers nothing, not even TLS's close_notify."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.frozen = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> FreezingProxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port
        )
        self._writers += [writer, upstream_writer]
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await source.read(65536):
                if self.frozen.is_set():
                    await asyncio.Future()  # never forwards again
                sink.write(data)
                await sink.drain()


async def test_a_dead_tls_link_is_given_up_at_once_and_takes_no_sends(
    server_tls: ssl.SSLContext,
) -> None:
    # TLS's graceful close waits for the peer's close_notify, 30 s with asyncio: the session
    # stayed "bound" that long after the missing enquire_link_resp, taking sends it never wrote
    async with FakeSmsc(ssl_context=server_tls) as smsc, FreezingProxy(smsc.port) as proxy:
        sms = Client(
            "127.0.0.1",
            proxy.port,
            system_id="acct",
            password="a-long-password",
            sessions=1,
            tls=True,
            tls_insecure_skip_verify=True,
            keepalive=0.3,
            response_timeout=0.5,
            connect_timeout=1.0,
        )
        async with sms:
            await sms.send(NUMBER, "before")
            proxy.frozen.set()
            started = time.monotonic()
            [session] = sms.sessions
            assert isinstance(session, Session)
            while session.status.name == "BOUND" and time.monotonic() - started < 20:
                await asyncio.sleep(0.05)
            assert time.monotonic() - started < 3.0
            with pytest.raises(SendError):  # not taken by the dead link: nowhere to go now
                await sms.send(NUMBER, "after", retry_timeout=0.5)
            closing = time.monotonic()
        assert time.monotonic() - closing < 8.0  # the close does not wait 30 s either


async def test_sends_made_as_a_link_starts_closing_go_to_another_session() -> None:
    async with FakeSmsc() as smsc, client(smsc, sessions=2) as sms:
        await sms.send(NUMBER, "warm")
        for _ in range(100):
            if all(isinstance(s, Session) and s.is_bound for s in sms.sessions):
                break
            await asyncio.sleep(0.02)
        first = sms.sessions[0]
        assert isinstance(first, Session)
        protocol = first.protocol
        assert protocol is not None
        sends: list[asyncio.Task[Any]] = []
        eof_received = protocol.eof_received

        def peer_closes() -> bool:
            # sends made in the loop turn the SMSC's FIN arrives in, before it is seen as gone
            sends.extend(asyncio.create_task(sms.send(NUMBER, f"m{i}")) for i in range(6))
            return eof_received()

        protocol.eof_received = peer_closes  # type: ignore[method-assign]
        smsc._writers[0].write_eof()  # the SMSC closes session-1's link, session-2's stays
        for _ in range(100):
            if sends:
                break
            await asyncio.sleep(0.02)
        results = await asyncio.gather(*sends)  # none fails: session-2 takes them
        assert all(result.message_ids for result in results)


async def test_tls_refuses_an_untrusted_certificate_clearly(server_tls: ssl.SSLContext) -> None:
    async with FakeSmsc(ssl_context=server_tls) as smsc:
        with pytest.raises(ConnectError, match="not trusted"):
            async with client(smsc, tls=True, connect_timeout=1.0, response_timeout=0.5):
                pass
        # Only an explicit, loudly named option turns verification off.
        async with client(smsc, tls=True, tls_insecure_skip_verify=True) as sms:
            assert (await sms.send(NUMBER, "unverified")).message_ids


@pytest.mark.parametrize("content", [None, "not a certificate\n"])
async def test_a_ca_file_that_cannot_be_loaded_fails_the_start_clearly(
    server_tls: ssl.SSLContext, tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    async with FakeSmsc(ssl_context=server_tls) as smsc:
        sms = client(smsc, tls=True, tls_ca_file=str(path))
        async with asyncio.timeout(5):  # a clear error, not a silent hang
            with pytest.raises(BindConfigError, match="TLS CA file"):
                await sms.start()
        await sms.close()


async def test_transmitters_send_and_the_receiver_gets_the_receipts() -> None:
    faults = Faults(receipts=True)
    async with (
        FakeSmsc(faults) as smsc,
        client(
            smsc, bind=["transmitter", "transmitter", "transmitter", "receiver"], sessions=None
        ) as sms,
    ):
        await asyncio.sleep(0.1)  # let every session bind
        results = [await sms.send(NUMBER, f"m{i}", reference=f"r{i}") for i in range(6)]
        events = sms.events()
        reports = [await asyncio.wait_for(anext(events), 2.0) for _ in range(6)]
    assert all(isinstance(r, DeliveryReport) for r in reports)
    assert {r.reference for r in reports if isinstance(r, DeliveryReport)} == {
        f"r{i}" for i in range(6)
    }
    assert {r.submitted_id for r in reports if isinstance(r, DeliveryReport)} == {
        res.message_ids[0] for res in results
    }
    assert {r.session for r in reports if isinstance(r, DeliveryReport)} == {"session-4"}
    assert smsc.sessions == 0  # every session unbound and closed


async def test_submits_spread_over_sessions_and_receipts_come_round_robin() -> None:
    async with FakeSmsc(Faults(receipts=True)) as smsc, client(smsc, sessions=2) as sms:
        await asyncio.sleep(0.1)
        await asyncio.gather(*(sms.send(NUMBER, f"m{i}") for i in range(10)))
        events = sms.events()
        reports = [await asyncio.wait_for(anext(events), 2.0) for _ in range(10)]
    sessions = {r.session for r in reports if isinstance(r, DeliveryReport)}
    assert sessions == {"session-1", "session-2"}
    assert all(isinstance(r, DeliveryReport) and r.submitted_id for r in reports)


async def test_flash_messages_go_through_the_nsms_session() -> None:
    # Two sessions: the NSMS one takes the place of the second (it counts towards the limit).
    async with FakeSmsc() as smsc, client(smsc, sessions=2, flash_session=True) as sms:
        await asyncio.sleep(0.1)
        await sms.send(NUMBER, "normal")
        await sms.send(NUMBER, "flash!", flash=True)
    assert sorted(smsc.bind_system_types) == ["", "NSMS"]
    assert smsc.submit_system_types == ["", "NSMS"]


async def test_inbound_sms_reassembled_and_acknowledged_after_handling() -> None:
    handled: list[InboundSms] = []
    gate = asyncio.Event()

    async def handler(event: object) -> None:
        assert isinstance(event, InboundSms)
        await gate.wait()  # the application is still storing it
        handled.append(event)

    async with FakeSmsc() as smsc, client(smsc, handler=handler):
        await asyncio.sleep(0.05)
        text = "Ahoj! " * 40
        for part in reversed(split(text, reference=7)):
            smsc.deliver(
                DeliverSm(
                    source_addr="421903123456",
                    destination_addr="5555",
                    esm_class=part.esm_class,
                    data_coding=part.data_coding,
                    short_message=part.short_message,
                )
            )
        await asyncio.sleep(0.1)
        assert len(smsc.answers) == 1  # the first parts are answered; the last waits
        gate.set()
        await asyncio.sleep(0.1)
    assert [e.text for e in handled] == [text]
    assert handled[0].parts == 2
    assert [status for _, status in smsc.answers] == [0, 0]


async def test_a_failing_handler_asks_the_smsc_to_redeliver() -> None:
    async def handler(event: object) -> None:
        raise RuntimeError("database down")

    async with FakeSmsc() as smsc, client(smsc, handler=handler):
        await asyncio.sleep(0.05)
        smsc.deliver(DeliverSm(source_addr="421903123456", short_message=b"hi"))
        await asyncio.sleep(0.1)
    assert [status for _, status in smsc.answers] == [CommandStatus.ESME_RX_T_APPN]


async def test_an_event_is_not_acknowledged_before_the_next_is_asked_for() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        await asyncio.sleep(0.05)
        smsc.deliver(DeliverSm(source_addr="421903123456", short_message=b"one"))
        smsc.deliver(DeliverSm(source_addr="421903123456", short_message=b"two"))
        events = sms.events()
        first = await asyncio.wait_for(anext(events), 1.0)
        await asyncio.sleep(0.05)
        assert smsc.answers == []  # still handling "one"
        second = await asyncio.wait_for(anext(events), 1.0)
        await asyncio.sleep(0.05)
        assert len(smsc.answers) == 1
        assert isinstance(first, InboundSms)
        assert isinstance(second, InboundSms)
        assert {first.text, second.text} == {"one", "two"}


async def test_close_unbinds() -> None:
    async with FakeSmsc() as smsc:
        async with client(smsc, sessions=2):
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.05)
    assert smsc.unbinds == 2


async def test_rate_limiter_spaces_submits() -> None:
    limiter = RateLimiter(rate=50, burst=1)
    start = time.perf_counter()
    for _ in range(11):
        await limiter.acquire()
    assert time.perf_counter() - start >= 0.19  # 10 intervals of 20 ms at least


async def test_assign_prefers_the_most_free_window_and_rotates_ties() -> None:
    assert assign([3, 7, 7], 0) == 1
    assert assign([3, 7, 7], 2) == 2
    assert assign([0, 0], 0) is None
    assert assign([], 0) is None


async def test_sync_client_sends_and_reads_events() -> None:
    async with FakeSmsc(Faults(receipts=True)) as smsc:

        def run() -> tuple[str, str]:
            with SyncClient("127.0.0.1", smsc.port, "acct", "pw", sessions=1) as sms:
                result = sms.send(NUMBER, "blocking")
                event = next(iter(sms.events(timeout=2.0)))
                assert isinstance(event, DeliveryReport)
                return result.message_ids[0], event.message_id

        sent, reported = await asyncio.to_thread(run)
    assert sent == reported


async def test_cli_send_prints_ids_and_waits_for_the_receipt() -> None:
    async with FakeSmsc(Faults(receipts=True)) as smsc:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "o2sms",
            "send",
            "--port",
            str(smsc.port),
            "--system-id",
            "acct",
            "--to",
            "0903 123 456",
            "--text",
            "Ahoj",
            "--wait-receipt",
            "--timeout",
            "5",
            env={**os.environ, "O2SMS_PASSWORD": "secret-password", "NO_COLOR": "1"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 30)
    text = out.decode()
    assert process.returncode == 0, err.decode()
    assert "sent to +421903123456" in text
    assert "DELIVRD" in text
    assert "secret-password" not in text + err.decode()


async def test_cli_send_fails_with_one_clear_line() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "o2sms",
        "send",
        "--port",
        "1",
        "--to",
        "12",
        "--text",
        "x",
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "40"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2  # a bad number: refused before connecting
    assert out == b""
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error:")


async def test_asking_for_the_next_event_acknowledges_the_last_one() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        await asyncio.sleep(0.05)
        smsc.deliver(DeliverSm(source_addr="421903123456", short_message=b"only one"))
        events = sms.events()
        await asyncio.wait_for(anext(events), 1.0)
        waiting = asyncio.ensure_future(anext(events))  # asks for more; none comes
        await asyncio.sleep(0.1)
        assert [status for _, status in smsc.answers] == [0]
        waiting.cancel()


async def test_send_after_close_raises_instead_of_hanging() -> None:
    async with FakeSmsc() as smsc:
        sms = client(smsc)
        async with sms:
            pass
        with pytest.raises(SendError):
            await asyncio.wait_for(sms.send(NUMBER, "too late"), 2.0)


async def test_an_events_loop_ends_when_the_client_closes() -> None:
    # Regression: an events() loop waiting for the next event when the client closed waited
    # for ever (nothing can come after the close), so the task reading it never ended and an
    # application awaiting that task at shutdown hung; so did an events() started after it.
    async with FakeSmsc() as smsc:
        sms = client(smsc)
        seen: list[Event] = []

        async def read() -> None:
            async for event in sms.events():
                seen.append(event)

        async with sms:
            readers = [asyncio.ensure_future(read()) for _ in range(2)]
            await asyncio.sleep(0.05)  # both wait for an event
        await asyncio.wait_for(asyncio.gather(*readers), 2.0)
        await asyncio.wait_for(read(), 2.0)
    assert seen == []


async def test_a_bind_that_cannot_be_encoded_fails_at_once_without_the_password() -> None:
    async with FakeSmsc() as smsc:
        secret = "p" * 70  # over the 64 characters the codec accepts
        with pytest.raises(BindConfigError) as info:
            async with client(smsc, password=secret):
                pass
        assert secret not in str(info.value)


async def test_closing_while_binding_leaves_no_connection_or_task() -> None:
    async with FakeSmsc(Faults(response_delay=0.5)) as smsc:
        sms = client(smsc)
        starting = asyncio.ensure_future(sms.start())
        await asyncio.sleep(0.1)
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await sms.close()
        await asyncio.sleep(0.6)
        assert smsc.sessions == 0
        leftover = [t for t in asyncio.all_tasks() if (t.get_name() or "").startswith("session-")]
        assert all(t.done() for t in leftover)


async def test_flash_session_never_replaces_the_receiver() -> None:
    async with FakeSmsc() as smsc:
        sms = client(
            smsc, bind=["transmitter", "transmitter", "receiver"], sessions=None, flash_session=True
        )
        kinds = [s.config.bind.name for s in sms._pool.sessions]
        assert kinds == ["TRANSMITTER", "RECEIVER", "TRANSMITTER"]
        assert sms._pool.sessions[-1].config.system_type == "NSMS"


async def test_an_unexpected_error_while_connecting_is_reported_not_a_silent_hang(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def broken_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug below the session")
        return await open_connection(*args, **kwargs)

    monkeypatch.setattr("o2sms.client.session.open_connection", broken_once)
    async with FakeSmsc() as smsc:
        sms = client(smsc)
        async with asyncio.timeout(5):
            with pytest.raises(ConnectError, match="a bug below the session"):
                await sms.start()
            await sms.start()  # the session was not left dead: a new start works
        try:
            assert (await sms.send(NUMBER, "after the retry")).message_ids
        finally:
            await sms.close()
    assert "unexpected error connecting" in caplog.text
