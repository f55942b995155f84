"""A receipt waits for the record of its own submit (SubmitRecords), bounded, by id."""

from __future__ import annotations

import asyncio

import pytest

from o2sms.service.workers import SubmitRecords

pytestmark = pytest.mark.asyncio


async def test_a_receipt_waits_until_its_submit_is_recorded() -> None:
    records = SubmitRecords()
    recorded = asyncio.Event()
    release = asyncio.Event()

    async def record() -> None:
        with records.recording(["0400000008", "0400000009"]):
            await release.wait()
            recorded.set()

    recorder = asyncio.create_task(record())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(records.wait_for(["0400000009", None]))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # still being recorded
    release.set()
    await asyncio.wait_for(waiter, 1.0)
    assert recorded.is_set()
    await recorder


async def test_ids_match_in_either_base_and_others_do_not_wait() -> None:
    records = SubmitRecords()
    with records.recording(["04000000086ECD50"]):
        # the decimal reading of that hex id, as some SMSCs write it in the receipt
        decimal = asyncio.create_task(records.wait_for(["288230376293190992"]))
        await asyncio.sleep(0.05)
        assert not decimal.done()
        await asyncio.wait_for(records.wait_for(["77", "ABC"]), 0.5)  # unrelated: no wait
    await asyncio.wait_for(decimal, 1.0)


async def test_the_wait_is_bounded_and_a_failed_record_releases_it() -> None:
    records = SubmitRecords()
    with records.recording(["A1"]):
        started = asyncio.get_running_loop().time()
        await records.wait_for(["a1"], timeout=0.1)  # case aside, the same id
        assert asyncio.get_running_loop().time() - started >= 0.09
    with pytest.raises(RuntimeError), records.recording(["B2"]):
        raise RuntimeError("the store refused the record")
    await asyncio.wait_for(records.wait_for(["B2"]), 0.5)


async def test_a_receipt_already_waiting_is_woken_when_the_record_fails() -> None:
    records = SubmitRecords()
    release = asyncio.Event()

    async def record() -> None:
        with records.recording(["C3"]):
            await release.wait()
            raise RuntimeError("the store refused the record")

    recorder = asyncio.create_task(record())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(records.wait_for(["C3"], timeout=30))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    release.set()
    await asyncio.wait_for(waiter, 1.0)  # woken by the failure, not by its 30 s bound
    with pytest.raises(RuntimeError):
        await recorder


async def test_an_id_added_to_a_record_under_way_makes_its_receipt_wait() -> None:
    records = SubmitRecords()
    recording = records.recording(["D4"])
    with recording:
        recording.add(["E5", None])  # a record that gathers more submits as they end
        waiter = asyncio.create_task(records.wait_for(["e5"], timeout=30))
        await asyncio.sleep(0.05)
        assert not waiter.done()
    await asyncio.wait_for(waiter, 1.0)  # woken when the record ended
    await asyncio.wait_for(records.wait_for(["E5", "D4"]), 0.5)  # nothing pending any more
