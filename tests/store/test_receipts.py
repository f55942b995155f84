"""Submits and receipts: correlation by id, before submit, duplicates, multipart, unknown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from o2sms.receipts import DeliveryReceipt, ReceiptStat
from o2sms.store import (
    EventKind,
    Message,
    MessageStatus,
    MessageStore,
    NewMessage,
    ReceiptOutcome,
    ReceiptResult,
    open_store,
)
from o2sms.store.messages import _PARTS_BY_SMSC_ID
from o2sms.store.queue import storable_id
from o2sms.store.rows import fetch_in
from o2sms.store.schema import message_events
from tests.store.conftest import FakeClock, OpenStore

pytestmark = pytest.mark.asyncio

HEX_ID = "04000000086ECD50"  # as a submit_sm_resp gives it
DECIMAL_ID = "288230376293190992"  # the same number, as the receipt's id: field gives it


def receipt(
    receipt_id: str, stat: ReceiptStat = ReceiptStat.DELIVRD, err: str = "000"
) -> DeliveryReceipt:
    """A receipt as o2sms.receipts.parse would return it."""
    return DeliveryReceipt(
        id=receipt_id,
        sub=1,
        dlvrd=1 if stat is ReceiptStat.DELIVRD else 0,
        submit_date=datetime(2026, 1, 1, 12, 0),
        done_date=datetime(2026, 1, 1, 12, 1),
        stat=stat,
        err=err,
        text="hello",
    )


async def submitted(store: MessageStore, *ids: str, parts: int | None = None) -> Message:
    """A message claimed by worker w and recorded as submitted with these SMSC ids."""
    message = (
        await store.enqueue(NewMessage("+421900000001", "hello", parts=parts or len(ids)))
    ).message
    await store.claim("w")
    return await store.mark_submitted(message.id, list(ids), worker_id="w")


async def status_of(store: MessageStore, message_id: str) -> MessageStatus:
    got = await store.get(message_id)
    assert got is not None
    return got.status


async def test_mark_submitted_records_parts_and_ends_the_lease(store: MessageStore) -> None:
    message = await submitted(store, "abc-1", "abc-2")
    assert message.status is MessageStatus.SUBMITTED
    assert message.lease_owner is None
    assert message.submitted_at is not None
    got = await store.get(message.id)
    assert got is not None
    assert [(p.part_no, p.smsc_id, p.status) for p in got.parts] == [
        (1, "abc-1", MessageStatus.SUBMITTED),
        (2, "abc-2", MessageStatus.SUBMITTED),
    ]
    assert got.events[-1].kind is EventKind.SUBMITTED
    assert got.events[-1].detail["ids"] == ["abc-1", "abc-2"]


async def test_a_receipt_matches_by_exact_id(store: MessageStore, clock: FakeClock) -> None:
    message = await submitted(store, "MSG-Ab1")
    outcome = await store.apply_receipt(receipt("MSG-Ab1"), clock())
    assert outcome.result is ReceiptResult.APPLIED
    assert (outcome.message_id, outcome.part_no) == (message.id, 1)
    assert outcome.message_status is MessageStatus.DELIVERED
    assert outcome.status_changed
    got = await store.get(message.id)
    assert got is not None
    assert got.status is MessageStatus.DELIVERED
    assert got.finished_at == clock()
    assert got.parts[0].error_code == "000"
    assert got.parts[0].receipt_at == clock()
    kinds = [e.kind for e in got.events]
    assert kinds[-2:] == [EventKind.RECEIPT, EventKind.STATUS]


async def history_rows(store: MessageStore, message_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The message's stored history rows, ``(kind, detail)`` in order."""
    async with store.engine.connect() as connection:
        rows = await connection.execute(
            message_events.select()
            .where(message_events.c.message_id == message_id)
            .order_by(message_events.c.id)
        )
        return [(row.kind, row.detail) for row in rows]


