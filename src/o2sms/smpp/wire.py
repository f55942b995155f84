"""Wire types of PDU fields, used as ``Annotated`` metadata on the PDU dataclasses.

A PDU class lists its mandatory fields in specification order, each annotated with one of
these descriptors; :mod:`o2sms.smpp.codec` turns that list into the encoder and decoder.
Sizes follow the SMPP 3.4 reference: ``COctet(n)`` holds at most ``n - 1`` characters and a NUL.
"""

from __future__ import annotations

from dataclasses import dataclass

from o2sms.smpp.constants import CommandStatus


@dataclass(frozen=True, slots=True)
class Int:
    """Unsigned big-endian integer of ``size`` octets (1, 2 or 4)."""

    size: int


U8 = Int(1)
U16 = Int(2)
U32 = Int(4)


@dataclass(frozen=True, slots=True)
class COctet:
    """NUL-terminated ASCII string of at most ``max_size`` octets with the NUL.

    ``status`` is the command_status that answers a value over the maximum (the field's own
    error code where the specification has one). ``exact`` restricts a non-empty value to one
    length, as for the 16-character SMPP times (``C(1|17)``).
    """

    max_size: int
    status: int = CommandStatus.ESME_RINVCMDLEN
    exact: int | None = None


@dataclass(frozen=True, slots=True)
class SmOctets:
    """sm_length (one octet) followed by that many octets of short_message (0..254)."""

    max_size: int = 254


@dataclass(frozen=True, slots=True)
class Custom:
    """A structured field (submit_multi's destinations, its unsuccess list) with its own codec.

    ``encode(value) -> bytes`` and ``decode(data, pos, end) -> (value, pos)`` are named
    functions in :mod:`o2sms.smpp.codec`.
    """

    encode: str
    decode: str


def time_field(status: int) -> COctet:
    """An SMPP time: empty, or exactly 16 characters (``YYMMDDhhmmsstnnp``)."""
    return COctet(17, status, exact=16)
