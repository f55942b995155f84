"""Client options the sessions get (bind addresses, backoffs, flash session) and how the client
handles the SMSC's refusals: final errors, generic_nack, late responses, queue full, rate.

All on loopback against the fake SMSC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Callable

import pytest

from o2sms.client import (
    Backoff,
    Client,
    ClientError,
    ResponseTimeout,
    SendError,
    SubmitError,
)
from o2sms.smpp import CommandStatus
from tests.client.fake_smsc import FakeSmsc, Faults, client

pytestmark = pytest.mark.asyncio

NUMBER = "+421903123456"


async def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll ``condition()`` until it is true (fails the test after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


# --- 1: bind addr_ton / addr_npi / address_range ----------------------------------------------


async def test_bind_address_fields_reach_every_session_including_the_flash_one() -> None:
    async with (
        FakeSmsc() as smsc,
        client(smsc, sessions=3, flash_session=True, addr_ton=1, addr_npi=1, address_range="^421"),
    ):
        await wait_until(lambda: smsc.sessions == 3)
    assert [(b.addr_ton, b.addr_npi, b.address_range) for b in smsc.binds] == [(1, 1, "^421")] * 3
    assert sorted(b.system_type for b in smsc.binds) == ["", "", "NSMS"]


async def test_bind_address_fields_default_to_empty() -> None:
    async with FakeSmsc() as smsc, client(smsc):
        pass
    assert [(b.addr_ton, b.addr_npi, b.address_range) for b in smsc.binds] == [(0, 0, "")]


# --- 2: reconnect and session-limit backoff ---------------------------------------------------


async def test_reconnect_backoff_is_passed_to_the_sessions() -> None:
    quick = Backoff(initial=0.01, maximum=0.02, jitter=0.0)
    async with FakeSmsc() as smsc, client(smsc, reconnect=quick) as sms:
        assert all(s.config.reconnect == quick for s in sms._pool.sessions)
        smsc.drop_all()
        await wait_until(lambda: smsc.bind_attempts == 2)  # back after ~10 ms, not 0.5 s
        assert (await sms.send(NUMBER, "after the reconnect")).message_ids


async def test_a_long_reconnect_backoff_is_waited_out() -> None:
    slow = Backoff(initial=5.0, maximum=5.0, jitter=0.0)
    async with FakeSmsc() as smsc, client(smsc, reconnect=slow):
        smsc.drop_all()
        await asyncio.sleep(0.3)
        assert smsc.bind_attempts == 1  # still waiting its 5 s


async def test_session_limit_backoff_is_passed_to_the_sessions() -> None:
    quick = Backoff(initial=0.02, maximum=0.02, jitter=0.0)
    async with FakeSmsc(Faults(max_sessions=1)) as smsc, client(smsc):
        refused = client(smsc, session_limit_backoff=quick)
        assert all(s.config.session_limit_backoff == quick for s in refused._pool.sessions)
        refused._pool.start()  # keeps binding in the background (start() would give up)
        try:
            # With the default (5 s, growing) there would be one refused attempt here.
            await wait_until(lambda: smsc.bind_attempts >= 5)
        finally:
            await refused.close()


async def test_backoff_defaults_are_unchanged() -> None:
    async with FakeSmsc() as smsc:
        config = client(smsc)._pool.sessions[0].config
    assert config.reconnect == Backoff()
    assert config.session_limit_backoff == Backoff(initial=5.0, maximum=120.0)


async def test_bind_timeout_is_passed_to_the_sessions() -> None:
    quick = Backoff(initial=0.01, maximum=0.02, jitter=0.0)
    # silent: the SMSC takes the connection and never answers the bind
    async with FakeSmsc(Faults(silent=True)) as smsc:
        sms = client(smsc, bind_timeout=0.1, response_timeout=30.0, reconnect=quick)
        assert all(s.config.bind_timeout == 0.1 for s in sms._pool.sessions)
        sms._pool.start()  # keeps binding in the background (start() would give up)
        try:
            # Each unanswered bind is given up after bind_timeout and the session reconnects;
            # with the fixed 10 s (or the 30 s response_timeout) the first would still wait.
            await wait_until(lambda: len(smsc._writers) >= 3)
        finally:
            await sms.close()


async def test_a_bind_timeout_longer_than_response_timeout_is_waited_out() -> None:
    # The bind_resp comes after 0.3 s: within bind_timeout, past response_timeout, which
    # bounds every other request but must not cut the bind short (each bind given up after
    # 0.1 s and sent again would never bind).
    async with FakeSmsc(Faults(response_delay=0.3)) as smsc:
        sms = client(smsc, bind_timeout=5.0, response_timeout=0.1, connect_timeout=1.0)
        try:
            await sms.start()
            assert len(smsc._writers) == 1  # bound on the first connection
        finally:
            await sms.close()


@pytest.mark.parametrize("seconds", [0.0, -1.0])
async def test_bind_timeout_must_be_positive(seconds: float) -> None:
    async with FakeSmsc() as smsc:
        with pytest.raises(ValueError, match="bind_timeout"):
            client(smsc, bind_timeout=seconds)


# --- 3: the flash session fits in the configured sessions -------------------------------------


async def test_flash_session_with_one_sender_replaces_the_last_receiver() -> None:
    bind = ["transceiver", "receiver", "receiver", "receiver"]
    async with (
        FakeSmsc(Faults(max_sessions=4)) as smsc,
        client(smsc, bind=bind, sessions=None, flash_session=True) as sms,
    ):
        configs = [s.config for s in sms._pool.sessions]
        assert [(c.bind.name, c.system_type) for c in configs] == [
            ("TRANSCEIVER", ""),
            ("RECEIVER", ""),
            ("RECEIVER", ""),
            ("TRANSMITTER", "NSMS"),
        ]
        await wait_until(lambda: smsc.sessions == 4)
        await sms.send(NUMBER, "flash", flash=True)
        await sms.send(NUMBER, "normal")
    assert smsc.bind_attempts == 4  # none refused for the session limit
    assert smsc.submit_system_types == ["NSMS", ""]


async def test_flash_session_with_only_receivers_replaces_the_last_one() -> None:
    async with FakeSmsc() as smsc:
        sms = client(smsc, bind="receiver", sessions=4, flash_session=True)
    kinds = [(s.config.bind.name, s.config.system_type) for s in sms._pool.sessions]
    assert kinds == [("RECEIVER", "")] * 3 + [("TRANSMITTER", "NSMS")]


async def test_flash_session_without_room_is_refused() -> None:
    async with FakeSmsc() as smsc:
        with pytest.raises(ValueError, match="the flash session needs a session of its own"):
            client(smsc, sessions=1, flash_session=True)


@pytest.mark.parametrize("bind", ["receiver", "transmitter", "transceiver"])
async def test_flash_session_with_one_session_of_any_kind_is_refused(bind: str) -> None:
    # A lone receiver was dropped for the NSMS session: a client that could never receive,
    # where the docs promise ValueError for a single session.
    with pytest.raises(ValueError, match="the flash session needs a session of its own"):
        Client("127.0.0.1", 8888, "acct", "a-long-password", bind=[bind], flash_session=True)


async def test_flash_send_without_a_flash_session_fails_at_once() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(ClientError, match="no flash session: create the Client with flash"):
            await asyncio.wait_for(sms.send(NUMBER, "flash", flash=True), 0.5)
    assert smsc.received == 0


@pytest.mark.parametrize("system_type", ["NSMS", "nsms", "Nsms"])
async def test_the_flash_system_type_as_every_sessions_system_type_is_refused(
    system_type: str,
) -> None:
    # The gateway makes every message of a bind with system_type NSMS a flash notification
    # (seed). Given as system_type, "nsms" sent every message as flash (the simulator reads
    # it in any case) and "NSMS" left no session for ordinary messages ("no session can
    # send"): flash_session=True is the way to send flash.
    with pytest.raises(ValueError, match="flash_session=True"):
        Client("127.0.0.1", 8888, "acct", "a-long-password", system_type=system_type)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"sessions": 0}, "sessions must be at least 1, got 0"),
        ({"sessions": -1}, "sessions must be at least 1, got -1"),
        ({"bind": [], "sessions": None}, "bind lists no session"),
        ({"bind": (), "sessions": None}, "bind lists no session"),
    ],
)
async def test_a_client_of_no_sessions_is_refused_at_construction(
    options: dict[str, object], words: str
) -> None:
    # Not four sessions (sessions=0 read as "not given"), nor a client that starts with no
    # session and fails with "the client is closed".
    with pytest.raises(ValueError, match=words):
        Client("127.0.0.1", 8888, "acct", "a-long-password", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        # no worker would take a deliver_sm: inbound SMS and receipts left unanswered for ever
        ({"inbound_concurrency": 0}, "inbound_concurrency must be at least 1"),
        # every bind would expire at once, a retriable ConnectError retried for ever
        ({"response_timeout": 0}, "response_timeout must be positive"),
        ({"response_timeout": -1.0}, "response_timeout must be positive"),
        ({"connect_timeout": 0}, "connect_timeout must be positive"),
        # 0 was taken for "not given": no limit at all, where -1 was refused
        ({"rate_limit": 0}, "rate must be positive"),
        # nan passed "<= 0": its token bucket never empties (no limit), and its keepalive
        # never falls due (the gateway drops the idle session)
        ({"rate_limit": math.nan}, "rate must be positive"),
        ({"keepalive": math.nan}, "keepalive"),
        ({"bind_timeout": math.nan}, "bind_timeout must be positive"),
    ],
)
async def test_settings_that_cannot_work_are_refused_at_construction(
    options: dict[str, float], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        Client("127.0.0.1", 8888, "acct", "a-long-password", **options)  # type: ignore[arg-type]


# --- 4: final errors, generic_nack, late responses, queue full, rate --------------------------


@pytest.mark.parametrize(
    ("status", "name", "meaning"),
    [
        (CommandStatus.ESME_RINVDSTADR, "ESME_RINVDSTADR", "invalid destination address"),
        (0xFF, "ESME_RUNKNOWNERR", "insufficient account balance"),  # Infobip's meaning
        (0x0B, "ESME_RINVDSTADR", "invalid destination address"),
        (0x22, "UNKNOWN_0x00000022", "network not covered"),  # Infobip's meaning
    ],
)
async def test_a_final_submit_error_is_reported_with_its_name_and_meaning(
    status: int, name: str, meaning: str
) -> None:
    async with FakeSmsc(Faults(submit_statuses=[status])) as smsc, client(smsc) as sms:
        with pytest.raises(SendError) as info:
            await sms.send(NUMBER, "refused")
    error = info.value
    assert not error.retriable
    assert error.command_status == status
    assert isinstance(error.cause, SubmitError)
    assert name in str(error)
    assert meaning in str(error)
    assert smsc.received == 1  # final: not sent again


async def test_a_generic_nack_fails_its_send_with_the_nack_status() -> None:
    faults = Faults(nack_statuses=[CommandStatus.ESME_RINVCMDLEN])
    async with FakeSmsc(faults) as smsc, client(smsc) as sms:
        with pytest.raises(SendError) as info:
            await sms.send(NUMBER, "nacked")
        assert (await sms.send(NUMBER, "the next one goes")).message_ids
    assert isinstance(info.value.cause, SubmitError)
    assert info.value.command_status == CommandStatus.ESME_RINVCMDLEN
    assert not info.value.retriable
    assert "ESME_RINVCMDLEN" in str(info.value)
    assert smsc.received == 2


async def test_a_throttling_generic_nack_pauses_and_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    faults = Faults(nack_statuses=[CommandStatus.ESME_RTHROTTLED])
    async with FakeSmsc(faults) as smsc, client(smsc) as sms:
        with caplog.at_level(logging.WARNING, logger="o2sms.client"):
            result = await sms.send(NUMBER, "throttled by a nack")
    assert result.message_ids
    assert smsc.received == 2
    assert any("pausing submits" in r.getMessage() for r in caplog.records)


async def test_a_late_response_is_logged_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    async with (
        FakeSmsc(Faults(hold_first=0.6)) as smsc,
        client(smsc, response_timeout=0.3) as sms,
    ):
        with caplog.at_level(logging.WARNING, logger="o2sms.client"):
            with pytest.raises(SendError) as info:
                await sms.send(NUMBER, "answered too late")
            assert isinstance(info.value.cause, ResponseTimeout)
            assert info.value.retriable
            during = await sms.send(NUMBER, "while the late one is held")
            await wait_until(
                lambda: any("late or unsolicited" in r.getMessage() for r in caplog.records)
            )
            after = await sms.send(NUMBER, "after the late one")
    assert "LATE" not in during.message_ids + after.message_ids
    assert during.message_ids != after.message_ids
    assert smsc.bind_attempts == 1  # the session was not disturbed
    dropped = [r.getMessage() for r in caplog.records if "late or unsolicited" in r.getMessage()]
    assert len(dropped) == 1
    assert "submit_sm_resp" in dropped[0]


async def test_queue_full_pauses_the_pool_and_retries_until_accepted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    full: list[int] = [CommandStatus.ESME_RMSGQFUL] * 2
    async with FakeSmsc(Faults(submit_statuses=full)) as smsc, client(smsc) as sms:
        with caplog.at_level(logging.WARNING, logger="o2sms.client"):
            result = await sms.send(NUMBER, "queue was full")
    assert len(result.message_ids) == 1
    assert smsc.received == 3
    pauses = [r.getMessage() for r in caplog.records if "pausing submits" in r.getMessage()]
    assert pauses
    assert all("ESME_RMSGQFUL" in p for p in pauses)


async def test_rate_limit_holds_over_several_sessions() -> None:
    rate = 40.0
    burst = max(1.0, rate / 10)  # the token bucket's burst (RateLimiter's default)
    count = 30
    async with FakeSmsc() as smsc, client(smsc, sessions=4, rate_limit=rate) as sms:
        await wait_until(lambda: smsc.sessions == 4)
        async with _loop_stalls() as stalls:
            await asyncio.gather(*(sms.send(NUMBER, f"m{i}") for i in range(count)))
    times = [t for t, _ in smsc.submit_log]
    assert len(times) == count
    assert len({conn for _, conn in smsc.submit_log}) > 1  # spread over sessions
    # In any stretch of time the SMSC saw at most burst + rate * stretch submits; the bound is
    # on the rate only, never on how fast the client is. The SMSC stamps a submit when the
    # shared event loop reads it, so a stall of the loop (a loaded machine) can bunch
    # submits sent up to that long apart: one more for loopback jitter, and the rate's worth
    # of the longest stall seen. A limiter that let them all through would still fail by far.
    slack = 1 + rate * max(stalls)
    for i in range(count):
        for j in range(i + 1, count):
            assert j - i + 1 <= burst + rate * (times[j] - times[i]) + slack, (i, j, stalls)


@contextlib.asynccontextmanager
async def _loop_stalls(tick: float = 0.002) -> AsyncIterator[list[float]]:
    """Measure how late the event loop runs a timer while the block runs: its stalls."""
    loop = asyncio.get_running_loop()
    stalls = [0.0]

    async def watch() -> None:
        while True:
            due = loop.time() + tick
            await asyncio.sleep(tick)
            stalls.append(max(0.0, loop.time() - due))

    watcher = asyncio.create_task(watch())
    try:
        yield stalls
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


@pytest.mark.parametrize(
    ("bind", "kept"),
    [
        (["transmitter", "transceiver"], ["TRANSCEIVER"]),  # the transmitter makes room
        (["transceiver", "transmitter", "transceiver"], ["TRANSCEIVER", "TRANSCEIVER"]),
        (["transceiver", "receiver"], ["TRANSCEIVER"]),  # the transceiver still receives
    ],
)
async def test_flash_session_never_takes_the_only_receiving_session(
    bind: list[str], kept: list[str]
) -> None:
    sms = Client("127.0.0.1", 8888, "acct", "a-long-password", bind=bind, flash_session=True)
    kinds = [(s.config.bind.name, s.config.system_type) for s in sms._pool.sessions]
    assert kinds == [(name, "") for name in kept] + [("TRANSMITTER", "NSMS")]


async def test_flash_session_refused_where_it_would_leave_nothing_to_receive() -> None:
    # one transmitter and one receiver: the NSMS transmitter could only take the receiver's
    # place, and receipts would stop
    with pytest.raises(ValueError, match="would leave no session that receives"):
        Client(
            "127.0.0.1",
            8888,
            "acct",
            "a-long-password",
            bind=["transmitter", "receiver"],
            flash_session=True,
        )
