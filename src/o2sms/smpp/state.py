"""SMPP 3.4 session states and the one table of which PDU may travel in which state.

Rules (reference section 9, SMPP 3.4 section 2.3 and table 2-1):

1. A connection starts OPEN. Only binds (ESME to SMSC), outbind (SMSC to ESME), enquire_link
   and generic_nack may travel before a bind succeeds.
2. A successful bind_*_resp moves both sides to BOUND_TX, BOUND_RX or BOUND_TRX; a failed
   one leaves the connection OPEN (the SMSC usually closes it). Until the bind_resp is sent
   the connection stays OPEN, as an ESME must wait for it before sending anything else (SMPP
   3.4): a request that needs a bound state is answered ESME_RINVBNDSTS even when it follows
   the bind in the same read, and a second bind is answered ESME_RALYBND. After a refused
   bind, the ESME may bind again.
3. In a bound state a request may travel only if the table below lists that state for the
   request's sender; anything else is answered with its own response carrying
   ESME_RINVBNDSTS (a bind while bound: ESME_RALYBND).
4. unbind or unbind_resp moves the connection to UNBOUND, after which only responses travel;
   the transport then closes and the connection is CLOSED.
5. Responses travel in any state in which their request was outstanding.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from o2sms.smpp.constants import CommandId


class Role(Enum):
    """Which end of the link this connection is."""

    ESME = "esme"  #: the application: binds, submits, receives deliver_sm
    SMSC = "smsc"  #: the message centre (our simulator)

    # Members are singletons equal only to themselves, so hashing by identity keeps the
    # contract; it runs in C, where Enum's hash of the name is a Python call on every
    # may_send() of the send path.
    __hash__ = object.__hash__

    @property
    def peer(self) -> Role:
        """The other end."""
        return _PEER[self]  # a dict: reading members off the class is slow on Python 3.11


_PEER: Final = {Role.ESME: Role.SMSC, Role.SMSC: Role.ESME}


class BindType(Enum):
    """The three ways to bind, by the bind request's command_id."""

    TRANSMITTER = CommandId.BIND_TRANSMITTER
    RECEIVER = CommandId.BIND_RECEIVER
    TRANSCEIVER = CommandId.BIND_TRANSCEIVER

    @property
    def can_submit(self) -> bool:
        """True when the ESME may send submit_sm on this bind."""
        return self is not BindType.RECEIVER

    @property
    def can_receive(self) -> bool:
        """True when the SMSC may send deliver_sm (receipts, inbound SMS) on this bind."""
        return self is not BindType.TRANSMITTER


class SessionState(Enum):
    """Where a connection is in its life (reference section 9)."""

    OPEN = "open"
    BOUND_TX = "bound_tx"
    BOUND_RX = "bound_rx"
    BOUND_TRX = "bound_trx"
    UNBOUND = "unbound"
    CLOSED = "closed"

    __hash__ = object.__hash__  # as Role's: identity, in C (is_bound and may_send hash states)

    @property
    def is_bound(self) -> bool:
        """True in the three bound states."""
        return self in _BOUND


_BOUND: Final = frozenset({SessionState.BOUND_TX, SessionState.BOUND_RX, SessionState.BOUND_TRX})
_TX: Final = frozenset({SessionState.BOUND_TX, SessionState.BOUND_TRX})
_RX: Final = frozenset({SessionState.BOUND_RX, SessionState.BOUND_TRX})
_NONE: Final[frozenset[SessionState]] = frozenset()

BOUND_STATE: Final = {
    BindType.TRANSMITTER: SessionState.BOUND_TX,
    BindType.RECEIVER: SessionState.BOUND_RX,
    BindType.TRANSCEIVER: SessionState.BOUND_TRX,
}
"""The state a successful bind of each type leads to."""

BIND_RESPONSES: Final = {
    CommandId.BIND_TRANSMITTER_RESP: BindType.TRANSMITTER,
    CommandId.BIND_RECEIVER_RESP: BindType.RECEIVER,
    CommandId.BIND_TRANSCEIVER_RESP: BindType.TRANSCEIVER,
}

_ALWAYS: Final = frozenset({SessionState.OPEN}) | _BOUND

# request command_id -> {sender role: states in which that sender may send it}
REQUEST_RULES: Final[dict[int, dict[Role, frozenset[SessionState]]]] = {
    CommandId.BIND_TRANSMITTER: {Role.ESME: frozenset({SessionState.OPEN}), Role.SMSC: _NONE},
    CommandId.BIND_RECEIVER: {Role.ESME: frozenset({SessionState.OPEN}), Role.SMSC: _NONE},
    CommandId.BIND_TRANSCEIVER: {Role.ESME: frozenset({SessionState.OPEN}), Role.SMSC: _NONE},
    CommandId.OUTBIND: {Role.ESME: _NONE, Role.SMSC: frozenset({SessionState.OPEN})},
    CommandId.UNBIND: {Role.ESME: _BOUND, Role.SMSC: _BOUND},
    CommandId.ENQUIRE_LINK: {Role.ESME: _ALWAYS, Role.SMSC: _ALWAYS},
    CommandId.GENERIC_NACK: {Role.ESME: _ALWAYS, Role.SMSC: _ALWAYS},
    CommandId.SUBMIT_SM: {Role.ESME: _TX, Role.SMSC: _NONE},
    CommandId.SUBMIT_MULTI: {Role.ESME: _TX, Role.SMSC: _NONE},
    CommandId.QUERY_SM: {Role.ESME: _TX, Role.SMSC: _NONE},
    CommandId.CANCEL_SM: {Role.ESME: _TX, Role.SMSC: _NONE},
    CommandId.REPLACE_SM: {Role.ESME: _TX, Role.SMSC: _NONE},
    CommandId.DELIVER_SM: {Role.ESME: _NONE, Role.SMSC: _RX},
    CommandId.ALERT_NOTIFICATION: {Role.ESME: _NONE, Role.SMSC: _RX},
    CommandId.DATA_SM: {Role.ESME: _TX, Role.SMSC: _RX},
}
"""Who may send each request in which state; the single source of rule 3."""


def may_send(role: Role, command_id: int, state: SessionState) -> bool:
    """True when ``role`` may send the request ``command_id`` in ``state``."""
    rules = REQUEST_RULES.get(command_id)
    return rules is not None and state in rules[role]
