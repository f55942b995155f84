"""Cut a TCP byte stream into whole SMPP frames, refusing hostile lengths before buffering."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final, NoReturn

from o2sms.smpp.codec import HEADER, HEADER_SIZE, decode_body
from o2sms.smpp.constants import CommandStatus
from o2sms.smpp.errors import FramingError
from o2sms.smpp.pdu import Pdu

DEFAULT_MAX_COMMAND_LENGTH: Final = 80 * 1024
"""The largest PDU accepted by default; the specification sets no limit (reference section 1).

It must take the largest legal PDU, or a peer (or our own encoder) can send one we refuse: a
submit_multi with 254 destinations of the longest addresses (6,096 octets of dest_address, about
6,200 with the other mandatory fields and the header), a message_payload of 65,535 octets
(65,539 with its tag and length) and every other SMPP 3.4 TLV once at its longest (673 octets)
come to about 72,400 octets. 80 KiB covers that with room for a few vendor TLVs.
"""

_LENGTH = struct.Struct(">I")


class Framer:
    """Incremental framer: :meth:`feed` chunks of any size, then iterate to take whole PDUs out.

    Iterating yields decoded PDUs. A frame that does not decode raises :class:`PduError` from
    the iteration *after* it was consumed, so the caller answers it and iterates again.

    A command_length below 16 or above ``max_command_length`` is refused as soon as its four
    octets arrive: nothing after it is buffered, and the stream is broken there because it has
    lost its frame boundaries. The whole frames before the bad length are still handed out
    (one of them may be the response to a request in flight); :class:`FramingError` is raised
    once they are taken, by :meth:`feed` when none is left, else by the iteration (or
    :meth:`next_frame`) that reaches the bad length. From then on every call raises it again.
    """

    __slots__ = (
        "_buffer",
        "_checked",
        "_error",
        "_feeds",
        "_snapshot",
        "_start",
        "max_command_length",
    )

    def __init__(self, max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH) -> None:
        if max_command_length < HEADER_SIZE:
            raise ValueError(f"max_command_length must be at least {HEADER_SIZE}")
        self.max_command_length = max_command_length
        self._buffer = bytearray()
        self._start = 0  # octets of _buffer already handed out
        self._checked = 0  # offset of the first frame whose length is not checked yet
        self._feeds = 0  # bumped by feed(), which moves the buffer under a running iteration
        # bytes(_buffer) for iteration, kept until the next feed() so that iterating again
        # after an undecodable frame costs no new copy (many bad frames in one read stay linear)
        self._snapshot: bytes | None = None
        # set when a hostile length arrived; _buffer then ends where that length starts
        self._error: FramingError | None = None

    @property
    def buffered(self) -> int:
        """Octets received and not yet returned as frames."""
        return len(self._buffer) - self._start

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received octets, checking every frame header as soon as its four octets arrive.

        A hostile length breaks the stream: the octets from it on are dropped, so the buffer
        never holds more than the complete frames fed plus one frame of at most the maximum.
        Raises FramingError when the stream is broken and no whole frame before the break is
        left to take out (otherwise iteration raises it after handing those frames out).
        """
        buffer = self._buffer
        if self._error is not None:
            if self._start >= len(buffer):
                self._fail()
            return  # octets after a lost frame boundary mean nothing
        if self._start:
            del buffer[: self._start]
            self._checked -= self._start
            self._start = 0
        buffer += data
        self._feeds += 1
        self._snapshot = None
        checked = self._checked
        end = len(buffer) - 4
        unpack = _LENGTH.unpack_from
        limit = self.max_command_length
        while checked <= end:
            length: int = unpack(buffer, checked)[0]
            if length < HEADER_SIZE or length > limit:
                self._break(checked, length)
                return
            checked += length
        self._checked = checked

    def _break(self, offset: int, length: int) -> None:
        """The command_length at ``offset`` is hostile: keep only the whole frames before it.

        When its whole header arrived, the error carries its sequence_number for the
        generic_nack to echo (SMPP 3.4 4.3); otherwise None (unreadable: the nack says 0).
        """
        sequence_number = None
        if len(self._buffer) - offset >= HEADER_SIZE:
            sequence_number = HEADER.unpack_from(self._buffer, offset)[3]
        self._error = FramingError(
            f"command_length {length} is outside 16..{self.max_command_length}",
            command_status=CommandStatus.ESME_RINVCMDLEN,
            sequence_number=sequence_number,
        )
        del self._buffer[offset:]
        self._checked = offset
        if self._start >= offset:
            self._fail()

    def _fail(self) -> NoReturn:
        """Raise the stored FramingError, holding nothing more."""
        self._buffer.clear()
        self._start = 0
        self._checked = 0
        self._snapshot = None
        error = self._error
        assert error is not None
        # A fresh traceback each time: re-raising one object would chain every raise's frames.
        raise error.with_traceback(None)

    def _complete_frame_length(self) -> int:
        """Length of the whole frame at the read position, or 0 while it is incomplete."""
        available = len(self._buffer) - self._start
        if available < 4:
            if self._error is not None:
                self._fail()  # every whole frame before the bad length is taken out
            return 0
        length: int = _LENGTH.unpack_from(self._buffer, self._start)[0]  # checked by feed()
        return length if available >= length else 0

    def next_frame(self) -> bytes | None:
        """The next whole frame as bytes, or None until more octets are fed."""
        length = self._complete_frame_length()
        if not length:
            return None
        start = self._start
        self._start = start + length
        return bytes(self._buffer[start : start + length])

    def frames(self) -> Iterator[bytes]:
        """Every whole frame buffered now, undecoded."""
        while (frame := self.next_frame()) is not None:
            yield frame

    def __iter__(self) -> Iterator[Pdu]:
        """Decode every whole frame buffered now (the read loop's path, kept tight)."""
        if not self._complete_frame_length():
            return
        # Slice frames out of one immutable snapshot: one copy per frame instead of two.
        data = self._snapshot
        if data is None:
            data = self._snapshot = bytes(self._buffer)
        end = len(data)
        start = self._start
        feeds = self._feeds
        unpack_length = _LENGTH.unpack_from
        unpack_header = HEADER.unpack_from
        while end - start >= 4 and feeds == self._feeds:
            length: int = unpack_length(data, start)[0]  # checked by feed()
            if end - start < length:
                break
            _, command_id, command_status, sequence_number = unpack_header(data, start)
            frame = data[start : start + length]
            start += length
            self._start = start  # consumed before decoding: a bad frame is not seen twice
            yield decode_body(frame, command_id, command_status, sequence_number)
        if feeds == self._feeds:
            self._snapshot = None
            if start == end and self._error is not None:
                self._fail()  # the iteration reached the bad length
