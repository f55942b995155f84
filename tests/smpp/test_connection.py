"""The sans-IO session: two Connections wired back to back, time passed in by hand."""

from __future__ import annotations

import itertools
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms.smpp import (
    PDU_CLASSES,
    AlertNotification,
    BindReceiver,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    CommandId,
    CommandStatus,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    FramingError,
    GenericNack,
    Outbind,
    Pdu,
    QuerySmResp,
    SmeAddress,
    SubmitMulti,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    encode,
)
from o2sms.smpp.connection import (
    Connection,
    ConnectionClosed,
    Event,
    PduRejected,
    RequestExpired,
    RequestReceived,
    ResponseReceived,
    Unbound,
    UnexpectedResponse,
)
from o2sms.smpp.errors import LocalProtocolError, PduEncodeError, WindowFullError
from o2sms.smpp.framer import Framer
from o2sms.smpp.state import REQUEST_RULES, BindType, Role, SessionState


def events(conn: Connection) -> list[Event]:
    out: list[Event] = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def pump(a: Connection, b: Connection, now: float = 0.0) -> None:
    """Move queued bytes both ways until nothing is left."""
    while True:
        ab, ba = a.data_to_send(), b.data_to_send()
        if not ab and not ba:
            return
        if ab:
            b.receive_data(ab, now)
        if ba:
            a.receive_data(ba, now)


def bound_pair(bind: Pdu | None = None, **esme_options: Any) -> tuple[Connection, Connection]:
    esme = Connection(Role.ESME, **esme_options)
    smsc = Connection(Role.SMSC, enquire_link_interval=None)
    esme.send(bind or BindTransceiver(system_id="acct", password="secret"), 0.0)
    pump(esme, smsc)
    (received,) = events(smsc)
    assert isinstance(received, RequestReceived)
    smsc.send(received.pdu.response(system_id="SMSC"), 0.0)
    pump(esme, smsc)
    (answered,) = events(esme)
    assert isinstance(answered, ResponseReceived)
    return esme, smsc


def sent_pdus(conn: Connection) -> list[Pdu]:
    framer = Framer()
    framer.feed(conn.data_to_send())
    return list(framer)


def test_bind_moves_both_sides_to_bound() -> None:
    esme, smsc = bound_pair()
    assert esme.state is smsc.state is SessionState.BOUND_TRX
    assert esme.bind_type is smsc.bind_type is BindType.TRANSCEIVER


def test_failed_bind_stays_open() -> None:
    esme = Connection(Role.ESME)
    smsc = Connection(Role.SMSC)
    esme.send(BindTransmitter(system_id="x", password="bad"), 0.0)
    pump(esme, smsc)
    (received,) = events(smsc)
    assert isinstance(received, RequestReceived)
    smsc.send(received.pdu.response(command_status=CommandStatus.ESME_RINVPASWD), 0.0)
    pump(esme, smsc)
    (answered,) = events(esme)
    assert isinstance(answered, ResponseReceived)
    assert answered.response.command_status == CommandStatus.ESME_RINVPASWD
    assert esme.state is smsc.state is SessionState.OPEN


def test_generic_nack_to_a_bind_never_binds_even_with_status_0() -> None:
    # generic_nack is a negative acknowledgement (SMPP 3.4 4.3): it answers the bind but is
    # no bind_*_resp, so the session stays OPEN whatever its command_status says.
    esme = Connection(Role.ESME)
    esme.send(BindTransceiver(system_id="acct", password="pw"), 0.0)
    esme.data_to_send()
    # generic_nack (0x80000000), command_status 0, sequence_number 1: header only.
    esme.receive_data(bytes.fromhex("00000010 80000000 00000000 00000001"), 0.0)
    (answered,) = events(esme)
    assert isinstance(answered, ResponseReceived)
    assert answered.response == GenericNack(sequence_number=1)
    assert esme.state is SessionState.OPEN
    assert esme.bind_type is None


@pytest.mark.parametrize(
    "wire",
    [
        # bind_transceiver_resp (0x80000009), status 0, sequence_number 1, system_id "SMSC",
        # then TLV sc_interface_version (0x0210) with length 0 (legal: a TLV may be empty);
        # 16 + 5 + 4 = 25 octets
        "00000019 80000009 00000000 00000001 534d534300 0210 0000",
        # the same with length 2 (0x0034) where the type is I1: left out, the bind stands;
        # 16 + 5 + 6 = 27 octets
        "0000001b 80000009 00000000 00000001 534d534300 0210 0002 0034",
    ],
    ids=["empty", "two-octets"],
)
def test_bind_resp_with_an_odd_sc_interface_version_binds(wire: str) -> None:
    esme = Connection(Role.ESME)
    esme.send(BindTransceiver(system_id="acct", password="pw"), 0.0)
    esme.data_to_send()
    esme.receive_data(bytes.fromhex(wire), 0.0)
    (answered,) = events(esme)
    assert isinstance(answered, ResponseReceived)
    assert answered.response == BindTransceiverResp(sequence_number=1, system_id="SMSC")
    assert esme.state is SessionState.BOUND_TRX


