"""Opt-in transliteration to GSM 03.38, built for Slovak and Czech (and good for most Latin text).

Characters GSM already has are never touched (é, ä, ö, ü, Ä, Ö, Ü, É, ñ, à, å, ø, ß, Greek
capitals...). Others get their closest GSM form: an explicit table for punctuation and spaces,
then Unicode decomposition with the accents GSM lacks dropped (č -> c, ô -> o, ǘ -> ü), then
compatibility decomposition (full-width letters, ligatures). What has no GSM form stays, so the
text then still needs UCS-2. The table covers the Latin, punctuation and full-width blocks and is
built at import; the work per message is one NFC normalisation and one ``str.translate``.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from o2sms.text.gsm0338 import CHARACTERS

PUNCTUATION: Final[dict[str, str]] = {
    "„": '"',  # U+201E double low-9 quotation mark (Slovak/Czech opening quote)
    "“": '"',  # U+201C
    "”": '"',  # U+201D
    "‟": '"',  # U+201F
    "«": '"',  # U+00AB
    "»": '"',  # U+00BB
    "″": '"',  # U+2033 double prime
    "‚": "'",  # U+201A single low-9 quotation mark
    "‘": "'",  # U+2018
    "’": "'",  # U+2019
    "‛": "'",  # U+201B
    "‹": "'",  # U+2039
    "›": "'",  # U+203A
    "′": "'",  # U+2032 prime
    "´": "'",  # U+00B4 acute accent
    "`": "'",  # U+0060 grave accent, not in GSM 03.38
    "‐": "-",  # U+2010 hyphen
    "‑": "-",  # U+2011 non-breaking hyphen
    "‒": "-",  # U+2012 figure dash
    "–": "-",  # U+2013 en dash
    "—": "-",  # U+2014 em dash
    "―": "-",  # U+2015 horizontal bar
    "−": "-",  # U+2212 minus sign
    "…": "...",  # U+2026
    "\t": " ",
    "\u00a0": " ",  # no-break space
    "\u1680": " ",  # ogham space mark
    "\u202f": " ",  # narrow no-break space
    "\u205f": " ",  # medium mathematical space
    "\u3000": " ",  # ideographic space
    "\u00ad": "",  # soft hyphen: invisible, dropped
    "\u200b": "",  # zero-width space
    "\ufeff": "",  # zero-width no-break space (BOM)
    "ł": "l",  # no decomposition in Unicode
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ı": "i",
    "œ": "oe",
    "Œ": "OE",
}
"""Explicit mappings, applied before decomposition; every value is GSM 03.38 text."""

_RANGES: Final = (
    range(0x0080, 0x0250),  # Latin-1 supplement, Latin extended A and B
    range(0x0300, 0x0370),  # combining diacritical marks (left over after NFC)
    range(0x1E00, 0x1F00),  # Latin extended additional (Vietnamese and more)
    range(0x2000, 0x2070),  # general punctuation, Unicode spaces
    range(0xFB00, 0xFB07),  # Latin ligatures ﬁ ﬂ ...
    range(0xFF01, 0xFF5F),  # full-width ASCII
)


def _is_gsm(text: str) -> bool:
    """True when every character of ``text`` is in GSM 03.38."""
    return all(c in CHARACTERS for c in text)


def _closest(char: str) -> str | None:
    """The GSM form of one non-GSM character, or None when it has none."""
    if char in PUNCTUATION:
        return PUNCTUATION[char]
    if unicodedata.category(char) == "Zs":
        return " "
    if unicodedata.category(char) == "Mn":
        return ""  # a combining mark NFC could not attach to a GSM letter
    for form in ("NFD", "NFKD"):
        parts = unicodedata.normalize(form, char)
        base = "".join(c for c in parts if not unicodedata.combining(c))
        marks = [c for c in parts if unicodedata.combining(c)]
        # Keep as many accents as GSM allows: ǘ -> ü, ấ -> a.
        for keep in range(len(marks), -1, -1):
            candidate = unicodedata.normalize("NFC", base + "".join(marks[:keep]))
            if candidate and candidate != char and _is_gsm(candidate):
                return candidate
    return None


def _build_table() -> dict[int, str]:
    """Code point -> GSM replacement for every mappable character outside GSM 03.38."""
    table: dict[int, str] = {}
    candidates = {cp for r in _RANGES for cp in r} | {ord(c) for c in PUNCTUATION}
    for cp in sorted(candidates):
        char = chr(cp)
        if char in CHARACTERS:
            continue
        replacement = _closest(char)
        if replacement is not None:
            table[cp] = replacement
    return table


TABLE: Final[dict[int, str]] = _build_table()
"""The ``str.translate`` table behind :func:`transliterate`."""


def transliterate(text: str) -> str:
    """Replace characters GSM 03.38 lacks with their closest GSM form; keep all others.

    >>> transliterate("Kôň „pije“ – č")
    'Kon "pije" - c'
    """
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text.translate(TABLE)
