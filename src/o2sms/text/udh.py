"""User data header (3GPP TS 23.040 9.2.3.24): build and parse, concatenation IEs above all.

A UDH is UDHL (one octet, the length of what follows) then information elements, each
IEI, IEDL, IED. Parsing never raises IndexError: every malformed header is a :class:`UdhError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from o2sms.text.errors import UdhError

IEI_CONCAT_8: Final = 0x00
"""Concatenated short messages, 8-bit reference: ref, total, seq (IEDL 3)."""

IEI_CONCAT_16: Final = 0x08
"""Concatenated short messages, 16-bit reference: refHi, refLo, total, seq (IEDL 4)."""

IEI_PORTS_8: Final = 0x04
"""Application port addressing, 8-bit ports: destination, source."""

IEI_PORTS_16: Final = 0x05
"""Application port addressing, 16-bit ports: destination, source (big-endian)."""

CONCAT_8_LENGTH: Final = 6
"""Octets of a UDH holding only the 8-bit concatenation IE (UDHL included)."""

CONCAT_16_LENGTH: Final = 7
"""Octets of a UDH holding only the 16-bit concatenation IE (UDHL included)."""


@dataclass(frozen=True, slots=True)
class InformationElement:
    """One IE of a UDH: its identifier and data (the IEDL is ``len(data)``)."""

    iei: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Concat:
    """Concatenation info of one part: shared reference, total parts, 1-based sequence number."""

    reference: int
    total: int
    seq: int
    ref16: bool = False  #: the reference is 16-bit (IEI 0x08) rather than 8-bit (IEI 0x00)


@dataclass(frozen=True, slots=True)
class UserDataHeader:
    """A parsed UDH: its IEs in order, its size in octets (UDHL included), the concat info."""

    elements: tuple[InformationElement, ...]
    length: int
    concat: Concat | None

    @property
    def other_elements(self) -> tuple[InformationElement, ...]:
        """The IEs other than concatenation ones (ports, national language shifts...)."""
        return tuple(e for e in self.elements if e.iei not in (IEI_CONCAT_8, IEI_CONCAT_16))


def fill_bits(header_length: int) -> int:
    """Zero bits after a UDH of ``header_length`` octets so packed GSM text starts on a septet."""
    return (7 - (header_length * 8) % 7) % 7


def header_septets(header_length: int) -> int:
    """Septets a UDH of ``header_length`` octets (UDHL included) takes with its fill bits."""
    return (header_length * 8 + fill_bits(header_length)) // 7


def build(elements: Iterable[InformationElement]) -> bytes:
    """A UDH (UDHL first) holding ``elements`` in order."""
    body = bytearray()
    for element in elements:
        if not 0 <= element.iei <= 0xFF or len(element.data) > 0xFF:
            raise UdhError(f"information element 0x{element.iei:X} does not fit a UDH")
        body += bytes((element.iei, len(element.data))) + element.data
    if len(body) > 0xFF:
        raise UdhError(f"UDH of {len(body)} octets is longer than 255")
    return bytes((len(body),)) + bytes(body)


def build_concat(reference: int, total: int, seq: int, *, ref16: bool = False) -> bytes:
    """The concatenation UDH: ``05 00 03 ref total seq`` or ``06 08 04 refHi refLo total seq``."""
    if not 1 <= total <= 0xFF:
        raise UdhError(f"total must be 1..255, not {total}")
    if not 1 <= seq <= total:
        raise UdhError(f"seq must be 1..{total}, not {seq}")
    if ref16:
        if not 0 <= reference <= 0xFFFF:
            raise UdhError(f"a 16-bit reference must be 0..65535, not {reference}")
        return bytes((6, IEI_CONCAT_16, 4, reference >> 8, reference & 0xFF, total, seq))
    if not 0 <= reference <= 0xFF:
        raise UdhError(f"an 8-bit reference must be 0..255, not {reference}")
    return bytes((5, IEI_CONCAT_8, 3, reference, total, seq))


def _concat(element: InformationElement) -> Concat | None:
    """Concat info from a concatenation IE; None when 23.040 says to ignore it (see parse)."""
    data = element.data
    if element.iei == IEI_CONCAT_8:
        if len(data) != 3:
            raise UdhError(f"8-bit concatenation IE must have 3 octets, not {len(data)}")
        reference, total, seq, ref16 = data[0], data[1], data[2], False
    else:
        if len(data) != 4:
            raise UdhError(f"16-bit concatenation IE must have 4 octets, not {len(data)}")
        reference, total, seq, ref16 = (data[0] << 8) | data[1], data[2], data[3], True
    if not 1 <= seq <= total:  # total 0 too: 23.040 9.2.3.24.1 ignores the whole IE
        return None
    return Concat(reference, total, seq, ref16)


def parse(user_data: bytes) -> UserDataHeader:
    """Parse the UDH at the start of ``user_data`` (a short_message with UDHI set).

    Raises :class:`UdhError` when the UDHL or an IE runs past the data, or a concatenation
    IE has the wrong length. A concatenation IE with total 0, seq 0 or seq above total is
    ignored, as 23.040 9.2.3.24.1 asks (kept in ``elements``, not in ``concat``). When several
    concatenation IEs appear, the last one not ignored counts (23.040 9.2.3.24).
    """
    if not user_data:
        raise UdhError("UDHI is set but the user data is empty")
    end = 1 + user_data[0]
    if end > len(user_data):
        raise UdhError(f"UDHL {user_data[0]} runs past the {len(user_data)} octets of user data")
    elements: list[InformationElement] = []
    concat: Concat | None = None
    pos = 1
    while pos < end:
        if pos + 2 > end:
            raise UdhError(f"information element header at offset {pos} runs past the UDH")
        iei, iedl = user_data[pos], user_data[pos + 1]
        data_end = pos + 2 + iedl
        if data_end > end:
            raise UdhError(f"information element 0x{iei:02X} (IEDL {iedl}) runs past the UDH")
        element = InformationElement(iei, user_data[pos + 2 : data_end])
        if iei in (IEI_CONCAT_8, IEI_CONCAT_16):
            concat = _concat(element) or concat
        elements.append(element)
        pos = data_end
    return UserDataHeader(tuple(elements), end, concat)


def split_user_data(user_data: bytes) -> tuple[UserDataHeader, bytes]:
    """(header, the rest) of user data that starts with a UDH."""
    header = parse(user_data)
    return header, user_data[header.length :]