def test_sequence_numbers_start_at_one_and_responses_match_out_of_order() -> None:
    esme, smsc = bound_pair()
    sent = [esme.send(SubmitSm(short_message=bytes([i])), 1.0) for i in range(3)]
    assert [p.sequence_number for p in sent] == [2, 3, 4]  # 1 was the bind
    pump(esme, smsc)
    requests = [e.pdu for e in events(smsc) if isinstance(e, RequestReceived)]
    for request in reversed(requests):
        smsc.send(request.response(message_id=f"id{request.sequence_number}"), 1.0)
    pump(esme, smsc)
    got = events(esme)
    assert all(isinstance(e, ResponseReceived) for e in got)
    pairs = {e.request.sequence_number: e.response for e in got if isinstance(e, ResponseReceived)}
    assert pairs == {n: SubmitSmResp(sequence_number=n, message_id=f"id{n}") for n in (2, 3, 4)}
    assert esme.outstanding == 0


def test_window_limits_outstanding_requests() -> None:
    esme, _smsc = bound_pair(window=2)
    esme.send(SubmitSm(), 0.0)
    esme.send(SubmitSm(), 0.0)
    with pytest.raises(WindowFullError):
        esme.send(SubmitSm(), 0.0)
    assert esme.window_free == 0


def test_response_timeout_expires_request_and_late_response_is_unexpected() -> None:
    esme, smsc = bound_pair(response_timeout=5.0, enquire_link_interval=None)
    request = esme.send(SubmitSm(), 10.0)
    pump(esme, smsc, 10.0)
    assert esme.tick(14.9) == pytest.approx(15.0)
    assert events(esme) == []
    esme.tick(15.0)
    assert events(esme) == [RequestExpired(request)]
    (received,) = events(smsc)
    assert isinstance(received, RequestReceived)
    smsc.send(received.pdu.response(message_id="late"), 16.0)
    pump(esme, smsc, 16.0)
    (late,) = events(esme)
    assert isinstance(late, UnexpectedResponse)


def test_generic_nack_resolves_the_request() -> None:
    esme, smsc = bound_pair()
    request = esme.send(SubmitSm(), 0.0)
    pump(esme, smsc)
    events(smsc)
    smsc.send(GenericNack(sequence_number=request.sequence_number, command_status=0x03), 0.0)
    pump(esme, smsc)
    assert events(esme) == [
        ResponseReceived(
            request, GenericNack(sequence_number=request.sequence_number, command_status=3)
        )
    ]


def test_enquire_link_is_answered_automatically_in_every_state() -> None:
    smsc = Connection(Role.SMSC)
    smsc.receive_data(encode(EnquireLink(sequence_number=9)), 0.0)
    assert events(smsc) == []
    assert sent_pdus(smsc) == [EnquireLinkResp(sequence_number=9)]


def test_keepalive_after_idle_interval_and_dead_link_detected() -> None:
    esme, _smsc = bound_pair(enquire_link_interval=30.0, response_timeout=10.0)
    assert esme.tick(29.0) == pytest.approx(30.0)
    assert esme.data_to_send() == b""
    assert esme.tick(30.0) == pytest.approx(40.0)  # the probe's own response deadline
    (probe,) = sent_pdus(esme)
    assert isinstance(probe, EnquireLink)
    assert esme.tick(31.0) == pytest.approx(40.0)  # no second probe while one is out
    assert esme.data_to_send() == b""
    esme.tick(40.0)
    assert events(esme) == [RequestExpired(probe)]


def test_keepalive_answered_keeps_the_link() -> None:
    esme, smsc = bound_pair(enquire_link_interval=30.0)
    esme.tick(30.0)
    pump(esme, smsc, 30.5)
    (answer,) = events(esme)
    assert isinstance(answer, ResponseReceived)
    assert isinstance(answer.response, EnquireLinkResp)
    assert esme.tick(31.0) == pytest.approx(60.0)


def test_peer_unbind_is_answered_and_session_ends() -> None:
    esme, smsc = bound_pair()
    smsc.send(Unbind(), 0.0)
    pump(esme, smsc)
    assert events(esme) == [Unbound(by_peer=True)]
    assert esme.state is SessionState.UNBOUND
    answer, ended = events(smsc)
    assert isinstance(answer, ResponseReceived)
    assert isinstance(answer.response, UnbindResp)
    assert ended == Unbound(by_peer=False)
    assert smsc.state is SessionState.UNBOUND


def test_our_unbind_acknowledged() -> None:
    esme, smsc = bound_pair()
    request = esme.send(Unbind(), 0.0)
    with pytest.raises(LocalProtocolError):
        esme.send(SubmitSm(), 0.0)  # only responses travel once unbinding
    pump(esme, smsc)
    assert events(esme) == [
        ResponseReceived(request, UnbindResp(sequence_number=request.sequence_number)),
        Unbound(by_peer=False),
    ]


