"""Reassembler: hand-built inbound parts, ordering, duplicates, expiry, bounds, hostile input."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms.smpp.tlv import Tlv
from o2sms.text import (
    GroupKey,
    InboundPart,
    RawPart,
    Reassembler,
    TextError,
    UdhError,
    UndecodableTextError,
    UnsupportedDataCodingError,
)
from o2sms.text.reassembly import GROUP_OVERHEAD, PART_OVERHEAD
from o2sms.text.udh import InformationElement

SRC, DST = "421905123456", "7777"
SAR_MSG_REF_NUM, SAR_TOTAL_SEGMENTS, SAR_SEGMENT_SEQNUM = 0x020C, 0x020E, 0x020F
MESSAGE_PAYLOAD = 0x0424


@dataclass(frozen=True)
class DeliverSm:
    """Stand-in for the codec's DeliverSm: only the fields the protocol asks for, and more."""

    source_addr: str
    destination_addr: str
    short_message: bytes
    esm_class: int = 0
    data_coding: int = 0
    tlvs: tuple[Tlv, ...] = ()
    sequence_number: int = 1


def udh8(ref: int, total: int, seq: int, body: bytes, data_coding: int = 0) -> DeliverSm:
    return DeliverSm(SRC, DST, bytes((5, 0, 3, ref, total, seq)) + body, 0x40, data_coding)


def test_single_part_returned_at_once() -> None:
    reassembler = Reassembler()
    message = reassembler.feed(DeliverSm(SRC, DST, b"Ahoj"), now=0.0)
    assert message is not None
    assert (message.text, message.total, message.reference) == ("Ahoj", 1, None)
    assert (message.source_addr, message.destination_addr, message.data_coding) == (SRC, DST, 0)
    assert len(reassembler) == 0


def test_deliver_sm_satisfies_the_protocol() -> None:
    part: InboundPart = DeliverSm(SRC, DST, b"x")
    assert Reassembler().feed(part, now=0.0) is not None


def test_udh8_out_of_order_with_duplicates() -> None:
    reassembler = Reassembler()
    third = udh8(0x42, 3, 3, b"!")
    first = udh8(0x42, 3, 1, b"hello")
    second = udh8(0x42, 3, 2, b" \x1b\x65")  # " €" as unpacked septets
    assert reassembler.feed(third, now=1.0) is None
    assert reassembler.feed(first, now=1.0) is None
    assert reassembler.feed(first, now=1.5) is None  # duplicate ignored
    assert len(reassembler) == 1
    message = reassembler.feed(second, now=2.0)
    assert message is not None
    assert message.text == "hello €!"
    assert (message.reference, message.total) == (0x42, 3)
    assert message.parts == (first, second, third)
    assert len(reassembler) == 0
    assert reassembler.pending_bytes == 0


def test_udh16_with_port_ie_and_packed_gsm() -> None:
    # 11-octet UDH: UDHL 0x0A, ports IE 04 02 1020, 16-bit concat IE 08 04 0102 02 01.
    # 88 bits; 88 % 7 = 4, so 3 fill bits. "hi" after them: x = 0x68 << 3 | 0x69 << 10 =
    # 0x1A740, 17 bits, 7 spare -> CR pad 0x0D << 17: x = 0x1BA740 -> octets 40 A7 1B.
    first = DeliverSm(
        SRC,
        DST,
        bytes.fromhex("0A 04 02 10 20 08 04 01 02 02 01") + bytes.fromhex("40 A7 1B"),
        0x40,
    )
    # Part 2: 7-octet UDH, 0 fill bits, "a" = 0x61 in one octet (1 spare bit, no pad).
    second = DeliverSm(SRC, DST, bytes.fromhex("06 08 04 01 02 02 02 61"), 0x40)
    reassembler = Reassembler(packed=True)
    assert reassembler.feed(second, now=0.0) is None
    message = reassembler.feed(first, now=0.0)
    assert message is not None
    assert message.text == "hia"
    assert message.reference == 0x0102
    assert message.elements == (InformationElement(0x04, bytes.fromhex("10 20")),)


def test_ucs2_surrogate_pair_cut_by_a_peer_survives() -> None:
    reassembler = Reassembler()
    assert reassembler.feed(udh8(1, 2, 1, bytes.fromhex("0061 D83D"), 8), now=0.0) is None
    message = reassembler.feed(udh8(1, 2, 2, bytes.fromhex("DE00 0062"), 8), now=0.0)
    assert message is not None
    assert message.text == "a😀b"


