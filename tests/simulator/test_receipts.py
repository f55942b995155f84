"""Delivery receipts: format and TLVs, outcome rules, round robin, queueing, resending, schedule."""

from __future__ import annotations

import asyncio
import calendar
import struct
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms import receipts
from o2sms.receipts import ReceiptStat, from_deliver_sm
from o2sms.simulator import Account, OutcomeRule, Simulator, StoredMessage
from o2sms.simulator.config import config_from_mapping
from o2sms.simulator.delivery import ReceiptSubject, build_receipt, receipt
from o2sms.simulator.o2_profile import RECEIPT_STAT_TEXT
from o2sms.smpp import (
    BindTransceiver,
    CancelSm,
    CommandStatus,
    DeliverSm,
    DeliverSmResp,
    Pdu,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    TlvTag,
    Unbind,
    encode,
)
from o2sms.smpp.errors import PduEncodeError
from o2sms.smpp.framer import Framer
from o2sms.smpp.times import absolute_time
from o2sms.text import gsm0338
from tests.simulator.conftest import ACCOUNTS, PASSWORD
from tests.simulator.esme import Esme


@pytest.mark.asyncio
async def test_receipt_format_and_tlvs(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    resp = await esme.submit(registered_delivery=1, short_message=b"Your parcel arrives today")
    message_id = resp.message_id
    receipt = await esme.next_delivery()
    assert receipt.esm_class == 0x04
    assert (receipt.source_addr, receipt.destination_addr) == ("421900123456", "O2Shop")
    assert receipt.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == message_id
    assert receipt.get_tlv(TlvTag.MESSAGE_STATE) == 2
    text = receipt.short_message.decode()
    assert text.startswith(f"id:{message_id} sub:001 dlvrd:001 submit date:")
    assert " stat:DELIVRD err:000 text:Your parcel arrives " in text + " "
    parsed = from_deliver_sm(receipt)
    assert (parsed.id, parsed.stat, parsed.err_code) == (message_id, ReceiptStat.DELIVRD, 0)
    stored = smsc.message(message_id)
    assert stored is not None
    assert (stored.stat, stored.state.name) == ("DELIVRD", "DELIVERED")
    await smsc.wait_until(lambda: smsc.counters["receipts_acknowledged"] == 1)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("source", "dest"),
    [
        ((5, 0, "O2Shop"), (1, 1, "421900123456")),  # alphanumeric sender, international
        ((3, 9, "4444"), (2, 8, "0900123456")),  # short code (private), national (national)
        ((0, 0, "4444"), (0, 0, "421900123456")),  # unknown, unknown
    ],
)
async def test_receipt_addresses_mirror_the_submit_sm_ton_and_npi(
    smsc: Simulator, source: tuple[int, int, str], dest: tuple[int, int, str]
) -> None:
    """The receipt's source is the message's destination, its destination the message's
    source, each with the TON and NPI the submit_sm gave it."""
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    await esme.submit(
        registered_delivery=1,
        source_addr_ton=source[0],
        source_addr_npi=source[1],
        source_addr=source[2],
        dest_addr_ton=dest[0],
        dest_addr_npi=dest[1],
        destination_addr=dest[2],
    )
    receipt = await esme.next_delivery()
    assert receipt.esm_class == 0x04
    assert (receipt.source_addr_ton, receipt.source_addr_npi, receipt.source_addr) == dest
    assert (receipt.dest_addr_ton, receipt.dest_addr_npi, receipt.destination_addr) == source