@pytest.mark.parametrize("path", ["one", "batch"])
async def test_a_receipt_and_the_status_change_it_caused_share_one_history_row(
    store: MessageStore, clock: FakeClock, path: str
) -> None:
    first = await submitted(store, "id-1", "id-2")  # two parts: the first receipt moves nothing
    if path == "one":
        for smsc_id in ("id-1", "id-2"):
            await store.apply_receipt(receipt(smsc_id), clock())
    else:
        await store.apply_receipts([(receipt("id-1"), None), (receipt("id-2"), None)], clock())
    stored = await history_rows(store, first.id)
    assert [kind for kind, _ in stored] == ["submitted", "receipt", "receipt"]
    assert "status" not in stored[1][1]
    assert stored[2][1]["status"] == {"from": "submitted", "to": "delivered"}
    got = await store.get(first.id)
    assert got is not None
    entries = [(e.kind, e.detail) for e in got.events]
    receipt_detail = {
        "part": 2,
        "id": "id-2",
        "stat": "DELIVRD",
        "err": "000",
        "received_at": clock().isoformat(),
        "ignored": False,
    }
    assert entries[-2:] == [
        (EventKind.RECEIPT, receipt_detail),
        (EventKind.STATUS, {"from": "submitted", "to": "delivered"}),
    ]
    assert [e.kind for e in got.events] == [
        EventKind.QUEUED,
        EventKind.SUBMITTED,
        EventKind.RECEIPT,
        EventKind.RECEIPT,
        EventKind.STATUS,
    ]
    # A store written by an earlier version holds the change as a row of its own: the same.
    second = await submitted(store, "id-3")
    await store.apply_receipt(receipt("id-3"), clock())
    async with store.engine.begin() as connection:
        await connection.execute(
            message_events.delete().where(message_events.c.message_id == second.id)
        )
        for kind, detail in [
            ("receipt", {**receipt_detail, "part": 1, "id": "id-3"}),
            ("status", {"from": "submitted", "to": "delivered"}),
        ]:
            await connection.execute(
                message_events.insert().values(
                    message_id=second.id, at=clock(), kind=kind, detail=detail
                )
            )
    got = await store.get(second.id)
    assert got is not None
    assert [(e.kind, e.detail) for e in got.events[1:]] == [
        (EventKind.RECEIPT, {**receipt_detail, "part": 1, "id": "id-3"}),
        (EventKind.STATUS, {"from": "submitted", "to": "delivered"}),
    ]


@pytest.mark.parametrize(
    ("submit_id", "receipt_id"),
    [(HEX_ID, DECIMAL_ID), (DECIMAL_ID, HEX_ID), (HEX_ID, HEX_ID.lower())],
)
async def test_hex_and_decimal_forms_of_one_id_correlate(
    store: MessageStore, submit_id: str, receipt_id: str
) -> None:
    message = await submitted(store, submit_id)
    outcome = await store.apply_receipt(receipt(receipt_id))
    assert (outcome.result, outcome.message_id) == (ReceiptResult.APPLIED, message.id)
    assert await status_of(store, message.id) is MessageStatus.DELIVERED


async def test_an_exact_match_wins_over_a_normalised_one(store: MessageStore) -> None:
    as_hex = await submitted(store, "10")  # "10" read as hex is 16...
    exact = await submitted(store, "16")  # ...which is this one's id, exactly
    outcome = await store.apply_receipt(receipt("16"))
    assert outcome.message_id == exact.id
    assert await status_of(store, as_hex.id) is MessageStatus.SUBMITTED


LONG_ID = "Msg-" + "0123456789abcdef" * 6  # 100 characters: over the 80 of the id columns


