"""Claim order: the claim index ends with ``id``, so a claim reads only the rows it takes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

A claim takes the oldest due messages, ordered by ``(next_attempt_at, id)``. With the old
index on ``(status, next_attempt_at)`` and both waiting statuses in one query, the database
had to sort every due message on each claim: work and memory grew with the backlog. The
queue now asks per status, and this index returns each status's rows already in claim order.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Replace the claim index by one that also orders ties by id."""
    op.create_index(
        "ix_messages_status_next_attempt_at_id", "messages", ["status", "next_attempt_at", "id"]
    )
    op.drop_index("ix_messages_status_next_attempt_at", table_name="messages")


def downgrade() -> None:
    """Back to the claim index of revision 0002."""
    op.create_index("ix_messages_status_next_attempt_at", "messages", ["status", "next_attempt_at"])
    op.drop_index("ix_messages_status_next_attempt_at_id", table_name="messages")
