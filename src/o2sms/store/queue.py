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

import hashlib
import math
import operator
from collections.abc import Container, Sequence
from datetime import datetime, timedelta
from functools import partial
from itertools import zip_longest
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from o2sms.receipts import MAX_MESSAGE_ID_LENGTH, message_id_keys
from o2sms.store.errors import (
    IdempotencyConflictError,
    LeaseLostError,
    MessageNotFoundError,
    NotCancellableError,
)
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
    cached_reads,
    driver_time,
    execute_many,
    fetch,
    fetch_in,
    insert,
    insert_sql,
    lock_keys,
    message_from_driver,
    numbered,
    partial_send,
    partial_send_json,
    read_time,
    time_as_is,
    to_message,
    try_lock_keys,
)
from o2sms.store.schema import KEY_LENGTH, UtcDateTime, messages
from o2sms.store.sqlite_inline import OFF_LOOP

_COLUMNS: Final = MESSAGE_COLUMNS  #: all, in the order ``_row`` gives them
assert tuple(column.name for column in messages.columns) == _COLUMNS, "_row follows the table"
_IDEMPOTENCY_KEY: Final = _COLUMNS.index("idempotency_key")
_RECIPIENT: Final = _COLUMNS.index("recipient")
_BY_IDEMPOTENCY_KEY: Final = (  # the unique index on (owner, idempotency_key) answers it
    f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM {messages.name} "
    "WHERE owner = ? AND idempotency_key IN_LIST"
)
_TEXT: Final = _COLUMNS.index("text")
_STATUS: Final = _COLUMNS.index("status")
_STATUSES: Final = {status.value: status for status in CLAIMABLE_STATUSES}  #: of a new row
_UNSET: Final = frozenset(  # None in every new row (``_row``): NULL without being bound
    (
        *("error_code", "error_name", "error_detail", "lease_owner", "lease_until"),
        *("submitted_at", "finished_at", "text_purged_at", "resume"),
    )
)
_NEW_COLUMNS: Final = tuple(c for c in _COLUMNS if c not in _UNSET)
_INSERT_MESSAGE: Final = insert_sql(messages, _NEW_COLUMNS)
_NEW_VALUES: Final = operator.itemgetter(*(_COLUMNS.index(c) for c in _NEW_COLUMNS))
_TIME_INDEXES: Final = tuple(
    i for i, c in enumerate(_NEW_COLUMNS) if isinstance(messages.c[c].type, UtcDateTime)
)  #: positions in ``_NEW_COLUMNS`` of the times the driver takes in its own form

__all__ = [
    "KEY_SEPARATOR",
    "Clock",
    "MessageQueue",
    "backoff_delay",
    "stored_keys",
    "utc_now",
]

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

KEY_SEPARATOR: Final = "\x1f"
"""Joins a request's idempotency key and a message's index in the stored key of each message
of a request to several recipients: a control character, which no HTTP header carries, so no
key a client gives can equal one of these."""

_KEY_NAMES_PER_STATEMENT: Final = 5000
"""Family keys read in one statement: far below SQLite's 32,766 parameters (PostgreSQL takes
them as one array)."""


def stored_keys(key: str, count: int) -> list[str]:
    """The idempotency keys stored on the ``count`` messages of a request with ``key``."""
    return [key] if count == 1 else [f"{key}{KEY_SEPARATOR}{i}" for i in range(count)]


def _family(key: str, count: int) -> dict[str, int | None]:
    """Stored keys that belong to ``key``, each with its message's index (None: a lone one).

    The request's own keys and those a request one longer would have; so any other request
    with this key is found by its first or its extra message.
    """
    family: dict[str, int | None] = {key: None}
    for i in range(count + 1):
        family[f"{key}{KEY_SEPARATOR}{i}"] = i
    return family


def _created(row: list[Any]) -> EnqueueResult:
    """The result for a message just written as ``row`` (a ``_row``, times still datetimes:
    its message is built from the row as it is, without a read back, when first read)."""
    return EnqueueResult.deferred(
        row[0],
        row[_RECIPIENT],
        _STATUSES[row[_STATUS]],
        partial(message_from_driver, row, time_as_is),
    )


MAX_ATTEMPTS_EXCEEDED: Final = "MAX_ATTEMPTS"
"""``error_name`` of a message failed because it ran out of attempts."""


