"""The asyncio client against a fake SMSC on loopback: every message ends acknowledged or failed."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from o2sms.client import (
    AddressError,
    Backoff,
    BindError,
    Client,
    ClientClosedError,
    ConnectError,
    DeliveryReport,
    Event,
    Resume,
    SendError,
    api,
)
from o2sms.client.pool import RateLimiter
from o2sms.client.session import Session, SessionStatus
from o2sms.simulator import Account, Simulator
from o2sms.smpp import CommandStatus, DeliverSm
from o2sms.text import MessageTooLongError
from tests.client.fake_smsc import FakeSmsc, Faults, client

pytestmark = pytest.mark.asyncio

NUMBER = "+421 903 123 456"


async def test_send_one_message_and_get_its_id() -> None:
    async with FakeSmsc() as smsc, client(smsc, sender="O2 Shop") as sms:
        result = await sms.send(NUMBER, "Hello from o2sms")
    assert result.parts == 1
    assert result.message_ids == ("04000000086ECD50",)
    (submit,) = smsc.submits
    assert submit.destination_addr == "421903123456"
    assert (submit.dest_addr_ton, submit.dest_addr_npi) == (1, 1)
    assert (submit.source_addr_ton, submit.source_addr) == (5, "O2 Shop")
    assert submit.short_message == b"Hello from o2sms"
    assert submit.registered_delivery == 1


async def test_long_message_goes_in_parts_in_order() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        result = await sms.send(NUMBER, "x" * 400)
    assert result.parts == 3
    assert len(result.message_ids) == 3
    udh_seq = sorted(s.short_message[5] for s in smsc.submits)
    assert udh_seq == [1, 2, 3]


async def test_a_resumed_long_message_sends_only_its_missing_parts_under_its_reference() -> None:
    # Part 1 refused (ESME_RSYSERR), parts 2 and 3 accepted: the error says where it stopped.
    faults = Faults(submit_statuses=[CommandStatus.ESME_RSYSERR])
    async with FakeSmsc(faults) as smsc, client(smsc) as sms:
        with pytest.raises(SendError) as caught:
            await sms.send(NUMBER, "x" * 400)  # three parts
        first = caught.value
        # UDH of each part: UDHL 5, IEI 0 (8-bit concatenation), IEDL 3, ref, total, seq
        udhs = sorted(submit.short_message[:6] for submit in smsc.submits)
        reference = udhs[0][3]
        assert udhs == [bytes((5, 0, 3, reference, 3, seq)) for seq in (2, 3)]
        assert first.concat_reference == reference
        assert first.message_ids[0] is None
        assert all(first.message_ids[1:])
        resume = Resume(first.concat_reference, first.message_ids)
        result = await sms.send(NUMBER, "x" * 400, resume=resume)
    assert len(smsc.submits) == 3  # part 1 again, alone
    assert smsc.submits[-1].short_message[:6] == bytes((5, 0, 3, reference, 3, 1))
    assert result.parts == 3
    assert result.message_ids[1:] == first.message_ids[1:]
    assert result.message_ids[0] not in first.message_ids


async def test_a_resume_that_no_longer_fits_the_text_sends_every_part_anew() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        resume = Resume(0x42, ("EARLIER-1", None))  # two parts then; the text needs three
        result = await sms.send(NUMBER, "x" * 400, resume=resume)
    assert result.parts == 3
    assert "EARLIER-1" not in result.message_ids
    assert sorted(s.short_message[5] for s in smsc.submits) == [1, 2, 3]
    assert len({s.short_message[:5] for s in smsc.submits}) == 1  # one new message, one ref


async def test_a_one_part_text_whose_part_went_out_is_not_sent_again() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        result = await sms.send(NUMBER, "short", resume=Resume(0x42, ("EARLIER-1",)))
        assert result.message_ids == ("EARLIER-1",)
        assert (await sms.send(NUMBER, "short", resume=Resume(0x42, (None,)))).message_ids
    assert len(smsc.submits) == 1  # only the one whose part had not gone out


async def test_a_resumed_send_is_withdrawn_by_a_stop_like_any_other() -> None:
    # Its earlier parts are the caller's to keep (ids and reference): the rest may wait.
    async with FakeSmsc(Faults(throttle_first=1_000_000)) as smsc, client(smsc) as sms:
        resumed = asyncio.create_task(
            sms.send(NUMBER, "x" * 400, resume=Resume(0x42, ("EARLIER-1", None, None)))
        )
        async with asyncio.timeout(5):
            while not smsc.received:  # throttled: it waits in the pool's pause
                await asyncio.sleep(0.005)
        started = asyncio.get_running_loop().time()
        sms.withdraw_unsent()
        [outcome] = await asyncio.gather(resumed, return_exceptions=True)
        took = asyncio.get_running_loop().time() - started
    assert took < 1.0  # at once, not at the end of the 60 s retry_timeout
    assert isinstance(outcome, SendError)
    assert isinstance(outcome.cause, ClientClosedError)
    assert outcome.message_ids == ("EARLIER-1", None, None)
    assert outcome.concat_reference == 0x42


async def test_a_resume_whose_reference_the_split_method_cannot_carry_sends_anew() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:  # UDH8: references 0..255
        result = await sms.send(NUMBER, "x" * 400, resume=Resume(300, ("EARLIER-1", None, None)))
    assert "EARLIER-1" not in result.message_ids
    assert sorted(s.short_message[5] for s in smsc.submits) == [1, 2, 3]


async def test_out_of_order_responses_match_their_requests() -> None:
    async with FakeSmsc(Faults(reverse_responses=5)) as smsc, client(smsc, window=5) as sms:
        results = await asyncio.gather(*(sms.send(NUMBER, f"message {i}") for i in range(5)))
    by_text = {s.short_message: s for s in smsc.submits}
    assert len(by_text) == 5
    ids = [r.message_ids[0] for r in results]
    assert len(set(ids)) == 5


async def test_throttled_submits_are_retried_after_a_pause() -> None:
    async with FakeSmsc(Faults(throttle_first=3)) as smsc, client(smsc) as sms:
        result = await sms.send(NUMBER, "eventually")
    assert len(result.message_ids) == 1
    assert len(smsc.submits) == 1


async def test_connection_drop_fails_outstanding_with_retriable_error_and_reconnects() -> None:
    faults = Faults(drop_after_submits=1, reverse_responses=100)
    async with FakeSmsc(faults) as smsc, client(smsc, window=10) as sms:
        outcomes = await asyncio.gather(
            *(sms.send(NUMBER, f"m{i}") for i in range(5)), return_exceptions=True
        )
        assert all(isinstance(o, SendError) and o.retriable for o in outcomes)
        faults.drop_after_submits = None
        faults.reverse_responses = 1
        result = await sms.send(NUMBER, "after reconnect")  # the session came back
    assert result.message_ids


async def test_bad_credentials_raise_bind_error_at_once() -> None:
    async with FakeSmsc(Faults(bind_status=CommandStatus.ESME_RINVPASWD)) as smsc:
        with pytest.raises(BindError) as info:
            async with client(smsc):
                pass
    assert info.value.command_status == CommandStatus.ESME_RINVPASWD
    assert "invalid credentials" in str(info.value)  # the gateway's own meaning of 0x0E


async def test_session_limit_backs_off_without_hammering() -> None:
    async with FakeSmsc(Faults(max_sessions=1)) as smsc, client(smsc, sessions=1) as first:
        with pytest.raises(BindError) as info:
            async with client(smsc, sessions=1, connect_timeout=0.5, response_timeout=0.5):
                pass
        assert info.value.command_status == CommandStatus.ESME_RBINDFAIL
        # One refused attempt in that second: the session waits (5 s and growing) between tries.
        assert smsc.bind_attempts == 2
        assert (await first.send(NUMBER, "existing session unaffected")).message_ids


async def test_unreachable_host_raises_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectError):
        async with Client(
            "127.0.0.1", port, "a", "b", sessions=1, connect_timeout=0.5, response_timeout=0.2
        ):
            pass


async def test_a_client_whose_start_failed_can_be_started_again() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sms = Client(
        "127.0.0.1",
        port,
        "acct",
        "secret12",
        sessions=2,
        connect_timeout=0.5,
        response_timeout=0.5,
        sender="O2 Shop",
    )
    with pytest.raises(ConnectError):
        await sms.start()  # nothing listens yet: the gateway is down while the service starts
    async with Simulator(accounts=(Account("acct", "secret12"),), port=port):
        await sms.start()
        try:
            assert (await sms.send(NUMBER, "after the gateway came up")).message_ids
        finally:
            await sms.close()
    with pytest.raises(ClientClosedError):
        await sms.start()  # closed is for good


async def test_failover_to_the_secondary_host() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    async with FakeSmsc() as smsc:
        sms = Client(
            hosts=[("127.0.0.1", dead), ("127.0.0.1", smsc.port)],
            system_id="acct",
            password="pw",
            sessions=1,
            connect_timeout=3.0,
        )
        async with sms:
            assert (await sms.send(NUMBER, "via secondary")).message_ids


async def test_credentials_refused_by_one_host_do_not_stop_the_session_for_good() -> None:
    # Regression: the primary dropped the link, the session turned to the secondary, which
    # refused the credentials (an account not provisioned there, an auth backend down), and
    # the session stopped for good although the primary took the same credentials a moment
    # before: every session of the client ended FAILED after one outage of the primary.
    refusing = Faults(bind_status=CommandStatus.ESME_RINVPASWD)
    async with FakeSmsc() as primary, FakeSmsc(refusing) as secondary:
        sms = Client(
            hosts=[("127.0.0.1", primary.port), ("127.0.0.1", secondary.port)],
            system_id="acct",
            password="pw",
            sessions=1,
            connect_timeout=1.0,
            response_timeout=1.0,
            reconnect=Backoff(0.05, 0.05),
        )
        async with sms:
            assert (await sms.send(NUMBER, "via primary")).message_ids
            primary.drop_all()
            await wait_for_binds(secondary, 1)
            assert (await sms.send(NUMBER, "via primary again")).message_ids
    assert primary.bind_attempts == 2


async def wait_for_binds(smsc: FakeSmsc, count: int) -> None:
    async with asyncio.timeout(3.0):
        while smsc.bind_attempts < count:
            await asyncio.sleep(0.01)


async def test_receipts_are_correlated_and_acknowledged_after_handling() -> None:
    async with FakeSmsc(Faults(receipts=True, receipt_in_hex=False)) as smsc, client(smsc) as sms:
        result = await sms.send(NUMBER, "report me", reference="order-42")
        events = sms.events()
        report = await asyncio.wait_for(anext(events), 2.0)
        assert isinstance(report, DeliveryReport)
        # The receipt said the id in decimal; the submit_sm_resp gave it in hex.
        assert report.receipt.id == "288230376293190992"
        assert report.submitted_id == result.message_ids[0]
        assert (report.reference, report.part, report.parts) == ("order-42", 1, 1)
        assert report.receipt.stat.value == "DELIVRD"


async def test_final_receipt_after_an_intermediate_notification_still_names_its_send() -> None:
    # An intermediate notification (esm_class 0x20) with stat ACCEPTD is not the end of the
    # message: the DELIVRD receipt after it must still be matched to its send.
    faults = Faults(receipts=True, intermediate=True)
    async with FakeSmsc(faults) as smsc, client(smsc) as sms:
        result = await sms.send(NUMBER, "report me", reference="order-43")
        events = sms.events()
        reports = [await asyncio.wait_for(anext(events), 2.0) for _ in range(2)]
    assert all(isinstance(r, DeliveryReport) for r in reports)
    assert [
        (r.receipt.stat.value, r.receipt.is_final, r.submitted_id, r.reference)
        for r in reports
        if isinstance(r, DeliveryReport)
    ] == [
        ("ACCEPTD", False, result.message_ids[0], "order-43"),
        ("DELIVRD", True, result.message_ids[0], "order-43"),
    ]


async def test_peer_unbind_then_reconnect() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        await sms.send(NUMBER, "before")
        await smsc.unbind_all()
        await asyncio.sleep(0.05)
        assert (await sms.send(NUMBER, "after")).message_ids


async def test_dead_link_detected_by_missing_enquire_link_resp(
    caplog: pytest.LogCaptureFixture,
) -> None:
    faults = Faults()
    async with FakeSmsc(faults) as smsc, client(smsc, keepalive=0.1, response_timeout=0.2) as sms:
        faults.silent = True
        with caplog.at_level(logging.WARNING, logger="o2sms.client"):
            await asyncio.sleep(0.6)
        assert any("enquire_link_resp" in r.getMessage() for r in caplog.records)
        faults.silent = False
        await asyncio.sleep(0.7)  # backoff then reconnect
        assert (await sms.send(NUMBER, "alive again")).message_ids


async def test_a_session_failed_for_good_raises_its_error_without_growing_it() -> None:
    # The stored error was raised again on every send, each raise adding its frames (and
    # their locals) to the one traceback: megabytes after thousands of sends.
    faults = Faults()
    async with FakeSmsc(faults) as smsc, client(smsc, reconnect=Backoff(0.05, 0.05)) as sms:
        faults.bind_status = CommandStatus.ESME_RINVPASWD  # the password was revoked
        smsc.drop_all()
        for _ in range(100):
            if all(
                isinstance(s, Session) and s.status is SessionStatus.FAILED for s in sms.sessions
            ):
                break
            await asyncio.sleep(0.05)
        depths = []
        for _ in range(50):
            with pytest.raises(SendError) as caught:
                await sms.send(NUMBER, "x")
            frames, tb = 0, caught.value.cause.__traceback__
            while tb is not None:
                frames, tb = frames + 1, tb.tb_next
            depths.append(frames)
        assert max(depths) == depths[0] < 10


async def test_bad_input_raises_before_anything_is_sent() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(AddressError):
            await sms.send("12", "x")
        with pytest.raises(AddressError):
            await sms.send(NUMBER, "x", sender="A sender that is far too long")
        with pytest.raises(MessageTooLongError):
            await sms.send(NUMBER, "x" * 200, flash=True)
        with pytest.raises(ValueError, match="past"):
            await sms.send(NUMBER, "x", schedule=timedelta(seconds=-5))
    assert smsc.submits == []


async def test_schedule_and_validity_use_relative_times() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        await sms.send(NUMBER, "later", schedule=timedelta(hours=2), validity=timedelta(days=1))
    (submit,) = smsc.submits
    assert submit.schedule_delivery_time == "000000020000000R"
    assert submit.validity_period == "000001000000000R"


class _FrozenClock(datetime):
    """The client's clock stopped at noon the day before Europe's spring DST change."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _FrozenClock:
        instant = cls(2027, 3, 27, 11, 0, tzinfo=UTC)  # 12:00 CET in Bratislava
        return instant if tz is None else instant.astimezone(tz)


