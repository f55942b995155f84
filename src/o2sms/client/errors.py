"""Errors of the asyncio client.

Every one says whether sending again may succeed (:attr:`ClientError.retriable`), because
the caller must decide between resending and reporting a final failure::

    ClientError (O2smsError)
    ├── ConnectError (also ConnectionError)   could not open the TCP/TLS connection   retriable
    ├── BindError                             the SMSC refused the bind (command_status);
    │                                         retriable when the account's sessions are all
    │                                         taken or the SMSC is busy, not for credentials
    ├── BindConfigError                       the configured bind breaks SMPP's field limits
    ├── ConnectionLost (also ConnectionError) the link died with the request outstanding   retriable
    │   └── NotSentError                      the link closed or unbound before the request
    │       │                                 went out: it never reached the SMSC      retriable
    │       └── WithdrawnError                the pool took it back unsent to wait out a
    │                                         throttling pause (resent by the pool itself)
    ├── ResponseTimeout (also TimeoutError)   no response within the response timeout  retriable
    ├── UnreadableResponse                    the response could not be decoded: the SMSC
    │                                         may or may not have acted on it          retriable
    ├── SubmitError                           the SMSC answered with an error status; retriable
    │                                         for throttling, queue full and system errors
    ├── AddressError (also ValueError)        a sender or destination that cannot be used
    ├── EventNotConfirmedError                an event was left unhandled: the SMSC redelivers it
    └── ClientClosedError                     the client was closed
"""

from __future__ import annotations

from o2sms.errors import O2smsError
from o2sms.smpp.constants import CommandStatus, describe_status

RETRIABLE_STATUSES = frozenset(
    {
        CommandStatus.ESME_RTHROTTLED,
        CommandStatus.ESME_RMSGQFUL,
        CommandStatus.ESME_RSYSERR,
        CommandStatus.ESME_RX_T_APPN,
    }
)
"""command_status values after which the same submit may succeed later."""

BACKOFF_STATUSES = frozenset({CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL})
"""command_status values that ask the whole account to slow down."""

SESSION_LIMIT_STATUSES = frozenset({CommandStatus.ESME_RBINDFAIL, CommandStatus.ESME_RALYBND})
"""Bind refusals an SMSC gives when the account has all its sessions: wait, then bind again."""

BIND_RETRIABLE_STATUSES = SESSION_LIMIT_STATUSES | RETRIABLE_STATUSES
"""Bind refusals after which binding again later may succeed (the session keeps trying)."""


def again(error: ClientError) -> ClientError:
    """A stored ``error``, ready to be raised once more: its earlier traceback is dropped,
    or every raise would add its frames (and their locals) to it for as long as it is kept."""
    return error.with_traceback(None)


class ClientError(O2smsError):
    """Base of the client's errors."""

    retriable: bool = False


class ConnectError(ClientError, ConnectionError):
    """The TCP or TLS connection could not be opened (every configured host was tried)."""

    retriable = True


class BindError(ClientError):
    """The SMSC refused the bind; ``command_status`` says why.

    ``retriable`` is True for refusals that pass (the session limit reached: ESME_RBINDFAIL on
    the simulator, as the seed names no status; a busy SMSC): the session backs off and binds
    again.
    """

    def __init__(self, command_status: int, *, infobip: bool = True) -> None:
        super().__init__(f"bind refused: {describe_status(command_status, infobip=infobip)}")
        self.command_status = command_status
        self.retriable = command_status in BIND_RETRIABLE_STATUSES


class BindConfigError(ClientError):
    """The configured bind cannot be sent (a field over its SMPP length): fix the settings."""


class ConnectionLost(ClientError, ConnectionError):  # noqa: N818 - reads as an event, like asyncio's
    """The connection died while the request was outstanding; it may not have been delivered."""

    retriable = True


class NotSentError(ConnectionLost):
    """The request never went out: its connection closed or was unbound while it waited.

    The SMSC cannot have it, so sending it again cannot duplicate it. The pool resends such
    requests on another bound session (or after the reconnect) by itself; this error reaches
    the caller only when that did not happen within ``send()``'s ``retry_timeout``.
    """


class WithdrawnError(NotSentError):
    """Taken back, unsent, from a session's queue when the pool paused for throttling.

    The pool sends it again after the pause, through its pacing, so a pause holds what was
    queued behind the window as well as what was not yet admitted.
    """


class ResponseTimeout(ClientError, TimeoutError):  # noqa: N818
    """No response within the response timeout; the SMSC may or may not have the message."""

    retriable = True


class UnreadableResponse(ClientError):  # noqa: N818 - reads as an event, like ResponseTimeout
    """The SMSC answered, but its response could not be decoded.

    Its command_status cannot be trusted either, so the SMSC may or may not have the message:
    like a lost link, not like a refusal.
    """

    retriable = True


class SubmitError(ClientError):
    """The SMSC answered a request with an error command_status (or a generic_nack)."""

    def __init__(self, command_status: int, *, infobip: bool = True) -> None:
        super().__init__(describe_status(command_status, infobip=infobip))
        self.command_status = command_status
        self.retriable = command_status in RETRIABLE_STATUSES


class AddressError(ClientError, ValueError):
    """A sender or destination address that cannot be used; nothing was sent."""


class EventNotConfirmedError(ClientError):
    """The application left the events() loop holding an event: it is not acknowledged."""


class ClientClosedError(ClientError):
    """The client or session was closed before the request could be sent."""