@pytest.mark.asyncio
async def test_no_receipt_without_registered_delivery(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    message_id = (await esme.submit(registered_delivery=0)).message_id
    await smsc.wait_until(lambda: smsc.message(message_id).stat is not None)  # type: ignore[union-attr]
    await asyncio.sleep(0.03)
    assert esme.deliveries.empty()
    assert smsc.counters["receipts_sent"] == 0


@pytest.mark.asyncio
async def test_no_receipt_on_a_route_without_delivery_reports() -> None:
    # Seed: "You'll receive delivery reports only if your route provides delivery
    # reporting". The route is the bind's system_type (r:<route_code>).
    account = Account("acct", PASSWORD, routes_without_receipts=frozenset({"r:noreports"}))
    async with Simulator(accounts=(account,), receipt_delay=0.0) as smsc:
        assert smsc.port is not None
        rx = await Esme.bound(smsc.port, "rx")
        silent = await Esme.bound(smsc.port, "tx", system_type="r:noreports")
        reporting = await Esme.bound(smsc.port, "tx", system_type="r:reports")
        quiet = (await silent.submit(registered_delivery=1)).message_id
        heard = (await reporting.submit(registered_delivery=1)).message_id
        receipt = await rx.next_delivery()
        assert receipt.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == heard
        stored = smsc.message(quiet)
        assert stored is not None
        assert stored.stat == "DELIVRD"  # delivered all the same, before the other's receipt
        assert rx.deliveries.empty()
        assert smsc.counters["receipts_sent"] == 1
        assert smsc.pending_receipts("acct") == 0


def test_routes_without_receipts_from_config() -> None:
    config = config_from_mapping(
        {"accounts": [{"system_id": "a", "password": "p", "routes_without_receipts": ["", "r:1"]}]}
    )
    assert config.accounts[0].routes_without_receipts == frozenset({"", "r:1"})


@pytest.mark.asyncio
@pytest.mark.parametrize("stat", list(ReceiptStat))
async def test_rules_give_every_stat(stat: ReceiptStat) -> None:
    rules = (
        OutcomeRule("4219001", stat, err=1 if stat is not ReceiptStat.DELIVRD else 0),
        OutcomeRule("", ReceiptStat.DELIVRD),
    )
    async with Simulator(accounts=ACCOUNTS, rules=rules, receipt_delay=0.01) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        await esme.submit(registered_delivery=1, destination_addr="4219001999")
        delivery = await esme.next_delivery()
        receipt = from_deliver_sm(delivery)
        assert receipt.stat is stat
        assert receipt.message_state == stat.message_state
        # The gateway's own spellings (seed: "DELIVERY UNKNOWN", "REJECTED").
        spelled = {ReceiptStat.REJECTD: "REJECTED", ReceiptStat.UNKNOWN: "DELIVERY UNKNOWN"}
        assert f"stat:{spelled.get(stat, stat.value)} err:".encode() in delivery.short_message
        await esme.submit(registered_delivery=1, destination_addr="4219002999")
        assert from_deliver_sm(await esme.next_delivery()).stat is ReceiptStat.DELIVRD


@pytest.mark.asyncio
async def test_undeliv_err_and_network_error_code() -> None:
    rules = (OutcomeRule("42190000", ReceiptStat.UNDELIV, err=1, delay=0.0),)
    async with Simulator(accounts=ACCOUNTS, rules=rules, receipt_delay=5) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        await esme.submit(registered_delivery=1, destination_addr="421900001")
        pdu = await esme.next_delivery(1.0)  # the rule's own delay, not the 5 s default
        receipt = from_deliver_sm(pdu)
        assert (receipt.stat, receipt.err) == (ReceiptStat.UNDELIV, "001")
        assert pdu.get_tlv(TlvTag.NETWORK_ERROR_CODE) == b"\x03\x00\x01"


@pytest.mark.asyncio
async def test_registered_delivery_2_reports_failures_only() -> None:
    rules = (OutcomeRule("4219000", ReceiptStat.UNDELIV, err=1),)
    async with Simulator(accounts=ACCOUNTS, rules=rules, receipt_delay=0.01) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        await esme.submit(registered_delivery=2, destination_addr="421911111")
        failed = (
            await esme.submit(registered_delivery=2, destination_addr="4219000111")
        ).message_id
        receipt = await esme.next_delivery()
        assert receipt.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == failed
        await asyncio.sleep(0.03)
        assert esme.deliveries.empty()


@pytest.mark.asyncio
async def test_round_robin_over_receiving_sessions(smsc: Simulator) -> None:
    assert smsc.port is not None
    tx = await Esme.bound(smsc.port, "tx")
    receivers = [await Esme.bound(smsc.port, kind) for kind in ("rx", "trx", "rx")]
    ids = [(await tx.submit(registered_delivery=1)).message_id for _ in range(9)]
    await smsc.wait_until(lambda: smsc.counters["receipts_acknowledged"] == 9)
    counts = [r.deliveries.qsize() for r in receivers]
    assert counts == [3, 3, 3]  # "sent equally over all of your currently available sessions"
    got = set()
    for r in receivers:
        while not r.deliveries.empty():
            got.add(r.deliveries.get_nowait().get_tlv(TlvTag.RECEIPTED_MESSAGE_ID))
    assert got == set(ids)
    assert tx.deliveries.empty()  # never on a transmitter


@pytest.mark.asyncio
async def test_receipts_wait_while_no_receiver_is_bound(smsc: Simulator) -> None:
    assert smsc.port is not None
    tx = await Esme.bound(smsc.port, "tx")
    ids = [(await tx.submit(registered_delivery=1)).message_id for _ in range(3)]
    await smsc.wait_until(lambda: smsc.pending_receipts("acct") == 3)
    rx = await Esme.bound(smsc.port, "rx")
    got = [(await rx.next_delivery()).get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) for _ in ids]
    assert got == ids
    assert smsc.pending_receipts("acct") == 0


@pytest.mark.asyncio
async def test_waiting_receipts_expire() -> None:
    async with Simulator(accounts=ACCOUNTS, receipt_delay=0.0, receipt_expiry=0.05) as smsc:
        assert smsc.port is not None
        tx = await Esme.bound(smsc.port, "tx")
        await tx.submit(registered_delivery=1)
        await smsc.wait_until(lambda: smsc.pending_receipts("acct") == 1)
        await asyncio.sleep(0.08)
        rx = await Esme.bound(smsc.port, "rx")
        await smsc.wait_until(lambda: smsc.counters["receipts_dropped"] == 1)
        assert rx.deliveries.empty()


