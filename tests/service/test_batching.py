"""GroupCommit: concurrent callers share transactions, and one bad item fails only itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from o2sms.service.batching import GroupCommit

pytestmark = pytest.mark.asyncio


async def test_concurrent_callers_share_batches_in_order() -> None:
    seen: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        seen.append(items)
        await asyncio.sleep(0)
        return [i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(run)
    results = await asyncio.gather(*(group.submit(i) for i in range(50)))
    assert results == [i * 10 for i in range(50)]
    assert [i for batch in seen for i in batch] == list(range(50))
    assert len(seen) < 50  # batched, not one call per item
    assert group.items == 50


async def test_a_failing_batch_is_retried_item_by_item() -> None:
    async def run(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        return items

    group: GroupCommit[int, int] = GroupCommit(run)
    outcomes = await asyncio.gather(*(group.submit(i) for i in range(20)), return_exceptions=True)
    assert [o for o in outcomes if isinstance(o, Exception)] == [outcomes[13]]
    assert isinstance(outcomes[13], ValueError)
    assert [o for i, o in enumerate(outcomes) if i != 13] == [i for i in range(20) if i != 13]


async def test_weight_bounds_a_batch_but_never_below_one_item() -> None:
    sizes: list[int] = []

    async def run(items: list[list[int]]) -> list[int]:
        sizes.append(sum(len(i) for i in items))
        return [len(i) for i in items]

    group: GroupCommit[list[int], int] = GroupCommit(run, weight=len, max_weight=100)
    requests = [[0] * 40 for _ in range(10)] + [[0] * 250]
    assert await asyncio.gather(*(group.submit(r) for r in requests)) == [40] * 10 + [250]
    assert max(sizes[:-1]) <= 100
    assert 250 in sizes  # a single item larger than the limit still goes


async def test_a_caller_that_gave_up_is_not_committed() -> None:
    group, committed, gate = _gated()
    first = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(group.submit(2))
    await asyncio.sleep(0)
    waiting.cancel()
    gate.set()
    await first
    await asyncio.sleep(0.01)
    assert committed == [1]


async def test_a_batch_is_taken_once_the_turn_is_held() -> None:
    """Items that queue while the group waits for its writer turn join one batch."""
    seen: list[list[int]] = []
    turn = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def take_turn() -> AsyncIterator[None]:
        async with turn:
            yield

    async def run(items: list[int]) -> list[int]:
        seen.append(items)
        return items

    group: GroupCommit[int, int] = GroupCommit(run, turn=take_turn)
    await turn.acquire()  # another writer holds the turn
    waiting = [asyncio.create_task(group.submit(i)) for i in range(3)]
    await asyncio.sleep(0)
    waiting += [asyncio.create_task(group.submit(i)) for i in range(3, 6)]
    await asyncio.sleep(0)
    turn.release()
    assert await asyncio.gather(*waiting) == list(range(6))
    assert seen == [list(range(6))]


async def test_items_queued_together_share_one_future_and_keep_their_order() -> None:
    seen: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        seen.append(items)
        return [i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(run, max_batch=3)
    single = group.queue(0)
    together = group.queue_many([1, 2, 3, 4])
    assert await together == [10, 20, 30, 40]  # split over two transactions, still in order
    assert await single == 0
    assert seen == [[0, 1, 2], [3, 4]]
    assert await group.queue_many([]) == []


async def test_a_bad_item_queued_with_others_fails_only_its_own_place() -> None:
    async def run(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky")
        return items

    group: GroupCommit[int, int] = GroupCommit(run)
    outcomes = await group.queue_many([11, 12, 13, 14])
    assert outcomes[:2] == [11, 12]
    assert isinstance(outcomes[2], ValueError)
    assert outcomes[3] == 14
    assert group.items == 3


async def test_items_queued_together_and_withdrawn_are_not_committed() -> None:
    group, committed, gate = _gated()
    first = group.queue(1)
    await asyncio.sleep(0)  # its batch is taken
    withdrawn = group.queue_many([2, 3])
    withdrawn.cancel()
    gate.set()
    await first
    await asyncio.sleep(0.01)
    assert committed == [1]


def _gated() -> tuple[GroupCommit[int, None], list[int], asyncio.Event]:
    """A group commit whose batches wait for the event, and the items it committed."""
    committed: list[int] = []
    gate = asyncio.Event()

    async def run(items: list[int]) -> list[None]:
        await gate.wait()
        committed.extend(items)
        return [None] * len(items)

    return GroupCommit(run), committed, gate
