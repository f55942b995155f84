"""The webhook outbox: notifications written with the change they report, sent later.

A message status change (or an inbound SMS) and the webhook that reports it are inserted in
**one transaction**, so a committed change always has its notification and a rolled-back one
never does; the HTTP POST happens afterwards, outside any store transaction, in
:class:`o2sms.service.webhooks.WebhookSender`. That is the "transactional outbox" pattern: the
SMPP pipeline only ever pays for one extra INSERT, however slow or dead the receiver is.

Senders claim due webhooks with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, like the
message queue), POST them and record the outcome of each attempt. Failures are retried with
exponential backoff (``webhook_retry_base`` doubling up to ``webhook_retry_cap``) until
``webhook_retry_for`` seconds after the change, then the webhook is ``failed``. Webhooks of one
message go out one at a time, in the order of the changes: a later status is not claimed
while an earlier one is still pending, so a receiver never sees ``delivered`` before
``submitted`` (unless the earlier one was given up). Such a later webhook is *parked* (due only at its
``give_up_at``) by the claim that finds it blocked, and made due again when the earlier one is
delivered or failed: a dead receiver's backlog of blocked webhooks is not read again by every
claim.

Delivery is **at least once**: a sender that dies after the receiver answered but before it
recorded the answer sends again after the lease. Receivers drop repeats by ``event_id``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.selectable import NamedFromClause

from o2sms.store.engine import is_postgresql, reader
from o2sms.store.models import (
    Webhook,
    WebhookAttempt,
    WebhookEvent,
    WebhookStatus,
    new_message_id,
)
from o2sms.store.rows import backoff_delay, to_webhook, to_webhook_attempt
from o2sms.store.schema import webhook_attempts, webhooks

__all__ = [
    "DEFAULT_WEBHOOK_RETRY_BASE",
    "DEFAULT_WEBHOOK_RETRY_CAP",
    "DEFAULT_WEBHOOK_RETRY_FOR",
    "Clock",
    "WebhookOutbox",
    "inbound_payload",
    "message_payload",
    "utc_now",
]

Clock = Callable[[], datetime]
"""Where the store reads the time: an aware datetime (tests pass a fake one)."""

DEFAULT_WEBHOOK_RETRY_FOR: Final = 86_400.0
"""Seconds a webhook is retried after the change it reports (24 hours), then given up."""
DEFAULT_WEBHOOK_RETRY_BASE: Final = 1.0
"""Seconds before the first retry; each further retry waits twice as long..."""
DEFAULT_WEBHOOK_RETRY_CAP: Final = 600.0
"""...up to this many seconds (10 minutes) between attempts."""

_MAX_ERROR: Final = 1000  # characters of an error text kept per attempt
_LEASE_LOST: Final = "gave up: the sender's lease expired without an outcome, past give_up_at"
_HELD: Final = "gave up: its receiver did not answer within the timeout until give_up_at"


def utc_now() -> datetime:
    """The current time, timezone-aware UTC: the default clock."""
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, as the HTTP API writes times; None stays None."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def message_payload(row: Mapping[Any, Any], previous_status: str | None) -> dict[str, Any]:
    """The ``message`` object of a ``message.status`` webhook, from a ``messages`` row.

    No text (it may be purged, and a status notice need not carry it) and no owner or
    idempotency key (internal). ``previous_status`` is the status before this change.
    """
    return {
        "id": row["id"],
        "to": row["recipient"],
        "from": row["sender"],
        "status": row["status"],
        "previous_status": previous_status,
        "reference": row["reference"],
        "parts": row["parts"],
        "error_code": row["error_code"],
        "error_name": row["error_name"],
        "error_detail": row["error_detail"],
        "created_at": _iso(row["created_at"]),
        "submitted_at": _iso(row["submitted_at"]),
        "finished_at": _iso(row["finished_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


def inbound_payload(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The ``inbound`` object of an ``inbound.sms`` webhook, from an ``inbound`` row."""
    return {
        "id": row["id"],
        "from": row["source"],
        "to": row["destination"],
        "text": row["text"],
        "data_coding": row["data_coding"],
        "parts": row["parts"],
        "received_at": _iso(row["received_at"]),
    }


def _due(now: datetime) -> sa.ColumnElement[bool]:
    """Pending, due, not under a live lease."""
    w = webhooks.c
    return sa.and_(
        w.status == WebhookStatus.PENDING.value,
        w.next_attempt_at <= now,
        sa.or_(w.lease_until.is_(None), w.lease_until <= now),
    )


