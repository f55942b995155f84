"""Alembic migrations of the store, run by :func:`o2sms.store.engine.migrate` at open."""
