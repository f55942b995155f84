"""Reassembling inbound concatenated messages (UDH 8/16-bit or SAR TLVs) into text, sans-IO.

Parts are grouped by (source_addr, destination_addr, scheme, reference); they may come in any
order and more than once. The clock is passed in (``now``), so tests never sleep. Memory is
bounded: at most ``max_pending`` groups and ``max_pending_bytes`` octets held, the oldest group
being dropped first, and groups expire ``timeout`` seconds after their first part. The octets
held are what each stored part keeps, not just its text: the whole PDU is kept (it comes back
in :attr:`Reassembled.parts`), so a part is charged its short_message, its TLV values and fixed
overheads for the objects around them (see :data:`PART_OVERHEAD`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple, Protocol

from o2sms.smpp.constants import EsmClass, TlvTag
from o2sms.smpp.tlv import Tlv
from o2sms.text import gsm0338, udh
from o2sms.text.encoding import Encoding, decode, encoding_for_data_coding
from o2sms.text.errors import TextError, UdhError
from o2sms.text.gsm0338 import Errors
from o2sms.text.udh import Concat, InformationElement

PART_OVERHEAD: Final = 512
"""Octets charged per stored part besides its data: roughly what a decoded DeliverSm (its
address and time strings), the stored piece and its dict slot take in CPython (about 450)."""
TLV_OVERHEAD: Final = 96
"""Octets charged per TLV of a stored part besides its value: the Tlv object, its tag and its
tuple slot (about 85), so a PDU packed with empty TLVs is charged what it holds too."""
GROUP_OVERHEAD: Final = 512
"""Octets charged per pending group: its key, record and dict of parts (about 400)."""


class InboundPart(Protocol):
    """What the reassembler reads from a deliver_sm (or data_sm): the codec's DeliverSm fits."""

    @property
    def source_addr(self) -> str:
        """Sender (MO: the handset)."""
        ...

    @property
    def destination_addr(self) -> str:
        """Recipient (MO: our short code)."""
        ...

    @property
    def short_message(self) -> bytes:
        """User data, UDH first when esm_class has UDHI; empty when message_payload is used."""
        ...

    @property
    def esm_class(self) -> int:
        """esm_class; bit 0x40 (UDHI) says a UDH starts the user data."""
        ...

    @property
    def data_coding(self) -> int:
        """data_coding of the user data."""
        ...

    @property
    def tlvs(self) -> Sequence[Tlv]:
        """Optional parameters: sar_* and message_payload are read."""
        ...


@dataclass(frozen=True, slots=True)
class RawPart:
    """An :class:`InboundPart` built from plain values (see :meth:`Reassembler.feed_raw`)."""

    source_addr: str
    destination_addr: str
    short_message: bytes
    esm_class: int = 0
    data_coding: int = 0
    tlvs: Sequence[Tlv] = ()


class GroupKey(NamedTuple):
    """Identity of a concatenated message: addresses, scheme ("udh8", "udh16", "sar"), reference."""

    source_addr: str
    destination_addr: str
    scheme: str
    reference: int


@dataclass(frozen=True, slots=True)
class Reassembled:
    """A complete inbound message: its text and what its parts said about it."""

    text: str
    source_addr: str
    destination_addr: str
    data_coding: int  #: of the first part
    reference: int | None  #: None for a message that was never concatenated
    total: int
    parts: tuple[InboundPart, ...]  #: in sequence order, one per seq (duplicates dropped)
    elements: tuple[InformationElement, ...] = ()  #: non-concat UDH IEs of part 1 (ports...)


@dataclass(frozen=True, slots=True)
class _Piece:
    """One stored part: the PDU, its user data after the UDH, and the UDH's other IEs."""

    part: InboundPart
    body: bytes
    fill_bits: int
    elements: tuple[InformationElement, ...]


@dataclass(slots=True)
class _Group:
    """Parts of one concatenated message received so far."""

    created: float
    total: int
    pieces: dict[int, _Piece] = field(default_factory=dict)
    size: int = 0  #: octets charged: GROUP_OVERHEAD plus each piece's _held_size