@pytest.mark.parametrize("receipt_first", [False, True], ids=["submit-first", "receipt-first"])
async def test_an_smsc_id_longer_than_its_column_is_recorded_and_correlated(
    store: MessageStore, receipt_first: bool
) -> None:
    # Regression: SMSCs send message_ids longer than SMPP's 64 characters, which the codec
    # now reads; PostgreSQL refused to record such an id in its 80-character columns, so the
    # submit's record failed for ever (the worker retries it while the store is "away").
    message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message
    await store.claim("w")
    if receipt_first:
        early = await store.apply_receipt(receipt(LONG_ID))
        assert early.result is ReceiptResult.PENDING
    after = await store.mark_submitted(message.id, [LONG_ID], worker_id="w")
    if not receipt_first:
        assert after.status is MessageStatus.SUBMITTED
        outcome = await store.apply_receipt(receipt(LONG_ID))
        assert (outcome.result, outcome.message_id) == (ReceiptResult.APPLIED, message.id)
    got = await store.get(message.id)
    assert got is not None
    assert got.status is MessageStatus.DELIVERED
    [part] = got.parts
    assert part.smsc_id is not None
    assert part.smsc_id.startswith(LONG_ID[:40])
    submitted_event = next(e for e in got.events if e.kind is EventKind.SUBMITTED)
    assert submitted_event.detail["ids"] == [LONG_ID]  # the whole id, in the history


async def test_long_smsc_ids_that_share_a_prefix_stay_apart(store: MessageStore) -> None:
    first = await submitted(store, LONG_ID + "-1")
    second = await submitted(store, LONG_ID + "-2")
    outcome = await store.apply_receipt(receipt(LONG_ID + "-2"))
    assert outcome.message_id == second.id
    assert await status_of(store, first.id) is MessageStatus.SUBMITTED


async def test_a_receipt_before_its_submit_is_kept_then_applied(
    store: MessageStore, clock: FakeClock
) -> None:
    message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message
    await store.claim("w")
    early = await store.apply_receipt(receipt(DECIMAL_ID), clock())
    assert early.result is ReceiptResult.PENDING
    assert [r.receipt_id for r in await store.list_receipts()] == [DECIMAL_ID]
    clock.advance(1)
    after = await store.mark_submitted(message.id, [HEX_ID], worker_id="w")
    assert after.status is MessageStatus.DELIVERED
    assert await store.list_receipts() == []
    [kept] = await store.list_receipts(unmatched=False)
    assert (kept.message_id, kept.part_no, kept.matched_at) == (message.id, 1, clock())
    again = await store.apply_receipt(receipt(DECIMAL_ID))
    assert (again.result, again.message_id) == (ReceiptResult.DUPLICATE, message.id)


@pytest.mark.parametrize("batched", [False, True])
async def test_a_receipt_older_than_the_message_is_not_its_own(
    store: MessageStore, clock: FakeClock, batched: bool
) -> None:
    # An SMSC that recycles ids (a short or restarting counter): yesterday's unknown receipt
    # for id 4711 would otherwise end today's message with that id at once, as undelivered.
    stale = await store.apply_receipt(receipt("4711", ReceiptStat.UNDELIV, "001"), clock())
    assert stale.result is ReceiptResult.PENDING
    clock.advance(86_400)
    message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message
    await store.claim("w")
    if batched:
        await store.mark_submitted_many([(message.id, ["4711"])], worker_id="w")
    else:
        await store.mark_submitted(message.id, ["4711"], worker_id="w")
    assert await status_of(store, message.id) is MessageStatus.SUBMITTED
    [kept] = await store.list_receipts()  # still waiting, for whichever message it was
    assert kept.receipt_id == "4711"
    fresh = await store.apply_receipt(receipt("4711"))  # the message's own receipt
    assert (fresh.result, fresh.message_id) == (ReceiptResult.APPLIED, message.id)
    assert await status_of(store, message.id) is MessageStatus.DELIVERED


async def test_the_same_receipt_twice_is_applied_once(store: MessageStore) -> None:
    message = await submitted(store, "X1")
    first = await store.apply_receipt(receipt("X1"))
    second = await store.apply_receipt(receipt("X1"))
    assert first.result is ReceiptResult.APPLIED
    assert first.status_changed
    assert second.result is ReceiptResult.DUPLICATE
    assert not second.status_changed
    assert second.message_status is MessageStatus.DELIVERED
    got = await store.get(message.id)
    assert got is not None
    assert [e.kind for e in got.events].count(EventKind.RECEIPT) == 1


