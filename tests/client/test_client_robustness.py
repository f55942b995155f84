"""Regression tests for the client's robustness: drops, unbinds, throttling, close, redelivery.

Each test names the defect it pins down; all run on loopback against the fake SMSC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from o2sms.client import (
    BindError,
    ClientClosedError,
    ConnectionLost,
    DeliveryReport,
    Event,
    InboundSms,
    SendError,
    SendResult,
    SubmitError,
    SyncClient,
)
from o2sms.client.api import Client
from o2sms.receipts import parse
from o2sms.smpp import CommandStatus, DeliverSm
from o2sms.text import split
from tests.client.fake_smsc import FakeSmsc, Faults, client

pytestmark = pytest.mark.asyncio

NUMBER = "+421903123456"


def inbound(text: bytes) -> DeliverSm:
    return DeliverSm(source_addr="421903123456", destination_addr="5555", short_message=text)


async def wait_until(condition: object, timeout: float = 3.0) -> None:
    """Poll ``condition()`` until it is true (fails the test after ``timeout``)."""
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


# --- 4: requests queued for the window, never sent, survive a dropped connection -------------


async def test_queued_requests_are_sent_again_after_the_connection_drops() -> None:
    faults = Faults(drop_after_submits=1, reverse_responses=100)
    async with FakeSmsc(faults) as smsc, client(smsc, window=1) as sms:
        first = asyncio.ensure_future(sms.send(NUMBER, "on the wire"))
        await asyncio.sleep(0)  # the first takes the window; the others queue behind it
        queued = [asyncio.ensure_future(sms.send(NUMBER, f"queued {i}")) for i in range(3)]
        with pytest.raises(SendError) as info:
            await first
        # It was on the wire: the SMSC may have it, so it fails (retriably) for the caller.
        assert info.value.retriable
        assert isinstance(info.value.cause, ConnectionLost)
        faults.drop_after_submits = None
        faults.reverse_responses = 1
        results = await asyncio.gather(*queued)
    assert all(isinstance(r, SendResult) and r.message_ids for r in results)
    assert sorted(s.short_message for s in smsc.submits) == [b"queued 0", b"queued 1", b"queued 2"]


# --- 5: submits crossing the SMSC's unbind wait for the reconnect -----------------------------


async def test_submits_right_after_the_peer_unbind_are_sent_after_the_reconnect() -> None:
    faults = Faults(unbind_after_submits=1)
    async with FakeSmsc(faults) as smsc, client(smsc, window=1) as sms:
        outcomes = await asyncio.gather(
            *(sms.send(NUMBER, f"m{i}") for i in range(3)), return_exceptions=True
        )
    assert all(isinstance(o, SendResult) for o in outcomes), outcomes
    assert sorted(s.short_message for s in smsc.submits) == [b"m0", b"m1", b"m2"]


async def test_a_submit_answered_after_the_peer_unbind_is_reported_sent() -> None:
    # Regression: the session closed as soon as the SMSC unbound it, so the submit_sm_resp the
    # SMSC sent right after its unbind (still allowed: responses travel while unbinding) was
    # never read. The send failed with ConnectionLost for a message the SMSC had accepted,
    # and resending it would give the subscriber a second SMS.
    async with FakeSmsc(Faults(unbind_before_answer=0.1)) as smsc, client(smsc) as sms:
        result = await sms.send(NUMBER, "accepted as the SMSC unbinds")
        assert (await sms.send(NUMBER, "after the reconnect")).message_ids
    assert smsc.unbinds == 2  # ours at the close, the first answered as soon as it came
    assert [s.short_message for s in smsc.submits] == [
        b"accepted as the SMSC unbinds",
        b"after the reconnect",
    ]
    assert result.message_ids


# --- 6: throttling pauses once per burst, and gives up after the retry timeout ---------------


async def test_a_burst_of_throttled_answers_pauses_the_pool_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with FakeSmsc(Faults(throttle_first=10)) as smsc, client(smsc, window=10) as sms:
        with caplog.at_level(logging.WARNING, logger="o2sms.client"):
            results = await asyncio.gather(*(sms.send(NUMBER, f"m{i}") for i in range(10)))
    assert len({r.message_ids[0] for r in results}) == 10
    pauses = [r for r in caplog.records if "pausing submits" in r.getMessage()]
    assert len(pauses) == 1


@pytest.mark.parametrize("answer", ["submit_sm_resp", "generic_nack"])
async def test_a_pause_also_holds_the_requests_queued_behind_the_window(answer: str) -> None:
    # Regression: requests already waiting for the window went out as it freed, during the
    # pause, so a deep queue hit a refusing SMSC at full speed whatever the pool decided. Later
    # regression: the slot the refusing answer freed still sent one of them before the pool
    # had read that answer.
    full: list[int] = [CommandStatus.ESME_RMSGQFUL]
    faults = (
        Faults(submit_statuses=full) if answer == "submit_sm_resp" else Faults(nack_statuses=full)
    )
    async with FakeSmsc(faults) as smsc, client(smsc, window=1) as sms:
        results = await asyncio.gather(*(sms.send(NUMBER, f"m{i}") for i in range(20)))
    assert len({r.message_ids[0] for r in results}) == 20
    assert smsc.received == 21  # the refused one, then each once
    refused_at = smsc.submit_log[0][0]
    # The pause lasts THROTTLE_BACKOFF.initial (0.2 s) give or take its jitter: nothing goes
    # out within it.
    during = [t - refused_at for t, _ in smsc.submit_log[1:] if t - refused_at < 0.1]
    assert during == []


async def test_a_pause_also_holds_the_requests_waiting_for_the_rate_limit() -> None:
    # Regression: a request that passed the pause check and then waited for a token of the
    # configured rate limit went out when it got one, pause or not.
    full: list[int] = [CommandStatus.ESME_RMSGQFUL]
    async with (
        FakeSmsc(Faults(submit_statuses=full)) as smsc,
        client(smsc, window=1, rate_limit=100.0) as sms,
    ):
        results = await asyncio.gather(*(sms.send(NUMBER, f"m{i}") for i in range(20)))
    assert len({r.message_ids[0] for r in results}) == 20
    refused_at = smsc.submit_log[0][0]
    during = [t for t, _ in smsc.submit_log[1:] if t - refused_at < 0.1]
    assert len(during) <= 1, during


async def test_throttled_answers_pace_the_resume_even_when_queue_full_began_the_pause() -> None:
    # Regression: only the answer that decided a pause could start the pacing, so throttled
    # answers of the same burst after a queue-full pause left the resume unpaced, all at once.
    statuses: list[int] = [CommandStatus.ESME_RMSGQFUL, CommandStatus.ESME_RTHROTTLED]
    async with FakeSmsc(Faults(submit_statuses=statuses)) as smsc, client(smsc, window=2) as sms:
        await asyncio.gather(sms.send(NUMBER, "refused: queue full"), sms.send(NUMBER, "throttled"))
        paced = sms._pool._adaptive.limiter
    assert smsc.received == 4
    assert paced is not None


async def test_permanent_throttling_fails_retriably_after_the_retry_timeout() -> None:
    faults = Faults(throttle_first=1_000_000)
    async with FakeSmsc(faults) as smsc, client(smsc) as sms:
        with pytest.raises(SendError) as info:
            await sms.send(NUMBER, "never accepted", retry_timeout=0.5)
        assert info.value.retriable
        assert info.value.command_status == CommandStatus.ESME_RTHROTTLED
        assert isinstance(info.value.cause, SubmitError)
        assert smsc.submits == []


# --- 2: a long inbound SMS survives a handler that fails once ---------------------------------


async def test_a_long_inbound_sms_is_offered_again_when_its_last_part_is_redelivered() -> None:
    text = "Ahoj! " * 40
    parts = [
        DeliverSm(
            source_addr="421903123456",
            destination_addr="5555",
            esm_class=part.esm_class,
            data_coding=part.data_coding,
            short_message=part.short_message,
        )
        for part in split(text, reference=9)
    ]
    handled: list[str] = []
    failures = [RuntimeError("database down")]

    async def handler(event: Event) -> None:
        assert isinstance(event, InboundSms)
        if failures:
            raise failures.pop()
        handled.append(event.text)

    async with FakeSmsc() as smsc, client(smsc, handler=handler):
        await asyncio.sleep(0.05)
        for part in parts:
            smsc.deliver(part)
        await wait_until(lambda: len(smsc.answers) == 2)
        # The first part was acknowledged when it came; the last asks for redelivery.
        assert [status for _, status in smsc.answers] == [0, CommandStatus.ESME_RX_T_APPN]
        smsc.deliver(parts[-1])  # the SMSC redelivers only the part it got an error for
        await wait_until(lambda: len(smsc.answers) == 3)
    assert handled == [text]
    assert smsc.answers[-1][1] == 0


# --- 8: close lets running handlers finish, fails queued submits, then unbinds ----------------


async def test_close_lets_a_running_handler_finish_and_fails_queued_submits() -> None:
    started = asyncio.Event()
    handled: list[str] = []

    async def handler(event: Event) -> None:
        assert isinstance(event, InboundSms)
        started.set()
        await asyncio.sleep(0.2)  # still storing it when close() is called
        handled.append(event.text)

    faults = Faults(response_delay=0.3)  # a submit stays on the wire for a while
    async with FakeSmsc(faults) as smsc:
        sms = client(smsc, handler=handler, window=1)
        await sms.start()
        smsc.deliver(inbound(b"keep me"))
        await started.wait()
        sends = [asyncio.ensure_future(sms.send(NUMBER, f"m{i}")) for i in range(3)]
        await wait_until(lambda: smsc.received == 1)
        await sms.close()
        outcomes = await asyncio.gather(*sends, return_exceptions=True)
        with pytest.raises(SendError) as after:
            await sms.send(NUMBER, "after close")
        await asyncio.sleep(0.05)
    assert handled == ["keep me"]
    assert [status for _, status in smsc.answers] == [0]  # answered before the unbind
    assert smsc.unbinds == 1
    assert isinstance(after.value.cause, ClientClosedError)
    on_the_wire, *queued = outcomes
    assert isinstance(on_the_wire, SendResult)  # its response came in before the unbind
    assert all(isinstance(o, SendError) and isinstance(o.cause, ClientClosedError) for o in queued)
    assert smsc.received == 1  # the queued ones never went out


async def test_close_does_not_cancel_a_handler_half_way() -> None:
    started = asyncio.Event()
    handled: list[str] = []

    async def handler(event: Event) -> None:
        assert isinstance(event, InboundSms)
        started.set()
        await asyncio.sleep(0.2)
        handled.append(event.text)

    async with FakeSmsc() as smsc:
        async with client(smsc, handler=handler):
            smsc.deliver(inbound(b"receipt being stored"))
            await started.wait()
        await asyncio.sleep(0.05)
    assert handled == ["receipt being stored"]
    assert [status for _, status in smsc.answers] == [0]
    assert smsc.unbinds == 1


# --- 3: an unknown receipt does not wait behind a steady stream of new submits ---------------


async def test_an_unmatched_receipt_is_not_held_up_by_steady_sending() -> None:
    receipt = (
        b"id:DEADBEEF sub:001 dlvrd:001 submit date:2611251200 done date:2611251201 "
        b"stat:DELIVRD err:000 text:"
    )
    stop = asyncio.Event()
    async with FakeSmsc() as smsc, client(smsc, response_timeout=30.0) as sms:

        async def keep_sending() -> int:
            sent = 0
            while not stop.is_set():
                await sms.send(NUMBER, f"m{sent}")
                sent += 1
            return sent

        sender = asyncio.ensure_future(keep_sending())
        await wait_until(lambda: smsc.received > 5)
        smsc.deliver(DeliverSm(source_addr="421903123456", esm_class=0x04, short_message=receipt))
        events = sms.events()
        try:
            # Far sooner than the response timeout (30 s) the steady sending would have cost.
            report = await asyncio.wait_for(anext(events), 5.0)
        finally:
            stop.set()
            sent = await sender
    assert isinstance(report, DeliveryReport)
    assert report.submitted_id is None
    assert report.receipt.id == "DEADBEEF"
    assert sent > 5


async def test_an_unmatched_receipt_does_not_wait_for_sends_with_nothing_on_the_wire() -> None:
    # Regression: a receipt no send matched (one for another instance's message, or from
    # before a restart) waited, up to the response timeout, for every send started before it
    # arrived, also those still waiting for the rate limit, a throttling pause or a session:
    # none of them had a submit_sm out, so none could be its message. With a rate cap and a
    # backlog, every such receipt held an inbound worker for the whole response timeout.
    receipt = (
        b"id:DEADBEEF sub:001 dlvrd:001 submit date:2611251200 done date:2611251201 "
        b"stat:DELIVRD err:000 text:"
    )
    async with FakeSmsc() as smsc, client(smsc, response_timeout=30.0, rate_limit=2.0) as sms:
        backlog = [asyncio.ensure_future(sms.send(NUMBER, f"m{i}")) for i in range(20)]
        await wait_until(lambda: smsc.received >= 1)  # the others wait for their turn
        smsc.deliver(DeliverSm(source_addr="421903123456", esm_class=0x04, short_message=receipt))
        try:
            report = await asyncio.wait_for(anext(sms.events()), 2.0)
        finally:
            sms.withdraw_unsent()
            await asyncio.gather(*backlog, return_exceptions=True)
    assert isinstance(report, DeliveryReport)
    assert report.receipt.id == "DEADBEEF"
    assert report.submitted_id is None


# --- 1: SyncClient.events(timeout) acknowledges what was handled, loses nothing --------------


async def test_sync_events_timeout_acknowledges_the_handled_event_and_loses_none() -> None:
    async with FakeSmsc() as smsc:

        def run() -> list[str]:
            texts: list[str] = []
            with SyncClient("127.0.0.1", smsc.port, "acct", "pw", sessions=1) as sms:
                loop = sms._loop
                assert loop is not None
                for event in sms.events(timeout=0.3):
                    assert isinstance(event, InboundSms)
                    texts.append(event.text)
                    if len(texts) == 1:
                        # The loop thread is busy when the next event is asked for, longer
                        # than the timeout: "two" is waiting all the same and must come.
                        loop.call_soon_threadsafe(time.sleep, 0.5)
            return texts

        async def deliver() -> None:
            await wait_until(lambda: smsc.sessions == 1)
            smsc.deliver(inbound(b"one"))
            smsc.deliver(inbound(b"two"))

        texts, _ = await asyncio.gather(asyncio.to_thread(run), deliver())
        await asyncio.sleep(0.05)
    assert texts == ["one", "two"]
    assert [status for _, status in smsc.answers] == [0, 0]


async def test_sync_events_never_acknowledges_an_event_whose_handling_failed() -> None:
    async with FakeSmsc() as smsc:

        def run() -> list[str]:
            seen: list[str] = []
            with SyncClient("127.0.0.1", smsc.port, "acct", "pw", sessions=1) as sms:
                try:
                    for event in sms.events(timeout=2.0):
                        assert isinstance(event, InboundSms)
                        seen.append(event.text)
                        raise RuntimeError("the application failed to store it")
                except RuntimeError:
                    pass
                # The application carries on reading: the failed one must come back, not be
                # acknowledged as handled.
                for event in sms.events(timeout=1.0):
                    assert isinstance(event, InboundSms)
                    seen.append(event.text)
                    if len(seen) == 2:
                        break
            return seen

        async def deliver() -> None:
            await wait_until(lambda: smsc.sessions == 1)
            smsc.deliver(inbound(b"one"))

        seen, _ = await asyncio.gather(asyncio.to_thread(run), deliver())
    assert seen[0] == "one"
    assert smsc.answers[0][1] != 0  # the failed handling answered with an error, not ESME_ROK


async def test_sync_close_from_another_thread_ends_a_waiting_events_loop_and_unbinds() -> None:
    async with FakeSmsc() as smsc:

        def run() -> tuple[BaseException | None, bool]:
            outcome: list[BaseException] = []
            with SyncClient("127.0.0.1", smsc.port, "acct", "pw", sessions=1) as sms:

                def read() -> None:
                    try:
                        for _ in sms.events():  # waits: no event ever comes
                            pass
                    except BaseException as exc:  # what a Ctrl-C leaves behind, in effect
                        outcome.append(exc)

                reader = threading.Thread(target=read)
                reader.start()
                time.sleep(0.3)
            reader.join(5)
            client_threads = any(t.name == "o2sms-client" for t in threading.enumerate())
            return (outcome[0] if outcome else None), client_threads

        (outcome, loop_alive) = await asyncio.to_thread(run)
        await asyncio.sleep(0.1)
    assert smsc.unbinds == 1  # closed properly, not abandoned
    assert not loop_alive
    assert outcome is not None


async def test_sync_events_called_again_after_an_abandoned_wait_gets_the_next_event() -> None:
    async with FakeSmsc() as smsc:

        def run() -> list[str]:
            with SyncClient("127.0.0.1", smsc.port, "acct", "pw", sessions=1) as sms:

                def wait_and_give_up() -> None:
                    with contextlib.suppress(BaseException):  # its wait is cancelled
                        next(sms.events(), None)

                abandoned = threading.Thread(target=wait_and_give_up)
                abandoned.start()  # waits for an event, then is given up (as after Ctrl-C)
                time.sleep(0.2)
                texts = []
                for event in sms.events(timeout=2.0):  # must not fail, nor lose "one"
                    assert isinstance(event, InboundSms)
                    texts.append(event.text)
                    break
                abandoned.join(5)
            return texts

        async def deliver() -> None:
            await wait_until(lambda: smsc.sessions == 1)
            await asyncio.sleep(0.6)
            smsc.deliver(inbound(b"one"))

        texts, _ = await asyncio.gather(asyncio.to_thread(run), deliver())
    assert texts == ["one"]


# --- 7: events() waiting room is bounded; events of a dead connection are not handed out -----


async def test_events_wait_in_a_bounded_queue_and_the_rest_stay_unanswered() -> None:
    async with FakeSmsc() as smsc, client(smsc, max_pending_events=2) as sms:
        await asyncio.sleep(0.05)
        for i in range(5):
            smsc.deliver(inbound(f"m{i}".encode()))
        await asyncio.sleep(0.1)
        assert sms._events.qsize() == 2
        assert smsc.answers == []  # backpressure: nothing answered before it is consumed
        events = sms.events()
        texts = []
        for _ in range(5):
            event = await asyncio.wait_for(anext(events), 2.0)
            assert isinstance(event, InboundSms)
            texts.append(event.text)
    assert sorted(texts) == [f"m{i}" for i in range(5)]


async def test_events_of_a_dropped_connection_are_not_handed_out() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        await wait_until(lambda: smsc.sessions == 1)
        smsc.deliver(inbound(b"stale"))  # nobody reads it before the link dies
        await asyncio.sleep(0.05)
        smsc.drop_all()
        await wait_until(lambda: smsc.sessions == 1 and smsc.bind_attempts == 2)
        smsc.deliver(inbound(b"fresh"))
        event = await asyncio.wait_for(anext(sms.events()), 2.0)
    assert isinstance(event, InboundSms)
    assert event.text == "fresh"


# --- 9: a bind refused for the session limit is retriable -------------------------------------


async def test_bind_refused_for_the_session_limit_is_retriable() -> None:
    assert BindError(CommandStatus.ESME_RBINDFAIL).retriable
    assert not BindError(CommandStatus.ESME_RINVPASWD).retriable
    async with FakeSmsc(Faults(max_sessions=0)) as smsc:
        with pytest.raises(BindError) as info:
            async with client(smsc, connect_timeout=0.3, response_timeout=0.3):
                pass
    assert info.value.command_status == CommandStatus.ESME_RBINDFAIL
    assert info.value.retriable


# --- 10: the correlation capacity counts parts, not the keys of their ids --------------------


async def test_correlation_capacity_counts_parts() -> None:
    sms = Client("127.0.0.1", 1, "acct", "pw", sessions=1)
    sms._correlation_capacity = 3
    ids = ["04000000086ECD50", "04000000086ECD51", "04000000086ECD52", "04000000086ECD53"]
    for number, message_id in enumerate(ids, start=1):
        sms._remember(message_id, "ref", "421903123456", number, 4)

    def correlated(message_id: str) -> bool:
        text = f"id:{int(message_id, 16)} sub:001 dlvrd:001 stat:ENROUTE err:000 text:"
        return sms._correlate(parse(text)) is not None

    # The three newest parts are all remembered (by hex or decimal id); the oldest is not.
    assert [correlated(m) for m in ids] == [False, True, True, True]


# --- 11: schedule and validity beyond what a relative time can say --------------------------


async def test_schedule_or_validity_beyond_99_days_is_refused_clearly() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(ValueError, match=r"schedule is 120 days ahead.*99 days"):
            await sms.send(NUMBER, "x", schedule=timedelta(days=120))
        later = datetime.now(UTC) + timedelta(days=150)
        with pytest.raises(ValueError, match=r"validity is 1\d\d days ahead"):
            await sms.send(NUMBER, "x", validity=later)
        assert smsc.submits == []
        await sms.send(NUMBER, "x", validity=timedelta(days=99, hours=23))
    assert smsc.submits[0].validity_period == "000099230000000R"


async def test_a_zero_validity_is_refused_not_dropped() -> None:
    # Regression: validity=timedelta(0) is falsy, so it was sent as no validity at all (the
    # SMSC's default, often days) where every other validity not ahead is refused.
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(ValueError, match="validity is in the past"):
            await sms.send(NUMBER, "x", validity=timedelta(0))
        assert smsc.submits == []


async def test_every_session_of_a_pool_shares_one_refill_gate_across_reconnects() -> None:
    # The gate holds refills on the pool's other sessions too; it only can if they share it.
    async with (
        FakeSmsc(Faults(unbind_after_submits=1)) as smsc,
        client(smsc, sessions=2) as sms,
    ):
        await wait_until(lambda: smsc.sessions == 2)
        first = [s.protocol for s in sms._pool.sessions]
        await asyncio.gather(*(sms.send(NUMBER, f"m{i}") for i in range(4)))
        await wait_until(lambda: all(s.is_bound for s in sms._pool.sessions))
        now = [s.protocol for s in sms._pool.sessions]
        gates = {id(p._gate) for p in first + now if p is not None}
    assert smsc.unbinds >= 1  # a session reconnected: its new protocol has the same gate
    assert any(p not in first for p in now)
    assert len(gates) == 1


async def test_sync_client_used_outside_its_with_block_raises_client_closed_error() -> None:
    unopened = SyncClient("127.0.0.1", 1, "acct", "pw")
    with pytest.raises(ClientClosedError, match="with block"):
        unopened.send("+421903123456", "hello")
    async with FakeSmsc() as smsc:

        def run() -> SyncClient:
            with SyncClient("127.0.0.1", smsc.port, "acct", "pw", sessions=1) as sms:
                sms.send("+421903123456", "hello")
            return sms

        closed = await asyncio.to_thread(run)
    # Not an AssertionError (nor, under python -O, an AttributeError): the client's own error.
    with pytest.raises(ClientClosedError):
        closed.send("+421903123456", "hello again")
    with pytest.raises(ClientClosedError):
        next(closed.events(timeout=0.1))


# --- responses with strings longer than SMPP 3.4 allows are still matched ----------------------


async def test_a_long_bind_system_id_and_submit_message_id_are_accepted_and_recorded() -> None:
    # Regression: the codec refused a bind_transceiver_resp whose system_id is over 15
    # characters and a submit_sm_resp whose message_id is over 64, as it refuses such requests:
    # the bind failed, and an SMS the SMSC had accepted failed (and would be sent again).
    long_system_id = "SMSC-" + "s" * 20
    long_message_id = "A1B2" * 20  # 80 characters

    def answer(request: bytes, body: bytes) -> bytes:
        head = (16 + len(body)).to_bytes(4, "big")
        command_id = (int.from_bytes(request[4:8], "big") | 0x80000000).to_bytes(4, "big")
        return head + command_id + b"\0\0\0\0" + request[12:16] + body

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readexactly(16)
                request = head + await reader.readexactly(int.from_bytes(head[:4], "big") - 16)
                command_id = int.from_bytes(request[4:8], "big")
                if command_id in (0x01, 0x02, 0x09):  # bind_*
                    writer.write(answer(request, long_system_id.encode() + b"\0"))
                elif command_id == 0x04:  # submit_sm
                    writer.write(answer(request, long_message_id.encode() + b"\0"))
                else:  # enquire_link, unbind: header-only responses
                    writer.write(answer(request, b""))
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with Client(
            "127.0.0.1",
            port,
            system_id="acct",
            password="pw",
            sessions=1,
            connect_timeout=2.0,
            response_timeout=2.0,
        ) as sms:
            result = await sms.send(NUMBER, "hello")
    finally:
        server.close()
        await server.wait_closed()
    assert result.message_ids == (long_message_id,)
