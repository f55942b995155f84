"""The durable outbound queue: enqueue, claim with a lease, retry with backoff, cancel.

The ``messages`` table is the queue; there is no second copy to keep in step. A message is
claimable when its status is ``queued`` or ``scheduled``, its ``next_attempt_at`` has come and
no live lease holds it. :meth:`MessageQueue.claim` takes a batch for a worker until
``lease_until``; the worker then records the outcome (``mark_submitted``/``mark_failed`` in
:mod:`o2sms.store.messages`, or :meth:`~MessageQueue.requeue`). A worker that dies leaves its
lease to expire, and the next claim takes the message again: delivery is **at least once**,
and such re-claims are counted in ``resends`` and written to the history.

On PostgreSQL claimers lock candidate rows with ``FOR UPDATE SKIP LOCKED``, so any number of
processes share the queue without waiting on each other; on SQLite every write transaction is
``BEGIN IMMEDIATE`` (see :mod:`o2sms.store.engine`), so claims simply take turns.
"""

from __future__ import annotations

import math
from collections.abc import Container, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from o2sms.store.errors import LeaseLostError, MessageNotFoundError, NotCancellableError
from o2sms.store.models import (
    CLAIMABLE_STATUSES,
    EnqueueResult,
    EventKind,
    Message,
    MessageStatus,
    NewMessage,
    new_message_id,
)
from o2sms.store.outbox import (
    DEFAULT_WEBHOOK_RETRY_BASE,
    DEFAULT_WEBHOOK_RETRY_CAP,
    DEFAULT_WEBHOOK_RETRY_FOR,
    Clock,
    WebhookOutbox,
    utc_now,
)
from o2sms.store.rows import (
    MESSAGE_COLUMNS,
    add_events,
    backoff_delay,
    driver_time,
    execute_many,
    fetch,
    fetch_in,
    insert,
    insert_sql,
    message_from_driver,
    numbered,
    read_time,
    to_message,
)
from o2sms.store.schema import UtcDateTime, messages
from o2sms.store.sqlite_inline import OFF_LOOP

_COLUMNS: Final = tuple(column.name for column in messages.columns)  #: all, as ``_values`` gives
_INSERT_MESSAGE: Final = insert_sql(messages, _COLUMNS)
_TIME_INDEXES: Final = tuple(
    i for i, c in enumerate(messages.columns) if isinstance(c.type, UtcDateTime)
)  #: positions in ``_COLUMNS`` of the times the driver takes in its own form

__all__ = ["Clock", "MessageQueue", "backoff_delay", "utc_now"]

# Claim candidates of one waiting status: due, not under a live lease, in claim order (a
# driver statement: the claim runs several times a second under load).
_CANDIDATES_SQLITE: Final = (
    f"SELECT id, lease_owner, attempts, status, next_attempt_at FROM {messages.name} "
    "WHERE status = ? AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until <= ?) "
    "ORDER BY next_attempt_at, id LIMIT ?"
)
_CANDIDATES_POSTGRESQL: Final = numbered(_CANDIDATES_SQLITE) + " FOR UPDATE SKIP LOCKED"
_CLAIM: Final = (
    f"UPDATE {messages.name} SET lease_owner = ?, lease_until = ?, attempts = attempts + 1, "
    "resends = resends + CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END, updated_at = ? "
    f"WHERE id IN_LIST RETURNING {', '.join(MESSAGE_COLUMNS)}"
)

MAX_ATTEMPTS_EXCEEDED: Final = "MAX_ATTEMPTS"
"""``error_name`` of a message failed because it ran out of attempts."""