@pytest.mark.asyncio
async def test_unanswered_receipts_stop_being_resent_when_they_expire() -> None:
    async with Simulator(
        accounts=ACCOUNTS, receipt_delay=0.0, receipt_expiry=0.3, response_timeout=0.1
    ) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        esme.auto_ack = False  # never answers its deliver_sm
        await esme.submit(registered_delivery=1)
        await smsc.wait_until(lambda: smsc.counters["receipts_dropped"] == 1, timeout=3.0)
        resent = smsc.counters["receipts_resent"]
        await asyncio.sleep(0.4)
        assert smsc.counters["receipts_resent"] == resent  # no copies after it expired
        assert 1 <= resent <= 4


@pytest.mark.asyncio
async def test_pending_receipts_hold_back_submits_instead_of_being_dropped() -> None:
    async with Simulator(accounts=ACCOUNTS, receipt_delay=0.0, max_pending_receipts=2) as smsc:
        assert smsc.port is not None
        tx = await Esme.bound(smsc.port, "tx")  # nobody takes receipts yet
        ids = [(await tx.submit(registered_delivery=1)).message_id for _ in range(2)]
        await smsc.wait_until(lambda: smsc.pending_receipts("acct") == 2)
        refused = await tx.submit(registered_delivery=1)
        assert refused.command_status == CommandStatus.ESME_RMSGQFUL
        assert smsc.counters["receipts_dropped"] == 0
        rx = await Esme.bound(smsc.port, "rx")
        got = [(await rx.next_delivery()).get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) for _ in range(2)]
        assert got == ids  # every receipt kept, in order
        await smsc.wait_until(lambda: smsc.pending_receipts("acct") == 0)
        assert (await tx.submit(registered_delivery=1)).command_status == 0  # room again


@pytest.mark.asyncio
async def test_receipts_already_scheduled_are_dropped_only_at_twice_the_bound() -> None:
    async with Simulator(accounts=ACCOUNTS, receipt_delay=0.3, max_pending_receipts=2) as smsc:
        assert smsc.port is not None
        tx = await Esme.bound(smsc.port, "tx")
        # Accepted while nothing is pending yet: their receipts all fall due later.
        ids = [(await tx.submit(registered_delivery=1)).message_id for _ in range(6)]
        await smsc.wait_until(lambda: smsc.counters["receipts_dropped"] == 2)
        assert smsc.pending_receipts("acct") == 4
        rx = await Esme.bound(smsc.port, "rx")
        got = [(await rx.next_delivery()).get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) for _ in range(4)]
        assert got == ids[2:]  # the oldest two went, as a last bound on memory


@pytest.mark.asyncio
async def test_unacknowledged_receipt_resent_after_connection_loss(smsc: Simulator) -> None:
    assert smsc.port is not None
    first = await Esme.bound(smsc.port, "trx")
    first.auto_ack = False
    message_id = (await first.submit(registered_delivery=1)).message_id
    lost = await first.next_delivery()
    assert lost.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == message_id
    await first.close()  # dropped without deliver_sm_resp
    await smsc.wait_until(lambda: smsc.pending_receipts("acct") == 1)
    second = await Esme.bound(smsc.port, "rx")
    again = await second.next_delivery()
    assert again.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == message_id
    assert again.short_message == lost.short_message
    assert smsc.counters["receipts_resent"] == 1


@pytest.mark.asyncio
async def test_receipt_resent_to_other_session_after_response_timeout(smsc: Simulator) -> None:
    assert smsc.port is not None
    silent = await Esme.bound(smsc.port, "trx")
    silent.auto_ack = False
    message_id = (await silent.submit(registered_delivery=1)).message_id
    await silent.next_delivery()
    other = await Esme.bound(smsc.port, "rx")
    receipt = await other.next_delivery(3.0)  # after response_timeout (1 s in the fixture)
    assert receipt.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == message_id


@pytest.mark.asyncio
async def test_temporary_error_retried_permanent_error_dropped() -> None:
    async with Simulator(accounts=ACCOUNTS, receipt_delay=0.0, receipt_retry_delay=0.02) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        esme.auto_ack = False
        message_id = (await esme.submit(registered_delivery=1)).message_id
        first = await esme.next_delivery()
        esme.conn.send(first.response(command_status=CommandStatus.ESME_RX_T_APPN), 0.0)
        esme._flush()
        second = await esme.next_delivery()
        assert second.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == message_id
        esme.conn.send(second.response(command_status=CommandStatus.ESME_RX_P_APPN), 0.0)
        esme._flush()
        await smsc.wait_until(lambda: smsc.counters["receipts_dropped"] == 1)
        await asyncio.sleep(0.05)
        assert esme.deliveries.empty()


