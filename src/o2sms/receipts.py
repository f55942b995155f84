"""Delivery receipts (DLRs): parse, build and correlate them with the submitted message.

An SMSC reports the fate of a message with a ``deliver_sm`` whose esm_class says "delivery
receipt" and whose short_message holds text in the SMPP 3.4 Appendix B layout (one line)::

    id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm
    stat:DDDDDDD err:E text:...

The layout is vendor-specific in practice: the O2 (Infobip) description spells ``dlvrld``, keys
vary in case (``Text:``), dates carry seconds or not, fields go missing, and stat values get
spelled out (``DELIVERY UNKNOWN``, ``REJECTED``). :func:`parse` copes with all of that;
:func:`from_deliver_sm` also prefers the ``receipted_message_id`` and ``message_state`` TLVs.

**The hex-versus-decimal message_id pitfall.** The submit_sm_resp message_id is an opaque
string, but Appendix B calls the receipt's ``id`` decimal, so SMSCs mix encodings: the resp id
``04000000086ECD50`` (hex) and the receipt ``id:288230376293190992`` (decimal) are the same
number. Correlate on the exact id first (the ``receipted_message_id`` TLV usually echoes the resp
id verbatim), then on :func:`message_id_keys`. See ``docs/receipts.md``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Final, Literal, Protocol

from o2sms.errors import O2smsError
from o2sms.fastinit import fast_init
from o2sms.smpp.constants import EsmClass, MessageState, TlvTag, is_receipt
from o2sms.smpp.tlv import Tlv
from o2sms.text import Encoding, UnsupportedDataCodingError, encoding_for_data_coding
from o2sms.text import decode as decode_text

__all__ = [
    "DeliverSmLike",
    "DeliveryReceipt",
    "ReceiptParseError",
    "ReceiptStat",
    "clean_message_id",
    "format",
    "from_deliver_sm",
    "message_id_keys",
    "message_ids_match",
    "normalise_message_id",
    "parse",
]

TEXT_LIMIT = 20
"""Characters of the original message a receipt's ``text`` field carries (Appendix B)."""

MAX_MESSAGE_ID_LENGTH = 64
"""Longest message_id SMPP allows (C-Octet String of 65 octets with its NUL)."""


class ReceiptParseError(O2smsError, ValueError):
    """Text (or a deliver_sm) is not a delivery receipt: no ``id``/``stat``, or an unknown stat."""


class ReceiptStat(StrEnum):
    """The ``stat`` values of a receipt's text (Appendix B), each tied to a message_state."""

    DELIVRD = "DELIVRD"  #: delivered to the handset (final)
    EXPIRED = "EXPIRED"  #: validity period passed (final)
    DELETED = "DELETED"  #: deleted, e.g. by cancel_sm (final)
    UNDELIV = "UNDELIV"  #: undeliverable (final)
    ACCEPTD = "ACCEPTD"  #: accepted for the subscriber (final; some SMSCs: intermediate)
    UNKNOWN = "UNKNOWN"  #: state unknown, Infobip's ``DELIVERY UNKNOWN`` (final)
    REJECTD = "REJECTD"  #: rejected, Infobip's ``REJECTED`` (final)
    ENROUTE = "ENROUTE"  #: still on its way (intermediate notification)

    @property
    def message_state(self) -> MessageState:
        """The message_state (spec 5.2.28) the SMSC would put in the TLV for this stat."""
        return _STAT_TO_STATE[self]

    @property
    def is_final(self) -> bool:
        """False only for ENROUTE: every other stat ends the message's life at the SMSC."""
        return self is not _ENROUTE

    @classmethod
    def from_text(cls, s: str) -> ReceiptStat:
        """The stat a receipt's text means, in any case and spelling seen in the wild.

        Accepts the seven-letter codes, the message_state names (``DELIVERED``, ``REJECTED``,
        ``UNDELIVERABLE``...) and Infobip's ``DELIVERY UNKNOWN``; spaces, ``_`` and ``-`` ignored.
        """
        exact = _STAT_ALIASES.get(s)  # the usual case: DELIVRD, UNDELIV, ...
        if exact is not None:
            return exact
        key = re.sub(r"[\s_\-]+", "", s).upper()
        try:
            return _STAT_ALIASES[key]
        except KeyError:
            raise ReceiptParseError(f"unknown receipt stat {s!r}") from None

    @classmethod
    def from_message_state(cls, state: int) -> ReceiptStat:
        """The stat for a message_state TLV value (1..8); other values raise ReceiptParseError."""
        for stat, mapped in _STAT_TO_STATE.items():
            if mapped == state:
                return stat
        raise ReceiptParseError(f"message_state {state} has no receipt stat (expected 1..8)")


