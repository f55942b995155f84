"""Pure pieces of SMSC-to-ESME delivery: message ids, receipt PDUs, the timeline of due items.

No I/O and no clock: the server passes ``now`` in. Receipts and inbound messages (MO) are both
:class:`Outbound` items: deliver_sm PDUs waiting for a receiving session of their account.
An outcome waiting for its time keeps a :class:`ReceiptSubject`, only what its receipt needs,
not the whole :class:`StoredMessage`: up to ``max_scheduled`` of them can wait, long after the
inspection store forgot the message.
"""

from __future__ import annotations

import heapq
import itertools
import re
import secrets
import struct
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, Protocol, Self, TypeVar

from o2sms import receipts
from o2sms.receipts import ReceiptStat
from o2sms.simulator.config import MessageIdFormat
from o2sms.simulator.o2_profile import RECEIPT_STAT_TEXT
from o2sms.simulator.store import StoredMessage
from o2sms.smpp.codec import HEADER
from o2sms.smpp.constants import CommandId, EsmClass, TlvTag
from o2sms.smpp.pdu import DeliverSm
from o2sms.smpp.tlv import Tlv
from o2sms.text.gsm0338 import BASIC_TABLE

T = TypeVar("T")

GSM_NETWORK_TYPE: Final = 3
"""network_error_code's first octet for GSM (SMPP 3.4 5.3.2.31)."""

# Enum members read once: reading them off their class is slow on Python 3.11.
_HEX: Final = MessageIdFormat.HEX
_DECIMAL: Final = MessageIdFormat.DECIMAL
_DELIVERY_RECEIPT: Final = EsmClass.DELIVERY_RECEIPT
_RECEIPTED_MESSAGE_ID: Final = TlvTag.RECEIPTED_MESSAGE_ID
_NETWORK_ERROR_CODE: Final = TlvTag.NETWORK_ERROR_CODE
#: a receipt's message_state TLV, the same (immutable) one for every receipt of a stat
_STATE_TLVS: Final = {
    stat: Tlv(TlvTag.MESSAGE_STATE, int(stat.message_state)) for stat in ReceiptStat
}
#: the same TLVs as sent: tag, length 1, value
_STATE_OCTETS: Final = {
    stat: struct.pack(">HHB", TlvTag.MESSAGE_STATE, 1, int(stat.message_state))
    for stat in ReceiptStat
}
_NETWORK_ERROR_HEAD: Final = struct.pack(">HH", TlvTag.NETWORK_ERROR_CODE, 3)


class MessageIds:
    """Unique message_ids: a random 24-bit prefix per run and a counter, cheap to make."""

    __slots__ = ("_base", "_counter", "format")

    def __init__(self, fmt: MessageIdFormat = MessageIdFormat.HEX) -> None:
        self.format = fmt
        self._base = secrets.randbits(24) << 40
        self._counter = itertools.count(1)

    def next(self) -> str:
        """A new id: 16 hex digits, up to 20 decimal digits, or a UUID."""
        n = self._base | next(self._counter)
        if self.format is _HEX:
            return f"{n:016x}"
        if self.format is _DECIMAL:
            return str(n)
        return str(uuid.UUID(int=(n << 64) | secrets.randbits(64), version=4))


_DELIVER_SM: Final = int(CommandId.DELIVER_SM)
_TAG_LEN: Final = struct.Struct(">HH")
_MAX_ADDR_OCTETS: Final = 20  # source_addr, destination_addr: C-Octet Strings of 21 with the NUL
_MAX_ID_OCTETS: Final = 64  # receipted_message_id: a C-Octet String of 65 with the NUL
_MAX_SHORT_MESSAGE: Final = 254
#: destination_addr's NUL, esm_class, then protocol_id, priority_flag, schedule_delivery_time
#: "", validity_period "", registered_delivery, replace_if_present_flag, data_coding and
#: sm_default_msg_id all 0, then sm_length
_MIDDLE: Final = struct.Struct(">xB8xB")
#: a NUL (service_type "", or source_addr's), then an address's TON and NPI
_NUL_TON_NPI: Final = struct.Struct(">xBB")


