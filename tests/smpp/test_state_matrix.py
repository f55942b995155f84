"""Which request each end accepts in which state: a hand-written table from reference section 9.

The expected table below is written by hand from the reference (section 9, "Allowed states" and
"Wrong state"), not computed from ``o2sms.smpp.state.REQUEST_RULES``, so it checks that table
rather than restating it. Each request is encoded and fed to a ``Connection`` as raw bytes, with
``conn.state`` set by hand, and the events and the bytes it answers with are checked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import pytest

from o2sms.smpp import (
    AlertNotification,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    CancelSm,
    CommandStatus,
    DataSm,
    DeliverSm,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    ReplaceSm,
    SmeAddress,
    SubmitMulti,
    SubmitSm,
    Unbind,
    UnbindResp,
    encode,
)
from o2sms.smpp.connection import (
    Connection,
    Event,
    PduRejected,
    RequestReceived,
    Unbound,
)
from o2sms.smpp.framer import Framer
from o2sms.smpp.state import Role, SessionState

OPEN = SessionState.OPEN
TX = SessionState.BOUND_TX
RX = SessionState.BOUND_RX
TRX = SessionState.BOUND_TRX
STATES = (OPEN, TX, RX, TRX)

OK: Final = 0  # accepted; a refusal is written as its command_status, never 0
RINVBNDSTS: Final = int(CommandStatus.ESME_RINVBNDSTS)
RALYBND: Final = int(CommandStatus.ESME_RALYBND)
SEQ = 0x1234


# --- small helpers (copied in spirit from test_connection.py, not imported) ------------------


def events(conn: Connection) -> list[Event]:
    out: list[Event] = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def sent_pdus(conn: Connection) -> list[Pdu]:
    framer = Framer()
    framer.feed(conn.data_to_send())
    return list(framer)


@dataclass(frozen=True)
class Row:
    """One request PDU and what the receiving end must do with it in each state."""

    name: str
    make: Callable[[], Pdu]
    expected: Mapping[SessionState, int]  # OK, or the command_status of the refusal
    has_response: bool = True  # False: a refusal is a generic_nack


# --- the SMSC receiving from the ESME (reference section 9) ----------------------------------
# bind_*: OPEN only; while bound -> ESME_RALYBND.
# unbind: bound states only.  enquire_link: every state ("accept in OPEN too").
# submit_sm, submit_multi, query_sm, cancel_sm, replace_sm, data_sm (ESME side): BOUND_TX/TRX
# (replace_sm: "BOUND_TX (3.4 table; allow BOUND_TRX)").
# deliver_sm, alert_notification, outbind: never from an ESME (the SMSC sends them).

_BIND: Final[Mapping[SessionState, int]] = {OPEN: OK, TX: RALYBND, RX: RALYBND, TRX: RALYBND}
_BOUND_ONLY: Final[Mapping[SessionState, int]] = {OPEN: RINVBNDSTS, TX: OK, RX: OK, TRX: OK}
_EVERYWHERE: Final[Mapping[SessionState, int]] = {OPEN: OK, TX: OK, RX: OK, TRX: OK}
_TRANSMIT: Final[Mapping[SessionState, int]] = {OPEN: RINVBNDSTS, TX: OK, RX: RINVBNDSTS, TRX: OK}
_RECEIVE: Final[Mapping[SessionState, int]] = {OPEN: RINVBNDSTS, TX: RINVBNDSTS, RX: OK, TRX: OK}
_NEVER: Final[Mapping[SessionState, int]] = {
    OPEN: RINVBNDSTS,
    TX: RINVBNDSTS,
    RX: RINVBNDSTS,
    TRX: RINVBNDSTS,
}

FROM_ESME = [
    Row("bind_transmitter", lambda: BindTransmitter(system_id="acct", password="pw"), _BIND),
    Row("bind_receiver", lambda: BindReceiver(system_id="acct", password="pw"), _BIND),
    Row("bind_transceiver", lambda: BindTransceiver(system_id="acct", password="pw"), _BIND),
    Row("unbind", Unbind, _BOUND_ONLY),
    Row("enquire_link", EnquireLink, _EVERYWHERE),
    Row(
        "submit_sm",
        lambda: SubmitSm(destination_addr="421900000001", short_message=b"hi"),
        _TRANSMIT,
    ),
    Row(
        "submit_multi",
        lambda: SubmitMulti(
            dest_addresses=(SmeAddress(1, 1, "421900000001"),), short_message=b"hi"
        ),
        _TRANSMIT,
    ),
    Row("query_sm", lambda: QuerySm(message_id="abc", source_addr="1234"), _TRANSMIT),
    Row("cancel_sm", lambda: CancelSm(message_id="abc", source_addr="1234"), _TRANSMIT),
    Row("replace_sm", lambda: ReplaceSm(message_id="abc", short_message=b"new"), _TRANSMIT),
    Row("data_sm", lambda: DataSm(destination_addr="421900000001"), _TRANSMIT),
    Row("deliver_sm", lambda: DeliverSm(source_addr="421900000001"), _NEVER),
    Row("alert_notification", AlertNotification, _NEVER, has_response=False),
    Row("outbind", lambda: Outbind(system_id="smsc", password="pw"), _NEVER, has_response=False),
]

# --- the ESME receiving from the SMSC -------------------------------------------------------
# deliver_sm and alert_notification: BOUND_RX/TRX; data_sm from the SMSC: BOUND_RX/TRX;
# outbind: OPEN only (the SMSC asks the ESME to bind), refused once bound.

FROM_SMSC = [
    Row("deliver_sm", lambda: DeliverSm(source_addr="421900000001"), _RECEIVE),
    Row("alert_notification", AlertNotification, _RECEIVE, has_response=False),
    Row("data_sm", lambda: DataSm(source_addr="421900000001"), _RECEIVE),
    Row(
        "outbind",
        lambda: Outbind(system_id="smsc", password="pw"),
        {OPEN: OK, TX: RINVBNDSTS, RX: RINVBNDSTS, TRX: RINVBNDSTS},
        has_response=False,
    ),
]


def _cases(role: Role, rows: list[Row]) -> list[object]:
    return [
        pytest.param(role, row, state, id=f"{role.value}-{row.name}-{state.value}")
        for row in rows
        for state in STATES
    ]


def _feed(role: Role, state: SessionState, pdu: Pdu) -> tuple[Connection, list[Event]]:
    conn = Connection(role, enquire_link_interval=None)
    conn.state = state
    conn.receive_data(encode(pdu.with_sequence_number(SEQ)), 1.0)
    return conn, events(conn)


@pytest.mark.parametrize(
    ("role", "row", "state"), _cases(Role.SMSC, FROM_ESME) + _cases(Role.ESME, FROM_SMSC)
)
def test_request_acceptance_matches_the_hand_written_state_table(
    role: Role, row: Row, state: SessionState
) -> None:
    request = row.make()
    conn, got = _feed(role, state, request)
    answers = sent_pdus(conn)
    expected = row.expected[state]
    if expected == OK:
        assert not any(isinstance(e, PduRejected) for e in got), got
        if isinstance(request, EnquireLink):
            # Answered by the connection itself.
            assert got == []
            assert answers == [EnquireLinkResp(sequence_number=SEQ)]
        elif isinstance(request, Unbind):
            assert got == [Unbound(by_peer=True)]
            assert answers == [UnbindResp(sequence_number=SEQ)]
            assert conn.state is SessionState.UNBOUND
        else:
            # Handed to the application, which answers it; nothing is sent on its own.
            assert len(got) == 1
            assert isinstance(got[0], RequestReceived)
            assert got[0].pdu.command_id == request.command_id
            assert got[0].pdu.sequence_number == SEQ
            assert answers == []
            assert conn.state is state
        return
    # Refused: one PduRejected event and one answer with the status, same sequence_number.
    assert len(got) == 1, got
    rejected = got[0]
    assert isinstance(rejected, PduRejected)
    assert rejected.error.command_status == expected
    assert len(answers) == 1
    (answer,) = answers
    assert rejected.answer == answer
    assert answer.sequence_number == SEQ
    assert answer.command_status == expected
    if row.has_response:
        assert request.response_class is not None
        assert type(answer) is request.response_class
    else:
        assert request.response_class is None
        assert isinstance(answer, GenericNack)
    assert conn.state is state  # a refusal changes nothing


def test_every_request_class_is_in_the_hand_written_table() -> None:
    # Guard against a new request class slipping past the matrix above.
    names = {row.name for row in FROM_ESME}
    assert names == {
        "bind_transmitter",
        "bind_receiver",
        "bind_transceiver",
        "unbind",
        "enquire_link",
        "submit_sm",
        "submit_multi",
        "query_sm",
        "cancel_sm",
        "replace_sm",
        "data_sm",
        "deliver_sm",
        "alert_notification",
        "outbind",
    }
    for row in FROM_ESME:
        assert row.make().command_id.name.lower() == row.name