@pytest.mark.asyncio
async def test_smsc_requests_numbered_one_after_another() -> None:
    """The SMSC's requests take sequence_numbers 1, 2, 3... in the order they are sent:
    receipts, a receipt resent after an error, an inbound SMS, and at shutdown its unbind."""
    async with Simulator(accounts=ACCOUNTS, receipt_delay=0.0, receipt_retry_delay=0.02) as smsc:
        assert smsc.port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", smsc.port)
        framer = Framer()

        async def read() -> Pdu:
            while True:
                for pdu in framer:
                    return pdu
                data = await asyncio.wait_for(reader.read(65536), 3.0)
                assert data, "connection closed"
                framer.feed(data)

        writer.write(
            encode(BindTransceiver(sequence_number=1, system_id="acct", password=PASSWORD))
        )
        assert (await read()).command_status == 0
        for seq in (2, 3):
            writer.write(
                encode(
                    SubmitSm(
                        sequence_number=seq,
                        source_addr="O2Shop",
                        destination_addr="421900123456",
                        registered_delivery=1,
                        short_message=b"Hello",
                    )
                )
            )
        seen: list[tuple[str, int]] = []
        while len(seen) < 5:
            pdu = await read()
            if isinstance(pdu, DeliverSm):
                kind = "receipt" if pdu.esm_class == 0x04 else "mo"
                seen.append((kind, pdu.sequence_number))
                first = pdu.sequence_number == 1
                status = CommandStatus.ESME_RX_T_APPN if first else 0
                writer.write(encode(pdu.response(command_status=status)))
            elif isinstance(pdu, SubmitSmResp):
                seen.append(("submit_sm_resp", pdu.sequence_number))
        assert sorted(seen[:4]) == [
            ("receipt", 1),
            ("receipt", 2),
            ("submit_sm_resp", 2),
            ("submit_sm_resp", 3),
        ]
        assert seen[4:] == [("receipt", 3)]  # the first one again, numbered anew
        smsc.inject_mo("acct", "421900123456", "O2Shop", "Hi")
        assert await read() == DeliverSm(
            sequence_number=4,
            source_addr_ton=1,
            source_addr_npi=1,
            source_addr="421900123456",
            destination_addr="O2Shop",
            short_message=b"Hi",
        )
        writer.write(encode(DeliverSmResp(sequence_number=4)))
        await smsc.wait_until(lambda: smsc.counters["mo_acknowledged"] == 1)
        stopping = asyncio.create_task(smsc.stop())
        unbind = await read()
        assert isinstance(unbind, Unbind)
        assert unbind.sequence_number == 5
        writer.write(encode(unbind.response()))
        await stopping
        writer.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "body",
    [b"abc", b"ab\x80c"],  # message_id without its NUL: a status-0 response's one fatal flaw
    ids=["unterminated-message-id", "unterminated-high-octet"],
)
async def test_receipt_answered_undecodably_is_resent_after_retry_delay(body: bytes) -> None:
    """An undecodable deliver_sm_resp neither acknowledges its receipt nor strands it."""
    async with Simulator(
        accounts=ACCOUNTS, receipt_delay=0.0, receipt_retry_delay=0.05, response_timeout=30.0
    ) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        esme.auto_ack = False
        message_id = (await esme.submit(registered_delivery=1)).message_id
        first = await esme.next_delivery()
        header = struct.pack(">IIII", 16 + len(body), 0x80000005, 0, first.sequence_number)
        esme.write_raw(header + body)
        # long before response_timeout (30 s): the window slot is not held for ever
        again = await esme.next_delivery(2.0)
        assert again.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == message_id
        assert again.short_message == first.short_message
        assert again.sequence_number != first.sequence_number
        assert (smsc.counters["receipts_resent"], smsc.counters["receipts_acknowledged"]) == (1, 0)
        esme.conn.send(again.response(), 0.0)
        esme._flush()
        await smsc.wait_until(lambda: smsc.counters["receipts_acknowledged"] == 1)
        assert [s.outstanding_deliver_sm for s in smsc.sessions()] == [0]


@pytest.mark.asyncio
async def test_receipt_answered_with_a_broken_tlv_section_is_acknowledged() -> None:
    """Octets after a deliver_sm_resp's message_id that are no TLV are read past: status 0
    acknowledged the receipt, which is not sent again."""
    async with Simulator(
        accounts=ACCOUNTS, receipt_delay=0.0, receipt_retry_delay=0.05, response_timeout=30.0
    ) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        esme.auto_ack = False
        await esme.submit(registered_delivery=1)
        first = await esme.next_delivery()
        body = b"\x00garbage!"  # message_id "", then a "TLV" declaring 0x7262 octets
        header = struct.pack(">IIII", 16 + len(body), 0x80000005, 0, first.sequence_number)
        esme.write_raw(header + body)
        await smsc.wait_until(lambda: smsc.counters["receipts_acknowledged"] == 1)
        assert smsc.counters["receipts_resent"] == 0
        assert [s.outstanding_deliver_sm for s in smsc.sessions()] == [0]


def _done_date(pdu: DeliverSm) -> datetime:
    receipt = from_deliver_sm(pdu)
    assert receipt.done_date is not None
    return receipt.done_date


