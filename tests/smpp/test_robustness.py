"""Random and mutated frames: only the documented PduError ever comes out of decoding."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from o2sms.smpp import Framer, FramingError, Pdu, PduError, decode, encode
from tests.strategies import any_pdu


def _decode_or_error(frame: bytes) -> None:
    try:
        decode(frame)
    except PduError as exc:
        assert exc.command_status > 0


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_random_frames(frame: bytes) -> None:
    _decode_or_error(frame)


@settings(max_examples=300)
@given(
    body=st.binary(max_size=200),
    command_id=st.sampled_from(
        [
            0x80000000,
            *range(1, 10),
            0x0B,
            0x15,
            0x21,
            0x102,
            0x103,
            0x80000001,
            0x80000004,
            0x80000005,
            0x80000009,
            0x80000021,
            0x80000103,
            0x80000003,
        ]
    ),
    status=st.sampled_from([0, 1, 0x58]),
)
def test_random_bodies_behind_valid_headers(body: bytes, command_id: int, status: int) -> None:
    header = (16 + len(body)).to_bytes(4, "big") + command_id.to_bytes(4, "big")
    _decode_or_error(header + status.to_bytes(4, "big") + b"\x00\x00\x00\x01" + body)


@settings(max_examples=500)
@given(pdu=any_pdu, data=st.data())
def test_mutated_valid_frames(pdu: Pdu, data: st.DataObject) -> None:
    wire = bytearray(encode(pdu))
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        at = data.draw(st.integers(0, len(wire) - 1))
        if action == "flip":
            wire[at] = data.draw(st.integers(0, 255))
        elif action == "cut" and len(wire) > 16:
            del wire[at]
        else:
            wire.insert(at, data.draw(st.integers(0, 255)))
    if data.draw(st.booleans()):  # keep command_length consistent to reach the body checks
        wire[0:4] = len(wire).to_bytes(4, "big")
    _decode_or_error(bytes(wire))


def _drain(framer: Framer) -> None:
    while True:
        try:
            if next(iter(framer), None) is None:
                return
        except FramingError:
            raise
        except PduError:
            continue  # a bad frame was consumed; the next one may be fine


@settings(max_examples=200)
@given(stream=st.binary(max_size=600), chunk=st.integers(1, 64))
def test_framer_on_garbage(stream: bytes, chunk: int) -> None:
    framer = Framer(max_command_length=512)
    try:
        for i in range(0, len(stream), chunk):
            framer.feed(stream[i : i + chunk])
            _drain(framer)
    except FramingError as exc:
        assert exc.command_status == 0x02
        assert framer.buffered == 0
    assert framer.buffered < 512