def test_submit_on_receiver_session_rejected_with_rinvbndsts() -> None:
    _, smsc = bound_pair(BindReceiver(system_id="acct", password="pw"))
    smsc.receive_data(encode(SubmitSm(sequence_number=7)), 0.0)
    (rejected,) = events(smsc)
    assert isinstance(rejected, PduRejected)
    assert sent_pdus(smsc) == [
        SubmitSmResp(sequence_number=7, command_status=CommandStatus.ESME_RINVBNDSTS)
    ]


def test_second_bind_gets_ralybnd() -> None:
    _, smsc = bound_pair()
    smsc.receive_data(encode(BindTransceiver(sequence_number=8)), 0.0)
    events(smsc)
    assert sent_pdus(smsc) == [
        BindTransceiverResp(sequence_number=8, command_status=CommandStatus.ESME_RALYBND)
    ]


# bind_transceiver (0x00000009), system_id "test", password "pw", system_type "",
# interface_version 0x34, addr_ton 0, addr_npi 0, address_range "": 29 octets (reference
# section 1), with sequence_numbers 1 and 2.
_BIND_TRX_1 = bytes.fromhex("0000001d 00000009 00000000 00000001 7465737400 707700 00 34 00 00 00")
_BIND_TRX_2 = bytes.fromhex("0000001d 00000009 00000000 00000002 7465737400 707700 00 34 00 00 00")
# submit_sm (0x00000004), sequence_number 3, every mandatory field empty or 0: 16 + 17 octets
_SUBMIT_SM_3 = bytes.fromhex("00000021 00000004 00000000 00000003" + "00" * 17)


def test_second_bind_in_the_same_read_gets_ralybnd() -> None:
    smsc = Connection(Role.SMSC)
    smsc.receive_data(_BIND_TRX_1 + _BIND_TRX_2, 0.0)
    received, rejected = events(smsc)
    assert isinstance(received, RequestReceived)
    assert received.pdu.sequence_number == 1
    assert isinstance(rejected, PduRejected)
    # bind_transceiver_resp (0x80000009), ESME_RALYBND (5), sequence_number 2, header only
    assert smsc.data_to_send() == bytes.fromhex("00000010 80000009 00000005 00000002")
    smsc.send(received.pdu.response(system_id="SMSC"), 0.0)
    assert smsc.state is SessionState.BOUND_TRX


def test_second_bind_before_the_bind_resp_gets_ralybnd() -> None:
    smsc = Connection(Role.SMSC)
    smsc.receive_data(_BIND_TRX_1, 0.0)
    (received,) = events(smsc)
    assert isinstance(received, RequestReceived)
    smsc.receive_data(_BIND_TRX_2, 0.0)  # a later read, the first bind still unanswered
    (rejected,) = events(smsc)
    assert isinstance(rejected, PduRejected)
    assert smsc.data_to_send() == bytes.fromhex("00000010 80000009 00000005 00000002")
    assert smsc.state is SessionState.OPEN


def test_submit_after_a_bind_in_the_same_read_gets_rinvbndsts() -> None:
    smsc = Connection(Role.SMSC)
    smsc.receive_data(_BIND_TRX_1 + _SUBMIT_SM_3, 0.0)
    received, rejected = events(smsc)
    assert isinstance(received, RequestReceived)
    assert isinstance(rejected, PduRejected)
    # submit_sm_resp (0x80000004), ESME_RINVBNDSTS (4), sequence_number 3, header only: the
    # ESME sent it before the bind_resp, so it is refused even though the bind then succeeds.
    assert smsc.data_to_send() == bytes.fromhex("00000010 80000004 00000004 00000003")
    smsc.send(received.pdu.response(system_id="SMSC"), 0.0)
    assert smsc.state is SessionState.BOUND_TRX
    smsc.receive_data(_SUBMIT_SM_3, 1.0)  # sent after the bind_resp: accepted
    assert events(smsc) == [RequestReceived(SubmitSm(sequence_number=3))]


def test_enquire_link_while_the_bind_is_pending_is_answered() -> None:
    smsc = Connection(Role.SMSC)
    smsc.data_to_send()
    # enquire_link (0x00000015), sequence_number 2
    smsc.receive_data(_BIND_TRX_1 + bytes.fromhex("00000010 00000015 00000000 00000002"), 0.0)
    (received,) = events(smsc)
    assert isinstance(received, RequestReceived)
    # enquire_link_resp (0x80000015), status 0, sequence_number 2
    assert smsc.data_to_send() == bytes.fromhex("00000010 80000015 00000000 00000002")


