"""Error codes: ``messages.error_code`` holds any command_status, an unsigned 32-bit value.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08

A submit_sm_resp's command_status runs to 0xFFFFFFFF; PostgreSQL's INTEGER stops at
2,147,483,647, so a final error of 0x80000000 or above could not be recorded there (SQLite's
INTEGER is 64-bit already: nothing changes there). The column becomes BIGINT on PostgreSQL,
which rewrites ``messages`` under an exclusive lock: stop the old instances first.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Widen ``error_code`` to BIGINT (PostgreSQL only)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE messages ALTER COLUMN error_code TYPE BIGINT")


def downgrade() -> None:
    """Back to INTEGER; a code that does not fit is dropped (its name and meaning stay)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE messages ALTER COLUMN error_code TYPE INTEGER USING CASE WHEN "
        "error_code BETWEEN -2147483648 AND 2147483647 THEN error_code END"
    )
