"""SMPP 3.4 numbers with names: command ids, command_status codes, field values and TLV tags.

Values follow the SMPP 3.4 specification (section numbers in the comments); the Infobip-only
meanings of some command_status codes, which the O2 gateway uses, are in :data:`INFOBIP_STATUS_MEANINGS`.
"""

from __future__ import annotations

from enum import IntEnum

RESPONSE_BIT = 0x80000000
"""Bit 31 of command_id: set in every response (spec 3.2)."""


class CommandId(IntEnum):
    """command_id of every SMPP 3.4 PDU (spec 5.1.2)."""

    GENERIC_NACK = 0x80000000
    BIND_RECEIVER = 0x00000001
    BIND_RECEIVER_RESP = 0x80000001
    BIND_TRANSMITTER = 0x00000002
    BIND_TRANSMITTER_RESP = 0x80000002
    QUERY_SM = 0x00000003
    QUERY_SM_RESP = 0x80000003
    SUBMIT_SM = 0x00000004
    SUBMIT_SM_RESP = 0x80000004
    DELIVER_SM = 0x00000005
    DELIVER_SM_RESP = 0x80000005
    UNBIND = 0x00000006
    UNBIND_RESP = 0x80000006
    REPLACE_SM = 0x00000007
    REPLACE_SM_RESP = 0x80000007
    CANCEL_SM = 0x00000008
    CANCEL_SM_RESP = 0x80000008
    BIND_TRANSCEIVER = 0x00000009
    BIND_TRANSCEIVER_RESP = 0x80000009
    OUTBIND = 0x0000000B
    ENQUIRE_LINK = 0x00000015
    ENQUIRE_LINK_RESP = 0x80000015
    SUBMIT_MULTI = 0x00000021
    SUBMIT_MULTI_RESP = 0x80000021
    ALERT_NOTIFICATION = 0x00000102
    DATA_SM = 0x00000103
    DATA_SM_RESP = 0x80000103

    @property
    def is_response(self) -> bool:
        """True for responses (bit 31 set), generic_nack included."""
        return bool(self & RESPONSE_BIT)


class CommandStatus(IntEnum):
    """command_status codes of SMPP 3.4 (spec 5.1.3), plus the SMPP 5.0 ones met in the wild.

    Values an SMSC may send that are not listed here (vendor codes) stay plain ints; use
    :func:`status_name` and :func:`status_meaning` to describe any value.
    """

    ESME_ROK = 0x00000000
    ESME_RINVMSGLEN = 0x00000001
    ESME_RINVCMDLEN = 0x00000002
    ESME_RINVCMDID = 0x00000003
    ESME_RINVBNDSTS = 0x00000004
    ESME_RALYBND = 0x00000005
    ESME_RINVPRTFLG = 0x00000006
    ESME_RINVREGDLVFLG = 0x00000007
    ESME_RSYSERR = 0x00000008
    ESME_RINVSRCADR = 0x0000000A
    ESME_RINVDSTADR = 0x0000000B
    ESME_RINVMSGID = 0x0000000C
    ESME_RBINDFAIL = 0x0000000D
    ESME_RINVPASWD = 0x0000000E
    ESME_RINVSYSID = 0x0000000F
    ESME_RCANCELFAIL = 0x00000011
    ESME_RREPLACEFAIL = 0x00000013
    ESME_RMSGQFUL = 0x00000014
    ESME_RINVSERTYP = 0x00000015
    ESME_RINVNUMDESTS = 0x00000033
    ESME_RINVDLNAME = 0x00000034
    ESME_RINVDESTFLAG = 0x00000040
    ESME_RINVSUBREP = 0x00000042
    ESME_RINVESMCLASS = 0x00000043
    ESME_RCNTSUBDL = 0x00000044
    ESME_RSUBMITFAIL = 0x00000045
    ESME_RINVSRCTON = 0x00000048
    ESME_RINVSRCNPI = 0x00000049
    ESME_RINVDSTTON = 0x00000050
    ESME_RINVDSTNPI = 0x00000051
    ESME_RINVSYSTYP = 0x00000053
    ESME_RINVREPFLAG = 0x00000054
    ESME_RINVNUMMSGS = 0x00000055
    ESME_RTHROTTLED = 0x00000058
    ESME_RINVSCHED = 0x00000061
    ESME_RINVEXPIRY = 0x00000062
    ESME_RINVDFTMSGID = 0x00000063
    ESME_RX_T_APPN = 0x00000064
    ESME_RX_P_APPN = 0x00000065
    ESME_RX_R_APPN = 0x00000066
    ESME_RQUERYFAIL = 0x00000067
    ESME_RINVOPTPARSTREAM = 0x000000C0
    ESME_ROPTPARNOTALLWD = 0x000000C1
    ESME_RINVPARLEN = 0x000000C2
    ESME_RMISSINGOPTPARAM = 0x000000C3
    ESME_RINVOPTPARAMVAL = 0x000000C4
    ESME_RDELIVERYFAILURE = 0x000000FE
    ESME_RUNKNOWNERR = 0x000000FF
    # SMPP 5.0 (section 4.7.6); some 3.4 SMSCs send them.
    ESME_RSERTYPUNAUTH = 0x00000100
    ESME_RPROHIBITED = 0x00000101
    ESME_RSERTYPUNAVAIL = 0x00000102
    ESME_RSERTYPDENIED = 0x00000103
    ESME_RINVDCS = 0x00000104
    ESME_RINVSRCADDRSUBUNIT = 0x00000105
    ESME_RINVDSTADDRSUBUNIT = 0x00000106
    ESME_RINVBCASTFREQINT = 0x00000107
    ESME_RINVBCASTALIAS_NAME = 0x00000108
    ESME_RINVBCASTAREAFMT = 0x00000109
    ESME_RINVNUMBCAST_AREAS = 0x0000010A
    ESME_RINVBCASTCNTTYPE = 0x0000010B
    ESME_RINVBCASTMSGCLASS = 0x0000010C
    ESME_RBCASTFAIL = 0x0000010D
    ESME_RBCASTQUERYFAIL = 0x0000010E
    ESME_RBCASTCANCELFAIL = 0x0000010F
    ESME_RINVBCAST_REP = 0x00000110
    ESME_RINVBCASTSRVGRP = 0x00000111
    ESME_RINVBCASTCHANIND = 0x00000112


