"""Partial indexes: index only the rows a lookup can ask for.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Most messages have no client reference, are not leased, are not finished yet, and most
receipts are matched at once; yet every such row had an entry in the index on that column.
On PostgreSQL each update of a message (claim, submit, receipt) writes a new row version and
a new entry in every index of the table, so the empty entries cost write work per message.
The lookups only ever ask for rows where the column is set (``reference = ?``, a worker's
leased rows, finished rows older than the retention time, receipts still waiting for their
message), so the indexes now hold just those rows. Measured in docs/benchmarks.md.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

#: (index, table, column, the rows it keeps)
PARTIAL = (
    ("ix_messages_reference", "messages", "reference", "reference IS NOT NULL"),
    ("ix_messages_lease_owner", "messages", "lease_owner", "lease_owner IS NOT NULL"),
    ("ix_messages_finished_at", "messages", "finished_at", "finished_at IS NOT NULL"),
    ("ix_receipts_receipt_id", "receipts", "receipt_id", "message_id IS NULL"),
)


def upgrade() -> None:
    """Rebuild each index with its row condition."""
    for name, table, column, where in PARTIAL:
        op.drop_index(name, table_name=table)
        condition = sa.text(where)
        op.create_index(name, table, [column], sqlite_where=condition, postgresql_where=condition)


def downgrade() -> None:
    """Back to whole-table indexes."""
    for name, table, column, _ in PARTIAL:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [column])
