"""The framer cuts any chunking of a stream into the same PDUs and refuses hostile lengths early."""

from __future__ import annotations

import itertools
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms.smpp import (
    DEFAULT_MAX_COMMAND_LENGTH,
    CommandStatus,
    DataSm,
    EnquireLink,
    Framer,
    FramingError,
    Pdu,
    PduError,
    SmeAddress,
    SubmitMulti,
    SubmitSm,
    Tlv,
    TlvTag,
    decode,
    encode,
)
from o2sms.smpp.tlv import TLV_SPECS, CStringSpec, IntSpec, OctetsSpec
from tests.strategies import any_pdu


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(pdus=st.lists(any_pdu, min_size=1, max_size=8), cuts=st.lists(st.integers(0, 10_000)))
def test_any_chunking_gives_the_same_pdus(pdus: list[Pdu], cuts: list[int]) -> None:
    stream = b"".join(encode(p) for p in pdus)
    framer = Framer()
    out: list[Pdu] = []
    for chunk in _chunks(stream, cuts):
        framer.feed(chunk)
        out.extend(framer)
    assert out == pdus
    assert framer.buffered == 0


def test_one_byte_at_a_time() -> None:
    pdus = [EnquireLink(sequence_number=i) for i in range(1, 4)] + [
        SubmitSm(short_message=b"x" * 200)
    ]
    stream = b"".join(encode(p) for p in pdus)
    framer = Framer()
    frames: list[bytes] = []
    for i in range(len(stream)):
        framer.feed(stream[i : i + 1])
        frames.extend(framer.frames())
    assert [decode(f) for f in frames] == pdus


@pytest.mark.parametrize("length", [0, 15, DEFAULT_MAX_COMMAND_LENGTH + 1, 0xFFFFFFFF])
def test_hostile_length_refused_before_the_body(length: int) -> None:
    framer = Framer()
    with pytest.raises(FramingError) as info:
        framer.feed(length.to_bytes(4, "big"))  # only the length has arrived
    assert info.value.command_status == CommandStatus.ESME_RINVCMDLEN
    assert framer.buffered == 0
    with pytest.raises(FramingError):  # the stream stays broken
        framer.feed(b"\x00" * 12)
    with pytest.raises(FramingError):
        framer.next_frame()


@pytest.mark.parametrize("length", ["00000005", "00000800"])
def test_hostile_length_keeps_the_sequence_number_of_a_readable_header(length: str) -> None:
    # The whole 16-octet header came with the bad length: its sequence_number (0x2A) is the
    # one the generic_nack echoes (SMPP 3.4 generic_nack), else it is None (unreadable).
    framer = Framer(max_command_length=1024)
    with pytest.raises(FramingError) as info:
        framer.feed(bytes.fromhex(f"{length} 00000004 00000000 0000002a"))
    assert info.value.sequence_number == 0x2A
    assert info.value.command_status == CommandStatus.ESME_RINVCMDLEN
    with pytest.raises(FramingError) as partial:
        Framer(max_command_length=1024).feed(bytes.fromhex(f"{length} 00000004 000000"))
    assert partial.value.sequence_number is None


def test_hostile_length_after_a_good_frame() -> None:
    # The good frame before the bad length is handed out first (it may be the response to a
    # request in flight); the FramingError comes when reading reaches the bad length.
    framer = Framer(max_command_length=1024)
    good = bytes.fromhex("00000010 00000015 00000000 00000001")  # enquire_link, sequence 1
    framer.feed(good + (2048).to_bytes(4, "big") + b"\x00" * 100)
    assert framer.buffered == 16  # nothing from the bad length on is kept
    assert framer.next_frame() == good
    with pytest.raises(FramingError) as info:
        framer.next_frame()
    assert info.value.command_status == CommandStatus.ESME_RINVCMDLEN
    assert framer.buffered == 0
    for again in (framer.next_frame, lambda: framer.feed(good), lambda: list(framer)):
        with pytest.raises(FramingError) as later:  # the stream stays broken
            again()
        assert later.value is info.value


def test_hostile_length_after_a_frame_already_read_is_refused_when_fed() -> None:
    framer = Framer(max_command_length=1024)
    framer.feed(encode(EnquireLink(sequence_number=1)))
    assert list(framer) == [EnquireLink(sequence_number=1)]
    with pytest.raises(FramingError):
        framer.feed((2048).to_bytes(4, "big"))  # nothing is left before it to hand out
    assert framer.buffered == 0


def test_configurable_maximum() -> None:
    big = encode(SubmitSm(short_message=b"x" * 254))
    Framer(max_command_length=len(big)).feed(big)
    with pytest.raises(FramingError):
        Framer(max_command_length=len(big) - 1).feed(big)
    with pytest.raises(ValueError, match="at least 16"):
        Framer(max_command_length=15)


