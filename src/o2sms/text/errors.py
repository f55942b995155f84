"""Errors of the text layer: encoding, splitting and reassembling SMS text.

Every class is also a :class:`ValueError`, because each one reports a bad value handed in by
the caller (a text, a data_coding, a user data header), never a broken connection.
"""

from __future__ import annotations

from o2sms.errors import O2smsError


class TextError(O2smsError, ValueError):
    """Base of the text errors: a text, a data_coding or a header cannot be handled."""


class UnencodableTextError(TextError):
    """The text holds characters the chosen encoding lacks.

    ``encoding`` names the encoding asked for and ``characters`` lists the offending characters
    (each once, in order of appearance) so a UI can point at them.
    """

    def __init__(self, message: str, *, encoding: str, characters: str) -> None:
        super().__init__(message)
        self.encoding = encoding
        self.characters = characters


class UndecodableTextError(TextError):
    """Bytes are not valid in their data_coding.

    For example odd-length UCS-2, a lone surrogate, or an octet above 0x7F in unpacked GSM 7-bit.
    """


class UnsupportedDataCodingError(TextError):
    """A data_coding is not text this package can decode (8-bit binary, JIS, reserved values...)."""

    def __init__(self, message: str, *, data_coding: int) -> None:
        super().__init__(message)
        self.data_coding = data_coding


class MessageTooLongError(TextError):
    """The text needs more parts than allowed, or a flash message needs more than one part."""

    def __init__(self, message: str, *, parts: int, max_parts: int) -> None:
        super().__init__(message)
        self.parts = parts
        self.max_parts = max_parts


class UdhError(TextError):
    """A user data header, or the SAR TLVs that stand in for it, is malformed.

    Raised instead of IndexError/struct.error for a UDHL running past the data, an information
    element overrunning the header, a concatenation IE of the wrong length, or a segment number
    of 0 or above the total.
    """
