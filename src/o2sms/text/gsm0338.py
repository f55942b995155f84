"""GSM 03.38 (3GPP TS 23.038) default alphabet: tables, unpacked and packed 7-bit forms.

"Unpacked" means one septet per octet, which is what SMSCs usually expect in short_message;
"packed" is the air-interface form, septets laid LSB-first into octets (23.038 section 6.1.2.1).
Every table is built at import; encoding is one ``str.translate`` and decoding one
``codecs.charmap_decode``, so no Python loop runs per character.
"""

from __future__ import annotations

import codecs
import re
from functools import lru_cache
from typing import Final, Literal

from o2sms.text.errors import TextError, UndecodableTextError, UnencodableTextError

Errors = Literal["strict", "replace"]
"""How decoders treat invalid input: raise :class:`UndecodableTextError`, or put U+FFFD."""

ESCAPE: Final = 0x1B
"""The escape septet that announces a character of the extension table."""

CR: Final = 0x0D
"""Carriage return, the 23.038 padding septet for packed messages."""

BASIC_TABLE: Final = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The default alphabet, index = GSM code (0x09 decodes to capital Ç as in ETSI; 0x1B is ESC)."""

EXTENSION_TABLE: Final[dict[int, str]] = {
    0x0A: "\x0c",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}
"""Extension table: code after ESC -> character; each costs two septets."""

_SENTINEL: Final = "\uffff"  # non-ASCII marker for ASCII characters GSM lacks (e.g. the backtick)


def _build_encode_table() -> dict[int, str]:
    """Code point -> septet string (one char, or ESC + code) for ``str.translate``."""
    table: dict[int, str] = dict.fromkeys(range(0x80), _SENTINEL)
    for code, char in enumerate(BASIC_TABLE):
        if code != ESCAPE:
            table[ord(char)] = chr(code)
    table[ord("ç")] = "\x09"  # unicode.org maps 0x09 to small ç; accept both cases
    for code, char in EXTENSION_TABLE.items():
        table[ord(char)] = chr(ESCAPE) + chr(code)
    return table


_ENCODE: Final = _build_encode_table()
_CHARACTERS: Final = frozenset(chr(cp) for cp, s in _ENCODE.items() if s != _SENTINEL)
# After charmap-decoding, ESC is followed by the basic-table character of the extension code.
_EXTENSION_BY_BASIC: Final = {BASIC_TABLE[code]: char for code, char in EXTENSION_TABLE.items()}
_ESCAPE_PAIR: Final = re.compile("\x1b(.?)", re.DOTALL)

CHARACTERS: Final[frozenset[str]] = _CHARACTERS
"""Every character GSM 03.38 can carry (basic and extension tables, and small ç)."""


def unencodable_characters(text: str) -> str:
    """The distinct characters of ``text`` GSM 03.38 lacks, in order of first appearance."""
    return "".join(c for c in dict.fromkeys(text) if c not in _CHARACTERS)


def lone_surrogate_error(bad: str, encoding: str) -> UnencodableTextError | None:
    """The error for a text whose unencodable characters ``bad`` hold a lone surrogate, which
    no encoding carries (so "use UCS-2" would mislead); None when they hold none."""
    lone = "".join(c for c in bad if "\ud800" <= c <= "\udfff")
    if not lone:
        return None
    return UnencodableTextError(
        f"the text contains a lone UTF-16 surrogate {lone[0]!r} (broken Unicode), "
        "which no SMS encoding can carry",
        encoding=encoding,
        characters=lone,
    )


def is_encodable(text: str) -> bool:
    """True when every character is in the basic or extension table."""
    return text.translate(_ENCODE).isascii()


def _build_ascii_table() -> bytes:
    """ASCII octet -> its one septet, for ``bytes.translate``; 0xFF for the rest.

    0xFF (not ASCII) marks the ASCII characters that are not one basic-table septet: the
    extension characters (two septets) and those GSM lacks; texts with them take the
    general path.
    """
    table = bytearray(b"\xff" * 256)
    for code in range(0x80):
        septets = _ENCODE[code]
        if len(septets) == 1 and septets.isascii():
            table[code] = ord(septets)
    return bytes(table)


_ASCII_SEPTETS: Final = _build_ascii_table()


def encode(text: str) -> bytes:
    """Text -> unpacked septets (one per octet), extension characters as ESC + code."""
    if text.isascii():
        # The usual text: one octet translate, the same septets as the general path.
        octets = text.encode("ascii").translate(_ASCII_SEPTETS)
        if octets.isascii():
            return octets
    septets = text.translate(_ENCODE)
    if not septets.isascii():
        bad = unencodable_characters(text)
        lone = lone_surrogate_error(bad, "gsm7")
        if lone is not None:
            raise lone
        raise UnencodableTextError(
            f"GSM 03.38 has no {', '.join(repr(c) for c in bad)}; use UCS-2 or transliterate=True",
            encoding="gsm7",
            characters=bad,
        )
    return septets.encode("ascii")


def septet_count(text: str) -> int:
    """Septets the text takes: 1 per basic character, 2 per extension character."""
    return len(encode(text))


def _escape_pair(match: re.Match[str]) -> str:
    """One ESC sequence -> what 23.038 displays for it (see ``docs/text.md``, "Escape").

    ESC only selects the extension table for the septet after it: a defined code shows its
    extension character, an undefined one its basic-table character; ESC ESC (reserved for a
    further table) shows a space, as 23.038 asks; an ESC with no septet after it shows nothing.
    """
    follower = match.group(1)
    if follower == "":
        return ""
    if follower == "\x1b":
        return " "
    return _EXTENSION_BY_BASIC.get(follower, follower)


def decode(septets: bytes, *, errors: Errors = "strict") -> str:
    """Unpacked septets -> text; an octet above 0x7F is invalid (or U+FFFD with "replace")."""
    try:
        text, _ = codecs.charmap_decode(septets, errors, BASIC_TABLE)
    except UnicodeDecodeError as exc:
        raise UndecodableTextError(
            f"octet 0x{septets[exc.start]:02X} at offset {exc.start} is not a GSM 7-bit septet"
        ) from None
    if "\x1b" in text:
        text = _ESCAPE_PAIR.sub(_escape_pair, text)
    return text


@lru_cache(maxsize=64)
def _masks(groups: int) -> tuple[int, int, int, int, int, int]:
    """Lane masks that squeeze 8 octet-aligned septets into 7 octets, for ``groups`` groups."""
    m1 = int.from_bytes(b"\x7f\x00" * (4 * groups), "little")  # 7 bits per 16-bit lane
    m2 = int.from_bytes(b"\xff\x3f\x00\x00" * (2 * groups), "little")  # 14 per 32-bit lane
    m3 = int.from_bytes(b"\xff\xff\xff\x0f\x00\x00\x00\x00" * groups, "little")  # 28 per 64
    return m1, m1 << 8, m2, m2 << 16, m3, m3 << 32


def _padding_residue(fill_bits: int) -> int:
    """The septet count (mod 8) that leaves 7 spare bits in the last octet after ``fill_bits``.

    ``(7 * n + fill_bits) % 8 == 1`` exactly when ``n % 8`` is this value (7 is its own
    inverse mod 8). Such a count is never sent: the spare bits would read as "@".
    """
    return (fill_bits + 7) % 8


def _in_residue(low: int, high: int, residue: int) -> int:
    """How many integers in ``low..high-1`` (both >= 0) are ``residue`` modulo 8."""
    return (high - residue + 7) // 8 - (low - residue + 7) // 8


def pad_count(septets: bytes, fill_bits: int = 0) -> int:
    """CR septets :func:`pack` appends so that :func:`unpack` returns exactly ``septets``.

    The packed length alone tells the receiver a septet count ``m`` (``(8 * octets - fill) //
    7``). Call a count *padded* when it leaves 7 spare bits (see :func:`_padding_residue`). A
    text ending in ``t`` CRs after ``base`` other septets is sent as ``base + x`` septets,
    where ``x`` is the ``t``-th (from 0) offset whose count is not padded; the receiver strips
    one trailing CR per padded count in its trailing CR run. This is 23.038 section 6.1.2.1.1
    where the rules meet: one CR fills 7 spare bits, and a text whose own final CR ends on an
    octet boundary gets a second CR (and a zero bit); longer trailing CR runs are extended the
    same way, so every septet string round-trips.
    """
    count = len(septets)
    trailing = count - len(septets.rstrip(b"\r"))
    padded = _padding_residue(fill_bits)
    n = count - trailing
    rank = -1
    while True:
        if n % 8 != padded:
            rank += 1
            if rank == trailing:
                return n - count
        n += 1


def packed_size(septets: bytes, fill_bits: int = 0) -> int:
    """Octets :func:`pack` makes of ``septets`` after ``fill_bits`` bits, CR padding included."""
    count = len(septets) + pad_count(septets, fill_bits)
    return (7 * count + fill_bits + 7) // 8


def pack(septets: bytes, fill_bits: int = 0, *, pad_cr: bool = True) -> bytes:
    """Pack septets LSB-first after ``fill_bits`` zero bits (the UDH fill), per 23.038.

    With ``pad_cr`` (23.038 section 6.1.2.1.1) CRs are appended as :func:`pad_count` says:
    one when 7 bits would be left spare in the last octet (they would read as "@"), one more
    when the text itself ends with CR exactly on an octet boundary (23.038's second CR), and so
    on for longer trailing CR runs, so that :func:`unpack` returns exactly ``septets``. The
    result may therefore be one octet longer than the bare septets need: check
    :func:`packed_size` against the space you have.
    """
    if not 0 <= fill_bits <= 6:
        raise TextError(f"fill_bits must be 0..6, not {fill_bits}")
    if not septets.isascii():
        raise TextError("septets must be below 0x80")
    if pad_cr:
        septets += b"\r" * pad_count(septets, fill_bits)
    count = len(septets)
    size = (7 * count + fill_bits + 7) // 8
    if not count:
        return bytes(size)
    groups = (count + 7) // 8
    m1lo, m1hi, m2lo, m2hi, m3lo, m3hi = _masks(groups)
    x = int.from_bytes(septets, "little")  # zero septets pad the last group
    x = (x & m1lo) | ((x & m1hi) >> 1)
    x = (x & m2lo) | ((x & m2hi) >> 2)
    x = (x & m3lo) | ((x & m3hi) >> 4)
    lanes = bytearray(x.to_bytes(8 * groups, "little"))
    del lanes[7::8]  # each 64-bit lane now holds 56 bits: drop its empty top octet
    if fill_bits:
        return (int.from_bytes(lanes, "little") << fill_bits).to_bytes(size, "little")
    return bytes(lanes[:size])


def unpack(
    data: bytes, fill_bits: int = 0, *, septets: int | None = None, strip_cr: bool = True
) -> bytes:
    """Packed octets -> unpacked septets, skipping ``fill_bits`` leading bits.

    When ``septets`` (the count) is known it is used exactly. Otherwise the count is read from
    the length and, with ``strip_cr``, the 23.038 padding CRs are dropped: one CR of the
    trailing CR run per count in that run that would have left 7 spare bits (the inverse of
    :func:`pad_count`). That covers both 23.038 cases: a lone pad CR in 7 spare bits, and the
    second CR after a text whose own final CR ended on an octet boundary. A trailing "@"
    there is kept: it may be real text, and a sender that pads with zero bits breaks 23.038.
    """
    if not 0 <= fill_bits <= 6:
        raise TextError(f"fill_bits must be 0..6, not {fill_bits}")
    bits = 8 * len(data) - fill_bits
    if septets is None:
        count = max(bits, 0) // 7
    elif septets >= 0 and 7 * septets <= bits:
        count = septets
    else:
        raise UndecodableTextError(f"{len(data)} octets cannot hold {septets} septets")
    if not count:
        return b""
    groups = (count + 7) // 8
    m1lo, _, m2lo, _, m3lo, _ = _masks(groups)
    x = (int.from_bytes(data, "little") >> fill_bits) & ((1 << (7 * count)) - 1)
    packed = x.to_bytes(7 * groups, "little")
    lanes = bytearray(8 * groups)
    for i in range(7):  # spread every 7 octets over an 8-octet lane
        lanes[i::8] = packed[i::7]
    y = int.from_bytes(lanes, "little")
    y = (y & m3lo) | ((y & (m3lo << 28)) << 4)
    y = (y & m2lo) | ((y & (m2lo << 14)) << 2)
    y = (y & m1lo) | ((y & (m1lo << 7)) << 1)
    out = y.to_bytes(8 * groups, "little")[:count]
    if septets is None and strip_cr and out[-1] == CR:
        base = len(out.rstrip(b"\r"))
        pads = _in_residue(base, count, _padding_residue(fill_bits))
        if pads:
            out = out[:-pads]
    return out


def encode_packed(text: str, fill_bits: int = 0) -> bytes:
    """Text -> packed 7-bit octets with CR padding (see :func:`pack`); exact round trip."""
    return pack(encode(text), fill_bits)


def decode_packed(
    data: bytes, fill_bits: int = 0, *, septets: int | None = None, errors: Errors = "strict"
) -> str:
    """Packed 7-bit octets -> text (see :func:`unpack` for the trailing CR rule).

    ``decode_packed(encode_packed(text, fill), fill) == text`` for every GSM text.
    """
    return decode(unpack(data, fill_bits, septets=septets), errors=errors)
