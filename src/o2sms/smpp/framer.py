"""Cut a TCP byte stream into whole SMPP frames, refusing hostile lengths before buffering."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final

from o2sms.smpp.codec import HEADER_SIZE, decode
from o2sms.smpp.constants import CommandStatus
from o2sms.smpp.errors import FramingError
from o2sms.smpp.pdu import Pdu

DEFAULT_MAX_COMMAND_LENGTH: Final = 64 * 1024
"""The largest PDU accepted by default; the specification sets no limit (reference section 1)."""

_LENGTH = struct.Struct(">I")


class Framer:
    """Incremental framer: :meth:`feed` chunks of any size, then take whole PDUs out.

    Iterating yields decoded PDUs. A frame that does not decode raises :class:`PduError` from
    the iteration *after* it was consumed, so the caller answers it and iterates again. A
    command_length below 16 or above ``max_command_length`` raises :class:`FramingError` as soon
    as its four octets arrive, before any of the body is buffered; the framer then stays broken
    (every later call raises the same error) because the stream has lost its frame boundaries.
    """

    __slots__ = ("_buffer", "_error", "_start", "max_command_length")

    def __init__(self, max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH) -> None:
        if max_command_length < HEADER_SIZE:
            raise ValueError(f"max_command_length must be at least {HEADER_SIZE}")
        self.max_command_length = max_command_length
        self._buffer = bytearray()
        self._start = 0
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Octets received and not yet returned as frames."""
        return len(self._buffer) - self._start

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received octets; raises FramingError at once if the next length is hostile."""
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        if self._start:
            del buffer[: self._start]
            self._start = 0
        buffer += data
        if len(buffer) >= 4:
            self._check_length(_LENGTH.unpack_from(buffer, 0)[0])

    def _check_length(self, length: int) -> None:
        if HEADER_SIZE <= length <= self.max_command_length:
            return
        self._error = FramingError(
            f"command_length {length} is outside 16..{self.max_command_length}",
            command_status=CommandStatus.ESME_RINVCMDLEN,
        )
        self._buffer.clear()
        self._start = 0
        raise self._error

    def next_frame(self) -> bytes | None:
        """The next whole frame, or None until more octets are fed."""
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        start = self._start
        available = len(buffer) - start
        if available < 4:
            return None
        length: int = _LENGTH.unpack_from(buffer, start)[0]
        if not HEADER_SIZE <= length <= self.max_command_length:
            self._check_length(length)
        if available < length:
            return None
        self._start = start + length
        return bytes(buffer[start : start + length])

    def frames(self) -> Iterator[bytes]:
        """Every whole frame buffered now (the fast path for a reader loop)."""
        while (frame := self.next_frame()) is not None:
            yield frame

    def __iter__(self) -> Iterator[Pdu]:
        return self

    def __next__(self) -> Pdu:
        frame = self.next_frame()
        if frame is None:
            raise StopIteration
        return decode(frame)
