"""A blocking facade of :class:`Client` for scripts: an event loop runs in a background thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from types import TracebackType
from typing import Any, TypeVar

from o2sms.client.api import Client, SendResult
from o2sms.client.errors import ClientClosedError
from o2sms.client.events import Event

T = TypeVar("T")

_NOT_OPEN = "the SyncClient is not open: use it in a with block (it may have been closed)"


class SyncClient:
    """``with SyncClient(host, port, system_id, password) as sms: sms.send(to, text)``.

    Takes the same arguments as :class:`Client` and offers the same ``send`` and ``events``;
    outside the ``with`` block (before it, or once closed) they raise ClientClosedError.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Client | None = None
        self._events: AsyncIterator[Event] | None = None
        self._waiting: concurrent.futures.Future[Event] | None = None  #: see _next_event
        self._reader = 0  #: counts events() calls: a loop started before the last is superseded
        #: calls handed to the loop and not yet done: _stop cancels those it never ran
        self._calls: set[concurrent.futures.Future[Any]] = set()

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        try:
            return self._submit(coroutine).result(timeout)
        except concurrent.futures.CancelledError:
            raise ClientClosedError("the SyncClient closed before the call ran") from None

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Hand ``coroutine`` to the loop; a call the closing loop never runs gets cancelled."""
        try:
            loop = self._running_loop()
        except ClientClosedError:
            coroutine.close()  # never started: no "was never awaited" warning
            raise
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        except RuntimeError:  # the loop closed meanwhile
            coroutine.close()
            raise ClientClosedError(_NOT_OPEN) from None
        self._calls.add(future)
        future.add_done_callback(self._calls.discard)
        if self._loop is not loop:
            # _stop began after the check above: it may have cancelled the calls it knew of
            # before this one was added, and the stopped loop will not run it.
            future.cancel()
        return future

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The background loop, while the ``with`` block runs; ClientClosedError otherwise."""
        loop = self._loop
        if loop is None:
            raise ClientClosedError(_NOT_OPEN)
        return loop

    def _open(self) -> Client:
        """The client, while the ``with`` block runs; ClientClosedError before and after."""
        client = self._client
        if client is None:
            raise ClientClosedError(_NOT_OPEN)
        return client

    def _next_event(
        self, events: AsyncIterator[Event], timeout: float | None, reader: int
    ) -> Event:
        """``_next`` on the loop; the wait stays known to :meth:`close` until it returns.

        A wait left behind (Ctrl-C in ``events()``, or ``close()`` from another thread) would
        otherwise keep the async iterator running, and closing it would fail. ``reader``: the
        events() call waiting, ended at once if a newer call or close() came meanwhile.
        """
        future = self._submit(_next(events, timeout))
        self._waiting = future
        if self._reader != reader or self._client is None:
            # Superseded or closed after the hand-over but before the wait was known: the
            # waits abandoned then missed it.
            future.cancel()
        event = future.result()
        self._waiting = None
        return event

    def _abandon_wait(self) -> None:
        """End a wait for an event left behind (Ctrl-C, another thread): it must not take the
        next event, and the iterator it runs in must stop before it can be closed."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.cancel()

    def __enter__(self) -> SyncClient:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="o2sms-client", daemon=True)
        self._thread.start()

        async def start() -> Client:
            client = Client(*self._args, **self._kwargs)
            await client.start()
            return client

        try:
            self._client = self._run(start())
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Unbind, close and stop the background loop (each step even if one before failed)."""
        try:
            if self._client is not None:
                client, self._client = self._client, None
                try:
                    self._abandon_wait()
                    if self._events is not None:
                        self._run(self._close_events())
                finally:
                    self._run(client.close())
        finally:
            self._stop()

    async def _close_events(self) -> None:
        """End the events iterator; an event handed out and not yet done is not acknowledged."""
        events, self._events = self._events, None
        for _ in range(500):  # a cancelled wait may still be unwinding inside the iterator
            if not getattr(events, "ag_running", False):
                break
            await asyncio.sleep(0.01)
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()

    def _stop(self) -> None:
        # Forgotten first: a send() from another thread now raises ClientClosedError rather
        # than hand a coroutine to a loop that stops before running it (a wait for ever).
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join()
            # Calls handed over as the loop stopped never ran: their callers get
            # ClientClosedError, and their coroutines end before the loop closes.
            for call in list(self._calls):
                call.cancel()
            loop.run_until_complete(_cancel_tasks())
            loop.close()

    def send(self, to: str, text: str, **options: Any) -> SendResult:
        """Send one SMS; blocks until every part has its submit_sm_resp. See Client.send."""
        return self._run(self._open().send(to, text, **options))

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Delivery reports and inbound SMS; each is acknowledged when the next is asked for.

        A new call ends the one before, quietly: an event that one handed out last and was
        never asked past (a ``break``, an exception in the loop) is not acknowledged, and the
        SMSC delivers it again. Once the client is closed, a running loop raises
        ClientClosedError.

        Stops after ``timeout`` seconds without an event (None waits for ever). The timeout
        runs in the event loop, after the event handed out before has been acknowledged: the
        wait for the next one is the only thing it can end, so the event just handled is
        acknowledged and an event that arrives as the time runs out is not taken from the queue
        unseen (it stays for the next call).
        """
        client = self._open()
        self._reader += 1  # before the wait is abandoned: that loop then knows it was superseded
        reader = self._reader
        self._abandon_wait()
        if self._events is not None:
            # An earlier events() left holding an event (a break, or its loop body raised):
            # that event was not handled, so it is not acknowledged; the SMSC sends it again.
            self._run(self._close_events())
        self._events = events = client.events()
        while True:
            try:
                event = self._next_event(events, timeout, reader)
            except TimeoutError:
                if self._events is events:
                    self._events = None  # the async iterator ended; the next call starts anew
                return
            except (concurrent.futures.CancelledError, StopAsyncIteration):
                # The wait was abandoned, or the async iterator ended: by a newer events()
                # call, which takes over quietly, or by close().
                if self._reader != reader:
                    return
                raise ClientClosedError("the client was closed") from None
            yield event


async def _cancel_tasks() -> None:
    """Cancel the loop's other tasks and wait for them to end."""
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _next(events: AsyncIterator[Event], timeout: float | None) -> Event:
    """The next event; asking for it first acknowledges the one before (not cut by timeout)."""
    step = anext(events)
    if timeout is None:
        return await step
    async with asyncio.timeout(timeout):
        return await step
