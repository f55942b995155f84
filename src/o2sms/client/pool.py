"""Up to the account's 4 sessions, used as one: submits spread, inbound merged, rate shared."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

from o2sms.client.backoff import delay
from o2sms.client.config import Backoff, SessionConfig
from o2sms.client.connection import InboundHandler
from o2sms.client.errors import BACKOFF_STATUSES, ClientClosedError, ClientError, SubmitError
from o2sms.client.session import Session, SessionStatus
from o2sms.smpp.pdu import Pdu

log = logging.getLogger("o2sms.client")

THROTTLE_BACKOFF = Backoff(initial=0.2, maximum=10.0)
"""Pool-wide pause after ESME_RTHROTTLED or ESME_RMSGQFUL, growing while they repeat."""


def _named(handler: Callable[[str, Pdu], Awaitable[int]], name: str) -> InboundHandler:
    """The pool's inbound handler bound to one session's name."""

    def handle(pdu: Pdu) -> Awaitable[int]:
        return handler(name, pdu)

    return handle


def assign(window_free: Sequence[int], start: int) -> int | None:
    """Index of the session to send on: the most free window, ties in turn from ``start``.

    ``window_free`` has one entry per candidate session, 0 for those that cannot take a
    request now. Pure, so the choice is tested without sockets.
    """
    best: int | None = None
    best_free = 0
    count = len(window_free)
    for offset in range(count):
        index = (start + offset) % count
        free = window_free[index]
        if free > best_free:
            best, best_free = index, free
    return best


class RateLimiter:
    """Token bucket shared by every session: at most ``rate`` submits a second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._tokens = self.burst
        self._updated: float | None = None
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until one submit may go."""
        async with self._lock:
            loop = asyncio.get_running_loop()
            while True:
                now = loop.time()
                if self._updated is not None:
                    self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


class Pool:
    """Sessions of one account; ``submit`` picks a bound session that may send."""

    def __init__(
        self,
        configs: Sequence[SessionConfig],
        *,
        on_inbound: Callable[[str, Pdu], Awaitable[int]] | None = None,
        rate_limit: float | None = None,
        throttle_backoff: Backoff = THROTTLE_BACKOFF,
        flash_system_type: str = "NSMS",
        rng: random.Random | None = None,
    ) -> None:
        self._changed = asyncio.Event()
        self.sessions = [
            Session(
                config,
                name=f"session-{index + 1}",
                on_inbound=_named(on_inbound, f"session-{index + 1}")
                if on_inbound is not None and config.bind.can_receive
                else None,
                on_status=self._on_status,
                rng=rng,
            )
            for index, config in enumerate(configs)
        ]
        self._flash_system_type = flash_system_type
        self._limiter = RateLimiter(rate_limit) if rate_limit else None
        self._throttle_backoff = throttle_backoff
        self._throttled = 0  # consecutive throttled answers, across the pool
        self._resume_at = 0.0
        self._next = 0
        self._candidates: dict[bool, list[Session]] = {}  # by flash; cleared on status changes
        self._rng = rng or random.Random()

    def _on_status(self, _session: Session) -> None:
        self._candidates.clear()
        self._changed.set()

    def start(self) -> None:
        """Start every session."""
        for session in self.sessions:
            session.start()

    def _senders(self, flash: bool) -> list[Session]:
        return [
            s
            for s in self.sessions
            if s.bind_type.can_submit
            and (s.config.system_type == self._flash_system_type) == flash
            and s.status not in (SessionStatus.FAILED, SessionStatus.CLOSED)
        ]

    async def wait_ready(self, *, flash: bool = False) -> None:
        """Wait until a session that can send is bound; raise if every such session failed."""
        await self._pick(flash)

    def _choose(self, flash: bool) -> Session | None:
        """A bound session for the next submit, without waiting; None when none is bound."""
        candidates = self._candidates.get(flash)
        if candidates is None:
            candidates = self._candidates[flash] = self._senders(flash)
        if len(candidates) == 1:
            only = candidates[0]
            return only if only.is_bound else None
        index = assign([s.window_free for s in candidates], self._next)
        if index is not None:
            self._next = (index + 1) % len(candidates)
            return candidates[index]
        bound = [s for s in candidates if s.is_bound]
        if bound:  # every window is full: queue on the next one in turn
            self._next = (self._next + 1) % len(bound)
            return bound[self._next]
        return None

    async def _pick(self, flash: bool) -> Session:
        while True:
            session = self._choose(flash)
            if session is not None:
                return session
            if not self._senders(flash):
                if all(s.status is SessionStatus.CLOSED for s in self.sessions):
                    raise ClientClosedError("the client is closed")
                failed = [s for s in self.sessions if s.error is not None]
                if failed:
                    error = failed[0].error
                    assert error is not None
                    raise error
                raise ClientError(
                    "no session can send "
                    + ("flash messages" if flash else "messages")
                    + ": bind a transmitter or transceiver"
                    + (" with system_type NSMS" if flash else "")
                )
            senders = self._senders(flash)
            if all(s.failed_rounds and s.error is not None for s in senders):
                # Every endpoint refused every session since its last bind: fail fast (the
                # error is retriable) rather than leave the caller waiting through an outage.
                error = senders[0].error
                assert error is not None
                raise error
            self._changed.clear()
            await self._changed.wait()

    async def submit(self, pdu: Pdu, *, flash: bool = False) -> Pdu:
        """Send ``pdu`` on a suitable session; retry it on throttling, after a pool-wide pause.

        Returns the successful response; raises SubmitError for other error statuses and
        ConnectionLost / ResponseTimeout when the link failed with the request outstanding.
        """
        loop = asyncio.get_running_loop()
        while True:
            pause = self._resume_at - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            if self._limiter is not None:
                await self._limiter.acquire()
            session = self._choose(flash) or await self._pick(flash)
            protocol = session.protocol
            response = await (
                protocol.request(pdu) if protocol is not None else session.request(pdu)
            )
            status = response.command_status
            if status == 0:
                self._throttled = 0
                return response
            if status in BACKOFF_STATUSES:
                wait = delay(self._throttled, self._throttle_backoff, self._rng)
                self._throttled += 1
                self._resume_at = max(self._resume_at, loop.time() + wait)
                log.warning(
                    "%s: %s; pausing submits for %.2f s",
                    session.name,
                    SubmitError(status).args[0],
                    wait,
                )
                continue
            raise SubmitError(status, infobip=session.config.infobip)

    async def close(self) -> None:
        """Unbind and close every session."""
        await asyncio.gather(*(session.close() for session in self.sessions))
