"""Alembic environment: runs on the connection :func:`o2sms.store.engine.migrate` passes in.

The store is always migrated programmatically (no ``alembic.ini``, no URL here): the caller
owns the connection and its transaction, so the migration commits together with its lock.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from o2sms.store.schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "o2sms migrations run through o2sms.store.engine.migrate(), which passes a connection"
    )
context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
