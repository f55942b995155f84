"""UCS-2 as UTF-16BE: golden vectors, surrogate pairs, invalid input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms.text import UndecodableTextError, UnencodableTextError, ucs2


@pytest.mark.parametrize(
    ("text", "hex_"),
    [
        ("Ahoj", "00 41 00 68 00 6F 00 6A"),
        ("č", "01 0D"),
        ("€", "20 AC"),
        ("😀", "D8 3D DE 00"),  # U+1F600 as a surrogate pair
        ("a😀b", "00 61 D8 3D DE 00 00 62"),
    ],
)
def test_golden(text: str, hex_: str) -> None:
    assert ucs2.encode(text) == bytes.fromhex(hex_)
    assert ucs2.decode(bytes.fromhex(hex_)) == text


def test_unit_count_counts_astral_characters_twice() -> None:
    assert ucs2.unit_count("") == 0
    assert ucs2.unit_count("čau") == 3
    assert ucs2.unit_count("😀") == 2
    assert ucs2.unit_count("a😀👍b") == 6


@pytest.mark.parametrize("hex_", ["00", "00 41 00", "D8 3D", "DE 00 00 41", "D8 3D 00 41"])
def test_invalid_utf16_raises(hex_: str) -> None:
    with pytest.raises(UndecodableTextError):
        ucs2.decode(bytes.fromhex(hex_))
    assert "\ufffd" in ucs2.decode(bytes.fromhex(hex_), errors="replace")


def test_lone_surrogate_in_str_is_unencodable() -> None:
    with pytest.raises(UnencodableTextError) as info:
        ucs2.encode("a\ud83d")
    assert info.value.encoding == "ucs2"


@given(st.text(max_size=300))
def test_round_trip_any_unicode(text: str) -> None:
    encoded = ucs2.encode(text)
    assert ucs2.decode(encoded) == text
    assert len(encoded) == 2 * ucs2.unit_count(text)


@given(st.text(alphabet=st.characters(min_codepoint=0x10000), min_size=1, max_size=50))
def test_round_trip_astral_only(text: str) -> None:
    encoded = ucs2.encode(text)
    assert len(encoded) == 4 * len(text)
    assert ucs2.decode(encoded) == text
