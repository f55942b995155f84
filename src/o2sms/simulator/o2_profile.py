"""What the O2 (Infobip) gateway does that SMPP 3.4 leaves open: statuses, flash, validation.

Pure functions, no I/O. The command_status chosen for each way a submit_sm can be wrong
(Infobip meanings first where the reference lists one, else the SMPP 3.4 code that names the
field, else an SMPP 5.0 code that 3.4 SMSCs commonly send):

=========================================================  ===================================
problem                                                    command_status
=========================================================  ===================================
bind: unknown system_id / wrong password                   ESME_RINVSYSID / ESME_RINVPASWD
bind: system_type not allowed for the account               ESME_RINVSYSTYP
bind: beyond the account's session limit                    ESME_RBINDFAIL (existing sessions
                                                           stay bound; the gateway documents
                                                           no dedicated code)
destination_addr empty, not digits, or alphanumeric TON     ESME_RINVDSTADR / ESME_RINVDSTTON
source_addr empty, alphanumeric over 11, non-digits with a  ESME_RINVSRCADR (Infobip 0x0A too)
  numeric TON (1, 2, 4); TON 0 accepts any sender
data_coding other than 0, 1, 3, 8                           ESME_RINVDCS (0x104)
text undecodable in its data_coding (odd UCS-2 length...)   ESME_RINVMSGLEN
  (half a UCS-2 surrogate pair at a part's edge is fine:
  the other half is in the next/previous part)
esm_class says receipt, or UDHI with a malformed UDH        ESME_RINVESMCLASS
incomplete or invalid sar_* TLVs                            ESME_RINVOPTPARAMVAL
short_message and message_payload both set                  ESME_RINVMSGLEN
over 25 parts, or message_payload over 4000 octets          ESME_RINVMSGLEN
a long message on NSMS: UDH or SAR parts, or text over one  ESME_RINVMSGLEN
  part in short_message or message_payload (the seed: no
  long SMS for flash)
registered_delivery / priority_flag out of range, or        ESME_RINVREGDLVFLG / ESME_RINVPRTFLG
  registered_delivery's reserved receipt value 3
replace_if_present_flag other than 0 or 1                   ESME_RINVREPFLAG
sm_default_msg_id other than 0 (no canned messages)         ESME_RINVDFTMSGID
schedule_delivery_time / validity_period unreadable         ESME_RINVSCHED / ESME_RINVEXPIRY
validity_period already past, or before the schedule        ESME_RINVEXPIRY
sm_length over 254 (checked by the codec)                   ESME_RINVMSGLEN
a TLV whose length does not fit its tag (codec)             0x9F, Infobip's "invalid optional
                                                           parameter length" (ESME_RINVPARLEN
                                                           0xC2 with infobip_statuses off)
=========================================================  ===================================

With ``infobip_statuses`` (the default) the statuses in :data:`INFOBIP_STATUSES` are replaced
by the codes the Infobip platform answers with (reference section 10): its list has a code of
its own for a bad TLV length (0x9F), and none for address TON/NPI, which it reports as an
invalid source (0x0A) or destination (0x0B) address. Every other status is already the one
Infobip uses, or one it does not document.

An empty source_addr takes the account's ``default_sender`` when it has one (the gateway's
account default sender): alphanumeric (TON 5, NPI 0) unless it is all digits (TON 1, NPI 1).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from o2sms.receipts import ReceiptStat
from o2sms.smpp.constants import CommandStatus, EsmClass, Npi, TlvTag, Ton
from o2sms.smpp.pdu import SubmitSm
from o2sms.smpp.times import SmppTimeError, parse_absolute_time, parse_relative_time
from o2sms.text import Encoding, TextError, decode, encoding_for_data_coding, udh
from o2sms.text.udh import Concat

FLASH_SYSTEM_TYPE: Final = "NSMS"
"""The bind system_type that turns a session's messages into flash notifications (seed)."""

BIND_LIMIT_STATUS: Final = CommandStatus.ESME_RBINDFAIL
"""Answer to a bind beyond the account's session limit."""

INFOBIP_INVALID_TLV_LENGTH: Final = 0x9F
"""Infobip's "invalid optional parameter length" (a reserved code in SMPP 3.4; see
o2sms.smpp.constants.INFOBIP_STATUS_MEANINGS)."""

