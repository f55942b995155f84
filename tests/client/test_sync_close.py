"""SyncClient calls racing close() and each other: they end with ClientClosedError or quietly,
never with a CancelledError nor a wait for ever."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from o2sms.client import ClientClosedError, InboundSms, SyncClient
from o2sms.smpp import DeliverSm
from tests.client.fake_smsc import FakeSmsc

pytestmark = pytest.mark.asyncio

HANG = 10.0  # seconds after which a thread still running is taken to be hung


def inbound(text: bytes) -> DeliverSm:
    return DeliverSm(source_addr="421903123456", destination_addr="5555", short_message=text)


def reading(sms: SyncClient, started: threading.Event) -> Callable[[], object]:
    """A thread body reading ``sms.events()`` to its end; what ended it (None: quietly)."""

    def read() -> object:
        events = sms.events()
        started.set()
        try:
            for _ in events:
                pass
        except BaseException as exc:
            return exc
        return None

    return read


def in_thread(body: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(body()), daemon=True)
    thread.start()
    return thread, outcome


async def test_close_from_another_thread_ends_a_waiting_events_loop_with_client_closed() -> None:
    async with FakeSmsc() as smsc:

        def run() -> list[object]:
            started = threading.Event()
            with SyncClient("127.0.0.1", smsc.port, "acct", "pw", sessions=1) as sms:
                reader, outcome = in_thread(reading(sms, started))
                started.wait(HANG)
                time.sleep(0.2)  # the reader waits in the loop for an event
            reader.join(HANG)
            assert not reader.is_alive()
            return outcome

        outcome = await asyncio.to_thread(run)
    assert len(outcome) == 1
    assert isinstance(outcome[0], ClientClosedError), repr(outcome[0])


async def test_a_waiting_events_loop_superseded_by_a_new_one_ends_quietly() -> None:
    async with FakeSmsc() as smsc:

        def run() -> tuple[list[object], list[str]]:
            started = threading.Event()
            with SyncClient("127.0.0.1", smsc.port, "acct", "pw", sessions=1) as sms:
                reader, outcome = in_thread(reading(sms, started))
                started.wait(HANG)
                time.sleep(0.2)  # the reader waits in the loop for an event
                texts = [e.text for e in sms.events(timeout=0.2) if isinstance(e, InboundSms)]
                reader.join(HANG)
                assert not reader.is_alive()
            return outcome, texts

        outcome, texts = await asyncio.to_thread(run)
    assert outcome == [None]
    assert texts == []


async def test_an_events_loop_superseded_between_events_ends_quietly() -> None:
    async with FakeSmsc() as smsc:

        def run() -> list[object]:
            with SyncClient("127.0.0.1", smsc.port, "acct", "pw", sessions=1) as sms:
                loop = sms._loop
                assert loop is not None
                asyncio.run_coroutine_threadsafe(deliver(smsc), loop).result(HANG)
                first = sms.events(timeout=HANG)
                event = next(first)  # the first loop is handling this one ...
                assert isinstance(event, InboundSms)
                assert list(sms.events(timeout=0.2)) == []  # ... when a second one starts
                try:
                    rest: list[object] = list(
                        first
                    )  # the first asks for its next event: it is over
                except BaseException as exc:
                    return [exc]
            return rest

        outcome = await asyncio.to_thread(run)
    assert outcome == []


async def deliver(smsc: FakeSmsc) -> None:
    async with asyncio.timeout(HANG):
        while smsc.sessions < 1:
            await asyncio.sleep(0.01)
    smsc.deliver(inbound(b"one"))


async def test_a_send_queued_as_close_stops_the_loop_raises_client_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The send() is handed to the loop just after close() stopped it, before the loop is
    # closed: nothing runs it any more, and its caller must not wait for ever.
    real = asyncio.run_coroutine_threadsafe
    reached = threading.Event()
    submitted = threading.Event()

    async with FakeSmsc() as smsc:

        def run() -> list[object]:
            with SyncClient("127.0.0.1", smsc.port, "acct", "pw", sessions=1) as sms:
                loop, loop_thread = sms._loop, sms._thread
                assert loop is not None
                assert loop_thread is not None
                closer = threading.current_thread()

                def racing(coroutine: Any, target: asyncio.AbstractEventLoop) -> Any:
                    if threading.current_thread() is closer:
                        return real(coroutine, target)
                    reached.set()
                    loop_thread.join(HANG)  # close() stopped the loop
                    try:
                        return real(coroutine, target)
                    finally:
                        submitted.set()

                real_close = loop.close

                def close_after_the_send() -> None:
                    submitted.wait(HANG)
                    real_close()

                monkeypatch.setattr(asyncio, "run_coroutine_threadsafe", racing)
                monkeypatch.setattr(loop, "close", close_after_the_send)

                def send() -> object:
                    try:
                        return sms.send("+421903123456", "racing close")
                    except BaseException as exc:
                        return exc

                thread, outcome = in_thread(send)
                reached.wait(HANG)
            thread.join(HANG)
            assert not thread.is_alive(), "send() waits for ever"
            return outcome

        outcome = await asyncio.to_thread(run)
    assert len(outcome) == 1
    assert isinstance(outcome[0], ClientClosedError), repr(outcome[0])


@pytest.mark.parametrize("by", ["close", "events"])
async def test_a_wait_starting_as_close_or_a_new_events_loop_abandons_waits_is_ended(
    monkeypatch: pytest.MonkeyPatch, by: str
) -> None:
    # The reader hands its wait to the loop just before close() (or a newer events() call)
    # abandons the waits it knows of, and makes it known just after: it must end all the
    # same, or closing its async iterator fails ("already running") and the reader waits on.
    async with FakeSmsc() as smsc:

        def run() -> tuple[list[object], list[BaseException]]:
            failures: list[BaseException] = []
            sms = SyncClient("127.0.0.1", smsc.port, "acct", "pw", sessions=1)
            sms.__enter__()
            reader_handed_over = threading.Event()
            abandoned = threading.Event()
            real_submit = sms._submit

            def submit(coroutine: Any) -> Any:
                if coroutine.__name__ == "_close_events":
                    abandoned.set()  # the waits known were abandoned just before this
                future = real_submit(coroutine)
                if coroutine.__name__ == "_next" and not reader_handed_over.is_set():
                    reader_handed_over.set()  # the reader's first wait, not yet known
                    abandoned.wait(HANG)
                return future

            monkeypatch.setattr(sms, "_submit", submit)
            started = threading.Event()
            thread, outcome = in_thread(reading(sms, started))
            started.wait(HANG)
            assert reader_handed_over.wait(HANG)
            try:
                if by == "close":
                    sms.close()
                else:
                    assert list(sms.events(timeout=0.2)) == []
            except BaseException as exc:
                failures.append(exc)
            finally:
                thread.join(HANG)
                alive = thread.is_alive()
                sms.close()
            assert not alive, "the reader waits for ever"
            return outcome, failures

        outcome, failures = await asyncio.to_thread(run)
    assert failures == []
    if by == "close":
        assert len(outcome) == 1
        assert isinstance(outcome[0], ClientClosedError), repr(outcome[0])
    else:
        assert outcome == [None]
