"""What the store holds and hands back: plain dataclasses and enums, no SQLAlchemy.

The service and the HTTP layer work with these values only, so the SQL side can change
(another backend, another layout) without touching them. The one rule with some thought in
it lives here too: :func:`derive_status`, the message status computed from its parts' states.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from o2sms.fastinit import fast_init
from o2sms.receipts import ReceiptStat

__all__ = [
    "CLAIMABLE_STATUSES",
    "FINAL_STATUSES",
    "PART_SEVERITY",
    "EnqueueResult",
    "EventKind",
    "InboundMessage",
    "Message",
    "MessageEvent",
    "MessageStatus",
    "NewInbound",
    "NewMessage",
    "Page",
    "Part",
    "PartialSend",
    "PurgeResult",
    "ReceiptOutcome",
    "ReceiptResult",
    "StoredReceipt",
    "Webhook",
    "WebhookAttempt",
    "WebhookEvent",
    "WebhookStatus",
    "derive_status",
    "new_message_id",
    "part_status_for",
]


class MessageStatus(StrEnum):
    """The life of a message (and, except ``scheduled``/``cancelled``, of each of its parts).

    Values are lowercase because they are what the HTTP API and webhooks show.
    """

    QUEUED = "queued"  #: stored, waiting for a worker (also while a worker holds its lease)
    SCHEDULED = "scheduled"  #: stored with a schedule_at in the future; claimable from then on
    SUBMITTED = "submitted"  #: every part has an SMSC message_id; no final receipt for all yet
    ACCEPTED = "accepted"  #: ACCEPTD receipt; final for most SMSCs, a later receipt may upgrade it
    DELIVERED = "delivered"  #: DELIVRD for every part (final)
    UNDELIVERED = "undelivered"  #: UNDELIV (final)
    EXPIRED = "expired"  #: EXPIRED: validity passed at the SMSC (final)
    REJECTED = "rejected"  #: REJECTD receipt (final)
    DELETED = "deleted"  #: DELETED receipt (final)
    UNKNOWN = "unknown"  #: UNKNOWN / "DELIVERY UNKNOWN" receipt (final)
    FAILED = "failed"  #: a final submit error, or out of attempts: given up (final)
    CANCELLED = "cancelled"  #: cancelled by the application while still queued (final)

    @property
    def is_final(self) -> bool:
        """True when nothing more is expected (``accepted`` is not: it may still be upgraded)."""
        return self in FINAL_STATUSES


FINAL_STATUSES: Final = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.EXPIRED,
        MessageStatus.REJECTED,
        MessageStatus.DELETED,
        MessageStatus.UNKNOWN,
        MessageStatus.FAILED,
        MessageStatus.CANCELLED,
    }
)
"""Statuses a message never leaves (receipts for it are still recorded in its history)."""

CLAIMABLE_STATUSES: Final = (MessageStatus.QUEUED, MessageStatus.SCHEDULED)
"""Statuses a worker may claim (once ``next_attempt_at`` has come and no live lease holds it)."""

PART_SEVERITY: Final[tuple[MessageStatus, ...]] = (
    MessageStatus.FAILED,
    MessageStatus.REJECTED,
    MessageStatus.UNDELIVERED,
    MessageStatus.EXPIRED,
    MessageStatus.DELETED,
    MessageStatus.UNKNOWN,
    MessageStatus.ACCEPTED,
    MessageStatus.DELIVERED,
)
"""Reported part states, worst first: a message takes the worst state among its parts.