async def test_schedule_as_a_datetime_across_a_dst_change_is_the_real_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 12:00 on 28 March 2027 in Bratislava (CEST, UTC+2) is 23 hours after 12:00 the day
    # before (CET, UTC+1): subtracting the two in their shared zone gives 24 h, wall clock.
    monkeypatch.setattr(api, "datetime", _FrozenClock)
    bratislava = ZoneInfo("Europe/Bratislava")
    at = _FrozenClock(2027, 3, 28, 12, 0, tzinfo=bratislava)
    async with FakeSmsc() as smsc, client(smsc) as sms:
        await sms.send(NUMBER, "later", schedule=at)
    (submit,) = smsc.submits
    assert submit.schedule_delivery_time == "000000230000000R"


async def test_nagle_is_off() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        session = sms._pool.sessions[0]
        protocol = await session.wait_bound()
        assert protocol._transport is not None
        sock = protocol._transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_the_password_never_reaches_logs_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cret-Pa55word"
    with caplog.at_level(logging.DEBUG):
        async with FakeSmsc(Faults(bind_status=CommandStatus.ESME_RINVPASWD)) as smsc:
            sms = Client("127.0.0.1", smsc.port, "acct", secret, sessions=1, connect_timeout=1.0)
            with pytest.raises(BindError) as info:
                async with sms:
                    pass
    assert secret not in caplog.text
    assert secret not in str(info.value)
    assert secret not in repr(sms._pool.sessions[0].config)