def _tlv_int(tlv: Tlv) -> int:
    """A SAR TLV's value as an int (the codec gives int; raw bytes are read big-endian)."""
    value = tlv.value
    if isinstance(value, int):
        return value
    if isinstance(value, bytes) and 1 <= len(value) <= 2:
        return int.from_bytes(value, "big")
    raise UdhError(f"SAR TLV 0x{tlv.tag:04X} has an invalid value {value!r}")


def _sar(tlvs: Sequence[Tlv]) -> Concat | None:
    """Concat info from sar_* TLVs: None without them, UdhError when incomplete or invalid."""
    found: dict[int, int] = {}
    for tlv in tlvs:
        if tlv.tag in (
            TlvTag.SAR_MSG_REF_NUM,
            TlvTag.SAR_TOTAL_SEGMENTS,
            TlvTag.SAR_SEGMENT_SEQNUM,
        ):
            found[tlv.tag] = _tlv_int(tlv)
    if not found:
        return None
    if len(found) != 3:
        raise UdhError("SAR TLVs incomplete: need sar_msg_ref_num, total_segments and seqnum")
    reference = found[TlvTag.SAR_MSG_REF_NUM]
    total = found[TlvTag.SAR_TOTAL_SEGMENTS]
    seq = found[TlvTag.SAR_SEGMENT_SEQNUM]
    if not 0 <= reference <= 0xFFFF:
        raise UdhError(f"sar_msg_ref_num {reference} outside 0..65535")
    if not 1 <= total <= 0xFF:
        raise UdhError(f"sar_total_segments {total} outside 1..255")
    if not 1 <= seq <= total:
        raise UdhError(f"sar_segment_seqnum {seq} outside 1..{total}")
    return Concat(reference, total, seq, ref16=True)


def _held_size(part: InboundPart, body: bytes) -> int:
    """Octets charged for storing ``part`` with ``body``: its PDU's data plus fixed overheads.

    Counting the text alone would let a peer hold a large PDU (a big vendor TLV, an empty body)
    for free, so the short_message, every TLV value and a copied body all count.
    """
    size = PART_OVERHEAD + len(part.short_message)
    shared = body is part.short_message
    for tlv in part.tlvs:
        value = tlv.value
        if isinstance(value, int):
            size += TLV_OVERHEAD
        else:
            size += TLV_OVERHEAD + len(value)
            if value is body:
                shared = True  # the message_payload itself
    return size if shared else size + len(body)  # the body after a UDH is a copy


def _user_data(part: InboundPart) -> bytes:
    """short_message, or the message_payload TLV when short_message is empty."""
    if part.short_message:
        return part.short_message
    for tlv in part.tlvs:
        if tlv.tag == TlvTag.MESSAGE_PAYLOAD:
            value = tlv.value
            if isinstance(value, bytes):
                return value
            if isinstance(value, str):
                return value.encode("latin-1", "replace")
            raise TextError("message_payload TLV holds an integer, not octets")
    return b""