# One per receipt, and as the other per-message objects of the simulator not frozen: a
# frozen class's __init__ must go around its __setattr__, about 700 instructions a field.
@dataclass(slots=True)
class Receipt:
    """A receipt's deliver_sm as the fields that differ from one receipt to the next.

    The session makes it into the :class:`DeliverSm` when it sends it, numbered then
    (:meth:`deliver_sm`): one PDU object per receipt sent, where a PDU built beforehand
    would be copied again by the Connection to give it its sequence_number. Its wire bytes
    are written by :meth:`encode` from octets :func:`receipt` prepared, rather than by the
    codec's general encoder, which checks and packs every field of every deliver_sm. Those
    octets are a snapshot of the fields: make a changed receipt with :func:`receipt` again,
    not by changing a field (``Connection.send`` checks the header only).
    """

    source_addr: str  #: the message's destination_addr
    destination_addr: str  #: the message's source_addr
    source_addr_ton: int  #: the message's dest_addr_ton
    source_addr_npi: int  #: the message's dest_addr_npi
    dest_addr_ton: int  #: the message's source_addr_ton
    dest_addr_npi: int  #: the message's source_addr_npi
    esm_class: int
    short_message: bytes
    tlvs: tuple[Tlv, ...]
    #: the deliver_sm's body without its TLVs, then its TLVs, as :func:`encode` writes them;
    #: None when :func:`receipt` could not tell they would encode (the codec then decides)
    body: bytes | None = None
    tlv_octets: bytes = b""

    def encode(self, sequence_number: int, *, tlvs: bool = True) -> bytes | None:
        """The wire bytes of :meth:`deliver_sm` with these arguments; None if not prepared."""
        body = self.body
        if body is None:
            return None
        if tlvs:
            body += self.tlv_octets
        return HEADER.pack(16 + len(body), _DELIVER_SM, 0, sequence_number) + body

    def deliver_sm(self, sequence_number: int = 0, *, tlvs: bool = True) -> DeliverSm:
        """The deliver_sm, numbered ``sequence_number``; without TLVs (SMPP 3.3) if not ``tlvs``."""
        return DeliverSm(
            sequence_number=sequence_number,
            source_addr_ton=self.source_addr_ton,
            source_addr_npi=self.source_addr_npi,
            source_addr=self.source_addr,
            dest_addr_ton=self.dest_addr_ton,
            dest_addr_npi=self.dest_addr_npi,
            destination_addr=self.destination_addr,
            esm_class=self.esm_class,
            short_message=self.short_message,
            tlvs=self.tlvs if tlvs else (),
        )


@dataclass(slots=True)
class Outbound:
    """A deliver_sm (a receipt or an inbound SMS) on its way to a receiving session."""

    pdu: DeliverSm | Receipt
    system_id: str
    expires_at: float  #: loop time after which it is dropped undelivered
    kind: str  #: "receipt" or "mo"
    message_id: str = ""  #: the receipted message_id, for receipts
    attempts: int = 0
    #: called once when the deliver_sm is acknowledged or given up (the receipts_first fault
    #: answers the submit_sm then), with the loop time
    after: Callable[[float], None] | None = None


class ReceiptFacts(Protocol):
    """What a receipt is written from: a :class:`StoredMessage` or a :class:`ReceiptSubject`."""

    @property
    def message_id(self) -> str: ...
    @property
    def source_addr(self) -> str: ...
    @property
    def destination_addr(self) -> str: ...
    @property
    def source_addr_ton(self) -> int: ...
    @property
    def source_addr_npi(self) -> int: ...
    @property
    def dest_addr_ton(self) -> int: ...
    @property
    def dest_addr_npi(self) -> int: ...
    @property
    def submitted_at(self) -> datetime: ...
    @property
    def text(self) -> str: ...


@dataclass(slots=True)  # one per accepted message; not frozen (see Receipt), never changed
class ReceiptSubject:
    """The few facts of a message its receipts need, kept while its outcome is pending.

    Holding these instead of the :class:`StoredMessage` keeps a pending outcome small (no
    message text beyond the receipt's 20 characters, no raw schedule strings, no UDH details)
    and lets the store forget the message without the timeline keeping it alive.
    """

    message_id: str
    system_id: str
    source_addr: str
    destination_addr: str
    submitted_at: datetime
    text: str  #: the first receipts.TEXT_LIMIT characters, as the receipt's text field
    scheduled_for: datetime | None  #: no final receipt is dated before it
    # the submit_sm's, which the receipt mirrors (its source is the message's destination)
    source_addr_ton: int
    source_addr_npi: int
    dest_addr_ton: int
    dest_addr_npi: int

    @classmethod
    def of(cls, message: StoredMessage, *more: Any) -> Self:
        """The receipt's facts of ``message`` (its text cut to the receipt's limit); ``more``
        fills the fields a subclass adds after them."""
        return cls(
            message.message_id,
            message.system_id,
            message.source_addr,
            message.destination_addr,
            message.submitted_at,
            message.text[: receipts.TEXT_LIMIT],
            message.scheduled_for,
            message.source_addr_ton,
            message.source_addr_npi,
            message.dest_addr_ton,
            message.dest_addr_npi,
            *more,
        )