def _pending_before(earlier: NamedFromClause) -> sa.ColumnElement[bool]:
    """``earlier`` is a webhook of the same message as the ``webhooks`` row, before it and
    still pending: one message, one at a time."""
    w = webhooks.c
    return sa.and_(
        earlier.c.message_id == w.message_id,
        earlier.c.status == WebhookStatus.PENDING.value,
        earlier.c.id < w.id,
    )


def _behind_an_earlier_one() -> sa.Exists:
    """An earlier webhook of the same message is still pending."""
    return sa.exists().where(_pending_before(webhooks.alias("earlier")))


def _origin_as_written(url: str) -> str:
    """``scheme://host:port`` of ``url`` as it is written (the URL up to its path)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _handed_back(due: datetime) -> dict[str, Any]:
    """Values of a lease given back unsent: no owner, due at ``due``, the attempt uncounted."""
    w = webhooks.c
    return {
        "lease_owner": None,
        "lease_until": None,
        "next_attempt_at": due,
        "attempts": sa.case((w.attempts > 0, w.attempts - 1), else_=0),
    }


async def _unpark_after(
    connection: AsyncConnection, now: datetime, message_ids: Iterable[str | None]
) -> None:
    """A webhook of each of ``message_ids`` settled: the later ones of the message are due now.

    Only webhooks never attempted: those were parked behind it (see ``claim_webhooks``); the
    next one in line is claimed first, the others are parked again behind it.
    """
    ids = sorted({m for m in message_ids if m is not None})
    if not ids:
        return
    w = webhooks.c
    await connection.execute(
        sa.update(webhooks)
        .where(
            w.message_id.in_(ids),
            w.status == WebhookStatus.PENDING.value,
            w.attempts == 0,
            w.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )


class WebhookOutbox:
    """The outbox half of the store (base of :class:`o2sms.store.MessageQueue`).

    ``webhook_url`` is the global receiver: a message's own ``callback_url`` wins over it, and
    inbound SMS go only to it; with neither, no webhook row is written at all.
    ``webhook_retry_for`` (seconds) bounds the retries of one webhook; ``webhook_retry_base``
    and ``webhook_retry_cap`` shape the backoff between attempts.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock = utc_now,
        webhook_url: str | None = None,
        webhook_retry_for: float = DEFAULT_WEBHOOK_RETRY_FOR,
        webhook_retry_base: float = DEFAULT_WEBHOOK_RETRY_BASE,
        webhook_retry_cap: float = DEFAULT_WEBHOOK_RETRY_CAP,
    ) -> None:
        if webhook_retry_for < 0:
            raise ValueError(f"webhook_retry_for must be >= 0 seconds, got {webhook_retry_for}")
        if webhook_retry_base <= 0 or webhook_retry_cap < webhook_retry_base:
            raise ValueError(
                "webhook retry backoff needs 0 < webhook_retry_base <= webhook_retry_cap"
            )
        self._engine = engine
        self._reader = reader(engine)
        self._clock = clock
        self._postgresql = is_postgresql(engine)
        # SQLite has one writer at a time: writers of this process queue on this lock rather
        # than in SQLite's busy handler, which sleeps up to 100 ms between retries.
        self._write_lock = None if self._postgresql else asyncio.Lock()
        self._turn_owner: asyncio.Task[Any] | None = None
        self.webhook_url = webhook_url or None
        self.webhook_retry_for = webhook_retry_for
        self.webhook_retry_base = webhook_retry_base
        self.webhook_retry_cap = webhook_retry_cap

    @property
    def engine(self) -> AsyncEngine:
        """The engine the store runs on (the service may share it for health checks)."""
        return self._engine

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[None]:
        """Hold SQLite's writer turn for this task's transactions inside the block.

        A group commit takes its batch once it holds the turn, so the batch includes all that
        arrived while it waited behind other writers: fewer, larger transactions. A no-op on
        PostgreSQL (writers run side by side) and when this task already holds the turn.
        """
        lock = self._write_lock
        if lock is None or self._turn_owner is asyncio.current_task():
            yield
            return
        async with lock:
            self._turn_owner = asyncio.current_task()
            try:
                yield
            finally:
                self._turn_owner = None

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (committed on leaving, rolled back on an error)."""
        async with self.write_turn(), self._engine.begin() as connection:
            yield connection

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the store's clock must return timezone-aware datetimes")
        return now

    # -- writing, inside the transaction of the change ----------------------------------------

    def _outbox_row(
        self,
        now: datetime,
        url: str,
        event: WebhookEvent,
        body: Mapping[str, Any],
        *,
        message_id: str | None = None,
        inbound_id: int | None = None,
    ) -> dict[str, Any]:
        event_id = new_message_id()
        return {
            "event_id": event_id,
            "message_id": message_id,
            "inbound_id": inbound_id,
            "url": url,
            "event": event.value,
            "payload": {"type": event.value, "id": event_id, "created_at": _iso(now), **body},
            "status": WebhookStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "give_up_at": now + timedelta(seconds=self.webhook_retry_for),
        }

    async def _notify_status(
        self,
        connection: AsyncConnection,
        now: datetime,
        changes: Iterable[tuple[sa.Row[Any], str | None]],
    ) -> None:
        """Queue a ``message.status`` webhook per ``(message row after, status before)``.

        Called by every store method that changes a message's status, in its transaction.
        Messages with no ``callback_url`` and no global ``webhook_url`` get none.
        """
        rows = []
        for changed, previous in changes:
            row = changed._mapping
            url = row["callback_url"] or self.webhook_url
            if not url or row["status"] == previous:
                continue
            rows.append(
                self._outbox_row(
                    now,
                    url,
                    WebhookEvent.MESSAGE_STATUS,
                    {"message": message_payload(row, previous)},
                    message_id=row["id"],
                )
            )
        if rows:
            await connection.execute(webhooks.insert(), rows)

    async def _notify_inbound(
        self, connection: AsyncConnection, now: datetime, row: sa.Row[Any]
    ) -> None:
        """Queue an ``inbound.sms`` webhook to the global URL (when there is one)."""
        if self.webhook_url is None:
            return
        await connection.execute(
            webhooks.insert(),
            [
                self._outbox_row(
                    now,
                    self.webhook_url,
                    WebhookEvent.INBOUND_SMS,
                    {"inbound": inbound_payload(row._mapping)},
                    inbound_id=row.id,
                )
            ],
        )

    # -- sending ------------------------------------------------------------------------------

    async def claim_webhooks(
        self, worker_id: str, *, limit: int = 50, lease_seconds: float = 60.0
    ) -> list[Webhook]:
        """Lease up to ``limit`` due webhooks to ``worker_id`` for ``lease_seconds``.

        Oldest due first; each claim counts an attempt. A webhook behind an earlier pending one
        of the same message waits for it. One whose lease ran out with no outcome recorded (its
        sender died) is taken again, unless it is past ``give_up_at`` and an earlier attempt
        was recorded: then it is failed. With no attempt recorded at all it still gets one
        (a ``retry_for`` shorter than the lease would otherwise fail it unsent).
        Keep ``lease_seconds`` above the sender's whole-attempt timeout.
        """
        if limit < 1:
            return []
        now = self._now()
        w = webhooks.c
        async with self._reader.connect() as connection:  # idle: no write lock on SQLite
            if await connection.scalar(sa.select(w.id).where(_due(now)).limit(1)) is None:
                return []
        async with self._begin() as connection:
            # Park what waits for an earlier webhook of its message, so that neither this
            # claim nor the next reads the backlog of a dead receiver again. It is made due
            # when that one settles, which is before its own give_up_at (written later, it
            # gives up later): that is only a safety net, and spread as the webhooks were.
            earlier = webhooks.alias("earlier")
            blocked = (
                sa.select(w.id)
                .join(earlier, _pending_before(earlier))
                .where(_due(now), w.message_id.is_not(None), w.give_up_at > now)
            )
            if self._postgresql:
                # The earlier webhook is locked too: its outcome, recorded meanwhile by another
                # transaction, would otherwise un-park nothing (this park not yet committed)
                # and leave the later one parked until its give_up_at. Skipping what is
                # locked, the claim never waits, so it cannot deadlock with that recording.
                blocked = blocked.with_for_update(skip_locked=True, of=[webhooks, earlier])
            await connection.execute(
                sa.update(webhooks).where(w.id.in_(blocked)).values(next_attempt_at=w.give_up_at)
            )
            candidates = (
                sa.select(w.id, w.lease_owner, w.give_up_at)
                .where(_due(now), ~_behind_an_earlier_one())
                .order_by(w.next_attempt_at, w.id)
                .limit(limit)
            )
            if self._postgresql:
                candidates = candidates.with_for_update(skip_locked=True)
            rows = (await connection.execute(candidates)).all()
            late = [r.id for r in rows if r.lease_owner is not None and r.give_up_at <= now]
            abandoned = []
            if late:
                a = webhook_attempts.c
                abandoned = list(
                    (
                        await connection.execute(
                            sa.select(a.webhook_id).where(a.webhook_id.in_(late)).distinct()
                        )
                    ).scalars()
                )
            if abandoned:
                settled = await connection.execute(
                    sa.update(webhooks)
                    .where(w.id.in_(abandoned))
                    .values(
                        status=WebhookStatus.FAILED.value,
                        lease_owner=None,
                        lease_until=None,
                        last_error=_LEASE_LOST,
                    )
                    .returning(w.message_id)
                )
                await _unpark_after(connection, now, settled.scalars())
            wanted = [r.id for r in rows if r.id not in set(abandoned)]
            if not wanted:
                return []
            claimed = (
                await connection.execute(
                    sa.update(webhooks)
                    .where(w.id.in_(wanted))
                    .values(
                        lease_owner=worker_id,
                        lease_until=now + timedelta(seconds=lease_seconds),
                        attempts=w.attempts + 1,
                    )
                    .returning(*w)
                )
            ).all()
        return sorted((to_webhook(row) for row in claimed), key=lambda h: (h.next_attempt_at, h.id))

    async def _record_attempt(
        self,
        connection: AsyncConnection,
        webhook_id: int,
        now: datetime,
        *,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
    ) -> sa.Row[Any] | None:
        """Write the attempt and return the webhook row (locked on PostgreSQL), or None."""
        query = sa.select(webhooks).where(webhooks.c.id == webhook_id)
        if self._postgresql:
            query = query.with_for_update()
        row = (await connection.execute(query)).first()
        if row is None:  # purged meanwhile
            return None
        await connection.execute(
            webhook_attempts.insert().values(
                webhook_id=webhook_id,
                at=now,
                status_code=status_code,
                error=None if error is None else error[:_MAX_ERROR],
                duration_ms=max(0, int(duration_ms)),
            )
        )
        return row

    async def webhook_delivered(
        self, webhook_id: int, worker_id: str, *, status_code: int, duration_ms: int = 0
    ) -> Webhook | None:
        """Record a 2xx answer: the webhook is ``delivered``.

        A delivery is a fact whoever made it, so this holds even when ``worker_id`` lost the
        lease meanwhile (the other sender's later outcome is then recorded as an attempt only).
        Returns the webhook, or None when retention deleted it meanwhile.
        """
        now = self._now()
        async with self._begin() as connection:
            row = await self._record_attempt(
                connection,
                webhook_id,
                now,
                status_code=status_code,
                error=None,
                duration_ms=duration_ms,
            )
            if row is None:
                return None
            if row.status != WebhookStatus.PENDING:
                return to_webhook(row)
            updated = (
                await connection.execute(
                    sa.update(webhooks)
                    .where(webhooks.c.id == webhook_id)
                    .values(
                        status=WebhookStatus.DELIVERED.value,
                        delivered_at=now,
                        lease_owner=None,
                        lease_until=None,
                        last_error=None,
                    )
                    .returning(*webhooks.c)
                )
            ).one()
            await _unpark_after(connection, now, [updated.message_id])
        return to_webhook(updated)

    async def webhook_failed(
        self,
        webhook_id: int,
        worker_id: str,
        *,
        error: str,
        status_code: int | None = None,
        duration_ms: int = 0,
        give_up: bool = False,
    ) -> Webhook | None:
        """Record a failed attempt (non-2xx answer, timeout, refused connection...).

        The webhook is due again after the backoff for its attempt count, but never later
        than ``give_up_at``; an attempt failing at or after ``give_up_at`` (or with
        ``give_up``, for a URL the policy refuses) makes it ``failed``. When another sender
        has claimed it since (this one's lease ran out), only the attempt is recorded.
        Returns the webhook, or None when retention deleted it meanwhile.
        """
        now = self._now()
        async with self._begin() as connection:
            row = await self._record_attempt(
                connection,
                webhook_id,
                now,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
            )
            if row is None:
                return None
            if row.status != WebhookStatus.PENDING or row.lease_owner not in (worker_id, None):
                return to_webhook(row)
            values: dict[str, Any] = {
                "lease_owner": None,
                "lease_until": None,
                "last_error": error[:_MAX_ERROR],
            }
            if give_up or now >= row.give_up_at:
                values["status"] = WebhookStatus.FAILED.value
            else:
                delay = backoff_delay(
                    row.attempts, base=self.webhook_retry_base, cap=self.webhook_retry_cap
                )
                values["next_attempt_at"] = min(now + timedelta(seconds=delay), row.give_up_at)
            updated = (
                await connection.execute(
                    sa.update(webhooks)
                    .where(webhooks.c.id == webhook_id)
                    .values(**values)
                    .returning(*webhooks.c)
                )
            ).one()
            if updated.status != WebhookStatus.PENDING:
                await _unpark_after(connection, now, [updated.message_id])
        return to_webhook(updated)

    async def release_webhooks(
        self, worker_id: str, webhook_ids: Sequence[int] | None = None
    ) -> int:
        """Give back leases unsent (a sender stopping): due at once, the attempt uncounted."""
        now = self._now()
        w = webhooks.c
        condition = sa.and_(w.lease_owner == worker_id, w.status == WebhookStatus.PENDING.value)
        if webhook_ids is not None:
            condition = sa.and_(condition, w.id.in_(webhook_ids))
        async with self._begin() as connection:
            released = await connection.execute(
                sa.update(webhooks).where(condition).values(**_handed_back(now))
            )
        return released.rowcount

    async def defer_webhooks(
        self, worker_id: str, webhook_ids: Sequence[int], *, seconds: float
    ) -> int:
        """Hand back claimed webhooks unsent, due again in ``seconds``, the attempt uncounted
        (a sender holding back a receiver that does not answer in time).

        The other webhooks pending for the same receivers (URLs with the same
        ``scheme://host:port`` as written) and due before then are put off as much, so that
        claims meanwhile do not read them only to hand them back. One past its ``give_up_at``
        is failed instead: its receiver kept timing out for as long as it was retried.
        Returns how many of ``webhook_ids`` were handed back or failed.
        """
        if not webhook_ids:
            return 0
        now = self._now()
        until = now + timedelta(seconds=seconds)
        w = webhooks.c
        mine = sa.and_(
            w.id.in_(webhook_ids),
            w.lease_owner == worker_id,
            w.status == WebhookStatus.PENDING.value,
        )
        async with self._begin() as connection:
            given_up = (
                await connection.execute(
                    sa.update(webhooks)
                    .where(mine, w.give_up_at <= now)
                    .values(
                        **_handed_back(now), status=WebhookStatus.FAILED.value, last_error=_HELD
                    )
                    .returning(w.message_id)
                )
            ).scalars()
            settled = list(given_up)
            await _unpark_after(connection, now, settled)
            urls = list(
                (
                    await connection.execute(
                        sa.update(webhooks)
                        .where(mine)
                        .values(**_handed_back(until))
                        .returning(w.url)
                    )
                ).scalars()
            )
            origins = sorted({_origin_as_written(url) for url in urls})
            if origins:
                others = sa.select(w.id).where(
                    w.status == WebhookStatus.PENDING.value,
                    w.next_attempt_at < until,
                    w.lease_owner.is_(None),
                    sa.or_(
                        w.url.in_(origins),
                        *(
                            w.url.startswith(origin + end, autoescape=True)
                            for origin in origins
                            for end in "/?#"
                        ),
                    ),
                )
                if self._postgresql:  # never wait for a row another transaction holds
                    others = others.with_for_update(skip_locked=True)
                await connection.execute(
                    sa.update(webhooks).where(w.id.in_(others)).values(next_attempt_at=until)
                )
        return len(settled) + len(urls)

    # -- reads --------------------------------------------------------------------------------

    async def list_webhooks(
        self,
        *,
        message_id: str | None = None,
        inbound_id: int | None = None,
        status: WebhookStatus | None = None,
        limit: int = 100,
    ) -> list[Webhook]:
        """Webhooks in the order they were written, filtered by message, inbound SMS, status."""
        w = webhooks.c
        query = sa.select(webhooks).order_by(w.id).limit(limit)
        if message_id is not None:
            query = query.where(w.message_id == message_id)
        if inbound_id is not None:
            query = query.where(w.inbound_id == inbound_id)
        if status is not None:
            query = query.where(w.status == WebhookStatus(status).value)
        async with self._reader.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [to_webhook(row) for row in rows]

    async def list_webhook_attempts(self, message_id: str) -> list[WebhookAttempt]:
        """Every delivery attempt of the message's webhooks, oldest first (for its timeline)."""
        a, w = webhook_attempts.c, webhooks.c
        query = (
            sa.select(a.id, a.webhook_id, w.event_id, w.event, w.url, a.at, a.status_code)
            .add_columns(a.error, a.duration_ms)
            .select_from(webhook_attempts.join(webhooks, w.id == a.webhook_id))
            .where(w.message_id == message_id)
            .order_by(a.id)
        )
        async with self._reader.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [to_webhook_attempt(row) for row in rows]

    async def webhook_backlog(self) -> int:
        """Webhooks not delivered nor given up yet (waiting, retrying or being sent)."""
        async with self._reader.connect() as connection:
            count = await connection.scalar(
                sa.select(sa.func.count()).where(webhooks.c.status == WebhookStatus.PENDING.value)
            )
        return int(count or 0)
