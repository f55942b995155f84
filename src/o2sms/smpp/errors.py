"""Errors of the SMPP protocol core; each carries what a peer should be answered with.

``PduError`` is recoverable: the frame was consumed, answer the request with its own ``*_resp``
carrying :attr:`PduError.command_status` (a ``generic_nack`` when the command_id is unknown or
the status is ESME_RINVCMDLEN, SMPP 3.4 section 4.3.1), and go on. ``FramingError`` is not:
the byte stream is out of step, so send ``generic_nack`` with ESME_RINVCMDLEN and close the
connection.
"""

from __future__ import annotations

from o2sms.errors import O2smsError
from o2sms.smpp.constants import describe_status


class PduError(O2smsError):
    """A PDU could not be decoded, or breaks the SMPP 3.4 rules.

    ``command_status`` is the status to answer with; ``sequence_number`` and ``command_id`` are
    ``None`` when they could not be read from the frame.
    """

    def __init__(
        self,
        message: str,
        *,
        command_status: int,
        sequence_number: int | None = None,
        command_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.command_status = command_status
        self.sequence_number = sequence_number
        self.command_id = command_id

    def __str__(self) -> str:
        where = ""
        if self.command_id is not None:
            where += f" command_id=0x{self.command_id:08X}"
        if self.sequence_number is not None:
            where += f" sequence_number={self.sequence_number}"
        return f"{self.message} [{describe_status(self.command_status)}{where}]"


class FramingError(PduError):
    """The stream cannot be framed any more (command_length out of bounds): nack and close."""


class PduEncodeError(O2smsError, ValueError):
    """A PDU object holds a value that cannot go on the wire (too long, out of range, wrong type)."""


class LocalProtocolError(O2smsError):
    """This side tried to send something the protocol forbids now (wrong state, closed link)."""


class WindowFullError(LocalProtocolError):
    """As many requests are outstanding as the window allows; wait for a response first."""
