"""The durable message store and queue of the o2sms connector (SQLAlchemy 2 async Core).

SQLite (a file, WAL) by default, PostgreSQL by URL for several ``o2sms serve`` processes that
share one queue. The schema is created and upgraded by Alembic migrations when the store opens.
See ``docs/store.md`` for the schema, statuses, leases and receipt correlation.

Modules, each importing only those above it: ``errors``, ``models`` (dataclasses and enums,
no SQL), ``schema`` (tables), ``engine`` (URL, SQLite tuning, migrations), ``rows`` (row
conversion and shared SQL helpers), ``outbox`` (the webhook outbox: a webhook is written in
the transaction of each status change or inbound SMS, then claimed by senders), ``queue``
(enqueue, claim with lease, retry, cancel), ``messages`` (:class:`MessageStore`: outcomes,
receipts, inbound, reads, retention).
"""

from __future__ import annotations

from o2sms.store.engine import create_engine, current_revision, migrate, store_url
from o2sms.store.errors import (
    IdempotencyConflictError,
    LeaseLostError,
    MessageNotFoundError,
    NotCancellableError,
    StoreError,
)
from o2sms.store.messages import MessageStore, open_store, receipt_fingerprint
from o2sms.store.models import (
    FINAL_STATUSES,
    PART_SEVERITY,
    EnqueueResult,
    EventKind,
    InboundMessage,
    Message,
    MessageEvent,
    MessageStatus,
    NewInbound,
    NewMessage,
    Page,
    Part,
    PartialSend,
    PurgeResult,
    ReceiptOutcome,
    ReceiptResult,
    StoredReceipt,
    Webhook,
    WebhookAttempt,
    WebhookEvent,
    WebhookStatus,
    derive_status,
    new_message_id,
)
from o2sms.store.outbox import (
    DEFAULT_WEBHOOK_RETRY_BASE,
    DEFAULT_WEBHOOK_RETRY_CAP,
    DEFAULT_WEBHOOK_RETRY_FOR,
    WebhookOutbox,
)
from o2sms.store.queue import MessageQueue, backoff_delay

__all__ = [
    "DEFAULT_WEBHOOK_RETRY_BASE",
    "DEFAULT_WEBHOOK_RETRY_CAP",
    "DEFAULT_WEBHOOK_RETRY_FOR",
    "FINAL_STATUSES",
    "PART_SEVERITY",
    "EnqueueResult",
    "EventKind",
    "IdempotencyConflictError",
    "InboundMessage",
    "LeaseLostError",
    "Message",
    "MessageEvent",
    "MessageNotFoundError",
    "MessageQueue",
    "MessageStatus",
    "MessageStore",
    "NewInbound",
    "NewMessage",
    "NotCancellableError",
    "Page",
    "Part",
    "PartialSend",
    "PurgeResult",
    "ReceiptOutcome",
    "ReceiptResult",
    "StoreError",
    "StoredReceipt",
    "Webhook",
    "WebhookAttempt",
    "WebhookEvent",
    "WebhookOutbox",
    "WebhookStatus",
    "backoff_delay",
    "create_engine",
    "current_revision",
    "derive_status",
    "migrate",
    "new_message_id",
    "open_store",
    "receipt_fingerprint",
    "store_url",
]