``failed`` (our own submit error) is worst because the recipient certainly lacks that part;
``rejected`` next (the SMSC refused it), then the network's verdicts ``undelivered``,
``expired``, ``deleted``; ``unknown`` says nothing either way, ``accepted`` is nearly good.
"""

_PENDING_PARTS: Final = frozenset({MessageStatus.QUEUED, MessageStatus.SUBMITTED})

_RECEIPT_STATUS: Final[Mapping[ReceiptStat, MessageStatus]] = {
    ReceiptStat.DELIVRD: MessageStatus.DELIVERED,
    ReceiptStat.EXPIRED: MessageStatus.EXPIRED,
    ReceiptStat.DELETED: MessageStatus.DELETED,
    ReceiptStat.UNDELIV: MessageStatus.UNDELIVERED,
    ReceiptStat.ACCEPTD: MessageStatus.ACCEPTED,
    ReceiptStat.UNKNOWN: MessageStatus.UNKNOWN,
    ReceiptStat.REJECTD: MessageStatus.REJECTED,
}


def part_status_for(stat: ReceiptStat) -> MessageStatus | None:
    """The part state a receipt stat means; None for ENROUTE (an intermediate notice)."""
    return _RECEIPT_STATUS.get(stat)


def derive_status(part_statuses: Iterable[MessageStatus]) -> MessageStatus:
    """A submitted message's status from its parts' states.

    * any part ``failed`` -> ``failed`` (a part never went out: the text is incomplete);
    * any part still pending (``queued``/``submitted``, no receipt yet) -> ``submitted``;
    * otherwise the worst state by :data:`PART_SEVERITY`, so ``delivered`` only when every
      part is delivered. No parts at all reads as ``submitted``.

    The message changes to a reported state once, when the last part reports, instead of
    flickering between part verdicts; a later receipt may only upgrade ``accepted``.
    """
    statuses = set(part_statuses)
    if MessageStatus.FAILED in statuses:
        return MessageStatus.FAILED
    if not statuses or statuses & _PENDING_PARTS:
        return MessageStatus.SUBMITTED
    for status in PART_SEVERITY:
        if status in statuses:
            return status
    return MessageStatus.SUBMITTED  # pragma: no cover - parts never hold other values


CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base-32 digits, in value order: the alphabet of message ids."""
_RANDOM_DIGITS: Final = bytes.maketrans(
    bytes(range(256)), bytes(ord(CROCKFORD[byte & 31]) for byte in range(256))
)
"""A random byte to a random base-32 digit (its low five bits): 256 is a multiple of 32."""
_clock_digits: tuple[int, str] = (-1, "")  #: the last millisecond and its ten digits


def new_message_id() -> str:
    """A ULID: 26 Crockford base-32 characters, 48 bits of milliseconds then 80 random bits.

    Ids sort by creation time (handy for pagination and index locality) and need no
    coordination between several ``o2sms serve`` processes. One per message enqueued, so the
    clock's digits are kept for the millisecond and each random digit is one random byte's.
    """
    global _clock_digits  # noqa: PLW0603 - one tuple, replaced whole: safe across threads
    millis = time.time_ns() // 1_000_000
    last, digits = _clock_digits
    if millis != last:
        digits = "".join(CROCKFORD[(millis >> shift) & 31] for shift in range(45, -5, -5))
        _clock_digits = (millis, digits)
    return digits + os.urandom(16).translate(_RANDOM_DIGITS).decode()


class EventKind(StrEnum):
    """The kinds of entries in a message's history (``detail`` holds the specifics)."""

    QUEUED = "queued"  #: enqueued (detail: status, schedule_at)
    LEASE_EXPIRED = "lease_expired"  #: re-claimed after a lease ran out: a possible resend
    RETRY = "retry"  #: retriable submit error, back to the queue (detail: error, delay)
    RELEASED = "released"  #: a worker gave its lease back unsent (shutdown)
    SUBMITTED = "submitted"  #: SMSC message_ids recorded (detail: ids, worker)
    RECEIPT = "receipt"  #: a delivery receipt for one part (detail: part, stat, err, id)
    STATUS = "status"  #: the message's status changed (detail: from, to)
    FAILED = "failed"  #: final failure (detail: error_name, error_detail)
    CANCELLED = "cancelled"  #: cancelled while queued


