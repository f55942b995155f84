"""The root of every exception o2sms raises on purpose.

Catch :class:`O2smsError` to catch them all. The tree, by the module that owns each class::

    O2smsError
    ├── o2sms.smpp.PduError              a PDU broke the SMPP 3.4 rules; carries the command_status
    │   │                                to answer with and the sequence_number when it was readable
    │   └── o2sms.smpp.FramingError      the byte stream cannot be trusted any more: nack and close
    ├── o2sms.smpp.PduEncodeError        (also ValueError) a PDU object cannot be put on the wire
    ├── o2sms.text.TextError             (also ValueError) base of the text errors
    │   ├── o2sms.text.UnencodableTextError   text has characters the chosen encoding lacks
    │   ├── o2sms.text.UndecodableTextError   bytes invalid in their data_coding (odd UCS-2...)
    │   ├── o2sms.text.UnsupportedDataCodingError  data_coding is not text we decode (binary...)
    │   ├── o2sms.text.MessageTooLongError    more parts than allowed, or a flash message over one part
    │   └── o2sms.text.UdhError               malformed user data header or SAR TLVs
    ├── o2sms.receipts.ReceiptParseError (also ValueError) text is not a delivery receipt
    └── o2sms.smpp.times.SmppTimeError   (also ValueError) not an SMPP absolute or relative time

This module imports nothing, so every layer may depend on it.
"""


class O2smsError(Exception):
    """Base class of all errors raised by o2sms."""