def sent_so_far(
    sent: Sequence[str | None], resume: str | None, concat_reference: int | None = None
) -> list[str | None]:
    """The SMSC id of each part that went out, None for the others: this try's ``sent``,
    completed by the parts of an earlier interrupted try (``messages.resume``) when this try
    resumed it (as many parts; the same reference when ``concat_reference`` is known)."""
    if resume is None:
        return list(sent)
    earlier = partial_send(resume)
    if sent and (
        len(sent) != len(earlier.message_ids)
        or concat_reference not in (None, earlier.concat_reference)
    ):
        return list(sent)  # split anew: the earlier parts belong to another numbering
    return [
        now if now is not None else then for now, then in zip_longest(sent, earlier.message_ids)
    ]


_DIGEST: Final = 16  #: hex digits of the digest in a long id's stored form


def storable_id(smsc_id: str) -> str:
    """An SMSC id (or correlation key) as the store's id columns keep it: as it is when it fits
    (at most ``KEY_LENGTH`` characters, no NUL), else its first characters, ``~`` and a digest
    of the whole, ``KEY_LENGTH`` characters in all: one long id maps to one stored value, and
    two long ids that share a prefix stay apart. SMSCs send ids longer than SMPP's 64."""
    if len(smsc_id) <= KEY_LENGTH and "\x00" not in smsc_id:
        return smsc_id
    digest = hashlib.sha256(smsc_id.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST]
    return smsc_id[: KEY_LENGTH - _DIGEST - 1].replace("\x00", "\ufffd") + "~" + digest


def storable_keys(smsc_id: str) -> frozenset[str]:
    """The correlation keys of an SMSC id (:func:`o2sms.receipts.message_id_keys`), each as
    :func:`storable_id` keeps it."""
    keys = message_id_keys(smsc_id)
    if len(smsc_id) <= MAX_MESSAGE_ID_LENGTH and "\x00" not in smsc_id:
        return keys  # the usual id: every key fits (a 64-digit id's value has 78 digits)
    return frozenset(storable_id(key) for key in keys)