def test_escape_pair_cut_by_a_peer_survives() -> None:
    reassembler = Reassembler()
    assert reassembler.feed(udh8(2, 2, 1, b"a\x1b"), now=0.0) is None
    message = reassembler.feed(udh8(2, 2, 2, b"\x65b"), now=0.0)
    assert message is not None
    assert message.text == "a€b"


def test_sar_tlvs_int_or_raw_bytes() -> None:
    reassembler = Reassembler()

    def sar(seq: int, body: bytes, ref: int | bytes = 300) -> RawPart:
        tlvs = (Tlv(SAR_MSG_REF_NUM, ref), Tlv(SAR_TOTAL_SEGMENTS, 2), Tlv(SAR_SEGMENT_SEQNUM, seq))
        return RawPart(SRC, DST, body, 0, 8, tlvs)

    assert reassembler.feed(sar(2, bytes.fromhex("0021"), ref=b"\x01\x2c"), now=0.0) is None
    message = reassembler.feed(sar(1, bytes.fromhex("010D")), now=0.0)
    assert message is not None
    assert (message.text, message.reference, message.data_coding) == ("č!", 300, 8)


def test_feed_raw_and_message_payload() -> None:
    reassembler = Reassembler()
    message = reassembler.feed_raw(
        SRC,
        DST,
        b"",
        data_coding=8,
        tlvs=(Tlv(MESSAGE_PAYLOAD, bytes.fromhex("0161 0061")),),
        now=0.0,
    )
    assert message is not None
    assert message.text == "ša"


def test_same_reference_from_other_addresses_is_another_message() -> None:
    reassembler = Reassembler()
    assert reassembler.feed(udh8(5, 2, 1, b"A"), now=0.0) is None
    other = DeliverSm("421900000000", DST, bytes.fromhex("05 00 03 05 02 02") + b"Z", 0x40)
    assert reassembler.feed(other, now=0.0) is None
    assert len(reassembler) == 2


def test_reference_reused_with_another_total_replaces_the_stale_group() -> None:
    reassembler = Reassembler()
    assert reassembler.feed(udh8(9, 3, 1, b"old"), now=0.0) is None
    assert reassembler.feed(udh8(9, 2, 1, b"new "), now=1.0) is None
    message = reassembler.feed(udh8(9, 2, 2, b"one"), now=1.0)
    assert message is not None
    assert message.text == "new one"
    assert len(reassembler) == 0


def test_expiry() -> None:
    reassembler = Reassembler(timeout=10.0)
    assert reassembler.next_deadline() is None
    reassembler.feed(udh8(1, 2, 1, b"a"), now=100.0)
    reassembler.feed(udh8(2, 2, 1, b"b"), now=105.0)
    assert reassembler.next_deadline() == 110.0
    assert reassembler.expire(109.9) == []
    assert reassembler.expire(110.0) == [GroupKey(SRC, DST, "udh8", 1)]
    assert len(reassembler) == 1
    # A part of an expired message starts over rather than completing it.
    assert reassembler.feed(udh8(2, 2, 2, b"c"), now=200.0) is None
    assert len(reassembler) == 1
    assert reassembler.next_deadline() == 210.0


def test_bounded_number_of_groups_evicts_the_oldest() -> None:
    reassembler = Reassembler(max_pending=3)
    for ref in range(10):
        assert reassembler.feed(udh8(ref, 2, 1, b"x"), now=float(ref)) is None
    assert len(reassembler) == 3
    assert reassembler.evicted == 7
    assert reassembler.feed(udh8(2, 2, 2, b"y"), now=20.0) is None  # ref 2 was evicted
    message = reassembler.feed(udh8(9, 2, 2, b"y"), now=20.0)
    assert message is not None
    assert message.text == "xy"


def test_bounded_bytes() -> None:
    # One group of one part: the overheads, its short_message (UDH + 40) and the body copy (40).
    one = GROUP_OVERHEAD + PART_OVERHEAD + 46 + 40
    limit = 2 * one + 10
    reassembler = Reassembler(max_pending_bytes=limit)
    for ref in range(3):
        reassembler.feed(udh8(ref, 3, 1, b"x" * 40), now=0.0)
    assert reassembler.pending_bytes == 2 * one
    assert len(reassembler) == 2
    assert reassembler.feed(udh8(7, 2, 1, b"x" * limit), now=0.0) is None
    assert reassembler.pending_bytes <= limit


def test_binary_data_coding_is_refused_and_not_stored() -> None:
    reassembler = Reassembler()
    with pytest.raises(UnsupportedDataCodingError):
        reassembler.feed(udh8(1, 2, 1, b"\x00\x01", data_coding=4), now=0.0)
    assert len(reassembler) == 0


