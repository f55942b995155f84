"""The message store: the queue plus outcomes, receipts, inbound SMS, reads and retention.

Every status change here and in :mod:`o2sms.store.queue` also writes its webhook to the outbox
(:mod:`o2sms.store.outbox`) in the same transaction.

:class:`MessageStore` is what the service uses; :func:`open_store` builds one from a URL and
migrates the schema first. Every method runs in one transaction, so a change touching several
rows (a message, its parts, their keys, history entries) is saved whole or not at all.

Receipt correlation (see ``docs/store.md``): a receipt is first stored (deduplicated by a
fingerprint of its fields, so the same receipt twice is applied once), then matched to a part
by exact SMSC id, then by the normalised keys of :func:`o2sms.receipts.message_id_keys`
(``04000000086ECD50`` and ``288230376293190992`` share one). Without a match it is kept as
pending; :meth:`MessageStore.mark_submitted` applies pending receipts when it records the id,
which covers a receipt that overtook its submit_sm_resp.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from o2sms.receipts import (
    DeliveryReceipt,
    ReceiptStat,
    clean_message_id,
)
from o2sms.smpp.constants import status_meaning, status_name
from o2sms.store.engine import create_engine, migrate
from o2sms.store.errors import LeaseLostError
from o2sms.store.models import (
    CLAIMABLE_STATUSES,
    EventKind,
    InboundMessage,
    Message,
    MessageStatus,
    NewInbound,
    Page,
    PurgeResult,
    ReceiptOutcome,
    ReceiptResult,
    StoredReceipt,
    WebhookStatus,
    derive_status,
    part_status_for,
)
from o2sms.store.outbox import (
    DEFAULT_WEBHOOK_RETRY_BASE,
    DEFAULT_WEBHOOK_RETRY_CAP,
    DEFAULT_WEBHOOK_RETRY_FOR,
    Clock,
    utc_now,
)
from o2sms.store.queue import (
    MessageQueue,
    sent_keys,
    sent_so_far,
    storable_id,
    storable_keys,
)
from o2sms.store.rows import (
    add_event_rows,
    add_events,
    driver_time,
    execute_many,
    fetch_in,
    insert,
    insert_sql,
    json_scalar,
    json_text,
    lock_keys,
    queued_event,
    read_time,
    to_events,
    to_inbound,
    to_message,
    to_part,
    to_receipt,
    update_sql,
)
from o2sms.store.schema import (
    KEY_LENGTH,
    inbound,
    message_events,
    message_parts,
    messages,
    part_keys,
    receipt_keys,
    receipts,
    webhook_attempts,
    webhooks,
)
from o2sms.store.sqlite_inline import OFF_LOOP

__all__ = ["PURGE_BATCH", "MessageStore", "open_store", "receipt_fingerprint"]

PURGE_BATCH: Final = 1000
"""Rows a retention transaction takes at most (see :meth:`MessageStore.purge`)."""
_PURGE_READ_AHEAD: Final = 10
"""Batches of text purge candidates read in one scan."""

_PENDING_PART = frozenset({MessageStatus.QUEUED, MessageStatus.SUBMITTED})
_ERR_LENGTH: Final = 16
"""``receipts.err`` and ``message_parts.error_code``: a receipt's ``err`` field, as stored."""

# The batch paths' per-row statements, run on the driver's terms (rows.execute_many).
_INSERT_PART: Final = insert_sql(
    message_parts, ("message_id", "part_no", "smsc_id", "status", "submitted_at")
)
_INSERT_PART_KEY: Final = insert_sql(
    part_keys, ("key", "message_id", "part_no"), on_conflict_nothing=True
)
_MARK_SUBMITTED: Final = update_sql(
    messages,
    ("status", "updated_at", "submitted_at", "parts"),
    ("id",),
    also="lease_owner = NULL, lease_until = NULL",
)
_INSERT_MATCHED_RECEIPT: Final = insert_sql(
    receipts,
    (
        "fingerprint",
        "receipt_id",
        "stat",
        "err",
        "detail",
        "received_at",
        "message_id",
        "part_no",
        "matched_at",
    ),
)
_APPLY_RECEIPT_TO_PART: Final = update_sql(
    message_parts, ("status", "error_code", "receipt_at"), ("message_id", "part_no")
)
_MESSAGES_TO_SUBMIT: Final = (
    f"SELECT id, status, lease_owner, parts, attempts, callback_url FROM {messages.name} "
    "WHERE id IN_LIST ORDER BY id"
)
_WITH_PARTS: Final = (
    f"SELECT DISTINCT message_id FROM {message_parts.name} WHERE message_id IN_LIST"
)
_WAITING_KEYS: Final = f"SELECT key FROM {receipt_keys.name} WHERE key IN_LIST"
_WAITING_RECEIPTS: Final = (
    f"SELECT receipt_id FROM {receipts.name} WHERE message_id IS NULL AND receipt_id IN_LIST"
)
_KNOWN_FINGERPRINTS: Final = f"SELECT fingerprint FROM {receipts.name} WHERE fingerprint IN_LIST"
_PARTS_BY_SMSC_ID: Final = (
    f"SELECT message_id, part_no, smsc_id, submitted_at FROM {message_parts.name} "
    "WHERE smsc_id IN_LIST"
)
_MESSAGES_BY_PART_KEY: Final = f"SELECT key, message_id FROM {part_keys.name} WHERE key IN_LIST"
_MESSAGES_TO_UPDATE: Final = (
    f"SELECT id, status, callback_url FROM {messages.name} WHERE id IN_LIST ORDER BY id"
)
_PART_STATES: Final = (
    f"SELECT message_id, part_no, status FROM {message_parts.name} WHERE message_id IN_LIST"
)
_SET_MESSAGE_STATUS: Final = update_sql(messages, ("status", "updated_at", "finished_at"), ("id",))