async def test_slow_responses_within_the_timeout_arrive_and_beyond_it_fail_retriably() -> None:
    faults = Faults(response_delay=0.2)
    async with FakeSmsc(faults) as smsc, client(smsc, response_timeout=1.0) as sms:
        assert (await sms.send(NUMBER, "slow but fine")).message_ids
        faults.response_delay = 1.5
        with pytest.raises(SendError) as info:
            await sms.send(NUMBER, "too slow")
        assert info.value.retriable
        assert "no response" in str(info.value)


async def test_a_receipt_read_with_its_submit_sm_resp_is_matched_without_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The protocol resolves the responses of a read before the workers take its deliver_sm,
    so every send() has recorded its id when its receipt (right behind the response) is read."""
    waits = 0
    correlate_soon = Client._correlate_soon

    async def counted(self: Client, receipt: Any) -> Any:
        nonlocal waits
        waits += 1
        return await correlate_soon(self, receipt)

    monkeypatch.setattr(Client, "_correlate_soon", counted)
    reports: list[DeliveryReport] = []
    all_in = asyncio.Event()

    async def handler(event: object) -> None:
        assert isinstance(event, DeliveryReport)
        reports.append(event)
        if len(reports) == 40:
            all_in.set()

    async with (
        FakeSmsc(Faults(receipts=True)) as smsc,
        client(smsc, handler=handler, window=20) as sms,
    ):
        results = await asyncio.gather(
            *(sms.send(NUMBER, f"message {n}", reference=str(n)) for n in range(40))
        )
        await asyncio.wait_for(all_in.wait(), 5.0)
    assert waits == 0
    sent = {result.message_ids[0]: result.reference for result in results}
    assert {r.submitted_id: r.reference for r in reports} == sent


async def test_an_unbind_answered_with_a_generic_nack_still_closes_everything() -> None:
    async with FakeSmsc(Faults(nack_unbind=True)) as smsc:
        sms = client(smsc, sessions=2)
        await sms.start()
        assert (await sms.send(NUMBER, "before the close")).message_ids
        async with asyncio.timeout(5):
            await sms.close()  # it used to raise the nack and leave the sessions running
        assert all(session.status.name == "CLOSED" for session in sms._pool.sessions)
        await asyncio.sleep(0.1)
        assert all(writer.is_closing() or writer.transport.is_closing() for writer in smsc._writers)


async def test_close_ends_the_sends_waiting_for_the_rate_limit_at_once() -> None:
    async with FakeSmsc() as smsc:
        sms = client(smsc, rate_limit=1.0)  # one submit a second: the rest wait their turn
        await sms.start()
        sends = [asyncio.create_task(sms.send(NUMBER, f"message {n}")) for n in range(5)]
        async with asyncio.timeout(5):
            while not smsc.submits:
                await asyncio.sleep(0.01)
        started = asyncio.get_running_loop().time()
        await sms.close()
        outcomes = await asyncio.gather(*sends, return_exceptions=True)
        assert asyncio.get_running_loop().time() - started < 1.0  # not one a second to the end
    refused = [o for o in outcomes if isinstance(o, SendError)]
    assert refused
    assert all(isinstance(o.cause, ClientClosedError) for o in refused)
    assert len(smsc.submits) == len(outcomes) - len(refused)  # what failed never went out


async def test_withdraw_unsent_fails_the_waiting_sends_and_lets_a_started_long_message_finish() -> (
    None
):
    async with FakeSmsc() as smsc:
        sms = client(smsc, rate_limit=2.0)  # two submits a second: the rest wait their turn
        await sms.start()
        long = asyncio.create_task(sms.send(NUMBER, "x" * 400))  # three parts
        async with asyncio.timeout(5):
            while not smsc.submits:  # its first part went out; two wait for the rate limit
                await asyncio.sleep(0.01)
        waiting = [asyncio.create_task(sms.send(NUMBER, f"message {n}")) for n in range(4)]
        await asyncio.sleep(0.05)  # all of them in line behind the long message's parts
        started = asyncio.get_running_loop().time()
        sms.withdraw_unsent()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        withdrawn_after = asyncio.get_running_loop().time() - started
        later = await asyncio.gather(sms.send(NUMBER, "after"), return_exceptions=True)
        result = await long  # not cut in two: its other parts follow at the usual pace
        await sms.close()
    assert withdrawn_after < 1.0  # at once, not one by one at two a second (3 s)
    for outcome in [*outcomes, *later]:
        assert isinstance(outcome, SendError)
        assert isinstance(outcome.cause, ClientClosedError)
        assert list(outcome.message_ids) == [None]
    assert result.parts == 3
    assert len(result.message_ids) == 3
    assert len(smsc.submits) == 3  # the long message's parts, and nothing else


async def test_a_long_message_whose_parts_were_all_refused_is_withdrawn_whole() -> None:
    # Part 1 is throttled (so nothing of the message is out) while part 2 waits for the rate
    # limit; a stop then must not let part 2 go alone: the phone would get it twice.
    async with FakeSmsc(Faults(throttle_first=1)) as smsc:
        sms = client(smsc, rate_limit=1.0)
        await sms.start()
        long = asyncio.create_task(sms.send(NUMBER, "x" * 200))  # two parts
        async with asyncio.timeout(5):
            while not smsc.received:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)  # part 1 answered ESME_RTHROTTLED, part 2 in line
        sms.withdraw_unsent()
        [outcome] = await asyncio.gather(long, return_exceptions=True)
        await sms.close()
    assert isinstance(outcome, SendError)
    assert isinstance(outcome.cause, ClientClosedError)
    assert list(outcome.message_ids) == [None, None]
    assert smsc.submits == []  # no part was accepted


async def test_a_send_joining_the_rate_limit_line_as_it_moves_is_withdrawn_at_once() -> None:
    loop = asyncio.get_running_loop()
    closing, withdrawing = asyncio.Event(), asyncio.Event()
    limiter = RateLimiter(1.0, burst=1.0, closed=withdrawing)
    await limiter.acquire()  # the only token: whoever comes next waits a second each
    lock = limiter._lock
    await lock.acquire()  # a paced send holds the line
    parts = [asyncio.create_task(limiter.acquire(closing)) for _ in range(3)]  # go on after it
    for _ in range(3):
        await asyncio.sleep(0)

    async def new_send() -> float:
        started = loop.time()
        with pytest.raises(ClientClosedError):
            await limiter.acquire()
        return loop.time() - started

    joiner = asyncio.create_task(new_send())  # starts as the holder releases: lock free, line full
    lock.release()
    await asyncio.sleep(0.05)
    withdrawing.set()
    took = await joiner
    for task in parts:
        task.cancel()
    await asyncio.gather(*parts, return_exceptions=True)
    assert took < 1.0  # at once, not after the three paced parts ahead of it (3 s)


def unknown_receipt(number: int) -> DeliverSm:
    text = f"id:{number:X} sub:001 dlvrd:001 stat:DELIVRD err:000 text:"
    return DeliverSm(source_addr="421903123456", esm_class=0x04, short_message=text.encode())


async def test_a_batch_handler_takes_the_ready_receipts_of_one_read_in_one_call() -> None:
    batches: list[list[Event]] = []
    singles: list[Event] = []

    async def batch_handler(events: Sequence[Event]) -> list[BaseException | None]:
        batches.append(list(events))
        return [ValueError("not stored") if n == 1 else None for n in range(len(events))]

    async def handler(event: Event) -> None:
        singles.append(event)

    async with (
        FakeSmsc() as smsc,
        client(smsc, handler=handler, batch_handler=batch_handler),
    ):
        for number in (0xA1, 0xA2, 0xA3):
            smsc.deliver(unknown_receipt(number))
        smsc.deliver(DeliverSm(source_addr="421903123456", short_message=b"an SMS"))
        async with asyncio.timeout(5):
            while len(smsc.answers) < 4:
                await asyncio.sleep(0.01)
    assert [[e.receipt.id for e in b if isinstance(e, DeliveryReport)] for b in batches] == [
        ["A1", "A2", "A3"]
    ]
    assert [type(e).__name__ for e in singles] == ["InboundSms"]  # not ready at once: alone
    sequence = [number for number, _ in smsc.delivered_on]
    retry = CommandStatus.ESME_RX_T_APPN
    assert dict(smsc.answers) == dict(zip(sequence, [0, retry, 0, 0], strict=True))


async def test_receipts_through_a_batch_handler_are_correlated_to_their_sends() -> None:
    reports: list[DeliveryReport] = []
    all_in = asyncio.Event()

    def take(events: Sequence[Event]) -> None:
        reports.extend(e for e in events if isinstance(e, DeliveryReport))
        if len(reports) == 40:
            all_in.set()

    async def batch_handler(events: Sequence[Event]) -> list[BaseException | None]:
        take(events)
        return [None] * len(events)

    async def handler(event: Event) -> None:
        take([event])

    async with (
        FakeSmsc(Faults(receipts=True)) as smsc,
        client(smsc, handler=handler, batch_handler=batch_handler, window=20) as sms,
    ):
        results = await asyncio.gather(
            *(sms.send(NUMBER, f"message {n}", reference=str(n)) for n in range(40))
        )
        await asyncio.wait_for(all_in.wait(), 5.0)
    sent = {result.message_ids[0]: result.reference for result in results}
    assert {r.submitted_id: r.reference for r in reports} == sent


async def test_a_batch_handler_needs_a_handler_for_the_events_it_cannot_take() -> None:
    async def batch_handler(events: Sequence[Event]) -> list[BaseException | None]:
        return [None] * len(events)

    with pytest.raises(ValueError, match="batch_handler needs handler"):
        Client("127.0.0.1", 1, batch_handler=batch_handler)


@pytest.mark.parametrize("tls", [False, True])
async def test_port_0_is_refused_not_taken_for_the_default_port(tls: bool) -> None:
    # Regression: ``port or default`` connected port=0 to 8888 (8887 with TLS), an SMSC the
    # caller never named, where every other port outside 1..65535 is refused.
    with pytest.raises(ValueError, match="port must be 1 to 65535, got 0"):
        Client("127.0.0.1", 0, tls=tls)


async def test_a_receipt_waiting_for_its_submit_does_not_hold_up_the_rest_of_its_read() -> None:
    reports: list[str] = []

    async def batch_handler(events: Sequence[Event]) -> list[BaseException | None]:
        reports.extend(e.receipt.id for e in events if isinstance(e, DeliveryReport))
        return [None] * len(events)

    async def handler(event: Event) -> None:
        assert isinstance(event, DeliveryReport)
        reports.append(event.receipt.id)

    async with (
        FakeSmsc(Faults(hold_first=1.0)) as smsc,
        client(smsc, handler=handler, batch_handler=batch_handler) as sms,
    ):
        held = asyncio.create_task(sms.send(NUMBER, "answered in a second"))
        await asyncio.sleep(0.05)
        known = (await sms.send(NUMBER, "answered at once")).message_ids[0]
        smsc.deliver(unknown_receipt(0xDEAD))  # may be the held one's: waits for its answer
        smsc.deliver(unknown_receipt(int(known, 16)))
        async with asyncio.timeout(0.5):
            while not smsc.answers:
                await asyncio.sleep(0.01)
        late, ready = (number for number, _ in smsc.delivered_on)
        assert [number for number, _ in smsc.answers] == [ready]
        assert not held.done()
        await held
        async with asyncio.timeout(2):
            while len(smsc.answers) < 2:
                await asyncio.sleep(0.01)
    assert [number for number, _ in smsc.answers] == [ready, late]
    assert reports == [known.lstrip("0"), "DEAD"]