def sent_keys(sent: Sequence[str | None]) -> list[str]:
    """The correlation keys of the SMSC ids in ``sent``."""
    return [key for sid in sent if sid is not None for key in storable_keys(sid)]


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

    async def _record_sent_parts(
        self,
        connection: AsyncConnection,
        message_id: str,
        sent: Sequence[str | None],
        now: datetime,
    ) -> None:
        """Record the parts of ``message_id`` that reached the SMSC (``sent``: an SMSC id per
        part, None for the others) when it ends with no retry to send the rest, so their
        receipts still find it. The queue alone keeps no parts: :class:`MessageStore` does."""

    # -- enqueue ------------------------------------------------------------------------------

    async def enqueue(self, message: NewMessage) -> EnqueueResult:
        """Store one message durably; return it once committed.

        With an ``idempotency_key`` already used under the same ``owner`` the existing message
        comes back (``created=False``) and nothing is written: never a second row, even when
        requests race. A key used for another recipient or text raises
        :class:`IdempotencyConflictError`.
        """
        return (await self.enqueue_many([message]))[0]

    async def enqueue_many(self, batch: Sequence[NewMessage]) -> list[EnqueueResult]:
        """Store several messages in one transaction (all or none), results in input order.

        Each message is a request of its own for its idempotency key (see
        :meth:`enqueue_requests`); one refused for its key raises
        :class:`IdempotencyConflictError` and nothing is written.
        """
        results = await self._enqueue([[m] for m in batch], all_or_none=True)
        return [r[0] for r in results if not isinstance(r, IdempotencyConflictError)]

    async def enqueue_requests(
        self, requests: Sequence[Sequence[NewMessage]]
    ) -> list[list[EnqueueResult] | IdempotencyConflictError]:
        """Store the messages of several requests in one transaction.

        The messages of a request share its ``idempotency_key`` and ``owner``; the key is
        stored as given on a request of one message and once per message of a longer one
        (:func:`stored_keys`). A key used before under the owner replays the whole request
        when it asked for the same recipients, in order, and the same text: the stored
        messages come back with ``created=False`` and nothing is written. Anything else is
        refused: that request's place in the answer holds an :class:`IdempotencyConflictError`
        and nothing of it is written, so a retry whose body changed (a recipient added or
        dropped) never sends a second SMS; the other requests are stored.
        """
        return await self._enqueue(requests, all_or_none=False)

    async def _enqueue(
        self, requests: Sequence[Sequence[NewMessage]], *, all_or_none: bool
    ) -> list[list[EnqueueResult] | IdempotencyConflictError]:
        now = self._now()
        prepared: list[tuple[str | None, str, list[list[Any]]]] = []
        for request in requests:
            if not request:
                raise ValueError("a request needs at least one message")
            key, owner = request[0].idempotency_key, request[0].owner
            if any(m.idempotency_key != key or m.owner != owner for m in request):
                raise ValueError("the messages of a request share its idempotency key and owner")
            rows = [self._row(message, now) for message in request]
            if key is not None:
                for row, stored in zip(rows, stored_keys(key, len(rows)), strict=True):
                    row[_IDEMPOTENCY_KEY] = stored
            prepared.append((key, owner, rows))
        results: list[list[EnqueueResult] | IdempotencyConflictError] = []
        async with self._begin() as connection:
            plain = [row for key, _, rows in prepared if key is None for row in rows]
            if plain:
                stamp = driver_time(connection)
                stamped_now = stamp(now)  # most times of a new row are ``now`` or None
                stamped = []
                for row in plain:
                    values = list(_NEW_VALUES(row))
                    for t in _TIME_INDEXES:
                        value = values[t]
                        if value is not None:
                            values[t] = stamped_now if value is now else stamp(value)
                    stamped.append(tuple(values))
                await execute_many(connection, _INSERT_MESSAGE, stamped)
            keyed = [(key, owner, rows) for key, owner, rows in prepared if key is not None]
            found = await self._keyed_rows(connection, keyed) if keyed else {}
            for key, owner, rows in prepared:
                if key is None:
                    results.append([_created(row) for row in rows])
                    continue
                outcome = await self._enqueue_keyed(connection, key, owner, rows, found)
                if isinstance(outcome, IdempotencyConflictError) and all_or_none:
                    raise outcome
                results.append(outcome)
        return results

    async def _keyed_rows(
        self, connection: AsyncConnection, keyed: Sequence[tuple[str, str, list[list[Any]]]]
    ) -> dict[tuple[str, str], Message]:
        """The stored messages of the keyed requests' families, by (owner, stored key).

        First locks every key (PostgreSQL, in one sorted statement: same-key requests of
        several processes take turns and never deadlock; SQLite's writers take turns anyway).
        """
        await lock_keys(connection, (f"idempotency {owner} {key}" for key, owner, _ in keyed))
        by_owner: dict[str, set[str]] = {}
        for key, owner, rows in keyed:
            by_owner.setdefault(owner, set()).update(_family(key, len(rows)))
        read = read_time(connection)
        found: dict[tuple[str, str], Message] = {}
        for owner, family in sorted(by_owner.items()):
            names = sorted(family)
            for start in range(0, len(names), _KEY_NAMES_PER_STATEMENT):
                chunk = names[start : start + _KEY_NAMES_PER_STATEMENT]
                for row in await fetch_in(connection, _BY_IDEMPOTENCY_KEY, chunk, leading=(owner,)):
                    found[(owner, row.idempotency_key)] = message_from_driver(row, read)
        return found

    async def _enqueue_keyed(
        self,
        connection: AsyncConnection,
        key: str,
        owner: str,
        rows: list[list[Any]],
        stored: dict[tuple[str, str], Message],
    ) -> list[EnqueueResult] | IdempotencyConflictError:
        """One request with an idempotency key: its replay, its rows written, or a conflict.

        ``stored`` is :meth:`_keyed_rows`'s answer; the messages written here are added to it,
        so a second request with the key in the same batch is a replay of this one.
        """
        family = _family(key, len(rows))
        found = {
            family[name]: message
            for name in family
            if (message := stored.get((owner, name))) is not None
        }
        if found:
            wanted = {None} if len(rows) == 1 else set(range(len(rows)))
            if found.keys() != wanted:
                return IdempotencyConflictError(key)
            replayed = []
            for index, row in enumerate(rows):
                existing = found[None if len(rows) == 1 else index]
                if existing.recipient != row[_RECIPIENT] or (
                    # A text retention erased cannot be compared: key and recipient decide.
                    existing.text is not None and existing.text != row[_TEXT]
                ):
                    return IdempotencyConflictError(key)
                replayed.append(EnqueueResult(existing, created=False))
            return replayed
        statement = (
            insert(connection, messages)
            .on_conflict_do_nothing(index_elements=["owner", "idempotency_key"])
            .returning(messages.c.id)
        )
        written = (
            await connection.execute(
                statement, [dict(zip(_COLUMNS, row, strict=True)) for row in rows]
            )
        ).all()
        if len(written) < len(rows):
            # A key taken meanwhile by a writer that did not take the lock (an instance of an
            # older version): take back what this request wrote, keep nothing of it.
            if written:
                await connection.execute(
                    sa.delete(messages).where(messages.c.id.in_([r.id for r in written]))
                )
            return IdempotencyConflictError(key)
        created = [_created(row) for row in rows]
        for result, row in zip(created, rows, strict=True):
            stored[(owner, row[_IDEMPOTENCY_KEY])] = result.message
        return created

    def _row(self, message: NewMessage, now: datetime) -> list[Any]:
        """The ``messages`` row of a new message (validated), in :data:`_COLUMNS` order."""
        if not message.recipient:
            raise ValueError("a message needs a recipient")
        if message.parts < 1:
            raise ValueError(f"parts must be at least 1, got {message.parts}")
        schedule_at = message.schedule_at
        if schedule_at is not None and schedule_at.tzinfo is None:
            raise ValueError("schedule_at must be timezone-aware")
        scheduled = schedule_at is not None and schedule_at > now
        validity = message.validity
        return [
            message.id or new_message_id(),  # id
            message.owner,
            message.idempotency_key,
            message.recipient,
            message.sender,
            message.text,
            message.encoding,
            message.parts,
            message.flash,
            schedule_at,
            None if validity is None else math.ceil(validity.total_seconds()),  # validity_seconds
            message.reference,
            message.callback_url,
            (MessageStatus.SCHEDULED if scheduled else MessageStatus.QUEUED).value,  # status
            0,  # attempts
            0,  # resends
            None,  # error_code
            None,  # error_name
            None,  # error_detail
            schedule_at if scheduled else now,  # next_attempt_at
            None,  # lease_owner
            None,  # lease_until
            now,  # created_at
            now,  # updated_at
            None,  # submitted_at
            None,  # finished_at
            None,  # text_purged_at
            None,  # resume
        ]

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
            failed = await self._fail_exhausted(connection, exhausted, expired, now)
            wanted = [row.id for row in rows if row.id not in set(exhausted)]
            if not wanted:
                return [], len(failed)
            read = cached_reads(read_time(connection))
            claimed = [
                message_from_driver(row, read, resend=row[0] in expired)
                for row in await fetch_in(
                    connection,
                    _CLAIM,
                    wanted,
                    leading=(worker_id, stamp_until, stamp),
                    tuples=True,
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
        return sorted(claimed, key=lambda m: order[m.id]), len(failed)

    async def _fail_exhausted(
        self,
        connection: AsyncConnection,
        ids: Sequence[str],
        expired: dict[str, Any],
        now: datetime,
    ) -> list[str]:
        """Fail messages whose last allowed claim expired: at-least-once gives up here.

        Returns the ids failed: one whose earlier parts' keys another transaction holds (a
        late submit record, which locks the row after them) is left for the next claim, as
        this transaction already holds the rows and must not wait for a key.
        """
        if not ids:
            return []
        detail = f"lease expired after {self.max_attempts} attempts without an outcome"
        interrupted = (
            await connection.execute(
                sa.select(messages.c.id, messages.c.resume).where(
                    messages.c.id.in_(ids), messages.c.resume.is_not(None)
                )
            )
        ).all()
        busy: set[str] = set()
        for row in interrupted:  # parts of an earlier try are out
            so_far = sent_so_far((), row.resume)
            if not await try_lock_keys(connection, sent_keys(so_far)):
                busy.add(row.id)
                continue
            await self._record_sent_parts(connection, row.id, so_far, now)
        ids = [i for i in ids if i not in busy]
        if not ids:
            return []
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
                    resume=None,
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
        return ids

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
        self,
        message_id: str,
        worker_id: str,
        *,
        error: str,
        delay: float | None = None,
        sent: Sequence[str | None] = (),
        unanswered: bool = False,
        concat_reference: int | None = None,
    ) -> Message:
        """Put a claimed message back after a retriable error (throttled, queue full, link lost).

        It becomes due again after ``delay`` seconds, by default the backoff for its attempt
        count; after ``max_attempts`` it is failed instead, with ``error`` as the reason.
        ``sent`` has the SMSC message_id of each part that went out before the error (None
        for the others); the ids go in the history. With the ``concat_reference`` those parts
        carried, the message keeps both (:attr:`Message.partial_send`) and its retry sends only
        the other parts under that reference; without, the retry sends those parts again, so
        it counts as a resend (their receipts are kept as unmatched). ``unanswered``: a part
        was on the wire when the link failed, its answer never came (the SMSC may have taken
        it), so the retry counts as a resend too, marked ``unanswered`` in the history.
        Raises LeaseLostError when ``worker_id`` no longer holds the lease.
        """
        went_out = {str(number): i for number, i in enumerate(sent, start=1) if i is not None}
        now = self._now()
        async with self._begin() as connection:
            before = (
                await connection.execute(
                    sa.select(messages.c.attempts, messages.c.resume).where(
                        messages.c.id == message_id
                    )
                )
            ).first()
            if before is not None and before.attempts >= self.max_attempts:
                # the last attempt records its parts: their keys before the row, as submits do
                keys = sent_keys(sent_so_far(sent, before.resume, concat_reference))
                await lock_keys(connection, keys)
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
                    "resume": None,
                }
                event: tuple[EventKind, dict[str, Any]] = (
                    EventKind.FAILED,
                    {"error_name": MAX_ATTEMPTS_EXCEEDED, "error": error},
                )
                so_far = sent_so_far(sent, row.resume, concat_reference)
                if any(so_far):
                    await self._record_sent_parts(connection, message_id, so_far, now)
                    event[1]["sent_parts"] = {
                        str(number): i for number, i in enumerate(so_far, 1) if i is not None
                    }
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
                resumable = bool(went_out) and concat_reference is not None
                if (went_out and not resumable) or unanswered:
                    values["resends"] = row.resends + 1
                if went_out:
                    event[1]["sent_parts"] = went_out
                if resumable:
                    assert concat_reference is not None
                    values["resume"] = partial_send_json(concat_reference, sent)
                elif went_out:
                    values["resume"] = None  # all its parts go again: nothing to resume
                if unanswered:
                    event[1]["unanswered"] = True
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

    async def release(
        self,
        worker_id: str,
        message_ids: Sequence[str] | None = None,
        *,
        keep: Sequence[str] = (),
    ) -> int:
        """Give back leases without sending (a clean shutdown): due at once, attempt uncounted.

        Releases ``message_ids`` or, when None, every lease ``worker_id`` holds, except those
        of ``keep`` (messages that may have gone out: their leases run out, and the claim then
        counts a resend).
        """
        now = self._now()
        c = messages.c
        condition = sa.and_(
            c.lease_owner == worker_id, c.status.in_([s.value for s in CLAIMABLE_STATUSES])
        )
        if message_ids is not None:
            condition = sa.and_(condition, c.id.in_(message_ids))
        if keep:
            condition = sa.and_(condition, c.id.not_in(keep))
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
            resume = await connection.scalar(
                sa.select(messages.c.resume).where(messages.c.id == message_id)
            )
            if resume is not None:  # its parts get recorded: their keys before the row
                await lock_keys(connection, sent_keys(sent_so_far((), resume)))
            row = await self._locked_row(connection, message_id)
            if row.status == MessageStatus.CANCELLED:
                return to_message(row), False
            leased = row.lease_until is not None and row.lease_until > now
            if row.status not in CLAIMABLE_STATUSES or leased:
                raise NotCancellableError(message_id, row.status, leased=leased)
            if row.resume is not None:  # parts of an interrupted try are out
                await self._record_sent_parts(
                    connection, message_id, sent_so_far((), row.resume), now
                )
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
                        resume=None,
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
