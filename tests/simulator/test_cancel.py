"""cancel_sm (SMPP 3.4 section 4.9.1), answered when accept_query_cancel is set."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from o2sms.receipts import ReceiptStat, from_deliver_sm
from o2sms.simulator import Account, OutcomeRule, Simulator
from o2sms.smpp import CancelSm, CommandStatus, TlvTag
from o2sms.smpp.constants import MessageState
from tests.simulator.conftest import PASSWORD
from tests.simulator.esme import Esme

S = CommandStatus


def _cancel(message_id: str = "", *, to: bool = False, **changes: Any) -> CancelSm:
    """A cancel_sm from Esme.submit's default source_addr (and to its destination, ``to``)."""
    pdu = CancelSm(
        message_id=message_id, source_addr_ton=5, source_addr_npi=0, source_addr="O2Shop"
    )
    if to:
        pdu = replace(pdu, dest_addr_ton=1, dest_addr_npi=1, destination_addr="421900123456")
    return replace(pdu, **changes)


def _smsc(**options: Any) -> Simulator:
    """Outcomes far off (30 s), so submitted messages stay outstanding for the test."""
    accounts = (
        Account("acct", PASSWORD),
        Account("other", PASSWORD),
        Account("defaulted", PASSWORD, default_sender="O2Shop"),
    )
    options = {"receipt_delay": 30.0, **options}
    return Simulator(accounts=accounts, accept_query_cancel=True, **options)


def _state(smsc: Simulator, message_id: str) -> MessageState:
    message = smsc.message(message_id)
    assert message is not None
    return message.state


@pytest.mark.asyncio
async def test_cancel_by_id_checks_the_addresses_of_the_submission() -> None:
    """source_addr "must match that supplied in the original message submission"; so must
    destination_addr, which "may be set to NULL when the message_id is provided"."""
    async with _smsc() as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        first = (await esme.submit()).message_id
        second = (await esme.submit()).message_id
        wrong = [
            _cancel(first, source_addr="Other"),
            _cancel(first, source_addr_ton=1),
            _cancel(first, source_addr_npi=1),
            CancelSm(message_id=first),  # a NULL source_addr, where the submit_sm gave one
            _cancel(first, to=True, destination_addr="421900123457"),
            _cancel(first, to=True, dest_addr_ton=0),
            _cancel(first, to=True, dest_addr_npi=0),
        ]
        for pdu in wrong:
            assert (await esme.request(pdu)).command_status == S.ESME_RCANCELFAIL, pdu
        assert _state(smsc, first) is MessageState.ENROUTE
        assert (await esme.request(_cancel(first))).command_status == 0
        assert _state(smsc, first) is MessageState.DELETED
        assert (await esme.request(_cancel(second, to=True))).command_status == 0
        assert _state(smsc, second) is MessageState.DELETED


@pytest.mark.asyncio
async def test_cancel_of_a_default_sender_message_takes_a_null_source_addr() -> None:
    """Where the submit_sm's source_addr was NULL, "the source address in the cancel_sm
    command should also be NULL": the default sender filled in is not what was supplied."""
    async with _smsc() as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx", system_id="defaulted")
        message_id = (await esme.submit(source_addr_ton=0, source_addr="")).message_id
        answer = await esme.request(_cancel(message_id))
        assert answer.command_status == S.ESME_RCANCELFAIL
        stored = smsc.message(message_id)
        assert stored is not None
        assert (stored.source_addr, stored.default_sender) == ("O2Shop", True)
        assert (await esme.request(CancelSm(message_id=message_id))).command_status == 0
        assert _state(smsc, message_id) is MessageState.DELETED


@pytest.mark.asyncio
async def test_cancel_refuses_a_message_whose_final_outcome_is_in() -> None:
    """A rule may end a message with stat ENROUTE: its state stays ENROUTE, yet it is done."""
    async with _smsc(rules=(OutcomeRule("", ReceiptStat.ENROUTE, delay=0.0),)) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        message_id = (await esme.submit()).message_id
        await smsc.wait_until(lambda: smsc.message(message_id).done_at is not None)  # type: ignore[union-attr]
        answer = await esme.request(_cancel(message_id))
        assert answer.command_status == S.ESME_RCANCELFAIL
        assert _state(smsc, message_id) is MessageState.ENROUTE


