"""The order in which SmppProtocol hands out the events of one read."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import pytest

from o2sms.client.connection import InboundAnswer, RefillGate, SmppProtocol
from o2sms.client.errors import EventNotConfirmedError, NotSentError, ResponseTimeout
from o2sms.smpp.connection import (
    Connection,
    Event,
    RequestReceived,
    ResponseReceived,
    UnexpectedResponse,
)
from o2sms.smpp.constants import CommandId, CommandStatus
from o2sms.smpp.pdu import BindTransceiver, DeliverSm, Pdu, SubmitSm, SubmitSmResp
from o2sms.smpp.state import Role

pytestmark = pytest.mark.asyncio


class ScriptedConnection(Connection):
    """A Connection whose next events are given by the test."""

    def __init__(self, events: list[Event]) -> None:
        super().__init__(Role.ESME)
        self.script: deque[Event] = deque(events)

    def next_event(self) -> Event | None:
        return self.script.popleft() if self.script else None


def deliver(n: int) -> DeliverSm:
    return DeliverSm(sequence_number=n, esm_class=4, short_message=b"id:%d stat:DELIVRD" % n)


def response(n: int) -> ResponseReceived:
    return ResponseReceived(
        SubmitSm(sequence_number=n), SubmitSmResp(sequence_number=n, message_id=str(n))
    )


async def dispatched(events: list[Event]) -> list[tuple[str, Any]]:
    """What _dispatch did with ``events``, in order: responses resolved, requests queued."""

    async def handler(pdu: Pdu) -> int:
        return 0

    protocol = SmppProtocol(ScriptedConnection(events), on_inbound=handler)
    done: list[tuple[str, Any]] = []

    def resolve(sequence_number: int, response: Pdu | None, error: Exception | None) -> None:
        done.append(("resolve", sequence_number))

    def accept(pdu: Pdu) -> None:
        done.append(("inbound", pdu.sequence_number))

    protocol._resolve = resolve  # type: ignore[method-assign]
    protocol._accept_inbound = accept  # type: ignore[method-assign]
    protocol._dispatch()
    await asyncio.sleep(0)
    return done


async def test_requests_are_queued_after_the_responses_read_with_them() -> None:
    events: list[Event] = [
        response(1),
        RequestReceived(deliver(101)),
        response(2),
        RequestReceived(deliver(102)),
        response(3),
    ]
    assert await dispatched(events) == [
        ("resolve", 1),
        ("resolve", 2),
        ("resolve", 3),
        ("inbound", 101),
        ("inbound", 102),
    ]


async def test_any_other_event_takes_the_requests_before_it_first() -> None:
    events: list[Event] = [
        RequestReceived(deliver(101)),
        response(1),
        UnexpectedResponse(SubmitSmResp(sequence_number=77)),
        response(2),
        RequestReceived(deliver(102)),
    ]
    assert await dispatched(events) == [
        ("resolve", 1),
        ("inbound", 101),
        ("resolve", 2),
        ("inbound", 102),
    ]


def answer(n: int, status: int) -> ResponseReceived:
    return ResponseReceived(
        SubmitSm(sequence_number=n), SubmitSmResp(sequence_number=n, command_status=status)
    )


@pytest.mark.parametrize("first_reader", ["gone", "waiting"])
async def test_the_window_is_refilled_only_after_every_slow_down_answer_of_a_read_was_read(
    first_reader: str,
) -> None:
    # The pool decides a pause when it reads a throttled or queue-full answer, and takes back
    # what waits for the window. A refill that ran before the reader of any such answer of
    # the read (here the second, whose first reader gave up or decided nothing) would send
    # queued requests into that pause. A plain answer read after them must not refill either.
    throttled, queue_full = CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL
    protocol = SmppProtocol(
        ScriptedConnection([answer(1, throttled), answer(2, queue_full), answer(3, 0)])
    )
    loop = asyncio.get_running_loop()
    order: list[str] = []
    futures = {n: loop.create_future() for n in (1, 2, 3)}
    if first_reader == "gone":
        futures[1].cancel()

    async def reader(n: int) -> None:
        await futures[n]
        order.append(f"read {n}")

    readers = [asyncio.create_task(reader(n)) for n in (2, 3)]
    if first_reader == "waiting":
        readers.append(asyncio.create_task(reader(1)))
    await asyncio.sleep(0)  # every reader waits for its answer
    protocol._futures.update(futures)
    protocol._queued.append((SubmitSm(sequence_number=9), loop.create_future()))
    protocol._send_queued = lambda: order.append("refill")  # type: ignore[method-assign]
    protocol._dispatch()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.sleep(0)
    assert order.count("refill") == 1
    slow_down_readers = ["read 2"] if first_reader == "gone" else ["read 1", "read 2"]
    for read in slow_down_readers:
        assert order.index(read) < order.index("refill"), order


async def test_a_slow_down_answer_on_one_session_holds_the_refills_of_the_others() -> None:
    # A pool's sessions share one RefillGate: a plain answer read on another session in the same
    # loop turn, before the pool has read the throttled one, must not send into the pause.
    gate = RefillGate()
    throttled_session = SmppProtocol(
        ScriptedConnection([answer(1, CommandStatus.ESME_RTHROTTLED)]), refill_gate=gate
    )
    other_session = SmppProtocol(ScriptedConnection([answer(2, 0)]), refill_gate=gate)
    loop = asyncio.get_running_loop()
    order: list[str] = []
    futures = {n: loop.create_future() for n in (1, 2)}

    async def reader(n: int) -> None:
        await futures[n]
        order.append(f"read {n}")

    readers = [asyncio.create_task(reader(n)) for n in (1, 2)]
    await asyncio.sleep(0)
    throttled_session._futures[1] = futures[1]
    other_session._futures[2] = futures[2]
    other_session._queued.append((SubmitSm(sequence_number=9), loop.create_future()))
    other_session._send_queued = lambda: order.append("refill")  # type: ignore[method-assign]
    throttled_session._dispatch()
    other_session._dispatch()  # the same loop turn
    assert order == []
    await asyncio.gather(*readers)
    await asyncio.sleep(0)
    assert order.count("refill") == 1
    assert order.index("read 1") < order.index("refill"), order


async def test_a_failing_refill_leaves_the_other_sessions_refilled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = RefillGate()
    broken = SmppProtocol(ScriptedConnection([]), refill_gate=gate, name="broken")
    fine = SmppProtocol(ScriptedConnection([]), refill_gate=gate, name="fine")
    order: list[str] = []

    def fail() -> None:
        raise RuntimeError("a bug")

    broken.refill = fail  # type: ignore[method-assign]
    fine.refill = lambda: order.append("fine")  # type: ignore[method-assign]
    gate.hold(asyncio.get_running_loop())
    gate.wait(broken)
    gate.wait(fine)
    await asyncio.sleep(0)
    assert order == ["fine"]
    assert not gate.held
    assert "broken: cannot refill the window" in caplog.text


class Wire:
    """A transport that keeps what is written and never delivers anything (a dead link)."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def test_requests_queued_when_the_keepalive_goes_unanswered_are_not_sent_into_the_link() -> (
    None
):
    # Regression: a submit timing out with the unanswered enquire_link (both sent into the
    # silent link in one turn) freed a slot, and a queued submit went out into the link just
    # found dead before it was aborted: that send failed with ConnectionLost ("the SMSC may
    # have it") instead of NotSentError, which sends it again on another session.
    loop = asyncio.get_running_loop()
    start = loop.time()
    esme = Connection(
        Role.ESME, window=2, response_timeout=1.0, enquire_link_interval=0.5, now=start
    )
    smsc = Connection(Role.SMSC, enquire_link_interval=None)
    esme.send(BindTransceiver(system_id="acct", password="pw"), start)
    smsc.receive_data(esme.data_to_send(), start)
    bind = smsc.next_event()
    assert isinstance(bind, RequestReceived)
    smsc.send(bind.pdu.response(), start)
    esme.receive_data(smsc.data_to_send(), start)
    assert isinstance(esme.next_event(), ResponseReceived)
    protocol = SmppProtocol(esme)
    wire = Wire()
    protocol.connection_made(wire)  # type: ignore[arg-type]
    sends = [
        asyncio.ensure_future(protocol.request(SubmitSm(short_message=b"m%d" % n)))
        for n in range(4)
    ]
    await asyncio.sleep(0)  # m0 and m1 go out, m2 and m3 wait for the window
    # The link is silent: m0 and m1 time out; the enquire_link and m2 take their slots.
    esme.tick(start + 1.5)
    protocol._dispatch()
    assert [r.command_id for r in esme.outstanding_requests()] == [
        CommandId.ENQUIRE_LINK,
        CommandId.SUBMIT_SM,
    ]
    # ... and time out together in their turn: the link is dead.
    esme.tick(start + 3.0)
    protocol._dispatch()
    async with asyncio.timeout(0.2):  # settled by these two turns, not by the loop's timer
        outcomes = await asyncio.gather(*sends, return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [
        ResponseTimeout,
        ResponseTimeout,
        ResponseTimeout,
        NotSentError,
    ]
    assert b"m3" not in wire.written


class Batches:
    """A batch handler that records its calls, holds them until released, and answers each
    request with the status (or error) ``outcome`` gives for it (None: leaves it unanswered)."""

    def __init__(self, outcome: Any = lambda pdu: 0) -> None:
        self.calls: list[list[int]] = []
        self.order: list[str] = []  #: "batch" per call, among what the test adds
        self.release = asyncio.Event()
        self.release.set()
        self.outcome = outcome
        self.answers: list[tuple[int, int]] = []
        self.most_in_hand = 0
        self._in_hand = 0

    async def __call__(self, pdus: list[Pdu], answer: InboundAnswer) -> None:
        self.calls.append([pdu.sequence_number for pdu in pdus])
        self.order.append("batch")
        self._in_hand += len(pdus)
        self.most_in_hand = max(self.most_in_hand, self._in_hand)
        try:
            await self.release.wait()
        finally:
            self._in_hand -= len(pdus)
        for pdu in pdus:
            outcome = self.outcome(pdu)
            if outcome is not None:
                answer(pdu, outcome)

    def protocol(self, events: list[Event], **options: Any) -> SmppProtocol:
        protocol = SmppProtocol(ScriptedConnection(events), on_inbound_batch=self, **options)

        def answer(pdu: Pdu, status: int) -> None:
            self.answers.append((pdu.sequence_number, status))

        protocol._answer = answer  # type: ignore[method-assign]
        return protocol


async def test_the_requests_of_one_read_go_to_the_batch_handler_together_after_the_responses() -> (
    None
):
    # A send() reads its submit_sm_resp before the handler sees the receipt read behind it.
    batches = Batches()
    protocol = batches.protocol(
        [response(1), RequestReceived(deliver(101)), RequestReceived(deliver(102)), response(2)]
    )
    loop = asyncio.get_running_loop()
    futures = {n: loop.create_future() for n in (1, 2)}

    async def sender(n: int) -> None:
        await futures[n]
        batches.order.append(f"send {n}")

    senders = [asyncio.create_task(sender(n)) for n in (1, 2)]
    await asyncio.sleep(0)
    protocol._futures.update(futures)
    batches.release.clear()
    protocol._dispatch()
    await asyncio.gather(*senders)
    await asyncio.sleep(0)
    assert batches.calls == [[101, 102]]
    assert batches.order == ["send 1", "send 2", "batch"]
    assert batches.answers == []  # not before the handler is done
    batches.release.set()
    await asyncio.sleep(0.01)
    assert batches.answers == [(101, 0), (102, 0)]


async def test_a_failure_in_a_batch_answers_a_temporary_error_for_its_request_only() -> None:
    def outcome(pdu: Pdu) -> Any:
        return {102: EventNotConfirmedError("left"), 103: ValueError("a bug")}.get(
            pdu.sequence_number, 0
        )

    batches = Batches(outcome)
    protocol = batches.protocol([RequestReceived(deliver(n)) for n in (101, 102, 103, 104)])
    protocol._dispatch()
    await asyncio.sleep(0.01)
    retry = CommandStatus.ESME_RX_T_APPN
    assert batches.answers == [(101, 0), (102, retry), (103, retry), (104, 0)]


async def test_a_batch_handler_that_fails_answers_a_temporary_error_for_the_whole_batch() -> None:
    def outcome(pdu: Pdu) -> Any:
        raise RuntimeError("the commit failed")

    batches = Batches(outcome)
    protocol = batches.protocol([RequestReceived(deliver(n)) for n in (101, 102)])
    protocol._dispatch()
    await asyncio.sleep(0.01)
    retry = CommandStatus.ESME_RX_T_APPN
    assert batches.answers == [(101, retry), (102, retry)]


async def test_batches_hold_at_most_inbound_concurrency_requests() -> None:
    batches = Batches()
    batches.release.clear()
    protocol = batches.protocol(
        [RequestReceived(deliver(n)) for n in range(101, 106)], inbound_concurrency=2
    )
    protocol._dispatch()
    await asyncio.sleep(0.01)
    assert batches.calls == [[101, 102]]
    batches.release.set()
    await asyncio.sleep(0.01)
    assert batches.calls == [[101, 102], [103, 104], [105]]
    assert batches.most_in_hand == 2
    assert [n for n, _ in batches.answers] == [101, 102, 103, 104, 105]


async def test_a_drain_lets_the_batch_in_hand_finish_and_takes_no_more() -> None:
    batches = Batches()
    batches.release.clear()
    events: list[Event] = [RequestReceived(deliver(n)) for n in range(101, 104)]
    protocol = batches.protocol(events, inbound_concurrency=2)
    protocol._dispatch()
    await asyncio.sleep(0)
    drained = asyncio.create_task(protocol.drain(timeout=5.0))
    await asyncio.sleep(0.01)
    assert not drained.done()  # waits for the batch in hand
    batches.release.set()
    await drained
    await asyncio.sleep(0.01)
    assert batches.calls == [[101, 102]]  # 103 stays unanswered: the SMSC delivers it again
    assert batches.answers == [(101, 0), (102, 0)]


async def test_a_request_the_batch_handler_left_unanswered_gets_a_temporary_error() -> None:
    batches = Batches(lambda pdu: None if pdu.sequence_number == 102 else 0)
    protocol = batches.protocol([RequestReceived(deliver(n)) for n in (101, 102, 103)])
    protocol._dispatch()
    await asyncio.sleep(0.01)
    retry = CommandStatus.ESME_RX_T_APPN
    assert batches.answers == [(101, 0), (103, 0), (102, retry)]


async def test_a_request_answered_early_makes_room_for_the_next_before_its_batch_ends() -> None:
    # A receipt that waits for its submit_sm_resp must not hold up the others of its read.
    slow = asyncio.Event()
    answers: list[int] = []

    async def handler(pdus: list[Pdu], answer: InboundAnswer) -> None:
        for pdu in pdus:
            if pdu.sequence_number != 101:
                answer(pdu, 0)
        await slow.wait()
        answer(pdus[0], 0)

    protocol = SmppProtocol(
        ScriptedConnection([RequestReceived(deliver(n)) for n in (101, 102, 103)]),
        on_inbound_batch=handler,
        inbound_concurrency=2,
    )
    protocol._answer = lambda pdu, status: answers.append(pdu.sequence_number)  # type: ignore[method-assign]
    protocol._dispatch()
    await asyncio.sleep(0.01)
    assert answers == [102, 103]  # 103 came in as soon as 102 left the hand
    assert protocol._in_hand == 1
    slow.set()
    await asyncio.sleep(0.01)
    assert answers == [102, 103, 101]
    assert protocol._in_hand == 0