def receipt_fingerprint(receipt: DeliveryReceipt) -> str:
    """What makes two receipts "the same receipt": id, stat, err, counts, dates.

    An SMSC that gets no deliver_sm_resp in time sends the receipt again, byte for byte;
    such repeats share this fingerprint and are applied once. The id is taken as written
    (:func:`~o2sms.receipts.clean_message_id`), not read as a number: two different ids
    with one numeric reading, finished in the same minute, are two receipts.
    """
    # json_text([id, stat, err, sub, dlvrd, submit date, done date]), written out: one per
    # receipt, and encoding the list cost more than hashing it
    text = (
        f"[{json_scalar(clean_message_id(receipt.id))}, {json_scalar(receipt.stat._value_)}, "
        f"{json_scalar(receipt.err)}, {json_scalar(receipt.sub)}, {json_scalar(receipt.dlvrd)}, "
        f"{_date_json(receipt.submit_date)}, {_date_json(receipt.done_date)}"
        # an intermediate notification and the final receipt may share every field above
        f"{', true' if receipt.intermediate else ''}]"
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _receipt_status(stat: ReceiptStat, intermediate: bool) -> MessageStatus | None:
    """The part state a receipt means (:func:`part_status_for`); an intermediate notification
    (esm_class 0x20: a failed first attempt the SMSC retries, say) never a final one."""
    new = part_status_for(stat)
    return None if intermediate and new is not None and new.is_final else new


def _date_json(at: datetime | None) -> str:
    """``json_text(at.isoformat())``, or ``null``."""
    # keyed by zone and fold too: equal instants in other zones write other digits
    return "null" if at is None else _isoformat_json(at, at.tzinfo, at.fold)


@functools.lru_cache(maxsize=1024)  # a receipt's dates have minutes: most of a batch share them
def _isoformat_json(at: datetime, _zone: object, _fold: int) -> str:
    return json_scalar(at.isoformat())


def _sortable(at: datetime | None) -> datetime:
    return at if at is not None else datetime.min.replace(tzinfo=UTC)


def _fits(value: str, length: int) -> bool:
    """True when a column of ``length`` characters holds ``value`` on both backends as it is:
    not too long, and no NUL (PostgreSQL text cannot hold one)."""
    return len(value) <= length and "\x00" not in value


def _stored(value: str, length: int) -> str:
    """``value`` as such a column keeps it: each NUL as U+FFFD, cut to ``length``.

    For a receipt's ``err``: refusing the receipt would store it nowhere, and the SMSC would
    deliver it again for ever; the receipt keeps the full value in its detail. (Ids are kept
    as :func:`storable_id` says, so that a long one still correlates.)
    """
    return value if _fits(value, length) else value.replace("\x00", "\ufffd")[:length]


_CLOCK_MARGIN: Final = timedelta(minutes=5)
"""How much earlier than its message's creation a waiting receipt may be stamped and still be
its own: instances sharing a store stamp with their own clocks (the service warns past 10 s)."""


def _exact_ids(receipt: DeliveryReceipt, submitted_id: str | None) -> list[str]:
    """The ids a part's ``smsc_id`` may equal: the client's, then the receipt's, as
    :func:`storable_id` keeps them (a long id too: SMSCs send ids over SMPP's 64)."""
    return [storable_id(i) for i in (submitted_id, receipt.id) if i]


def _receipt_keys(receipt: DeliveryReceipt, submitted_id: str | None) -> frozenset[str]:
    """The correlation keys of a receipt (and of the id the client matched it to), as
    :func:`storable_keys` gives them."""
    keys = storable_keys(receipt.id)
    return keys | storable_keys(submitted_id) if submitted_id else keys


def _receipt_detail(receipt: DeliveryReceipt, submitted_id: str | None) -> dict[str, Any]:
    """The receipt's remaining fields, JSON-ready, for the ``receipts.detail`` column; also
    its ``id`` and ``err`` when their columns keep them changed (see :func:`_stored`)."""
    detail = {
        "sub": receipt.sub,
        "dlvrd": receipt.dlvrd,
        "submit_date": None if receipt.submit_date is None else receipt.submit_date.isoformat(),
        "done_date": None if receipt.done_date is None else receipt.done_date.isoformat(),
        "text": receipt.text,
        "message_state": None if receipt.message_state is None else int(receipt.message_state),
        "network_error_code": None
        if receipt.network_error_code is None
        else receipt.network_error_code.hex(),
        "submitted_id": submitted_id,
    }
    if not _fits(receipt.id, KEY_LENGTH):
        detail["id"] = receipt.id
    if not _fits(receipt.err, _ERR_LENGTH):
        detail["err"] = receipt.err
    if receipt.intermediate:  # applied later (waiting for its submit), it stays not final
        detail["intermediate"] = True
    return detail


def _receipt_detail_text(receipt: DeliveryReceipt, submitted_id: str | None) -> str:
    """``json_text(_receipt_detail(receipt, submitted_id))``, written out for the usual
    receipt (one whose id and ``err`` their columns hold as they are)."""
    if receipt.intermediate or not (
        _fits(receipt.id, KEY_LENGTH) and _fits(receipt.err, _ERR_LENGTH)
    ):
        return json_text(_receipt_detail(receipt, submitted_id))
    state, code = receipt.message_state, receipt.network_error_code
    return (
        f'{{"sub": {json_scalar(receipt.sub)}, "dlvrd": {json_scalar(receipt.dlvrd)}, '
        f'"submit_date": {_date_json(receipt.submit_date)}, '
        f'"done_date": {_date_json(receipt.done_date)}, "text": {json_scalar(receipt.text)}, '
        f'"message_state": {"null" if state is None else json_scalar(int(state))}, '
        f'"network_error_code": {"null" if code is None else json_scalar(code.hex())}, '
        f'"submitted_id": {json_scalar(submitted_id)}}}'
    )


@functools.lru_cache(maxsize=256)
def _status_json(old: MessageStatus, new: MessageStatus) -> str:
    """A ``status`` history entry's detail, ``{"from": old, "to": new}``, as JSON."""
    return json_text({"from": old.value, "to": new.value})


def _pending_webhook(link: sa.Column[Any], row_id: sa.Column[Any], now: datetime) -> sa.Exists:
    """A webhook whose ``link`` column names the row ``row_id`` and that is still being retried
    (retention keeps that row). Past its ``give_up_at`` it no longer holds the row: with no
    sender running, it would never settle."""
    w = webhooks.c
    return sa.exists().where(
        link == row_id, w.status == WebhookStatus.PENDING.value, w.give_up_at > now
    )


def _encode_cursor(created_at: datetime, message_id: str) -> str:
    raw = f"{created_at.isoformat()}|{message_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, message_id = raw.split("|", 1)
        created_at = datetime.fromisoformat(at)
        if created_at.tzinfo is not None:
            created_at = created_at.astimezone(UTC)  # one a database can hold, or OverflowError
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise ValueError(f"invalid page cursor {cursor!r}") from None
    if created_at.tzinfo is None or "\x00" in message_id:  # PostgreSQL text holds no NUL
        raise ValueError(f"invalid page cursor {cursor!r}")
    return created_at, message_id


class MessageStore(MessageQueue):
    """The durable store of messages, parts, receipts, history and inbound SMS.

    Build it with :func:`open_store` (or from an engine already migrated). The queue methods
    (``enqueue``, ``claim``, ``requeue``, ``release``, ``cancel``...) come from
    :class:`o2sms.store.queue.MessageQueue`.
    """

    async def close(self) -> None:
        """Close the engine's connections."""
        await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- reads --------------------------------------------------------------------------------

    async def get(self, message_id: str) -> Message | None:
        """The message with its parts and history, or None when there is no such id."""
        async with self._reader.begin() as connection:
            row = (
                await connection.execute(sa.select(messages).where(messages.c.id == message_id))
            ).first()
            if row is None:
                return None
            parts = (
                await connection.execute(
                    sa.select(message_parts)
                    .where(message_parts.c.message_id == message_id)
                    .order_by(message_parts.c.part_no)
                )
            ).all()
            events = (
                await connection.execute(
                    sa.select(message_events)
                    .where(message_events.c.message_id == message_id)
                    .order_by(message_events.c.id)
                )
            ).all()
        history = to_events(events)
        if not any(e.kind is EventKind.QUEUED for e in history):
            history.insert(0, queued_event(row))
        return to_message(row, [to_part(p) for p in parts], history)

    async def list_messages(
        self,
        *,
        status: MessageStatus | Iterable[MessageStatus] | None = None,
        reference: str | None = None,
        owner: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """Messages newest first, filtered; ``cursor`` from the previous page's ``next_cursor``.

        ``created_from`` is inclusive, ``created_to`` exclusive. Keyset pagination on
        (created_at, id): pages stay stable while new messages arrive.
        """
        if not 1 <= limit <= 1000:
            raise ValueError(f"limit must be 1..1000, got {limit}")
        c = messages.c
        query = sa.select(messages)
        if status is not None:
            wanted = [status] if isinstance(status, MessageStatus) else list(status)
            query = query.where(c.status.in_([MessageStatus(s).value for s in wanted]))
        if reference is not None:
            query = query.where(c.reference == reference)
        if owner is not None:
            query = query.where(c.owner == owner)
        if created_from is not None:
            query = query.where(c.created_at >= created_from)
        if created_to is not None:
            query = query.where(c.created_at < created_to)
        if cursor is not None:
            at, last_id = _decode_cursor(cursor)
            query = query.where(
                sa.or_(c.created_at < at, sa.and_(c.created_at == at, c.id < last_id))
            )
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)
        # Off the event loop's thread on SQLite: with few rows matching a filter (a status,
        # a time range) the walk down (created_at, id) may read every message.
        query = query.prefix_with(OFF_LOOP)
        async with self._reader.connect() as connection:
            rows = (await connection.execute(query)).all()
        items = tuple(to_message(row) for row in rows[:limit])
        next_cursor = (
            _encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit else None
        )
        return Page(items, next_cursor)

    async def list_receipts(
        self, *, unmatched: bool = True, limit: int = 100
    ) -> list[StoredReceipt]:
        """Stored receipts, oldest first; by default only those no part has claimed yet."""
        query = sa.select(receipts).order_by(receipts.c.received_at, receipts.c.id).limit(limit)
        if unmatched:
            query = query.where(receipts.c.message_id.is_(None))
        async with self._reader.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [to_receipt(row) for row in rows]

    # -- outcomes of a submit -----------------------------------------------------------------

    async def mark_submitted(
        self, message_id: str, smsc_ids: Sequence[str], *, worker_id: str | None = None
    ) -> Message:
        """Record the SMSC message_id of each part (in order) and end the worker's lease.

        The message becomes ``submitted`` unless it has moved on already (a late answer after
        a resend, a cancel); the ids are recorded in any case, since that SMS did go out, and
        receipts that arrived before this call are applied now.
        """
        if not smsc_ids:
            raise ValueError("mark_submitted needs at least one SMSC message_id")
        now = self._now()
        keyed = [
            (part_no, storable_id(sid), storable_keys(sid))
            for part_no, sid in enumerate(smsc_ids, 1)
        ]
        async with self._begin() as connection:
            await lock_keys(connection, (k for _, _, keys in keyed for k in keys))
            await self._mark_submitted_in(
                connection, message_id, keyed, smsc_ids=smsc_ids, worker_id=worker_id, now=now
            )
            final = (
                await connection.execute(sa.select(messages).where(messages.c.id == message_id))
            ).one()
        return to_message(final)

    async def _mark_submitted_in(
        self,
        connection: AsyncConnection,
        message_id: str,
        keyed: Sequence[tuple[int, str, frozenset[str]]],
        *,
        smsc_ids: Sequence[str],
        worker_id: str | None,
        now: datetime,
    ) -> None:
        """The body of :meth:`mark_submitted`, inside the caller's transaction."""
        row = await self._locked_row(connection, message_id)
        await self._record_parts(connection, message_id, keyed, now)
        values: dict[str, Any] = {
            "updated_at": now,
            "submitted_at": now,
            "parts": max(row.parts, len(smsc_ids)),
        }
        if worker_id is None or row.lease_owner == worker_id:
            values.update(lease_owner=None, lease_until=None)
        if row.status in CLAIMABLE_STATUSES:
            values["status"] = MessageStatus.SUBMITTED.value
        updated = (
            await connection.execute(
                sa.update(messages)
                .where(messages.c.id == message_id)
                .values(**values)
                .returning(*messages.c)
            )
        ).one()
        await self._notify_status(connection, now, [(updated, row.status)])
        await add_events(
            connection,
            now,
            [
                (
                    message_id,
                    EventKind.SUBMITTED,
                    {"ids": list(smsc_ids), "worker": worker_id, "attempt": row.attempts},
                )
            ],
        )
        applied = 0
        for part_no, sid, keys in keyed:
            applied += await self._match_pending(
                connection,
                message_id=message_id,
                part_no=part_no,
                smsc_id=sid,
                keys=keys,
                now=now,
            )
        if applied:
            await self._derive(connection, message_id, now)

    async def mark_submitted_many(
        self, batch: Sequence[tuple[str, Sequence[str]]], *, worker_id: str | None = None
    ) -> None:
        """:meth:`mark_submitted` for many messages in one transaction (a group commit).

        The common case (a message still waiting, leased to ``worker_id``, with no parts yet
        and no receipt waiting for its ids) is written with a handful of set-based statements
        whatever the batch size; any other message takes the one-message path in the same
        transaction. All or nothing.
        """
        if not batch:
            return
        if any(not ids for _, ids in batch):
            raise ValueError("mark_submitted needs at least one SMSC message_id")
        now = self._now()
        keyed = [
            [(n, storable_id(sid), storable_keys(sid)) for n, sid in enumerate(ids, 1)]
            for _, ids in batch
        ]
        all_keys = sorted({k for items in keyed for _, _, keys in items for k in keys})
        all_ids = sorted({sid for items in keyed for _, sid, _ in items})
        wanted = sorted({message_id for message_id, _ in batch})
        async with self._begin() as connection:
            await lock_keys(connection, all_keys)
            # Only what deciding and recording needs, read with driver statements.
            rows: dict[str, Any] = {
                row.id: row
                for row in await fetch_in(connection, _MESSAGES_TO_SUBMIT, wanted, lock=True)
            }
            with_parts = {row.message_id for row in await fetch_in(connection, _WITH_PARTS, wanted)}
            waiting_keys = {row.key for row in await fetch_in(connection, _WAITING_KEYS, all_keys)}
            waiting_ids = {
                row.receipt_id for row in await fetch_in(connection, _WAITING_RECEIPTS, all_ids)
            }
            fast: list[int] = []
            slow: list[int] = []
            seen: set[str] = set()
            for index, (message_id, _) in enumerate(batch):
                row = rows.get(message_id)
                simple = (
                    row is not None
                    and message_id not in seen
                    and message_id not in with_parts
                    and row.status in CLAIMABLE_STATUSES
                    and (worker_id is None or row.lease_owner == worker_id)
                    and not any(
                        sid in waiting_ids or keys & waiting_keys for _, sid, keys in keyed[index]
                    )
                )
                seen.add(message_id)
                (fast if simple else slow).append(index)
            if fast:
                await self._submitted_fast(
                    connection,
                    [(batch[i][0], batch[i][1], keyed[i]) for i in fast],
                    rows,
                    worker_id=worker_id,
                    now=now,
                )
            for index in slow:
                message_id, ids = batch[index]
                await self._mark_submitted_in(
                    connection,
                    message_id,
                    keyed[index],
                    smsc_ids=ids,
                    worker_id=worker_id,
                    now=now,
                )

    async def _submitted_fast(
        self,
        connection: AsyncConnection,
        fast: Sequence[tuple[str, Sequence[str], list[tuple[int, str, frozenset[str]]]]],
        rows: dict[str, sa.Row[Any]],
        *,
        worker_id: str | None,
        now: datetime,
    ) -> None:
        """Record the simple submits of a batch: parts, keys, statuses, history, webhooks."""
        stamp = driver_time(connection)(now)
        submitted = MessageStatus.SUBMITTED.value
        await execute_many(
            connection,
            _INSERT_PART,
            [
                (message_id, part_no, sid, submitted, stamp)
                for message_id, _, items in fast
                for part_no, sid, _ in items
            ],
        )
        await execute_many(
            connection,
            _INSERT_PART_KEY,
            [
                (key, message_id, part_no)
                for message_id, _, items in fast
                for part_no, _, keys in items
                for key in keys
            ],
        )
        await execute_many(
            connection,
            _MARK_SUBMITTED,
            [
                (submitted, stamp, stamp, max(rows[message_id].parts, len(ids)), message_id)
                for message_id, ids, _ in fast
            ],
        )
        # json_text({"ids": [...], "worker": ..., "attempt": ...}), written out
        worker = json_scalar(worker_id)
        kind = EventKind.SUBMITTED.value
        await add_event_rows(
            connection,
            [
                (
                    message_id,
                    stamp,
                    kind,
                    f'{{"ids": [{", ".join(map(json_scalar, ids))}], "worker": {worker}, '
                    f'"attempt": {json_scalar(rows[message_id].attempts)}}}',
                )
                for message_id, ids, _ in fast
            ],
        )
        notify = [m for m, _, _ in fast if rows[m].callback_url or self.webhook_url]
        if notify:
            updated = (
                await connection.execute(sa.select(messages).where(messages.c.id.in_(notify)))
            ).all()
            await self._notify_status(connection, now, [(u, rows[u.id].status) for u in updated])

    async def mark_failed(
        self,
        message_id: str,
        *,
        error_code: int | None = None,
        error_name: str | None = None,
        error_detail: str | None = None,
        worker_id: str | None = None,
        smsc_ids: Sequence[str | None] = (),
        infobip: bool = False,
    ) -> Message:
        """Fail a message after a final submit error, with the status name and its meaning.

        ``error_code`` (a command_status) fills ``error_name``/``error_detail`` when they are
        not given (``ESME_RINVDSTADR`` / "invalid destination address"; with ``infobip`` the
        gateway's own meanings first). ``smsc_ids`` names parts that did go out before another
        part failed (None for the failed ones): they are recorded, with those of an earlier
        interrupted try (:attr:`Message.partial_send`), so their receipts still correlate,
        and the message stays ``failed``. A message no longer waiting (already
        submitted, cancelled or final) is returned unchanged. Raises LeaseLostError when
        ``worker_id`` is given and no longer holds the lease of a message still waiting (it
        ran out, another worker claimed the message and is sending it): a late final error
        must not fail that send. Without ``worker_id`` the lease is not checked.
        """
        now = self._now()
        name = error_name or (status_name(error_code) if error_code is not None else "FAILED")
        detail = error_detail or (
            status_meaning(error_code, infobip=infobip) if error_code is not None else ""
        )
        async with self._begin() as connection:
            resume = await connection.scalar(
                sa.select(messages.c.resume).where(messages.c.id == message_id)
            )
            # every key its parts may be recorded under, before the row, as submits do
            await lock_keys(connection, sent_keys(sent_so_far(smsc_ids, resume)))
            row = await self._locked_row(connection, message_id)
            if row.status not in CLAIMABLE_STATUSES:
                return to_message(row)
            if worker_id is not None and row.lease_owner != worker_id:
                raise LeaseLostError(message_id, worker_id, row.lease_owner)
            if smsc_ids or row.resume is not None:
                so_far = sent_so_far(smsc_ids, row.resume)  # with an interrupted try's parts
                await self._record_sent_parts(connection, message_id, so_far, now)
                failed_parts = [
                    {"message_id": message_id, "part_no": n, "status": "failed"}
                    for n, sid in enumerate(so_far, 1)
                    if sid is None
                ]
                if failed_parts:
                    await connection.execute(message_parts.insert(), failed_parts)
            values: dict[str, Any] = {
                "status": MessageStatus.FAILED.value,
                "error_code": error_code,
                "error_name": name,
                "error_detail": detail,
                "updated_at": now,
                "finished_at": now,
                "resume": None,
                "lease_owner": None,
                "lease_until": None,
            }
            updated = (
                await connection.execute(
                    sa.update(messages)
                    .where(messages.c.id == message_id)
                    .values(**values)
                    .returning(*messages.c)
                )
            ).one()
            await add_events(
                connection,
                now,
                [
                    (
                        message_id,
                        EventKind.FAILED,
                        {"error_code": error_code, "error_name": name, "error_detail": detail},
                    )
                ],
            )
            await self._notify_status(connection, now, [(updated, row.status)])
        return to_message(updated)

    async def _record_sent_parts(
        self,
        connection: AsyncConnection,
        message_id: str,
        sent: Sequence[str | None],
        now: datetime,
    ) -> None:
        """Record the parts that went out of a message that ends without them all (see
        :meth:`MessageQueue._record_sent_parts`), and apply their receipts that came first.

        The message stays as it is: its row is already locked and its status final or about
        to be. Their receipts can only have waited unmatched (the parts were not recorded),
        so no receipt transaction holds this row while waiting for these keys.
        """
        keyed = [
            (part_no, storable_id(sid), storable_keys(sid))
            for part_no, sid in enumerate(sent, 1)
            if sid
        ]
        if not keyed:
            return
        await lock_keys(connection, (k for _, _, keys in keyed for k in keys))
        await self._record_parts(connection, message_id, keyed, now)
        for part_no, sid, keys in keyed:
            await self._match_pending(
                connection, message_id=message_id, part_no=part_no, smsc_id=sid, keys=keys, now=now
            )

    async def _record_parts(
        self,
        connection: AsyncConnection,
        message_id: str,
        keyed: Sequence[tuple[int, str, frozenset[str]]],
        now: datetime,
    ) -> None:
        """Insert or update parts with their SMSC ids, and add the ids' correlation keys.

        A part that already has a receipt keeps its state (a resend does not undo a
        delivery); earlier ids' keys stay, so receipts for an earlier send still match.
        """
        existing = {
            row.part_no: row
            for row in (
                await connection.execute(
                    sa.select(message_parts).where(message_parts.c.message_id == message_id)
                )
            ).all()
        }
        new_rows = []
        for part_no, sid, _ in keyed:
            old = existing.get(part_no)
            if old is None:
                new_rows.append(
                    {
                        "message_id": message_id,
                        "part_no": part_no,
                        "smsc_id": sid,
                        "status": MessageStatus.SUBMITTED.value,
                        "submitted_at": now,
                    }
                )
                continue
            status = (
                MessageStatus.SUBMITTED
                if old.status in _PENDING_PART
                else MessageStatus(old.status)
            )
            await connection.execute(
                sa.update(message_parts)
                .where(message_parts.c.message_id == message_id, message_parts.c.part_no == part_no)
                .values(smsc_id=sid, submitted_at=now, status=status.value)
            )
        if new_rows:
            await connection.execute(message_parts.insert(), new_rows)
        key_rows = [
            {"key": key, "message_id": message_id, "part_no": part_no}
            for part_no, _, keys in keyed
            for key in keys
        ]
        if key_rows:
            await connection.execute(
                insert(connection, part_keys).on_conflict_do_nothing(), key_rows
            )

    # -- receipts -----------------------------------------------------------------------------

    async def apply_receipt(
        self,
        receipt: DeliveryReceipt,
        received_at: datetime | None = None,
        *,
        submitted_id: str | None = None,
    ) -> ReceiptOutcome:
        """Store a delivery receipt and apply it to its part and message; commit before acking.

        ``submitted_id`` is the id the client correlated the receipt to, when it did (tried
        first). The same receipt twice gives ``duplicate`` the second time and changes
        nothing; a receipt for an id not recorded yet is kept as ``pending``; a receipt for
        a part already final is recorded as ``ignored``. ``status_changed`` says when the
        message's own status moved (the service then sends a webhook).
        """
        now = self._now()
        async with self._begin() as connection:
            await lock_keys(connection, _receipt_keys(receipt, submitted_id))
            return await self._apply_receipt_in(
                connection, receipt, received_at or now, submitted_id, now
            )

    async def _apply_receipt_in(
        self,
        connection: AsyncConnection,
        receipt: DeliveryReceipt,
        received: datetime,
        submitted_id: str | None,
        now: datetime,
    ) -> ReceiptOutcome:
        """The body of :meth:`apply_receipt`, inside the caller's transaction."""
        exact = _exact_ids(receipt, submitted_id)
        keys = _receipt_keys(receipt, submitted_id)
        stored = (
            await connection.execute(
                insert(connection, receipts)
                .values(
                    fingerprint=receipt_fingerprint(receipt),
                    receipt_id=storable_id(receipt.id),
                    stat=receipt.stat.value,
                    err=_stored(receipt.err, _ERR_LENGTH),
                    detail=_receipt_detail(receipt, submitted_id),
                    received_at=received,
                )
                .on_conflict_do_nothing(index_elements=["fingerprint"])
                .returning(receipts.c.id)
            )
        ).first()
        if stored is None:
            return await self._duplicate(connection, receipt_fingerprint(receipt))
        target = await self._find_part(connection, exact, keys)
        while target is not None and not await self._still_there(connection, target[0]):
            target = await self._find_part(connection, exact, keys)  # its part is gone too
        if target is None:
            if keys:
                await connection.execute(
                    receipt_keys.insert(), [{"key": k, "receipt_pk": stored.id} for k in keys]
                )
            return ReceiptOutcome(ReceiptResult.PENDING)
        message_id, part_no = target
        return await self._apply(connection, stored.id, message_id, part_no, now)

    async def _still_there(self, connection: AsyncConnection, message_id: str) -> bool:
        """Lock the row of ``message_id`` (PostgreSQL) and say whether it is still there.

        A retention purge may have deleted the message while this transaction waited for its
        row, after it found the part: the receipt is then kept unmatched, as one that came
        after the purge would be. (SQLite's writers take turns: nothing moves meanwhile.)
        """
        if not self._postgresql:
            return True
        found = await connection.scalar(
            sa.select(messages.c.id).where(messages.c.id == message_id).with_for_update()
        )
        return found is not None

    async def apply_receipts(
        self,
        batch: Sequence[tuple[DeliveryReceipt, str | None]],
        received_at: datetime | None = None,
    ) -> list[ReceiptOutcome]:
        """:meth:`apply_receipt` for many ``(receipt, submitted_id)`` in one transaction.

        Outcomes in input order. A new receipt that names a submitted part by its exact id
        (the common case) is applied with a handful of set-based statements whatever the batch
        size; duplicates, receipts waiting for their submit and anything unusual take the
        one-receipt path in the same transaction. The store ends as the receipts applied one at
        a time in input order would leave it: a message's receipts are applied in that order
        (once one takes the one-receipt path, its later ones do too), its status derived after
        each, each change in its history. ``status_changed`` is set on one outcome per message
        on the set-based path (the last receipt that moved it), which also writes one webhook
        per message, from its status before to its status after. All or nothing.
        """
        if not batch:
            return []
        now = self._now()
        received = received_at or now
        outcomes: list[ReceiptOutcome | None] = [None] * len(batch)
        fingerprints = [receipt_fingerprint(r) for r, _ in batch]
        exacts = [_exact_ids(r, sub) for r, sub in batch]
        keys = [_receipt_keys(r, sub) for r, sub in batch]
        async with self._begin() as connection:
            await lock_keys(connection, (k for receipt_keys_ in keys for k in receipt_keys_))
            known = {
                row.fingerprint
                for row in await fetch_in(
                    connection, _KNOWN_FINGERPRINTS, sorted(set(fingerprints))
                )
            }
            when = read_time(connection)
            # smsc_id -> (part, its submitted_at): the most recently submitted part wins
            candidates: dict[str, tuple[sa.Row[Any], datetime]] = {}
            for row in await fetch_in(
                connection, _PARTS_BY_SMSC_ID, sorted({i for e in exacts for i in e})
            ):
                submitted = _sortable(when(row.submitted_at))
                best = candidates.get(row.smsc_id)
                if best is None or submitted > best[1]:
                    candidates[row.smsc_id] = (row, submitted)
            parts: list[sa.Row[Any] | None] = []
            for exact in exacts:
                found = [candidates[i] for i in exact if i in candidates]
                parts.append(max(found, key=lambda pair: pair[1])[0] if found else None)
            # The messages a receipt with no exact match may go to (by its keys), for those
            # that are not repeats: their later receipts must wait for it.
            reach: dict[str, set[str]] = {}
            unexact = {
                k
                for index, part in enumerate(parts)
                if part is None and fingerprints[index] not in known
                for k in keys[index]
            }
            for row in await fetch_in(connection, _MESSAGES_BY_PART_KEY, sorted(unexact)):
                reach.setdefault(row.key, set()).add(row.message_id)
            fast: list[tuple[int, sa.Row[Any]]] = []
            slow: list[int] = []
            used: set[tuple[str, int]] = set()  # parts with a receipt on the fast path
            detoured: set[str] = set()  # messages with a receipt on the slow path
            for index, fingerprint in enumerate(fingerprints):
                part = parts[index]
                if fingerprint in known:  # a repeat changes nothing, wherever it goes
                    slow.append(index)
                    continue
                known.add(fingerprint)
                if part is None:
                    slow.append(index)
                    detoured.update(m for k in keys[index] for m in reach.get(k, ()))
                elif part.message_id in detoured or (part.message_id, part.part_no) in used:
                    slow.append(index)
                    detoured.add(part.message_id)
                else:
                    used.add((part.message_id, part.part_no))
                    fast.append((index, part))
            # Every message these receipts may change, locked at once, in one order (FOR UPDATE
            # on PostgreSQL: part updates per message in turn, as _apply does): the set-based
            # path's, and those the one-receipt path may go to (its part's, or any holding one
            # of its keys). Locked as each receipt came, the batches of two instances could
            # each hold a message the other waits for: a deadlock.
            touched = {part.message_id for _, part in fast}
            for index in slow:
                part = parts[index]
                if part is not None:
                    touched.add(part.message_id)
                else:
                    touched.update(m for k in keys[index] for m in reach.get(k, ()))
            locked: dict[str, Any] = {}
            if touched:
                locked = {
                    row.id: row
                    for row in await fetch_in(
                        connection, _MESSAGES_TO_UPDATE, sorted(touched), lock=True
                    )
                }
            if any(part.message_id not in locked for _, part in fast):
                # deleted by a retention purge since their parts were read (PostgreSQL):
                # their receipts take the one-receipt path, which keeps them unmatched
                slow = sorted([*slow, *(i for i, p in fast if p.message_id not in locked)])
                fast = [(i, p) for i, p in fast if p.message_id in locked]
            if fast:
                for index, outcome in await self._receipts_fast(
                    connection, batch, fingerprints, fast, locked, received=received, now=now
                ):
                    outcomes[index] = outcome
            for index in slow:
                receipt, submitted_id = batch[index]
                outcomes[index] = await self._apply_receipt_in(
                    connection, receipt, received, submitted_id, now
                )
        return [o for o in outcomes if o is not None]

    async def _receipts_fast(
        self,
        connection: AsyncConnection,
        batch: Sequence[tuple[DeliveryReceipt, str | None]],
        fingerprints: Sequence[str],
        fast: Sequence[tuple[int, sa.Row[Any]]],
        before: dict[str, Any],
        *,
        received: datetime,
        now: datetime,
    ) -> list[tuple[int, ReceiptOutcome]]:
        """Apply the simple receipts of a batch: store, update parts, derive statuses.

        ``before`` has the row of each of their messages, read under its lock. The parts'
        states are read under those locks too: the candidates were read before them, and
        another process may have made a part final meanwhile (a receipt for an earlier id of
        the part, which takes other key locks).
        """
        message_ids = sorted({part.message_id for _, part in fast})
        part_states: dict[str, dict[int, MessageStatus]] = {}
        for row in await fetch_in(connection, _PART_STATES, message_ids):
            part_states.setdefault(row.message_id, {})[row.part_no] = MessageStatus(row.status)
        stamp = driver_time(connection)
        received_value, now_value = stamp(received), stamp(now)
        received_json = json_scalar(received.isoformat())
        receipt_kind = EventKind.RECEIPT.value
        stored = []
        updates = []
        ignored: set[int] = set()
        history = []  # rows of the history entries, details as JSON
        statuses = {m: MessageStatus(before[m].status) for m in message_ids}
        moved: dict[str, int] = {}  # message id -> the receipt that last changed its status
        after: dict[int, MessageStatus] = {}  # receipt -> its message's status after it
        for index, part in fast:
            receipt, submitted_id = batch[index]
            receipt_id, err = storable_id(receipt.id), _stored(receipt.err, _ERR_LENGTH)
            stat = receipt.stat._value_
            stored.append(
                (
                    fingerprints[index],
                    receipt_id,
                    stat,
                    err,
                    _receipt_detail_text(receipt, submitted_id),
                    received_value,
                    part.message_id,
                    part.part_no,
                    now_value,
                )
            )
            message_id = part.message_id
            states = part_states[message_id]
            current = states[part.part_no]
            new = _receipt_status(receipt.stat, receipt.intermediate)
            applies = new is not None and (
                current in _PENDING_PART
                or (current is MessageStatus.ACCEPTED and new is not MessageStatus.ACCEPTED)
            )
            if applies:
                assert new is not None
                states[part.part_no] = new
                updates.append((new.value, err, received_value, part.message_id, part.part_no))
            elif new is not None:
                ignored.add(index)
            # json_text({"part": ..., "id": ..., "stat": ..., "err": ..., "received_at": ...,
            # "ignored": ..., ["status": {"from": ..., "to": ...}]}), written out
            detail = (
                f'{{"part": {json_scalar(part.part_no)}, "id": {json_scalar(receipt_id)}, '
                f'"stat": {json_scalar(stat)}, "err": {json_scalar(err)}, '
                f'"received_at": {received_json}, '
                f'"ignored": {"true" if index in ignored else "false"}'
            )
            # as _derive after each receipt: a status once final stays, whatever comes next
            status = statuses[message_id]
            if not (status.is_final or status in CLAIMABLE_STATUSES):
                derived = derive_status(states.values())
                if derived != status:
                    statuses[message_id] = derived
                    moved[message_id] = index
                    # in its receipt's entry, which stands for both (see to_events)
                    detail += f', "status": {_status_json(status, derived)}'
            history.append((message_id, now_value, receipt_kind, detail + "}"))
            after[index] = statuses[message_id]
        await execute_many(connection, _INSERT_MATCHED_RECEIPT, stored)
        await execute_many(connection, _APPLY_RECEIPT_TO_PART, updates)
        await add_event_rows(connection, history)
        changes = {m: statuses[m] for m in moved}  # message id -> its new status
        if changes:
            await execute_many(
                connection,
                _SET_MESSAGE_STATUS,
                [
                    (
                        new.value,
                        now_value,
                        None if new is MessageStatus.SUBMITTED else now_value,  # finished_at
                        message_id,
                    )
                    for message_id, new in changes.items()
                ],
            )
            notify = [m for m in changes if before[m].callback_url or self.webhook_url]
            if notify:
                updated = (
                    await connection.execute(sa.select(messages).where(messages.c.id.in_(notify)))
                ).all()
                await self._notify_status(
                    connection, now, [(u, before[u.id].status) for u in updated]
                )
        return [
            (
                index,
                ReceiptOutcome(
                    ReceiptResult.IGNORED if index in ignored else ReceiptResult.APPLIED,
                    message_id=part.message_id,
                    part_no=part.part_no,
                    message_status=after[index],
                    status_changed=moved.get(part.message_id) == index,
                ),
            )
            for index, part in fast
        ]

    async def _duplicate(self, connection: AsyncConnection, fingerprint: str) -> ReceiptOutcome:
        """The outcome for a receipt seen before: where it went, nothing changed."""
        row = (
            await connection.execute(
                sa.select(receipts.c.message_id, receipts.c.part_no, messages.c.status)
                .select_from(receipts.outerjoin(messages, messages.c.id == receipts.c.message_id))
                .where(receipts.c.fingerprint == fingerprint)
            )
        ).one()
        return ReceiptOutcome(
            ReceiptResult.DUPLICATE,
            message_id=row.message_id,
            part_no=row.part_no,
            message_status=None if row.status is None else MessageStatus(row.status),
        )

    async def _find_part(
        self, connection: AsyncConnection, exact: Sequence[str], keys: Iterable[str]
    ) -> tuple[str, int] | None:
        """The part a receipt belongs to: exact SMSC id first, then normalised keys.

        Several candidates (SMSCs recycle ids) go to the most recently submitted part.
        """
        p = message_parts.c
        row = (
            await connection.execute(
                sa.select(p.message_id, p.part_no)
                .where(p.smsc_id.in_(exact))
                .order_by(p.submitted_at.desc())
                .limit(1)
            )
        ).first()
        if row is None:
            row = (
                await connection.execute(
                    sa.select(part_keys.c.message_id, part_keys.c.part_no)
                    .select_from(
                        part_keys.join(
                            message_parts,
                            sa.and_(
                                p.message_id == part_keys.c.message_id,
                                p.part_no == part_keys.c.part_no,
                            ),
                        )
                    )
                    .where(part_keys.c.key.in_(sorted(keys)))
                    .order_by(p.submitted_at.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else (row.message_id, row.part_no)

    async def _match_pending(
        self,
        connection: AsyncConnection,
        *,
        message_id: str,
        part_no: int,
        smsc_id: str,
        keys: frozenset[str],
        now: datetime,
    ) -> int:
        """Apply receipts that were waiting for this SMSC id, in order of arrival.

        Only receipts received since the message was created (less :data:`_CLOCK_MARGIN`, for
        instances' clocks): an older one is for another message whose SMSC id this one reuses
        (SMSCs with short or restarting counters recycle ids), and would end this one at once.

        Two lookups, each through its index (the unmatched receipts' ``receipt_id``, the keys'
        primary key), joined: as one condition with OR, both backends read every unmatched
        receipt, and unknown receipts are kept for months (a second of SQLite's write lock,
        and of the event loop, per 500,000 of them, for each part recorded).
        """
        r, k = receipts.c, receipt_keys.c
        created: datetime = (  # the caller holds the message's row: it is there
            await connection.execute(
                sa.select(messages.c.created_at).where(messages.c.id == message_id)
            )
        ).scalar_one()
        not_before = created - _CLOCK_MARGIN
        by_id = sa.select(r.id, r.received_at).where(
            r.message_id.is_(None), r.receipt_id == smsc_id, r.received_at >= not_before
        )
        by_key = (
            sa.select(r.id, r.received_at)
            .select_from(receipt_keys.join(receipts, r.id == k.receipt_pk))
            .where(k.key.in_(sorted(keys)), r.message_id.is_(None), r.received_at >= not_before)
        )
        found = sa.union(by_id, by_key).subquery()
        waiting = (
            await connection.execute(
                sa.select(found.c.id).order_by(found.c.received_at, found.c.id)
            )
        ).all()
        for row in waiting:
            await self._apply(connection, row.id, message_id, part_no, now, derive=False)
        return len(waiting)

    async def _apply(
        self,
        connection: AsyncConnection,
        receipt_pk: int,
        message_id: str,
        part_no: int,
        now: datetime,
        *,
        derive: bool = True,
    ) -> ReceiptOutcome:
        """Link a stored receipt to a part, update the part, then the message status."""
        await self._locked_row(connection, message_id)  # order part updates per message
        stored = to_receipt(
            (
                await connection.execute(
                    sa.update(receipts)
                    .where(receipts.c.id == receipt_pk)
                    .values(message_id=message_id, part_no=part_no, matched_at=now)
                    .returning(*receipts.c)
                )
            ).one()
        )
        await connection.execute(
            sa.delete(receipt_keys).where(receipt_keys.c.receipt_pk == receipt_pk)
        )
        p = message_parts.c
        part = (
            await connection.execute(
                sa.select(message_parts).where(p.message_id == message_id, p.part_no == part_no)
            )
        ).one()
        current = MessageStatus(part.status)
        new = _receipt_status(stored.stat, bool(stored.detail.get("intermediate")))
        applies = new is not None and (
            current in _PENDING_PART
            or (current is MessageStatus.ACCEPTED and new is not MessageStatus.ACCEPTED)
        )
        if applies:
            assert new is not None
            await connection.execute(
                sa.update(message_parts)
                .where(p.message_id == message_id, p.part_no == part_no)
                .values(status=new.value, error_code=stored.err, receipt_at=stored.received_at)
            )
        ignored = new is not None and not applies
        entry = {
            "part": part_no,
            "id": stored.receipt_id,
            "stat": stored.stat.value,
            "err": stored.err,
            "received_at": stored.received_at.isoformat(),
            "ignored": ignored,
        }
        status: MessageStatus | None = None
        changed = False
        if derive:
            status, changed = await self._derive(connection, message_id, now, receipt=entry)
        else:
            await add_events(connection, now, [(message_id, EventKind.RECEIPT, entry)])
        return ReceiptOutcome(
            ReceiptResult.IGNORED if ignored else ReceiptResult.APPLIED,
            message_id=message_id,
            part_no=part_no,
            message_status=status,
            status_changed=changed,
        )

    async def _derive(
        self,
        connection: AsyncConnection,
        message_id: str,
        now: datetime,
        *,
        receipt: dict[str, Any] | None = None,
    ) -> tuple[MessageStatus, bool]:
        """Set the message status from its parts (never leaving a final one, nor the queue).

        A change writes its history entry and its webhook (when one is configured).
        ``receipt``: the history detail of the receipt that led here, written too, with the
        change it caused in the same entry (see :func:`~o2sms.store.rows.to_events`).
        """
        row = (
            await connection.execute(
                sa.select(messages.c.status).where(messages.c.id == message_id)
            )
        ).one()
        current = MessageStatus(row.status)
        statuses = (
            await connection.execute(
                sa.select(message_parts.c.status).where(message_parts.c.message_id == message_id)
            )
        ).scalars()
        new = derive_status(MessageStatus(s) for s in statuses)
        if current.is_final or current in CLAIMABLE_STATUSES or new == current:
            if receipt is not None:
                await add_events(connection, now, [(message_id, EventKind.RECEIPT, receipt)])
            return current, False
        updated = (
            await connection.execute(
                sa.update(messages)
                .where(messages.c.id == message_id)
                .values(
                    status=new.value,
                    updated_at=now,
                    finished_at=None if new is MessageStatus.SUBMITTED else now,
                )
                .returning(*messages.c)
            )
        ).one()
        change = {"from": current.value, "to": new.value}
        await add_events(
            connection,
            now,
            [
                (message_id, EventKind.STATUS, change)
                if receipt is None
                else (message_id, EventKind.RECEIPT, {**receipt, "status": change})
            ],
        )
        await self._notify_status(connection, now, [(updated, current.value)])
        return new, True

    # -- inbound ------------------------------------------------------------------------------

    async def record_inbound(
        self, sms: NewInbound, received_at: datetime | None = None
    ) -> InboundMessage:
        """Store a mobile-originated SMS (before its deliver_sm_resp is sent).

        With a global ``webhook_url`` its ``inbound.sms`` webhook is written in the same
        transaction. A NUL character in the text (UCS-2 0x0000, Latin-1 0x00) is stored as
        U+FFFD: PostgreSQL text cannot hold it, and a refused SMS would come back for ever.
        """
        now = self._now()
        received = received_at or now
        values = {
            "source": sms.source,
            "destination": sms.destination,
            "text": sms.text.replace("\x00", "\ufffd"),
            "data_coding": sms.data_coding,
            "parts": sms.parts,
            "session": sms.session,
            "received_at": received,
        }
        async with self._begin() as connection:
            row = (
                await connection.execute(inbound.insert().values(**values).returning(*inbound.c))
            ).one()
            await self._notify_inbound(connection, now, row)
        return to_inbound(row)

    async def list_inbound(
        self, *, limit: int = 50, before_id: int | None = None
    ) -> list[InboundMessage]:
        """Inbound SMS newest first; pass the last id as ``before_id`` for the next page."""
        query = sa.select(inbound).order_by(inbound.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(inbound.c.id < before_id)
        async with self._reader.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [to_inbound(row) for row in rows]

    # -- upkeep -------------------------------------------------------------------------------

    async def clock_offset(self) -> float | None:
        """Seconds this store's clock runs ahead of the PostgreSQL server's (negative: behind);
        None on SQLite, whose processes share one host and so one clock.

        Leases, schedules and retries are compared with each instance's own clock, so the
        clocks of instances sharing one queue must agree: one running ahead by most of a lease
        takes over the messages another is still sending, and they go out twice.
        """
        if not self._postgresql:
            return None
        async with self._reader.connect() as connection:
            before = self._now()
            server = await connection.scalar(sa.select(sa.func.clock_timestamp()))
            after = self._now()
        assert isinstance(server, datetime)
        return ((before - server) + (after - server)).total_seconds() / 2

    async def analyze(self) -> None:
        """Refresh the planner's statistics (``ANALYZE``; sampled on both backends).

        A store that grows from empty on a server without autovacuum keeps the plans made
        for empty tables: sequential scans that grow with every message. The service runs
        this periodically; it is cheap (both backends sample) and harmless when autovacuum runs.

        PostgreSQL samples 300 rows per unit of ``default_statistics_target``: 30,000 rows at
        its default of 100, whose every column is then sorted (the texts by collation), about
        120 ms for ``messages`` alone, several times in the store's first minute. These
        plans need the table sizes and a coarse picture of each column, so the target is 10
        here (3,000 rows, about a tenth of the work), like SQLite's ``analysis_limit`` below.
        Columns given their own target (``ALTER TABLE ... SET STATISTICS``) keep it.
        """
        async with self._engine.connect() as connection:
            if self._postgresql:
                await connection.exec_driver_sql("SET LOCAL default_statistics_target = 10")
                for table in (messages, message_parts, part_keys, receipts, receipt_keys):
                    await connection.exec_driver_sql(f"ANALYZE {table.name}")
            else:
                # Sampled: at most ~1,000 rows an index, so a large file is analysed quickly.
                await connection.exec_driver_sql("PRAGMA analysis_limit = 1000")
                await connection.exec_driver_sql("ANALYZE")
            await connection.commit()

    # -- retention ----------------------------------------------------------------------------

    async def purge(
        self,
        *,
        text_after: timedelta | None = None,
        delete_after: timedelta | None = None,
        batch: int = PURGE_BATCH,
    ) -> PurgeResult:
        """Retention, ``batch`` rows a transaction.

        ``text_after``: blank the text of messages settled longer ago than that; the row,
        parts and history stay. A message is settled once finished (delivered, or any
        reported or final state), or once submitted when no receipt ever came (a route
        without reports, a receipt lost): after the period, none will.
        ``delete_after``: delete messages settled longer ago than that (with parts, keys,
        history, matched receipts and webhooks), inbound SMS (with their webhooks), unmatched
        receipts and delivered or failed webhooks older than that. Queued and scheduled
        messages, and those being sent, are never touched; nor is a message or inbound SMS
        whose webhook is still being retried (pending, before its ``give_up_at``): a later run
        deletes it, so a retention shorter than the webhooks' retry time loses no webhook.

        Each transaction takes at most ``batch`` messages (or inbound SMS, receipts, webhooks)
        with everything that hangs on them, so a large backlog (the first run on an old store)
        never holds SQLite's write lock for long; a message is deleted whole or not at all.
        """
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        now = self._now()
        texts = 0 if text_after is None else await self._purge_texts(now - text_after, now, batch)
        if delete_after is None:
            return PurgeResult(texts=texts)
        cutoff = now - delete_after
        deleted = await self._delete_messages(cutoff, now, batch)
        inbound_deleted, webhooks_deleted = await self._delete_inbound(cutoff, now, batch)
        return PurgeResult(
            texts=texts,
            messages=deleted.messages,
            inbound=inbound_deleted,
            receipts=deleted.receipts + await self._delete_unmatched(cutoff, batch),
            webhooks=deleted.webhooks + webhooks_deleted,
        )

    @staticmethod
    def _settled_arms(cutoff: datetime) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
        """The two kinds of message settled (see :meth:`purge`) at or before ``cutoff``:
        finished, and submitted with no receipt. Each is found through an index."""
        c = messages.c
        finished = sa.and_(c.finished_at.is_not(None), c.finished_at <= cutoff)
        unreported = sa.and_(
            c.status == MessageStatus.SUBMITTED.value,
            c.finished_at.is_(None),
            c.submitted_at <= cutoff,
            # Nearly always implied (a message is submitted once due); it lets the claim index
            # (status, next_attempt_at) read just the old rows, not every submitted one. The
            # exception, a submit recorded late after another worker scheduled a retry, is
            # found by a later run, at most a retry's delay later.
            c.next_attempt_at <= cutoff,
        )
        return finished, unreported

    @classmethod
    def _settled_before(cls, cutoff: datetime) -> sa.ColumnElement[bool]:
        """Messages settled (see :meth:`purge`) at or before ``cutoff``."""
        return sa.or_(*cls._settled_arms(cutoff))

    async def _purge_texts(self, cutoff: datetime, now: datetime, batch: int) -> int:
        """Blank texts, ``batch`` messages a transaction.

        Each kind of settled message is walked once, in index order (``finished_at``;
        ``next_attempt_at`` for the unreported), :data:`_PURGE_READ_AHEAD` batches read at a
        time in a read transaction, each read going on from where the last stopped: the walk
        also meets the settled rows whose text is already gone (no index tells them apart),
        and must meet each only once. Each update checks again that the message is still
        settled with its text.
        """
        c = messages.c
        read_ahead = batch * _PURGE_READ_AHEAD
        total = 0
        finished, unreported = self._settled_arms(cutoff)
        for key, settled in ((c.finished_at, finished), (c.next_attempt_at, unreported)):
            due = sa.and_(settled, c.text.is_not(None))
            query = sa.select(key, c.id).where(due).order_by(key, c.id).limit(read_ahead)
            after: tuple[datetime, str] | None = None
            while True:
                page = query
                if after is not None:
                    page = page.where(key >= after[0], sa.or_(key > after[0], c.id > after[1]))
                async with self._reader.begin() as connection:
                    # Off the event loop's thread on SQLite: it may walk millions of rows.
                    rows = (await connection.execute(page.prefix_with(OFF_LOOP))).all()
                ids = [row.id for row in rows]
                for start in range(0, len(ids), batch):
                    async with self._begin() as connection:
                        total += (
                            await connection.execute(
                                sa.update(messages)
                                .where(c.id.in_(ids[start : start + batch]), due)
                                .values(text=None, text_purged_at=now)
                            )
                        ).rowcount
                if len(rows) < read_ahead:
                    break
                after = (rows[-1][0], rows[-1][1])
        return total

    async def _delete_messages(self, cutoff: datetime, now: datetime, batch: int) -> PurgeResult:
        """Delete settled messages with their parts, keys, history, receipts and webhooks."""
        c = messages.c
        deleted = PurgeResult()
        while True:
            async with self._begin() as connection:
                doomed = (
                    sa.select(c.id)
                    .where(
                        self._settled_before(cutoff),
                        ~_pending_webhook(webhooks.c.message_id, c.id, now),
                    )
                    .limit(batch)
                )
                if connection.dialect.name == "postgresql":
                    # Locked, none of them can change meanwhile: a receipt for one waits, then
                    # finds it gone and is kept unmatched. (SQLite's write lock does the same.)
                    doomed = doomed.with_for_update()
                ids = list((await connection.execute(doomed)).scalars())
                if ids:
                    w = webhooks.c
                    their_webhooks = sa.select(w.id).where(w.message_id.in_(ids))
                    await connection.execute(
                        sa.delete(webhook_attempts).where(
                            webhook_attempts.c.webhook_id.in_(their_webhooks)
                        )
                    )
                    webhooks_deleted = (
                        await connection.execute(sa.delete(webhooks).where(w.message_id.in_(ids)))
                    ).rowcount
                    for table in (message_events, part_keys, message_parts):
                        await connection.execute(
                            sa.delete(table).where(table.c.message_id.in_(ids))
                        )
                    await connection.execute(
                        sa.delete(receipt_keys).where(
                            receipt_keys.c.receipt_pk.in_(
                                sa.select(receipts.c.id).where(receipts.c.message_id.in_(ids))
                            )
                        )
                    )
                    receipts_deleted = (
                        await connection.execute(
                            sa.delete(receipts).where(receipts.c.message_id.in_(ids))
                        )
                    ).rowcount
                    await connection.execute(sa.delete(messages).where(c.id.in_(ids)))
                    deleted = PurgeResult(
                        messages=deleted.messages + len(ids),
                        webhooks=deleted.webhooks + webhooks_deleted,
                        receipts=deleted.receipts + receipts_deleted,
                    )
            if len(ids) < batch:
                return deleted

    async def _delete_inbound(self, cutoff: datetime, now: datetime, batch: int) -> tuple[int, int]:
        """Delete old inbound SMS and old finished webhooks; (inbound, webhooks) deleted."""
        w = webhooks.c
        old_inbound = sa.select(inbound.c.id).where(
            inbound.c.received_at <= cutoff, ~_pending_webhook(w.inbound_id, inbound.c.id, now)
        )
        old_webhooks = sa.select(w.id).where(
            sa.or_(
                w.inbound_id.in_(old_inbound),
                sa.and_(w.status != WebhookStatus.PENDING.value, w.created_at <= cutoff),
            )
        )
        webhooks_deleted = 0
        while True:
            async with self._begin() as connection:
                ids = list((await connection.execute(old_webhooks.limit(batch))).scalars())
                if ids:
                    await connection.execute(
                        sa.delete(webhook_attempts).where(webhook_attempts.c.webhook_id.in_(ids))
                    )
                    webhooks_deleted += (
                        await connection.execute(sa.delete(webhooks).where(w.id.in_(ids)))
                    ).rowcount
            if len(ids) < batch:
                break
        inbound_deleted = 0
        while True:
            async with self._begin() as connection:
                ids = list((await connection.execute(old_inbound.limit(batch))).scalars())
                if ids:
                    # A webhook written since the loop above still holds on to its SMS.
                    await connection.execute(
                        sa.delete(webhook_attempts).where(
                            webhook_attempts.c.webhook_id.in_(
                                sa.select(w.id).where(w.inbound_id.in_(ids))
                            )
                        )
                    )
                    webhooks_deleted += (
                        await connection.execute(sa.delete(webhooks).where(w.inbound_id.in_(ids)))
                    ).rowcount
                    inbound_deleted += (
                        await connection.execute(sa.delete(inbound).where(inbound.c.id.in_(ids)))
                    ).rowcount
            if len(ids) < batch:
                return inbound_deleted, webhooks_deleted

    async def _delete_unmatched(self, cutoff: datetime, batch: int) -> int:
        """Delete receipts that never found their message, older than ``cutoff``."""
        r = receipts.c
        total = 0
        while True:
            async with self._begin() as connection:
                ids = list(
                    (
                        await connection.execute(
                            sa.select(r.id)
                            .where(r.message_id.is_(None), r.received_at <= cutoff)
                            .limit(batch)
                        )
                    ).scalars()
                )
                if ids:
                    await connection.execute(
                        sa.delete(receipt_keys).where(receipt_keys.c.receipt_pk.in_(ids))
                    )
                    total += (
                        await connection.execute(
                            # matched since it was read (PostgreSQL, another instance): kept
                            sa.delete(receipts).where(r.id.in_(ids), r.message_id.is_(None))
                        )
                    ).rowcount
            if len(ids) < batch:
                return total


async def open_store(
    url: str | Path,
    *,
    schema: str | None = None,
    clock: Clock = utc_now,
    max_attempts: int = 10,
    retry_base: float = 2.0,
    retry_cap: float = 300.0,
    run_migrations: bool = True,
    engine: AsyncEngine | None = None,
    webhook_url: str | None = None,
    webhook_retry_for: float = DEFAULT_WEBHOOK_RETRY_FOR,
    webhook_retry_base: float = DEFAULT_WEBHOOK_RETRY_BASE,
    webhook_retry_cap: float = DEFAULT_WEBHOOK_RETRY_CAP,
    **engine_options: Any,
) -> MessageStore:
    """Open the store at ``url`` (file path, ``sqlite://`` or ``postgresql://``), migrated.

    ``engine_options`` go to :func:`o2sms.store.engine.create_engine` (``busy_timeout``,
    ``synchronous``, ``pool_size``...). ``engine`` uses an existing engine instead.
    ``webhook_url`` is the global webhook receiver (a message's ``callback_url`` wins; inbound
    SMS go only here); ``webhook_retry_for`` seconds bound the retries of each webhook, with
    backoff from ``webhook_retry_base`` doubling up to ``webhook_retry_cap`` seconds. Validate
    URLs first (``o2sms.service.webhooks.check_callback_url``): the store does not.
    """
    if engine is None:
        engine = create_engine(url, schema=schema, **engine_options)
    try:
        if run_migrations:
            await migrate(engine)
    except BaseException:
        await engine.dispose()
        raise
    return MessageStore(
        engine,
        clock=clock,
        max_attempts=max_attempts,
        retry_base=retry_base,
        retry_cap=retry_cap,
        webhook_url=webhook_url,
        webhook_retry_for=webhook_retry_for,
        webhook_retry_base=webhook_retry_base,
        webhook_retry_cap=webhook_retry_cap,
    )