def test_after_a_refused_bind_the_esme_may_bind_again() -> None:
    smsc = Connection(Role.SMSC)
    smsc.receive_data(_BIND_TRX_1 + _BIND_TRX_2, 0.0)
    received, rejected = events(smsc)
    assert isinstance(received, RequestReceived)
    assert isinstance(rejected, PduRejected)
    smsc.send(received.pdu.response(command_status=CommandStatus.ESME_RINVPASWD), 0.0)
    assert smsc.state is SessionState.OPEN
    smsc.data_to_send()
    # bind_transceiver again, sequence_number 2 (its first try was refused ESME_RALYBND)
    smsc.receive_data(_BIND_TRX_2, 1.0)
    (again,) = events(smsc)
    assert isinstance(again, RequestReceived)
    assert smsc.data_to_send() == b""
    smsc.send(again.pdu.response(system_id="SMSC"), 1.0)
    assert smsc.bind_type is BindType.TRANSCEIVER
    assert smsc.state.is_bound


def test_each_request_sharing_a_sequence_number_gets_its_response() -> None:
    """A peer bug, but each message it submitted is owed a submit_sm_resp (and is stored)."""
    _, smsc = bound_pair()
    smsc.receive_data(_SUBMIT_SM_3 + _SUBMIT_SM_3, 1.0)  # two submit_sm, both sequence_number 3
    first, second = events(smsc)
    assert first == second == RequestReceived(SubmitSm(sequence_number=3))
    smsc.send(SubmitSmResp(sequence_number=3, message_id="A"), 1.0)
    smsc.send(SubmitSmResp(sequence_number=3, message_id="B"), 1.0)
    # submit_sm_resp (0x80000004), status 0, sequence_number 3, message_id "A" then "B"
    assert smsc.data_to_send() == bytes.fromhex(
        "00000012 80000004 00000000 00000003 4100 00000012 80000004 00000000 00000003 4200"
    )
    with pytest.raises(LocalProtocolError):  # both are answered: a third has nothing to answer
        smsc.send(SubmitSmResp(sequence_number=3, message_id="C"), 1.0)


def test_requests_of_two_types_sharing_a_sequence_number_are_answered_in_any_order() -> None:
    _, smsc = bound_pair()
    # query_sm (0x00000003), sequence_number 3: message_id "", source ton, npi, source_addr ""
    query_sm = bytes.fromhex("00000014 00000003 00000000 00000003 00 00 00 00")
    smsc.receive_data(_SUBMIT_SM_3 + query_sm + _SUBMIT_SM_3, 1.0)
    assert len(events(smsc)) == 3
    smsc.send(QuerySmResp(sequence_number=3, message_id="Q"), 1.0)
    smsc.send(GenericNack(sequence_number=3, command_status=CommandStatus.ESME_RSYSERR), 1.0)
    smsc.send(SubmitSmResp(sequence_number=3, message_id="B"), 1.0)
    # query_sm_resp (0x80000003): message_id "Q", final_date "", message_state 0, error_code 0;
    # generic_nack (0x80000000) ESME_RSYSERR (8); submit_sm_resp (0x80000004) message_id "B"
    assert smsc.data_to_send() == bytes.fromhex(
        "00000015 80000003 00000000 00000003 5100 00 00 00"
        "00000010 80000000 00000008 00000003"
        "00000012 80000004 00000000 00000003 4200"
    )
    for late in (QuerySmResp(sequence_number=3), SubmitSmResp(sequence_number=3)):
        with pytest.raises(LocalProtocolError):
            smsc.send(late, 1.0)


def test_submit_before_bind_rejected() -> None:
    smsc = Connection(Role.SMSC)
    smsc.receive_data(encode(SubmitSm(sequence_number=3)), 0.0)
    events(smsc)
    assert sent_pdus(smsc) == [
        SubmitSmResp(sequence_number=3, command_status=CommandStatus.ESME_RINVBNDSTS)
    ]


def test_undecodable_request_answered_with_its_response_and_status() -> None:
    _, smsc = bound_pair()
    wire = encode(SubmitSm(sequence_number=4, short_message=b"hi"))
    bad = wire.replace(b"\x02hi", b"\x09hi")  # sm_length past the end
    smsc.receive_data(bad, 0.0)
    (rejected,) = events(smsc)
    assert isinstance(rejected, PduRejected)
    assert sent_pdus(smsc) == [
        SubmitSmResp(sequence_number=4, command_status=CommandStatus.ESME_RINVMSGLEN)
    ]


def test_unknown_command_gets_generic_nack_and_session_goes_on() -> None:
    _, smsc = bound_pair()
    smsc.receive_data(
        bytes.fromhex("00000010 00000111 00000000 00000005")
        + encode(EnquireLink(sequence_number=6)),
        0.0,
    )
    assert sent_pdus(smsc) == [
        GenericNack(sequence_number=5, command_status=CommandStatus.ESME_RINVCMDID),
        EnquireLinkResp(sequence_number=6),
    ]


