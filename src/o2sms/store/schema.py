"""The tables, as one SQLAlchemy Core ``MetaData`` for SQLite and PostgreSQL alike.

This is the schema the code is written against; the Alembic migrations in ``migrations/``
create it (a test checks that both agree). Portable types only, plus :class:`UtcDateTime`,
which makes SQLite and PostgreSQL hand back the same timezone-aware UTC datetimes.

Tables: ``messages`` (one row per SMS to one recipient, the queue itself), ``message_parts``
(per submitted part: SMSC id and state), ``part_keys`` (normalised correlation keys of every
SMSC id a part ever had), ``message_events`` (history), ``receipts`` (every receipt received,
matched or not; unmatched ones have no ``message_id``), ``receipt_keys`` (correlation keys of
unmatched receipts), ``inbound`` (mobile-originated SMS), ``webhooks`` (the transactional
outbox of webhook notifications, written in the same transaction as the change they report)
and ``webhook_attempts`` (every delivery attempt of a webhook).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

__all__ = [
    "ID_LENGTH",
    "KEY_LENGTH",
    "UtcDateTime",
    "aware_utc",
    "from_postgresql",
    "from_sqlite_text",
    "inbound",
    "message_events",
    "message_parts",
    "messages",
    "metadata",
    "part_keys",
    "receipt_keys",
    "receipts",
    "sqlite_text",
    "webhook_attempts",
    "webhooks",
]

ID_LENGTH = 32
"""Length of our message ids (ULIDs are 26 characters; callers may bring their own)."""
KEY_LENGTH = 80
"""Length of a correlation key: an SMSC id (at most 64) or its decimal value (at most 78)."""


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no such type, so the value is stored as naive
    UTC text, which also keeps its ordering right. Naive datetimes are refused on the way in.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """``TIMESTAMP WITH TIME ZONE`` where it exists, a plain DATETIME elsewhere."""
        return dialect.type_descriptor(sa.DateTime(timezone=dialect.name == "postgresql"))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; drop the zone for SQLite, whose DATETIME text has none."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store takes timezone-aware times")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Back to an aware UTC datetime whatever the backend returned."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # The processors below do what the two methods above and SQLite's DATETIME text format do,
    # in one call each and with datetime's C methods: every row the store writes carries
    # several timestamps, and the generic composition was a tenth of the service's CPU.

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any]:
        """One function from an aware datetime to what the driver takes."""
        if dialect.name == "postgresql":
            return aware_utc
        return sqlite_text

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any]:
        """One function from what the driver returns to an aware UTC datetime."""
        if dialect.name == "postgresql":
            return from_postgresql
        return from_sqlite_text


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store takes timezone-aware times")
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def aware_utc(value: datetime | None) -> datetime | None:
    """How PostgreSQL takes a :class:`UtcDateTime` (for statements that bypass the type)."""
    return None if value is None else _aware(value)


def sqlite_text(value: datetime | None) -> str | None:
    """How SQLite stores a :class:`UtcDateTime`: SQLAlchemy's DATETIME text in UTC,
    ``YYYY-MM-DD HH:MM:SS.ffffff`` (for statements that bypass the type)."""
    if value is None:
        return None
    return _aware(value).replace(tzinfo=None).isoformat(" ", "microseconds")


def from_sqlite_text(value: str | None) -> datetime | None:
    """The inverse of :func:`sqlite_text`."""
    if value is None:
        return None
    try:
        # One C call for the zone too: several times cheaper than ``.replace(tzinfo=UTC)``,
        # and a claim reads four of these per message.
        parsed = datetime.fromisoformat(value + "+00:00")
        if parsed.tzinfo is not None:  # a date alone ignores the suffix
            return parsed
    except ValueError:  # text with an offset of its own (written by hand?): the slow way
        pass
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def from_postgresql(value: datetime | None) -> datetime | None:
    """An aware UTC datetime from what asyncpg returns."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _big_id() -> sa.types.TypeEngine[int]:
    """A 64-bit key that still auto-increments on SQLite (only INTEGER PRIMARY KEY does)."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _only_where(condition: str) -> dict[str, Any]:
    """Options that make an index partial on both dialects: it keeps only rows matching."""
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


messages = sa.Table(
    "messages",
    metadata,
    sa.Column("id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False, server_default=""),
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("recipient", sa.String(32), nullable=False),
    sa.Column("sender", sa.String(32)),
    sa.Column("text", sa.Text),  # None once purged by retention
    sa.Column("encoding", sa.String(16)),
    sa.Column("parts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("flash", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("schedule_at", UtcDateTime),
    sa.Column("validity_seconds", sa.Integer),
    sa.Column("reference", sa.String(255)),
    sa.Column("callback_url", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("resends", sa.Integer, nullable=False, server_default="0"),
    # a command_status: unsigned 32-bit, past PostgreSQL's INTEGER (revision 0007)
    sa.Column("error_code", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
    sa.Column("error_name", sa.String(64)),
    sa.Column("error_detail", sa.Text),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_until", UtcDateTime),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("submitted_at", UtcDateTime),
    sa.Column("finished_at", UtcDateTime),
    sa.Column("text_purged_at", UtcDateTime),
    # JSON of models.PartialSend: the parts that went out before a retry (revision 0005)
    sa.Column("resume", sa.Text),
    sa.UniqueConstraint("owner", "idempotency_key"),  # NULL keys never collide
    sa.Index(None, "status", "next_attempt_at", "id"),  # claim, in claim order per status
    sa.Index(None, "created_at", "id"),  # list, newest first
    # Partial: lookups only ask for rows where the column is set (revision 0004).
    sa.Index(None, "reference", **_only_where("reference IS NOT NULL")),
    sa.Index(None, "lease_owner", **_only_where("lease_owner IS NOT NULL")),
    sa.Index(None, "finished_at", **_only_where("finished_at IS NOT NULL")),  # retention
)

message_parts = sa.Table(
    "message_parts",
    metadata,
    sa.Column(
        "message_id",
        sa.String(ID_LENGTH),
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("part_no", sa.Integer, primary_key=True),  # 1-based
    sa.Column("smsc_id", sa.String(KEY_LENGTH)),  # exactly as submit_sm_resp gave it
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error_code", sa.String(16)),
    sa.Column("submitted_at", UtcDateTime),
    sa.Column("receipt_at", UtcDateTime),
    sa.Index(None, "smsc_id"),
    # Half of each page left free (revision 0006) for the receipt's update, which changes no
    # indexed column: on the same page PostgreSQL writes no index entry for the new version.
    postgresql_with={"fillfactor": 50},
)

part_keys = sa.Table(
    "part_keys",
    metadata,
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("message_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("part_no", sa.Integer, primary_key=True),
    sa.ForeignKeyConstraint(
        ["message_id", "part_no"],
        ["message_parts.message_id", "message_parts.part_no"],
        ondelete="CASCADE",
    ),
    sa.Index(None, "message_id"),
)

message_events = sa.Table(
    "message_events",
    metadata,
    sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
    sa.Column(
        "message_id",
        sa.String(ID_LENGTH),
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Index(None, "message_id", "id"),
)

receipts = sa.Table(
    "receipts",
    metadata,
    sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
    sa.Column("receipt_id", sa.String(KEY_LENGTH), nullable=False),
    sa.Column("stat", sa.String(16), nullable=False),
    sa.Column("err", sa.String(16), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("message_id", sa.String(ID_LENGTH)),  # None: not matched (yet)
    sa.Column("part_no", sa.Integer),
    sa.Column("matched_at", UtcDateTime),
    sa.Index(None, "receipt_id", **_only_where("message_id IS NULL")),  # waiting receipts
    sa.Index(None, "message_id"),
    sa.Index(None, "received_at"),
)

receipt_keys = sa.Table(
    "receipt_keys",
    metadata,
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column(
        "receipt_pk",
        _big_id(),
        sa.ForeignKey("receipts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)

inbound = sa.Table(
    "inbound",
    metadata,
    sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("destination", sa.String(32), nullable=False),
    sa.Column("text", sa.Text),
    sa.Column("data_coding", sa.Integer, nullable=False, server_default="0"),
    sa.Column("parts", sa.Integer, nullable=False, server_default="1"),
    sa.Column("session", sa.String(64), nullable=False, server_default=""),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Index(None, "received_at"),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", _big_id(), primary_key=True, autoincrement=True),  # order of creation
    sa.Column("event_id", sa.String(ID_LENGTH), nullable=False, unique=True),  # for receivers
    sa.Column(
        "message_id",
        sa.String(ID_LENGTH),
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
    ),
    sa.Column("inbound_id", _big_id(), sa.ForeignKey("inbound.id", ondelete="CASCADE")),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),  # "message.status", "inbound.sms"
    sa.Column("payload", sa.JSON, nullable=False),  # the body, as of the change
    sa.Column("status", sa.String(16), nullable=False),  # pending, delivered, failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_until", UtcDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("delivered_at", UtcDateTime),
    sa.Column("give_up_at", UtcDateTime, nullable=False),
    sa.Index(None, "status", "next_attempt_at"),  # claim
    sa.Index(None, "message_id", "id"),  # timeline, per-message order
    sa.Index(None, "inbound_id"),
    sa.Index(None, "created_at"),  # retention
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", _big_id(), primary_key=True, autoincrement=True),
    sa.Column(
        "webhook_id",
        _big_id(),
        sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("status_code", sa.Integer),  # None: no HTTP answer (refused, timeout, policy)
    sa.Column("error", sa.Text),  # None when delivered
    sa.Column("duration_ms", sa.Integer, nullable=False, server_default="0"),
    sa.Index(None, "webhook_id", "id"),
)
