"""The webhook outbox: written with each status change, claimed with a lease, retried, purged.

Every test runs on SQLite and on PostgreSQL (see conftest). Times come from the fake clock,
so backoffs and give-up times pass without sleeping.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, NoReturn

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

import o2sms.store.messages
from o2sms.receipts import DeliveryReceipt, ReceiptStat
from o2sms.store import (
    Message,
    MessageStatus,
    MessageStore,
    NewInbound,
    NewMessage,
    Webhook,
    WebhookEvent,
    WebhookStatus,
)
from o2sms.store.schema import webhook_attempts, webhooks
from tests.store.conftest import FakeClock, OpenStore

pytestmark = pytest.mark.asyncio

HOOK = "https://hooks.example.com/o2sms"
GLOBAL = "https://global.example.com/all"


def receipt(receipt_id: str, stat: ReceiptStat = ReceiptStat.DELIVRD) -> DeliveryReceipt:
    return DeliveryReceipt(receipt_id, 1, 1, None, None, stat, "000", None)


@pytest_asyncio.fixture
async def hooked(open_at: OpenStore) -> MessageStore:
    """A store with a global webhook URL, retrying for 100 s (base 1 s, cap 8 s)."""
    return await open_at(
        max_attempts=3,
        webhook_url=GLOBAL,
        webhook_retry_for=100.0,
        webhook_retry_base=1.0,
        webhook_retry_cap=8.0,
    )


async def count(store: MessageStore, table: sa.Table) -> int:
    async with store.engine.connect() as connection:
        return int(await connection.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


async def submitted(store: MessageStore, smsc_id: str, callback: str | None = HOOK) -> Message:
    message = (
        await store.enqueue(NewMessage("+421900000001", "hi", sender="O2", callback_url=callback))
    ).message
    assert [m.id for m in await store.claim("w")] == [message.id]
    return await store.mark_submitted(message.id, [smsc_id], worker_id="w")


def statuses(hooks: list[Webhook]) -> list[str]:
    return [h.payload["message"]["status"] for h in hooks]


async def test_status_changes_write_one_webhook_each_with_a_snapshot(
    hooked: MessageStore, clock: FakeClock
) -> None:
    message = (
        await hooked.enqueue(
            NewMessage("+421900000001", "hi", sender="O2", reference="r1", callback_url=HOOK)
        )
    ).message
    await hooked.claim("w")
    assert await hooked.list_webhooks(message_id=message.id) == []  # queued: no change yet
    await hooked.mark_submitted(message.id, ["S1"], worker_id="w")
    clock.advance(5)
    outcome = await hooked.apply_receipt(receipt("S1"))
    assert outcome.status_changed
    assert (await hooked.apply_receipt(receipt("S1"))).result.value == "duplicate"

    hooks = await hooked.list_webhooks(message_id=message.id)
    assert statuses(hooks) == ["submitted", "delivered"]
    first, second = hooks
    assert {h.url for h in hooks} == {HOOK}  # the message's own URL wins over the global one
    assert first.event is WebhookEvent.MESSAGE_STATUS
    assert first.status is WebhookStatus.PENDING
    assert first.give_up_at == first.created_at + timedelta(seconds=100)
    assert second.payload == {
        "type": "message.status",
        "id": second.event_id,
        "created_at": "2026-01-01T12:00:05Z",
        "message": {
            "id": message.id,
            "to": "+421900000001",
            "from": "O2",
            "status": "delivered",
            "previous_status": "submitted",
            "reference": "r1",
            "parts": 1,
            "error_code": None,
            "error_name": None,
            "error_detail": None,
            "created_at": "2026-01-01T12:00:00Z",
            "submitted_at": "2026-01-01T12:00:00Z",
            "finished_at": "2026-01-01T12:00:05Z",
            "updated_at": "2026-01-01T12:00:05Z",
        },
    }
    assert first.event_id != second.event_id
    assert first.id < second.id


async def test_no_url_anywhere_means_no_webhook_rows(store: MessageStore) -> None:
    message = await submitted(store, "S1", callback=None)
    await store.apply_receipt(receipt("S1"))
    await store.record_inbound(NewInbound("+421900000001", "4444", "STOP"))
    assert await store.list_webhooks(message_id=message.id) == []
    assert await count(store, webhooks) == 0


async def test_the_global_url_is_used_without_a_callback_url(hooked: MessageStore) -> None:
    message = await submitted(hooked, "S1", callback=None)
    [hook] = await hooked.list_webhooks(message_id=message.id)
    assert hook.url == GLOBAL


async def test_a_message_callback_alone_is_enough(store: MessageStore) -> None:
    message = await submitted(store, "S1")
    assert [h.url for h in await store.list_webhooks(message_id=message.id)] == [HOOK]


async def test_a_receipt_before_its_submit_reports_submitted_then_delivered(
    hooked: MessageStore,
) -> None:
    await hooked.apply_receipt(receipt("S1"))  # pending: no message yet, no webhook
    assert await count(hooked, webhooks) == 0
    message = await submitted(hooked, "S1")
    assert message.status is MessageStatus.DELIVERED
    assert statuses(await hooked.list_webhooks(message_id=message.id)) == [
        "submitted",
        "delivered",
    ]


async def test_cancel_writes_one_webhook(hooked: MessageStore) -> None:
    message = (await hooked.enqueue(NewMessage("+421900000001", "hi", callback_url=HOOK))).message
    await hooked.cancel(message.id)
    await hooked.cancel(message.id)  # already cancelled: no change, no webhook
    [hook] = await hooked.list_webhooks(message_id=message.id)
    assert hook.payload["message"]["status"] == "cancelled"
    assert hook.payload["message"]["previous_status"] == "queued"


async def test_a_final_submit_error_writes_one_webhook_with_the_error(
    hooked: MessageStore,
) -> None:
    message = (await hooked.enqueue(NewMessage("+421900000001", "hi"))).message
    await hooked.claim("w")
    await hooked.mark_failed(message.id, error_code=0x0B, worker_id="w")
    await hooked.mark_failed(message.id, error_code=0x0B, worker_id="w")  # unchanged
    [hook] = await hooked.list_webhooks(message_id=message.id)
    body = hook.payload["message"]
    assert (body["status"], body["error_code"], body["error_name"]) == (
        "failed",
        0x0B,
        "ESME_RINVDSTADR",
    )


async def test_retries_write_nothing_and_giving_up_writes_failed(
    hooked: MessageStore, clock: FakeClock
) -> None:
    message = (await hooked.enqueue(NewMessage("+421900000001", "hi"))).message
    for _ in range(3):  # max_attempts=3
        clock.advance(3600)
        await hooked.claim("w")
        after = await hooked.requeue(message.id, "w", error="ESME_RTHROTTLED")
    assert after.status is MessageStatus.FAILED
    assert statuses(await hooked.list_webhooks(message_id=message.id)) == ["failed"]


async def test_an_exhausted_lease_writes_a_failed_webhook(
    hooked: MessageStore, clock: FakeClock
) -> None:
    message = (await hooked.enqueue(NewMessage("+421900000001", "hi"))).message
    for _ in range(3):
        await hooked.claim("w", lease_seconds=10)
        clock.advance(11)
    assert await hooked.claim("w") == []
    [hook] = await hooked.list_webhooks(message_id=message.id)
    assert hook.payload["message"]["error_name"] == "MAX_ATTEMPTS"


async def test_inbound_sms_go_to_the_global_url(hooked: MessageStore) -> None:
    sms = await hooked.record_inbound(NewInbound("+421900000001", "4444", "Ahoj", session="s1"))
    [hook] = await hooked.list_webhooks(inbound_id=sms.id)
    assert hook.event is WebhookEvent.INBOUND_SMS
    assert hook.url == GLOBAL
    assert hook.message_id is None
    assert hook.payload["inbound"] == {
        "id": sms.id,
        "from": "+421900000001",
        "to": "4444",
        "text": "Ahoj",
        "data_coding": 0,
        "parts": 1,
        "received_at": "2026-01-01T12:00:00Z",
    }


def _boom(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise RuntimeError("crash in the middle")


async def test_a_rolled_back_change_leaves_no_webhook(
    hooked: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = (await hooked.enqueue(NewMessage("+421900000001", "hi"))).message
    await hooked.claim("w")
    monkeypatch.setattr(o2sms.store.messages, "add_events", _boom)
    with pytest.raises(RuntimeError, match="crash"):
        await hooked.mark_submitted(message.id, ["S1"], worker_id="w")
    assert await count(hooked, webhooks) == 0


async def test_claims_lease_webhooks_and_an_expired_lease_is_taken_again(
    hooked: MessageStore, clock: FakeClock
) -> None:
    await hooked.record_inbound(NewInbound("+421900000001", "4444", "a"))
    [hook] = await hooked.claim_webhooks("s1", lease_seconds=30)
    assert (hook.lease_owner, hook.attempts) == ("s1", 1)
    assert await hooked.claim_webhooks("s2") == []
    clock.advance(31)
    [again] = await hooked.claim_webhooks("s2")
    assert (again.id, again.lease_owner, again.attempts) == (hook.id, "s2", 2)


async def test_webhooks_of_one_message_go_out_in_order(
    hooked: MessageStore, clock: FakeClock
) -> None:
    message = await submitted(hooked, "S1")
    await hooked.apply_receipt(receipt("S1"))
    other = await hooked.record_inbound(NewInbound("+421900000002", "4444", "b"))
    claimed = await hooked.claim_webhooks("s1", limit=10)
    assert [(h.message_id, h.inbound_id) for h in claimed] == [
        (message.id, None),
        (None, other.id),
    ]
    assert statuses(claimed[:1]) == ["submitted"]
    clock.advance(61)  # after the lease too, "delivered" waits for "submitted"
    assert [h.id for h in await hooked.claim_webhooks("s2")] == [h.id for h in claimed]
    await hooked.webhook_delivered(claimed[0].id, "s2", status_code=200, duration_ms=5)
    assert statuses(await hooked.claim_webhooks("s2")) == ["delivered"]


async def test_failed_attempts_back_off_exponentially_and_are_recorded(
    hooked: MessageStore, clock: FakeClock
) -> None:
    message = await submitted(hooked, "S1")
    delays = []
    for attempt in range(1, 6):
        [hook] = await hooked.claim_webhooks("s")
        assert hook.attempts == attempt
        after = await hooked.webhook_failed(
            hook.id, "s", error="HTTP 500", status_code=500, duration_ms=12
        )
        assert after is not None
        assert after.status is WebhookStatus.PENDING
        delay = (after.next_attempt_at - clock()).total_seconds()
        delays.append(delay)
        clock.advance(delay - 0.5)
        assert await hooked.claim_webhooks("s") == []  # not due before its time
        clock.advance(0.5)
    assert delays == [1, 2, 4, 8, 8]  # base 1 s, doubling, capped at 8 s
    [hook] = await hooked.claim_webhooks("s")
    delivered = await hooked.webhook_delivered(hook.id, "s", status_code=204, duration_ms=3)
    assert delivered is not None
    assert delivered.status is WebhookStatus.DELIVERED
    assert delivered.delivered_at == clock()
    assert delivered.last_error is None
    attempts = await hooked.list_webhook_attempts(message.id)
    assert [(a.status_code, a.error) for a in attempts] == [(500, "HTTP 500")] * 5 + [(204, None)]
    assert {a.webhook_id for a in attempts} == {hook.id}
    assert attempts[0].duration_ms == 12
    assert attempts[0].url == HOOK
    assert await hooked.webhook_backlog() == 0


async def test_a_webhook_is_given_up_after_the_retry_time(
    hooked: MessageStore, clock: FakeClock
) -> None:
    await hooked.record_inbound(NewInbound("+421900000001", "4444", "a"))
    while True:
        hooks = await hooked.claim_webhooks("s")
        if not hooks:
            break
        after = await hooked.webhook_failed(hooks[0].id, "s", error="ConnectError")
        assert after is not None
        assert after.next_attempt_at <= after.give_up_at  # the last try is at give_up_at
        clock.advance(max(0.0, (after.next_attempt_at - clock()).total_seconds()))
    [hook] = await hooked.list_webhooks()
    assert hook.status is WebhookStatus.FAILED
    assert hook.last_error == "ConnectError"
    assert clock() == hook.give_up_at
    assert hook.attempts == 16  # at 0, 1, 3, 7 s, every 8 s from 15 to 95 s, a last at 100 s
    assert await hooked.webhook_backlog() == 0


async def test_a_refused_url_is_given_up_at_once(hooked: MessageStore) -> None:
    await hooked.record_inbound(NewInbound("+421900000001", "4444", "a"))
    [hook] = await hooked.claim_webhooks("s")
    after = await hooked.webhook_failed(hook.id, "s", error="not allowed", give_up=True)
    assert after is not None
    assert after.status is WebhookStatus.FAILED


async def test_an_abandoned_lease_past_the_give_up_time_fails_the_webhook(
    hooked: MessageStore, clock: FakeClock
) -> None:
    await hooked.record_inbound(NewInbound("+421900000001", "4444", "a"))
    [first] = await hooked.claim_webhooks("s")
    await hooked.webhook_failed(first.id, "s", error="HTTP 500", status_code=500)
    clock.advance(99)  # the last retry falls due at give_up_at (100 s)
    assert [h.id for h in await hooked.claim_webhooks("dead", lease_seconds=200)] == [first.id]
    clock.advance(201)  # that sender died during the final attempt
    assert await hooked.claim_webhooks("s") == []
    [hook] = await hooked.list_webhooks()
    assert hook.status is WebhookStatus.FAILED
    assert "lease expired" in (hook.last_error or "")


async def test_a_webhook_never_attempted_gets_its_attempt_though_its_lease_outlived_give_up(
    hooked: MessageStore, clock: FakeClock
) -> None:
    # retry_for (100 s) shorter than the lease (200 s): a sender that died after its claim
    # must not make the webhook fail without a single request.
    await hooked.record_inbound(NewInbound("+421900000001", "4444", "a"))
    [claimed] = await hooked.claim_webhooks("dead", lease_seconds=200)
    clock.advance(201)
    [again] = await hooked.claim_webhooks("s")
    assert again.id == claimed.id
    assert again.attempts == 2
    failed = await hooked.webhook_failed(again.id, "s", error="HTTP 500", status_code=500)
    assert failed is not None
    assert failed.status is WebhookStatus.FAILED  # that was its last chance
    assert await count(hooked, webhook_attempts) == 1  # the one request, recorded


async def test_a_late_outcome_from_a_sender_that_lost_its_lease(
    hooked: MessageStore, clock: FakeClock
) -> None:
    await hooked.record_inbound(NewInbound("+421900000001", "4444", "a"))
    [hook] = await hooked.claim_webhooks("old", lease_seconds=10)
    clock.advance(11)
    await hooked.claim_webhooks("new")
    after = await hooked.webhook_failed(hook.id, "old", error="timeout")
    assert after is not None
    assert (after.status, after.lease_owner) == (WebhookStatus.PENDING, "new")  # untouched
    done = await hooked.webhook_delivered(hook.id, "new", status_code=200)
    assert done is not None
    assert done.status is WebhookStatus.DELIVERED
    assert await count(hooked, webhook_attempts) == 2


async def test_release_hands_leases_back(hooked: MessageStore) -> None:
    await hooked.record_inbound(NewInbound("+421900000001", "4444", "a"))
    await hooked.record_inbound(NewInbound("+421900000001", "4444", "b"))
    first, _ = await hooked.claim_webhooks("s")
    assert await hooked.release_webhooks("s", [first.id]) == 1
    [again] = await hooked.claim_webhooks("t")
    assert (again.id, again.attempts) == (first.id, 1)
    assert await hooked.release_webhooks("s") == 1
    assert await hooked.webhook_backlog() == 2


async def test_defer_hands_back_unsent_and_puts_off_the_same_urls_due_meanwhile(
    hooked: MessageStore, clock: FakeClock
) -> None:
    slow = [await submitted(hooked, f"S{n}") for n in range(4)]  # HOOK, due now
    same_host = await submitted(hooked, "P", callback="https://hooks.example.com/other?t=1")
    other = await submitted(hooked, "O", callback="https://other.example.com/x")
    like = await submitted(hooked, "L", callback="https://hooks.example.com.evil.test/x")
    [claimed] = await hooked.claim_webhooks("s", limit=1)
    assert claimed.message_id == slow[0].id
    [late] = await hooked.list_webhooks(message_id=slow[3].id)
    async with hooked.engine.begin() as connection:  # due after the deferral: left alone
        await connection.execute(
            sa.update(webhooks)
            .where(webhooks.c.id == late.id)
            .values(next_attempt_at=clock.now + timedelta(seconds=60))
        )
    [leased] = await hooked.claim_webhooks("t", limit=1)  # leased elsewhere: left alone
    assert leased.message_id == slow[1].id

    assert await hooked.defer_webhooks("s", [claimed.id, leased.id], seconds=10) == 1
    due = {
        h.message_id: (h.next_attempt_at - clock.now, h.attempts, h.lease_owner)
        for h in await hooked.list_webhooks()
    }
    assert due == {
        slow[0].id: (timedelta(seconds=10), 0, None),  # handed back, attempt uncounted
        slow[1].id: (timedelta(0), 1, "t"),  # another sender's lease: not "s"'s to hand back
        slow[2].id: (timedelta(seconds=10), 0, None),  # same URL, due meanwhile: put off
        slow[3].id: (timedelta(seconds=60), 0, None),
        same_host.id: (timedelta(seconds=10), 0, None),  # same receiver, another URL
        other.id: (timedelta(0), 0, None),  # other receivers
        like.id: (timedelta(0), 0, None),
    }
    assert await hooked.list_webhook_attempts(slow[0].id) == []
    clock.advance(10)
    assert {h.message_id for h in await hooked.claim_webhooks("s")} == {
        slow[0].id,
        slow[2].id,
        same_host.id,
        other.id,
        like.id,
    }


async def test_a_webhook_held_back_past_its_give_up_time_fails(
    hooked: MessageStore, clock: FakeClock
) -> None:
    first = await submitted(hooked, "S1")
    await hooked.apply_receipt(receipt("S1"))  # its second webhook waits behind the first
    [hook] = await hooked.claim_webhooks("s")
    assert await hooked.defer_webhooks("s", [hook.id], seconds=10) == 1
    clock.advance(101)  # retry_for is 100 s
    [hook] = await hooked.claim_webhooks("s")
    assert hook.attempts == 1  # never attempted: each hand-back uncounted the claim
    assert await hooked.defer_webhooks("s", [hook.id], seconds=10) == 1
    first_hook, second_hook = await hooked.list_webhooks(message_id=first.id)
    assert first_hook.status is WebhookStatus.FAILED
    assert first_hook.last_error is not None
    assert "did not answer" in first_hook.last_error
    assert second_hook.status is WebhookStatus.PENDING
    [after] = await hooked.claim_webhooks("s")  # the next one is no longer held behind it
    assert after.id == second_hook.id


async def test_two_senders_never_claim_the_same_webhook(
    hooked: MessageStore, open_at: OpenStore
) -> None:
    other = await open_at(webhook_url=GLOBAL)
    for n in range(40):
        await hooked.record_inbound(NewInbound("+421900000001", "4444", f"m{n}"))

    async def drain(store: MessageStore, name: str) -> list[int]:
        got: list[int] = []
        while batch := await store.claim_webhooks(name, limit=3):
            got += [h.id for h in batch]
        return got

    a, b = await asyncio.gather(drain(hooked, "a"), drain(other, "b"))
    assert len(a) + len(b) == 40
    assert len(set(a) | set(b)) == 40


async def test_purge_removes_webhooks_with_their_messages_and_inbound(
    hooked: MessageStore, clock: FakeClock
) -> None:
    old = await submitted(hooked, "S1")
    await hooked.apply_receipt(receipt("S1"))
    await hooked.record_inbound(NewInbound("+421900000001", "4444", "old"))
    hooks = await hooked.claim_webhooks("s")
    assert len(hooks) == 2  # "submitted" and the inbound SMS; "delivered" waits its turn
    for hook in hooks:
        await hooked.webhook_failed(hook.id, "s", error="HTTP 500", status_code=500)
    clock.advance(86_400 + 1)
    recent = await submitted(hooked, "S2")
    result = await hooked.purge(delete_after=timedelta(days=1))
    assert result.webhooks == 3
    assert await hooked.list_webhooks(message_id=old.id) == []
    assert await hooked.list_webhook_attempts(old.id) == []
    assert len(await hooked.list_webhooks(message_id=recent.id)) == 1
    assert await count(hooked, webhooks) == 1
    assert await count(hooked, webhook_attempts) == 0


async def test_webhooks_waiting_behind_a_failing_one_are_parked_then_due_when_it_settles(
    hooked: MessageStore, clock: FakeClock
) -> None:
    # A dead receiver: each message's "submitted" webhook is retrying, its "delivered" one
    # waits behind it. Left due, every claim would read that whole backlog again.
    for n in range(5):
        await submitted(hooked, f"S{n}")
        await hooked.apply_receipt(receipt(f"S{n}"))
    heads = await hooked.claim_webhooks("s", limit=20)
    assert statuses(heads) == ["submitted"] * 5
    for hook in heads:
        await hooked.webhook_failed(hook.id, "s", error="HTTP 503", status_code=503)
    assert await hooked.claim_webhooks("s", limit=20) == []
    waiting = [
        h for h in await hooked.list_webhooks(status=WebhookStatus.PENDING) if h.attempts == 0
    ]
    assert statuses(waiting) == ["delivered"] * 5
    assert all(h.next_attempt_at > clock() for h in waiting)  # parked: no claim reads them
    clock.advance(1)  # the first retry of the heads is due; the receiver is back
    again = await hooked.claim_webhooks("s", limit=20)
    assert [h.id for h in again] == [h.id for h in heads]
    await hooked.webhook_delivered(again[0].id, "s", status_code=200)
    await hooked.webhook_failed(again[1].id, "s", error="refused", give_up=True)
    # Due at once, not when the park runs out: the next of each settled message goes now.
    follow = await hooked.claim_webhooks("s", limit=20)
    assert statuses(follow) == ["delivered"] * 2
    assert {h.message_id for h in follow} == {again[0].message_id, again[1].message_id}


async def test_a_webhook_parked_while_its_predecessor_is_delivered_elsewhere_is_not_left_parked(
    open_at: OpenStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two senders (two stores): one claims and parks "delivered" behind "submitted" while the
    # other records that "submitted" was delivered. On PostgreSQL that recording, unlocked,
    # committed first and un-parked nothing, leaving "delivered" parked until its give_up_at.
    options: dict[str, Any] = {"webhook_url": GLOBAL, "webhook_retry_for": 100.0}
    claimer = await open_at(**options)
    recorder = await open_at(**options)
    await submitted(claimer, "S1")
    [head] = await recorder.claim_webhooks("s2", limit=10)
    await claimer.apply_receipt(receipt("S1"))  # "delivered": due, behind the head
    execute = AsyncConnection.execute
    parked, go_on = asyncio.Event(), asyncio.Event()

    async def pausing(self: AsyncConnection, statement: Any, *args: Any, **kw: Any) -> Any:
        result = await execute(self, statement, *args, **kw)
        park = getattr(statement, "is_update", False) and not parked.is_set()
        if park and asyncio.current_task() is claiming:  # the claim's first update: the park
            parked.set()
            await go_on.wait()
        return result

    monkeypatch.setattr(AsyncConnection, "execute", pausing)
    claiming = asyncio.create_task(claimer.claim_webhooks("s1", limit=10))
    async with asyncio.timeout(10):
        await parked.wait()
        recording = asyncio.create_task(recorder.webhook_delivered(head.id, "s2", status_code=200))
        await asyncio.sleep(0.2)  # the recording runs into the claim's locks (or commits first)
        go_on.set()
        assert await claiming == []
        await recording
    monkeypatch.setattr(AsyncConnection, "execute", execute)
    assert statuses(await claimer.claim_webhooks("s1", limit=10)) == ["delivered"]
