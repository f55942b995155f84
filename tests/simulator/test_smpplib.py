"""An established third-party client (python-smpplib, test-only) works against the simulator unchanged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import smpplib.client  # type: ignore[import-untyped]
import smpplib.consts  # type: ignore[import-untyped]
import smpplib.exceptions  # type: ignore[import-untyped]
import smpplib.gsm  # type: ignore[import-untyped]

from o2sms.receipts import ReceiptStat, parse
from o2sms.simulator import Simulator
from o2sms.smpp import CommandStatus
from tests.simulator.conftest import PASSWORD
from tests.simulator.esme import HOST


def _session(port: int) -> dict[str, Any]:
    """Blocking smpplib session (run in a thread): bind, send short + long, read receipts."""
    sent: list[Any] = []
    refused = 0
    received: list[Any] = []
    client = smpplib.client.Client(HOST, port, timeout=5, allow_unknown_opt_params=True)
    client.set_message_sent_handler(lambda pdu, **_: sent.append(pdu))
    client.set_message_received_handler(lambda pdu, **_: received.append(pdu))
    client.connect()
    try:
        # smpplib cuts passwords to SMPP's 8 characters (C(9)): the refusal of the long
        # one is the gateway's documented pitfall, so the session uses a short password
        try:
            client.bind_transceiver(system_id="acct", password=PASSWORD)
        except smpplib.exceptions.PDUError as exc:
            refused = exc.args[1]
        client.disconnect()
        client.connect()
        client.bind_transceiver(system_id="small", password="pw")
        client.send_message(
            source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
            source_addr="O2Shop",
            dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
            dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN,
            destination_addr="421900123456",
            short_message=b"Hello from smpplib",
            registered_delivery=True,
        )
        parts, coding, esm_class = smpplib.gsm.make_parts("Ahoj! " * 40)  # 240 chars: 2 parts
        for part in parts:
            client.send_message(
                source_addr_ton=smpplib.consts.SMPP_TON_ALNUM,
                source_addr="O2Shop",
                dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                destination_addr="421900123456",
                short_message=part,
                data_coding=coding,
                esm_class=esm_class,
                registered_delivery=True,
            )
        while len(sent) < 1 + len(parts) or len(received) < 1 + len(parts):
            client.read_once()
        client.unbind()
    finally:
        client.disconnect()
    return {
        "refused": refused,
        "message_ids": [p.message_id.decode() for p in sent],
        "statuses": [p.status for p in sent],
        "receipts": [p.short_message.decode() for p in received],
        "receipted": [p.receipted_message_id.decode().rstrip("\x00") for p in received],
    }


@pytest.mark.asyncio
async def test_smpplib_bind_submit_long_message_and_receipts(smsc: Simulator) -> None:
    assert smsc.port is not None
    port = smsc.port
    result = await asyncio.wait_for(asyncio.to_thread(_session, port), 15)
    assert result["refused"] == CommandStatus.ESME_RINVPASWD
    assert result["statuses"] == [0, 0, 0]
    ids = result["message_ids"]
    assert len(set(ids)) == 3
    assert sorted(result["receipted"]) == sorted(ids)
    assert all(parse(text).stat is ReceiptStat.DELIVRD for text in result["receipts"])
    assert smsc.message(ids[0]).text == "Hello from smpplib"  # type: ignore[union-attr]
    (long_message,) = smsc.long_messages()
    assert long_message.text == "Ahoj! " * 40
    assert long_message.message_ids == tuple(ids[1:])
    await smsc.wait_until(lambda: not smsc.sessions())  # smpplib unbound cleanly