#: Printable characters that are one and the same octet in ASCII and in the GSM 7-bit default
#: alphabet (unpacked). A receipt's short_message goes out with data_coding 0, which O2 reads
#: as GSM 7-bit (seed: "DCS 0 ... default GSM7") while most ESMEs, o2sms.receipts among them,
#: read it as ASCII: only these characters mean the same either way. '@', '$', '_', '`' and
#: '[\\]^{|}~' do not (GSM reads 0x40 as '¡', 0x24 as '¤', 0x5F as '§', ...).
_SAME_IN_ASCII_AND_GSM: Final = "".join(
    chr(code) for code in range(0x20, 0x7F) if BASIC_TABLE[code] == chr(code)
)
_NOT_SAME: Final = re.compile(f"[^{re.escape(_SAME_IN_ASCII_AND_GSM)}]")


def _receipt_text(text: str) -> str:
    """The receipt's text field: characters read alike as ASCII and as GSM 7-bit, else '?'.

    Not the GSM alphabet itself, which would put '@' as 0x00 and '_' as 0x11 into a receipt
    that ESMEs parse as ASCII; so GSM-only characters (§, ¤, Ä, ...) become '?' too.
    """
    return _NOT_SAME.sub("?", text)  # the same str object back when nothing matches


_DELIVRD: Final = ReceiptStat.DELIVRD
_DELIVRD_STATE_TLV: Final = _STATE_TLVS[_DELIVRD]
_ID_PLACEHOLDER: Final = "0"
_TAILS_KEPT: Final = 1024
#: (submitted_at, its tzinfo, done, its tzinfo, text) -> a DELIVRD err 0 receipt's text after
#: its "id:<message_id>": the messages of one read share their submitted_at (one wall-clock
#: reading per read), those of one timer tick their done date, and those of one request their
#: text, so most receipts share all of it. The tzinfo is in the key as equal datetimes in
#: other zones write other wall-clock fields.
_tails: dict[tuple[datetime, object, datetime, object, str], str] = {}


def _receipt_short_message(
    message: ReceiptFacts, stat: ReceiptStat, err: int, done: datetime
) -> str:
    """The receipt's text: :func:`o2sms.receipts.format` of the message's facts.

    The common receipt (DELIVRD, err 0, an alphanumeric message_id: every id of the HEX and
    DECIMAL formats) differs from others of its read and tick only by its id, which the text
    starts with; the rest is formatted once and kept. Any other is formatted in full.
    """
    message_id = message.message_id
    if stat is _DELIVRD and not err and message_id.isalnum():
        submitted = message.submitted_at
        key = (submitted, submitted.tzinfo, done, done.tzinfo, message.text)
        tail = _tails.get(key)
        if tail is None:
            tail = receipts.format(
                _ID_PLACEHOLDER,
                submit_date=submitted,
                done_date=done,
                stat=stat,
                text=_receipt_text(message.text[: receipts.TEXT_LIMIT]),
            )[len("id:" + _ID_PLACEHOLDER) :]
            if len(_tails) >= _TAILS_KEPT:
                _tails.clear()
            _tails[key] = tail
        return "id:" + message_id + tail
    return receipts.format(
        message_id,
        submit_date=message.submitted_at,
        done_date=done,
        stat=stat,
        err=err,
        text=_receipt_text(message.text[: receipts.TEXT_LIMIT]),
        stat_text=RECEIPT_STAT_TEXT.get(stat),
    )


def build_receipt(
    message: ReceiptFacts,
    stat: ReceiptStat,
    err: int,
    done: datetime,
    *,
    esm_class: int | None = None,
) -> DeliverSm:
    """The receipt deliver_sm for a message: addresses (with TON and NPI) swapped, esm_class
    0x04, text and TLVs.

    ``esm_class`` EsmClass.INTERMEDIATE_NOTIFICATION (0x20) makes it an intermediate
    notification (stat ENROUTE or ACCEPTD) in the same layout.
    """
    return receipt(message, stat, err, done, esm_class=esm_class).deliver_sm()


