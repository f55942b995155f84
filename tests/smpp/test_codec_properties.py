"""Round trips of every PDU type with generated fields, and what decoding refuses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms.smpp import (
    PDU_CLASSES,
    BindTransceiver,
    CommandStatus,
    DeliverSm,
    Pdu,
    PduEncodeError,
    PduError,
    QuerySmResp,
    SmeAddress,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    TlvTag,
    UnsuccessSme,
    decode,
    encode,
)
from tests.strategies import pdus_of

S = CommandStatus


@pytest.mark.parametrize("cls", PDU_CLASSES, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_decode_encode_round_trip(cls: type[Pdu], data: st.DataObject) -> None:
    pdu = data.draw(pdus_of(cls))
    wire = encode(pdu)
    assert int.from_bytes(wire[:4], "big") == len(wire)
    assert decode(wire) == pdu
    assert encode(decode(wire)) == wire


def _status_of(frame: bytes) -> int:
    with pytest.raises(PduError) as info:
        decode(frame)
    return info.value.command_status


def _submit_sm_wire(**fields: object) -> bytes:
    return encode(SubmitSm(sequence_number=42, **fields))  # type: ignore[arg-type]


def test_short_frame() -> None:
    assert _status_of(b"\x00\x00\x00\x10\x00\x00\x00\x15") == S.ESME_RINVCMDLEN


def test_command_length_disagrees_with_frame() -> None:
    wire = bytearray(_submit_sm_wire())
    wire[3] += 1
    with pytest.raises(PduError) as info:
        decode(bytes(wire))
    assert info.value.command_status == S.ESME_RINVCMDLEN
    assert info.value.sequence_number == 42


def test_unknown_command_id_keeps_sequence_number() -> None:
    frame = bytes.fromhex("00000010 00000111 00000000 0000002a")  # SMPP 5.0 broadcast_sm
    with pytest.raises(PduError) as info:
        decode(frame)
    assert info.value.command_status == S.ESME_RINVCMDID
    assert info.value.sequence_number == 42
    assert info.value.command_id == 0x111


def test_truncated_body() -> None:
    wire = _submit_sm_wire(source_addr="O2")
    cut = wire[:20]
    frame = len(cut).to_bytes(4, "big") + cut[4:]
    assert _status_of(frame) == S.ESME_RINVCMDLEN


def test_c_octet_string_without_nul() -> None:
    # bind_transceiver whose body is "test" with no NUL at all.
    frame = bytes.fromhex("00000014 00000009 00000000 00000001 74657374")
    assert _status_of(frame) == S.ESME_RINVCMDLEN


@pytest.mark.parametrize(
    ("field", "limit", "status"),
    [
        ("source_addr", 21, S.ESME_RINVSRCADR),
        ("destination_addr", 21, S.ESME_RINVDSTADR),
        ("service_type", 6, S.ESME_RINVSERTYP),
    ],
)
def test_c_octet_string_over_its_maximum(field: str, limit: int, status: int) -> None:
    good = _submit_sm_wire(**{field: "1" * (limit - 1)})
    assert decode(good).sequence_number == 42
    # Replace the NUL after the longest legal value with one more character.
    value = b"1" * (limit - 1) + b"\0"
    at = good.index(value)
    bad = good[: at + limit - 1] + b"1" + good[at + limit - 1 :]
    bad = len(bad).to_bytes(4, "big") + bad[4:]
    assert _status_of(bad) == status


def test_system_id_over_maximum() -> None:
    frame_body = b"x" * 16 + b"\0" + b"pw\0\0\x34\0\0\0"
    frame = (
        (16 + len(frame_body)).to_bytes(4, "big")
        + bytes.fromhex("00000009 00000000 00000001")
        + frame_body
    )
    assert _status_of(frame) == S.ESME_RINVSYSID


def test_time_field_of_wrong_length() -> None:
    wire = _submit_sm_wire(schedule_delivery_time="000000020000000R")
    bad = wire.replace(b"000000020000000R\0", b"00000002000000R\0")
    bad = len(bad).to_bytes(4, "big") + bad[4:]
    assert _status_of(bad) == S.ESME_RINVSCHED


def test_sm_length_past_the_end() -> None:
    wire = _submit_sm_wire(short_message=b"hello")
    at = wire.index(b"\x05hello")
    bad = wire[:at] + b"\x06" + wire[at + 1 :]
    assert _status_of(bad) == S.ESME_RINVMSGLEN


def test_stray_octets_after_a_header_only_pdu() -> None:
    frame = bytes.fromhex("00000013 00000015 00000000 00000001 000000")
    assert _status_of(frame) == S.ESME_RINVOPTPARSTREAM


def test_tlvs_on_any_pdu_are_kept() -> None:
    # An SMPP 5.0-style SMSC puts TLVs on submit_sm_resp; the message_id must not be lost.
    frame = bytes.fromhex("00000020 80000004 00000000 00000009 616200 0423 0003 030001")
    frame = len(frame).to_bytes(4, "big") + frame[4:]
    pdu = decode(frame)
    assert isinstance(pdu, SubmitSmResp)
    assert pdu.message_id == "ab"
    assert pdu.get_tlv(TlvTag.NETWORK_ERROR_CODE) == b"\x03\x00\x01"


def test_error_response_with_partial_body_keeps_status_and_id() -> None:
    # query_sm_resp with ESME_RQUERYFAIL and only a message_id after the header.
    frame = bytes.fromhex("00000013 80000003 00000067 00000004 616200")
    pdu = decode(frame)
    assert isinstance(pdu, QuerySmResp)
    assert pdu.command_status == S.ESME_RQUERYFAIL
    assert pdu.message_id == "ab"


def test_short_message_and_message_payload_are_exclusive() -> None:
    with pytest.raises(PduEncodeError, match="both"):
        encode(SubmitSm(short_message=b"x", tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, b"y"),)))


def test_tlv_running_past_the_pdu() -> None:
    wire = encode(DeliverSm(sequence_number=1, tlvs=(Tlv(TlvTag.MESSAGE_STATE, 2),)))
    bad = wire[:-3] + b"\x00\x09\x02"  # message_state claims 9 octets
    assert _status_of(bad) == S.ESME_RINVOPTPARSTREAM


def test_stray_octets_after_the_last_tlv() -> None:
    wire = encode(DeliverSm(sequence_number=1)) + b"\x04\x27"
    bad = len(wire).to_bytes(4, "big") + wire[4:]
    assert _status_of(bad) == S.ESME_RINVOPTPARSTREAM


def test_known_tlv_with_wrong_length() -> None:
    wire = encode(DeliverSm(sequence_number=1)) + bytes.fromhex("0427 0002 0002")
    bad = len(wire).to_bytes(4, "big") + wire[4:]
    assert _status_of(bad) == S.ESME_RINVPARLEN


@pytest.mark.parametrize(
    "pdu",
    [
        SubmitSm(source_addr="x" * 21),
        SubmitSm(schedule_delivery_time="tomorrow"),
        SubmitSm(short_message=b"x" * 255),
        SubmitSm(source_addr="a\0b"),
        SubmitSm(source_addr="Škoda"),  # not Latin-1
        SubmitSm(esm_class=256),
        SubmitSm(sequence_number=-1),
        SubmitSm(tlvs=(Tlv(TlvTag.MESSAGE_STATE, 300),)),
        SubmitSm(tlvs=(Tlv(TlvTag.RECEIPTED_MESSAGE_ID, b"bytes"),)),
        SubmitSm(tlvs=(Tlv(0x1400, "not bytes"),)),
        BindTransceiver(password="p" * 65),
        SubmitSmResp(message_id=5),  # type: ignore[arg-type]
    ],
)
def test_encode_refuses_values_off_the_spec(pdu: Pdu) -> None:
    with pytest.raises(PduEncodeError):
        encode(pdu)


@pytest.mark.parametrize(
    "pdu",
    [
        SubmitMulti(dest_addresses=(SmeAddress(256, 1, "1"),)),
        SubmitMulti(dest_addresses=(SmeAddress(1, -1, "1"),)),
        SubmitMultiResp(unsuccess_smes=(UnsuccessSme(1, 300, "1", 0),)),
        SubmitMultiResp(unsuccess_smes=(UnsuccessSme(-1, 1, "1", 0),)),
    ],
)
def test_ton_npi_out_of_range_in_submit_multi_is_an_encode_error(pdu: Pdu) -> None:
    with pytest.raises(
        PduEncodeError,
        match=r"dest_addr_ton -?\d+ and dest_addr_npi -?\d+ must be integers 0\.\.255",
    ):
        encode(pdu)


def test_ton_npi_255_in_submit_multi_encodes() -> None:
    multi = SubmitMulti(sequence_number=1, dest_addresses=(SmeAddress(255, 255, "1"),))
    # service_type NUL, source_addr_ton, _npi, source_addr NUL, number_of_dests 1, dest_flag 1,
    # dest_addr_ton 0xFF, dest_addr_npi 0xFF, "1" NUL, esm_class .. sm_length all zero
    assert encode(multi) == bytes.fromhex(
        "00000024 00000021 00000000 00000001 00 0000 00 01 01ffff3100 000000 00 00 00000000 00"
    )
    resp = SubmitMultiResp(sequence_number=1, unsuccess_smes=(UnsuccessSme(255, 255, "1", 0x58),))
    # message_id NUL, no_unsuccess 1, dest_addr_ton 0xFF, _npi 0xFF, "1" NUL, error_status_code
    assert encode(resp) == bytes.fromhex(
        "0000001a 80000021 00000000 00000001 00 01 ffff3100 00000058"
    )


@pytest.mark.parametrize(
    ("tlv", "message"),
    [
        (Tlv(TlvTag.MESSAGE_STATE, 300), "TLV message_state value 300 does not fit 1 octet(s)"),
        (Tlv(TlvTag.MESSAGE_STATE, b"\x02"), "TLV message_state takes an int, not bytes"),
        (
            Tlv(TlvTag.RECEIPTED_MESSAGE_ID, b"id"),
            "TLV receipted_message_id takes a str, not bytes",
        ),
        (
            Tlv(TlvTag.RECEIPTED_MESSAGE_ID, "Škoda"),
            "TLV receipted_message_id must be ASCII/Latin-1 text: 'Škoda'",
        ),
        (
            Tlv(TlvTag.RECEIPTED_MESSAGE_ID, "x" * 65),
            "TLV receipted_message_id takes at most 64 characters",
        ),
        (
            Tlv(TlvTag.NETWORK_ERROR_CODE, b"\x03\x00"),
            "TLV network_error_code takes 3..3 octets, got 2",
        ),
        (Tlv(0x1400, "not bytes"), "TLV 0x1400 takes bytes, not str"),
    ],
)
def test_tlv_encode_errors_name_the_tag(tlv: Tlv, message: str) -> None:
    with pytest.raises(PduEncodeError) as caught:
        encode(DeliverSm(tlvs=(tlv,)))
    assert str(caught.value) == message


def test_long_password_is_sent_as_given() -> None:
    wire = encode(BindTransceiver(system_id="acct", password="a-very-long-password"))
    assert b"a-very-long-password\0" in wire
    decoded = decode(wire)
    assert isinstance(decoded, BindTransceiver)
    assert decoded.password == "a-very-long-password"


@pytest.mark.parametrize("cls", PDU_CLASSES, ids=lambda cls: cls.__name__)
@given(data=st.data(), sequence_number=st.integers(1, 0x7FFFFFFF))
def test_fast_renumbering_equals_replace(
    cls: type[Pdu], data: st.DataObject, sequence_number: int
) -> None:
    from o2sms.smpp.codec import with_sequence_number

    pdu = data.draw(pdus_of(cls))
    renumbered = with_sequence_number(pdu, sequence_number)
    assert renumbered == pdu.with_sequence_number(sequence_number)
    assert type(renumbered) is cls
