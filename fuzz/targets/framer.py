"""Framer: arbitrary octets fed in arbitrary chunks, read back in four ways.

Input: octet 0 picks ``max_command_length`` (bits 0-2) and the read mode (bits 3-4), octet 1
seeds the chunk sizes, the rest is the TCP stream.

Oracles:
- feed() and reading raise only FramingError (ESME_RINVCMDLEN) for the first out-of-bounds
  command_length, never before its four octets arrived and, except in the suspended mode
  (one frame a feed), by the read that follows them; every whole frame before it is handed
  out first; the framer then stays broken, empty, and raises the same error again;
- iteration raises only PduError (command_status > 0) and the framer goes on after it;
- whatever the chunking and the read mode, the PDUs (or errors) equal those of a reference
  framing of the whole stream decoded one frame at a time with ``codec.decode``;
- after a drain, ``buffered`` is exactly the incomplete tail, so below ``max_command_length``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fuzz.targets import OracleError
from o2sms.smpp import Framer, FramingError, Pdu, PduError, decode
from o2sms.smpp.constants import CommandStatus

LIMITS = (16, 20, 64, 100, 512, 4096, 65_536, 65_536)
MODES = ("iterate", "frames", "suspended", "next_frame")

Outcome = tuple[Any, ...]


def outcome(frame: bytes) -> Outcome:
    """What decoding one frame gives: the PDU, or the PduError's answer fields."""
    try:
        return ("pdu", decode(frame))
    except PduError as exc:
        return error_outcome(exc)


def error_outcome(exc: PduError) -> Outcome:
    if isinstance(exc, FramingError) or not exc.command_status > 0:
        raise OracleError(f"decoding raised {exc!r} (status {exc.command_status})")
    str(exc)  # the message must render for any status
    return ("error", exc.command_status, exc.sequence_number, exc.command_id)


def reference(stream: bytes, limit: int) -> tuple[list[tuple[int, bytes]], int | None]:
    """(end offset, frame) of each whole frame, and the offset where a bad length is known."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while len(stream) - pos >= 4:
        length = int.from_bytes(stream[pos : pos + 4], "big")
        if not 16 <= length <= limit:
            return frames, pos + 4
        if len(stream) - pos < length:
            break
        frames.append((pos + length, stream[pos : pos + length]))
        pos += length
    return frames, None


def chunks(stream: bytes, seed: int) -> Iterator[bytes]:
    """Cut the stream in chunks of pseudo-random sizes up to ``seed`` (all at once for 0)."""
    if seed == 0:
        yield stream
        return
    state = seed
    pos = 0
    while pos < len(stream):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        size = 1 + (state >> 8) % seed
        yield stream[pos : pos + size]
        pos += size


class _Reader:
    """Takes what the framer holds, in one of the four read modes."""

    def __init__(self, framer: Framer, mode: str) -> None:
        self.framer = framer
        self.mode = mode
        self.out: list[Outcome] = []
        self.suspended: Iterator[Pdu] | None = None

    def drain(self, *, all_of_it: bool) -> None:
        framer = self.framer
        if self.mode in ("frames", "next_frame"):
            while True:
                frame = (
                    next(framer.frames(), None) if self.mode == "frames" else framer.next_frame()
                )
                if frame is None:
                    return
                self.out.append(outcome(frame))
        if self.mode == "suspended" and not all_of_it:
            # An iterator left suspended across a feed() must stop, not yield stale frames.
            if self.suspended is not None:
                self._take(self.suspended, 1_000_000)
            self.suspended = iter(framer)
            if not self._take(self.suspended, 1):
                self.suspended = None
            return
        while self._take(iter(framer), 1_000_000):
            pass  # a PduError ends an iteration; the next one goes on after the bad frame

    def _take(self, it: Iterator[Pdu], count: int) -> bool:
        """Take up to ``count`` items; True when a PduError cut the iteration short."""
        for _ in range(count):
            try:
                pdu = next(it)
            except StopIteration:
                return False
            except FramingError:
                raise
            except PduError as exc:
                self.out.append(error_outcome(exc))
                return True
            self.out.append(("pdu", pdu))
        return False


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    limit = LIMITS[data[0] & 7]
    mode = MODES[(data[0] >> 3) & 3]
    stream = data[2:]
    expected, bad_at = reference(stream, limit)
    framer = Framer(max_command_length=limit)
    reader = _Reader(framer, mode)
    fed = 0
    error: FramingError | None = None
    for chunk in chunks(stream, data[1]):
        fed += len(chunk)
        try:
            framer.feed(chunk)
            reader.drain(all_of_it=False)
        except FramingError as exc:
            error = exc
            break
        if bad_at is not None and fed >= bad_at and mode != "suspended":
            raise OracleError(f"no FramingError after the bad length at offset {bad_at - 4}")
        if mode != "suspended" and (bad_at is None or fed < bad_at):
            done = max((end for end, _ in expected if end <= fed), default=0)
            if framer.buffered != fed - done or framer.buffered >= limit:
                raise OracleError(f"buffered {framer.buffered}, expected {fed - done} (< {limit})")
    if error is None and bad_at is not None:
        try:  # a suspended reader takes one frame a feed: the rest, then the error
            reader.drain(all_of_it=True)
        except FramingError as exc:
            error = exc
    if error is None:
        if bad_at is not None:
            raise OracleError("the stream holds a bad length but the framer never refused it")
        reader.drain(all_of_it=True)
        if reader.out != [outcome(frame) for _, frame in expected]:
            raise OracleError(f"framer gave {reader.out!r}, expected the frames {expected!r}")
        return
    # Broken: not before the bad length arrived, the right status, nothing held, every whole
    # frame before the bad length handed out first, and it stays broken.
    if bad_at is None or fed < bad_at:
        raise OracleError(f"FramingError after {fed} octets, bad length at {bad_at}")
    if error.command_status != CommandStatus.ESME_RINVCMDLEN or framer.buffered:
        raise OracleError(
            f"broken framer: status {error.command_status}, buffered {framer.buffered}"
        )
    want = [outcome(frame) for _, frame in expected]
    if reader.out != want:
        raise OracleError(f"framer gave {reader.out!r} before breaking, expected {want!r}")
    for again in (lambda: framer.feed(b""), lambda: list(framer), framer.next_frame):
        try:
            again()
        except FramingError as exc:
            if exc is not error:
                raise OracleError("a broken framer raised another FramingError") from exc
        else:
            raise OracleError("a broken framer went on")