INFOBIP_STATUSES: Final[dict[int, int]] = {
    CommandStatus.ESME_RINVPARLEN: INFOBIP_INVALID_TLV_LENGTH,
    CommandStatus.ESME_RINVSRCTON: CommandStatus.ESME_RINVSRCADR,
    CommandStatus.ESME_RINVSRCNPI: CommandStatus.ESME_RINVSRCADR,
    CommandStatus.ESME_RINVDSTTON: CommandStatus.ESME_RINVDSTADR,
    CommandStatus.ESME_RINVDSTNPI: CommandStatus.ESME_RINVDSTADR,
}
"""SMPP 3.4 status -> the code the O2 (Infobip) gateway answers the same failure with."""

RECEIPT_STAT_TEXT: Final = {
    ReceiptStat.REJECTD: "REJECTED",
    ReceiptStat.UNKNOWN: "DELIVERY UNKNOWN",
}
"""How the gateway's description spells two receipt stats (the others are the 7-letter codes)."""

MAX_ALPHANUMERIC_SOURCE: Final = 11
"""Characters an alphanumeric sender may have (GSM 03.40 TP-OA: 11 septets)."""

_S = CommandStatus
_PART_OCTETS: Final = {Encoding.GSM7: 153, Encoding.LATIN1: 134, Encoding.UCS2: 134}
_SINGLE_OCTETS: Final = {Encoding.GSM7: 160, Encoding.LATIN1: 140, Encoding.UCS2: 140}
_SAR_TAGS: Final = (TlvTag.SAR_MSG_REF_NUM, TlvTag.SAR_TOTAL_SEGMENTS, TlvTag.SAR_SEGMENT_SEQNUM)
_NUMERIC_TONS: Final = frozenset({Ton.INTERNATIONAL, Ton.NATIONAL, Ton.SUBSCRIBER_NUMBER})
# Enum members checked on every submit_sm, read once: reading them off their class is slow
# on Python 3.11.
_ALPHANUMERIC: Final = Ton.ALPHANUMERIC
_TYPE_MASK: Final = EsmClass.TYPE_MASK
_UDHI: Final = EsmClass.UDHI
_RECEIPT_TYPES: Final = (EsmClass.DELIVERY_RECEIPT, EsmClass.INTERMEDIATE_NOTIFICATION)
_MESSAGE_PAYLOAD: Final = TlvTag.MESSAGE_PAYLOAD
_RINVSCHED: Final = _S.ESME_RINVSCHED
_RINVEXPIRY: Final = _S.ESME_RINVEXPIRY
_UCS2: Final = Encoding.UCS2
_UCS2_DATA_CODING: Final = 0x08


class Rejected(Exception):  # noqa: N818 - a verdict, not an error of o2sms
    """A submit_sm the gateway refuses: answer with ``command_status``; ``reason`` for logs."""

    def __init__(self, command_status: int, reason: str) -> None:
        super().__init__(reason)
        self.command_status = command_status
        self.reason = reason


# One per accepted submit_sm: not frozen, as a frozen class's __init__ must go around its
# __setattr__ (about 700 instructions a field); never changed.
@dataclass(slots=True)
class Submission:
    """What a valid submit_sm carries, decoded: the facts inspection shows."""

    text: str
    encoding: Encoding
    concat: Concat | None  #: reference/total/seq when the message is one part of several
    scheme: str  #: "single", "udh8", "udh16", "sar" or "payload"
    schedule: datetime | None  #: aware UTC instant, None for "now"
    validity: datetime | None  #: aware UTC instant, None for the SMSC default


def _bad_digits(addr: str) -> bool:
    digits = addr[1:] if addr.startswith("+") else addr
    return not (digits.isascii() and digits.isdigit())


def check_addresses(pdu: SubmitSm) -> None:
    """Raise Rejected unless source and destination look like real addresses."""
    dest = pdu.destination_addr
    if pdu.dest_addr_ton == _ALPHANUMERIC:
        raise Rejected(_S.ESME_RINVDSTTON, "destination_addr cannot be alphanumeric")
    if not dest or _bad_digits(dest):
        raise Rejected(_S.ESME_RINVDSTADR, f"destination_addr {dest!r} is not a phone number")
    src = pdu.source_addr
    if not src:
        raise Rejected(_S.ESME_RINVSRCADR, "source_addr is empty")
    if pdu.source_addr_ton == _ALPHANUMERIC:
        if len(src) > MAX_ALPHANUMERIC_SOURCE:
            raise Rejected(
                _S.ESME_RINVSRCADR,
                f"alphanumeric source_addr {src!r} is over {MAX_ALPHANUMERIC_SOURCE} characters",
            )
    elif pdu.source_addr_ton in _NUMERIC_TONS and _bad_digits(src):
        raise Rejected(_S.ESME_RINVSRCADR, f"numeric source_addr {src!r} has non-digits")


