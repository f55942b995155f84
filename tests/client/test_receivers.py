"""Clients whose sessions cannot send: receivers only, or receivers and the NSMS flash session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from o2sms.client import BindError, Event, InboundSms
from o2sms.smpp import CommandStatus, DeliverSm
from tests.client.fake_smsc import FakeSmsc, Faults, client

pytestmark = pytest.mark.asyncio


def inbound(text: bytes) -> DeliverSm:
    return DeliverSm(source_addr="421903123456", destination_addr="5555", short_message=text)


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition()`` until it is true (fails the test after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_receiver_only_client_starts_and_gets_inbound_sms() -> None:
    texts: list[str] = []

    async def handler(event: Event) -> None:
        assert isinstance(event, InboundSms)
        texts.append(event.text)

    async with (
        FakeSmsc() as smsc,
        client(smsc, bind="receiver", sessions=2, handler=handler) as sms,
    ):
        assert any(s.is_bound for s in sms._pool.sessions)
        await wait_until(lambda: smsc.sessions == 2)
        smsc.deliver(inbound(b"hello"))
        await wait_until(lambda: len(smsc.answers) == 1)
    assert texts == ["hello"]
    assert smsc.answers[0][1] == 0


async def test_a_receiver_only_client_whose_binds_are_refused_says_why() -> None:
    faults = Faults(bind_status=CommandStatus.ESME_RINVPASWD)
    async with FakeSmsc(faults) as smsc:
        sms = client(smsc, bind="receiver")
        with pytest.raises(BindError) as caught:
            await sms.start()
        assert caught.value.command_status == CommandStatus.ESME_RINVPASWD
        await sms.close()
