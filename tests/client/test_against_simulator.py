"""The client against the o2sms simulator: a faithful gateway on loopback, faults switched on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest
import pytest_asyncio

from o2sms.client import BindError, Client, DeliveryReport, InboundSms, SendError, SendResult
from o2sms.receipts import ReceiptStat
from o2sms.simulator import Account, OutcomeRule, Simulator
from o2sms.smpp import CommandStatus
from o2sms.text import MessageTooLongError

pytestmark = pytest.mark.asyncio

PASSWORD = "longer-than-eight"
NUMBER = "+421903123456"


@pytest_asyncio.fixture
async def smsc() -> AsyncIterator[Simulator]:
    async with Simulator(
        accounts=(Account("acct", PASSWORD),),
        receipt_delay=0.01,
        rules=(OutcomeRule("421905", stat=ReceiptStat.UNDELIV, err=1),),
        response_timeout=1.0,
    ) as simulator:
        yield simulator


def client(smsc: Simulator, **options: object) -> Client:
    defaults: dict[str, object] = {
        "sessions": 2,
        "connect_timeout": 2.0,
        "response_timeout": 2.0,
        "sender": "O2 Test",
    }
    defaults.update(options)
    return Client("127.0.0.1", smsc.port, "acct", PASSWORD, **defaults)  # type: ignore[arg-type]


async def test_every_message_gets_an_id_and_its_receipt(smsc: Simulator) -> None:
    async with client(smsc) as sms:
        results = await asyncio.gather(
            *(sms.send(NUMBER, f"message {i}", reference=str(i)) for i in range(40))
        )
        events = sms.events()
        reports = [await asyncio.wait_for(anext(events), 5.0) for _ in range(40)]
    sent = {r.message_ids[0]: r.reference for r in results}
    assert len(sent) == 40
    assert all(isinstance(e, DeliveryReport) for e in reports)
    got = {e.submitted_id: e.reference for e in reports if isinstance(e, DeliveryReport)}
    assert got == sent
    assert {e.receipt.stat for e in reports if isinstance(e, DeliveryReport)} == {
        ReceiptStat.DELIVRD
    }
    assert len(smsc.messages()) == 40


async def test_undeliverable_destination_reports_undeliv(smsc: Simulator) -> None:
    async with client(smsc) as sms:
        result = await sms.send("+421905000001", "to nowhere")
        report = await asyncio.wait_for(anext(sms.events()), 5.0)
    assert isinstance(report, DeliveryReport)
    assert report.submitted_id == result.message_ids[0]
    assert report.receipt.stat is ReceiptStat.UNDELIV
    assert report.receipt.err_code == 1


async def test_long_message_parts_each_get_a_receipt(smsc: Simulator) -> None:
    async with client(smsc) as sms:
        result = await sms.send(NUMBER, "Dlhá správa. " * 30)
        events = sms.events()
        reports = [await asyncio.wait_for(anext(events), 5.0) for _ in range(result.parts)]
    assert result.parts == 6  # UCS-2: 390 characters in 67-unit parts
    parts = sorted(r.part for r in reports if isinstance(r, DeliveryReport) and r.part)
    assert parts == list(range(1, 7))


async def test_inbound_sms_from_the_simulator(smsc: Simulator) -> None:
    async with client(smsc) as sms:
        smsc.inject_mo("acct", "421903123456", "5555", "Ahoj " * 50)
        event = await asyncio.wait_for(anext(sms.events()), 5.0)
    assert isinstance(event, InboundSms)
    assert event.text == "Ahoj " * 50
    assert event.parts == 2


async def test_the_fifth_session_is_refused_and_the_four_keep_working(smsc: Simulator) -> None:
    async with client(smsc, sessions=4) as sms:
        await asyncio.sleep(0.2)
        with pytest.raises(BindError) as info:
            async with client(smsc, sessions=1, connect_timeout=0.5, response_timeout=0.5):
                pass
        assert info.value.command_status == CommandStatus.ESME_RBINDFAIL
        assert (await sms.send(NUMBER, "still here")).message_ids


async def test_throttling_storm_slows_down_but_loses_nothing(smsc: Simulator) -> None:
    smsc.faults.max_submit_rate = 200.0
    async with client(smsc, window=20) as sms:
        results = await asyncio.gather(*(sms.send(NUMBER, f"m{i}") for i in range(120)))
    assert len({r.message_ids[0] for r in results}) == 120
    assert len(smsc.messages()) == 120


async def test_dropped_connections_fail_outstanding_messages_retriably(smsc: Simulator) -> None:
    smsc.faults.drop_after = 15
    outcomes: list[object] = []
    async with client(smsc, window=10) as sms:
        outcomes = await asyncio.gather(
            *(sms.send(NUMBER, f"m{i}") for i in range(60)), return_exceptions=True
        )
        smsc.faults.drop_after = None
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert errors, "the fault should have cut some submits"
        assert all(isinstance(e, SendError) and e.retriable for e in errors)
        resent = await asyncio.gather(*(sms.send(NUMBER, f"again {i}") for i in range(len(errors))))
    acknowledged = [o for o in outcomes if not isinstance(o, BaseException)] + resent
    # Every acknowledged id is one the SMSC really stored: none was invented or lost.
    stored = {m.message_id for m in smsc.messages()}
    for result in acknowledged:
        assert isinstance(result, SendResult)
        assert set(result.message_ids) <= stored


async def test_a_keepalive_shorter_than_the_response_timeout_keeps_an_idle_link_up() -> None:
    # Regression: the first enquire_link went out a response timeout after the bind (and each
    # next one a response timeout after the last), not a keepalive interval: an idle session
    # of a client waiting 60 s for responses was dropped by the gateway's 30 s inactivity
    # timer, and again after every reconnect.
    async with (
        Simulator(
            accounts=(Account("acct", PASSWORD),), inactivity_timeout=1.0, response_timeout=1.0
        ) as smsc,
        client(smsc, sessions=1, keepalive=0.3, response_timeout=5.0) as sms,
    ):
        await asyncio.sleep(2.5)
        assert (await sms.send(NUMBER, "still the first link")).message_ids
    assert smsc.counters["connections"] == 1


@pytest.mark.parametrize("through", ["handler", "batch_handler"])
async def test_a_receipt_redelivered_after_a_failed_handler_still_names_its_send(
    through: str,
) -> None:
    # Regression: a final receipt's part was forgotten as soon as the receipt was matched,
    # before the handler ran; when the handler failed, the SMSC delivered the receipt again
    # and it came with no submitted_id, reference nor part: the send it reports was lost.
    reports: list[DeliveryReport] = []

    def take(event: object) -> BaseException | None:
        assert isinstance(event, DeliveryReport)
        reports.append(event)
        return RuntimeError("the store is down for a moment") if len(reports) == 1 else None

    async def handler(event: object) -> None:
        failure = take(event)
        if failure is not None:
            raise failure

    async def batch_handler(events: Sequence[object]) -> list[BaseException | None]:
        return [take(event) for event in events]

    options: dict[str, object] = {"handler": handler}
    if through == "batch_handler":
        options["batch_handler"] = batch_handler
    async with (
        Simulator(
            accounts=(Account("acct", PASSWORD),), receipt_delay=0.01, receipt_retry_delay=0.1
        ) as smsc,
        client(smsc, sessions=1, **options) as sms,
    ):
        result = await sms.send(NUMBER, "needs its receipt", reference="order-7")
        async with asyncio.timeout(5.0):
            while len(reports) < 2:
                await asyncio.sleep(0.01)
    assert [(r.submitted_id, r.reference, r.part) for r in reports] == [
        (result.message_ids[0], "order-7", 1)
    ] * 2


async def test_a_text_over_the_gateways_25_parts_is_refused_before_any_part_goes(
    smsc: Simulator,
) -> None:
    # the gateway refuses every part of a message over 25 parts (ESME_RINVMSGLEN): 26 refused
    # submit_sm, and a SendError only after them
    async with client(smsc) as sms:
        with pytest.raises(MessageTooLongError, match="max_parts=25"):
            await sms.send(NUMBER, "x" * (153 * 25 + 1))
        assert smsc.counters["submit_sm"] == 0
        result = await sms.send(NUMBER, "x" * (153 * 25))
    assert result.parts == 25
    assert smsc.counters["submit_sm"] == 25


async def test_max_parts_lets_a_client_send_longer_texts_to_another_smsc() -> None:
    # not the O2 gateway: an SMSC that takes up to 255 parts
    async with Simulator(accounts=(Account("acct", PASSWORD),), max_parts=255) as smsc:
        async with client(smsc, max_parts=30) as sms:
            result = await sms.send(NUMBER, "x" * (153 * 30))
            with pytest.raises(MessageTooLongError, match="max_parts=30"):
                await sms.send(NUMBER, "x" * (153 * 30 + 1))
        assert result.parts == 30
        assert smsc.counters["submit_sm"] == 30
        with pytest.raises(ValueError, match=r"max_parts must be 1\.\.255"):
            client(smsc, max_parts=256)


async def test_a_long_flash_text_is_refused_before_it_goes_as_one_message_payload(
    smsc: Simulator,
) -> None:
    # one submit_sm with the whole text in message_payload passed the "one part" check; the
    # gateway has no long flash and refused it (ESME_RINVMSGLEN)
    async with client(smsc, flash_session=True, split_method="payload") as sms:
        with pytest.raises(MessageTooLongError, match="flash message must fit one SMS"):
            await sms.send(NUMBER, "x" * 200, flash=True)
        assert smsc.counters["submit_sm"] == 0
        result = await sms.send(NUMBER, "x" * 160, flash=True)
    assert result.parts == 1
    assert smsc.counters["submit_sm"] == 1
