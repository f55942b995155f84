"""One frozen dataclass per SMPP 3.4 PDU, with the specification's field names.

Mandatory fields are declared in wire order, each ``Annotated`` with its wire type from
:mod:`o2sms.smpp.wire`; :mod:`o2sms.smpp.codec` builds the encoder and decoder from that list, so
this file is the single description of every PDU layout (reference section 3). Length fields
(``sm_length``, ``number_of_dests``, ``no_unsuccess``) are derived from the values they count.
``sequence_number`` 0 means "not assigned yet": a session assigns it when it sends the PDU.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Annotated, Any, ClassVar

from o2sms.fastinit import fast_init
from o2sms.smpp.constants import INTERFACE_VERSION, CommandId, CommandStatus
from o2sms.smpp.tlv import Tlv, TlvValue
from o2sms.smpp.wire import U8, COctet, Custom, SmOctets, time_field

_S = CommandStatus

Byte = Annotated[int, U8]
ShortMessage = Annotated[bytes, SmOctets()]
SystemId = Annotated[str, COctet(16, _S.ESME_RINVSYSID)]
MAX_PASSWORD_LENGTH = 64
"""The longest bind password the codec sends. The specification allows 8 characters (C(9));
the O2/Infobip gateway asks for longer passwords to be sent as given."""
Password = Annotated[str, COctet(MAX_PASSWORD_LENGTH + 1, _S.ESME_RINVPASWD)]
SystemType = Annotated[str, COctet(13, _S.ESME_RINVSYSTYP)]
AddressRange = Annotated[str, COctet(41, _S.ESME_RBINDFAIL)]  # no status of its own: bind failed
ServiceType = Annotated[str, COctet(6, _S.ESME_RINVSERTYP)]
SourceAddr = Annotated[str, COctet(21, _S.ESME_RINVSRCADR)]
DestinationAddr = Annotated[str, COctet(21, _S.ESME_RINVDSTADR)]
SourceAddr65 = Annotated[str, COctet(65, _S.ESME_RINVSRCADR)]
DestinationAddr65 = Annotated[str, COctet(65, _S.ESME_RINVDSTADR)]
MessageId = Annotated[str, COctet(65, _S.ESME_RINVMSGID)]
ScheduleDeliveryTime = Annotated[str, time_field(_S.ESME_RINVSCHED)]
ValidityPeriod = Annotated[str, time_field(_S.ESME_RINVEXPIRY)]
FinalDate = Annotated[str, time_field(_S.ESME_RINVCMDLEN)]


class _TlvAccess:
    """``get_tlv`` for PDUs."""

    __slots__ = ()
    tlvs: tuple[Tlv, ...]

    def get_tlv(self, tag: int) -> TlvValue | None:
        """Value of the first TLV with this tag, or None."""
        for tlv in self.tlvs:
            if tlv.tag == tag:
                return tlv.value
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Pdu(_TlvAccess):
    """Header fields shared by every PDU, and its TLVs; subclasses add the mandatory body.

    SMPP 3.4 allows TLVs only on some PDUs, but SMSCs put them elsewhere too (SMPP 5.0 does
    on every response), so every PDU keeps the TLVs it was sent with.
    """

    command_id: ClassVar[CommandId]
    #: The PDU answering this request, or None for responses and unanswered PDUs.
    response_class: ClassVar[type[Pdu] | None] = None

    sequence_number: int = 0
    command_status: int = 0
    tlvs: tuple[Tlv, ...] = ()

    def response(self, **fields: Any) -> Pdu:
        """The response to this request, echoing its sequence_number (command_status 0 by default)."""
        cls = self.response_class
        if cls is None:
            raise TypeError(f"{type(self).__name__} has no response PDU")
        return cls(sequence_number=self.sequence_number, **fields)

    def with_sequence_number(self, sequence_number: int) -> Pdu:
        """A copy with another sequence_number (the codec's ``with_sequence_number`` is faster)."""
        return replace(self, sequence_number=sequence_number)


# --- bind ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Bind(Pdu):
    system_id: SystemId = ""
    password: Password = field(default="", repr=False)  # never in a log line
    system_type: SystemType = ""
    interface_version: Byte = INTERFACE_VERSION
    addr_ton: Byte = 0
    addr_npi: Byte = 0
    address_range: AddressRange = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class _BindResp(Pdu):
    system_id: SystemId = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitterResp(_BindResp):
    """bind_transmitter_resp: the SMSC's system_id; optional sc_interface_version TLV."""

    command_id = CommandId.BIND_TRANSMITTER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiverResp(_BindResp):
    """bind_receiver_resp."""

    command_id = CommandId.BIND_RECEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiverResp(_BindResp):
    """bind_transceiver_resp."""

    command_id = CommandId.BIND_TRANSCEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitter(_Bind):
    """bind_transmitter: open a session that sends messages."""

    command_id = CommandId.BIND_TRANSMITTER
    response_class = BindTransmitterResp


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiver(_Bind):
    """bind_receiver: open a session that receives messages and delivery receipts."""

    command_id = CommandId.BIND_RECEIVER
    response_class = BindReceiverResp


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiver(_Bind):
    """bind_transceiver: open a session that both sends and receives."""

    command_id = CommandId.BIND_TRANSCEIVER
    response_class = BindTransceiverResp


@dataclass(frozen=True, slots=True, kw_only=True)
class Outbind(Pdu):
    """outbind: the SMSC asks the ESME to bind as receiver. No response PDU."""

    command_id = CommandId.OUTBIND
    system_id: SystemId = ""
    password: Password = field(default="", repr=False)  # never in a log line


# --- header-only PDUs ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UnbindResp(Pdu):
    """unbind_resp."""

    command_id = CommandId.UNBIND_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class Unbind(Pdu):
    """unbind: close the session."""

    command_id = CommandId.UNBIND
    response_class = UnbindResp


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLinkResp(Pdu):
    """enquire_link_resp."""

    command_id = CommandId.ENQUIRE_LINK_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLink(Pdu):
    """enquire_link: keepalive probe."""

    command_id = CommandId.ENQUIRE_LINK
    response_class = EnquireLinkResp


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericNack(Pdu):
    """generic_nack: the answer to a PDU that could not be understood."""

    command_id = CommandId.GENERIC_NACK


# --- submit_sm / deliver_sm ------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _MessageResp(Pdu):
    message_id: MessageId = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSmResp(_MessageResp):
    """submit_sm_resp: the SMSC's message_id for the submitted message."""

    command_id = CommandId.SUBMIT_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSmResp(_MessageResp):
    """deliver_sm_resp: message_id is unused and sent empty."""

    command_id = CommandId.DELIVER_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class _ShortMessagePdu(Pdu):
    service_type: ServiceType = ""
    source_addr_ton: Byte = 0
    source_addr_npi: Byte = 0
    source_addr: SourceAddr = ""
    dest_addr_ton: Byte = 0
    dest_addr_npi: Byte = 0
    destination_addr: DestinationAddr = ""
    esm_class: Byte = 0
    protocol_id: Byte = 0
    priority_flag: Byte = 0
    schedule_delivery_time: ScheduleDeliveryTime = ""
    validity_period: ValidityPeriod = ""
    registered_delivery: Byte = 0
    replace_if_present_flag: Byte = 0
    data_coding: Byte = 0
    sm_default_msg_id: Byte = 0
    short_message: ShortMessage = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSm(_ShortMessagePdu):
    """submit_sm: send one short message (or one part of a long one)."""

    command_id = CommandId.SUBMIT_SM
    response_class = SubmitSmResp


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSm(_ShortMessagePdu):
    """deliver_sm: an inbound message or a delivery receipt (see esm_class)."""

    command_id = CommandId.DELIVER_SM
    response_class = DeliverSmResp


# --- submit_multi ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmeAddress:
    """A submit_multi destination that is an SME address (dest_flag 1)."""

    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


@dataclass(frozen=True, slots=True)
class DistributionList:
    """A submit_multi destination that is a distribution list (dest_flag 2)."""

    dl_name: str = ""


@dataclass(frozen=True, slots=True)
class UnsuccessSme:
    """A destination that submit_multi could not accept, with its error status."""

    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    error_status_code: int = 0


DestAddresses = Annotated[
    tuple[SmeAddress | DistributionList, ...],
    Custom("encode_dest_addresses", "decode_dest_addresses"),
]
UnsuccessSmes = Annotated[
    tuple[UnsuccessSme, ...], Custom("encode_unsuccess_smes", "decode_unsuccess_smes")
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitMultiResp(Pdu):
    """submit_multi_resp: message_id and the destinations that failed."""

    command_id = CommandId.SUBMIT_MULTI_RESP
    message_id: MessageId = ""
    unsuccess_smes: UnsuccessSmes = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitMulti(Pdu):
    """submit_multi: one message to up to 254 destinations."""

    command_id = CommandId.SUBMIT_MULTI
    response_class = SubmitMultiResp
    service_type: ServiceType = ""
    source_addr_ton: Byte = 0
    source_addr_npi: Byte = 0
    source_addr: SourceAddr = ""
    dest_addresses: DestAddresses = ()
    esm_class: Byte = 0
    protocol_id: Byte = 0
    priority_flag: Byte = 0
    schedule_delivery_time: ScheduleDeliveryTime = ""
    validity_period: ValidityPeriod = ""
    registered_delivery: Byte = 0
    replace_if_present_flag: Byte = 0
    data_coding: Byte = 0
    sm_default_msg_id: Byte = 0
    short_message: ShortMessage = b""


# --- data_sm ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSmResp(Pdu):
    """data_sm_resp: message_id and optional delivery-failure TLVs."""

    command_id = CommandId.DATA_SM_RESP
    message_id: MessageId = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSm(Pdu):
    """data_sm: a message whose text travels in the message_payload TLV."""

    command_id = CommandId.DATA_SM
    response_class = DataSmResp
    service_type: ServiceType = ""
    source_addr_ton: Byte = 0
    source_addr_npi: Byte = 0
    source_addr: SourceAddr65 = ""
    dest_addr_ton: Byte = 0
    dest_addr_npi: Byte = 0
    destination_addr: DestinationAddr65 = ""
    esm_class: Byte = 0
    registered_delivery: Byte = 0
    data_coding: Byte = 0


# --- query_sm, cancel_sm, replace_sm ---------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySmResp(Pdu):
    """query_sm_resp: the message's state and, when final, its final_date."""

    command_id = CommandId.QUERY_SM_RESP
    message_id: MessageId = ""
    final_date: FinalDate = ""
    message_state: Byte = 0
    error_code: Byte = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySm(Pdu):
    """query_sm: ask for the state of a submitted message."""

    command_id = CommandId.QUERY_SM
    response_class = QuerySmResp
    message_id: MessageId = ""
    source_addr_ton: Byte = 0
    source_addr_npi: Byte = 0
    source_addr: SourceAddr = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelSmResp(Pdu):
    """cancel_sm_resp."""

    command_id = CommandId.CANCEL_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelSm(Pdu):
    """cancel_sm: cancel a message not yet delivered (empty message_id: all that match)."""

    command_id = CommandId.CANCEL_SM
    response_class = CancelSmResp
    service_type: ServiceType = ""
    message_id: MessageId = ""
    source_addr_ton: Byte = 0
    source_addr_npi: Byte = 0
    source_addr: SourceAddr = ""
    dest_addr_ton: Byte = 0
    dest_addr_npi: Byte = 0
    destination_addr: DestinationAddr = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceSmResp(Pdu):
    """replace_sm_resp."""

    command_id = CommandId.REPLACE_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceSm(Pdu):
    """replace_sm: replace a message not yet delivered."""

    command_id = CommandId.REPLACE_SM
    response_class = ReplaceSmResp
    message_id: MessageId = ""
    source_addr_ton: Byte = 0
    source_addr_npi: Byte = 0
    source_addr: SourceAddr = ""
    schedule_delivery_time: ScheduleDeliveryTime = ""
    validity_period: ValidityPeriod = ""
    registered_delivery: Byte = 0
    sm_default_msg_id: Byte = 0
    short_message: ShortMessage = b""


# --- alert_notification ----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertNotification(Pdu):
    """alert_notification: a mobile became available. No response PDU."""

    command_id = CommandId.ALERT_NOTIFICATION
    source_addr_ton: Byte = 0
    source_addr_npi: Byte = 0
    source_addr: SourceAddr65 = ""
    esme_addr_ton: Byte = 0
    esme_addr_npi: Byte = 0
    esme_addr: DestinationAddr65 = ""


PDU_CLASSES: tuple[type[Pdu], ...] = (
    GenericNack,
    BindReceiver,
    BindReceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    SubmitSmResp,
    DeliverSm,
    DeliverSmResp,
    Unbind,
    UnbindResp,
    ReplaceSm,
    ReplaceSmResp,
    CancelSm,
    CancelSmResp,
    BindTransceiver,
    BindTransceiverResp,
    Outbind,
    EnquireLink,
    EnquireLinkResp,
    SubmitMulti,
    SubmitMultiResp,
    AlertNotification,
    DataSm,
    DataSmResp,
)
"""Every SMPP 3.4 PDU class, in command_id order."""


for _cls in PDU_CLASSES:
    fast_init(_cls, keyword_only=True)
del _cls