def receipt(
    message: ReceiptFacts,
    stat: ReceiptStat,
    err: int,
    done: datetime,
    *,
    esm_class: int | None = None,
) -> Receipt:
    """The :class:`Receipt` whose deliver_sm :func:`build_receipt` returns."""
    short_message = _receipt_short_message(message, stat, err, done).encode("ascii")
    message_id = message.message_id
    tlvs: tuple[Tlv, ...] = (
        Tlv(_RECEIPTED_MESSAGE_ID, message_id),
        _DELIVRD_STATE_TLV if stat is _DELIVRD else _STATE_TLVS[stat],
    )
    network_error = b""
    if err:
        network_error = bytes((GSM_NETWORK_TYPE,)) + (err & 0xFFFF).to_bytes(2)
        tlvs += (Tlv(_NETWORK_ERROR_CODE, network_error),)
    source_addr = message.destination_addr
    destination_addr = message.source_addr
    # the receipt goes from the message's destination back to its source
    source_ton, source_npi = message.dest_addr_ton, message.dest_addr_npi
    dest_ton, dest_npi = message.source_addr_ton, message.source_addr_npi
    esm_class = _DELIVERY_RECEIPT if esm_class is None else esm_class
    body: bytes | None = None
    tlv_octets = b""
    heads: tuple[bytes, bytes] | None = None
    # What the codec's encoder would refuse is left to it (body None), to refuse it as it does.
    strings = source_addr + destination_addr + message_id
    if (
        len(source_addr) <= _MAX_ADDR_OCTETS
        and len(destination_addr) <= _MAX_ADDR_OCTETS
        and len(message_id) <= _MAX_ID_OCTETS
        and len(short_message) <= _MAX_SHORT_MESSAGE
        and strings.isascii()
        and "\0" not in strings
        and 0 <= esm_class <= 0xFF
    ):
        # struct checks each TON and NPI is an octet as it packs it: no check of its own
        try:
            heads = _NUL_TON_NPI.pack(source_ton, source_npi), _NUL_TON_NPI.pack(dest_ton, dest_npi)
        except struct.error:
            heads = None  # a TON or NPI that is no octet: left to the codec
    if heads is not None:
        raw_id = message_id.encode("ascii")
        body = b"".join(
            (
                heads[0],  # service_type "", source_addr_ton, source_addr_npi
                source_addr.encode("ascii"),
                heads[1],  # source_addr's NUL, dest_addr_ton, dest_addr_npi
                destination_addr.encode("ascii"),
                _MIDDLE.pack(esm_class, len(short_message)),
                short_message,
            )
        )
        tlv_octets = b"".join(
            (
                _TAG_LEN.pack(_RECEIPTED_MESSAGE_ID, len(raw_id) + 1),
                raw_id,
                b"\0",
                _STATE_OCTETS[stat],
                _NETWORK_ERROR_HEAD + network_error if err else b"",
            )
        )
    return Receipt(
        source_addr,
        destination_addr,
        source_ton,
        source_npi,
        dest_ton,
        dest_npi,
        esm_class,
        short_message,
        tlvs,
        body,
        tlv_octets,
    )


class Timeline(Generic[T]):
    """Items ordered by due time: push, then pop every item due by ``now`` in one batch."""

    __slots__ = ("_counter", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due: float, item: T) -> None:
        """Schedule ``item`` at ``due`` (items due at the same time keep their order)."""
        heapq.heappush(self._heap, (due, next(self._counter), item))

    def next_due(self) -> float | None:
        """When the earliest item is due, or None when empty."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[T]:
        """Remove and return every item due at or before ``now``, earliest first."""
        heap = self._heap
        out: list[T] = []
        pop = heapq.heappop
        while heap and heap[0][0] <= now:
            out.append(pop(heap)[2])
        return out

    def clear(self) -> None:
        """Drop everything."""
        self._heap.clear()


__all__ = [
    "GSM_NETWORK_TYPE",
    "MessageIds",
    "Outbound",
    "Receipt",
    "ReceiptFacts",
    "ReceiptSubject",
    "Timeline",
    "build_receipt",
    "receipt",
]