STATUS_MEANINGS: dict[int, str] = {
    0x00: "no error",
    0x01: "message length is invalid",
    0x02: "command length is invalid",
    0x03: "invalid or unsupported command ID",
    0x04: "command not allowed in the current bind state",
    0x05: "ESME already bound",
    0x06: "invalid priority flag",
    0x07: "invalid registered delivery flag",
    0x08: "system error at the SMSC (temporary)",
    0x0A: "invalid source address",
    0x0B: "invalid destination address",
    0x0C: "message ID is invalid",
    0x0D: "bind failed",
    0x0E: "invalid password",
    0x0F: "invalid system ID",
    0x11: "cancel_sm failed",
    0x13: "replace_sm failed",
    0x14: "message queue full",
    0x15: "invalid service type",
    0x33: "invalid number of destinations",
    0x34: "invalid distribution list name",
    0x40: "destination flag is invalid (submit_multi)",
    0x42: "invalid 'submit with replace' request (replace_if_present_flag set)",
    0x43: "invalid esm_class field data",
    0x44: "cannot submit to distribution list",
    0x45: "submit_sm or submit_multi failed",
    0x48: "invalid source address TON",
    0x49: "invalid source address NPI",
    0x50: "invalid destination address TON",
    0x51: "invalid destination address NPI",
    0x53: "invalid system_type field",
    0x54: "invalid replace_if_present flag",
    0x55: "invalid number of messages",
    0x58: "throttling error (the ESME exceeded its allowed message rate)",
    0x61: "invalid scheduled delivery time",
    0x62: "invalid message validity period (expiry time)",
    0x63: "predefined message is invalid or not found",
    0x64: "ESME receiver temporary application error",
    0x65: "ESME receiver permanent application error",
    0x66: "ESME receiver reject message error",
    0x67: "query_sm request failed",
    0xC0: "error in the optional part of the PDU body",
    0xC1: "optional parameter not allowed",
    0xC2: "invalid parameter length",
    0xC3: "expected optional parameter missing",
    0xC4: "invalid optional parameter value",
    0xFE: "delivery failure (data_sm_resp)",
    0xFF: "unknown error",
    0x100: "ESME not authorised to use the specified service type",
    0x101: "ESME prohibited from using the specified operation",
    0x102: "specified service type is unavailable",
    0x103: "specified service type is denied",
    0x104: "invalid data coding scheme",
    0x105: "source address subunit is invalid",
    0x106: "destination address subunit is invalid",
    0x107: "broadcast frequency interval is invalid",
    0x108: "broadcast alias name is invalid",
    0x109: "broadcast area format is invalid",
    0x10A: "number of broadcast areas is invalid",
    0x10B: "broadcast content type is invalid",
    0x10C: "broadcast message class is invalid",
    0x10D: "broadcast_sm operation failed",
    0x10E: "query_broadcast_sm operation failed",
    0x10F: "cancel_broadcast_sm operation failed",
    0x110: "number of repeated broadcasts is invalid",
    0x111: "broadcast service group is invalid",
    0x112: "broadcast channel indicator is invalid",
}
"""Human meaning of every standard command_status (SMPP 3.4 5.1.3, SMPP 5.0 4.7.6)."""

