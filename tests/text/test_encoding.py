"""Encoding names, automatic choice, data_coding both ways, encode/decode round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms.errors import O2smsError
from o2sms.text import (
    Encoding,
    SplitMethod,
    TextError,
    UnencodableTextError,
    UnsupportedDataCodingError,
    choose_encoding,
    data_coding_for,
    decode,
    encode,
    encoding_for_data_coding,
    is_gsm7,
)

GSM_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà\x0c^{}\\[~]|€"
)


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("gsm7", Encoding.GSM7),
        ("GSM7", Encoding.GSM7),
        ("latin1", Encoding.LATIN1),
        ("Latin-1", Encoding.LATIN1),
        ("ucs2", Encoding.UCS2),
        ("UCS-2", Encoding.UCS2),
        (Encoding.UCS2, Encoding.UCS2),
    ],
)
def test_encoding_names(name: str, member: Encoding) -> None:
    assert Encoding(name) is member
    assert encode("a", name) == encode("a", member)


def test_unknown_encoding_and_method_names_are_text_errors() -> None:
    with pytest.raises(TextError, match="unknown encoding 'utf8'"):
        encode("a", "utf8")
    from o2sms.text import split

    with pytest.raises(TextError, match="unknown split method"):
        split("a", method="udh32")
    assert SplitMethod("SAR") is SplitMethod.SAR


def test_text_errors_are_value_errors_and_o2sms_errors() -> None:
    assert issubclass(TextError, ValueError)
    assert issubclass(TextError, O2smsError)
    assert issubclass(UnencodableTextError, TextError)
    assert issubclass(UnsupportedDataCodingError, TextError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Encoding.GSM7),
        ("Hello @ 5€ [x]", Encoding.GSM7),
        ("Ahoj, ako sa máš?", Encoding.UCS2),  # á is not GSM
        ("Grüße Äpfel é", Encoding.GSM7),
        ("Ahoj čau", Encoding.UCS2),
        ("😀", Encoding.UCS2),
        ("ç", Encoding.GSM7),
        ("`", Encoding.UCS2),
    ],
)
def test_choose_encoding(text: str, expected: Encoding) -> None:
    assert choose_encoding(text) is expected
    assert is_gsm7(text) is (expected is Encoding.GSM7)


def test_latin1_is_never_chosen_automatically() -> None:
    # "á" fits Latin-1, but the automatic choice is UCS-2.
    assert choose_encoding("á") is Encoding.UCS2
    assert encode("á", "latin1") == b"\xe1"


def test_latin1_unencodable() -> None:
    with pytest.raises(UnencodableTextError) as info:
        encode("ač€", Encoding.LATIN1)
    assert info.value.characters == "č€"


@pytest.mark.parametrize(
    ("encoding", "flash", "data_coding"),
    [
        ("gsm7", False, 0x00),
        ("latin1", False, 0x03),
        ("ucs2", False, 0x08),
        ("gsm7", True, 0x10),
        ("ucs2", True, 0x18),
    ],
)
def test_data_coding_for(encoding: str, flash: bool, data_coding: int) -> None:
    assert data_coding_for(encoding, flash=flash) == data_coding


def test_latin1_has_no_flash_form() -> None:
    with pytest.raises(TextError, match=r"flash .* cannot be Latin-1"):
        data_coding_for("latin1", flash=True)


@pytest.mark.parametrize(
    ("data_coding", "expected"),
    [
        (0x00, Encoding.GSM7),
        (0x01, Encoding.GSM7),
        (0x03, Encoding.LATIN1),
        (0x08, Encoding.UCS2),
        (0x10, Encoding.GSM7),  # general group, class 0 (flash)
        (0x11, Encoding.GSM7),
        (0x13, Encoding.GSM7),
        (0x18, Encoding.UCS2),  # UCS-2 flash
        (0x1B, Encoding.UCS2),
        (0xC0, Encoding.GSM7),  # MWI discard
        (0xD5, Encoding.GSM7),  # MWI store
        (0xE0, Encoding.UCS2),  # MWI store UCS-2
        (0xF0, Encoding.GSM7),  # class 0
        (0xF3, Encoding.GSM7),
    ],
)
def test_encoding_for_data_coding(data_coding: int, expected: Encoding) -> None:
    assert encoding_for_data_coding(data_coding) is expected


@pytest.mark.parametrize("data_coding", [0x02, 0x04, 0x14, 0x15, 0xF4, 0xF7])
def test_binary_data_coding_is_not_text(data_coding: int) -> None:
    with pytest.raises(UnsupportedDataCodingError, match="binary") as info:
        decode(b"\x01\x02", data_coding)
    assert info.value.data_coding == data_coding


@pytest.mark.parametrize(
    "data_coding", [0x05, 0x06, 0x07, 0x09, 0x0E, 0x0F, 0x1C, 0x20, 0x40, 0xBF]
)
def test_unsupported_data_coding(data_coding: int) -> None:
    with pytest.raises(UnsupportedDataCodingError, match=f"0x{data_coding:02X}"):
        encoding_for_data_coding(data_coding)


def test_decode_golden() -> None:
    assert decode(bytes.fromhex("61 1B 65"), 0) == "a€"
    assert decode(bytes.fromhex("E8329BFD4697D9EC37"), 0, packed=True) == "hellohello"
    assert decode(bytes.fromhex("E1 E9"), 3) == "áé"
    assert decode(bytes.fromhex("01 0D D8 3D DE 00"), 8) == "č😀"
    assert decode(bytes.fromhex("00 41"), 0x18) == "A"


@given(
    st.one_of(st.text(alphabet=GSM_ALPHABET, max_size=300), st.text(alphabet="a\r", max_size=40)),
    st.booleans(),
)
def test_round_trip_gsm7(text: str, packed: bool) -> None:
    data = encode(text, "gsm7", packed=packed)
    assert decode(data, data_coding_for("gsm7"), packed=packed) == text


@given(st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=300))
def test_round_trip_latin1(text: str) -> None:
    assert decode(encode(text, "latin1"), 3) == text


@given(st.text(max_size=300))
def test_round_trip_ucs2(text: str) -> None:
    assert decode(encode(text, "ucs2"), 8) == text
    assert decode(encode(text, "ucs2"), 0x18) == text