_ENROUTE: Final = ReceiptStat.ENROUTE  # reading members off the class is slow on Python 3.11
_DELIVRD: Final = ReceiptStat.DELIVRD
_STAT_VALUES: Final = {stat: stat.value for stat in ReceiptStat}  # .value is a slow property

_STAT_TO_STATE: dict[ReceiptStat, MessageState] = {
    ReceiptStat.DELIVRD: MessageState.DELIVERED,
    ReceiptStat.EXPIRED: MessageState.EXPIRED,
    ReceiptStat.DELETED: MessageState.DELETED,
    ReceiptStat.UNDELIV: MessageState.UNDELIVERABLE,
    ReceiptStat.ACCEPTD: MessageState.ACCEPTED,
    ReceiptStat.UNKNOWN: MessageState.UNKNOWN,
    ReceiptStat.REJECTD: MessageState.REJECTED,
    ReceiptStat.ENROUTE: MessageState.ENROUTE,
}

_STAT_BY_STATE: dict[MessageState, ReceiptStat] = {
    state: stat for stat, state in _STAT_TO_STATE.items()
}
_STATES: dict[int, MessageState] = {int(state): state for state in MessageState}

_STAT_ALIASES: dict[str, ReceiptStat] = {
    **{stat.value: stat for stat in ReceiptStat},
    **{state.name: stat for stat, state in _STAT_TO_STATE.items()},
    "DELIVERYUNKNOWN": ReceiptStat.UNKNOWN,
    "UNDELIVERED": ReceiptStat.UNDELIV,
}


@fast_init
@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """One delivery receipt, from its text and, when present, its TLVs.

    Dates are naive: receipts carry no zone (the SMSC's local time, often UTC). ``err`` keeps the
    text as sent (``"000"``; ``""`` when absent); :attr:`err_code` is its number.
    ``message_state`` and ``network_error_code`` come from TLVs and are None without them.
    ``intermediate`` is True for a deliver_sm whose esm_class says intermediate notification
    (0x20), which reports progress (ENROUTE, or ACCEPTD on some SMSCs), never the final state.
    """

    id: str
    sub: int | None
    dlvrd: int | None
    submit_date: datetime | None
    done_date: datetime | None
    stat: ReceiptStat
    err: str
    text: str | None
    message_state: MessageState | None = None
    network_error_code: bytes | None = None
    intermediate: bool = False

    @property
    def err_code(self) -> int | None:
        """``err`` as a decimal number, or None when it is absent or not decimal digits."""
        return _small_int(self.err)

    @property
    def is_final(self) -> bool:
        """False for an intermediate notification: esm_class 0x20, or stat ENROUTE."""
        return not self.intermediate and self.stat.is_final


class DeliverSmLike(Protocol):
    """What :func:`from_deliver_sm` reads from a deliver_sm (the codec's ``DeliverSm`` fits)."""

    @property
    def short_message(self) -> bytes: ...

    @property
    def esm_class(self) -> int: ...

    @property
    def data_coding(self) -> int: ...

    @property
    def tlvs(self) -> Sequence[Tlv]: ...


