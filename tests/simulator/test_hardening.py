"""Regressions from an audit: ghost TLS sessions, expired receipts holding the queue full, bad
MO addresses, sub-1/s rate limits, unbind under latency, config value types, HTTP headers and
PDUs pipelined after a refused bind. Over real sockets on 127.0.0.1 unless unit-level.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from o2sms.simulator import Account, Simulator, load_config
from o2sms.simulator.config import config_from_mapping
from o2sms.simulator.delivery import Outbound
from o2sms.simulator.faults import TokenBucket
from o2sms.smpp import BindTransceiver, CommandStatus, DeliverSm, Unbind, UnbindResp
from o2sms.smpp.codec import encode
from o2sms.smpp.framer import Framer
from tests.simulator.conftest import ACCOUNTS, PASSWORD
from tests.simulator.esme import HOST, Esme

S = CommandStatus


def _port(port: int | None) -> int:
    assert port is not None
    return port


async def _raw_http(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(request)
    async with asyncio.timeout(3):
        raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    return raw


async def _post_mo(port: int, body: dict[str, str]) -> tuple[int, dict[str, object]]:
    data = json.dumps(body).encode()
    raw = await _raw_http(
        port, b"POST /mo HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(data) + data
    )
    head, _, payload = raw.partition(b"\r\n\r\n")
    answer = json.loads(payload)
    assert isinstance(answer, dict)
    return int(head.split()[1]), answer


# --- 1. a TLS handshake that never completes leaves no session ----------------------------


@pytest.mark.asyncio
async def test_unfinished_tls_handshakes_leave_no_session() -> None:
    async with Simulator(accounts=ACCOUNTS, port=None, tls_port=0, http_port=0) as smsc:
        tls_port = _port(smsc.tls_port)
        for i in range(20):  # a port scan / TCP health check: connect and close, or garbage
            _, writer = await asyncio.open_connection(HOST, tls_port)
            if i % 2:
                writer.write(b"\x00\x00\x00\x10garbage-not-tls")
            writer.close()
            await writer.wait_closed()
        esme = await Esme.bound(tls_port, "trx", ssl_context=smsc.client_ssl_context())
        await asyncio.sleep(0.05)
        assert len(smsc.sessions()) == 1
        assert smsc.counters["connections"] == 1
        raw = await _raw_http(_port(smsc.http_port), b"GET /sessions HTTP/1.1\r\n\r\n")
        assert len(json.loads(raw.partition(b"\r\n\r\n")[2])) == 1
        await esme.close()
        await smsc.wait_until(lambda: not smsc.sessions())


# --- 2. expired receipts do not hold the queue full ---------------------------------------


@pytest.mark.asyncio
async def test_expired_pending_receipts_stop_holding_back_submits() -> None:
    async with Simulator(
        accounts=ACCOUNTS, receipt_delay=0.0, receipt_expiry=0.3, max_pending_receipts=2
    ) as smsc:
        tx = await Esme.bound(_port(smsc.port), "tx")  # nobody ever binds to take receipts
        for _ in range(2):
            assert (await tx.submit(registered_delivery=1)).command_status == 0
        await smsc.wait_until(lambda: smsc.pending_receipts("acct") == 2)
        assert (await tx.submit(registered_delivery=1)).command_status == S.ESME_RMSGQFUL
        await asyncio.sleep(0.4)  # both waiting receipts have expired
        assert (await tx.submit(registered_delivery=1)).command_status == 0
        assert smsc.counters["receipts_dropped"] == 2
        await smsc.wait_until(lambda: smsc.pending_receipts("acct") == 1)


# --- 3. POST /mo checks the addresses; an unencodable deliver_sm never kills a session --------


@pytest.mark.asyncio
async def test_mo_with_bad_addresses_refused_over_http() -> None:
    async with Simulator(accounts=ACCOUNTS, http_port=0) as smsc:
        http_port = _port(smsc.http_port)
        good = {"system_id": "acct", "source_addr": "421900123456", "destination_addr": "O2Shop"}
        for field, bad in (
            ("source_addr", "4" * 30),
            ("source_addr", "4" * 21),
            ("destination_addr", "O2\x00Shop"),
            ("destination_addr", "Obchodík"),
        ):
            status, answer = await _post_mo(http_port, {**good, field: bad, "text": "hi"})
            assert status == 400, (field, bad)
            assert field in str(answer["error"])
        assert smsc.pending_receipts("acct") == 0
        assert smsc.counters["mo_injected"] == 0
        status, _ = await _post_mo(http_port, {**good, "source_addr": "4" * 20, "text": "ok"})
        assert status == 200
        rx = await Esme.bound(_port(smsc.port), "rx")  # the receiver binds and gets it
        assert (await rx.next_delivery()).source_addr == "4" * 20


@pytest.mark.asyncio
async def test_unencodable_queued_deliver_sm_is_dropped_not_fatal(smsc: Simulator) -> None:
    bad = DeliverSm(source_addr="4" * 30, destination_addr="O2Shop", short_message=b"x")
    expires = asyncio.get_running_loop().time() + 60
    smsc._accounts["acct"].pending.append(Outbound(bad, "acct", expires, "mo"))
    smsc.inject_mo("acct", "421900123456", "O2Shop", "after it")
    rx = await Esme.bound(_port(smsc.port), "rx")  # the bind_resp is not lost
    assert (await rx.next_delivery()).short_message == b"after it"
    assert smsc.counters["receipts_dropped"] == 1
    assert smsc.pending_receipts("acct") == 0
    assert len(smsc.sessions()) == 1


# --- 4. a submit rate below 1/s still lets submits through --------------------------------


def test_token_bucket_below_one_per_second() -> None:
    bucket = TokenBucket(0.5, now=0.0)
    assert bucket.take(0.0)
    assert not bucket.take(1.0)  # half a token back
    assert bucket.take(2.0)  # two seconds: a whole one
    assert not bucket.take(2.0)
    closed = TokenBucket(0, now=0.0)
    assert not any(closed.take(float(t)) for t in range(5))  # a rate of 0 lets nothing through


@pytest.mark.asyncio
async def test_submit_rate_below_one_per_second(smsc: Simulator) -> None:
    smsc.faults_for("acct").max_submit_rate = 0.5
    tx = await Esme.bound(_port(smsc.port), "tx")
    assert (await tx.submit()).command_status == 0
    assert (await tx.submit()).command_status == S.ESME_RTHROTTLED


# --- 5. the client's unbind is answered under the latency fault ----------------------------


@pytest.mark.asyncio
async def test_client_unbind_answered_under_latency() -> None:
    async with Simulator(accounts=ACCOUNTS, receipt_delay=0.0, response_timeout=0.1) as smsc:
        smsc.faults.latency = 0.3
        trx = await Esme.bound(_port(smsc.port), "trx")
        trx.auto_ack = False  # unanswered deliver_sm keep the session's timer firing
        await trx.submit(registered_delivery=1)
        await trx.next_delivery()
        resp = await trx.request(Unbind(), timeout=3.0)
        assert isinstance(resp, UnbindResp)
        assert resp.command_status == 0
        await trx.wait_closed()


@pytest.mark.asyncio
async def test_own_unbind_unanswered_aborts_after_response_timeout() -> None:
    async with Simulator(accounts=ACCOUNTS, response_timeout=0.2, inactivity_timeout=None) as smsc:
        esme = await Esme.bound(_port(smsc.port), "trx")
        esme._task.cancel()  # reads nothing more: the simulator's unbind goes unanswered
        (session,) = smsc._sessions.values()
        session.unbind()
        await asyncio.wait_for(session.closed_event.wait(), 3.0)
        assert not smsc.sessions()


# --- 6. config values of the wrong type are refused when loaded ---------------------------


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"receipt_delay": "0.5"}, "receipt_delay"),
        ({"window": True}, "window"),
        ({"window": 6.5}, "window"),
        ({"accept_smpp33": 1}, "accept_smpp33"),
        ({"host": 127}, "host"),
        ({"response_timeout": None}, "response_timeout"),
        ({"faults": {"latency": "0.05"}}, "faults.latency"),
        ({"faults": {"queue_full": True}}, "faults.queue_full"),
        ({"data_codings": [0, "8"]}, "data_codings"),
        (
            {"accounts": [{"system_id": "a", "password": "p", "session_limit": "2"}]},
            "session_limit",
        ),
        (
            {"accounts": [{"system_id": "a", "password": "p", "faults": {"latency": "1"}}]},
            "latency",
        ),
        ({"rules": [{"prefix": "421", "delay": "2"}]}, "delay"),
        ({"rules": [{"prefix": "421", "err": False}]}, "err"),
    ],
)
def test_config_values_of_the_wrong_type_are_refused(data: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        config_from_mapping(data)


def test_config_values_of_the_right_type_are_taken(tmp_path: Path) -> None:
    config = config_from_mapping(
        {"receipt_delay": 1, "port": None, "seed": 3, "faults": {"max_submit_rate": 2}}
    )
    assert config.receipt_delay == 1.0
    assert isinstance(config.receipt_delay, float)
    assert config.port is None
    assert config.faults is not None
    assert config.faults.max_submit_rate == 2.0
    toml = tmp_path / "sim.toml"
    toml.write_text('receipt_delay = "0.5"\n[[accounts]]\nsystem_id = "a"\npassword = "p"\n')
    with pytest.raises(ValueError, match="receipt_delay must be a number"):
        load_config(toml)


# --- 7. a bad Content-Length is answered; PDUs after a refused bind are not handled ---------


@pytest.mark.asyncio
async def test_http_bad_content_length_answered_400() -> None:
    async with Simulator(accounts=ACCOUNTS, http_port=0) as smsc:
        for value in (b"zz", b"-1", b"9" * 5000):
            raw = await _raw_http(
                _port(smsc.http_port),
                b"POST /mo HTTP/1.1\r\nContent-Length: " + value + b"\r\n\r\n",
            )
            assert raw.startswith(b"HTTP/1.1 400 "), (value, raw)


@pytest.mark.asyncio
async def test_binds_pipelined_after_a_refused_bind_are_ignored() -> None:
    async with Simulator(accounts=(Account("acct", PASSWORD),)) as smsc:
        reader, writer = await asyncio.open_connection(HOST, _port(smsc.port))
        writer.write(
            b"".join(
                encode(BindTransceiver(sequence_number=i, system_id="acct", password=password))
                for i, password in enumerate(("guess1", "guess2", PASSWORD), start=1)
            )
        )
        async with asyncio.timeout(3):
            raw = await reader.read()  # to EOF: the refused bind closes the connection
        writer.close()
        framer = Framer()
        framer.feed(raw)
        answers = list(framer)
        # The binds behind the first arrive before its bind_resp: the core refuses them
        # ESME_RALYBND without trying their passwords, then the first is refused and closes.
        assert [(a.sequence_number, a.command_status) for a in answers] == [
            (2, S.ESME_RALYBND),
            (3, S.ESME_RALYBND),
            (1, S.ESME_RINVPASWD),
        ]
        assert (smsc.counters["binds"], smsc.counters["binds_refused"]) == (0, 3)


def test_account_repr_leaves_out_the_password() -> None:
    """An account logged or shown in a traceback never shows its password."""
    account = Account("acct", "s3cret-pass", session_limit=2)
    assert "s3cret-pass" not in repr(account)
    assert "acct" in repr(account)
    assert account.password == "s3cret-pass"
