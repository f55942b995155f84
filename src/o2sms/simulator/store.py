"""The inspection store: what arrived, bounded so memory stays flat under load.

Every accepted submit_sm becomes a :class:`StoredMessage` (one per part, each with its own
message_id); the parts of a concatenated message are also reassembled into a
:class:`LongMessage`. Only the newest ``size`` messages are kept.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from o2sms.smpp.constants import MessageState
from o2sms.smpp.tlv import Tlv
from o2sms.text import Reassembler, TextError


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(slots=True)
class StoredMessage:
    """One accepted submit_sm as the simulator understood it, and what became of it."""

    message_id: str
    system_id: str
    system_type: str  #: of the bind the message came on
    session_id: int
    source_addr: str
    destination_addr: str
    data_coding: int
    encoding: str  #: "gsm7", "latin1" or "ucs2"
    text: str  #: this part's text (without UDH)
    flash: bool
    scheme: str  #: "single", "udh8", "udh16", "sar" or "payload"
    reference: int | None
    part: int
    total: int
    registered_delivery: int
    schedule_delivery_time: str  #: as sent
    validity_period: str  #: as sent
    scheduled_for: datetime | None
    expires_at: datetime | None
    submitted_at: datetime
    # The submit_sm's addresses and service_type, so a cancel_sm can be checked against them
    # (SMPP 3.4 4.9.1: its addresses "must match that supplied in the original message
    # submission"). Defaults only for callers that build a StoredMessage by hand.
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    service_type: str = ""
    #: source_addr is the account's default sender: the submit_sm's source_addr was empty
    default_sender: bool = False
    state: MessageState = MessageState.ENROUTE
    stat: str | None = None  #: the receipt's stat once the outcome is decided
    err: int = 0
    done_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain data for the JSON endpoint."""
        return {
            "message_id": self.message_id,
            "system_id": self.system_id,
            "system_type": self.system_type,
            "session_id": self.session_id,
            "source_addr": self.source_addr,
            "destination_addr": self.destination_addr,
            "data_coding": self.data_coding,
            "encoding": self.encoding,
            "text": self.text,
            "flash": self.flash,
            "scheme": self.scheme,
            "reference": self.reference,
            "part": self.part,
            "total": self.total,
            "registered_delivery": self.registered_delivery,
            "schedule_delivery_time": self.schedule_delivery_time,
            "validity_period": self.validity_period,
            "scheduled_for": _iso(self.scheduled_for),
            "expires_at": _iso(self.expires_at),
            "submitted_at": _iso(self.submitted_at),
            "source_addr_ton": self.source_addr_ton,
            "source_addr_npi": self.source_addr_npi,
            "dest_addr_ton": self.dest_addr_ton,
            "dest_addr_npi": self.dest_addr_npi,
            "service_type": self.service_type,
            "default_sender": self.default_sender,
            "state": self.state.name,
            "stat": self.stat,
            "err": self.err,
            "done_at": _iso(self.done_at),
        }


@dataclass(frozen=True, slots=True)
class LongMessage:
    """A concatenated message whose parts all arrived, reassembled."""

    text: str
    system_id: str
    source_addr: str
    destination_addr: str
    reference: int | None
    total: int
    message_ids: tuple[str, ...]  #: one per part, in part order
    flash: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain data for the JSON endpoint."""
        return {
            "text": self.text,
            "system_id": self.system_id,
            "source_addr": self.source_addr,
            "destination_addr": self.destination_addr,
            "reference": self.reference,
            "total": self.total,
            "message_ids": list(self.message_ids),
            "flash": self.flash,
        }


@dataclass(frozen=True, slots=True)
class _Part:
    """An InboundPart for the Reassembler that remembers its message_id."""

    source_addr: str
    destination_addr: str
    short_message: bytes
    esm_class: int
    data_coding: int
    tlvs: Sequence[Tlv]
    message_id: str
    system_id: str = field(default="")


class MessageStore:
    """Bounded store of received messages, by message_id, oldest forgotten first."""

    def __init__(self, size: int = 10_000, *, reassembly_timeout: float = 300.0) -> None:
        if size < 1:
            raise ValueError("store size must be at least 1")
        self.size = size
        # A dict and its ids oldest first, rather than an OrderedDict: cheaper per message
        # added, the one operation done per submit_sm (ids are unique, so each is once in both)
        self._by_id: dict[str, StoredMessage] = {}
        self._order: deque[str] = deque()
        self._long: deque[LongMessage] = deque(maxlen=size)
        self._reassembler = Reassembler(
            timeout=reassembly_timeout, max_pending=min(size, 4096), errors="replace"
        )

    def __len__(self) -> int:
        return len(self._by_id)

    def add(self, message: StoredMessage) -> None:
        """Keep a message, forgetting the oldest when full."""
        by_id = self._by_id
        if len(by_id) >= self.size:
            del by_id[self._order.popleft()]
        message_id = message.message_id
        if message_id not in by_id:  # added again (by hand): it keeps its place, as it was
            self._order.append(message_id)
        by_id[message_id] = message

    def add_part(
        self,
        message: StoredMessage,
        *,
        short_message: bytes,
        esm_class: int,
        tlvs: Sequence[Tlv],
        now: float,
    ) -> LongMessage | None:
        """Keep one part of a concatenated message; the whole message once all parts are in."""
        self.add(message)
        part = _Part(
            message.source_addr,
            message.destination_addr,
            short_message,
            esm_class,
            message.data_coding,
            tlvs,
            message.message_id,
            message.system_id,
        )
        try:
            done = self._reassembler.feed(part, now)
        except TextError:
            return None
        if done is None:
            return None
        ids = tuple(p.message_id for p in done.parts if isinstance(p, _Part))
        long_message = LongMessage(
            done.text,
            message.system_id,
            done.source_addr,
            done.destination_addr,
            done.reference,
            done.total,
            ids,
            message.flash,
        )
        self._long.append(long_message)
        return long_message

    def get(self, message_id: str) -> StoredMessage | None:
        """The message with this id, if still kept."""
        return self._by_id.get(message_id)

    def messages(self) -> list[StoredMessage]:
        """Kept messages, oldest first."""
        return list(self._by_id.values())

    def long_messages(self) -> list[LongMessage]:
        """Reassembled concatenated messages, oldest first."""
        return list(self._long)

    def clear(self) -> None:
        """Forget everything (between tests)."""
        self._by_id.clear()
        self._order.clear()
        self._long.clear()


__all__ = ["LongMessage", "MessageStore", "StoredMessage"]