def test_hostile_length_nacks_and_closes_with_unanswered_requests() -> None:
    esme, _smsc = bound_pair()
    request = esme.send(SubmitSm(), 0.0)
    esme.data_to_send()
    esme.receive_data(b"\xff\xff\xff\xff", 0.0)
    got = events(esme)
    assert isinstance(got[0], PduRejected)
    assert isinstance(got[1], ConnectionClosed)
    assert got[1].unanswered == (request,)
    assert sent_pdus(esme) == [GenericNack(command_status=CommandStatus.ESME_RINVCMDLEN)]
    assert esme.state is SessionState.CLOSED
    with pytest.raises(LocalProtocolError):
        esme.send(SubmitSm(), 0.0)


def test_peer_close_reports_unanswered_requests() -> None:
    esme, _ = bound_pair()
    requests = [esme.send(SubmitSm(), 0.0) for _ in range(3)]
    esme.receive_data(b"", 1.0)
    (closed,) = events(esme)
    assert closed == ConnectionClosed("the peer closed the connection", tuple(requests))


def test_session_init_and_inactivity_timeouts() -> None:
    smsc = Connection(Role.SMSC, session_init_timeout=10.0, enquire_link_interval=None)
    assert smsc.tick(5.0) == pytest.approx(10.0)
    smsc.tick(10.0)
    (closed,) = events(smsc)
    assert isinstance(closed, ConnectionClosed)
    _, idle = bound_pair()
    idle.inactivity_timeout = 30.0
    idle.tick(29.0)
    assert events(idle) == []
    idle.tick(30.0)
    assert isinstance(events(idle)[0], ConnectionClosed)


def test_sequence_numbers_wrap_and_skip_outstanding() -> None:
    esme, _ = bound_pair(window=3)
    esme._next_sequence_number = 0x7FFFFFFF
    first = esme.send(SubmitSm(), 0.0)
    second = esme.send(SubmitSm(), 0.0)
    assert (first.sequence_number, second.sequence_number) == (0x7FFFFFFF, 1)


def test_a_taken_sequence_number_is_sent_as_is_and_never_given_again() -> None:
    """take_sequence_number(): the caller builds the request numbered; send() keeps it."""
    esme, _ = bound_pair(window=4)
    taken = esme.take_sequence_number()
    request = SubmitSm(sequence_number=taken, destination_addr="421903123456")
    assert esme.send(request, 0.0) is request  # not copied
    later = esme.send(SubmitSm(), 0.0)
    assert later.sequence_number == taken + 1
    esme._next_sequence_number = 0x7FFFFFFF
    assert esme.take_sequence_number() == 0x7FFFFFFF
    assert esme.take_sequence_number() == 1  # the bind's, answered long ago
    assert taken == 2
    assert esme.take_sequence_number() == 4  # past 2 and 3, still outstanding


def test_a_request_goes_with_the_bytes_its_caller_encoded() -> None:
    """send(encoded=...): the bytes go out as given, the request is windowed as any other;
    an unnumbered request or a response refuses them, and the connection is as it was."""
    esme, smsc = bound_pair()
    request = DeliverSm(sequence_number=smsc.take_sequence_number(), source_addr="1")
    encoded = encode(request)
    assert smsc.send(request, 0.0, encoded=encoded) is request
    assert smsc.data_to_send() == encoded
    assert smsc.outstanding_requests() == (request,)
    with pytest.raises(LocalProtocolError):
        smsc.send(DeliverSm(), 0.0, encoded=encoded)
    # Bytes whose header says another PDU (another number, another command) are refused.
    other = DeliverSm(sequence_number=smsc.take_sequence_number(), source_addr="1")
    with pytest.raises(LocalProtocolError, match="header"):
        smsc.send(other, 0.0, encoded=encoded)
    with pytest.raises(LocalProtocolError, match="header"):
        smsc.send(other, 0.0, encoded=encode(Unbind(sequence_number=other.sequence_number)))
    assert smsc.data_to_send() == b""
    assert smsc.outstanding_requests() == (request,)
    esme.send(SubmitSm(destination_addr="421903123456"), 0.0)
    pump(esme, smsc)
    (submitted,) = [e for e in events(smsc) if isinstance(e, RequestReceived)]
    with pytest.raises(LocalProtocolError):
        smsc.send(submitted.pdu.response(message_id="1"), 0.0, encoded=b"\0" * 16)
    assert smsc.data_to_send() == b""
    assert smsc.outstanding_requests() == (request,)
    smsc.send(submitted.pdu.response(message_id="1"), 0.0)  # still owed its response
    pump(smsc, esme)
    responses = [e for e in events(esme) if isinstance(e, ResponseReceived)]
    assert [type(e.response) for e in responses] == [SubmitSmResp]


def test_answering_nothing_is_refused() -> None:
    esme, smsc = bound_pair()
    with pytest.raises(LocalProtocolError):
        smsc.send(SubmitSmResp(sequence_number=99), 0.0)
    with pytest.raises(LocalProtocolError):
        esme.send(DeliverSm(), 0.0)  # an ESME never sends deliver_sm