@pytest.mark.parametrize("batch", [False, True])
async def test_two_ids_that_read_as_one_number_are_two_receipts(
    store: MessageStore, batch: bool
) -> None:
    # Auto mode reads all-digit ids as decimal and others as hex: both of these become 110.
    first = await submitted(store, "0000006e")
    second = await submitted(store, "00000110")
    pair = [receipt("0000006e"), receipt("00000110")]  # same stat, counts and dates
    if batch:
        outcomes = await store.apply_receipts([(r, None) for r in pair])
    else:
        outcomes = [await store.apply_receipt(r) for r in pair]
    assert [(o.result, o.message_id) for o in outcomes] == [
        (ReceiptResult.APPLIED, first.id),
        (ReceiptResult.APPLIED, second.id),
    ]
    assert await status_of(store, second.id) is MessageStatus.DELIVERED


async def test_concurrent_duplicates_from_two_processes_apply_once(
    store: MessageStore, open_at: OpenStore
) -> None:
    message = await submitted(store, "Y1", "Y2")
    other = await open_at()
    outcomes = await asyncio.gather(
        *(s.apply_receipt(receipt(i)) for s in (store, other) for i in ("Y1", "Y2", "Y1", "Y2"))
    )
    assert sorted(o.result for o in outcomes).count(ReceiptResult.APPLIED) == 2
    assert sum(o.status_changed for o in outcomes) == 1  # the last part made it delivered
    assert await status_of(store, message.id) is MessageStatus.DELIVERED


async def test_a_multipart_message_is_delivered_only_when_every_part_is(
    store: MessageStore,
) -> None:
    await submitted(store, "P1", "P2", "P3")
    for part in ("P1", "P3"):
        outcome = await store.apply_receipt(receipt(part))
        assert outcome.message_status is MessageStatus.SUBMITTED
        assert not outcome.status_changed
    last = await store.apply_receipt(receipt("P2"))
    assert last.message_status is MessageStatus.DELIVERED
    assert last.status_changed


async def test_a_multipart_message_takes_its_worst_part_state(store: MessageStore) -> None:
    message = await submitted(store, "Q1", "Q2", "Q3")
    await store.apply_receipt(receipt("Q1", ReceiptStat.DELIVRD))
    await store.apply_receipt(receipt("Q2", ReceiptStat.EXPIRED))
    outcome = await store.apply_receipt(receipt("Q3", ReceiptStat.UNDELIV, err="001"))
    assert outcome.message_status is MessageStatus.UNDELIVERED
    got = await store.get(message.id)
    assert got is not None
    assert [p.status for p in got.parts] == [
        MessageStatus.DELIVERED,
        MessageStatus.EXPIRED,
        MessageStatus.UNDELIVERED,
    ]


async def test_enroute_changes_nothing_and_accepted_may_be_upgraded(
    store: MessageStore,
) -> None:
    message = await submitted(store, "R1")
    enroute = await store.apply_receipt(receipt("R1", ReceiptStat.ENROUTE))
    assert enroute.result is ReceiptResult.APPLIED
    assert not enroute.status_changed
    accepted = await store.apply_receipt(receipt("R1", ReceiptStat.ACCEPTD))
    assert accepted.message_status is MessageStatus.ACCEPTED
    delivered = await store.apply_receipt(receipt("R1", ReceiptStat.DELIVRD))
    assert delivered.message_status is MessageStatus.DELIVERED
    late = await store.apply_receipt(receipt("R1", ReceiptStat.UNDELIV))
    assert late.result is ReceiptResult.IGNORED
    assert not late.status_changed
    assert await status_of(store, message.id) is MessageStatus.DELIVERED