@fast_init  # one per recipient of every request
@dataclass(frozen=True, slots=True)
class NewMessage:
    """One SMS to one recipient, as the service hands it to :meth:`MessageStore.enqueue`.

    ``owner`` scopes ``idempotency_key``: the pair is unique, so the service puts an API key's
    identifier (never the secret) there for per-key idempotency, or leaves ``""`` for global.
    ``validity`` is relative to submission. ``id`` is generated (a ULID) when not given.
    """

    recipient: str
    text: str
    sender: str | None = None
    encoding: str | None = None
    parts: int = 1
    flash: bool = False
    schedule_at: datetime | None = None
    validity: timedelta | None = None
    reference: str | None = None
    idempotency_key: str | None = None
    owner: str = ""
    callback_url: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Part:
    """One SMS part of a message as submitted: its SMSC id, own state and receipt facts."""

    part_no: int  #: 1-based
    smsc_id: str | None
    status: MessageStatus
    error_code: str | None  #: the receipt's ``err`` text ("000"), None before a receipt
    submitted_at: datetime | None
    receipt_at: datetime | None  #: when the final (or latest applied) receipt was received


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """One entry of a message's history, oldest first by ``id``.

    ``id`` is the history row's: a status change stored in the row of the receipt that caused
    it comes right after that receipt with the same ``id`` (see ``docs/store.md``).
    """

    id: int
    message_id: str
    at: datetime
    kind: EventKind
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PartialSend:
    """A long message interrupted after some parts went out: what its retry needs to send
    only the others, under the same concatenation reference (see ``o2sms.client.Resume``).

    ``message_ids`` has the SMSC message_id of each part sent, None for those still to send.
    """

    concat_reference: int
    message_ids: tuple[str | None, ...]


@fast_init  # one per message claimed, enqueued or read
@dataclass(frozen=True, slots=True)
class Message:
    """A stored message. ``parts`` and ``events`` are filled by ``get`` only.

    ``text`` is None after a retention purge. ``attempts`` counts claims (each may have sent
    the message); ``resends`` counts the claims that followed an expired lease, i.e. times the
    message may have gone out twice. ``lease_owner``/``lease_until`` name the worker holding it.
    ``resend`` is set on the messages ``claim`` returns only: True when that claim took the
    message over from an expired lease (the claim that counted one of ``resends``).
    """

    id: str
    recipient: str
    sender: str | None
    text: str | None
    encoding: str | None
    parts_count: int
    flash: bool
    schedule_at: datetime | None
    validity: timedelta | None
    reference: str | None
    idempotency_key: str | None
    owner: str
    callback_url: str | None
    status: MessageStatus
    attempts: int
    resends: int
    error_code: int | None
    error_name: str | None
    error_detail: str | None
    next_attempt_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    text_purged_at: datetime | None
    #: the parts that went out before the last retry, to send only the others
    partial_send: PartialSend | None = None
    parts: tuple[Part, ...] = ()
    events: tuple[MessageEvent, ...] = ()
    resend: bool = field(default=False, compare=False)


class EnqueueResult:
    """What ``enqueue`` did: ``created`` is False when the idempotency key already existed.

    ``id``, ``recipient`` and ``status`` are the message's. A new message's :attr:`message`
    may be built only when first read (:meth:`deferred`): the HTTP answer reads just those
    three, and building each of a batch's thousands of messages cost more than its insert.
    Treat it as immutable.
    """

    __slots__ = ("_load", "_message", "created", "id", "recipient", "status")

    def __init__(self, message: Message, created: bool) -> None:
        self._message: Message | None = message
        self._load: Callable[[], Message] | None = None
        self.created = created
        self.id = message.id
        self.recipient = message.recipient
        self.status = message.status

    @classmethod
    def deferred(
        cls, id: str, recipient: str, status: MessageStatus, load: Callable[[], Message]
    ) -> EnqueueResult:
        """The result for a message just created, whose :attr:`message` ``load()`` builds."""
        result = cls.__new__(cls)
        result._message = None
        result._load = load
        result.created = True
        result.id = id
        result.recipient = recipient
        result.status = status
        return result

    @property
    def message(self) -> Message:
        """The stored message."""
        message = self._message
        if message is None:
            assert self._load is not None  # set whenever _message is not
            message = self._message = self._load()
            self._load = None
        return message

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EnqueueResult):
            return NotImplemented
        return (self.message, self.created) == (other.message, other.created)

    def __hash__(self) -> int:
        return hash((self.message, self.created))

    def __repr__(self) -> str:
        return f"EnqueueResult(message={self.message!r}, created={self.created!r})"