def sender_address(sender: str) -> tuple[int, int, str]:
    """(source_addr_ton, source_addr_npi, source_addr) for an account's default sender."""
    if sender.isascii() and sender.isdigit():
        return Ton.INTERNATIONAL, Npi.ISDN, sender
    return Ton.ALPHANUMERIC, Npi.UNKNOWN, sender


def _when(value: str, now: datetime, status: int, field: str) -> datetime | None:
    """The instant a schedule or validity time names, as a UTC datetime (``now`` is UTC).

    An absolute time keeps the sender's offset when parsed; it is converted, so that the
    dates written from it (a receipt's done date, never before the schedule) are UTC like
    every other date the simulator writes.
    """
    if not value:
        return None
    try:
        if value.endswith("R"):
            return parse_relative_time(value).after(now)
        return parse_absolute_time(value).astimezone(UTC)
    except SmppTimeError as exc:
        raise Rejected(status, f"{field}: {exc}") from None


def _sar(pdu: SubmitSm) -> Concat | None:
    values: dict[int, int] = {}
    for tlv in pdu.tlvs:
        if tlv.tag in _SAR_TAGS and isinstance(tlv.value, int):
            values[tlv.tag] = tlv.value
    if not values:
        return None
    if len(values) != 3:
        raise Rejected(_S.ESME_RINVOPTPARAMVAL, "sar_* TLVs incomplete")
    total = values[TlvTag.SAR_TOTAL_SEGMENTS]
    seq = values[TlvTag.SAR_SEGMENT_SEQNUM]
    if not 1 <= seq <= total:
        raise Rejected(_S.ESME_RINVOPTPARAMVAL, f"sar_segment_seqnum {seq} outside 1..{total}")
    return Concat(values[TlvTag.SAR_MSG_REF_NUM], total, seq, True)


def _split_pair_text(body: bytes, concat: Concat | None) -> str | None:
    """A UCS-2 part's text when its only fault is half a surrogate pair at a part boundary.

    Libraries that split by octets cut an emoji's pair in two: its high surrogate ends one
    part, its low one starts the next. Each half reads U+FFFD in the part's text; the
    reassembled message joins the parts' octets first, so it gets the emoji whole. None when
    the text is undecodable otherwise (odd length, a lone surrogate inside, not a part).
    """
    if concat is None or concat.total < 2 or len(body) % 2:
        return None
    start, end = 0, len(body)
    head = tail = ""
    if concat.seq > 1 and end >= 2 and 0xDC <= body[0] <= 0xDF:  # low surrogate first
        start, head = 2, "\ufffd"
    if concat.seq < concat.total and end - start >= 2 and 0xD8 <= body[end - 2] <= 0xDB:
        end, tail = end - 2, "\ufffd"  # high surrogate last
    if not (head or tail):
        return None
    try:
        return head + decode(body[start:end], _UCS2_DATA_CODING) + tail
    except TextError:
        return None


#: :func:`o2sms.text.decode` remembering its last text: the submit_sm of one request to many
#: recipients carry the same octets one after another (errors are raised each time)
_decode: Final = functools.lru_cache(maxsize=1)(decode)


