"""Group commit: many concurrent callers, one store transaction.

Every HTTP request, submit_sm_resp and receipt would otherwise pay a transaction of its own;
on SQLite, where writers take turns, that caps the pipeline near a hundred messages a second.
Callers queue their item and wait; while one batch commits the next one gathers, so batches
grow with the load and an idle service still commits each item at once (no timer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Generic, Protocol, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)

log = logging.getLogger("o2sms.service")


class _Outcome(Protocol[R_contra]):
    """Where one queued item's result goes: its own future, or the :class:`_Share` of the
    items queued with it."""

    def done(self) -> bool: ...
    def cancelled(self) -> bool: ...
    def set_result(self, result: R_contra, /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...


class _Share(Generic[R]):
    """The future of items queued together (:meth:`GroupCommit.queue_many`), resolved once all
    have a result or an error. Items are resolved in the order they were queued, so each one's
    outcome lands in its own place by being appended."""

    __slots__ = ("future", "outcomes", "size")

    def __init__(self, future: asyncio.Future[list[R | BaseException]], size: int) -> None:
        self.future = future
        self.outcomes: list[R | BaseException] = []
        self.size = size

    def done(self) -> bool:
        return self.future.done()

    def cancelled(self) -> bool:
        return self.future.cancelled()

    def set_result(self, result: R | BaseException, /) -> None:
        outcomes = self.outcomes
        outcomes.append(result)
        if len(outcomes) == self.size:
            self.future.set_result(outcomes)

    set_exception = set_result


class GroupCommit(Generic[T, R]):
    """Runs ``run(items)`` (which returns one result per item, in order) for queued items.

    When a batch of several fails, each of its items is run again alone, so one bad item
    fails only its own caller. A batch holds at most ``max_batch`` items and, when ``weight``
    is given (rows an item writes), at most ``max_weight`` of it (but always one item): a
    burst of large requests must not become one huge transaction held in memory at once.

    ``turn`` (the store's :meth:`write_turn`) is entered before a batch is taken: where
    writers take turns (SQLite), the batch then holds everything that queued meanwhile.
    """

    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int = 500,
        weight: Callable[[T], int] | None = None,
        max_weight: int = 2000,
        turn: Callable[[], AbstractAsyncContextManager[None]] = nullcontext,
    ) -> None:
        if max_batch < 1 or max_weight < 1:
            raise ValueError("max_batch and max_weight must be at least 1")
        self._run = run
        self._max_batch = max_batch
        self._weight = weight
        self._max_weight = max_weight
        self._turn = turn
        self._pending: list[tuple[T, _Outcome[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  #: transactions run, for tests and metrics
        self.items = 0  #: items committed

    async def submit(self, item: T) -> R:
        """Queue ``item`` and return its result once its batch committed (or raise)."""
        return await self.queue(item)

    def queue(self, item: T) -> asyncio.Future[R]:
        """Queue ``item``; the future of its result, set once its batch committed (or failed).

        :meth:`submit` without its coroutine, for callers on a hot path: awaiting the future
        itself saves a frame every resumption passes through. Cancelling the future withdraws
        the item if its batch has not been taken yet.
        """
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._start()
        return future

    def queue_many(self, items: Sequence[T]) -> asyncio.Future[list[R | BaseException]]:
        """Queue ``items`` as :meth:`queue` would each, with one future for all of them: one
        wake-up instead of one per item. It gives each item's result in order, or in its place
        the exception its commit failed with (items are still isolated when a batch fails).
        Cancelling it withdraws the items whose batch has not been taken yet.
        """
        future: asyncio.Future[list[R | BaseException]] = asyncio.get_running_loop().create_future()
        if not items:
            future.set_result([])
            return future
        share: _Share[R] = _Share(future, len(items))
        self._pending.extend([(item, share) for item in items])
        self._start()
        return future

    def _start(self) -> None:
        """Make sure a task is draining the pending items."""
        task = self._task
        if task is None or task.done():
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending:
            async with self._turn():
                size = self._batch_size()
                batch = self._pending[:size]
                del self._pending[:size]
                live = [(item, future) for item, future in batch if not future.cancelled()]
                if live:
                    await self._commit(live, isolate=len(live) > 1)

    def _batch_size(self) -> int:
        """How many of the pending items the next batch takes."""
        limit = min(self._max_batch, len(self._pending))
        if self._weight is None:
            return limit
        total = 0
        for count, (item, _) in enumerate(self._pending[:limit]):
            total += self._weight(item)
            if total > self._max_weight:
                return max(1, count)
        return limit

    async def _commit(self, batch: list[tuple[T, _Outcome[R]]], *, isolate: bool) -> None:
        try:
            results = await self._run([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
        except Exception as exc:
            if isolate:
                log.warning("a batch of %d failed (%s); committing one by one", len(batch), exc)
                for one in batch:
                    if not one[1].done():  # a caller that gave up (timed out) is not retried
                        await self._commit([one], isolate=False)
                return
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        self.batches += 1
        self.items += len(batch)
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
