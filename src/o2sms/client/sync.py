"""A blocking facade of :class:`Client` for scripts: an event loop runs in a background thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from types import TracebackType
from typing import Any, TypeVar

from o2sms.client.api import Client, SendResult
from o2sms.client.events import Event

T = TypeVar("T")


class SyncClient:
    """``with SyncClient(host, port, system_id, password) as sms: sms.send(to, text)``.

    Takes the same arguments as :class:`Client` and offers the same ``send`` and ``events``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Client | None = None
        self._events: AsyncIterator[Event] | None = None

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        assert self._loop is not None, "use SyncClient in a with block"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

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
        """Unbind, close and stop the background loop."""
        if self._client is not None:
            client, self._client = self._client, None
            if self._events is not None:
                self._run(self._close_events())
            self._run(client.close())
        self._stop()

    async def _close_events(self) -> None:
        events, self._events = self._events, None
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()

    def _stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join()
            self._loop.close()
            self._loop = None

    def send(self, to: str, text: str, **options: Any) -> SendResult:
        """Send one SMS; blocks until every part has its submit_sm_resp. See Client.send."""
        assert self._client is not None, "use SyncClient in a with block"
        return self._run(self._client.send(to, text, **options))

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Delivery reports and inbound SMS; each is acknowledged when the next is asked for.

        Stops after ``timeout`` seconds without an event (None waits for ever). The timeout
        runs in the event loop, after the event handed out before has been acknowledged: the
        wait for the next one is the only thing it can end, so the event just handled is
        acknowledged and an event that arrives as the time runs out is not taken from the queue
        unseen (it stays for the next call).
        """
        assert self._client is not None, "use SyncClient in a with block"
        if self._events is None:
            self._events = self._client.events()
        events = self._events
        while True:
            try:
                event = self._run(_next(events, timeout))
            except TimeoutError:
                self._events = None  # the async iterator ended; the next call starts a new one
                return
            yield event


async def _next(events: AsyncIterator[Event], timeout: float | None) -> Event:
    """The next event; asking for it first acknowledges the one before (not cut by timeout)."""
    step = anext(events)
    if timeout is None:
        return await step
    async with asyncio.timeout(timeout):
        return await step
