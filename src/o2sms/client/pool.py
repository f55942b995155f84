"""Up to the account's 4 sessions, used as one: submits spread, inbound merged, rate shared."""

from __future__ import annotations

import asyncio
import logging
import math
import random
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Sequence
from typing import Concatenate, ParamSpec, TypeVar

from o2sms.client.backoff import delay
from o2sms.client.config import Backoff, SessionConfig
from o2sms.client.connection import InboundAnswer, RefillGate
from o2sms.client.errors import (
    BACKOFF_STATUSES,
    ClientClosedError,
    ClientError,
    NotSentError,
    SubmitError,
    WithdrawnError,
    again,
)
from o2sms.client.session import Session, SessionStatus
from o2sms.smpp.constants import CommandStatus
from o2sms.smpp.pdu import Pdu

log = logging.getLogger("o2sms.client")

P = ParamSpec("P")
R = TypeVar("R")

THROTTLE_BACKOFF = Backoff(initial=0.2, maximum=10.0)
"""Pool-wide pause after ESME_RTHROTTLED or ESME_RMSGQFUL, growing while they repeat."""

RESEND_PAUSE = 0.05
"""Pause before sending again a request the SMSC refused because the session was unbinding."""


def _named(
    handler: Callable[Concatenate[str, P], Awaitable[R]], name: str
) -> Callable[P, Awaitable[R]]:
    """One of the pool's inbound handlers bound to one session's name."""

    def handle(*args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        return handler(name, *args, **kwargs)

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


async def _sleep_unless_closed(closed: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``; raise ClientClosedError at once when ``closed`` is or becomes set."""
    if not closed.is_set():
        try:
            async with asyncio.timeout(seconds):
                await closed.wait()
        except TimeoutError:
            return
    raise ClientClosedError("the client is closed")


async def _take_unless_closed(lock: asyncio.Lock, closed: asyncio.Event) -> None:
    """Acquire ``lock``; raise ClientClosedError instead once ``closed`` is or becomes set."""
    if closed.is_set():
        raise ClientClosedError("the client is closed")
    # acquire() returns at once only when the lock is free and nobody waits in line (right
    # after a release the waiters are still queued, and acquire() would queue behind them).
    if not lock.locked() and not getattr(lock, "_waiters", None):
        await lock.acquire()
        return
    taking = asyncio.ensure_future(lock.acquire())
    stopping = asyncio.ensure_future(closed.wait())
    try:
        await asyncio.wait((taking, stopping), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # cancelled: hold no lock
        stopping.cancel()
        if taking.done() and not taking.cancelled():
            lock.release()
        else:
            taking.cancel()
        raise
    stopping.cancel()
    if taking.done():
        return  # the lock is ours (``closed`` too, perhaps: the caller's next wait tells)
    taking.cancel()  # a cancelled waiter passes the lock on; it never holds it
    raise ClientClosedError("the client is closed")


class Submission:
    """One send's parts as the pool sees them: how many may have reached the SMSC.

    A graceful stop (:meth:`Pool.withdraw_unsent`) fails the sends that have none out and lets
    the others go on, so a long message is never cut in two.
    """

    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out = 0  #: parts handed to a session and not refused: perhaps accepted


class RateLimiter:
    """Token bucket shared by every session: at most ``rate`` submits a second, bursts of ``burst``.

    ``closed``, once set, ends every wait with ClientClosedError: a pool that closes does not
    keep sending what waited for its turn.
    """

    def __init__(
        self, rate: float, burst: float | None = None, *, closed: asyncio.Event | None = None
    ) -> None:
        if not rate > 0:  # not "<= 0": nan would pass that, and never limit
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 10)
        self._tokens = self.burst
        self._updated: float | None = None
        self._lock = asyncio.Lock()
        self._closed = closed if closed is not None else asyncio.Event()

    async def acquire(self, closed: asyncio.Event | None = None) -> None:
        """Wait until one submit may go (ClientClosedError once ``closed`` is set).

        ``closed``: the event that ends this wait instead of the limiter's own.
        """
        ends = closed if closed is not None else self._closed
        await _take_unless_closed(self._lock, ends)  # waiting in line ends on ``closed`` too
        try:
            loop = asyncio.get_running_loop()
            while True:
                now = loop.time()
                if self._updated is not None:
                    self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await _sleep_unless_closed(ends, (1 - self._tokens) / self.rate)
        finally:
            self._lock.release()


class AdaptiveRate:
    """Paces submits to an SMSC that throttles (ESME_RTHROTTLED), so it is not hammered.

    After a throttle, submits go at 90% of what the SMSC accepted over the last second (at
    least ``floor`` a second); each second without a throttle raises the pace by a quarter,
    and once it passes ``ceiling`` pacing stops. The pool's pause still follows each burst;
    this keeps the next bursts small instead of resending the whole window into the limit.
    """

    TRIM_INTERVAL = 0.25
    """Seconds between drops of the accepted times that are over a second old."""

    def __init__(
        self,
        floor: float = 5.0,
        ceiling: float = 100_000.0,
        *,
        closed: asyncio.Event | None = None,
    ) -> None:
        self.floor = floor
        self.ceiling = ceiling
        self.limiter: RateLimiter | None = None
        self._closed = closed  #: handed to the limiters it makes (see RateLimiter)
        # Loop times of accepted submits, oldest first. Those over a second old are dropped
        # every TRIM_INTERVAL (and before counting) rather than on every submit: the count is
        # the same, with one append per submit while the SMSC never throttles.
        self._accepted: list[float] = []
        self._trim_at = -math.inf
        self._changed_at = 0.0

    def _trim(self, now: float) -> None:
        """Drop the times before ``now - 1.0`` (loop times only grow, so they lead the list)."""
        accepted = self._accepted
        del accepted[: bisect_left(accepted, now - 1.0)]
        self._trim_at = now + self.TRIM_INTERVAL

    def accepted(self, now: float) -> None:
        """One submit accepted at loop time ``now``; speed up after a quiet second."""
        self._accepted.append(now)
        if now >= self._trim_at:
            self._trim(now)
        limiter = self.limiter
        if limiter is not None and now - self._changed_at >= 1.0:
            self._changed_at = now
            limiter.rate *= 1.25
            limiter.burst = max(1.0, limiter.rate / 10)
            if limiter.rate > self.ceiling:
                self.limiter = None

    def throttled(self, now: float) -> float:
        """The SMSC throttled a burst: pace below what it accepted; returns the new rate."""
        self._trim(now)
        rate = max(self.floor, 0.9 * len(self._accepted))
        if self.limiter is None:
            self.limiter = RateLimiter(rate, burst=1.0, closed=self._closed)
        else:
            self.limiter.rate = min(self.limiter.rate, rate)
            self.limiter.burst = max(1.0, self.limiter.rate / 10)
        self._changed_at = now
        return rate


def _live(sessions: list[Session]) -> list[Session]:
    """``sessions`` that may still bind: neither failed for good nor closed."""
    return [s for s in sessions if s.status not in (SessionStatus.FAILED, SessionStatus.CLOSED)]


class Pool:
    """Sessions of one account; ``submit`` picks a bound session that may send."""

    def __init__(
        self,
        configs: Sequence[SessionConfig],
        *,
        on_inbound: Callable[[str, Pdu], Awaitable[int]] | None = None,
        on_inbound_batch: Callable[[str, list[Pdu], InboundAnswer], Awaitable[None]] | None = None,
        rate_limit: float | None = None,
        throttle_backoff: Backoff = THROTTLE_BACKOFF,
        flash_system_type: str = "NSMS",
        rng: random.Random | None = None,
    ) -> None:
        self._changed = asyncio.Event()
        gate = RefillGate()  # a throttled answer on one session holds every session's refills
        self.sessions = [
            Session(
                config,
                name=f"session-{index + 1}",
                on_inbound=_named(on_inbound, f"session-{index + 1}")
                if on_inbound is not None and config.bind.can_receive
                else None,
                on_inbound_batch=_named(on_inbound_batch, f"session-{index + 1}")
                if on_inbound_batch is not None and config.bind.can_receive
                else None,
                on_status=self._on_status,
                rng=rng,
                refill_gate=gate,
            )
            for index, config in enumerate(configs)
        ]
        self._flash_system_type = flash_system_type
        self._closing = asyncio.Event()  #: set by close(): every wait for the pacing ends
        #: set by close() or withdraw_unsent(): the waits of sends with no part out end
        self._withdrawing = asyncio.Event()
        self._limiter = (
            RateLimiter(rate_limit, closed=self._withdrawing) if rate_limit is not None else None
        )
        self._adaptive = AdaptiveRate(closed=self._withdrawing)
        self._throttle_backoff = throttle_backoff
        self._throttled = 0  # pauses in a row (throttled answers to requests sent after a pause)
        self._pauses = 0  # pauses decided so far: a request sent before the last is of its burst
        self._throttle_status = 0  # command_status of the last throttled answer
        self._paced_pause = 0  # the pause whose throttled answers last set the adaptive pace
        self._resume_at = 0.0
        self._closed = False
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
        """The sessions configured to send (``flash``: flash messages) that may still bind."""
        return _live(self._configured(flash))

    def _configured(self, flash: bool) -> list[Session]:
        """The sessions configured to send (``flash``: flash messages), whatever their status."""
        return [
            s
            for s in self.sessions
            if s.bind_type.can_submit and (s.config.system_type == self._flash_system_type) == flash
        ]

    def can_send(self, flash: bool = False) -> bool:
        """True when a configured session can send (``flash``: flash messages), bound or not."""
        return bool(self._configured(flash))

    async def wait_ready(self, *, flash: bool = False) -> None:
        """Wait until a session that can send is bound; raise if every such session failed.

        When no configured session can send (receivers only), ready once any session is bound.
        """
        if self.can_send(flash):
            await self._pick(flash)
        else:
            await self._wait_for_any()

    async def _wait_for_any(self) -> None:
        """Wait until any session is bound; raise if every session failed or closed."""
        while True:
            if self._closed:
                raise ClientClosedError("the client is closed")
            if any(s.is_bound for s in self.sessions):
                return
            live = _live(self.sessions)
            if not live and all(s.status is SessionStatus.CLOSED for s in self.sessions):
                raise ClientClosedError("the client is closed")
            if all(s.failed_rounds and s.error is not None for s in live):
                # Every session failed for good, or every endpoint refused each one since
                # its last bind: fail fast, as for sending sessions.
                error = next(s.error for s in self.sessions if s.error is not None)
                assert error is not None
                raise again(error)
            self._changed.clear()
            await self._changed.wait()

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

    async def _pick(
        self, flash: bool, deadline: float | None = None, submission: Submission | None = None
    ) -> Session:
        """A bound session, waiting for one (until ``deadline``, loop time, when given)."""
        if deadline is None:
            return await self._wait_for_session(flash, submission)
        try:
            async with asyncio.timeout_at(deadline):
                return await self._wait_for_session(flash, submission)
        except TimeoutError:
            errors = [s.error for s in self._senders(flash) if s.error is not None]
            if errors and errors[0].retriable:
                raise again(errors[0]) from None
            raise NotSentError("no session could send it within the retry timeout") from None

    async def _wait_for_session(self, flash: bool, submission: Submission | None) -> Session:
        while True:
            if self._closed:
                raise ClientClosedError("the client is closed")
            if submission is not None and self._withdrawn(submission):
                raise ClientClosedError("the client takes no new sends")
            session = self._choose(flash)
            if session is not None:
                return session
            if not self._senders(flash):
                if all(s.status is SessionStatus.CLOSED for s in self.sessions):
                    raise ClientClosedError("the client is closed")
                # Only a session that could send says why none can: a receiver's retriable
                # bind error would make callers retry a send this pool can never make.
                failed = [s for s in self._configured(flash) if s.error is not None]
                if failed:
                    error = failed[0].error
                    assert error is not None
                    raise again(error)
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
                raise again(error)
            self._changed.clear()
            await self._changed.wait()

    def _withdrawn(self, submission: Submission) -> bool:
        """True once ``submission`` is to fail: a stop began and none of its parts is out."""
        return self._withdrawing.is_set() and not submission.out

    def withdraw_unsent(self) -> None:
        """Fail (ClientClosedError) the submits, waiting or to come, of sends with no part out.

        Sends with a part out go on at the usual pace: the rest of a long message follows its
        first part. For a graceful stop; :meth:`close` does this and more.
        """
        self._withdrawing.set()
        self._changed.set()  # wake submits waiting for a session

    async def submit(
        self,
        pdu: Pdu,
        *,
        flash: bool = False,
        deadline: float | None = None,
        submission: Submission | None = None,
    ) -> Pdu:
        """Send ``pdu`` on a suitable session; retry it on throttling, after a pool-wide pause.

        A request that never went out (its session closed or was unbound by the SMSC while it
        waited for the window) is sent again on another bound session, or after the reconnect.
        Throttling (ESME_RTHROTTLED, ESME_RMSGQFUL) pauses the whole pool once per burst: the
        answers to requests that were already on the wire when the pause was decided do not
        make it longer. Retrying stops at ``deadline`` (loop time; None retries for ever): the
        last throttled status is raised as a (retriable) SubmitError, a request not sent as
        NotSentError.

        A generic_nack counts as an answer with its command_status (throttling included).
        ``submission`` groups the parts of one send (see :meth:`withdraw_unsent`).

        Returns the successful response; raises SubmitError for other error statuses and
        ConnectionLost / ResponseTimeout when the link failed with the request outstanding.
        """
        loop = asyncio.get_running_loop()
        if submission is None:
            submission = Submission()
        while True:
            if self._closed:
                raise ClientClosedError("the client is closed")
            if self._withdrawn(submission):
                raise ClientClosedError("the client takes no new sends")
            # A stop ends the waits of a send with nothing out; one with a part out goes on.
            ends = self._closing if submission.out else self._withdrawing
            paced = self._adaptive.limiter
            try:
                if self._resume_at:  # 0.0 until the first pause
                    pause = self._resume_at - loop.time()
                    if pause > 0:
                        if deadline is not None and loop.time() + pause > deadline:
                            raise SubmitError(
                                self._throttle_status or CommandStatus.ESME_RTHROTTLED
                            )
                        await _sleep_unless_closed(ends, pause)
                        continue  # paused longer meanwhile, perhaps
                if self._limiter is not None:
                    await self._limiter.acquire(ends)
                if paced is not None:
                    await paced.acquire(ends)
            except ClientClosedError:
                if self._closed or not submission.out:
                    raise
                continue  # another part went out while this one waited: it goes too
            candidates = self._candidates.get(flash)
            if candidates is not None and len(candidates) == 1:
                # One session (the usual account): _choose's answer without asking is_bound twice.
                session = candidates[0]
                protocol = session.protocol
                if protocol is None:
                    session = await self._pick(flash, deadline, submission)
                    protocol = session.protocol
            else:
                session = self._choose(flash) or await self._pick(flash, deadline, submission)
                protocol = session.protocol
            if self._resume_at > loop.time():
                continue  # paused while this one waited for the rate limit or a session
            if self._closed:  # closed while it waited for the rate limit or a session
                raise ClientClosedError("the client is closed")
            if self._withdrawn(submission):  # its other parts were refused while it waited
                raise ClientClosedError("the client takes no new sends")
            pauses = self._pauses
            response: Pdu | None = None
            submission.out += 1  # until the SMSC refuses it
            try:
                response = await (
                    protocol.request(pdu) if protocol is not None else session.request(pdu)
                )
            except WithdrawnError:
                submission.out -= 1
                continue  # held back by a pause: wait it out and go through the pacing again
            except NotSentError:
                submission.out -= 1
                if deadline is not None and loop.time() >= deadline:
                    raise
                if protocol is not None and protocol.is_open and protocol.connection.state.is_bound:
                    raise  # refused locally on a link that is fine: resending would only repeat it
                continue  # never went out: send it elsewhere (or after the reconnect)
            except SubmitError as exc:
                # A generic_nack. One saying ESME_RTHROTTLED or ESME_RMSGQFUL asks the account
                # to slow down just as a submit_sm_resp with that status does: handled below.
                submission.out -= 1
                if exc.command_status not in BACKOFF_STATUSES:
                    raise
                status = exc.command_status
            else:
                status = response.command_status
                if status:
                    submission.out -= 1
            if status == 0:
                assert response is not None
                if pauses == self._pauses:
                    self._throttled = 0
                self._adaptive.accepted(loop.time())
                return response
            if status in BACKOFF_STATUSES:
                self._throttle_status = status
                now = loop.time()
                if (
                    status == CommandStatus.ESME_RTHROTTLED
                    and paced is None
                    and self._pauses not in (pauses, self._paced_pause)
                ):
                    # Of a burst that went out unpaced, and its pause was decided by another
                    # answer (queue full, say): pace what resumes, or it all goes out at once.
                    # Once per pause: later answers of the burst must not keep re-tuning it.
                    self._paced_pause = self._pauses
                    self._adaptive.throttled(now)
                if pauses == self._pauses:
                    # Sent after the last pause began: the SMSC is still throttling, so pause
                    # again, longer. Answers to requests sent before it are of the same burst.
                    wait = delay(self._throttled, self._throttle_backoff, self._rng)
                    self._throttled += 1
                    self._pauses += 1
                    self._resume_at = max(self._resume_at, now + wait)
                    self._withdraw_queued()
                    if status == CommandStatus.ESME_RTHROTTLED:
                        self._paced_pause = self._pauses
                        self._adaptive.throttled(now)
                    log.warning(
                        "%s: %s; pausing submits for %.2f s",
                        session.name,
                        SubmitError(status).args[0],
                        wait,
                    )
                if deadline is not None and max(now, self._resume_at) > deadline:
                    raise SubmitError(status, infobip=session.config.infobip)
                continue
            if (
                status == CommandStatus.ESME_RINVBNDSTS
                and protocol is not None
                and not protocol.connection.state.is_bound
            ):
                # The SMSC had unbound the session when the request reached it, so it refused
                # it unread: send it again on another session (or after the reconnect).
                if deadline is not None and loop.time() >= deadline:
                    raise SubmitError(status, infobip=session.config.infobip)
                await asyncio.sleep(RESEND_PAUSE)
                continue
            raise SubmitError(status, infobip=session.config.infobip)

    def _withdraw_queued(self) -> None:
        """Take back the requests queued behind full windows: they wait out the pause too."""
        for session in self.sessions:
            protocol = session.protocol
            if protocol is not None:
                protocol.fail_queued(WithdrawnError(f"{session.name}: held back by a pause"))

    async def close(self) -> None:
        """Take no new submits, then close every session gracefully (see Session.close)."""
        self._closed = True
        self._closing.set()  # submits waiting for the pacing or a pause fail now
        self._withdrawing.set()
        self._changed.set()  # wake submits waiting for a session: they fail now
        await asyncio.gather(*(session.close() for session in self.sessions))
