"""Maximum lengths of every C-Octet String field, hand-written from reference section 3.

``C(n)`` holds at most ``n - 1`` characters and a NUL. For each field: the longest legal value
encodes to the hand-built frame and decodes back, one character more raises ``PduEncodeError``,
and a hand-built frame of a request carrying one character more is refused with the
command_status the codec documents (its module docstring: the field's own status, else
ESME_RINVCMDLEN), while a response's decodes (responses are read leniently). The
limits and the frames are literals here, not taken from ``codec.wire_layout``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from o2sms.smpp import (
    AlertNotification,
    BindReceiver,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    CancelSm,
    CommandStatus,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    DistributionList,
    Outbind,
    Pdu,
    PduEncodeError,
    PduError,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    SmeAddress,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    decode,
    encode,
)
from o2sms.smpp.pdu import UnsuccessSme

S = CommandStatus
SEQ = 7
TIME = "000000020000000R"  # a legal 16-character relative time ("in 2 hours")


def c(value: str) -> bytes:
    """A C-Octet String on the wire."""
    return value.encode("ascii") + b"\0"


def frame(command_id: int, body: bytes) -> bytes:
    """A whole PDU: header (command_status 0, sequence_number SEQ) + body."""
    return struct.pack(">IIII", 16 + len(body), command_id, 0, SEQ) + body


# --- hand-built bodies, field by field in the order of reference section 3 ------------------
# Every builder takes the one string field under test by keyword; the others stay empty/zero.


def bind_body(
    *, system_id: str = "", password: str = "", system_type: str = "", address_range: str = ""
) -> bytes:
    # system_id, password, system_type, interface_version 0x34, addr_ton, addr_npi, range
    return c(system_id) + c(password) + c(system_type) + b"\x34\x00\x00" + c(address_range)


def sm_body(
    *,
    service_type: str = "",
    source_addr: str = "",
    destination_addr: str = "",
    schedule_delivery_time: str = "",
    validity_period: str = "",
) -> bytes:
    # submit_sm / deliver_sm: service_type, src ton/npi/addr, dst ton/npi/addr, esm_class,
    # protocol_id, priority_flag, schedule, validity, registered_delivery,
    # replace_if_present_flag, data_coding, sm_default_msg_id, sm_length 0
    return (
        c(service_type)
        + b"\x00\x00"
        + c(source_addr)
        + b"\x00\x00"
        + c(destination_addr)
        + b"\x00\x00\x00"
        + c(schedule_delivery_time)
        + c(validity_period)
        + b"\x00\x00\x00\x00"
        + b"\x00"
    )


def multi_body(
    *,
    service_type: str = "",
    source_addr: str = "",
    destination_addr: str = "",
    dl_name: str | None = None,
    schedule_delivery_time: str = "",
    validity_period: str = "",
) -> bytes:
    # number_of_dests 1, then dest_flag 1 (ton, npi, destination_addr) or 2 (dl_name)
    dest = b"\x02" + c(dl_name) if dl_name is not None else b"\x01\x00\x00" + c(destination_addr)
    return (
        c(service_type)
        + b"\x00\x00"
        + c(source_addr)
        + b"\x01"
        + dest
        + b"\x00\x00\x00"
        + c(schedule_delivery_time)
        + c(validity_period)
        + b"\x00\x00\x00\x00"
        + b"\x00"
    )


def data_sm_body(
    service_type: str = "", source_addr: str = "", destination_addr: str = ""
) -> bytes:
    # service_type, src ton/npi/addr, dst ton/npi/addr, esm_class, registered_delivery, data_coding
    return (
        c(service_type) + b"\x00\x00" + c(source_addr) + b"\x00\x00" + c(destination_addr)
    ) + b"\x00\x00\x00"


def query_body(*, message_id: str = "", source_addr: str = "") -> bytes:
    return c(message_id) + b"\x00\x00" + c(source_addr)


def cancel_body(
    *,
    service_type: str = "",
    message_id: str = "",
    source_addr: str = "",
    destination_addr: str = "",
) -> bytes:
    return (
        c(service_type)
        + c(message_id)
        + b"\x00\x00"
        + c(source_addr)
        + b"\x00\x00"
        + c(destination_addr)
    )


def replace_body(
    *,
    message_id: str = "",
    source_addr: str = "",
    schedule_delivery_time: str = "",
    validity_period: str = "",
) -> bytes:
    # ..., registered_delivery, sm_default_msg_id, sm_length 0
    return (
        c(message_id)
        + b"\x00\x00"
        + c(source_addr)
        + c(schedule_delivery_time)
        + c(validity_period)
        + b"\x00\x00\x00"
    )


def alert_body(*, source_addr: str = "", esme_addr: str = "") -> bytes:
    return b"\x00\x00" + c(source_addr) + b"\x00\x00" + c(esme_addr)


def query_resp_body(*, message_id: str = "", final_date: str = "") -> bytes:
    # message_id, final_date, message_state, error_code
    return c(message_id) + c(final_date) + b"\x00\x00"


def multi_resp_body(*, message_id: str = "", destination_addr: str | None = None) -> bytes:
    # message_id, no_unsuccess, then (ton, npi, destination_addr, error_status_code)
    if destination_addr is None:
        return c(message_id) + b"\x00"
    return c(message_id) + b"\x01\x00\x00" + c(destination_addr) + b"\x00\x00\x00\x0b"


@dataclass(frozen=True)
class Field:
    """One C-Octet String field of one PDU, with its hand-written limit and status."""

    pdu: str
    field: str
    max_chars: int
    status: int  # command_status when a frame carries one character more
    make: Callable[[str], Pdu]  # the PDU with this field set
    body: Callable[[str], bytes]  # the hand-built body with this field set
    command_id: int


# command_ids (reference section 1), written out by hand.
BIND_TRANSMITTER, BIND_RECEIVER, BIND_TRANSCEIVER = 0x02, 0x01, 0x09
BIND_TRANSCEIVER_RESP, OUTBIND = 0x80000009, 0x0B
SUBMIT_SM, SUBMIT_SM_RESP, DELIVER_SM, DELIVER_SM_RESP = 0x04, 0x80000004, 0x05, 0x80000005
QUERY_SM, QUERY_SM_RESP, CANCEL_SM, REPLACE_SM = 0x03, 0x80000003, 0x08, 0x07
SUBMIT_MULTI, SUBMIT_MULTI_RESP = 0x21, 0x80000021
DATA_SM, DATA_SM_RESP, ALERT_NOTIFICATION = 0x103, 0x80000103, 0x102

_ONE_DEST = (SmeAddress(0, 0, ""),)


def pdu_with(cls: Callable[..., Pdu], name: str, **others: Any) -> Callable[[str], Pdu]:
    """value -> ``cls(name=value, **others)``."""

    def make(value: str) -> Pdu:
        return cls(**{name: value}, **others)

    return make


def body_with(builder: Callable[..., bytes], name: str) -> Callable[[str], bytes]:
    """value -> ``builder(name=value)``."""

    def body(value: str) -> bytes:
        return builder(**{name: value})

    return body


def field(  # noqa: PLR0917 - one table row, positional on purpose
    pdu: str,
    name: str,
    max_chars: int,
    status: int,
    cls: Callable[..., Pdu],
    builder: Callable[..., bytes],
    cid: int,
) -> Field:
    """A row whose PDU and body both take the field by its name."""
    return Field(pdu, name, max_chars, status, pdu_with(cls, name), body_with(builder, name), cid)


def multi_dest(value: str) -> Pdu:
    return SubmitMulti(dest_addresses=(SmeAddress(0, 0, value),))


def multi_dl(value: str) -> Pdu:
    return SubmitMulti(dest_addresses=(DistributionList(value),))


def multi_resp_dest(value: str) -> Pdu:
    return SubmitMultiResp(unsuccess_smes=(UnsuccessSme(0, 0, value, 0x0B),))


def outbind_password_body(value: str) -> bytes:
    return c("") + c(value)


def outbind_system_id_body(value: str) -> bytes:
    return c(value) + c("")


# fmt: off
FIELDS = [
    # binds: system_id C(16), password C(65) (spec C(9), widened for the O2 gateway: an
    # intended deviation), system_type C(13), address_range C(41)
    field("bind_transmitter", "system_id", 15, S.ESME_RINVSYSID, BindTransmitter, bind_body, BIND_TRANSMITTER),
    field("bind_receiver", "system_id", 15, S.ESME_RINVSYSID, BindReceiver, bind_body, BIND_RECEIVER),
    field("bind_transceiver", "system_id", 15, S.ESME_RINVSYSID, BindTransceiver, bind_body, BIND_TRANSCEIVER),
    field("bind_transmitter", "password", 64, S.ESME_RINVPASWD, BindTransmitter, bind_body, BIND_TRANSMITTER),
    field("bind_receiver", "password", 64, S.ESME_RINVPASWD, BindReceiver, bind_body, BIND_RECEIVER),
    field("bind_transmitter", "system_type", 12, S.ESME_RINVSYSTYP, BindTransmitter, bind_body, BIND_TRANSMITTER),
    # address_range has no status of its own in SMPP 3.4: the bind fails (RBINDFAIL), answered
    # by the bind's own resp, as RINVCMDLEN would be generic_nack.
    field("bind_transmitter", "address_range", 40, S.ESME_RBINDFAIL, BindTransmitter, bind_body, BIND_TRANSMITTER),
    Field("bind_transceiver_resp", "system_id", 15, S.ESME_RINVSYSID, pdu_with(BindTransceiverResp, "system_id"), c, BIND_TRANSCEIVER_RESP),
    Field("outbind", "system_id", 15, S.ESME_RINVSYSID, pdu_with(Outbind, "system_id"), outbind_system_id_body, OUTBIND),
    Field("outbind", "password", 64, S.ESME_RINVPASWD, pdu_with(Outbind, "password"), outbind_password_body, OUTBIND),
    # submit_sm / deliver_sm: service_type C(6), source_addr / destination_addr C(21)
    field("submit_sm", "service_type", 5, S.ESME_RINVSERTYP, SubmitSm, sm_body, SUBMIT_SM),
    field("submit_sm", "source_addr", 20, S.ESME_RINVSRCADR, SubmitSm, sm_body, SUBMIT_SM),
    field("submit_sm", "destination_addr", 20, S.ESME_RINVDSTADR, SubmitSm, sm_body, SUBMIT_SM),
    field("deliver_sm", "service_type", 5, S.ESME_RINVSERTYP, DeliverSm, sm_body, DELIVER_SM),
    field("deliver_sm", "source_addr", 20, S.ESME_RINVSRCADR, DeliverSm, sm_body, DELIVER_SM),
    field("deliver_sm", "destination_addr", 20, S.ESME_RINVDSTADR, DeliverSm, sm_body, DELIVER_SM),
    # submit_multi: source_addr and each destination_addr C(21), dl_name C(21)
    Field("submit_multi", "service_type", 5, S.ESME_RINVSERTYP, pdu_with(SubmitMulti, "service_type", dest_addresses=_ONE_DEST), body_with(multi_body, "service_type"), SUBMIT_MULTI),
    Field("submit_multi", "source_addr", 20, S.ESME_RINVSRCADR, pdu_with(SubmitMulti, "source_addr", dest_addresses=_ONE_DEST), body_with(multi_body, "source_addr"), SUBMIT_MULTI),
    Field("submit_multi", "destination_addr", 20, S.ESME_RINVDSTADR, multi_dest, body_with(multi_body, "destination_addr"), SUBMIT_MULTI),
    Field("submit_multi", "dl_name", 20, S.ESME_RINVDLNAME, multi_dl, body_with(multi_body, "dl_name"), SUBMIT_MULTI),
    # query_sm, cancel_sm, replace_sm: message_id C(65), addresses C(21)
    field("query_sm", "message_id", 64, S.ESME_RINVMSGID, QuerySm, query_body, QUERY_SM),
    field("query_sm", "source_addr", 20, S.ESME_RINVSRCADR, QuerySm, query_body, QUERY_SM),
    field("cancel_sm", "service_type", 5, S.ESME_RINVSERTYP, CancelSm, cancel_body, CANCEL_SM),
    field("cancel_sm", "message_id", 64, S.ESME_RINVMSGID, CancelSm, cancel_body, CANCEL_SM),
    field("cancel_sm", "source_addr", 20, S.ESME_RINVSRCADR, CancelSm, cancel_body, CANCEL_SM),
    field("cancel_sm", "destination_addr", 20, S.ESME_RINVDSTADR, CancelSm, cancel_body, CANCEL_SM),
    field("replace_sm", "message_id", 64, S.ESME_RINVMSGID, ReplaceSm, replace_body, REPLACE_SM),
    field("replace_sm", "source_addr", 20, S.ESME_RINVSRCADR, ReplaceSm, replace_body, REPLACE_SM),
    # data_sm and alert_notification: addresses C(65)
    field("data_sm", "service_type", 5, S.ESME_RINVSERTYP, DataSm, data_sm_body, DATA_SM),
    field("data_sm", "source_addr", 64, S.ESME_RINVSRCADR, DataSm, data_sm_body, DATA_SM),
    field("data_sm", "destination_addr", 64, S.ESME_RINVDSTADR, DataSm, data_sm_body, DATA_SM),
    field("alert_notification", "source_addr", 64, S.ESME_RINVSRCADR, AlertNotification, alert_body, ALERT_NOTIFICATION),
    field("alert_notification", "esme_addr", 64, S.ESME_RINVDSTADR, AlertNotification, alert_body, ALERT_NOTIFICATION),
    # responses: message_id C(65); submit_multi_resp's unsuccess destination_addr C(21)
    Field("submit_sm_resp", "message_id", 64, S.ESME_RINVMSGID, pdu_with(SubmitSmResp, "message_id"), c, SUBMIT_SM_RESP),
    Field("deliver_sm_resp", "message_id", 64, S.ESME_RINVMSGID, pdu_with(DeliverSmResp, "message_id"), c, DELIVER_SM_RESP),
    Field("data_sm_resp", "message_id", 64, S.ESME_RINVMSGID, pdu_with(DataSmResp, "message_id"), c, DATA_SM_RESP),
    field("query_sm_resp", "message_id", 64, S.ESME_RINVMSGID, QuerySmResp, query_resp_body, QUERY_SM_RESP),
    field("submit_multi_resp", "message_id", 64, S.ESME_RINVMSGID, SubmitMultiResp, multi_resp_body, SUBMIT_MULTI_RESP),
    Field("submit_multi_resp", "destination_addr", 20, S.ESME_RINVDSTADR, multi_resp_dest, body_with(multi_resp_body, "destination_addr"), SUBMIT_MULTI_RESP),
]
# fmt: on


def _id(f: Field) -> str:
    return f"{f.pdu}.{f.field}"


@pytest.mark.parametrize("f", FIELDS, ids=_id)
def test_longest_legal_value_encodes_to_the_hand_built_frame_and_round_trips(f: Field) -> None:
    value = "x" * f.max_chars
    pdu = f.make(value).with_sequence_number(SEQ)
    wire = encode(pdu)
    assert wire == frame(f.command_id, f.body(value))
    assert decode(wire) == pdu


@pytest.mark.parametrize("f", FIELDS, ids=_id)
def test_one_character_over_the_limit_does_not_encode(f: Field) -> None:
    with pytest.raises(PduEncodeError, match=f.field):
        encode(f.make("x" * (f.max_chars + 1)).with_sequence_number(SEQ))


def _is_response(f: Field | TimeField) -> bool:
    return bool(f.command_id & 0x80000000)


def _status_params() -> list[object]:
    return [pytest.param(f, id=_id(f)) for f in FIELDS if not _is_response(f)]


@pytest.mark.parametrize("f", _status_params())
def test_one_character_over_the_limit_is_refused_with_the_documented_status(f: Field) -> None:
    data = frame(f.command_id, f.body("x" * (f.max_chars + 1)))
    with pytest.raises(PduError) as info:
        decode(data)
    assert info.value.command_status == f.status


@pytest.mark.parametrize("f", [f for f in FIELDS if _is_response(f)], ids=_id)
@pytest.mark.parametrize("extra", [1, 100])
def test_a_response_string_over_the_limit_decodes_leniently(f: Field, extra: int) -> None:
    # SMSCs send bind_*_resp system_ids over 15 characters and message_ids over 64; refusing
    # them lost the bind or the id of an accepted message. Encoding stays strict.
    value = "x" * (f.max_chars + extra)
    pdu = decode(frame(f.command_id, f.body(value)))
    assert pdu == f.make(value).with_sequence_number(SEQ)
    with pytest.raises(PduEncodeError, match=f.field):
        encode(pdu)


# --- SMPP times: C(1|17), empty or exactly 16 characters ---------------------------------------


@dataclass(frozen=True)
class TimeField:
    pdu: str
    field: str
    status: int
    make: Callable[[str], Pdu]
    body: Callable[[str], bytes]
    command_id: int


def time_field(  # noqa: PLR0917 - one table row, positional on purpose
    pdu: str,
    name: str,
    status: int,
    cls: Callable[..., Pdu],
    builder: Callable[..., bytes],
    cid: int,
    **others: Any,
) -> TimeField:
    return TimeField(
        pdu, name, status, pdu_with(cls, name, **others), body_with(builder, name), cid
    )


# fmt: off
TIME_FIELDS = [
    time_field("submit_sm", "schedule_delivery_time", S.ESME_RINVSCHED, SubmitSm, sm_body, SUBMIT_SM),
    time_field("submit_sm", "validity_period", S.ESME_RINVEXPIRY, SubmitSm, sm_body, SUBMIT_SM),
    time_field("deliver_sm", "schedule_delivery_time", S.ESME_RINVSCHED, DeliverSm, sm_body, DELIVER_SM),
    time_field("deliver_sm", "validity_period", S.ESME_RINVEXPIRY, DeliverSm, sm_body, DELIVER_SM),
    time_field("submit_multi", "schedule_delivery_time", S.ESME_RINVSCHED, SubmitMulti, multi_body, SUBMIT_MULTI, dest_addresses=_ONE_DEST),
    time_field("submit_multi", "validity_period", S.ESME_RINVEXPIRY, SubmitMulti, multi_body, SUBMIT_MULTI, dest_addresses=_ONE_DEST),
    time_field("replace_sm", "schedule_delivery_time", S.ESME_RINVSCHED, ReplaceSm, replace_body, REPLACE_SM),
    time_field("replace_sm", "validity_period", S.ESME_RINVEXPIRY, ReplaceSm, replace_body, REPLACE_SM),
    # final_date has no status of its own: the codec's table says RINVCMDLEN.
    time_field("query_sm_resp", "final_date", S.ESME_RINVCMDLEN, QuerySmResp, query_resp_body, QUERY_SM_RESP),
]
# fmt: on


def _tid(f: TimeField) -> str:
    return f"{f.pdu}.{f.field}"


@pytest.mark.parametrize("f", TIME_FIELDS, ids=_tid)
@pytest.mark.parametrize("value", ["", TIME], ids=["empty", "16"])
def test_time_empty_or_16_characters_encodes_and_round_trips(f: TimeField, value: str) -> None:
    pdu = f.make(value).with_sequence_number(SEQ)
    wire = encode(pdu)
    assert wire == frame(f.command_id, f.body(value))
    assert decode(wire) == pdu


@pytest.mark.parametrize("f", TIME_FIELDS, ids=_tid)
@pytest.mark.parametrize("value", [TIME[:-1], TIME + "0", "R"], ids=["15", "17", "1"])
def test_time_of_any_other_length_is_refused(f: TimeField, value: str) -> None:
    with pytest.raises(PduEncodeError, match=f.field):
        encode(f.make(value).with_sequence_number(SEQ))
    if _is_response(f):
        # A response is read leniently: its message_state is not lost to an odd final_date.
        assert decode(frame(f.command_id, f.body(value))) == f.make(value).with_sequence_number(SEQ)
        return
    with pytest.raises(PduError) as info:
        decode(frame(f.command_id, f.body(value)))
    assert info.value.command_status == f.status


def test_a_text_outside_latin_1_is_named_and_the_password_never_shown() -> None:
    from o2sms.smpp.pdu import BindTransceiver, SmeAddress, SubmitMulti

    with pytest.raises(PduEncodeError) as password:
        encode(BindTransceiver(system_id="acct", password="pa€ss"))
    assert str(password.value) == (
        "cannot encode BindTransceiver: the password has a character outside Latin-1"
    )
    assert password.value.__cause__ is None
    assert password.value.__context__ is None  # no UnicodeEncodeError keeping the value
    with pytest.raises(PduEncodeError, match=r"dest_addresses\[1\]\.destination_addr has '€'"):
        encode(
            SubmitMulti(
                source_addr="O2",
                dest_addresses=(SmeAddress(1, 1, "421903123456"), SmeAddress(1, 1, "12€")),
            )
        )


# --- C-Octet string TLVs read leniently: message ids anywhere, and every one in a response -----


def _tlv(tag: int, value: str) -> bytes:
    raw = value.encode("ascii") + b"\0"
    return struct.pack(">HH", tag, len(raw)) + raw


RECEIPTED_MESSAGE_ID, ADDITIONAL_STATUS_INFO_TEXT = 0x001E, 0x001D


def test_a_receipted_message_id_over_64_characters_is_read_from_a_receipt() -> None:
    # An SMSC whose submit_sm_resp ids are over 64 characters (read leniently) puts the same
    # ids in its receipts' receipted_message_id: refused (ESME_RINVPARLEN), every receipt for
    # such a message was lost. Encoding stays strict.
    long_id = "A1B2" * 20
    wire = frame(DELIVER_SM, sm_body() + _tlv(RECEIPTED_MESSAGE_ID, long_id))
    pdu = decode(wire)
    assert isinstance(pdu, DeliverSm)
    assert pdu.get_tlv(RECEIPTED_MESSAGE_ID) == long_id
    with pytest.raises(PduEncodeError, match="receipted_message_id"):
        encode(pdu)


def test_a_response_tlv_string_over_its_maximum_decodes() -> None:
    text = "t" * 300  # additional_status_info_text is C(256)
    wire = frame(SUBMIT_SM_RESP, c("id-1") + _tlv(ADDITIONAL_STATUS_INFO_TEXT, text))
    pdu = decode(wire)
    assert isinstance(pdu, SubmitSmResp)
    assert (pdu.message_id, pdu.get_tlv(ADDITIONAL_STATUS_INFO_TEXT)) == ("id-1", text)


def test_a_request_tlv_string_over_its_maximum_is_still_refused() -> None:
    wire = frame(DELIVER_SM, sm_body() + _tlv(ADDITIONAL_STATUS_INFO_TEXT, "t" * 300))
    with pytest.raises(PduError) as info:
        decode(wire)
    assert info.value.command_status == S.ESME_RINVPARLEN