# A key is a word followed by ':' at the start or after whitespace; "submit date"/"done date"
# contain a space. Unknown keys (extra vendor fields) end the previous value too.
_KEY_RE = re.compile(
    r"(?<!\S)(submit[\s_]*date|done[\s_]*date|[a-z][a-z0-9_]*)[ \t]*:",
    re.IGNORECASE | re.ASCII,
)
_CANONICAL_KEYS = {
    "id": "id",
    "sub": "sub",
    "dlvrd": "dlvrd",
    "dlvrld": "dlvrd",  # the O2/Infobip description's spelling
    "submitdate": "submit date",
    "donedate": "done date",
    "stat": "stat",
    "err": "err",
    "text": "text",
}
_DIGITS_RE = re.compile(r"[0-9]+", re.ASCII)
_HEX_RE = re.compile(r"[0-9a-f]+", re.ASCII)


def _small_int(s: str) -> int | None:
    """ASCII decimal digits (at most 18) as an int, else None: never int()'s ValueError."""
    s = s.strip()
    if len(s) <= 18 and s.isascii() and s.isdigit():
        return int(s)
    return None


@lru_cache(maxsize=4096)  # receipts of one burst share their minutes
def _parse_date(s: str) -> datetime | None:
    """``YYMMDDhhmm`` or ``YYMMDDhhmmss`` (YY -> 20YY) as a naive datetime; None if malformed."""
    s = s.strip()
    if not _DIGITS_RE.fullmatch(s) or len(s) not in (10, 12):
        return None
    yy, mo, dd, hh, mi = (int(s[i : i + 2]) for i in range(0, 10, 2))
    ss = int(s[10:12]) if len(s) == 12 else 0
    try:
        return datetime(2000 + yy, mo, dd, hh, mi, ss)
    except ValueError:
        return None


def _decode(data: str | bytes | bytearray | memoryview) -> str:
    """Receipt text as str: bytes are read as Latin-1 (ASCII-compatible, never fails)."""
    if isinstance(data, str):
        return data
    return bytes(data).decode("latin-1")


def _decode_by_data_coding(data: str | bytes, data_coding: int) -> str:
    """A deliver_sm's receipt text: UCS-2 and Latin-1 by their data_coding, else as Latin-1.

    UCS-2 (8, and the GSM groups that mean UCS-2) is not ASCII-compatible, so its octets go
    through :func:`o2sms.text.decode` (invalid units become U+FFFD, never an error), unless
    they hold the receipt's keys as plain octets: some SMSCs copy the submit_sm's data_coding
    into the receipt and write its text in ASCII (in UCS-2 every key character would be
    preceded by a zero octet). GSM 7-bit, IA5 and anything unknown or binary are read as
    Latin-1 octets, which keeps the ASCII keys.
    """
    if isinstance(data, str):
        return data
    if data_coding <= 1:  # SMSC default alphabet or IA5: the usual case, ASCII keys as they are
        return _decode(data)
    try:
        encoding = encoding_for_data_coding(data_coding)
    except UnsupportedDataCodingError:
        return _decode(data)
    if encoding is Encoding.UCS2 and _OCTET_KEYS.search(data) is not None:
        return _decode(data)  # ASCII text under a UCS-2 data_coding
    if encoding in (Encoding.UCS2, Encoding.LATIN1):
        return decode_text(bytes(data), data_coding, errors="replace")
    return _decode(data)


# "id:" or "stat:" as one octet per character: never found in UCS-2, where each is 00 xx
_OCTET_KEYS: Final = re.compile(rb"(?:id|stat):", re.IGNORECASE)


# The layout nearly every SMSC writes, one space apart: read in one step before the general
# scan, with the same result for such a text (tests compare both on generated receipts). An
# id the general scan would cut (a ':' in it, or whitespace or NUL it strips) goes to it.
_STANDARD_RE = re.compile(
    r"id:(\S+) sub:(\d{1,3}) dlvrl?d:(\d{1,3}) submit date:(\d{10}|\d{12}) "
    r"done date:(\d{10}|\d{12}) stat:([A-Z]+) err:(\w+)(?: [Tt]ext:(.*))?",
    re.DOTALL | re.ASCII,
)


