"""Fill factor: half of each ``message_parts`` page is left free for its rows' updates.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

On PostgreSQL an update writes a new version of the row, on the same page when there is room.
A part is updated once, by its receipt, and no index covers the columns that update changes,
so when the new version fits on the old one's page the update is "HOT": no index entry at
all, and less WAL. With full pages (the default) only about one receipt update in five found
room; with half of each page free nearly all do (``pg_stat_user_tables.n_tup_hot_upd``,
97 % in ``benchmarks/bench_service.py``). Inserts leave the room from now on; pages written
before keep their rows as they are. SQLite has no such setting: nothing changes there.
Measured in docs/benchmarks.md.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

#: (table, percent of each page that inserts fill)
FILL = (("message_parts", 50),)


def upgrade() -> None:
    """Set each table's fill factor (PostgreSQL only; a catalogue change, no rewrite)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, percent in FILL:
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {percent})")


def downgrade() -> None:
    """Back to full pages."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, _ in FILL:
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
