"""The initial store schema: messages, parts, keys, history, receipts, inbound.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Written out in full (not generated from ``schema.py`` at run time) so this revision keeps
creating exactly this schema whatever later revisions change; a test checks that head and
``schema.metadata`` agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from o2sms.store.schema import UtcDateTime

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table and index of the first schema."""
    op.create_table(
        "messages",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False, server_default=""),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("recipient", sa.String(32), nullable=False),
        sa.Column("sender", sa.String(32)),
        sa.Column("text", sa.Text),
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
        sa.Column("error_code", sa.Integer),
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
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint("owner", "idempotency_key", name="uq_messages_owner_idempotency_key"),
    )
    op.create_index("ix_messages_status_next_attempt_at", "messages", ["status", "next_attempt_at"])
    op.create_index("ix_messages_created_at_id", "messages", ["created_at", "id"])
    op.create_index("ix_messages_reference", "messages", ["reference"])
    op.create_index("ix_messages_lease_owner", "messages", ["lease_owner"])
    op.create_index("ix_messages_finished_at", "messages", ["finished_at"])

    op.create_table(
        "message_parts",
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("part_no", sa.Integer, nullable=False),
        sa.Column("smsc_id", sa.String(80)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(16)),
        sa.Column("submitted_at", UtcDateTime),
        sa.Column("receipt_at", UtcDateTime),
        sa.PrimaryKeyConstraint("message_id", "part_no", name="pk_message_parts"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_message_parts_message_id",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_message_parts_smsc_id", "message_parts", ["smsc_id"])

    op.create_table(
        "part_keys",
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("part_no", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("key", "message_id", "part_no", name="pk_part_keys"),
        sa.ForeignKeyConstraint(
            ["message_id", "part_no"],
            ["message_parts.message_id", "message_parts.part_no"],
            name="fk_part_keys_message_id",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_part_keys_message_id", "part_keys", ["message_id"])

    op.create_table(
        "message_events",
        sa.Column("id", _big_id(), nullable=False, autoincrement=True),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_message_events"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_message_events_message_id",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_message_events_message_id_id", "message_events", ["message_id", "id"])

    op.create_table(
        "receipts",
        sa.Column("id", _big_id(), nullable=False, autoincrement=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("receipt_id", sa.String(80), nullable=False),
        sa.Column("stat", sa.String(16), nullable=False),
        sa.Column("err", sa.String(16), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("message_id", sa.String(32)),
        sa.Column("part_no", sa.Integer),
        sa.Column("matched_at", UtcDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_receipts"),
        sa.UniqueConstraint("fingerprint", name="uq_receipts_fingerprint"),
    )
    op.create_index("ix_receipts_receipt_id", "receipts", ["receipt_id"])
    op.create_index("ix_receipts_message_id", "receipts", ["message_id"])
    op.create_index("ix_receipts_received_at", "receipts", ["received_at"])

    op.create_table(
        "receipt_keys",
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("receipt_pk", _big_id(), nullable=False),
        sa.PrimaryKeyConstraint("key", "receipt_pk", name="pk_receipt_keys"),
        sa.ForeignKeyConstraint(
            ["receipt_pk"],
            ["receipts.id"],
            name="fk_receipt_keys_receipt_pk",
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "inbound",
        sa.Column("id", _big_id(), nullable=False, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("destination", sa.String(32), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("data_coding", sa.Integer, nullable=False, server_default="0"),
        sa.Column("parts", sa.Integer, nullable=False, server_default="1"),
        sa.Column("session", sa.String(64), nullable=False, server_default=""),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inbound"),
    )
    op.create_index("ix_inbound_received_at", "inbound", ["received_at"])


def downgrade() -> None:
    """Drop everything (children first)."""
    for table in (
        "inbound",
        "receipt_keys",
        "receipts",
        "message_events",
        "part_keys",
        "message_parts",
        "messages",
    ):
        op.drop_table(table)
