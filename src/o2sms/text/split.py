"""Cutting a text into submit_sm-ready parts: UDH 8/16-bit, SAR TLVs or one message_payload.

Parts never exceed their limit and never cut an ESC pair or a surrogate pair (the pair moves to
the next part). A text that fits one SMS is one Part without UDH or TLVs, whatever the method.
Too many parts raise :class:`MessageTooLongError`: nothing is ever silently truncated.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final

from o2sms.fastinit import fast_init
from o2sms.smpp.constants import EsmClass, TlvTag
from o2sms.smpp.tlv import Tlv
from o2sms.text import gsm0338, udh
from o2sms.text.encoding import (
    MAX_PARTS,
    Encoding,
    SplitMethod,
    as_split_method,
    check_max_parts,
    concat_fill_bits,
    data_coding_for,
    encode_auto,
    fits_single,
    measure,
    segment_ends,
    too_long,
)
from o2sms.text.errors import MessageTooLongError, TextError
from o2sms.text.translit import transliterate as _transliterate


@fast_init
@dataclass(frozen=True, slots=True)
class Part:
    """One submit_sm's worth of a message: put these four fields into the PDU as they are.

    ``esm_class`` is 0x40 (UDHI) for UDH parts, else 0; OR in a messaging mode if you use one.
    """

    short_message: bytes
    esm_class: int = 0
    data_coding: int = 0
    tlvs: tuple[Tlv, ...] = ()


_REFERENCES: Final = itertools.count()
"""Process-wide reference counter; taken modulo 256 or 65536, so it wraps."""


def next_reference(*, ref16: bool = False) -> int:
    """The next concatenation reference: sequential (not random), wrapping at 256 or 65536."""
    return next(_REFERENCES) % (0x10000 if ref16 else 0x100)


def concat_reference(part: Part) -> int | None:
    """The concatenation reference a part of a long message carries (UDH or SAR), else None.

    Read back from what :func:`split` built, so a sender can resend the missing parts of a
    message later under the same reference (``split(..., reference=...)``).
    """
    for tlv in part.tlvs:
        if tlv.tag == TlvTag.SAR_MSG_REF_NUM and isinstance(tlv.value, int):
            return tlv.value
    if part.esm_class & EsmClass.UDHI and part.short_message:
        concat = udh.parse(part.short_message).concat
        return concat.reference if concat is not None else None
    return None


def _check_reference(reference: int | None, method: SplitMethod) -> None:
    """Reject a caller's reference that does not fit the method's field."""
    if reference is None:
        return
    top = 0xFF if method is SplitMethod.UDH8 else 0xFFFF
    if not 0 <= reference <= top:
        raise TextError(f"reference must be 0..{top} for {method.value}, not {reference}")


def split(
    text: str,
    *,
    encoding: Encoding | str | None = None,
    method: SplitMethod | str = SplitMethod.UDH8,
    transliterate: bool = False,
    packed: bool = False,
    flash: bool = False,
    reference: int | None = None,
    max_parts: int = MAX_PARTS,
) -> list[Part]:
    """Encode ``text`` and cut it into parts ready for submit_sm.

    ``encoding`` None picks GSM 7-bit when every character fits, else UCS-2. ``packed`` packs
    GSM 7-bit (with UDH fill bits and 23.038 CR padding); it is ignored for other encodings.
    ``flash`` uses class-0 data_coding (0x10 / 0x18) and allows one part only. ``reference``
    defaults to the module counter (:func:`next_reference`). SAR parts are sized like UDH8
    ones, or like UDH16 ones when the caller's reference is above 255.
    """
    chosen = as_split_method(method)
    check_max_parts(max_parts)
    _check_reference(reference, chosen)
    if transliterate:
        text = _transliterate(text)
    enc, data = encode_auto(text, encoding)
    data_coding = data_coding_for(enc, flash=flash)
    pack = packed and enc is Encoding.GSM7
    if fits_single(data, enc, packed=pack):
        if pack:
            data = gsm0338.pack(data)
        return [Part(data, 0, data_coding)]
    if flash:
        parts = len(segment_ends(data, enc, enc.part_limit(), max_parts=MAX_PARTS))
        raise MessageTooLongError(
            f"long flash messages are not supported: the text needs {parts} parts",
            parts=parts,
            max_parts=1,
        )
    ref16 = chosen is SplitMethod.UDH16 or (
        chosen is SplitMethod.SAR and reference is not None and reference > 0xFF
    )
    if chosen is SplitMethod.PAYLOAD:
        measure(data, enc, chosen, max_parts, packed=pack)  # the SMSC cuts it: still bounded
        payload = gsm0338.pack(data) if pack else data
        return [Part(b"", 0, data_coding, (Tlv(TlvTag.MESSAGE_PAYLOAD, payload),))]
    limit = enc.part_limit(ref16=ref16)
    fill = concat_fill_bits(chosen, ref16=ref16)
    ends = segment_ends(data, enc, limit, max_parts=max_parts, packed=pack, fill_bits=fill)
    if len(ends) > max_parts:
        raise too_long(len(data) // enc.unit_width, limit, max_parts, enc)
    ref = next_reference(ref16=ref16) if reference is None else reference
    total = len(ends)
    result: list[Part] = []
    start = 0
    for seq, end in enumerate(ends, 1):
        chunk = data[start:end]
        start = end
        if chosen is SplitMethod.SAR:
            tlvs = (
                Tlv(TlvTag.SAR_MSG_REF_NUM, ref),
                Tlv(TlvTag.SAR_TOTAL_SEGMENTS, total),
                Tlv(TlvTag.SAR_SEGMENT_SEQNUM, seq),
            )
            if pack:
                chunk = gsm0338.pack(chunk, fill)
            result.append(Part(chunk, 0, data_coding, tlvs))
            continue
        header = udh.build_concat(ref, total, seq, ref16=ref16)
        if pack:
            chunk = gsm0338.pack(chunk, udh.fill_bits(len(header)))
        result.append(Part(header + chunk, EsmClass.UDHI, data_coding))
    return result