class MessageQueue(WebhookOutbox):
    """The queue half of the store (:class:`o2sms.store.MessageStore` adds the rest).

    ``max_attempts`` bounds the claims of one message (so a message that kills its worker
    cannot loop forever); ``retry_base``/``retry_cap`` shape the retry backoff in seconds.
    The ``webhook_*`` options configure the outbox (see :class:`o2sms.store.outbox.WebhookOutbox`):
    every status change below writes its webhook in the same transaction.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock = utc_now,
        max_attempts: int = 10,
        retry_base: float = 2.0,
        retry_cap: float = 300.0,
        webhook_url: str | None = None,
        webhook_retry_for: float = DEFAULT_WEBHOOK_RETRY_FOR,
        webhook_retry_base: float = DEFAULT_WEBHOOK_RETRY_BASE,
        webhook_retry_cap: float = DEFAULT_WEBHOOK_RETRY_CAP,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        super().__init__(
            engine,
            clock=clock,
            webhook_url=webhook_url,
            webhook_retry_for=webhook_retry_for,
            webhook_retry_base=webhook_retry_base,
            webhook_retry_cap=webhook_retry_cap,
        )
        self.max_attempts = max_attempts
        #: messages this object's claims failed for running out of attempts (for metrics)
        self.exhausted = 0
        self.retry_base = retry_base
        self.retry_cap = retry_cap

    async def _locked_row(self, connection: AsyncConnection, message_id: str) -> sa.Row[Any]:
        """The message row, locked for this transaction on PostgreSQL; raises if missing."""
        query = sa.select(messages).where(messages.c.id == message_id)
        if self._postgresql:
            query = query.with_for_update()
        row = (await connection.execute(query)).first()
        if row is None:
            raise MessageNotFoundError(message_id)
        return row

    # -- enqueue ------------------------------------------------------------------------------

    async def enqueue(self, message: NewMessage) -> EnqueueResult:
        """Store one message durably; return it once committed.

        With an ``idempotency_key`` already used under the same ``owner`` the existing message
        comes back (``created=False``) and nothing is written: never a second row, even when
        requests race (the unique constraint decides, not a read-then-write).
        """
        return (await self.enqueue_many([message]))[0]

    async def enqueue_many(self, batch: Sequence[NewMessage]) -> list[EnqueueResult]:
        """Store several messages in one transaction (all or none), results in input order."""
        now = self._now()
        values = [self._values(message, now) for message in batch]
        results: list[EnqueueResult | None] = [None] * len(values)
        async with self._begin() as connection:
            plain = [i for i, v in enumerate(values) if v["idempotency_key"] is None]
            if plain:
                stamp = driver_time(connection)
                stamped_now = stamp(now)  # most times of a new row are ``now`` or None
                rows = []
                for i in plain:
                    row = [values[i][name] for name in _COLUMNS]
                    for t in _TIME_INDEXES:
                        value = row[t]
                        if value is not None:
                            row[t] = stamped_now if value is now else stamp(value)
                    rows.append(tuple(row))
                await execute_many(connection, _INSERT_MESSAGE, rows)
                for i in plain:
                    results[i] = EnqueueResult(to_message(values[i]), created=True)
            for i, v in enumerate(values):
                if v["idempotency_key"] is None:
                    continue
                statement = (
                    insert(connection, messages)
                    .values(**v)
                    .on_conflict_do_nothing(index_elements=["owner", "idempotency_key"])
                    .returning(messages.c.id)
                )
                if (await connection.execute(statement)).first() is not None:
                    results[i] = EnqueueResult(to_message(v), created=True)
                    continue
                existing = (
                    await connection.execute(
                        sa.select(messages).where(
                            messages.c.owner == v["owner"],
                            messages.c.idempotency_key == v["idempotency_key"],
                        )
                    )
                ).one()
                results[i] = EnqueueResult(to_message(existing), created=False)
        return [r for r in results if r is not None]

    def _values(self, message: NewMessage, now: datetime) -> dict[str, Any]:
        """The ``messages`` row of a new message (validated)."""
        if not message.recipient:
            raise ValueError("a message needs a recipient")
        if message.parts < 1:
            raise ValueError(f"parts must be at least 1, got {message.parts}")
        if message.schedule_at is not None and message.schedule_at.tzinfo is None:
            raise ValueError("schedule_at must be timezone-aware")
        scheduled = message.schedule_at is not None and message.schedule_at > now
        validity = message.validity
        return {
            "id": message.id or new_message_id(),
            "owner": message.owner,
            "idempotency_key": message.idempotency_key,
            "recipient": message.recipient,
            "sender": message.sender,
            "text": message.text,
            "encoding": message.encoding,
            "parts": message.parts,
            "flash": message.flash,
            "schedule_at": message.schedule_at,
            "validity_seconds": None if validity is None else math.ceil(validity.total_seconds()),
            "reference": message.reference,
            "callback_url": message.callback_url,
            "status": (MessageStatus.SCHEDULED if scheduled else MessageStatus.QUEUED).value,
            "attempts": 0,
            "resends": 0,
            "error_code": None,
            "error_name": None,
            "error_detail": None,
            "next_attempt_at": message.schedule_at if scheduled else now,
            "lease_owner": None,
            "lease_until": None,
            "created_at": now,
            "updated_at": now,
            "submitted_at": None,
            "finished_at": None,
            "text_purged_at": None,
        }

    # -- claim and lease ----------------------------------------------------------------------

    async def claim(
        self,
        worker_id: str,
        *,
        limit: int = 100,
        lease_seconds: float = 60.0,
        holding: Container[str] = frozenset(),
    ) -> list[Message]:
        """Lease up to ``limit`` due messages to ``worker_id`` for ``lease_seconds``.

        Oldest due first. Each claim counts one attempt. A message whose previous lease ran
        out unanswered (its worker died or hung, perhaps after sending it) is taken again, its
        ``resends`` counted, ``resend`` set on the returned message and a ``lease_expired``
        entry written; once it has had ``max_attempts`` claims it is failed instead
        (``error_name`` ``MAX_ATTEMPTS``). ``holding`` names messages ``worker_id`` is still
        sending: their leases may have run out (the store was away longer than a lease), but
        they are not taken, counted or failed here. :attr:`exhausted` counts the failed ones.
        """
        claimed, exhausted = await self._claim(worker_id, limit, lease_seconds, holding)
        self.exhausted += exhausted  # after the commit: a rolled-back failure is no failure
        return claimed

    async def _claim(
        self, worker_id: str, limit: int, lease_seconds: float, holding: Container[str]
    ) -> tuple[list[Message], int]:
        """:meth:`claim`'s transaction: the claimed messages and how many it failed."""
        if limit < 1:
            return [], 0
        async with self._begin() as connection:
            now = self._now()
            # One query per waiting status: each walks its index range in claim order and
            # stops after ``limit`` rows, where one query over both statuses would sort every
            # due message (work and memory growing with the backlog).
            rows: list[Any] = []
            sql = _CANDIDATES_POSTGRESQL if self._postgresql else _CANDIDATES_SQLITE
            stamp = driver_time(connection)(now)
            for status in sorted(s.value for s in CLAIMABLE_STATUSES):
                rows.extend(await fetch(connection, sql, (status, stamp, stamp, limit)))
            rows = [r for r in rows if r.lease_owner != worker_id or r.id not in holding]
            if not rows:
                return [], 0
            rows = sorted(rows, key=lambda row: (row.next_attempt_at, row.id))[:limit]
            # The lease runs from now, not from before any wait for locks above.
            now = self._now()
            stamp, stamp_until = (
                driver_time(connection)(t) for t in (now, now + timedelta(seconds=lease_seconds))
            )
            order = {row.id: index for index, row in enumerate(rows)}
            expired = {row.id: row for row in rows if row.lease_owner is not None}
            exhausted = [r.id for r in expired.values() if r.attempts >= self.max_attempts]
            if exhausted:
                await self._fail_exhausted(connection, exhausted, expired, now)
            wanted = [row.id for row in rows if row.id not in set(exhausted)]
            if not wanted:
                return [], len(exhausted)
            read = read_time(connection)
            claimed = [
                message_from_driver(row, read, resend=row[0] in expired)
                for row in await fetch_in(
                    connection, _CLAIM, wanted, leading=(worker_id, stamp_until, stamp)
                )
            ]
            await add_events(
                connection,
                now,
                (
                    (
                        message.id,
                        EventKind.LEASE_EXPIRED,
                        {
                            "previous_owner": expired[message.id].lease_owner,
                            "worker": worker_id,
                            "attempt": message.attempts,
                        },
                    )
                    for message in claimed
                    if message.resend
                ),
            )
        return sorted(claimed, key=lambda m: order[m.id]), len(exhausted)

    async def _fail_exhausted(
        self,
        connection: AsyncConnection,
        ids: Sequence[str],
        expired: dict[str, Any],
        now: datetime,
    ) -> None:
        """Fail messages whose last allowed claim expired: at-least-once gives up here."""
        detail = f"lease expired after {self.max_attempts} attempts without an outcome"
        failed = (
            await connection.execute(
                sa.update(messages)
                .where(messages.c.id.in_(ids))
                .values(
                    status=MessageStatus.FAILED.value,
                    error_name=MAX_ATTEMPTS_EXCEEDED,
                    error_detail=detail,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                    finished_at=now,
                )
                .returning(*messages.c)
            )
        ).all()
        await self._notify_status(
            connection, now, ((row, expired[row.id].status) for row in failed)
        )
        await add_events(
            connection,
            now,
            [
                (
                    message_id,
                    EventKind.FAILED,
                    {
                        "error_name": MAX_ATTEMPTS_EXCEEDED,
                        "error_detail": detail,
                        "previous_owner": expired[message_id].lease_owner,
                    },
                )
                for message_id in ids
            ],
        )

    async def extend_lease(
        self, worker_id: str, message_ids: Sequence[str], *, lease_seconds: float = 60.0
    ) -> int:
        """Push out the leases ``worker_id`` still holds (a heartbeat); returns how many."""
        if not message_ids:
            return 0
        async with self._begin() as connection:
            now = self._now()  # after waiting for the write lock, not before
            result = await connection.execute(
                sa.update(messages)
                .where(
                    messages.c.id.in_(message_ids),
                    messages.c.lease_owner == worker_id,
                    messages.c.status.in_([s.value for s in CLAIMABLE_STATUSES]),
                )
                .values(lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)
            )
        return result.rowcount

    async def requeue(
        self, message_id: str, worker_id: str, *, error: str, delay: float | None = None
    ) -> Message:
        """Put a claimed message back after a retriable error (throttled, queue full, link lost).

        It becomes due again after ``delay`` seconds, by default the backoff for its attempt
        count; after ``max_attempts`` it is failed instead, with ``error`` as the reason.
        Raises LeaseLostError when ``worker_id`` no longer holds the lease.
        """
        now = self._now()
        async with self._begin() as connection:
            row = await self._locked_row(connection, message_id)
            if row.lease_owner != worker_id or row.status not in CLAIMABLE_STATUSES:
                raise LeaseLostError(message_id, worker_id, row.lease_owner)
            if row.attempts >= self.max_attempts:
                detail = f"gave up after {row.attempts} attempts; last error: {error}"
                values: dict[str, Any] = {
                    "status": MessageStatus.FAILED.value,
                    "error_name": MAX_ATTEMPTS_EXCEEDED,
                    "error_detail": detail,
                    "finished_at": now,
                }
                event: tuple[EventKind, dict[str, Any]] = (
                    EventKind.FAILED,
                    {"error_name": MAX_ATTEMPTS_EXCEEDED, "error": error},
                )
            else:
                wait = (
                    delay
                    if delay is not None
                    else backoff_delay(row.attempts, base=self.retry_base, cap=self.retry_cap)
                )
                values = {
                    "status": MessageStatus.QUEUED.value,
                    "next_attempt_at": now + timedelta(seconds=wait),
                }
                event = (
                    EventKind.RETRY,
                    {"error": error, "delay": wait, "attempt": row.attempts},
                )
            updated = (
                await connection.execute(
                    sa.update(messages)
                    .where(messages.c.id == message_id)
                    .values(lease_owner=None, lease_until=None, updated_at=now, **values)
                    .returning(*messages.c)
                )
            ).one()
            await add_events(connection, now, [(message_id, event[0], event[1])])
            await self._notify_status(connection, now, [(updated, row.status)])
        return to_message(updated)

    async def release(self, worker_id: str, message_ids: Sequence[str] | None = None) -> int:
        """Give back leases without sending (a clean shutdown): due at once, attempt uncounted.

        Releases ``message_ids`` or, when None, every lease ``worker_id`` holds.
        """
        now = self._now()
        c = messages.c
        condition = sa.and_(
            c.lease_owner == worker_id, c.status.in_([s.value for s in CLAIMABLE_STATUSES])
        )
        if message_ids is not None:
            condition = sa.and_(condition, c.id.in_(message_ids))
        async with self._begin() as connection:
            released = (
                await connection.execute(
                    sa.update(messages)
                    .where(condition)
                    .values(
                        lease_owner=None,
                        lease_until=None,
                        attempts=sa.case((c.attempts > 0, c.attempts - 1), else_=0),
                        updated_at=now,
                    )
                    .returning(c.id)
                )
            ).all()
            await add_events(
                connection,
                now,
                ((row.id, EventKind.RELEASED, {"worker": worker_id}) for row in released),
            )
        return len(released)

    # -- cancel and counts --------------------------------------------------------------------

    async def cancel(self, message_id: str) -> Message:
        """Cancel a message still waiting (``queued``/``scheduled``, not leased to a worker).

        Raises MessageNotFoundError, or NotCancellableError once a worker has it or it has
        been submitted. Cancelling a cancelled message returns it unchanged.
        """
        return (await self.cancel_changed(message_id))[0]

    async def cancel_changed(self, message_id: str) -> tuple[Message, bool]:
        """:meth:`cancel`, and whether this call cancelled the message (False when it was
        cancelled already), so a caller counts each cancellation once."""
        now = self._now()
        async with self._begin() as connection:
            row = await self._locked_row(connection, message_id)
            if row.status == MessageStatus.CANCELLED:
                return to_message(row), False
            leased = row.lease_until is not None and row.lease_until > now
            if row.status not in CLAIMABLE_STATUSES or leased:
                raise NotCancellableError(message_id, row.status, leased=leased)
            updated = (
                await connection.execute(
                    sa.update(messages)
                    .where(messages.c.id == message_id)
                    .values(
                        status=MessageStatus.CANCELLED.value,
                        lease_owner=None,
                        lease_until=None,
                        updated_at=now,
                        finished_at=now,
                    )
                    .returning(*messages.c)
                )
            ).one()
            await add_events(
                connection, now, [(message_id, EventKind.CANCELLED, {"from": row.status})]
            )
            await self._notify_status(connection, now, [(updated, row.status)])
        return to_message(updated), True

    async def queue_depth(self) -> int:
        """Messages waiting or in flight to the SMSC (``queued``/``scheduled``), for metrics."""
        async with self._reader.connect() as connection:
            count = await connection.scalar(
                sa.select(sa.func.count())
                .where(messages.c.status.in_([s.value for s in CLAIMABLE_STATUSES]))
                .prefix_with(OFF_LOOP)  # reads the whole backlog
            )
        return int(count or 0)