@pytest.mark.parametrize("path", ["one", "batch", "waiting"])
async def test_an_intermediate_notification_never_makes_a_part_final(
    store: MessageStore, path: str
) -> None:
    # esm_class 0x20: the outcome of a failed first attempt, say, while the SMSC retries
    first = replace(receipt("R1", ReceiptStat.UNDELIV, err="027"), intermediate=True)
    final = receipt("R1", ReceiptStat.UNDELIV, err="027")  # the same fields, now final
    if path == "waiting":
        assert (await store.apply_receipt(first)).result is ReceiptResult.PENDING
        message = await submitted(store, "R1")
    else:
        message = await submitted(store, "R1")
        if path == "one":
            await store.apply_receipt(first)
        else:
            await store.apply_receipts([(first, "R1")])
    assert await status_of(store, message.id) is MessageStatus.SUBMITTED
    outcome = await store.apply_receipt(final)
    assert outcome.result is ReceiptResult.APPLIED
    assert await status_of(store, message.id) is MessageStatus.UNDELIVERED


async def test_an_unknown_receipt_is_kept_not_dropped(
    store: MessageStore, clock: FakeClock
) -> None:
    outcome = await store.apply_receipt(receipt("never-sent", ReceiptStat.UNDELIV), clock())
    assert outcome.result is ReceiptResult.PENDING
    assert outcome.message_id is None
    [kept] = await store.list_receipts()
    assert (kept.receipt_id, kept.stat, kept.received_at) == (
        "never-sent",
        ReceiptStat.UNDELIV,
        clock(),
    )
    assert kept.detail["text"] == "hello"
    again = await store.apply_receipt(receipt("never-sent", ReceiptStat.UNDELIV))
    assert again.result is ReceiptResult.DUPLICATE
    assert len(await store.list_receipts()) == 1


@pytest.mark.parametrize("batched", [False, True])
async def test_a_receipt_no_column_holds_as_sent_is_kept_on_every_backend(
    store: MessageStore, batched: bool
) -> None:
    # PostgreSQL refused these (an id over the column's 80 characters; a NUL, which its text
    # cannot hold): stored nowhere, each would come back from the SMSC for ever.
    long_id, nul_id = "x" * 90, "7\x008"
    odd: list[tuple[DeliveryReceipt, str | None]] = [
        (replace(receipt(long_id), err="0\x001"), None),
        (replace(receipt(nul_id), text="a\x00b"), None),
        (replace(receipt("y" * 70 + "\x00" * 30), err="1" * 20), None),
    ]
    apply = store.apply_receipts if batched else _one_at_a_time(store)
    assert [o.result for o in await apply(odd)] == [ReceiptResult.PENDING] * 3
    kept = {(r.receipt_id, r.err): r.detail for r in await store.list_receipts()}
    # An id its column cannot hold is kept as its first characters and a digest of the whole.
    assert storable_id(long_id).startswith("x" * 63 + "~")
    assert storable_id(nul_id).startswith("7\ufffd8~")
    assert {len(storable_id(long_id)), len(storable_id("y" * 70 + "\x00" * 30))} == {80}
    assert kept == {
        (storable_id(long_id), "0\ufffd1"): {**_detail(), "id": long_id, "err": "0\x001"},
        (storable_id(nul_id), "000"): {**_detail(text="a\x00b"), "id": nul_id},
        (storable_id("y" * 70 + "\x00" * 30), "1" * 16): {
            **_detail(),
            "id": "y" * 70 + "\x00" * 30,
            "err": "1" * 20,
        },
    }
    assert [o.result for o in await apply(odd)] == [ReceiptResult.DUPLICATE] * 3
    # One the client matched to a part, and one whose id, stripped, is a part's: applied.
    message = await submitted(store, "abc1", "abc2")
    applied = await apply(
        [
            (replace(receipt("abc1\x00zz"), err="0\x002"), "abc1"),
            (receipt("  ABC2" + " " * 80), None),
        ]
    )
    assert [(o.result, o.message_id) for o in applied] == [(ReceiptResult.APPLIED, message.id)] * 2
    got = await store.get(message.id)
    assert got is not None
    assert got.status is MessageStatus.DELIVERED
    assert [p.error_code for p in got.parts] == ["0\ufffd2", "000"]
    assert len(await store.list_receipts()) == 3