REQUESTS = [cls for cls in PDU_CLASSES if not cls.command_id & 0x80000000]
_VALID: dict[type[Pdu], dict[str, Any]] = {
    SubmitMulti: {"dest_addresses": (SmeAddress(1, 1, "1"),)}
}


@given(
    state=st.sampled_from(
        [SessionState.OPEN, SessionState.BOUND_TX, SessionState.BOUND_RX, SessionState.BOUND_TRX]
    ),
    cls=st.sampled_from(REQUESTS),
)
def test_every_state_and_request_pair_follows_the_table(
    state: SessionState, cls: type[Pdu]
) -> None:
    smsc = Connection(Role.SMSC)
    smsc.state = state
    request = cls(sequence_number=11, **_VALID.get(cls, {}))
    smsc.receive_data(encode(request), 0.0)
    got = events(smsc)
    allowed = state in REQUEST_RULES[cls.command_id][Role.ESME]
    answers = sent_pdus(smsc)
    if not allowed:
        assert isinstance(got[0], PduRejected)
        (answer,) = answers
        expected = (
            CommandStatus.ESME_RALYBND
            if cls in (BindTransmitter, BindReceiver, BindTransceiver) and state.is_bound
            else CommandStatus.ESME_RINVBNDSTS
        )
        assert answer.command_status == expected
        assert answer.sequence_number == 11
    elif cls is EnquireLink:
        assert answers == [EnquireLinkResp(sequence_number=11)]
    elif cls.command_id == CommandId.UNBIND:
        assert got == [Unbound(by_peer=True)]
    else:
        assert got == [RequestReceived(request)]
        assert answers == []


def test_sequence_of_many_submits_never_reuses_outstanding_numbers() -> None:
    esme, _smsc = bound_pair(window=64)
    seen: set[int] = set()
    for _ in itertools.repeat(None, 64):
        seen.add(esme.send(SubmitSm(), 0.0).sequence_number)
    assert len(seen) == 64
    assert [p.sequence_number for p in sent_pdus(esme)][-64:] == sorted(seen)


def test_a_pdu_that_cannot_be_encoded_leaves_the_connection_as_it_was() -> None:
    esme, _ = bound_pair()
    with pytest.raises(PduEncodeError):
        esme.send(SubmitSm(short_message=b"x" * 300), 0.0)
    assert esme.outstanding == 0
    assert esme.tick(100.0) is not None
    assert events(esme) == []
    with pytest.raises(LocalProtocolError):
        esme.send(Unbind(sequence_number=2**32), 0.0)
    assert esme.state is SessionState.BOUND_TRX


def test_keepalive_blocked_by_a_full_window_does_not_spin() -> None:
    esme, _ = bound_pair(window=1, enquire_link_interval=30.0, response_timeout=60.0)
    esme.send(SubmitSm(), 0.0)
    deadline = esme.tick(40.0)  # keepalive overdue, but no room to send it
    assert deadline is not None
    assert deadline > 40.0


def test_simultaneous_unbind_is_answered_ok() -> None:
    esme, _ = bound_pair()
    esme.send(Unbind(), 0.0)
    esme.receive_data(encode(Unbind(sequence_number=77)), 0.0)
    answers = [p for p in sent_pdus(esme) if isinstance(p, UnbindResp)]
    assert answers == [UnbindResp(sequence_number=77)]


def test_undecodable_response_fails_its_request_without_a_nack() -> None:
    esme, _ = bound_pair()
    request = esme.send(SubmitSm(), 0.0)
    esme.data_to_send()
    bad = bytes.fromhex("00000014 80000004 00000000") + request.sequence_number.to_bytes(4, "big")
    esme.receive_data(bad + b"abcd", 0.0)  # message_id without its NUL
    (rejected,) = events(esme)
    assert isinstance(rejected, PduRejected)
    assert rejected.request == request
    assert rejected.answer is None
    assert esme.data_to_send() == b""
    assert esme.outstanding == 0


@pytest.mark.parametrize(
    "stray",
    [
        # deliver_sm_resp (0x80000005), status 0, sequence_number 2 of our submit_sm, then a
        # message_id "abcd" without its NUL: undecodable, and not a submit_sm_resp anyway.
        "00000014 80000005 00000000 00000002 61626364",
        # Response bit set, command_id 0x80000111 unknown, sequence_number of our submit_sm.
        "00000010 80000111 00000000 00000002",
    ],
    ids=["undecodable-of-another-type", "unknown-command-id"],
)
def test_a_response_that_cannot_answer_the_request_leaves_it_outstanding(stray: str) -> None:
    """A bad response that could not answer our request (wrong or unknown command_id) is
    dropped, never answered, and must not fail the request."""
    esme, _ = bound_pair()
    request = esme.send(SubmitSm(destination_addr="1"), 0.0)
    assert request.sequence_number == 2
    esme.data_to_send()
    esme.receive_data(bytes.fromhex(stray), 1.0)
    (rejected,) = events(esme)
    assert isinstance(rejected, PduRejected)
    assert rejected.request is None
    assert rejected.answer is None  # a response is never answered
    assert esme.data_to_send() == b""
    assert esme.outstanding_requests() == (request,)
    # submit_sm_resp (0x80000004), sequence_number 2, message_id "MSG1"
    esme.receive_data(bytes.fromhex("00000015 80000004 00000000 00000002 4d53473100"), 2.0)
    assert events(esme) == [
        ResponseReceived(request, SubmitSmResp(sequence_number=2, message_id="MSG1"))
    ]