@pytest.mark.asyncio
async def test_relative_schedule_delays_receipt(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    loop = asyncio.get_running_loop()
    started = loop.time()
    resp = await esme.submit(registered_delivery=1, schedule_delivery_time="000000000001000R")
    stored = smsc.message(resp.message_id)
    assert stored is not None
    assert stored.scheduled_for is not None
    assert stored.scheduled_for - stored.submitted_at == timedelta(seconds=1)
    receipt = await esme.next_delivery(3.0)
    assert loop.time() - started >= 1.0
    assert from_deliver_sm(receipt).stat is ReceiptStat.DELIVRD


@pytest.mark.asyncio
async def test_the_seeds_own_relative_schedule_example_is_taken(smsc: Simulator) -> None:
    # Seed: "070605040302100R" - "delivered in 7 years, 6 months, 5 days, 4 hours, 3 minutes,
    # 2 seconds and 1 tenth of second from now" (a tenths digit SMPP 3.4 would have 0).
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    resp = await esme.submit(registered_delivery=1, schedule_delivery_time="070605040302100R")
    assert resp.command_status == 0
    stored = smsc.message(resp.message_id)
    assert stored is not None
    assert stored.scheduled_for is not None
    submitted = stored.submitted_at
    month = submitted.month + 6
    day = submitted.replace(
        year=submitted.year + 7 + (month - 1) // 12, month=(month - 1) % 12 + 1, day=1
    )
    # the calendar part (the day clamped to the month's length), then the fixed part
    last = calendar.monthrange(day.year, day.month)[1]
    shifted = day.replace(day=min(submitted.day, last))
    fixed = timedelta(days=5, hours=4, minutes=3, seconds=2, milliseconds=100)
    assert stored.scheduled_for == shifted + fixed
    assert smsc.scheduled == 1  # its outcome waits for its time


@pytest.mark.asyncio
async def test_absolute_schedule_and_validity_expiring_first(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    at = datetime.now(UTC) + timedelta(seconds=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await esme.submit(registered_delivery=1, schedule_delivery_time=absolute_time(at))
    receipt = await esme.next_delivery(3.0)
    assert loop.time() - started >= 0.15  # tenths of seconds are the finest SMPP unit
    assert from_deliver_sm(receipt).stat is ReceiptStat.DELIVRD
    # validity ends (in 1 s) before the rule's delay (5 s) -> EXPIRED at the validity time
    smsc.rules = (OutcomeRule("", ReceiptStat.DELIVRD, delay=5.0),)
    resp = await esme.submit(registered_delivery=1, validity_period="000000000001000R")
    receipt = await esme.next_delivery(3.0)
    parsed = from_deliver_sm(receipt)
    assert parsed.stat is ReceiptStat.EXPIRED
    assert receipt.get_tlv(TlvTag.MESSAGE_STATE) == 3
    stored = smsc.message(resp.message_id)
    assert stored is not None
    assert stored.done_at is not None
    assert stored.done_at >= stored.submitted_at + timedelta(seconds=0.9)


def _minute(when: datetime) -> datetime:
    """``when`` as a receipt writes it: naive (the zone is not written), to the minute."""
    return when.replace(tzinfo=None, second=0, microsecond=0)


async def _check_scheduled_receipt(smsc: Simulator, esme: Esme, message_id: str) -> None:
    """The receipt comes after the schedule, and its done date is not before it.

    The receipt's dates have minute precision (YYMMDDhhmm), so its done date is compared with
    the schedule cut to the minute; the stored done_at and the wall clock at arrival are
    compared exactly.
    """
    stored = smsc.message(message_id)
    assert stored is not None
    scheduled = stored.scheduled_for
    assert scheduled is not None
    receipt = await esme.next_delivery(4.0)
    arrived = datetime.now(UTC)
    assert receipt.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == message_id
    assert arrived >= scheduled  # sent after the schedule
    assert _done_date(receipt) >= _minute(scheduled)
    assert _done_date(receipt) >= _minute(stored.submitted_at)
    assert stored.done_at is not None
    assert stored.done_at >= scheduled
    assert _done_date(receipt) == _minute(stored.done_at)


@pytest.mark.asyncio
async def test_relative_schedule_receipt_done_date_not_before_schedule(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    resp = await esme.submit(registered_delivery=1, schedule_delivery_time="000000000001200R")
    stored = smsc.message(resp.message_id)
    assert stored is not None
    assert stored.scheduled_for is not None
    assert stored.scheduled_for - stored.submitted_at == timedelta(seconds=1.2)
    await _check_scheduled_receipt(smsc, esme, resp.message_id)


@pytest.mark.asyncio
async def test_absolute_schedule_receipt_done_date_not_before_schedule(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    at = datetime.now(UTC) + timedelta(seconds=0.8)
    resp = await esme.submit(registered_delivery=1, schedule_delivery_time=absolute_time(at))
    stored = smsc.message(resp.message_id)
    assert stored is not None
    assert stored.scheduled_for is not None
    assert abs(stored.scheduled_for - at) < timedelta(seconds=0.1)  # tenths on the wire
    await _check_scheduled_receipt(smsc, esme, resp.message_id)


class _LaggingClock(datetime):
    """The simulator's wall clock, set back by ``lag`` (an NTP step while a message waits)."""

    lag = timedelta(0)

    @classmethod
    def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
        return datetime.now(UTC) - cls.lag


@pytest.mark.asyncio
async def test_receipt_dates_are_utc_for_a_schedule_given_at_another_offset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A schedule written at UTC+08:00 is an instant: the receipt's dates are UTC ones.

    The wall clock is set back after the submit_sm, so the outcome comes due (on the loop's
    monotonic clock) while the wall clock is still before the schedule: the done date is
    then the schedule itself, which must be written as UTC like every other receipt date.
    """
    from o2sms.simulator import server

    monkeypatch.setattr(server, "datetime", _LaggingClock)
    monkeypatch.setattr(_LaggingClock, "lag", timedelta(0))
    async with Simulator(accounts=ACCOUNTS, receipt_delay=0.0) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        at = (datetime.now(UTC) + timedelta(seconds=0.5)).astimezone(timezone(timedelta(hours=8)))
        resp = await esme.submit(registered_delivery=1, schedule_delivery_time=absolute_time(at))
        monkeypatch.setattr(_LaggingClock, "lag", timedelta(minutes=30))
        receipt = from_deliver_sm(await esme.next_delivery(3.0))
        stored = smsc.message(resp.message_id)
    assert stored is not None
    assert stored.done_at is not None
    assert receipt.done_date == _minute(at.astimezone(UTC))
    assert stored.done_at.utcoffset() == timedelta(0)
    assert receipt.submit_date == _minute(stored.submitted_at)


@pytest.mark.asyncio
async def test_receipt_of_a_message_the_store_forgot() -> None:
    """A pending outcome keeps only the receipt's facts: the store may forget the message."""
    async with Simulator(accounts=ACCOUNTS, receipt_delay=0.2, store_size=1) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        first = await esme.submit(registered_delivery=1, short_message=b"First of two messages")
        second = await esme.submit(registered_delivery=1, destination_addr="421900999888")
        assert smsc.message(first.message_id) is None  # forgotten, its outcome still pending
        receipts = [await esme.next_delivery() for _ in range(2)]
        by_id = {r.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID): r for r in receipts}
        forgotten = by_id[first.message_id]
        assert (forgotten.source_addr, forgotten.destination_addr) == ("421900123456", "O2Shop")
        parsed = from_deliver_sm(forgotten)
        assert (parsed.id, parsed.stat) == (first.message_id, ReceiptStat.DELIVRD)
        assert forgotten.short_message.endswith(b" text:First of two message")
        kept = smsc.message(second.message_id)
        assert kept is not None
        assert kept.stat == "DELIVRD"


@pytest.mark.asyncio
async def test_cancel_holds_after_the_store_forgot_the_message() -> None:
    async with Simulator(
        accounts=ACCOUNTS, receipt_delay=0.2, store_size=1, accept_query_cancel=True
    ) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        cancelled = (await esme.submit(registered_delivery=1)).message_id
        cancel = CancelSm(message_id=cancelled, source_addr_ton=5, source_addr="O2Shop")
        answer = await esme.request(cancel)
        assert answer.command_status == 0
        kept = (await esme.submit(registered_delivery=1)).message_id  # forgets the first
        assert smsc.message(cancelled) is None
        deleted = await esme.next_delivery()  # the cancel's outcome, not its DELIVRD
        assert deleted.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == cancelled
        assert deleted.get_tlv(TlvTag.MESSAGE_STATE) == 4  # DELETED
        receipt = await esme.next_delivery()
        assert receipt.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == kept
        await smsc.wait_until(lambda: smsc.scheduled == 0)
        await asyncio.sleep(0.02)
        assert esme.deliveries.empty()


def test_receipt_subject_keeps_only_what_the_receipt_needs() -> None:
    """The receipt built from the compact subject is the one built from the whole message."""
    now = datetime.now(UTC)
    message = StoredMessage(
        "0123456789abcdef", "acct", "", 1, "O2Shop", "421900123456", 0, "gsm7",
        "A text longer than the receipt keeps", False, "single", None, 1, 1, 1,
        "", "", now + timedelta(minutes=5), None, now,
    )  # fmt: skip
    subject = ReceiptSubject.of(message)
    assert subject.text == message.text[:20]
    assert subject.scheduled_for == message.scheduled_for
    done = now + timedelta(minutes=6)
    assert build_receipt(subject, ReceiptStat.DELIVRD, 0, done) == build_receipt(
        message, ReceiptStat.DELIVRD, 0, done
    )


@pytest.mark.parametrize("stat", list(ReceiptStat))
@pytest.mark.parametrize("err", [0, 1, 0x1_0005])
def test_receipt_pdu_field_by_field(stat: ReceiptStat, err: int) -> None:
    """The receipt is the deliver_sm its fields say, octet for octet (TLVs are shared)."""
    now = datetime(2026, 11, 26, 9, 15, 42, tzinfo=UTC)
    # source TON 5 / NPI 0, destination TON 2 / NPI 8: the receipt swaps them with the addresses
    subject = ReceiptSubject(
        "0123456789abcdef", "acct", "O2Shop", "421900123456", now, "Café at 5?", None, 5, 0, 2, 8
    )
    done = now + timedelta(minutes=1)
    text = (
        f"id:0123456789abcdef sub:001 dlvrd:{int(stat is ReceiptStat.DELIVRD):03d}"
        f" submit date:2611260915 done date:2611260916 stat:{RECEIPT_STAT_TEXT.get(stat, stat)}"
        f" err:{err:03d} text:Caf? at 5?"
    )
    tlvs = [
        Tlv(TlvTag.RECEIPTED_MESSAGE_ID, "0123456789abcdef"),
        Tlv(TlvTag.MESSAGE_STATE, int(stat.message_state)),
    ]
    if err:
        tlvs.append(Tlv(TlvTag.NETWORK_ERROR_CODE, bytes((3,)) + (err & 0xFFFF).to_bytes(2)))
    expected = DeliverSm(
        source_addr_ton=2,
        source_addr_npi=8,
        source_addr="421900123456",
        dest_addr_ton=5,
        dest_addr_npi=0,
        destination_addr="O2Shop",
        esm_class=0x04,
        short_message=text.encode(),
        tlvs=tuple(tlvs),
    )
    receipt = build_receipt(subject, stat, err, done)
    assert receipt == expected
    assert encode(receipt) == encode(expected)
    again = build_receipt(subject, stat, err, done, esm_class=0x20)
    assert encode(again) == encode(replace(expected, esm_class=0x20))


_ADDRESS_CHARACTERS = st.sampled_from("0123456789+ O2ab\0é")


@given(
    source_addr=st.text(_ADDRESS_CHARACTERS, max_size=23),
    destination_addr=st.text(_ADDRESS_CHARACTERS, max_size=23),
    message_id=st.one_of(
        st.sampled_from(["0123456789abcdef", "1" * 64, "1" * 65]),
        st.text(st.sampled_from("0123456789abcdef-"), min_size=1, max_size=70),
    ),
    stat=st.sampled_from(list(ReceiptStat)),
    err=st.sampled_from([0, 1, 0x1_0005]),
    esm_class=st.sampled_from([None, 0x20]),
    sequence_number=st.integers(1, 0x7FFFFFFF),
    ton_npi=st.tuples(*[st.integers(0, 0xFF)] * 4),
)
def test_receipt_wire_bytes_are_the_codecs(  # noqa: PLR0917 - hypothesis's arguments
    source_addr: str,
    destination_addr: str,
    message_id: str,
    stat: ReceiptStat,
    err: int,
    esm_class: int | None,
    sequence_number: int,
    ton_npi: tuple[int, int, int, int],
) -> None:
    """Receipt.encode writes what the codec's encoder makes of the receipt's deliver_sm, with
    and without TLVs; it leaves to the codec (None, the codec then encodes or refuses it)
    only the receipts whose addresses or id do not fit or are not plain ASCII."""
    now = datetime(2026, 11, 26, 9, 15, 42, tzinfo=UTC)
    subject = ReceiptSubject(
        message_id, "acct", source_addr, destination_addr, now, "Hello", None, *ton_npi
    )
    made = receipt(subject, stat, err, now, esm_class=esm_class)
    plain = (
        len(source_addr) <= 20
        and len(destination_addr) <= 20
        and len(message_id) <= 64
        and (source_addr + destination_addr + message_id).isascii()
        and "\0" not in source_addr + destination_addr + message_id
    )
    for tlvs in (True, False):
        written = made.encode(sequence_number, tlvs=tlvs)
        deliver_sm = made.deliver_sm(sequence_number, tlvs=tlvs)
        assert (written is not None) is plain
        if written is not None:
            assert written == encode(deliver_sm)


@pytest.mark.parametrize("ton_npi", [(256, 0, 1, 1), (5, 0, 1, -1)])
def test_receipt_with_a_ton_or_npi_over_an_octet_is_left_to_the_codec(
    ton_npi: tuple[int, int, int, int],
) -> None:
    """A TON or NPI that is no octet gets no prepared bytes: the codec refuses the receipt."""
    now = datetime(2026, 11, 26, 9, 15, 42, tzinfo=UTC)
    subject = ReceiptSubject(
        "0123456789abcdef", "acct", "O2Shop", "421900", now, "Hi", None, *ton_npi
    )
    made = receipt(subject, ReceiptStat.DELIVRD, 0, now)
    assert made.encode(1) is None
    assert (made.dest_addr_ton, made.dest_addr_npi) == ton_npi[:2]  # the message's source
    with pytest.raises(PduEncodeError):
        encode(made.deliver_sm(1))


def test_receipt_text_is_the_receipts_format_of_its_facts_every_time() -> None:
    """build_receipt keeps the part of a receipt's text after its id for the next receipts
    with the same dates and text: each text is still exactly what receipts.format writes,
    whatever the id, the stat, the err or the dates' zones (an instant equal in another zone
    writes other wall-clock fields)."""
    submitted = datetime(2026, 11, 26, 9, 15, 42, tzinfo=UTC)
    cet = timezone(timedelta(hours=1))
    ids = ["0123456789abcdef", "288230376293190992", str(uuid.UUID(int=7, version=4)), "ab cd"]
    cases = [
        (submitted, submitted + timedelta(minutes=1)),
        (submitted.astimezone(cet), submitted + timedelta(minutes=1)),
        (submitted, (submitted + timedelta(minutes=1)).astimezone(cet)),
        (submitted.replace(tzinfo=None), submitted.replace(tzinfo=None)),
    ]
    for _ in range(2):  # the second round finds what the first one kept
        for message_id in ids:
            for at, done in cases:
                for text in ("Café at 5?", "Your parcel arrives today", ""):
                    for stat, err in ((ReceiptStat.DELIVRD, 0), (ReceiptStat.UNDELIV, 5)):
                        subject = ReceiptSubject(
                            message_id, "acct", "O2Shop", "421900123456", at, text[:20], None,
                            5, 0, 1, 1,
                        )  # fmt: skip
                        if " " in message_id:
                            with pytest.raises(ValueError, match="receipt id"):
                                build_receipt(subject, stat, err, done)
                            continue
                        expected = receipts.format(
                            message_id,
                            submit_date=at,
                            done_date=done,
                            stat=stat,
                            err=err,
                            text=text[:20].replace("é", "?"),
                            stat_text=RECEIPT_STAT_TEXT.get(stat),
                        )
                        receipt = build_receipt(subject, stat, err, done)
                        assert receipt.short_message == expected.encode("ascii")


@pytest.mark.asyncio
async def test_receipt_text_reads_the_same_as_gsm_and_as_ascii(smsc: Simulator) -> None:
    """The receipt goes out with data_coding 0, GSM 7-bit to O2 and ASCII to most ESMEs: its
    text field keeps only characters that are the same octet in both ('@' is 0x00 in GSM, and
    0x40 is GSM's '¡'), and '?' stands for the rest."""
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    text = "a@b$c_d§e¤f{g}Ä 5?"
    await esme.submit(registered_delivery=1, data_coding=0, short_message=gsm0338.encode(text))
    receipt = await esme.next_delivery()
    assert receipt.data_coding == 0
    assert receipt.short_message.endswith(b" text:a?b?c?d?e?f?g?? 5?")
    assert gsm0338.decode(receipt.short_message) == receipt.short_message.decode("ascii")


@pytest.mark.asyncio
async def test_receipt_only_to_own_account() -> None:
    accounts = (Account("a", PASSWORD), Account("b", PASSWORD))
    async with Simulator(accounts=accounts, receipt_delay=0.0) as smsc:
        assert smsc.port is not None
        a = await Esme.bound(smsc.port, "trx", system_id="a")
        b = await Esme.bound(smsc.port, "rx", system_id="b")
        await a.submit(registered_delivery=1)
        await a.next_delivery()
        await asyncio.sleep(0.02)
        assert b.deliveries.empty()


@pytest.mark.asyncio
async def test_a_due_item_that_fails_skips_only_itself(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A bug in one receipt's handling used to drop every receipt due in the same tick and
    # leave the timer unarmed, so later receipts waited for the next submit.
    apply = Simulator._apply

    def apply_or_fail(self: Simulator, decision: Any, *args: Any) -> None:
        stored = self.store.get(decision.message_id)
        if stored is not None and stored.destination_addr == "421900000666":
            raise RuntimeError("a bug in one item")
        apply(self, decision, *args)

    monkeypatch.setattr(Simulator, "_apply", apply_or_fail)
    async with Simulator(accounts=ACCOUNTS, receipt_delay=0.2) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        sent = [
            (await esme.submit(registered_delivery=1, destination_addr=number)).message_id
            for number in ("421900000001", "421900000666", "421900000002")
        ]
        got = {(await esme.next_delivery()).get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) for _ in "ab"}
        assert got == {sent[0], sent[2]}
        later = (await esme.submit(registered_delivery=1)).message_id
        assert (await esme.next_delivery()).get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == later
    assert "could not deliver a due item" in caplog.text


@pytest.mark.parametrize("key", ["routes_without_receipts", "system_types"])
@pytest.mark.parametrize("routes", ["r:1", "", 5])
def test_a_list_of_routes_that_is_not_a_list_is_refused(key: str, routes: object) -> None:
    # a string was read character by character: "r:1" silenced (or allowed) routes "r", ":"
    # and "1", and "" (meant as the default route) none
    data = {"accounts": [{"system_id": "a", "password": "p", key: routes}]}
    with pytest.raises(ValueError, match=f"{key} must be a list"):
        config_from_mapping(data)


def test_an_account_given_routes_without_receipts_as_a_string_is_refused() -> None:
    # "" in "r:1" is True: the default route went silent too
    with pytest.raises(ValueError, match="routes_without_receipts must be"):
        Account("acct", PASSWORD, routes_without_receipts="r:1")  # type: ignore[arg-type]
