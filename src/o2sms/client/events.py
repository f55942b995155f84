"""What the client hands the application: delivery reports and inbound SMS."""

from __future__ import annotations

from dataclasses import dataclass

from o2sms.fastinit import fast_init
from o2sms.receipts import DeliveryReceipt
from o2sms.smpp.pdu import Pdu


@fast_init
@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """A delivery receipt, correlated to the message part it reports when this client sent it.

    ``submitted_id`` is the message_id as our submit_sm_resp gave it (hex or decimal, whichever
    the SMSC used there); ``reference``, ``part`` and ``parts`` come from the ``send()`` call.
    They are None for a receipt of a message this client process did not send.
    """

    receipt: DeliveryReceipt
    submitted_id: str | None = None
    reference: str | None = None
    to: str | None = None
    part: int | None = None  #: 1-based
    parts: int | None = None
    session: str = ""

    @property
    def message_id(self) -> str:
        """The SMSC's id of the part this receipt reports."""
        return self.submitted_id or self.receipt.id


@dataclass(frozen=True, slots=True)
class InboundSms:
    """An SMS sent to us (mobile originated), reassembled when it came in several parts."""

    text: str
    source_addr: str
    destination_addr: str
    data_coding: int
    parts: int = 1
    session: str = ""


@dataclass(frozen=True, slots=True)
class UnreadableDeliverSm:
    """A deliver_sm that is neither a readable receipt nor decodable text, kept for the record."""

    pdu: Pdu
    reason: str
    session: str = ""


Event = DeliveryReport | InboundSms | UnreadableDeliverSm
