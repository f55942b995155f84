"""User data header build/parse: golden octets, malformed headers raise only UdhError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms.text import UdhError, udh
from o2sms.text.udh import Concat, InformationElement


def test_build_concat_golden() -> None:
    assert udh.build_concat(0x42, 2, 1) == bytes.fromhex("05 00 03 42 02 01")
    assert udh.build_concat(0x1234, 3, 3, ref16=True) == bytes.fromhex("06 08 04 12 34 03 03")


@pytest.mark.parametrize(
    ("reference", "total", "seq", "ref16"),
    [
        (256, 2, 1, False),
        (-1, 2, 1, False),
        (65536, 2, 1, True),
        (1, 0, 0, False),
        (1, 2, 0, False),
        (1, 2, 3, False),
        (1, 256, 1, True),
    ],
)
def test_build_concat_rejects_bad_values(reference: int, total: int, seq: int, ref16: bool) -> None:
    with pytest.raises(UdhError):
        udh.build_concat(reference, total, seq, ref16=ref16)


def test_parse_concat_8() -> None:
    header = udh.parse(bytes.fromhex("05 00 03 42 02 01 D0 65"))
    assert header.length == 6
    assert header.concat == Concat(0x42, 2, 1, ref16=False)
    assert header.elements == (InformationElement(0x00, bytes.fromhex("42 02 01")),)
    assert header.other_elements == ()


def test_parse_concat_16_after_a_port_ie() -> None:
    # UDHL 0x0C: ports IE (05 04 0B84 23F0) then 16-bit concat IE (08 04 ABCD 03 02).
    data = bytes.fromhex("0C 05 04 0B 84 23 F0 08 04 AB CD 03 02 48 49")
    header, rest = udh.split_user_data(data)
    assert header.length == 13
    assert rest == b"HI"
    assert header.concat == Concat(0xABCD, 3, 2, ref16=True)
    assert header.other_elements == (InformationElement(0x05, bytes.fromhex("0B 84 23 F0")),)


def test_unknown_ies_are_skipped_and_empty_header_is_valid() -> None:
    header = udh.parse(bytes.fromhex("07 70 00 24 03 00 00 01 41"))
    assert header.concat is None
    assert [e.iei for e in header.elements] == [0x70, 0x24]
    assert udh.parse(b"\x00abc").length == 1


def test_last_concat_ie_wins() -> None:
    header = udh.parse(bytes.fromhex("0A 00 03 01 02 01 00 03 07 03 02"))
    assert header.concat == Concat(7, 3, 2)


@pytest.mark.parametrize(
    "hex_",
    [
        "",  # UDHI set but nothing there
        "05 00 03 42 02",  # UDHL runs past the data
        "01 00",  # IE header cut by UDHL
        "03 00 03 42",  # IE data runs past the UDH
        "04 00 02 42 02",  # 8-bit concat IE with IEDL 2
        "06 00 04 42 02 01 00",  # 8-bit concat IE with IEDL 4
        "05 08 03 00 01 01",  # 16-bit concat IE with IEDL 3
    ],
)
def test_malformed(hex_: str) -> None:
    with pytest.raises(UdhError):
        udh.parse(bytes.fromhex(hex_))


@pytest.mark.parametrize(
    "hex_",
    [
        "05 00 03 42 02 00",  # seq 0
        "05 00 03 42 02 03",  # seq > total
        "05 00 03 42 00 00",  # total 0
        "06 08 04 12 34 02 00",  # 16-bit reference, seq 0
        "06 08 04 12 34 00 01",  # 16-bit reference, total 0
    ],
)
def test_concat_ie_with_impossible_numbers_is_ignored(hex_: str) -> None:
    # 23.040 9.2.3.24.1: total 0, seq 0 or seq above total -> the receiving entity ignores the
    # whole IE: the header parses, with no concatenation (the message stands alone).
    data = bytes.fromhex(hex_)
    header = udh.parse(data)
    assert header.concat is None
    assert header.length == len(data)
    assert header.elements == (InformationElement(data[1], data[3:]),)


def test_an_ignored_concat_ie_leaves_an_earlier_valid_one() -> None:
    # UDHL 0x0A: concat 8-bit (ref 1, 3 parts, part 2), then one with seq 0 (ignored).
    header = udh.parse(bytes.fromhex("0A 00 03 01 03 02 00 03 07 03 00"))
    assert header.concat == Concat(1, 3, 2)


@given(st.binary(max_size=64))
def test_random_bytes_raise_only_udh_error(data: bytes) -> None:
    try:
        header = udh.parse(data)
    except UdhError:
        return
    assert 1 <= header.length <= len(data)
    assert header.length == 1 + sum(2 + len(e.data) for e in header.elements)


@given(st.integers(0, 255), st.integers(1, 255), st.data())
def test_build_parse_round_trip(reference: int, total: int, data: st.DataObject) -> None:
    seq = data.draw(st.integers(1, total))
    ref16 = data.draw(st.booleans())
    if ref16:
        reference = data.draw(st.integers(0, 0xFFFF))
    built = udh.build_concat(reference, total, seq, ref16=ref16)
    assert udh.parse(built).concat == Concat(reference, total, seq, ref16)
    assert udh.parse(udh.build(udh.parse(built).elements)) == udh.parse(built)


def test_fill_bits_and_header_septets() -> None:
    # Reference section 8: 6-octet UDH -> 1 fill bit, 7 septets; 7-octet -> 0 fill bits, 8.
    assert (udh.fill_bits(6), udh.header_septets(6)) == (1, 7)
    assert (udh.fill_bits(7), udh.header_septets(7)) == (0, 8)
    assert (udh.fill_bits(12), udh.header_septets(12)) == (2, 14)