INFOBIP_STATUS_MEANINGS: dict[int, str] = {
    0x0000000E: "invalid credentials",
    0x00000022: "network not covered",
    0x000000FF: "insufficient account balance",
    0x0000000A: "invalid source address",
    0x0000000B: "invalid destination address",
    0x0000000C: "duplicate message ID",
    0x000004A1: "system error or channel disabled",
    0x0000009F: "invalid optional parameter length",
}
"""Meanings the Infobip platform (the O2 gateway) gives to command_status codes.

Several re-use standard or reserved codes with another meaning; see the reference, section 10.
"""


def status_name(command_status: int) -> str:
    """The specification's name of a command_status, or a generic label for other values."""
    try:
        return CommandStatus(command_status).name
    except ValueError:
        if 0x400 <= command_status <= 0x4FF:
            return f"VENDOR_0x{command_status:08X}"
        return f"UNKNOWN_0x{command_status:08X}"


def status_meaning(command_status: int, *, infobip: bool = False) -> str:
    """A sentence a person understands for a command_status, Infobip's meaning first if asked."""
    if infobip and command_status in INFOBIP_STATUS_MEANINGS:
        return INFOBIP_STATUS_MEANINGS[command_status]
    meaning = STATUS_MEANINGS.get(command_status)
    if meaning is not None:
        return meaning
    if 0x400 <= command_status <= 0x4FF:
        return "SMSC vendor-specific error"
    return "reserved or unknown error code"


def describe_status(command_status: int, *, infobip: bool = False) -> str:
    """One line for logs and error messages, e.g. ``ESME_RTHROTTLED (0x00000058): throttling error``."""
    return (
        f"{status_name(command_status)} (0x{command_status:08X}): "
        f"{status_meaning(command_status, infobip=infobip)}"
    )


class Ton(IntEnum):
    """Type of number of an address (spec 5.2.5)."""

    UNKNOWN = 0
    INTERNATIONAL = 1
    NATIONAL = 2
    NETWORK_SPECIFIC = 3
    SUBSCRIBER_NUMBER = 4
    ALPHANUMERIC = 5
    ABBREVIATED = 6


class Npi(IntEnum):
    """Numbering plan indicator of an address (spec 5.2.6)."""

    UNKNOWN = 0
    ISDN = 1  #: E.163/E.164
    DATA = 3  #: X.121
    TELEX = 4  #: F.69
    LAND_MOBILE = 6  #: E.212
    NATIONAL = 8
    PRIVATE = 9
    ERMES = 10
    INTERNET = 14
    WAP_CLIENT_ID = 18


class EsmClass(IntEnum):
    """esm_class values and masks (spec 5.2.12); the octet combines one value of each sub-field."""

    MODE_MASK = 0x03
    DEFAULT_MODE = 0x00
    DATAGRAM_MODE = 0x01
    FORWARD_MODE = 0x02
    STORE_AND_FORWARD_MODE = 0x03
    TYPE_MASK = 0x3C
    NORMAL = 0x00
    DELIVERY_RECEIPT = 0x04  #: SMSC delivery receipt (deliver_sm from the SMSC)
    DELIVERY_ACK = 0x08  #: SME delivery acknowledgement
    MANUAL_ACK = 0x10  #: SME manual/user acknowledgement
    CONVERSATION_ABORT = 0x18
    INTERMEDIATE_NOTIFICATION = 0x20
    UDHI = 0x40  #: short_message (or message_payload) starts with a user data header
    REPLY_PATH = 0x80


# Plain ints: reading enum members off their class is slow on Python 3.11 (EnumType's
# __getattr__ hook), and is_receipt runs on every deliver_sm.
_TYPE_MASK = int(EsmClass.TYPE_MASK)
_RECEIPT_TYPES = frozenset(
    {int(EsmClass.DELIVERY_RECEIPT), int(EsmClass.INTERMEDIATE_NOTIFICATION)}
)


def is_receipt(esm_class: int) -> bool:
    """True when esm_class marks a delivery receipt or intermediate notification (not plain MO)."""
    return (esm_class & _TYPE_MASK) in _RECEIPT_TYPES


