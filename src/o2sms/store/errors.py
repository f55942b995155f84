"""Errors the store raises on purpose; all are :class:`o2sms.errors.O2smsError`.

::

    StoreError
    ├── MessageNotFoundError (also LookupError)  no message with that id
    ├── NotCancellableError                     the message is no longer waiting in the queue
    ├── IdempotencyConflictError                an idempotency key used for another request
    └── LeaseLostError                          the worker's lease is gone (expired, re-claimed)
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from o2sms.errors import O2smsError

__all__ = [
    "IdempotencyConflictError",
    "LeaseLostError",
    "MessageNotFoundError",
    "NotCancellableError",
    "StoreError",
    "unavailable",
]


class StoreError(O2smsError):
    """Base class of the store's own errors (database errors pass through unchanged)."""


class MessageNotFoundError(StoreError, LookupError):
    """No message has this id."""

    def __init__(self, message_id: str) -> None:
        super().__init__(f"no message with id {message_id!r}")
        self.message_id = message_id


class NotCancellableError(StoreError):
    """Cancel came too late: the message is being sent or has been (``status`` says which)."""

    def __init__(self, message_id: str, status: str, *, leased: bool = False) -> None:
        why = "a worker is sending it" if leased else f"its status is {status}"
        super().__init__(f"message {message_id} cannot be cancelled: {why}")
        self.message_id = message_id
        self.status = status
        self.leased = leased


class IdempotencyConflictError(StoreError):
    """An idempotency key was used before for a request with other recipients or text.

    Nothing of that request is written: ``enqueue_requests`` puts this error in the request's
    place and stores the others; ``enqueue``/``enqueue_many`` raise it and write nothing.
    """

    def __init__(self, key: str) -> None:
        super().__init__("the idempotency key was used before for a different request")
        self.key = key


class LeaseLostError(StoreError):
    """The worker no longer holds the message's lease, so it must not requeue it."""

    def __init__(self, message_id: str, worker_id: str, holder: str | None) -> None:
        super().__init__(
            f"worker {worker_id!r} does not hold the lease of message {message_id}"
            f" (held by {holder!r})"
        )
        self.message_id = message_id
        self.worker_id = worker_id
        self.holder = holder


_PG_OUTAGE_CLASSES: Final = ("08", "53", "57")
"""SQLSTATE classes of a server that is away: connection exception, insufficient resources
(too many clients), operator intervention (shutting down, starting up)."""
_PG_TRY_AGAIN: Final = frozenset({"40001", "40P01", "55P03"})
"""Serialization failure, deadlock, lock not available (lock_timeout): tried again, it works."""
_PG_GONE_FOR_GOOD: Final = frozenset({"57P04"})  #: the database was dropped
_SQLITE_OUTAGE: Final = frozenset({5, 6, 10, 13, 14, 15})
"""Primary SQLite result codes of a store that is away or busy: BUSY, LOCKED, IOERR, FULL,
CANTOPEN, PROTOCOL."""


def unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the store cannot do the work now but may soon: the server is
    away, busy, out of connections or chose this transaction as a deadlock's victim.

    Such an error passes; any other (a statement the database refuses) would come again.
    """
    if isinstance(exc, (DisconnectionError, PoolTimeoutError, TimeoutError, OSError)):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc.orig, OSError):
        return True
    if hasattr(exc.orig, "sqlstate"):  # asyncpg, through SQLAlchemy's adapter: SQLSTATE only
        # None: the driver's own complaint (too many arguments, a statement still running)
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if not isinstance(sqlstate, str) or sqlstate in _PG_GONE_FOR_GOOD:
            return False
        return sqlstate[:2] in _PG_OUTAGE_CLASSES or sqlstate in _PG_TRY_AGAIN
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_OUTAGE
    return isinstance(exc, (OperationalError, InterfaceError))  # nothing finer to go by