def check_submit(
    pdu: SubmitSm,
    *,
    now: datetime,
    flash: bool,
    data_codings: frozenset[int],
    max_parts: int,
    max_payload: int,
) -> Submission:
    """Validate a submit_sm as the gateway would; the decoded Submission or Rejected."""
    check_addresses(pdu)
    if pdu.registered_delivery > 0x1F or pdu.registered_delivery & 0x03 == 0x03:
        # bits 1..0 = 11 are reserved in SMPP 3.4 (5.2.17): accepted, no receipt would come
        raise Rejected(_S.ESME_RINVREGDLVFLG, f"registered_delivery {pdu.registered_delivery}")
    if pdu.priority_flag > 3:
        raise Rejected(_S.ESME_RINVPRTFLG, f"priority_flag {pdu.priority_flag}")
    if pdu.replace_if_present_flag > 1:  # SMPP 3.4 5.2.18: 0 don't replace, 1 replace
        raise Rejected(
            _S.ESME_RINVREPFLAG, f"replace_if_present_flag {pdu.replace_if_present_flag}"
        )
    if pdu.sm_default_msg_id:  # SMPP 3.4 5.2.20: a canned message; the gateway keeps none
        raise Rejected(
            _S.ESME_RINVDFTMSGID, f"no predefined message {pdu.sm_default_msg_id} (canned)"
        )
    esm_type = pdu.esm_class & _TYPE_MASK
    if esm_type in _RECEIPT_TYPES:
        raise Rejected(_S.ESME_RINVESMCLASS, "submit_sm cannot carry a delivery receipt")
    if pdu.data_coding not in data_codings:
        raise Rejected(_S.ESME_RINVDCS, f"data_coding 0x{pdu.data_coding:02X} is not supported")
    try:
        encoding = encoding_for_data_coding(pdu.data_coding)
    except TextError as exc:
        raise Rejected(_S.ESME_RINVDCS, str(exc)) from None
    payload = pdu.get_tlv(_MESSAGE_PAYLOAD) if pdu.tlvs else None
    user_data = pdu.short_message
    scheme = "single"
    if payload is not None:
        if not isinstance(payload, bytes):
            raise Rejected(_S.ESME_RINVOPTPARAMVAL, "message_payload is not octets")
        if user_data:
            raise Rejected(_S.ESME_RINVMSGLEN, "both short_message and message_payload are set")
        if len(payload) > max_payload:
            raise Rejected(
                _S.ESME_RINVMSGLEN,
                f"message_payload of {len(payload)} octets is over {max_payload}",
            )
        user_data = payload
        scheme = "payload"
    concat: Concat | None = None
    if pdu.esm_class & _UDHI:
        try:
            header, body = udh.split_user_data(user_data)
        except TextError as exc:
            raise Rejected(_S.ESME_RINVESMCLASS, f"UDHI set but {exc}") from None
        concat = header.concat
        if concat is not None:
            scheme = "udh16" if concat.ref16 else "udh8"
    else:
        body = user_data
        if pdu.tlvs:
            concat = _sar(pdu)
            if concat is not None:
                scheme = "sar"
    if concat is not None and concat.total > max_parts:
        raise Rejected(_S.ESME_RINVMSGLEN, f"{concat.total} parts, over {max_parts}")
    if scheme == "payload" and len(body) > _SINGLE_OCTETS[encoding]:
        parts = -(-len(body) // _PART_OCTETS[encoding])
        if parts > max_parts:
            raise Rejected(_S.ESME_RINVMSGLEN, f"payload needs {parts} parts, over {max_parts}")
    if flash and (
        (concat is not None and concat.total > 1) or len(body) > _SINGLE_OCTETS[encoding]
    ):
        # "Long SMS feature is not supported for Flash notifications": however the text
        # comes, short_message included (254 octets fit there, over one part's 140/160)
        raise Rejected(_S.ESME_RINVMSGLEN, "long messages cannot be sent as flash")
    try:
        text = _decode(body, pdu.data_coding)
    except TextError as exc:
        split_pair = _split_pair_text(body, concat) if encoding is _UCS2 else None
        if split_pair is None:
            raise Rejected(_S.ESME_RINVMSGLEN, f"text cannot be decoded: {exc}") from None
        text = split_pair
    # (most submit_sm leave both empty: no call then)
    schedule = (
        _when(pdu.schedule_delivery_time, now, _RINVSCHED, "schedule_delivery_time")
        if pdu.schedule_delivery_time
        else None
    )
    validity = (
        _when(pdu.validity_period, now, _RINVEXPIRY, "validity_period")
        if pdu.validity_period
        else None
    )
    if validity is not None:
        if validity <= now:
            raise Rejected(_S.ESME_RINVEXPIRY, "validity_period is already past")
        if schedule is not None and validity <= schedule:
            raise Rejected(_S.ESME_RINVEXPIRY, "validity_period ends before the scheduled time")
    return Submission(text, encoding, concat, scheme, schedule, validity)


def seconds_until(when: datetime | None, now: datetime) -> float:
    """Seconds from ``now`` to ``when`` (0 for None or the past)."""
    if when is None:
        return 0.0
    return max(0.0, (when - now) / timedelta(seconds=1))


__all__ = [
    "BIND_LIMIT_STATUS",
    "FLASH_SYSTEM_TYPE",
    "INFOBIP_INVALID_TLV_LENGTH",
    "INFOBIP_STATUSES",
    "MAX_ALPHANUMERIC_SOURCE",
    "RECEIPT_STAT_TEXT",
    "Rejected",
    "Submission",
    "check_addresses",
    "check_submit",
    "seconds_until",
    "sender_address",
]