@pytest.mark.asyncio
async def test_cancel_without_message_id_cancels_every_outstanding_match() -> None:
    """A NULL message_id: "all outstanding undelivered messages with matching source and
    destination addresses (and service_type if specified)", of this account only."""
    async with _smsc() as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        neighbour = await Esme.bound(smsc.port, "trx", system_id="other")
        smsc.rules = (OutcomeRule("", delay=0.0),)
        delivered = (await esme.submit()).message_id
        await smsc.wait_until(lambda: _state(smsc, delivered) is MessageState.DELIVERED)
        smsc.rules = ()
        matching = [(await esme.submit()).message_id for _ in range(2)]
        typed = (await esme.submit(service_type="X")).message_id
        elsewhere = (await esme.submit(destination_addr="421900123457")).message_id
        from_other = (await esme.submit(source_addr="Other")).message_id
        not_ours = (await neighbour.submit()).message_id

        assert (await esme.request(_cancel(to=True, service_type="X"))).command_status == 0
        assert _state(smsc, typed) is MessageState.DELETED
        assert {_state(smsc, m) for m in matching} == {MessageState.ENROUTE}

        assert (await esme.request(_cancel(to=True))).command_status == 0
        assert {_state(smsc, m) for m in matching} == {MessageState.DELETED}
        assert _state(smsc, delivered) is MessageState.DELIVERED
        for untouched in (elsewhere, from_other, not_ours):
            assert _state(smsc, untouched) is MessageState.ENROUTE

        answer = await esme.request(_cancel(to=True))  # none left outstanding
        assert answer.command_status == S.ESME_RCANCELFAIL
        answer = await esme.request(_cancel())  # no destination: no message goes nowhere
        assert answer.command_status == S.ESME_RCANCELFAIL


@pytest.mark.asyncio
@pytest.mark.parametrize("registered_delivery", [1, 2])
async def test_cancel_sends_a_deleted_receipt_when_one_was_asked_for(
    registered_delivery: int,
) -> None:
    """The cancelled message's final outcome is DELETED, a failure: reported to 1 ("success or
    failure") and 2 ("failure"), after the cancel_sm_resp; its DELIVRD never comes."""
    async with _smsc(receipt_delay=0.1) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        message_id = (await esme.submit(registered_delivery=registered_delivery)).message_id
        assert (await esme.request(_cancel(message_id))).command_status == 0
        assert esme.deliveries.empty()  # the cancel_sm_resp came first
        receipt = await esme.next_delivery(timeout=1.0)
        assert receipt.esm_class == 0x04
        assert (receipt.source_addr, receipt.destination_addr) == ("421900123456", "O2Shop")
        assert receipt.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == message_id
        assert receipt.get_tlv(TlvTag.MESSAGE_STATE) == int(MessageState.DELETED)
        parsed = from_deliver_sm(receipt)
        assert (parsed.id, parsed.stat, parsed.err_code) == (message_id, ReceiptStat.DELETED, 0)
        assert b" stat:DELETED err:000 text:Hello" in receipt.short_message
        await smsc.wait_until(lambda: smsc.scheduled == 0)  # the dropped DELIVRD came due
        await smsc.wait_until(lambda: smsc.counters["receipts_acknowledged"] == 1)
        assert esme.deliveries.empty()
        assert smsc.counters["receipts_sent"] == 1


@pytest.mark.asyncio
async def test_cancel_sends_no_receipt_when_none_was_asked_for() -> None:
    async with _smsc(receipt_delay=0.1) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        message_id = (await esme.submit(registered_delivery=0)).message_id
        assert (await esme.request(_cancel(message_id))).command_status == 0
        await smsc.wait_until(lambda: smsc.scheduled == 0)
        await asyncio.sleep(0.02)
        assert esme.deliveries.empty()
        assert smsc.counters["receipts_sent"] == 0