class RegisteredDelivery(IntEnum):
    """registered_delivery values (spec 5.2.17)."""

    NONE = 0x00
    RECEIPT = 0x01  #: receipt on final success or failure
    RECEIPT_ON_FAILURE = 0x02
    RECEIPT_MASK = 0x03
    SME_DELIVERY_ACK = 0x04
    SME_MANUAL_ACK = 0x08
    INTERMEDIATE = 0x10


class DataCoding(IntEnum):
    """data_coding values this project names (spec 5.2.19, GSM 03.38 groups for flash)."""

    SMSC_DEFAULT = 0x00  #: GSM 03.38 7-bit on nearly every SMSC, the O2 gateway included
    IA5 = 0x01  #: IA5/ASCII; the O2 gateway treats it as GSM 7-bit too
    OCTET_UNSPECIFIED_2 = 0x02
    LATIN_1 = 0x03
    OCTET_UNSPECIFIED = 0x04  #: 8-bit binary
    JIS = 0x05
    CYRILLIC = 0x06
    LATIN_HEBREW = 0x07
    UCS2 = 0x08
    PICTOGRAM = 0x09
    ISO_2022_JP = 0x0A
    EXTENDED_KANJI = 0x0D
    KS_C_5601 = 0x0E
    GSM7_FLASH = 0x10  #: GSM general group, class 0, GSM 7-bit
    UCS2_FLASH = 0x18  #: GSM general group, class 0, UCS-2
    GSM7_CLASS0 = 0xF0  #: GSM data coding/message class group, class 0 (flash), GSM 7-bit


class MessageState(IntEnum):
    """message_state values (spec 5.2.28), also in query_sm_resp and receipts' TLVs."""

    ENROUTE = 1
    DELIVERED = 2
    EXPIRED = 3
    DELETED = 4
    UNDELIVERABLE = 5
    ACCEPTED = 6
    UNKNOWN = 7
    REJECTED = 8


class TlvTag(IntEnum):
    """Tags of the SMPP 3.4 optional parameters (spec 5.3.2)."""

    DEST_ADDR_SUBUNIT = 0x0005
    DEST_NETWORK_TYPE = 0x0006
    DEST_BEARER_TYPE = 0x0007
    DEST_TELEMATICS_ID = 0x0008
    SOURCE_ADDR_SUBUNIT = 0x000D
    SOURCE_NETWORK_TYPE = 0x000E
    SOURCE_BEARER_TYPE = 0x000F
    SOURCE_TELEMATICS_ID = 0x0010
    QOS_TIME_TO_LIVE = 0x0017
    PAYLOAD_TYPE = 0x0019
    ADDITIONAL_STATUS_INFO_TEXT = 0x001D
    RECEIPTED_MESSAGE_ID = 0x001E
    MS_MSG_WAIT_FACILITIES = 0x0030
    PRIVACY_INDICATOR = 0x0201
    SOURCE_SUBADDRESS = 0x0202
    DEST_SUBADDRESS = 0x0203
    USER_MESSAGE_REFERENCE = 0x0204
    USER_RESPONSE_CODE = 0x0205
    SOURCE_PORT = 0x020A
    DESTINATION_PORT = 0x020B
    SAR_MSG_REF_NUM = 0x020C
    LANGUAGE_INDICATOR = 0x020D
    SAR_TOTAL_SEGMENTS = 0x020E
    SAR_SEGMENT_SEQNUM = 0x020F
    SC_INTERFACE_VERSION = 0x0210
    CALLBACK_NUM_PRES_IND = 0x0302
    CALLBACK_NUM_ATAG = 0x0303
    NUMBER_OF_MESSAGES = 0x0304
    CALLBACK_NUM = 0x0381
    DPF_RESULT = 0x0420
    SET_DPF = 0x0421
    MS_AVAILABILITY_STATUS = 0x0422
    NETWORK_ERROR_CODE = 0x0423
    MESSAGE_PAYLOAD = 0x0424
    DELIVERY_FAILURE_REASON = 0x0425
    MORE_MESSAGES_TO_SEND = 0x0426
    MESSAGE_STATE = 0x0427
    USSD_SERVICE_OP = 0x0501
    DISPLAY_TIME = 0x1201
    SMS_SIGNAL = 0x1203
    MS_VALIDITY = 0x1204
    ALERT_ON_MESSAGE_DELIVERY = 0x130C
    ITS_REPLY_TYPE = 0x1380
    ITS_SESSION_INFO = 0x1383


INTERFACE_VERSION = 0x34
"""interface_version of SMPP 3.4, sent in binds."""
