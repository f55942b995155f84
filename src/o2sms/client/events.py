"""What the client hands the application: delivery reports and inbound SMS."""

from __future__ import annotations

from dataclasses import dataclass

from o2sms.receipts import DeliveryReceipt
from o2sms.smpp.pdu import Pdu


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


_new = object.__new__
_set_receipt = vars(DeliveryReport)["receipt"].__set__  # past the frozen __setattr__
_set_submitted_id = vars(DeliveryReport)["submitted_id"].__set__
_set_reference = vars(DeliveryReport)["reference"].__set__
_set_to = vars(DeliveryReport)["to"].__set__
_set_part = vars(DeliveryReport)["part"].__set__
_set_parts = vars(DeliveryReport)["parts"].__set__
_set_session = vars(DeliveryReport)["session"].__set__


def delivery_report(  # noqa: PLR0917 - every field in order, as DeliveryReport(...) takes them
    receipt: DeliveryReceipt,
    submitted_id: str | None,
    reference: str | None,
    to: str | None,
    part: int | None,
    parts: int | None,
    session: str,
) -> DeliveryReport:
    """``DeliveryReport(...)`` with every field given, filling its slots directly."""
    report: DeliveryReport = _new(DeliveryReport)
    _set_receipt(report, receipt)
    _set_submitted_id(report, submitted_id)
    _set_reference(report, reference)
    _set_to(report, to)
    _set_part(report, part)
    _set_parts(report, parts)
    _set_session(report, session)
    return report


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