def _one_at_a_time(
    store: MessageStore,
) -> Callable[[Sequence[tuple[DeliveryReceipt, str | None]]], Awaitable[list[ReceiptOutcome]]]:
    async def apply(batch: Sequence[tuple[DeliveryReceipt, str | None]]) -> list[ReceiptOutcome]:
        return [await store.apply_receipt(r, submitted_id=sub) for r, sub in batch]

    return apply


def _detail(text: str = "hello") -> dict[str, object]:
    """The detail :func:`receipt` gives a stored receipt."""
    return {
        "sub": 1,
        "dlvrd": 1,
        "submit_date": "2026-01-01T12:00:00",
        "done_date": "2026-01-01T12:01:00",
        "text": text,
        "message_state": None,
        "network_error_code": None,
        "submitted_id": None,
    }


async def test_receipts_for_an_earlier_send_still_match_after_a_resend(
    store: MessageStore, clock: FakeClock
) -> None:
    message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message
    await store.claim("w1", lease_seconds=10)
    await store.mark_submitted(message.id, ["first"], worker_id="w1")
    # the service resends (e.g. the first answer was lost): a second id for part 1
    await store.mark_submitted(message.id, ["second"], worker_id="w1")
    outcome = await store.apply_receipt(receipt("first"))
    assert outcome.message_id == message.id
    assert outcome.message_status is MessageStatus.DELIVERED


