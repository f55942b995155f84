"""TLVs (optional parameters, SMPP 3.4 section 5.3): typed values, encoding and strict decoding.

Known tags decode to ``int``, ``str`` (C-Octet strings, without the NUL) or ``bytes`` as the
specification types them; unknown tags keep their raw value and re-encode byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from o2sms.fastinit import fast_init
from o2sms.smpp.constants import CommandStatus, TlvTag
from o2sms.smpp.errors import PduEncodeError, PduError

TlvValue = int | str | bytes


@fast_init  # built per receipt and per concatenated part
@dataclass(frozen=True, slots=True)
class Tlv:
    """One optional parameter: its tag and its value (int, str or bytes by the tag's type)."""

    tag: int
    value: TlvValue


@dataclass(frozen=True, slots=True)
class IntSpec:
    """An integer TLV; ``sizes`` are the value lengths accepted, the first one that fits is sent."""

    sizes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CStringSpec:
    """A C-Octet string TLV of at most ``max_size`` octets with its NUL."""

    max_size: int


@dataclass(frozen=True, slots=True)
class OctetsSpec:
    """An octet string TLV of ``min_size`` to ``max_size`` octets."""

    min_size: int
    max_size: int


TlvSpec = IntSpec | CStringSpec | OctetsSpec

_I1 = IntSpec((1,))
_I2 = IntSpec((2,))
_I4 = IntSpec((4,))

TLV_SPECS: Final[dict[int, TlvSpec]] = {
    TlvTag.DEST_ADDR_SUBUNIT: _I1,
    TlvTag.DEST_NETWORK_TYPE: _I1,
    TlvTag.DEST_BEARER_TYPE: _I1,
    TlvTag.DEST_TELEMATICS_ID: _I2,
    TlvTag.SOURCE_ADDR_SUBUNIT: _I1,
    TlvTag.SOURCE_NETWORK_TYPE: _I1,
    TlvTag.SOURCE_BEARER_TYPE: _I1,
    # Implementations disagree on its size (1 octet in jsmpp, 2 in Wireshark): accept both.
    TlvTag.SOURCE_TELEMATICS_ID: IntSpec((1, 2)),
    TlvTag.QOS_TIME_TO_LIVE: _I4,
    TlvTag.PAYLOAD_TYPE: _I1,
    TlvTag.ADDITIONAL_STATUS_INFO_TEXT: CStringSpec(256),
    TlvTag.RECEIPTED_MESSAGE_ID: CStringSpec(65),
    TlvTag.MS_MSG_WAIT_FACILITIES: _I1,
    TlvTag.PRIVACY_INDICATOR: _I1,
    TlvTag.SOURCE_SUBADDRESS: OctetsSpec(2, 23),
    TlvTag.DEST_SUBADDRESS: OctetsSpec(2, 23),
    TlvTag.USER_MESSAGE_REFERENCE: _I2,
    TlvTag.USER_RESPONSE_CODE: _I1,
    TlvTag.SOURCE_PORT: _I2,
    TlvTag.DESTINATION_PORT: _I2,
    TlvTag.SAR_MSG_REF_NUM: _I2,
    TlvTag.LANGUAGE_INDICATOR: _I1,
    TlvTag.SAR_TOTAL_SEGMENTS: _I1,
    TlvTag.SAR_SEGMENT_SEQNUM: _I1,
    TlvTag.SC_INTERFACE_VERSION: _I1,
    TlvTag.CALLBACK_NUM_PRES_IND: _I1,
    TlvTag.CALLBACK_NUM_ATAG: OctetsSpec(0, 65),
    TlvTag.NUMBER_OF_MESSAGES: _I1,
    TlvTag.CALLBACK_NUM: OctetsSpec(4, 19),
    TlvTag.DPF_RESULT: _I1,
    TlvTag.SET_DPF: _I1,
    TlvTag.MS_AVAILABILITY_STATUS: _I1,
    TlvTag.NETWORK_ERROR_CODE: OctetsSpec(3, 3),
    TlvTag.MESSAGE_PAYLOAD: OctetsSpec(0, 0xFFFF),
    TlvTag.DELIVERY_FAILURE_REASON: _I1,
    TlvTag.MORE_MESSAGES_TO_SEND: _I1,
    TlvTag.MESSAGE_STATE: _I1,
    TlvTag.USSD_SERVICE_OP: OctetsSpec(1, 1),
    TlvTag.DISPLAY_TIME: _I1,
    TlvTag.SMS_SIGNAL: _I2,
    TlvTag.MS_VALIDITY: _I1,
    # A flag by its presence in 3.4 (length 0); SMPP 5.0 adds a one-octet value.
    TlvTag.ALERT_ON_MESSAGE_DELIVERY: OctetsSpec(0, 1),
    TlvTag.ITS_REPLY_TYPE: _I1,
    TlvTag.ITS_SESSION_INFO: OctetsSpec(2, 2),
}
"""The value type of every SMPP 3.4 optional parameter (reference section 4)."""

_TAG_NAMES: Final[dict[int, TlvTag]] = {int(tag): tag for tag in TlvTag}
_TAG_LEN = struct.Struct(">HH")

_INT, _CSTRING, _OCTETS = 0, 1, 2
# tag -> (kind, TlvTag, a, b): the decoder's flat view of TLV_SPECS, to keep its loop cheap.
_DECODE_TABLE: Final[dict[int, tuple[int, TlvTag, Any, int]]] = {}
for _tag, _spec in TLV_SPECS.items():
    if isinstance(_spec, IntSpec):
        _DECODE_TABLE[_tag] = (_INT, _TAG_NAMES[_tag], _spec.sizes, 0)
    elif isinstance(_spec, CStringSpec):
        _DECODE_TABLE[_tag] = (_CSTRING, _TAG_NAMES[_tag], None, _spec.max_size)
    else:
        _DECODE_TABLE[_tag] = (_OCTETS, _TAG_NAMES[_tag], _spec.min_size, _spec.max_size)

_RECEIPTED_MESSAGE_ID: Final = int(TlvTag.RECEIPTED_MESSAGE_ID)

_new = object.__new__
_set_tag = vars(Tlv)["tag"].__set__  # the slot descriptors, past the frozen __setattr__
_set_value = vars(Tlv)["value"].__set__


def _make(tag: int, value: TlvValue) -> Tlv:
    """Tlv(tag, value) without the frozen dataclass's per-field __setattr__ calls."""
    tlv: Tlv = _new(Tlv)
    _set_tag(tlv, tag)
    _set_value(tlv, value)
    return tlv


def _error(message: str, status: int) -> PduError:
    return PduError(message, command_status=status)


def decode_tlvs(data: bytes, pos: int, end: int, lenient: bool = False) -> tuple[Tlv, ...]:
    """Decode the TLVs in ``data[pos:end]``; a malformed one raises :class:`PduError`.

    A known TLV of length 0 whose type cannot be empty (an integer, network_error_code, ...)
    is left out, as if absent: SMPP 3.4 allows length 0, and SMSCs send it in receipts and
    bind responses, which must not fail for a value they did not give.

    A C-Octet string over its maximum is read as it is when ``lenient`` (a response's TLVs,
    as its fields) and, in any PDU, in receipted_message_id: SMSCs send message ids longer
    than 64 characters, and a receipt refused for it would be lost. Encoding stays strict.

    When ``lenient``, a known TLV with a length its type forbids, or a C-Octet string with a
    NUL inside, is left out instead of failing the response: an accepted submit_sm_resp or a
    bind_*_resp must not be lost to an extra TLV it carries. So is a TLV section that breaks
    off (stray octets, a value running past the PDU): the TLVs before it are kept.
    """
    tlvs: list[Tlv] = []
    unpack = _TAG_LEN.unpack_from
    table = _DECODE_TABLE
    while pos < end:
        if end - pos < 4:
            if lenient:
                break  # a response's TLV section ends where it breaks off (docstring)
            raise _error(
                f"{end - pos} stray octet(s) after the last TLV",
                CommandStatus.ESME_RINVOPTPARSTREAM,
            )
        tag, length = unpack(data, pos)
        start = pos + 4
        pos = start + length
        if pos > end:
            if lenient:
                break
            raise _error(
                f"TLV 0x{tag:04X} declares {length} octets but only {end - start} remain",
                CommandStatus.ESME_RINVOPTPARSTREAM,
            )
        entry = table.get(tag)
        if entry is None:
            tlvs.append(_make(tag, data[start:pos]))
            continue
        kind, name, a, b = entry
        if kind == _INT:
            if length not in a:
                if not length or lenient:
                    # length 0 is legal (reference section 4): no value, so absent; a
                    # response's wrong length is left out too (docstring)
                    continue
                raise _error(
                    f"TLV {name.name.lower()} has length {length}, expected {a[0]}",
                    CommandStatus.ESME_RINVPARLEN,
                )
            value = data[start] if length == 1 else int.from_bytes(data[start:pos], "big")
            tlvs.append(_make(name, value))
        elif kind == _CSTRING:
            # Several SMSCs omit the NUL of receipted_message_id; accept the value either way.
            stop = pos - 1 if length and data[pos - 1] == 0 else pos
            too_long = stop - start >= b and not (lenient or tag == _RECEIPTED_MESSAGE_ID)
            if too_long or data.find(0, start, stop) >= 0:
                if lenient:
                    continue  # a response's malformed TLV is left out (docstring)
                raise _error(
                    f"TLV {name.name.lower()} is not a C-Octet string of at most {b - 1} characters",
                    CommandStatus.ESME_RINVPARLEN,
                )
            tlvs.append(_make(name, data[start:stop].decode("latin-1")))
        else:
            if not a <= length <= b:
                if not length or lenient:
                    continue  # as for integers: absent, or left out of a response
                raise _error(
                    f"TLV {name.name.lower()} has length {length}, expected {a}..{b}",
                    CommandStatus.ESME_RINVPARLEN,
                )
            tlvs.append(_make(name, data[start:pos]))
    return tuple(tlvs)


_OCTETS_TYPES: Final = (bytes, bytearray)  # a tuple: ``bytes | bytearray`` is built per call


def _label(tag: int) -> str:
    """A tag's name for error messages (only built when there is an error to report)."""
    return _TAG_NAMES[tag].name.lower() if tag in _TAG_NAMES else f"0x{tag:04X}"


def _encode_value(tag: int, value: TlvValue) -> bytes:
    spec = TLV_SPECS.get(tag)
    if spec is None or type(spec) is OctetsSpec:
        if not isinstance(value, _OCTETS_TYPES):
            raise PduEncodeError(f"TLV {_label(tag)} takes bytes, not {type(value).__name__}")
        if spec is not None and not spec.min_size <= len(value) <= spec.max_size:
            raise PduEncodeError(
                f"TLV {_label(tag)} takes {spec.min_size}..{spec.max_size} octets, got {len(value)}"
            )
        return bytes(value)
    if type(spec) is IntSpec:
        if not isinstance(value, int):
            raise PduEncodeError(f"TLV {_label(tag)} takes an int, not {type(value).__name__}")
        for size in spec.sizes:
            if 0 <= value < 1 << (8 * size):
                return value.to_bytes(size, "big")
        raise PduEncodeError(
            f"TLV {_label(tag)} value {value} does not fit {spec.sizes[-1]} octet(s)"
        )
    assert isinstance(spec, CStringSpec)
    if not isinstance(value, str):
        raise PduEncodeError(f"TLV {_label(tag)} takes a str, not {type(value).__name__}")
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise PduEncodeError(f"TLV {_label(tag)} must be ASCII/Latin-1 text: {value!r}") from exc
    if len(raw) >= spec.max_size or b"\0" in raw:
        raise PduEncodeError(f"TLV {_label(tag)} takes at most {spec.max_size - 1} characters")
    return raw + b"\0"


def encode_tlvs(tlvs: Iterable[Tlv]) -> bytes:
    """Encode TLVs in the given order; a value that breaks its tag's type raises PduEncodeError."""
    out: list[bytes] = []
    for tlv in tlvs:
        tag = tlv.tag
        if not 0 <= tag <= 0xFFFF:
            raise PduEncodeError(f"TLV tag {tag} is outside 0..0xFFFF")
        value = _encode_value(tag, tlv.value)
        if len(value) > 0xFFFF:
            raise PduEncodeError(f"TLV 0x{tag:04X} value is {len(value)} octets, over 65535")
        out.append(_TAG_LEN.pack(tag, len(value)))
        out.append(value)
    return b"".join(out)
