"""Webhooks: the transactional outbox and the record of every delivery attempt.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

``webhooks`` holds one row per notification to send (a message status change or an inbound
SMS), inserted in the same transaction as the change itself, so a committed change always has
its notification and a rolled-back one never does. ``webhook_attempts`` records each POST.
Written out in full, like r0001, so it keeps creating exactly this whatever comes later.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from o2sms.store.schema import UtcDateTime

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``webhooks`` and ``webhook_attempts`` with their indexes."""
    op.create_table(
        "webhooks",
        sa.Column("id", _big_id(), nullable=False, autoincrement=True),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(32)),
        sa.Column("inbound_id", _big_id()),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UtcDateTime, nullable=False),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_until", UtcDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("delivered_at", UtcDateTime),
        sa.Column("give_up_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhooks"),
        sa.UniqueConstraint("event_id", name="uq_webhooks_event_id"),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name="fk_webhooks_message_id",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["inbound_id"],
            ["inbound.id"],
            name="fk_webhooks_inbound_id",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_webhooks_status_next_attempt_at", "webhooks", ["status", "next_attempt_at"])
    op.create_index("ix_webhooks_message_id_id", "webhooks", ["message_id", "id"])
    op.create_index("ix_webhooks_inbound_id", "webhooks", ["inbound_id"])
    op.create_index("ix_webhooks_created_at", "webhooks", ["created_at"])

    op.create_table(
        "webhook_attempts",
        sa.Column("id", _big_id(), nullable=False, autoincrement=True),
        sa.Column("webhook_id", _big_id(), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("duration_ms", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_attempts"),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name="fk_webhook_attempts_webhook_id",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_webhook_attempts_webhook_id_id", "webhook_attempts", ["webhook_id", "id"])


def downgrade() -> None:
    """Drop both tables (attempts first)."""
    op.drop_table("webhook_attempts")
    op.drop_table("webhooks")