async def test_a_batch_never_overwrites_a_part_another_process_made_final_meanwhile(
    store: MessageStore, open_at: OpenStore, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batch reads its receipts' parts before it locks their messages. A receipt for the
    # part's earlier id takes other key locks, so on PostgreSQL another process may make the
    # part final in between: the batch must then see it final, as one receipt at a time would.
    other = await open_at()
    message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message
    await store.claim("w")
    await store.mark_submitted(message.id, ["first"], worker_id="w")
    await store.mark_submitted(message.id, ["second"], worker_id="w")  # a resend's id
    earlier = receipt("first", ReceiptStat.UNDELIV, "001")
    if backend == "sqlite":  # writers take turns: the other receipt simply goes first
        await other.apply_receipt(earlier)
        [outcome] = await store.apply_receipts([(receipt("second"), None)])
    else:
        read, done = asyncio.Event(), asyncio.Event()

        async def fetch_then_wait(*args: Any, **kwargs: Any) -> list[Any]:
            rows = await fetch_in(*args, **kwargs)
            if args[1] == _PARTS_BY_SMSC_ID and not read.is_set():
                read.set()
                await done.wait()  # the other process applies its receipt now
            return rows

        async def meanwhile() -> ReceiptOutcome:
            await read.wait()
            try:
                return await other.apply_receipt(earlier)
            finally:
                done.set()

        monkeypatch.setattr("o2sms.store.messages.fetch_in", fetch_then_wait)
        batch = asyncio.create_task(store.apply_receipts([(receipt("second"), None)]))
        first = await asyncio.wait_for(meanwhile(), 30)
        [outcome] = await asyncio.wait_for(batch, 30)
        assert first.result is ReceiptResult.APPLIED
    assert outcome.result is ReceiptResult.IGNORED
    assert outcome.message_status is MessageStatus.UNDELIVERED
    got = await store.get(message.id)
    assert got is not None
    assert got.status is MessageStatus.UNDELIVERED
    assert [(p.status, p.error_code) for p in got.parts] == [(MessageStatus.UNDELIVERED, "001")]


async def test_mark_failed_records_the_status_name_and_meaning(store: MessageStore) -> None:
    message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message
    await store.claim("w")
    failed = await store.mark_failed(message.id, error_code=0x0B, worker_id="w")
    assert failed.status is MessageStatus.FAILED
    assert failed.lease_owner is None
    assert (failed.error_code, failed.error_name) == (0x0B, "ESME_RINVDSTADR")
    assert failed.error_detail
    assert failed.finished_at is not None
    # a decided message stays decided
    assert (await store.mark_failed(message.id, error_name="OTHER")).error_name == "ESME_RINVDSTADR"


async def test_a_command_status_past_the_signed_32_bit_range_is_recorded(
    store: MessageStore,
) -> None:
    # command_status is an unsigned 32-bit field: an SMSC may answer 0x80000000 and above.
    # PostgreSQL's INTEGER stops at 2**31 - 1, so the failure could not be stored there: the
    # message was resent after each lease until it failed as MAX_ATTEMPTS instead.
    message = (await store.enqueue(NewMessage("+421900000001", "hi"))).message
    await store.claim("w")
    failed = await store.mark_failed(message.id, error_code=0xFFFFFFFF, worker_id="w")
    assert failed.status is MessageStatus.FAILED
    assert (failed.error_code, failed.error_name) == (0xFFFFFFFF, "UNKNOWN_0xFFFFFFFF")
    got = await store.get(message.id)
    assert got is not None
    assert got.error_code == 0xFFFFFFFF


async def test_a_part_that_went_out_before_another_failed_still_correlates(
    store: MessageStore,
) -> None:
    message = (await store.enqueue(NewMessage("+421900000001", "long", parts=2))).message
    await store.claim("w")
    await store.mark_failed(
        message.id, error_name="ESME_RSUBMITFAIL", smsc_ids=["Z1", None], worker_id="w"
    )
    outcome = await store.apply_receipt(receipt("Z1"))
    assert outcome.result is ReceiptResult.APPLIED
    assert outcome.message_status is MessageStatus.FAILED
    assert not outcome.status_changed
    got = await store.get(message.id)
    assert got is not None
    assert [p.status for p in got.parts] == [MessageStatus.DELIVERED, MessageStatus.FAILED]


async def test_a_receipt_racing_its_submit_from_another_process_is_never_lost(
    store: MessageStore, open_at: OpenStore
) -> None:
    other = await open_at()
    messages = await store.enqueue_many([NewMessage(f"+4219{n:08d}", "hi") for n in range(20)])
    await store.claim("w", limit=20)
    await asyncio.gather(
        *(
            coroutine
            for n, result in enumerate(messages)
            for coroutine in (
                store.mark_submitted(result.message.id, [f"{0xA000_0000 + n:X}"], worker_id="w"),
                other.apply_receipt(receipt(str(0xA000_0000 + n))),  # the decimal form
            )
        )
    )
    for result in messages:
        assert await status_of(store, result.message.id) is MessageStatus.DELIVERED
    assert await store.list_receipts() == []


async def test_a_submit_finds_the_receipts_waiting_for_it_through_indexes_on_sqlite(
    tmp_path: Path,
) -> None:
    # Unknown receipts are kept for months. Recording a submit looks for the ones waiting for
    # its ids; as one condition with OR that read every unmatched receipt (a second of the
    # write lock, on the event loop's thread, per 500,000 of them), for each part recorded.
    store = await open_store(tmp_path / "waiting.db")
    statements: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "receipt_keys" in statement and statement.lstrip().startswith("SELECT"):
            statements.append((statement, parameters))

    try:
        assert (await store.apply_receipt(receipt("W1"))).result is ReceiptResult.PENDING
        sa.event.listen(store.engine.sync_engine, "before_cursor_execute", seen)
        message = await submitted(store, "W1")
        sa.event.remove(store.engine.sync_engine, "before_cursor_execute", seen)
        assert await status_of(store, message.id) is MessageStatus.DELIVERED
        [(statement, parameters)] = [s for s in statements if "ORDER BY" in s[0]]
        async with store.engine.connect() as connection:
            rows = await connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + statement, tuple(parameters)
            )
            plan = " | ".join(str(detail) for *_, detail in rows)
    finally:
        await store.close()
    assert "ix_receipts_receipt_id (receipt_id=?)" in plan, plan
    assert "ix_receipts_message_id" not in plan, plan
    assert "SCAN receipts" not in plan, plan
