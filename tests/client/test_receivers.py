"""Clients whose sessions cannot send: receivers only, or receivers and the NSMS flash session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from o2sms.client import Backoff, BindError, ClientError, Event, InboundSms, SendError
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
        assert not sms.can_send()
        assert not sms.can_send(flash=True)
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


async def test_receivers_and_a_refused_flash_session_start_and_say_why_flash_fails() -> None:
    # The NSMS session is refused for good (credentials): the receivers still start the client,
    # and a flash send reports the refusal instead of waiting for a session that never comes.
    faults = Faults(bind_status_by_system_type={"NSMS": CommandStatus.ESME_RINVSYSTYP})
    async with (
        FakeSmsc(faults) as smsc,
        client(smsc, bind="receiver", sessions=2, flash_session=True) as sms,
    ):
        kinds = [(s.config.bind.name, s.config.system_type) for s in sms._pool.sessions]
        assert kinds == [("RECEIVER", ""), ("TRANSMITTER", "NSMS")]
        await wait_until(lambda: sms._pool.sessions[1].error is not None)
        with pytest.raises(SendError) as caught:
            await sms.send("+421903123456", "flash", flash=True, retry_timeout=5)
        assert isinstance(caught.value.cause, BindError)
        assert caught.value.cause.command_status == CommandStatus.ESME_RINVSYSTYP
        assert not caught.value.retriable
    assert smsc.submits == []


async def test_receivers_refused_for_now_and_a_flash_session_start_and_send_flash() -> None:
    # The receivers' binds are refused for the session limit (they keep trying); the NSMS
    # session binds, so the client starts and flash messages go.
    faults = Faults(bind_status_by_system_type={"": CommandStatus.ESME_RBINDFAIL})
    async with (
        FakeSmsc(faults) as smsc,
        client(smsc, bind="receiver", sessions=2, flash_session=True) as sms,
    ):
        assert sms._pool.sessions[1].is_bound
        assert (await sms.send("+421903123456", "flash", flash=True)).message_ids
    assert smsc.submit_system_types == ["NSMS"]


async def test_send_on_receivers_only_is_a_final_error_even_while_one_reconnects() -> None:
    # A receiver whose bind was refused (retriable) must not make "cannot send" retriable:
    # a caller would retry for ever a send no session of this client can make.
    quick = Backoff(initial=0.01, maximum=0.02, jitter=0.0)
    async with (
        FakeSmsc(Faults(max_sessions=1)) as smsc,
        client(smsc, bind="receiver", sessions=2, session_limit_backoff=quick) as sms,
    ):
        await wait_until(lambda: any(s.error is not None for s in sms._pool.sessions))
        with pytest.raises(SendError, match="no session can send") as caught:
            await sms.send("+421903123456", "nowhere to go", retry_timeout=5)
        assert not caught.value.retriable
        assert type(caught.value.cause) is ClientError
    assert smsc.received == 0


async def test_a_flash_send_reports_the_flash_sessions_error_not_a_receivers() -> None:
    # The receiver, first in the pool, keeps being refused for the session limit (retriable);
    # the NSMS session was refused for good. The flash send must give the final error.
    faults = Faults(
        bind_status_by_system_type={
            "": CommandStatus.ESME_RBINDFAIL,
            "NSMS": CommandStatus.ESME_RINVSYSTYP,
        }
    )
    quick = Backoff(initial=0.01, maximum=0.02, jitter=0.0)
    async with FakeSmsc(faults) as smsc:
        sms = client(
            smsc, bind="receiver", sessions=2, flash_session=True, session_limit_backoff=quick
        )
        sms._pool.start()  # never bound: start() would give up
        try:
            receiver, flash = sms._pool.sessions
            await wait_until(lambda: receiver.error is not None and flash.error is not None)
            with pytest.raises(SendError) as caught:
                await sms.send("+421903123456", "flash", flash=True, retry_timeout=5)
            assert isinstance(caught.value.cause, BindError)
            assert caught.value.cause.command_status == CommandStatus.ESME_RINVSYSTYP
            assert not caught.value.retriable
        finally:
            await sms.close()


async def test_events_on_transmitters_only_fails_at_once() -> None:
    # Nothing can ever come: waiting would hang the caller until close().
    async with FakeSmsc() as smsc, client(smsc, bind="transmitter", sessions=1) as sms:
        with pytest.raises(ClientError, match="no session receives"):
            await asyncio.wait_for(anext(sms.events()), 2.0)