@dataclass(frozen=True, slots=True)
class Page:
    """One page of ``list_messages``; pass ``next_cursor`` back for the next (None: last page)."""

    items: tuple[Message, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class NewInbound:
    """A mobile-originated SMS to record (the service maps the client's ``InboundSms``)."""

    source: str
    destination: str
    text: str
    data_coding: int = 0
    parts: int = 1
    session: str = ""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A recorded inbound SMS."""

    id: int
    source: str
    destination: str
    text: str | None
    data_coding: int
    parts: int
    session: str
    received_at: datetime


class ReceiptResult(StrEnum):
    """What ``apply_receipt`` did with a receipt."""

    APPLIED = "applied"  #: matched a part and updated it (and perhaps its message)
    DUPLICATE = "duplicate"  #: the same receipt was stored before: nothing changed
    PENDING = "pending"  #: no part has this id yet: kept, applied when the submit is recorded
    IGNORED = "ignored"  #: matched a part already in a final state: recorded, state kept


@fast_init  # one per receipt applied
@dataclass(frozen=True, slots=True)
class ReceiptOutcome:
    """The result of ``apply_receipt``; ``status_changed`` tells the service to notify."""

    result: ReceiptResult
    message_id: str | None = None
    part_no: int | None = None
    message_status: MessageStatus | None = None
    status_changed: bool = False


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    """A receipt as kept in the store; ``message_id`` None means still unmatched."""

    id: int
    receipt_id: str
    stat: ReceiptStat
    err: str
    received_at: datetime
    message_id: str | None
    part_no: int | None
    matched_at: datetime | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """Rows touched by a retention run."""

    texts: int = 0
    messages: int = 0
    inbound: int = 0
    receipts: int = 0
    webhooks: int = 0


class WebhookEvent(StrEnum):
    """What a webhook reports: its JSON ``type`` and the ``X-O2SMS-Event`` header."""

    MESSAGE_STATUS = "message.status"  #: a message's status changed (after it was accepted)
    INBOUND_SMS = "inbound.sms"  #: a mobile-originated SMS arrived


class WebhookStatus(StrEnum):
    """Where a webhook in the outbox stands."""

    PENDING = "pending"  #: not delivered yet: due at ``next_attempt_at`` (or being sent)
    DELIVERED = "delivered"  #: a receiver answered 2xx (final)
    FAILED = "failed"  #: given up: retried until ``give_up_at``, or refused by the URL policy


@dataclass(frozen=True, slots=True)
class Webhook:
    """One notification in the outbox, with the JSON body it sends (``payload``).

    ``id`` orders the outbox (and the webhooks of one message); ``event_id`` is the stable,
    unguessable id receivers see (``X-O2SMS-Webhook-Id`` and the body's ``id``) and use to
    drop repeats, since delivery is at least once. ``attempts`` counts claims for sending.
    """

    id: int
    event_id: str
    event: WebhookEvent
    url: str
    payload: dict[str, Any]
    status: WebhookStatus
    attempts: int
    message_id: str | None
    inbound_id: int | None
    next_attempt_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    give_up_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    """One POST of a webhook (for a message's timeline): the answer or the error, and time.

    ``status_code`` is None when no HTTP answer came (connection refused, timeout, refused by
    the URL policy); ``error`` is None for a delivered attempt.
    """

    id: int
    webhook_id: int
    event_id: str
    event: WebhookEvent
    url: str
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