class Reassembler:
    """Collects inbound parts and returns each message's text when its last part arrives.

    ``packed`` says the SMSC sends GSM 7-bit packed (most send it unpacked). Undecodable
    text raises :class:`UndecodableTextError` unless ``errors="replace"``. A malformed UDH or
    SAR TLVs raise :class:`UdhError`; a non-text data_coding raises
    :class:`UnsupportedDataCodingError`. Nothing is stored for a part that raised.
    """

    def __init__(
        self,
        *,
        timeout: float = 300.0,
        max_pending: int = 1024,
        max_pending_bytes: int = 4 * 1024 * 1024,
        packed: bool = False,
        errors: Errors = "strict",
    ) -> None:
        if timeout <= 0 or max_pending < 1 or max_pending_bytes < 1:
            raise ValueError("timeout, max_pending and max_pending_bytes must be positive")
        self.timeout = timeout
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.packed = packed
        self.errors: Errors = errors
        self.evicted = 0  #: groups dropped to respect the bounds (not counting expiry)
        self._groups: OrderedDict[GroupKey, _Group] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        """Number of incomplete messages held."""
        return len(self._groups)

    @property
    def pending_bytes(self) -> int:
        """Octets charged for incomplete messages: their PDUs' data and overheads (see module)."""
        return self._size

    def next_deadline(self) -> float | None:
        """When the oldest incomplete message expires, or None when nothing is pending."""
        for group in self._groups.values():
            return group.created + self.timeout
        return None

    def expire(self, now: float) -> list[GroupKey]:
        """Drop incomplete messages older than ``timeout``; return their keys (for logs)."""
        expired: list[GroupKey] = []
        while self._groups:
            key, group = next(iter(self._groups.items()))
            if group.created + self.timeout > now:
                break
            self._drop(key)
            expired.append(key)
        return expired

    def feed_raw(
        self,
        source_addr: str,
        destination_addr: str,
        short_message: bytes,
        *,
        esm_class: int = 0,
        data_coding: int = 0,
        tlvs: Sequence[Tlv] = (),
        now: float,
    ) -> Reassembled | None:
        """:meth:`feed` from plain values."""
        part = RawPart(source_addr, destination_addr, short_message, esm_class, data_coding, tlvs)
        return self.feed(part, now)

    def feed(self, part: InboundPart, now: float) -> Reassembled | None:
        """Add one part; the whole message when it completes it (or needs no others), else None."""
        self.expire(now)
        encoding_for_data_coding(part.data_coding)  # refuse binary before storing anything
        user_data = _user_data(part)
        elements: tuple[InformationElement, ...] = ()
        fill = 0
        if part.esm_class & EsmClass.UDHI:
            header, body = udh.split_user_data(user_data)
            concat = header.concat
            elements = header.other_elements
            fill = udh.fill_bits(header.length)
            scheme = "udh16" if concat is not None and concat.ref16 else "udh8"
        else:
            body = user_data
            concat = _sar(part.tlvs)
            scheme = "sar"
        piece = _Piece(part, body, fill, elements)
        if concat is None or concat.total == 1:
            text = self._decode([piece])
            reference = None if concat is None else concat.reference
            return Reassembled(
                text,
                part.source_addr,
                part.destination_addr,
                part.data_coding,
                reference,
                1,
                (part,),
                elements,
            )
        key = GroupKey(part.source_addr, part.destination_addr, scheme, concat.reference)
        group = self._groups.get(key)
        if group is not None and group.total != concat.total:
            self._drop(key)  # the reference was reused: the old message will never complete
            group = None
        if group is None:
            while len(self._groups) >= self.max_pending:
                self._evict_oldest()
            group = _Group(now, concat.total, size=GROUP_OVERHEAD)
            self._groups[key] = group
            self._size += GROUP_OVERHEAD
        if concat.seq in group.pieces:
            return None  # duplicate: the first copy wins
        group.pieces[concat.seq] = piece
        size = _held_size(part, body)
        group.size += size
        self._size += size
        while self._size > self.max_pending_bytes:
            oldest = next(iter(self._groups))
            self._evict_oldest()
            if oldest == key:
                return None  # this message alone is over the bound
        if len(group.pieces) < group.total:
            return None
        self._drop(key)
        pieces = [group.pieces[seq] for seq in range(1, group.total + 1)]
        first = pieces[0]
        return Reassembled(
            self._decode(pieces),
            part.source_addr,
            part.destination_addr,
            first.part.data_coding,
            concat.reference,
            group.total,
            tuple(p.part for p in pieces),
            first.elements,
        )

    def _drop(self, key: GroupKey) -> None:
        """Forget one group and its bytes."""
        group = self._groups.pop(key)
        self._size -= group.size

    def _evict_oldest(self) -> None:
        """Drop the oldest group to respect a bound."""
        self._drop(next(iter(self._groups)))
        self.evicted += 1

    def _decode(self, pieces: Sequence[_Piece]) -> str:
        """Text of pieces in order: joined before decoding, so pairs cut by a peer survive."""
        codings = {p.part.data_coding for p in pieces}
        if len(codings) > 1:
            return "".join(self._decode([p]) for p in pieces)
        data_coding = pieces[0].part.data_coding
        if encoding_for_data_coding(data_coding) is Encoding.GSM7:
            if self.packed:
                septets = b"".join(gsm0338.unpack(p.body, p.fill_bits) for p in pieces)
            else:
                septets = b"".join(p.body for p in pieces)
            return gsm0338.decode(septets, errors=self.errors)
        return decode(b"".join(p.body for p in pieces), data_coding, errors=self.errors)