def test_header_only_deliver_sm_resp_answers_the_deliver_sm() -> None:
    _, smsc = bound_pair()
    request = smsc.send(DeliverSm(source_addr="1", destination_addr="2"), 0.0)
    assert request.sequence_number == 1
    smsc.data_to_send()
    # deliver_sm_resp (0x80000005), status 0, sequence_number 1, and no body at all
    smsc.receive_data(bytes.fromhex("00000010 80000005 00000000 00000001"), 1.0)
    assert events(smsc) == [ResponseReceived(request, DeliverSmResp(sequence_number=1))]
    assert smsc.outstanding == 0
    assert smsc.data_to_send() == b""


def test_explicit_sequence_numbers_must_be_in_range() -> None:
    esme, _ = bound_pair()
    for bad in (0x80000000, 0xFFFFFFFF):
        with pytest.raises(LocalProtocolError):
            esme.send(SubmitSm(sequence_number=bad), 0.0)
    assert esme.send(SubmitSm(sequence_number=0x7FFFFFFF), 0.0).sequence_number == 0x7FFFFFFF


# --- bad input in bulk, framing after good frames, odd responses, numbering, cut requests ---

# An unknown command_id (0x00000111), sequence_number 5, and the answer SMPP 3.4 section 3 asks
# for: generic_nack (0x80000000) with ESME_RINVCMDID (3), echoing the sequence_number.
_UNKNOWN_REQUEST = bytes.fromhex("00000010 00000111 00000000 00000005")
_NACK_RINVCMDID_5 = bytes.fromhex("00000010 80000000 00000003 00000005")


def test_many_bad_frames_in_one_read_are_each_answered_and_hold_no_traceback() -> None:
    smsc = Connection(Role.SMSC)
    smsc.receive_data(_UNKNOWN_REQUEST * 16_384, 0.0)  # 256 KiB, one socket read
    assert smsc.data_to_send() == _NACK_RINVCMDID_5 * 16_384
    got = events(smsc)
    assert len(got) == 16_384
    for event in got:
        assert isinstance(event, PduRejected)
        assert event.answer == GenericNack(
            sequence_number=5, command_status=CommandStatus.ESME_RINVCMDID
        )
        # A stored traceback would keep the decoder's frames, and the framer's copy of the read.
        assert event.error.__traceback__ is None
    assert smsc.state is SessionState.OPEN