def test_undecodable_text_strict_or_replaced() -> None:
    with pytest.raises(UndecodableTextError):
        Reassembler().feed(DeliverSm(SRC, DST, b"\x00\x41\x00", data_coding=8), now=0.0)
    message = Reassembler(errors="replace").feed(DeliverSm(SRC, DST, b"a\xff"), now=0.0)
    assert message is not None
    assert message.text == "a\ufffd"


def test_mixed_data_coding_parts_are_decoded_one_by_one() -> None:
    reassembler = Reassembler()
    assert reassembler.feed(udh8(3, 2, 1, b"ab"), now=0.0) is None
    message = reassembler.feed(udh8(3, 2, 2, bytes.fromhex("010D"), data_coding=8), now=0.0)
    assert message is not None
    assert message.text == "abč"


@pytest.mark.parametrize(
    ("short_message", "tlvs"),
    [
        (bytes.fromhex("05 00 03 01 02"), ()),  # UDHL past the data
        (b"", ()),  # UDHI without data
    ],
)
def test_malformed_udh(short_message: bytes, tlvs: tuple[Tlv, ...]) -> None:
    reassembler = Reassembler()
    with pytest.raises(UdhError):
        reassembler.feed(DeliverSm(SRC, DST, short_message, 0x40, 0, tlvs), now=0.0)
    assert len(reassembler) == 0


@pytest.mark.parametrize(
    "short_message",
    [
        bytes.fromhex("05 00 03 01 02 00 41"),  # seq 0
        bytes.fromhex("05 00 03 01 02 03 41"),  # seq > total
        bytes.fromhex("05 00 03 01 00 01 41"),  # total 0
    ],
)
def test_concat_ie_with_impossible_numbers_makes_a_single_message(short_message: bytes) -> None:
    # 23.040 9.2.3.24.1: such an IE is ignored, so the part is a message of its own ("A").
    reassembler = Reassembler()
    message = reassembler.feed(DeliverSm(SRC, DST, short_message, 0x40, 0), now=0.0)
    assert message is not None
    assert (message.text, message.total, message.reference) == ("A", 1, None)
    assert len(reassembler) == 0


@pytest.mark.parametrize(
    "tlvs",
    [
        (Tlv(SAR_MSG_REF_NUM, 1), Tlv(SAR_TOTAL_SEGMENTS, 2)),  # no seqnum
        (Tlv(SAR_MSG_REF_NUM, 1), Tlv(SAR_TOTAL_SEGMENTS, 2), Tlv(SAR_SEGMENT_SEQNUM, 3)),
        (Tlv(SAR_MSG_REF_NUM, 1), Tlv(SAR_TOTAL_SEGMENTS, 0), Tlv(SAR_SEGMENT_SEQNUM, 0)),
        (Tlv(SAR_MSG_REF_NUM, b""), Tlv(SAR_TOTAL_SEGMENTS, 2), Tlv(SAR_SEGMENT_SEQNUM, 1)),
        (Tlv(SAR_MSG_REF_NUM, "x"), Tlv(SAR_TOTAL_SEGMENTS, 2), Tlv(SAR_SEGMENT_SEQNUM, 1)),
    ],
)
def test_malformed_sar(tlvs: tuple[Tlv, ...]) -> None:
    with pytest.raises(UdhError):
        Reassembler().feed(DeliverSm(SRC, DST, b"a", 0, 0, tlvs), now=0.0)


@given(st.binary(max_size=200), st.sampled_from([0x00, 0x03, 0x08, 0xF0]), st.booleans())
def test_hostile_udh_raises_only_udh_error(data: bytes, data_coding: int, packed: bool) -> None:
    reassembler = Reassembler(errors="replace", packed=packed, max_pending=4)
    try:
        reassembler.feed(DeliverSm(SRC, DST, data, 0x40, data_coding), now=0.0)
    except UdhError:
        assert len(reassembler) == 0


@given(st.lists(st.binary(max_size=40), max_size=30))
def test_hostile_stream_stays_bounded(payloads: list[bytes]) -> None:
    reassembler = Reassembler(errors="replace", max_pending=5, max_pending_bytes=4000)
    for n, payload in enumerate(payloads):
        with contextlib.suppress(TextError):
            reassembler.feed(DeliverSm(SRC, DST, payload, 0x40, 0), now=float(n))
        assert len(reassembler) <= 5
        assert reassembler.pending_bytes <= 4000