def test_data_sm_with_the_longest_message_payload_is_framed_by_default() -> None:
    """A 65,535-octet message_payload is legal (SMPP 3.4 5.3.2.32): the default must take it."""
    payload = bytes(range(256)) * 255 + bytes(range(255))  # 65,535 octets
    body = (
        b"ABCDE\0"  # service_type, C(6) at its longest
        + b"\x01\x01"  # source_addr_ton, source_addr_npi
        + b"1" * 64
        + b"\0"  # source_addr, C(65)
        + b"\x01\x01"  # dest_addr_ton, dest_addr_npi
        + b"2" * 64
        + b"\0"  # destination_addr, C(65)
        + b"\x00\x01\x04"  # esm_class, registered_delivery, data_coding
        + b"\x04\x24\xff\xff"
        + payload  # TLV message_payload (0x0424), length 65,535
    )
    # 16 header + 143 mandatory + 4 + 65,535 = 65,698 = 0x000100A2 octets
    wire = bytes.fromhex("000100a2 00000103 00000000 00000007") + body
    pdu = DataSm(
        sequence_number=7,
        service_type="ABCDE",
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="1" * 64,
        dest_addr_ton=1,
        dest_addr_npi=1,
        destination_addr="2" * 64,
        registered_delivery=1,
        data_coding=4,
        tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, payload),),
    )
    assert encode(pdu) == wire
    framer = Framer()
    framer.feed(wire)
    assert list(framer) == [pdu]


def _longest_tlv(tag: int, spec: IntSpec | CStringSpec | OctetsSpec) -> Tlv:
    if isinstance(spec, IntSpec):
        return Tlv(tag, (1 << 8 * max(spec.sizes)) - 1)
    if isinstance(spec, CStringSpec):
        return Tlv(tag, "x" * (spec.max_size - 1))
    return Tlv(tag, b"\x01" * spec.max_size)


def test_largest_legal_pdu_the_codec_encodes_is_framed_by_default() -> None:
    """submit_multi at its longest, with the longest message_payload and every other TLV."""
    pdu = SubmitMulti(
        sequence_number=1,
        service_type="ABCDE",
        source_addr="1" * 20,
        dest_addresses=tuple(SmeAddress(1, 1, f"{i:020d}") for i in range(254)),
        schedule_delivery_time="000001000000000R",
        validity_period="000002000000000R",
        tlvs=tuple(_longest_tlv(tag, spec) for tag, spec in TLV_SPECS.items()),
    )
    wire = encode(pdu)
    assert len(wire) > 72_000  # what the default's docstring budgets for
    assert len(wire) <= DEFAULT_MAX_COMMAND_LENGTH
    framer = Framer()
    framer.feed(wire)
    assert list(framer) == [pdu]


def test_bad_frame_is_consumed_and_iteration_resumes() -> None:
    unknown = bytes.fromhex("00000010 00000111 00000000 00000005")
    framer = Framer()
    framer.feed(unknown + encode(EnquireLink(sequence_number=6)))
    with pytest.raises(PduError) as info:
        next(iter(framer))
    assert info.value.sequence_number == 5
    assert list(framer) == [EnquireLink(sequence_number=6)]


def test_bad_frames_in_one_read_share_one_copy_of_it() -> None:
    # Each PduError's traceback holds the iteration that raised it, and with it the octets it
    # sliced frames from: 2048 bad frames must not mean 2048 copies of the 32 KiB read.
    frames = 2048
    framer = Framer()
    framer.feed(bytes.fromhex("00000010 00000111 00000000 00000005") * frames)
    errors: list[PduError] = []
    tracemalloc.start()
    try:
        while True:
            try:
                if next(iter(framer), None) is None:
                    break
            except PduError as exc:
                errors.append(exc)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [e.sequence_number for e in errors] == [5] * frames
    assert framer.buffered == 0
    assert peak < 4096 * frames  # about 1.4 KiB each (error, traceback, frame); a copy is 32 KiB


def test_feeding_during_iteration_loses_nothing() -> None:
    pdus = [EnquireLink(sequence_number=i) for i in range(1, 7)]
    framer = Framer()
    framer.feed(b"".join(encode(p) for p in pdus[:3]))
    out: list[Pdu] = []
    for pdu in framer:
        out.append(pdu)
        if len(out) == 1:
            framer.feed(b"".join(encode(p) for p in pdus[3:]))  # moves the buffer
    out.extend(framer)
    assert out == pdus


def _read_until_broken(framer: Framer) -> list[Pdu]:
    out: list[Pdu] = []
    with pytest.raises(FramingError) as info:
        out.extend(framer)
    assert info.value.command_status == CommandStatus.ESME_RINVCMDLEN
    assert framer.buffered == 0
    return out


def test_hostile_length_behind_good_frames_is_refused_after_them() -> None:
    framer = Framer(max_command_length=1024)
    good = encode(EnquireLink(sequence_number=1))
    framer.feed(good + (1_000_000).to_bytes(4, "big"))  # the same read: frames first
    assert _read_until_broken(framer) == [EnquireLink(sequence_number=1)]
    # Split across feeds too: the header of the third frame arrives in two pieces.
    framer = Framer(max_command_length=1024)
    framer.feed(good + good + b"\x00\x0f")
    framer.feed(b"\x42\x40")
    assert framer.buffered == 32
    assert _read_until_broken(framer) == [EnquireLink(sequence_number=1)] * 2