def _standard_id(receipt_id: str) -> bool:
    """True when the general scan reads this standard-layout id unchanged."""
    if receipt_id.isalnum():  # the usual hex or decimal id: no ':', whitespace nor NUL
        return True
    return ":" not in receipt_id and receipt_id == receipt_id.strip().strip("\x00").strip()


def _scan_keys(text: str) -> dict[str, str]:
    """Key/value pairs of a receipt text; the first of a repeated key wins.

    Values run to the next key; ``text`` runs to the end, so it may hold spaces and colons.
    """
    fields: dict[str, str] = {}
    matches = list(_KEY_RE.finditer(text))
    for index, match in enumerate(matches):
        key = re.sub(r"[\s_]+", "", match.group(1)).lower()
        canonical = _CANONICAL_KEYS.get(key)
        if canonical == "text":
            if "text" not in fields:
                fields["text"] = text[match.end() :].rstrip("\x00\r\n")
            break
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        if canonical is not None and canonical not in fields:
            fields[canonical] = text[match.end() : end].strip().strip("\x00").strip()
    return fields


def _stat_from_value(value: str) -> ReceiptStat:
    """The stat of a ``stat:`` value, retrying with its first word when junk follows."""
    try:
        return ReceiptStat.from_text(value)
    except ReceiptParseError:
        words = value.split()
        if len(words) > 1:
            return ReceiptStat.from_text(words[0])
        raise


def _build(
    fields: dict[str, str],
    *,
    message_id: str | None = None,
    state: MessageState | None = None,
    network_error_code: bytes | None = None,
    intermediate: bool = False,
) -> DeliveryReceipt:
    """A receipt from scanned fields, TLV values (when given) taking precedence."""
    receipt_id = message_id if message_id else fields.get("id", "")
    if not receipt_id:
        raise ReceiptParseError("not a delivery receipt: no 'id:' field (and no TLV id)")
    if state is not None:
        stat = ReceiptStat.from_message_state(state)
    elif fields.get("stat"):
        stat = _stat_from_value(fields["stat"])
    else:
        raise ReceiptParseError(
            f"not a delivery receipt: no 'stat:' field (and no TLV state), id {receipt_id!r}"
        )
    return DeliveryReceipt(
        receipt_id,
        _small_int(fields.get("sub", "")),
        _small_int(fields.get("dlvrd", "")),
        _parse_date(fields.get("submit date", "")),
        _parse_date(fields.get("done date", "")),
        stat,
        fields.get("err", ""),
        fields.get("text"),
        state,
        network_error_code,
        intermediate,
    )


def _read(
    text: str,
    message_id: str | None = None,
    state: MessageState | None = None,
    network_error_code: bytes | None = None,
    intermediate: bool = False,
) -> DeliveryReceipt:
    """The receipt in ``text``, TLV values (when given) taking precedence: the standard layout
    read straight from its match, anything else through the general key scan (same result)."""
    match = _STANDARD_RE.fullmatch(text.rstrip("\x00\r\n"))
    if match is None:
        return _build(
            _scan_keys(text),
            message_id=message_id,
            state=state,
            network_error_code=network_error_code,
            intermediate=intermediate,
        )
    receipt_id, sub, dlvrd, submit_date, done_date, stat_text, err, rest = match.groups()
    if not _standard_id(receipt_id):
        return _build(
            _scan_keys(text),
            message_id=message_id,
            state=state,
            network_error_code=network_error_code,
            intermediate=intermediate,
        )
    if state is not None:
        stat = _STAT_BY_STATE[state]  # what ReceiptStat.from_message_state gives for 1..8
    else:
        stat = _STAT_ALIASES.get(stat_text) or _stat_from_value(stat_text)
    return DeliveryReceipt(
        message_id if message_id else receipt_id,
        int(sub),  # 1 to 3 ASCII digits: what _small_int gives
        int(dlvrd),
        _parse_date(submit_date),
        _parse_date(done_date),
        stat,
        err,
        rest,
        state,
        network_error_code,
        intermediate,
    )


