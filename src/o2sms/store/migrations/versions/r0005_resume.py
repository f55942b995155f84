"""Resume: a long message retried after some parts went out sends only the others.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

``messages.resume`` keeps, as JSON, the concatenation reference and the SMSC message_id of each
part that went out before the retry (None for the others), so the retry sends the missing
parts under the same reference and the phone joins them with the first ones.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add the nullable ``resume`` column (no rewrite of existing rows)."""
    op.add_column("messages", sa.Column("resume", sa.Text, nullable=True))


def downgrade() -> None:
    """Drop ``resume``: a retry then sends every part again.

    A plain ALTER TABLE (SQLite has DROP COLUMN since 3.35): a batch rebuild would drop and
    recreate ``messages``, and with foreign keys on that deletes every part and event.
    """
    op.drop_column("messages", "resume")
