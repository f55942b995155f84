"""GSM 03.38 tables, unpacked and packed 7-bit: golden vectors from 23.038 and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms.text import UndecodableTextError, UnencodableTextError, gsm0338

# The basic table as printed in the reference (section 8), index = GSM code.
REFERENCE_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = "\x0c^{}\\[~]|€"
# Characters that survive decode(encode(c)) unchanged: all but ESC, plus the extension table.
ALPHABET = REFERENCE_BASIC.replace("\x1b", "") + EXTENSION
gsm_text = st.text(alphabet=ALPHABET, max_size=400)


def reference_pack(septets: bytes, fill_bits: int = 0) -> bytes:
    """The textbook bit-accumulator loop of the reference, an oracle independent of the code."""
    acc, bits, out = 0, fill_bits, bytearray()
    for septet in septets:
        acc |= septet << bits
        bits += 7
        while bits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            bits -= 8
    if bits:
        out.append(acc & 0xFF)
    return bytes(out)


def test_basic_table_matches_the_reference() -> None:
    assert len(REFERENCE_BASIC) == 128
    assert gsm0338.BASIC_TABLE == REFERENCE_BASIC


@pytest.mark.parametrize(
    ("char", "code"),
    [
        ("@", "00"),  # 0x00 is a real character, never a terminator
        ("£", "01"),
        ("$", "02"),
        ("Ç", "09"),
        ("ç", "09"),  # small ç also encodes to 0x09 (unicode.org mapping)
        ("\n", "0A"),
        ("\r", "0D"),
        ("Δ", "10"),
        ("_", "11"),
        ("É", "1F"),
        (" ", "20"),
        ("¤", "24"),
        ("¡", "40"),
        ("A", "41"),
        ("§", "5F"),  # not the backtick python-smpplib puts there
        ("¿", "60"),
        ("a", "61"),
        ("ä", "7B"),
        ("à", "7F"),
        ("\x0c", "1B 0A"),
        ("^", "1B 14"),
        ("{", "1B 28"),
        ("}", "1B 29"),
        ("\\", "1B 2F"),
        ("[", "1B 3C"),
        ("~", "1B 3D"),
        ("]", "1B 3E"),
        ("|", "1B 40"),
        ("€", "1B 65"),
    ],
)
def test_encode_golden(char: str, code: str) -> None:
    assert gsm0338.encode(char) == bytes.fromhex(code)


def test_decode_0x09_is_capital_c_cedilla() -> None:
    assert gsm0338.decode(b"\x09") == "\u00c7"


def test_decode_escape_edge_cases() -> None:
    assert gsm0338.decode(bytes.fromhex("61 1B 65 62")) == "a€b"
    assert gsm0338.decode(bytes.fromhex("1B 41")) == "A"  # undefined extension code: basic char
    assert gsm0338.decode(bytes.fromhex("1B 1B 41")) == " A"  # ESC ESC: a space (23.038)


def test_escape_shows_only_what_its_follower_selects() -> None:
    # 23.038, chosen over unicode.org's NBSP (docs/text.md, "Escape"): ESC is never a
    # character itself; it shows the follower's extension character, else its basic one.
    # A lone trailing ESC has no follower, so it shows nothing (not a space, not U+00A0).
    assert gsm0338.decode(bytes.fromhex("61 1B")) == "a"
    assert gsm0338.decode(bytes.fromhex("1B")) == ""
    assert gsm0338.decode(bytes.fromhex("1B 0D")) == "\r"  # undefined code 0x0D: basic CR
    assert gsm0338.decode(bytes.fromhex("1B 1B")) == " "  # reserved ESC ESC: a space
    assert "\u00a0" not in gsm0338.decode(bytes.fromhex("61 1B 1B 1B 20 1B"))
    assert gsm0338.decode_packed(gsm0338.pack(b"ab\x1b")) == "ab"


def test_decode_rejects_octets_above_0x7f() -> None:
    with pytest.raises(UndecodableTextError, match="0x80"):
        gsm0338.decode(b"a\x80")
    assert gsm0338.decode(b"a\x80", errors="replace") == "a\ufffd"


@pytest.mark.parametrize(
    ("text", "bad"),
    [("`", "`"), ("čač", "č"), ("a\x1bb", "\x1b"), ("\x00", "\x00"), ("😀ř", "😀ř"), ("\t", "\t")],
)
def test_unencodable(text: str, bad: str) -> None:
    assert not gsm0338.is_encodable(text)
    with pytest.raises(UnencodableTextError) as info:
        gsm0338.encode("ok " + text)
    assert info.value.encoding == "gsm7"
    assert info.value.characters == bad


def test_septet_count() -> None:
    assert gsm0338.septet_count("") == 0
    assert gsm0338.septet_count("abc") == 3
    assert gsm0338.septet_count("€") == 2
    assert gsm0338.septet_count("a[b]") == 6


def test_pack_golden_hellohello() -> None:
    # 3GPP / reference section 8 vector.
    assert gsm0338.encode_packed("hellohello") == bytes.fromhex("E8 32 9B FD 46 97 D9 EC 37")
    assert gsm0338.decode_packed(bytes.fromhex("E8329BFD4697D9EC37")) == "hellohello"


def test_pack_golden_with_udh_fill_bit() -> None:
    # Reference: ref 0x42 part 1/2 "hellohello" = 05 00 03 42 02 01 | D0 65 36 FB 8D 2E B3 D9 6F.
    assert gsm0338.encode_packed("hellohello", 1) == bytes.fromhex("D0 65 36 FB 8D 2E B3 D9 6F")
    assert gsm0338.decode_packed(bytes.fromhex("D06536FB8D2EB3D96F"), 1) == "hellohello"


def test_pack_pads_8n_minus_1_septets_with_cr() -> None:
    # "1234567" = 7 septets = 49 bits: 7 spare bits in octet 7 would read as "@", so a CR
    # (0x0D) fills them: last octet = 0x37 >> 6 | 0x0D << 1 = 0x1A.
    assert gsm0338.encode_packed("1234567") == bytes.fromhex("31 D9 8C 56 B3 DD 1A")
    assert gsm0338.pack(b"1234567", pad_cr=False) == bytes.fromhex("31 D9 8C 56 B3 DD 00")
    assert gsm0338.decode_packed(bytes.fromhex("31D98C56B3DD1A")) == "1234567"
    # Zero pad bits from a non-23.038 sender are kept as "@": the choice documented in unpack().
    assert gsm0338.decode_packed(bytes.fromhex("31D98C56B3DD00")) == "1234567@"
    # With the count known there is no ambiguity.
    assert gsm0338.decode_packed(bytes.fromhex("31D98C56B3DD1A"), septets=8) == "1234567\r"


def test_pack_full_eight_septets_needs_no_pad() -> None:
    assert gsm0338.encode_packed("12345678") == bytes.fromhex("31 D9 8C 56 B3 DD 70")
    assert gsm0338.decode_packed(bytes.fromhex("31D98C56B3DD70")) == "12345678"


def test_text_ending_with_cr_on_octet_boundary_round_trips_exactly() -> None:
    # 23.038: "1234567\r" ends exactly on an octet boundary, so another CR is added (and a
    # zero bit). The decoder recognises that second CR and drops it: the text comes back.
    packed = gsm0338.encode_packed("1234567\r")
    assert packed == bytes.fromhex("31 D9 8C 56 B3 DD 1A 0D")
    assert gsm0338.decode_packed(packed) == "1234567\r"
    assert gsm0338.decode_packed(gsm0338.encode_packed("x" * 7 + "\r")) == "x" * 7 + "\r"
    # With one fill bit the boundary falls one septet earlier.
    assert gsm0338.decode_packed(gsm0338.encode_packed("x" * 6 + "\r", 1), 1) == "x" * 6 + "\r"


def test_packed_round_trip_is_exact_for_every_trailing_cr_run() -> None:
    # Exhaustive over short texts: any run of trailing CRs, after any prefix length and fill.
    for fill in range(7):
        for length in range(40):
            for crs in range(length + 1):
                septets = b"a" * (length - crs) + b"\r" * crs
                packed = gsm0338.pack(septets, fill)
                assert len(packed) == gsm0338.packed_size(septets, fill)
                assert gsm0338.unpack(packed, fill) == septets, (fill, length, crs)


def test_a_full_160_septet_text_ending_in_cr_needs_141_octets() -> None:
    # 160 septets fill 140 octets exactly, so their final CR is ambiguous with the 23.038 pad
    # of a 159-septet text: the second CR needs a 141st octet (docs/text.md explains why).
    assert gsm0338.packed_size(b"a" * 160) == 140
    assert gsm0338.packed_size(b"a" * 159) == 140
    assert gsm0338.packed_size(b"a" * 159 + b"\r") == 141
    # The ambiguity: 159 septets + their pad CR are the same 140 octets as 160 bare septets.
    assert gsm0338.pack(b"a" * 159) == gsm0338.pack(b"a" * 159 + b"\r", pad_cr=False)


def test_unpack_rejects_impossible_septet_count() -> None:
    with pytest.raises(UndecodableTextError):
        gsm0338.unpack(b"\x00", septets=2)


def test_pack_and_unpack_of_nothing() -> None:
    assert gsm0338.pack(b"") == b""
    assert gsm0338.unpack(b"") == b""
    # One fill bit leaves 7 spare bits: 23.038 fills them with CR, which decoding drops.
    assert gsm0338.pack(b"", 1) == b"\x1a"
    assert gsm0338.unpack(b"\x1a", 1) == b""


@given(gsm_text)
def test_round_trip_unpacked(text: str) -> None:
    assert gsm0338.decode(gsm0338.encode(text)) == text


@given(st.one_of(gsm_text, st.text(alphabet="a\r€", max_size=60)), st.integers(0, 6))
def test_round_trip_packed(text: str, fill: int) -> None:
    packed = gsm0338.encode_packed(text, fill)
    assert len(packed) == gsm0338.packed_size(gsm0338.encode(text), fill)
    assert gsm0338.decode_packed(packed, fill) == text


@given(st.binary(max_size=300).map(lambda b: bytes(x & 0x7F for x in b)), st.integers(0, 6))
def test_pack_matches_reference_loop(septets: bytes, fill: int) -> None:
    assert gsm0338.pack(septets, fill, pad_cr=False) == reference_pack(septets, fill)
    assert gsm0338.unpack(reference_pack(septets, fill), fill, septets=len(septets)) == septets


@given(st.binary(max_size=200), st.integers(0, 6))
def test_unpack_any_bytes_gives_septets(data: bytes, fill: int) -> None:
    septets = gsm0338.unpack(data, fill, strip_cr=False)
    assert len(septets) == max(8 * len(data) - fill, 0) // 7
    assert septets.isascii()