def parse(text: str | bytes) -> DeliveryReceipt:
    """Parse a receipt's text tolerantly; raise ReceiptParseError (only) when it is not one.

    Keys match in any case and order (``dlvrd`` or ``dlvrld``, ``Text:`` or ``text:``), extra or
    missing fields are fine, ``text:`` runs to the end, dates have 10 or 12 digits (a malformed
    date or count becomes None). ``id:`` and a known ``stat:`` are required. Bytes are Latin-1.
    """
    return _read(_decode(text))


def _tlv_text(value: int | str | bytes) -> str | None:
    """A C-string TLV value as str (the codec gives str; bytes tolerated), None if empty."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        return value.strip("\x00").strip() or None
    return None


def _tlv_state(value: int | str | bytes) -> MessageState | None:
    """A message_state TLV value (int, or one octet) as MessageState; None if not 1..8."""
    if isinstance(value, bytes) and len(value) == 1:
        value = value[0]
    if isinstance(value, int):
        return _STATES.get(value)  # MessageState(value), None when not 1..8
    return None


# TLV tags as plain ints: reading enum members off their class is slow on Python 3.11.
_RECEIPTED_MESSAGE_ID: Final = int(TlvTag.RECEIPTED_MESSAGE_ID)
_MESSAGE_STATE: Final = int(TlvTag.MESSAGE_STATE)
_NETWORK_ERROR_CODE: Final = int(TlvTag.NETWORK_ERROR_CODE)
_MESSAGE_PAYLOAD: Final = int(TlvTag.MESSAGE_PAYLOAD)
_TYPE_MASK: Final = int(EsmClass.TYPE_MASK)
_INTERMEDIATE: Final = int(EsmClass.INTERMEDIATE_NOTIFICATION)


def from_deliver_sm(pdu: DeliverSmLike) -> DeliveryReceipt:
    """The receipt a deliver_sm carries, preferring its TLVs over its text.

    The ``receipted_message_id`` TLV (usually the submit_sm_resp id verbatim) replaces the text's
    ``id`` and the ``message_state`` TLV decides ``stat``; the text comes from short_message, or
    from the ``message_payload`` TLV when short_message is empty, decoded by ``data_coding``
    (UCS-2 and Latin-1; other codings are read as ASCII-compatible octets). With both TLVs no
    parsable text is needed. An esm_class of intermediate notification (0x20) makes the receipt
    :attr:`~DeliveryReceipt.intermediate` (not final, whatever its stat). A deliver_sm whose
    esm_class is not a receipt raises ReceiptParseError.
    """
    if not is_receipt(pdu.esm_class):
        raise ReceiptParseError(
            f"deliver_sm is not a delivery receipt (esm_class 0x{pdu.esm_class:02X})"
        )
    message_id: str | None = None
    state: MessageState | None = None
    network_error_code: bytes | None = None
    payload: str | bytes = pdu.short_message
    for tlv in pdu.tlvs:
        tag = tlv.tag
        if tag == _RECEIPTED_MESSAGE_ID and message_id is None:
            message_id = _tlv_text(tlv.value)
        elif tag == _MESSAGE_STATE and state is None:
            state = _tlv_state(tlv.value)
        elif tag == _NETWORK_ERROR_CODE and isinstance(tlv.value, bytes):
            network_error_code = tlv.value
        elif (
            tag == _MESSAGE_PAYLOAD and not pdu.short_message and isinstance(tlv.value, bytes | str)
        ):
            payload = tlv.value
    return _read(
        _decode_by_data_coding(payload, pdu.data_coding),
        message_id,
        state,
        network_error_code,
        (pdu.esm_class & _TYPE_MASK) == _INTERMEDIATE,
    )


_MINUTES_KEPT: Final = 1024
# minute number (date ordinal * 1440 + hh * 60 + mm) of a plain datetime -> its "YYMMDDhhmm";
# only years 2000..2099 get in, so a hit needs no range check
_minute_texts: dict[int, str] = {}
_SECOND_TEXTS: Final = tuple(f"{second:02d}" for second in range(60))


def _format_date(name: str, dt: datetime, seconds: bool) -> str:
    """``YYMMDDhhmm[ss]`` of a datetime's wall-clock fields (any tzinfo is not written).

    The text of each minute is kept: receipts sent together share their minutes, and one
    strftime costs more than the rest of :func:`format`.
    """
    if type(dt) is not datetime:  # a date or a subclass: strftime as it defines it
        _check_year(name, dt)
        return dt.strftime("%y%m%d%H%M%S" if seconds else "%y%m%d%H%M")
    minute = dt.toordinal() * 1440 + dt.hour * 60 + dt.minute
    text = _minute_texts.get(minute)
    if text is None:
        _check_year(name, dt)
        text = dt.strftime("%y%m%d%H%M")
        if len(_minute_texts) >= _MINUTES_KEPT:
            _minute_texts.clear()
        _minute_texts[minute] = text
    return text + _SECOND_TEXTS[dt.second] if seconds else text


def _check_year(name: str, dt: datetime) -> None:
    """Raise ValueError unless the year is one ``YY`` can write (2000..2099)."""
    if not 2000 <= dt.year <= 2099:
        raise ValueError(f"{name} year {dt.year} cannot be written: YY covers 2000..2099 only")


def format(  # the requested public name; shadows the builtin in this module only
    id: str,  # Appendix B's field name
    *,
    sub: int = 1,
    dlvrd: int | None = None,
    submit_date: datetime,
    done_date: datetime,
    stat: ReceiptStat,
    err: int | str = 0,
    text: str = "",
    seconds: bool = False,
    stat_text: str | None = None,
) -> str:
    """A receipt text in the layout the O2 gateway sends, with Appendix B's ``dlvrd`` spelling.

    ``dlvrd`` defaults to 1 for DELIVRD and 0 otherwise; ``err`` as an int is written with
    three digits; ``text`` is cut to its first 20 characters; ``seconds`` writes 12-digit dates.
    The O2 description shows ``dlvrld``; we write ``dlvrd`` and :func:`parse` reads both.
    ``stat_text`` writes another spelling of ``stat`` (the gateway lists ``REJECTED`` and
    ``DELIVERY UNKNOWN``); it must read back as the same stat.
    Arguments that could not be read back (an id with whitespace or NUL, negative counts) raise
    ValueError.
    """
    # isalnum() is a quick pass: no alphanumeric character is whitespace, ':' or NUL
    if not id or (not id.isalnum() and any(ch.isspace() or ch == "\0" for ch in id)):
        raise ValueError(f"receipt id must be non-empty without whitespace or NUL, got {id!r}")
    if dlvrd is None:
        dlvrd = 1 if stat is _DELIVRD else 0
    if sub < 0 or dlvrd < 0:
        raise ValueError(f"sub ({sub}) and dlvrd ({dlvrd}) must not be negative")
    if isinstance(err, int):
        if err < 0:
            raise ValueError(f"err must not be negative, got {err}")
        err_text = f"{err:03d}"
    else:
        err_text = err
    if not err_text or (
        not err_text.isalnum() and any(ch.isspace() or ch in ":\0" for ch in err_text)
    ):
        raise ValueError(f"err must be non-empty without whitespace, ':' or NUL, got {err!r}")
    if type(stat) is not ReceiptStat:
        stat = ReceiptStat(stat)
    if stat_text is None:
        stat_text = _STAT_VALUES[stat]
    elif ":" in stat_text or ReceiptStat.from_text(stat_text) is not stat:
        raise ValueError(f"stat_text {stat_text!r} does not read back as {stat.value}")
    return (
        f"id:{id} sub:{sub:03d} dlvrd:{dlvrd:03d}"
        f" submit date:{_format_date('submit_date', submit_date, seconds)}"
        f" done date:{_format_date('done_date', done_date, seconds)}"
        f" stat:{stat_text} err:{err_text} text:{text[:TEXT_LIMIT]}"
    )


def clean_message_id(message_id: str) -> str:
    """The id as written, without surrounding whitespace/NULs and lower-cased (so hex digits
    compare equal in either case), but not read as a number: ``0000006e`` and ``00000110``
    stay two ids, where :func:`normalise_message_id` reads both as 110."""
    return message_id.strip().strip("\x00").strip().lower()


def normalise_message_id(
    message_id: str, *, base: Literal["auto", "hex", "decimal"] = "auto"
) -> str:
    """One canonical form of a message id: the decimal digits of its value, no leading zeros.

    ``"auto"`` reads all-digit ids as decimal and ids with a-f among hex digits as hex, as Kannel
    does; other ids (UUIDs, ids over 64 characters) come back stripped and lower-cased. Beware:
    an all-digit *hex* id is read as decimal in auto mode, which is why the correlation key set
    :func:`message_id_keys` exists. With an explicit ``base`` an id not in that base raises
    ReceiptParseError. Example: ``04000000086ECD50`` -> ``288230376293190992``.
    """
    clean = clean_message_id(message_id)
    is_decimal = bool(_DIGITS_RE.fullmatch(clean)) and len(clean) <= MAX_MESSAGE_ID_LENGTH
    is_hex = bool(_HEX_RE.fullmatch(clean)) and len(clean) <= MAX_MESSAGE_ID_LENGTH
    if base == "decimal" or (base == "auto" and is_decimal):
        if not is_decimal:
            raise ReceiptParseError(f"message id {message_id!r} is not a decimal number")
        return str(int(clean, 10))
    if base == "hex" or (base == "auto" and is_hex):
        if not is_hex:
            raise ReceiptParseError(f"message id {message_id!r} is not a hexadecimal number")
        return str(int(clean, 16))
    return clean


def message_id_keys(message_id: str) -> frozenset[str]:
    """Every key an id may be correlated under: its exact (stripped, lower-case) form and the
    decimal value of the id read as decimal and read as hex, where those readings are valid.

    Two ids refer to the same message when their key sets intersect, so a submit_sm_resp id
    ``04000000086ECD50`` matches a receipt ``id:288230376293190992``. Short all-digit ids can
    collide across readings (``10`` as hex is ``16``): match exact ids first, use these keys
    as the fallback.
    """
    if len(message_id) <= _CACHED_ID_LENGTH:
        return _cached_keys(message_id)
    return _keys(message_id)


_CACHED_ID_LENGTH: Final = 2 * MAX_MESSAGE_ID_LENGTH  # longer ones (junk) would bloat the cache


def _keys(message_id: str) -> frozenset[str]:
    clean = clean_message_id(message_id)
    if len(clean) <= MAX_MESSAGE_ID_LENGTH:
        if clean.isdigit() and clean.isascii():  # decimal digits read as decimal and as hex
            return frozenset((clean, str(int(clean, 10)), str(int(clean, 16))))
        if _HEX_RE.fullmatch(clean):
            return frozenset((clean, str(int(clean, 16))))
    return frozenset((clean,))


# The same id is keyed several times on its way (its submit's record, its receipt's wait,
# lock and match), a few microseconds each time.
_cached_keys: Final = lru_cache(maxsize=8192)(_keys)


def message_ids_match(a: str, b: str) -> bool:
    """True when two ids (say a submit_sm_resp id and a receipt id) may name the same message."""
    return not message_id_keys(a).isdisjoint(message_id_keys(b))
