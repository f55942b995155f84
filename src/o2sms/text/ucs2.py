"""UCS-2 as SMSCs really use it: UTF-16BE, so astral characters (emoji) travel as surrogate pairs."""

from __future__ import annotations

from o2sms.text.errors import UndecodableTextError, UnencodableTextError
from o2sms.text.gsm0338 import Errors


def encode(text: str) -> bytes:
    """Text -> UTF-16BE; a lone surrogate in the str cannot be sent and raises."""
    try:
        return text.encode("utf-16-be")
    except UnicodeEncodeError as exc:
        bad = "".join(dict.fromkeys(text[exc.start : exc.end]))
        raise UnencodableTextError(
            f"UCS-2 cannot carry the lone surrogate {bad!r} at index {exc.start}",
            encoding="ucs2",
            characters=bad,
        ) from None


def decode(data: bytes, *, errors: Errors = "strict") -> str:
    """UTF-16BE -> text; odd length or a lone surrogate raises (or gives U+FFFD with "replace")."""
    try:
        return data.decode("utf-16-be", errors)
    except UnicodeDecodeError as exc:
        raise UndecodableTextError(
            f"invalid UTF-16BE at offsets {exc.start}..{exc.end - 1}: {exc.reason}"
        ) from None


def unit_count(text: str) -> int:
    """UTF-16 code units the text takes: 1 per BMP character, 2 per astral one (emoji)."""
    return len(encode(text)) // 2


def is_high_surrogate(high_octet: int) -> bool:
    """True when a UTF-16BE unit whose first octet is ``high_octet`` opens a surrogate pair."""
    return 0xD8 <= high_octet <= 0xDB
