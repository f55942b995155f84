"""GSM 03.38 encoding's ASCII fast path gives what the general translate gives."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from o2sms.text import gsm0338
from o2sms.text.errors import UnencodableTextError


def reference(text: str) -> bytes | str:
    """The general path alone: septets, or the error's message."""
    septets = text.translate(gsm0338._ENCODE)
    if not septets.isascii():
        return f"unencodable: {gsm0338.unencodable_characters(text)!r}"
    return septets.encode("ascii")


def encoded(text: str) -> bytes | str:
    try:
        return gsm0338.encode(text)
    except UnencodableTextError as exc:
        assert exc.characters == gsm0338.unencodable_characters(text)
        return f"unencodable: {exc.characters!r}"


@given(
    st.text(st.characters(codec="ascii"))
    | st.text(st.sampled_from([*"Hello @$_[]{}~^|\\`\x00\x1b\n\r\x0c", "é", "€", "Ω", "č"]))
)
@example("".join(chr(c) for c in range(0x80)))
@example("Your parcel 4711 arrives today between 14:00 and 16:00. Reply STOP to.")
def test_encode_agrees_with_the_general_translate(text: str) -> None:
    assert encoded(text) == reference(text)


@pytest.mark.parametrize(
    ("text", "septets"),
    [
        ("@£$", b"\x00\x01\x02"),
        ("A_b", b"A\x11b"),
        ("[x]", b"\x1b<x\x1b>"),
        ("", b""),
    ],
)
def test_encode_golden(text: str, septets: bytes) -> None:
    assert gsm0338.encode(text) == septets