def test_memory_held_for_bad_frames_grows_linearly() -> None:
    frames = 2048
    smsc = Connection(Role.SMSC)
    tracemalloc.start()
    try:
        smsc.receive_data(_UNKNOWN_REQUEST * frames, 0.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One event, error and answer per frame take well under 2 KiB; a copy of the 32 KiB read
    # per frame would take 32 KiB each.
    assert peak < 2048 * frames
    assert len(events(smsc)) == frames


def test_response_before_a_hostile_length_is_delivered_before_the_close() -> None:
    esme, _ = bound_pair()
    request = esme.send(SubmitSm(destination_addr="1", short_message=b"x"), 0.0)
    assert request.sequence_number == 2
    esme.data_to_send()
    # submit_sm_resp (0x80000004), sequence_number 2, message_id "MSG1": 16 + 5 octets; then
    # the four octets of a command_length of 5, under the 16-octet minimum.
    good = bytes.fromhex("00000015 80000004 00000000 00000002 4d53473100")
    esme.receive_data(good + bytes.fromhex("00000005"), 1.0)
    answered, rejected, closed = events(esme)
    assert answered == ResponseReceived(request, SubmitSmResp(sequence_number=2, message_id="MSG1"))
    assert isinstance(rejected, PduRejected)
    assert isinstance(rejected.error, FramingError)
    assert isinstance(closed, ConnectionClosed)
    assert closed.unanswered == ()  # the submit was answered: no retry, no second SMS
    # generic_nack, ESME_RINVCMDLEN (2), sequence_number 0 (none could be read)
    assert esme.data_to_send() == bytes.fromhex("00000010 80000000 00000002 00000000")
    assert esme.state is SessionState.CLOSED


def test_hostile_length_with_a_readable_header_is_nacked_with_its_sequence_number() -> None:
    esme, _ = bound_pair()
    # submit_sm (0x00000004), sequence_number 0x1234, command_length 0xFFFFFFFF: over the
    # maximum, but the 16-octet header is all there, so the nack echoes its sequence_number.
    esme.receive_data(bytes.fromhex("ffffffff 00000004 00000000 00001234"), 1.0)
    rejected, closed = events(esme)
    assert isinstance(rejected, PduRejected)
    assert isinstance(rejected.error, FramingError)
    assert isinstance(closed, ConnectionClosed)
    # generic_nack (0x80000000), ESME_RINVCMDLEN (2), sequence_number 0x1234
    assert esme.data_to_send() == bytes.fromhex("00000010 80000000 00000002 00001234")


def test_outbind_and_alert_notification_are_numbered_but_never_outstanding() -> None:
    smsc = Connection(Role.SMSC, enquire_link_interval=None)
    outbind = smsc.send(Outbind(system_id="smsc"), 0.0)
    assert outbind.sequence_number == 1
    # outbind 0x0000000B: system_id "smsc" NUL, password "" NUL; 16 + 6 octets
    assert smsc.data_to_send() == bytes.fromhex("00000016 0000000b 00000000 00000001 736d736300 00")
    smsc.receive_data(encode(BindReceiver(sequence_number=1, system_id="acct")), 0.0)
    (bind,) = events(smsc)
    assert isinstance(bind, RequestReceived)
    smsc.send(bind.pdu.response(system_id="smsc"), 0.0)
    smsc.data_to_send()
    alert = smsc.send(AlertNotification(source_addr="1", esme_addr="2"), 0.0)
    assert alert.sequence_number == 2
    # alert_notification 0x00000102: source_addr_ton, _npi, source_addr "1" NUL,
    # esme_addr_ton, _npi, esme_addr "2" NUL; 16 + 8 octets
    assert smsc.data_to_send() == bytes.fromhex(
        "00000018 00000102 00000000 00000002 0000 3100 0000 3200"
    )
    assert smsc.outstanding == 0
    assert smsc.window_free == smsc.window
    assert smsc.send(DeliverSm(), 0.0).sequence_number == 3
    with pytest.raises(LocalProtocolError):
        smsc.send(AlertNotification(sequence_number=0x80000000), 0.0)


def test_request_cut_short_gets_generic_nack_with_rinvcmdlen() -> None:
    _, smsc = bound_pair(BindTransmitter(system_id="acct", password="pw"))
    # submit_sm (0x00000004), sequence_number 9, command_length 29: service_type "" NUL,
    # source_addr_ton, _npi, source_addr "12345" NUL, dest_addr_ton, _npi, and then
    # destination_addr "42" with no NUL before the end: the length is too short for the body.
    cut = bytes.fromhex("0000001d 00000004 00000000 00000009 00 0000 313233343500 0000 3432")
    smsc.receive_data(cut, 0.0)
    (rejected,) = events(smsc)
    assert isinstance(rejected, PduRejected)
    assert rejected.answer == GenericNack(
        sequence_number=9, command_status=CommandStatus.ESME_RINVCMDLEN
    )
    # generic_nack (0x80000000), ESME_RINVCMDLEN (2), the request's sequence_number 9
    assert smsc.data_to_send() == bytes.fromhex("00000010 80000000 00000002 00000009")
    assert smsc.state is SessionState.BOUND_TX


def test_keepalive_is_looked_at_within_an_interval_of_the_bind_and_of_each_answer() -> None:
    # Regression: with a response timeout longer than the keepalive interval, tick() gave the
    # bind's (then each enquire_link's) response deadline as the next one, so the I/O layer
    # called it again only then: an idle link sent its enquire_link a response timeout apart,
    # too late for a gateway that closes links silent for 30 s.
    esme = Connection(Role.ESME, enquire_link_interval=5.0, response_timeout=60.0)
    smsc = Connection(Role.SMSC, enquire_link_interval=None)
    esme.send(BindTransceiver(system_id="acct", password="secret"), 0.0)
    assert esme.tick(0.0) == pytest.approx(5.0)
    pump(esme, smsc)
    (bind,) = events(smsc)
    assert isinstance(bind, RequestReceived)
    smsc.send(bind.pdu.response(system_id="SMSC"), 0.1)
    pump(esme, smsc, 0.1)
    events(esme)
    for at in (5.0, 10.0, 15.0):
        assert esme.tick(at) == pytest.approx(at + 5.0)
        (probe,) = sent_pdus(esme)
        assert isinstance(probe, EnquireLink)
        smsc.receive_data(encode(probe), at)
        pump(esme, smsc, at + 0.1)
        (answer,) = events(esme)
        assert isinstance(answer, ResponseReceived)
    with pytest.raises(ValueError, match="enquire_link_interval"):
        Connection(Role.ESME, enquire_link_interval=0.0)  # would probe (and tick) without pause
