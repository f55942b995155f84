"""Inbound SMS injection, TLS with the generated certificate, the JSON endpoint, config files."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import pytest

from o2sms.receipts import ReceiptStat
from o2sms.simulator import Account, OutcomeRule, Simulator, load_config, parse_account
from o2sms.smpp import TlvTag
from o2sms.text import Reassembler
from tests.simulator.conftest import ACCOUNTS, PASSWORD
from tests.simulator.esme import HOST, Esme


@pytest.mark.asyncio
async def test_inject_mo_short_and_long(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "rx")
    assert smsc.inject_mo("acct", "421900123456", "O2Shop", "STOP") == 1
    mo = await esme.next_delivery()
    assert (mo.esm_class, mo.source_addr, mo.destination_addr) == (0, "421900123456", "O2Shop")
    assert mo.short_message == b"STOP"
    long_text = "Ďakujem za správu, prídem zajtra o ôsmej. " * 4  # UCS-2, 168 units: 3 parts
    parts = smsc.inject_mo("acct", "421900123456", "O2Shop", long_text)
    assert parts == 3
    reassembler = Reassembler()
    done = None
    for _ in range(parts):
        pdu = await esme.next_delivery()
        assert pdu.esm_class & 0x40
        assert pdu.data_coding == 8
        done = reassembler.feed(pdu, 0.0) or done
    assert done is not None
    assert done.text == long_text
    await smsc.wait_until(lambda: smsc.counters["mo_acknowledged"] == 4)


@pytest.mark.asyncio
async def test_mo_waits_for_a_receiver(smsc: Simulator) -> None:
    assert smsc.port is not None
    tx = await Esme.bound(smsc.port, "tx")
    smsc.inject_mo("acct", "421900123456", "O2Shop", "hello")
    assert smsc.pending_receipts("acct") == 1
    await asyncio.sleep(0.02)
    assert tx.deliveries.empty()
    rx = await Esme.bound(smsc.port, "trx")
    assert (await rx.next_delivery()).short_message == b"hello"


@pytest.mark.asyncio
async def test_inject_mo_unknown_account(smsc: Simulator) -> None:
    with pytest.raises(KeyError):
        smsc.inject_mo("nobody", "1", "2", "x")


@pytest.mark.asyncio
async def test_tls_with_generated_certificate() -> None:
    async with Simulator(accounts=ACCOUNTS, port=None, tls_port=0, receipt_delay=0.0) as smsc:
        assert smsc.port is None
        assert smsc.tls_port is not None
        assert smsc.certificate_pem is not None
        assert smsc.certificate_pem.startswith(b"-----BEGIN CERTIFICATE-----")
        esme = await Esme.bound(smsc.tls_port, "trx", ssl_context=smsc.client_ssl_context())
        resp = await esme.submit(registered_delivery=1)
        receipt = await esme.next_delivery()
        assert receipt.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == resp.message_id
        (info,) = smsc.sessions()
        assert info.tls
        # a client that does not trust the certificate fails the handshake
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                HOST, smsc.tls_port, ssl=ssl.create_default_context(), server_hostname="localhost"
            )


@pytest.mark.asyncio
async def test_tls_with_given_certificate(tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    async with Simulator(
        accounts=ACCOUNTS, tls_port=0, certfile=str(certfile), keyfile=str(keyfile)
    ) as smsc:
        assert smsc.tls_port is not None
        context = ssl.create_default_context()
        ca.configure_trust(context)
        esme = await Esme.bound(smsc.tls_port, "tx", ssl_context=context)
        assert (await esme.submit()).command_status == 0


async def _http(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, object]:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, payload = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


@pytest.mark.asyncio
async def test_http_inspection_and_mo() -> None:
    async with Simulator(accounts=ACCOUNTS, http_port=0, receipt_delay=0.0) as smsc:
        assert smsc.port is not None
        assert smsc.http_port is not None
        esme = await Esme.bound(smsc.port, "trx", system_type="NSMS")
        resp = await esme.submit(short_message=b"Inspect me", registered_delivery=1)
        await esme.next_delivery()
        status, everything = await _http(smsc.http_port, "GET", "/")
        assert status == 200
        assert isinstance(everything, dict)
        (message,) = everything["messages"]
        assert message["message_id"] == resp.message_id
        assert (message["text"], message["flash"], message["system_type"]) == (
            "Inspect me",
            True,
            "NSMS",
        )
        assert message["encoding"] == "gsm7"
        assert everything["counters"]["submit_sm_accepted"] == 1
        status, sessions = await _http(smsc.http_port, "GET", "/sessions")
        assert status == 200
        assert isinstance(sessions, list)
        assert sessions[0]["bind_type"] == "transceiver"
        body = json.dumps(
            {"system_id": "acct", "source_addr": "421900", "destination_addr": "O2", "text": "hi"}
        ).encode()
        status, answer = await _http(smsc.http_port, "POST", "/mo", body)
        assert (status, answer) == (200, {"parts": 1})
        assert (await esme.next_delivery()).short_message == b"hi"
        status, _ = await _http(smsc.http_port, "POST", "/mo", b'{"system_id": "acct"}')
        assert status == 400
        status, _ = await _http(smsc.http_port, "GET", "/nothing")
        assert status == 404
        status, limited = await _http(smsc.http_port, "GET", "/messages?limit=0")
        assert (status, limited) == (200, [])


def test_config_file_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "sim.toml"
    toml.write_text(
        'port = 2775\nreceipt_delay = 0.5\nmessage_id_format = "decimal"\n'
        '[[accounts]]\nsystem_id = "acct"\npassword = "p:w"\nsession_limit = 2\n'
        'system_types = ["", "NSMS"]\n'
        '[[rules]]\nprefix = "4219000"\nstat = "UNDELIV"\nerr = 1\ndelay = 2\n'
    )
    config = load_config(toml)
    assert config.port == 2775
    assert config.accounts == (Account("acct", "p:w", 2, frozenset({"", "NSMS"})),)
    assert config.rules == (OutcomeRule("4219000", ReceiptStat.UNDELIV, 1, 2.0),)
    assert config.message_id_format.value == "decimal"
    js = tmp_path / "sim.json"
    js.write_text(json.dumps({"accounts": [{"system_id": "x", "password": "y"}]}))
    assert load_config(js).accounts == (Account("x", "y"),)
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 1\n")
    with pytest.raises(ValueError, match="colour"):
        load_config(bad)


def test_parse_account() -> None:
    assert parse_account("acct:pass:with:colons") == Account("acct", "pass:with:colons")
    with pytest.raises(ValueError, match="ID:PASSWORD"):
        parse_account("nopassword")
    assert PASSWORD  # the shared fixture password is longer than 8 characters
    assert len(PASSWORD) > 8
