"""Faults on every PDU, intermediate notifications, interface_version, receipt rotation,
Infobip statuses and the account default sender, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from o2sms.receipts import ReceiptStat
from o2sms.receipts import parse as parse_receipt
from o2sms.simulator import Account, Faults, OutcomeRule, Simulator
from o2sms.simulator.config import config_from_mapping
from o2sms.simulator.session import FrameCounter, patch_statuses
from o2sms.smpp import (
    BindReceiver,
    BindTransceiver,
    CommandStatus,
    EnquireLink,
    MessageState,
    SubmitSm,
    SubmitSmResp,
    TlvTag,
    Unbind,
)
from o2sms.smpp.codec import encode
from o2sms.smpp.constants import EsmClass
from tests.simulator.conftest import ACCOUNTS, PASSWORD
from tests.simulator.esme import Esme

pytestmark = pytest.mark.asyncio

S = CommandStatus
LATENCY = 0.2
INFOBIP_INVALID_TLV_LENGTH = 0x9F
RECEIPT_TLVS = (TlvTag.RECEIPTED_MESSAGE_ID, TlvTag.MESSAGE_STATE)


@pytest_asyncio.fixture
async def sender_smsc() -> AsyncIterator[Simulator]:
    """Accounts with and without a default sender; ENROUTE/ACCEPTD on the 421900 prefix."""
    async with Simulator(
        accounts=(
            *ACCOUNTS,
            Account("named", "pw", default_sender="O2Shop"),
            Account("numbered", "pw", default_sender="421911000111"),
        ),
        rules=(
            OutcomeRule(
                "421900", intermediate=(ReceiptStat.ENROUTE, ReceiptStat.ACCEPTD), delay=0.05
            ),
        ),
        receipt_delay=0.01,
        response_timeout=1.0,
    ) as simulator:
        yield simulator


def _port(smsc: Simulator) -> int:
    assert smsc.port is not None
    return smsc.port


# --- 1. faults apply to every PDU, the Connection's automatic answers included ------------


async def test_latency_delays_the_automatic_answers(smsc: Simulator) -> None:
    """enquire_link_resp and a wrong-state answer come from the sans-IO core: delayed too."""
    receiver = await Esme.bound(_port(smsc), "rx")
    loop = asyncio.get_running_loop()
    smsc.faults.latency = LATENCY
    started = loop.time()
    assert (await receiver.request(EnquireLink())).command_status == 0
    assert loop.time() - started >= LATENCY
    started = loop.time()
    wrong_state = await receiver.raw_request(SubmitSm(sequence_number=99), 99)
    assert wrong_state.command_status == S.ESME_RINVBNDSTS
    assert loop.time() - started >= LATENCY


async def test_latency_delays_unbind_resp_and_closes_after_it(smsc: Simulator) -> None:
    esme = await Esme.bound(_port(smsc), "trx")
    loop = asyncio.get_running_loop()
    smsc.faults_for("acct").latency = LATENCY
    started = loop.time()
    assert (await esme.request(Unbind())).command_status == 0
    assert loop.time() - started >= LATENCY
    await esme.wait_closed()


async def test_latency_keeps_the_order_of_answers(smsc: Simulator) -> None:
    """A later automatic answer does not overtake a response the latency fault holds."""
    esme = await Esme.bound(_port(smsc), "trx")
    smsc.faults.latency = LATENCY
    order: list[str] = []
    submit = esme.send(SubmitSm(source_addr="O2Shop", source_addr_ton=5, destination_addr="421"))
    submit.add_done_callback(lambda _: order.append("submit_sm_resp"))
    await smsc.wait_until(lambda: smsc.counters["submit_sm"] == 1)  # answered, held back
    link = esme.send(EnquireLink())
    link.add_done_callback(lambda _: order.append("enquire_link_resp"))
    await asyncio.wait_for(asyncio.gather(submit, link), 3.0)
    assert order == ["submit_sm_resp", "enquire_link_resp"]


async def test_drop_after_counts_pdus_the_core_answers(smsc: Simulator) -> None:
    esme = await Esme.bound(_port(smsc), "trx")
    smsc.faults.drop_after = 2
    assert (await esme.request(EnquireLink())).command_status == 0
    assert (await esme.request(EnquireLink())).command_status == 0
    with pytest.raises(ConnectionResetError):
        await esme.request(EnquireLink())  # the third PDU is never answered
    await esme.wait_closed()
    assert smsc.counters["connections_dropped"] == 1


async def test_drop_after_cuts_between_pdus_of_one_read(smsc: Simulator) -> None:
    """Three enquire_link in one TCP write: two answered, the connection drops at the third."""
    esme = await Esme.bound(_port(smsc), "trx")
    smsc.faults.drop_after = 2
    answers = [esme.send(EnquireLink()) for _ in range(3)]  # one write each, likely one read
    results = await asyncio.gather(*answers, return_exceptions=True)
    assert [getattr(r, "command_status", None) for r in results[:2]] == [0, 0]
    assert isinstance(results[2], ConnectionResetError)


async def test_random_drop_counts_enquire_link(smsc: Simulator) -> None:
    esme = await Esme.bound(_port(smsc), "trx")
    smsc.faults.drop_probability = 1.0
    with pytest.raises(ConnectionResetError):
        await esme.request(EnquireLink())
    assert smsc.counters["connections_dropped"] == 1


async def test_frame_counter_finds_frames_split_anywhere() -> None:
    frames = [encode(EnquireLink(sequence_number=n)) for n in range(1, 4)]
    frames.append(encode(SubmitSm(sequence_number=4, destination_addr="421", short_message=b"x")))
    stream = b"".join(frames)
    expected = []
    offset = 0
    for frame in frames:
        offset += len(frame)
        expected.append(offset)
    for chunk in (1, 2, 3, 5, 7, 16, 17, len(stream)):
        counter = FrameCounter()
        found: list[int] = []
        for start in range(0, len(stream), chunk):
            found.extend(start + end for end in counter.feed(stream[start : start + chunk]))
        assert found == expected, chunk


# --- 2. intermediate notifications -------------------------------------------------------


async def test_intermediate_notifications_before_the_final_receipt(
    sender_smsc: Simulator,
) -> None:
    esme = await Esme.bound(_port(sender_smsc), "trx")
    resp = await esme.submit(registered_delivery=0x11)
    kinds = []
    for _ in range(3):
        pdu = await esme.next_delivery()
        assert pdu.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == resp.message_id
        kinds.append((pdu.esm_class, pdu.get_tlv(TlvTag.MESSAGE_STATE)))
        assert parse_receipt(pdu.short_message.decode()).id == resp.message_id
    assert kinds == [
        (EsmClass.INTERMEDIATE_NOTIFICATION, MessageState.ENROUTE),
        (EsmClass.INTERMEDIATE_NOTIFICATION, MessageState.ACCEPTED),
        (EsmClass.DELIVERY_RECEIPT, MessageState.DELIVERED),
    ]


async def test_intermediate_notifications_only_when_asked(sender_smsc: Simulator) -> None:
    esme = await Esme.bound(_port(sender_smsc), "trx")
    await esme.submit(registered_delivery=0x01)  # final receipt only
    assert (await esme.next_delivery()).esm_class == EsmClass.DELIVERY_RECEIPT
    await esme.submit(registered_delivery=0x10)  # intermediate only, no final receipt
    stats = [parse_receipt((await esme.next_delivery()).short_message.decode()).stat]
    stats.append(parse_receipt((await esme.next_delivery()).short_message.decode()).stat)
    assert stats == [ReceiptStat.ENROUTE, ReceiptStat.ACCEPTD]
    await sender_smsc.wait_until(lambda: sender_smsc.scheduled == 0)
    assert esme.deliveries.empty()


async def test_intermediate_rule_from_config_and_checked() -> None:
    config = config_from_mapping({"rules": [{"prefix": "421", "intermediate": ["enroute"]}]})
    assert config.rules[0].intermediate == (ReceiptStat.ENROUTE,)
    with pytest.raises(ValueError, match="ENROUTE or ACCEPTD"):
        OutcomeRule("421", intermediate=(ReceiptStat.DELIVRD,))


@pytest.mark.parametrize("err", [-1, 0x10000])
async def test_rule_err_that_no_receipt_can_carry_is_refused(err: int) -> None:
    # err goes into the receipt text and the network_error_code TLV (2 octets). A negative
    # one made every receipt of the rule fail inside the receipt timer: it was lost, and so
    # were the other receipts due in the same tick.
    with pytest.raises(ValueError, match="err"):
        OutcomeRule("421", ReceiptStat.UNDELIV, err=err)
    with pytest.raises(ValueError, match="err"):
        config_from_mapping({"rules": [{"prefix": "421", "stat": "UNDELIV", "err": err}]})
    assert OutcomeRule("421", ReceiptStat.UNDELIV, err=0xFFFF).err == 0xFFFF


# --- 3. interface_version ----------------------------------------------------------------


async def test_smpp33_bind_accepted_when_enabled_gets_no_tlvs() -> None:
    """accept_smpp33=True: a 3.3 ESME is bound and, as SMPP 3.4 asks, sent no TLVs."""
    async with Simulator(accounts=ACCOUNTS, accept_smpp33=True, receipt_delay=0.01) as smsc:
        esme = await Esme.open(_port(smsc))
        resp = await esme.request(
            BindTransceiver(system_id="acct", password=PASSWORD, interface_version=0x33)
        )
        assert resp.command_status == 0
        assert resp.tlvs == ()
        (info,) = smsc.sessions()
        assert info.interface_version == 0x33
        submitted = await esme.submit(registered_delivery=0x01, destination_addr="421911222333")
        receipt = await esme.next_delivery()
        assert receipt.tlvs == ()  # SMPP 3.3 has no TLVs: the text carries the receipt
        assert parse_receipt(receipt.short_message.decode()).id == submitted.message_id


@pytest.mark.parametrize("version", [0x34, 0x50])
async def test_smpp34_and_later_bind_as_34(smsc: Simulator, version: int) -> None:
    esme = await Esme.open(_port(smsc))
    resp = await esme.request(
        BindReceiver(system_id="acct", password=PASSWORD, interface_version=version)
    )
    assert resp.command_status == 0
    assert resp.get_tlv(TlvTag.SC_INTERFACE_VERSION) == 0x34


@pytest.mark.parametrize("version", [0x33, 0x00])
async def test_smpp33_refused_by_default(smsc: Simulator, version: int) -> None:
    """The gateway: "version 3.3 is not supported"; the reference gives no dedicated status."""
    assert smsc.config.accept_smpp33 is False
    esme = await Esme.open(_port(smsc))
    resp = await esme.request(
        BindTransceiver(system_id="acct", password=PASSWORD, interface_version=version)
    )
    assert resp.command_status == S.ESME_RBINDFAIL
    assert resp.tlvs == ()
    await esme.wait_closed()
    assert smsc.counters["binds_refused"] == 1
    await smsc.wait_until(lambda: smsc.sessions() == [])


# --- 4. one round-robin choice for receipts sent at once and receipts that waited ----------


async def test_receipts_rotate_across_sent_and_waiting() -> None:
    async with Simulator(accounts=ACCOUNTS, receipt_delay=0.0, window=1) as smsc:
        port = _port(smsc)
        tx = await Esme.bound(port, "tx")
        first = await Esme.bound(port, "rx")
        second = await Esme.bound(port, "rx")
        for esme in (first, second):
            esme.auto_ack = False
        for _ in range(3):
            await tx.submit(registered_delivery=1)
        await first.next_delivery()  # sent at once, in turn
        await second.next_delivery()
        await smsc.wait_until(lambda: smsc.pending_receipts("acct") == 1)
        second.conn.send(second.unanswered.pop().response(), 0.0)
        second._flush()  # the waiting receipt goes to the session with room: the second
        await second.next_delivery()
        for esme in (first, second):
            esme.conn.send(esme.unanswered.pop().response(), 0.0)
            esme._flush()
        await smsc.wait_until(lambda: all(s.outstanding_deliver_sm == 0 for s in smsc.sessions()))
        await tx.submit(registered_delivery=1)  # the rotation goes on from the drain: first
        await first.next_delivery()
        assert second.deliveries.empty()


# --- 5. Infobip's codes for validation failures --------------------------------------------


def _submit_with_short_tlv(sequence_number: int) -> bytes:
    """A submit_sm whose sar_msg_ref_num (2 octets by spec) has a 1-octet value."""
    pdu = encode(
        SubmitSm(
            sequence_number=sequence_number,
            source_addr="O2Shop",
            source_addr_ton=5,
            destination_addr="421900123456",
            short_message=b"Hi",
        )
    )
    body = pdu[4:] + struct.pack(">HHB", TlvTag.SAR_MSG_REF_NUM, 1, 7)
    return struct.pack(">I", len(body) + 4) + body


async def test_bad_tlv_length_gets_infobip_code(smsc: Simulator) -> None:
    esme = await Esme.bound(_port(smsc), "trx")
    resp = await esme.raw_request(_submit_with_short_tlv(77), 77)
    assert isinstance(resp, SubmitSmResp)
    assert resp.command_status == INFOBIP_INVALID_TLV_LENGTH
    assert (await esme.submit()).command_status == 0  # the session goes on


async def test_a_bad_tlv_read_with_a_deliver_sm_resp_still_gets_infobip_code() -> None:
    """One read holds a deliver_sm_resp, which sends a waiting receipt, and a malformed submit_sm:
    the Connection's own answer to the latter is written patched like any other (the receipt's
    send once flushed it mid-read, before the patch was due)."""
    async with Simulator(accounts=ACCOUNTS, receipt_delay=0.0, window=1) as smsc:
        esme = await Esme.bound(_port(smsc), "trx")
        esme.auto_ack = False
        for _ in range(2):
            await esme.submit(registered_delivery=1)
        await esme.next_delivery()  # the first receipt; the second waits for the window
        await smsc.wait_until(lambda: smsc.pending_receipts("acct") == 1)
        esme.conn.send(esme.unanswered.pop().response(), 0.0)
        answer = esme.conn.data_to_send()
        resp = await esme.raw_request(answer + _submit_with_short_tlv(77), 77)
        assert isinstance(resp, SubmitSmResp)
        assert resp.command_status == INFOBIP_INVALID_TLV_LENGTH
        await esme.next_delivery()  # the receipt that waited went out in the same write


async def test_plain_smpp_statuses_when_infobip_is_off() -> None:
    async with Simulator(accounts=ACCOUNTS, infobip_statuses=False) as smsc:
        esme = await Esme.bound(_port(smsc), "trx")
        resp = await esme.raw_request(_submit_with_short_tlv(77), 77)
        assert resp.command_status == S.ESME_RINVPARLEN
        resp = await esme.submit(dest_addr_ton=5, destination_addr="Shop")
        assert resp.command_status == S.ESME_RINVDSTTON


async def test_patch_statuses_touches_only_mapped_statuses() -> None:
    answers = encode(EnquireLink(sequence_number=1).response()) + encode(
        SubmitSmResp(sequence_number=2, command_status=S.ESME_RINVPARLEN)
    )
    patched = patch_statuses(answers, {S.ESME_RINVPARLEN: INFOBIP_INVALID_TLV_LENGTH})
    assert patched[:16] == answers[:16]
    assert struct.unpack_from(">I", patched, 16 + 8)[0] == INFOBIP_INVALID_TLV_LENGTH


# --- 6. the account's default sender -----------------------------------------------------


@pytest.mark.parametrize(
    ("system_id", "sender", "ton"), [("named", "O2Shop", 5), ("numbered", "421911000111", 1)]
)
async def test_empty_source_takes_the_default_sender(
    sender_smsc: Simulator, system_id: str, sender: str, ton: int
) -> None:
    esme = await Esme.bound(_port(sender_smsc), "trx", system_id=system_id, password="pw")
    resp = await esme.submit(
        source_addr="", source_addr_ton=0, registered_delivery=1, destination_addr="421911222333"
    )
    assert resp.command_status == 0
    message = sender_smsc.message(resp.message_id)
    assert message is not None
    assert message.source_addr == sender
    receipt = await esme.next_delivery()
    assert receipt.destination_addr == sender


async def test_empty_source_without_default_sender_is_refused(sender_smsc: Simulator) -> None:
    esme = await Esme.bound(_port(sender_smsc), "trx")
    assert (await esme.submit(source_addr="")).command_status == S.ESME_RINVSRCADR


async def test_default_sender_from_config() -> None:
    config = config_from_mapping(
        {"accounts": [{"system_id": "a", "password": "p", "default_sender": "O2Shop"}]}
    )
    assert config.accounts[0].default_sender == "O2Shop"
    with pytest.raises(ValueError, match="default_sender"):
        Account("a", "p", default_sender="")


@pytest.mark.parametrize("sender", ["O2 Shop Online", "O2ShopOnline"])
async def test_default_sender_that_no_submit_sm_could_carry_is_refused(sender: str) -> None:
    # An alphanumeric sender has at most 11 characters (GSM 03.40 TP-OA): taken as the
    # account's default, every submit_sm with an empty source_addr would be answered
    # ESME_RINVSRCADR ("invalid source address") although the client sent none.
    with pytest.raises(ValueError, match="default_sender"):
        Account("a", "p", default_sender=sender)
    with pytest.raises(ValueError, match="default_sender"):
        config_from_mapping(
            {"accounts": [{"system_id": "a", "password": "p", "default_sender": sender}]}
        )
    assert Account("a", "p", default_sender="4219110001112223334").default_sender  # digits: TON 1


# --- fault switches from the config ------------------------------------------------------


async def test_faults_built_with_values_are_active() -> None:
    assert Faults(latency=0.1).active
    assert not Faults().active


async def test_fault_switches_start_from_the_config() -> None:
    config = config_from_mapping(
        {
            "accounts": [
                {"system_id": "acct", "password": PASSWORD, "faults": {"queue_full": 1}},
                {"system_id": "other", "password": "pw"},
            ],
            "faults": {"withhold_responses": False},
        }
    )
    with pytest.raises(ValueError, match="unknown fault"):
        config_from_mapping({"faults": {"latncy": 1}})
    async with Simulator(config) as smsc:
        assert smsc.faults.withhold_responses is False
        acct = await Esme.bound(_port(smsc), "tx")
        other = await Esme.bound(_port(smsc), "tx", system_id="other", password="pw")
        assert (await other.submit()).command_status == 0
        assert (await acct.submit()).command_status == S.ESME_RMSGQFUL
        assert (await acct.submit()).command_status == 0
        assert config.accounts[0].faults is not None
        assert config.accounts[0].faults.queue_full == 1  # the config is not used up


async def test_an_accounts_negative_session_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="session_limit must be 0 or more, got -1"):
        Account("a", "p", session_limit=-1)
    with pytest.raises(ValueError, match="session_limit must be 0 or more"):
        config_from_mapping(
            {"accounts": [{"system_id": "a", "password": "p", "session_limit": -1}]}
        )
    assert Account("a", "p", session_limit=0).session_limit == 0
