"""Choosing an encoding, encoding/decoding by data_coding, and the SMS length calculator plan().

The automatic choice is GSM 03.38 when every character fits (basic and extension tables), else
UCS-2; Latin-1 (data_coding 3) is used only when asked for, since many handsets and SMSCs
mangle it. Limits per part (3GPP TS 23.040, the reference section 8) live here too, so plan()
and split() can never disagree about where a message is cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from o2sms.fastinit import fast_init
from o2sms.smpp.constants import DataCoding
from o2sms.text import gsm0338, ucs2
from o2sms.text.errors import (
    MessageTooLongError,
    TextError,
    UnencodableTextError,
    UnsupportedDataCodingError,
)
from o2sms.text.gsm0338 import Errors
from o2sms.text.translit import transliterate as _transliterate

MAX_PARTS: Final = 255
"""Most parts a concatenated message can have: total is one octet in the UDH and SAR TLV."""


class Encoding(StrEnum):
    """The text encodings o2sms sends; plain strings ("gsm7", "latin1", "ucs2") are accepted too."""

    GSM7 = "gsm7"  #: GSM 03.38 default alphabet + extension table, data_coding 0
    LATIN1 = "latin1"  #: ISO-8859-1, data_coding 3; only when asked for
    UCS2 = "ucs2"  #: UTF-16BE with surrogate pairs, data_coding 8

    @classmethod
    def _missing_(cls, value: object) -> Encoding | None:
        """Accept any case and the usual spellings (gsm, latin-1, ucs-2, utf-16be...)."""
        if isinstance(value, str):
            return _ALIASES.get(value.strip().lower().replace("_", "-"))
        return None

    @property
    def unit_width(self) -> int:
        """Octets per counting unit in the unpacked form: 2 for UCS-2, else 1."""
        return 2 if self is _UCS2 else 1

    @property
    def single_limit(self) -> int:
        """Units one non-concatenated SMS holds: 160 septets, 140 octets or 70 UTF-16 units."""
        return _SINGLE_LIMIT[self]

    def part_limit(self, *, ref16: bool = False) -> int:
        """Units per part of a concatenated SMS, with an 8-bit (default) or 16-bit reference."""
        return (_PART_LIMIT_16 if ref16 else _PART_LIMIT_8)[self]


# Members as module constants for the per-message paths: on Python 3.11 reading one off its
# class goes through EnumType.__getattr__'s slow hook.
_GSM7: Final = Encoding.GSM7
_UCS2: Final = Encoding.UCS2
_DEFAULT_CODINGS: Final = (DataCoding.SMSC_DEFAULT, DataCoding.IA5)

_ALIASES: Final[dict[str, Encoding]] = {
    "gsm7": Encoding.GSM7,
    "gsm": Encoding.GSM7,
    "gsm-7": Encoding.GSM7,
    "gsm0338": Encoding.GSM7,
    "gsm03.38": Encoding.GSM7,
    "latin1": Encoding.LATIN1,
    "latin-1": Encoding.LATIN1,
    "iso-8859-1": Encoding.LATIN1,
    "iso8859-1": Encoding.LATIN1,
    "ucs2": Encoding.UCS2,
    "ucs-2": Encoding.UCS2,
    "utf-16be": Encoding.UCS2,
    "utf-16-be": Encoding.UCS2,
}
_DATA_CODING: Final = {
    Encoding.GSM7: DataCoding.SMSC_DEFAULT,
    Encoding.LATIN1: DataCoding.LATIN_1,
    Encoding.UCS2: DataCoding.UCS2,
}
_SINGLE_LIMIT: Final = {Encoding.GSM7: 160, Encoding.LATIN1: 140, Encoding.UCS2: 70}
_PART_LIMIT_8: Final = {Encoding.GSM7: 153, Encoding.LATIN1: 134, Encoding.UCS2: 67}
_PART_LIMIT_16: Final = {Encoding.GSM7: 152, Encoding.LATIN1: 133, Encoding.UCS2: 66}
_SINGLE_OCTETS: Final = 140  # user data of one SMS: 160 septets packed, 140 octets, 70 units
_UDH8_OCTETS: Final = 6  # 05 00 03 ref total seq
_UDH16_OCTETS: Final = 7  # 06 08 04 refHi refLo total seq


class SplitMethod(StrEnum):
    """How a long message is cut; plain strings ("udh8", "udh16", "sar", "payload") work too."""

    UDH8 = "udh8"  #: UDH 05 00 03 ref total seq, esm_class UDHI; 153/134/67 units per part
    UDH16 = "udh16"  #: UDH 06 08 04 refHi refLo total seq; 152/133/66 units per part
    SAR = "sar"  #: sar_* TLVs, no UDH; the SMSC adds one, so parts are sized as with UDH8
    PAYLOAD = "payload"  #: whole text in one message_payload TLV; the SMSC splits it

    @classmethod
    def _missing_(cls, value: object) -> SplitMethod | None:
        """Accept any case."""
        if isinstance(value, str):
            lowered = value.strip().lower()
            for member in cls:
                if member.value == lowered:
                    return member
        return None


def as_encoding(value: Encoding | str) -> Encoding:
    """An :class:`Encoding` from itself or its name; an unknown name raises :class:`TextError`."""
    if type(value) is Encoding:
        return value
    try:
        return Encoding(value)
    except ValueError:
        raise TextError(
            f"unknown encoding {value!r}; use one of {', '.join(e.value for e in Encoding)}"
        ) from None


def as_split_method(value: SplitMethod | str) -> SplitMethod:
    """A :class:`SplitMethod` from itself or its name; an unknown name raises :class:`TextError`."""
    if type(value) is SplitMethod:
        return value
    try:
        return SplitMethod(value)
    except ValueError:
        raise TextError(
            f"unknown split method {value!r}; use one of {', '.join(m.value for m in SplitMethod)}"
        ) from None


def is_gsm7(text: str) -> bool:
    """True when GSM 03.38 (basic + extension table) can carry every character of ``text``."""
    return gsm0338.is_encodable(text)


def choose_encoding(text: str) -> Encoding:
    """GSM 03.38 when every character fits, else UCS-2 (Latin-1 is never chosen automatically)."""
    return Encoding.GSM7 if gsm0338.is_encodable(text) else Encoding.UCS2


def encode(text: str, encoding: Encoding | str, *, packed: bool = False) -> bytes:
    """Text -> bytes in ``encoding`` (GSM7 unpacked unless ``packed``; packed adds CR padding)."""
    enc = as_encoding(encoding)
    if enc is Encoding.GSM7:
        septets = gsm0338.encode(text)
        return gsm0338.pack(septets) if packed else septets
    if enc is Encoding.UCS2:
        return ucs2.encode(text)
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        bad = "".join(c for c in dict.fromkeys(text) if ord(c) > 0xFF)
        lone = gsm0338.lone_surrogate_error(bad, "latin1")
        if lone is not None:
            raise lone from None
        raise UnencodableTextError(
            f"Latin-1 has no {', '.join(repr(c) for c in bad)}; use UCS-2",
            encoding="latin1",
            characters=bad,
        ) from None


def encode_auto(text: str, encoding: Encoding | str | None = None) -> tuple[Encoding, bytes]:
    """Choose the encoding (unless given) and encode in one pass; GSM 7-bit stays unpacked."""
    if encoding is None:
        try:
            return _GSM7, gsm0338.encode(text)
        except UnencodableTextError:
            return Encoding.UCS2, ucs2.encode(text)
    enc = as_encoding(encoding)
    return enc, encode(text, enc)


def data_coding_for(encoding: Encoding | str, *, flash: bool = False) -> int:
    """The data_coding to send: 0, 3 or 8; with ``flash`` class 0 (GSM7 0x10, UCS-2 0x18)."""
    enc = as_encoding(encoding)
    if not flash:
        return _DATA_CODING[enc]
    if enc is Encoding.GSM7:
        return DataCoding.GSM7_FLASH
    if enc is Encoding.UCS2:
        return DataCoding.UCS2_FLASH
    raise TextError(
        "flash (class 0) messages cannot be Latin-1: GSM 03.38 has no class-0 Latin-1 "
        "data_coding; use GSM 7-bit or UCS-2"
    )


def _binary(data_coding: int) -> UnsupportedDataCodingError:
    """The error for an 8-bit binary data_coding."""
    return UnsupportedDataCodingError(
        f"data_coding 0x{data_coding:02X} is 8-bit binary data, not text",
        data_coding=data_coding,
    )


def encoding_for_data_coding(data_coding: int) -> Encoding:
    """The text encoding a data_coding stands for, or :class:`UnsupportedDataCodingError`.

    0 and 1 are GSM 7-bit (what the O2 gateway means by IA5), 3 Latin-1, 8 UCS-2; the GSM
    general group 0x10-0x1F, the message-waiting groups 0xC0-0xEF and the class group
    0xF0-0xFF follow their alphabet bits. 8-bit binary (2, 4, 0x14, 0xF4...) is not text.
    """
    if data_coding in _DEFAULT_CODINGS:  # the usual case first, on module constants
        return _GSM7
    if data_coding == DataCoding.LATIN_1:
        return Encoding.LATIN1
    if data_coding == DataCoding.UCS2:
        return Encoding.UCS2
    if data_coding in (DataCoding.OCTET_UNSPECIFIED, DataCoding.OCTET_UNSPECIFIED_2):
        raise _binary(data_coding)
    if 0x10 <= data_coding <= 0x1F:  # GSM general data coding, uncompressed, with class
        alphabet = (data_coding >> 2) & 0x03
        if alphabet == 0:
            return Encoding.GSM7
        if alphabet == 1:
            raise _binary(data_coding)
        if alphabet == 2:
            return Encoding.UCS2
    elif 0x20 <= data_coding <= 0x3F:
        raise UnsupportedDataCodingError(
            f"data_coding 0x{data_coding:02X} is GSM compressed text, which is not supported",
            data_coding=data_coding,
        )
    elif 0xC0 <= data_coding <= 0xDF:  # message waiting indication, GSM 7-bit
        return Encoding.GSM7
    elif 0xE0 <= data_coding <= 0xEF:  # message waiting indication, UCS-2
        return Encoding.UCS2
    elif 0xF0 <= data_coding <= 0xFF:  # data coding / message class group
        if data_coding & 0x04:
            raise _binary(data_coding)
        return Encoding.GSM7
    raise UnsupportedDataCodingError(
        f"data_coding 0x{data_coding:02X} is not a supported text encoding "
        "(supported: GSM 7-bit, Latin-1, UCS-2 and the GSM class groups)",
        data_coding=data_coding,
    )


def decode(
    data: bytes, data_coding: int, *, packed: bool = False, errors: Errors = "strict"
) -> str:
    """Bytes of a short_message or payload (without UDH) -> text, by ``data_coding``.

    ``packed`` applies to GSM 7-bit only (a trailing 23.038 pad CR is dropped, see
    :func:`gsm0338.unpack`). Invalid bytes raise :class:`UndecodableTextError` unless
    ``errors="replace"``.
    """
    enc = encoding_for_data_coding(data_coding)
    if enc is Encoding.GSM7:
        septets = gsm0338.unpack(data) if packed else data
        return gsm0338.decode(septets, errors=errors)
    if enc is Encoding.UCS2:
        return ucs2.decode(data, errors=errors)
    return data.decode("latin-1")


def transliterate(text: str) -> str:
    """Characters GSM 03.38 lacks -> their closest GSM form (č -> c, „ -> "); others kept.

    é, ä, ö, ü and every other GSM character stay; what has no GSM form stays too, so the
    result may still need UCS-2. See :mod:`o2sms.text.translit`.
    """
    return _transliterate(text)


def fits_single(data: bytes, encoding: Encoding, *, packed: bool = False) -> bool:
    """True when encoded unpacked ``data`` fits one SMS without concatenation.

    Packed GSM 7-bit must fit 140 octets with its CR padding: a 160-septet text ending in CR
    needs a 141st octet (see :func:`gsm0338.pad_count`), so it is sent as two parts.
    """
    if packed and encoding is _GSM7:
        return gsm0338.packed_size(data) <= _SINGLE_OCTETS
    return len(data) <= encoding.single_limit * encoding.unit_width


def concat_fill_bits(method: SplitMethod, *, ref16: bool = False) -> int:
    """Fill bits before packed GSM text in a part: after the UDH, or 0 for SAR (no UDH sent).

    PAYLOAD is sized as the 8-bit reference UDH parts the SMSC will cut.
    """
    if method is SplitMethod.SAR:
        return 0
    header = _UDH16_OCTETS if ref16 or method is SplitMethod.UDH16 else _UDH8_OCTETS
    return (7 - (header * 8) % 7) % 7


def segment_ends(
    data: bytes,
    encoding: Encoding,
    limit: int,
    *,
    max_parts: int,
    packed: bool = False,
    fill_bits: int = 0,
) -> list[int]:
    """End offsets of the parts ``data`` (unpacked units) is cut into, ``limit`` units each.

    Never cuts an ESC pair (GSM 7-bit) or a surrogate pair (UCS-2): the pair moves whole to
    the next part. With ``packed`` GSM 7-bit each part, packed after ``fill_bits`` with its
    23.038 CR padding (:func:`gsm0338.pack`), must also fit the octets ``limit`` septets take:
    a part whose trailing CR would need a padding CR past that (a CR ending on an octet
    boundary, ``(7 * count + fill_bits) % 8 == 0``) gives its CR to the next part, and the
    ESC and CR checks repeat until both hold. Every packed part then unpacks exactly. Stops
    after ``max_parts + 1`` parts so a huge text costs little.
    """
    size = len(data)
    ends: list[int] = []
    start = 0
    if encoding is Encoding.UCS2:
        step = 2 * limit
        while start < size and len(ends) <= max_parts:
            end = start + step
            if end >= size:
                end = size
            elif ucs2.is_high_surrogate(data[end - 2]):
                end -= 2
            ends.append(end)
            start = end
        return ends
    gsm = encoding is Encoding.GSM7
    pack = gsm and packed
    max_octets = (7 * limit + fill_bits + 7) // 8
    while start < size and len(ends) <= max_parts:
        end = min(start + limit, size)
        while end - start > 1:
            if gsm and end < size and data[end - 1] == gsm0338.ESCAPE:
                end -= 1  # the encoder never emits ESC as an extension code: it opens a pair
            elif pack and gsm0338.packed_size(data[start:end], fill_bits) > max_octets:
                end -= 1  # only a trailing CR makes a part outgrow its octets: move it on
            else:
                break
        ends.append(end)
        start = end
    return ends


def check_max_parts(max_parts: int) -> None:
    """Reject a max_parts outside 1..255."""
    if (
        isinstance(max_parts, bool)
        or not isinstance(max_parts, int)
        or not 1 <= max_parts <= MAX_PARTS
    ):
        raise TextError(f"max_parts must be 1..{MAX_PARTS}, not {max_parts!r}")


def too_long(units: int, limit: int, max_parts: int, encoding: Encoding) -> MessageTooLongError:
    """The error for a text of ``units`` units needing more than ``max_parts`` parts."""
    parts = max(max_parts + 1, -(-units // limit))
    return MessageTooLongError(
        f"text of {units} {encoding.value} units needs about {parts} parts of {limit}, "
        f"more than max_parts={max_parts}",
        parts=parts,
        max_parts=max_parts,
    )


@fast_init  # one per message accepted and one per message sent
@dataclass(frozen=True, slots=True)
class Plan:
    """What sending a text will take: encoding, parts, units used and left (the length calculator).

    Units are septets for GSM7 (an extension character such as € costs 2), octets for Latin-1
    and UTF-16 code units for UCS-2 (an emoji costs 2). ``remaining`` is what still fits in
    the last part. When the text is not GSM-encodable and transliteration was not asked for,
    ``transliterated`` plans the transliterated text, so a UI can offer both.
    """

    text: str  #: the text measured (transliterated when asked)
    encoding: Encoding
    data_coding: int
    parts: int
    units: int  #: septets / octets / UTF-16 units the whole text takes
    part_limit: int  #: units per part: the single-SMS limit when parts == 1
    remaining: int  #: units still free in the last part
    split_method: SplitMethod
    non_gsm: str  #: the distinct characters GSM 03.38 lacks ("" when it fits)
    transliterated: Plan | None  #: the plan with transliterate=True, when that differs

    @property
    def length(self) -> int:
        """Alias of :attr:`units`."""
        return self.units

    @property
    def characters(self) -> int:
        """Characters (code points) in :attr:`text`."""
        return len(self.text)


def measure(
    data: bytes,
    encoding: Encoding,
    method: SplitMethod,
    max_parts: int,
    *,
    ref16: bool = False,
    packed: bool = False,
) -> tuple[int, int, int, int]:
    """(parts, units, part_limit, remaining) of encoded unpacked ``data``, as split() cuts it.

    ``ref16`` sizes parts for a 16-bit reference (UDH16 always uses it). PAYLOAD counts the
    parts the SMSC will cut with an 8-bit reference.
    """
    width = encoding.unit_width
    units = len(data) // width
    single = encoding.single_limit
    if fits_single(data, encoding, packed=packed):
        return 1, units, single, single - units
    limit = encoding.part_limit(ref16=ref16 or method is SplitMethod.UDH16)
    fill = concat_fill_bits(method, ref16=ref16)
    ends = segment_ends(data, encoding, limit, max_parts=max_parts, packed=packed, fill_bits=fill)
    if len(ends) > max_parts:
        raise too_long(units, limit, max_parts, encoding)
    last = ends[-1] - (ends[-2] if len(ends) > 1 else 0)
    return len(ends), units, limit, limit - last // width


def plan(
    text: str,
    *,
    encoding: Encoding | str | None = None,
    transliterate: bool = False,
    split_method: SplitMethod | str = SplitMethod.UDH8,
    max_parts: int = MAX_PARTS,
    packed: bool = False,
) -> Plan:
    """Measure ``text`` exactly as :func:`o2sms.text.split` would send it, without building parts.

    Raises :class:`UnencodableTextError` when a forced encoding cannot carry the text and
    :class:`MessageTooLongError` above ``max_parts``, like split(). ``packed`` matters only in
    the rare case where a full GSM part (or a 160-septet SMS) would end with CR: the CR needs
    padding that does not fit, so it moves to the next part (see :func:`segment_ends`).
    """
    method = as_split_method(split_method)
    check_max_parts(max_parts)
    measured = _transliterate(text) if transliterate else text
    enc, data = encode_auto(measured, encoding)
    parts, units, limit, remaining = measure(data, enc, method, max_parts, packed=packed)
    non_gsm = "" if enc is Encoding.GSM7 else gsm0338.unencodable_characters(measured)
    alternative: Plan | None = None
    if non_gsm and not transliterate:
        candidate = _transliterate(text)
        if candidate != text:
            try:
                alternative = plan(
                    candidate,
                    encoding=encoding,
                    transliterate=True,
                    split_method=method,
                    max_parts=max_parts,
                    packed=packed,
                )
            except TextError:
                alternative = None
    return Plan(
        text=measured,
        encoding=enc,
        data_coding=data_coding_for(enc),
        parts=parts,
        units=units,
        part_limit=limit,
        remaining=remaining,
        split_method=method,
        non_gsm=non_gsm,
        transliterated=alternative,
    )
