"""Reassembler memory bound: a stored part is charged for the whole PDU it keeps, not its text.

Real deliver_sm frames go through the codec, as the client feeds them: a hostile SMSC that sends
parts with an empty body but a large vendor TLV, or header-only parts across many groups, must
not hold more than ``max_pending_bytes``.
"""

from __future__ import annotations

from o2sms.smpp import DeliverSm, Tlv, decode, encode
from o2sms.smpp.constants import TlvTag
from o2sms.text import Reassembler, split
from o2sms.text.reassembly import GROUP_OVERHEAD, PART_OVERHEAD, TLV_OVERHEAD

SRC, DST = "421905123456", "7777"
VENDOR_TAG = 0x1400  # vendor-specific range: kept as raw octets by the codec


def received(
    short_message: bytes, *, esm_class: int = 0x40, tlvs: tuple[Tlv, ...] = (), src: str = SRC
) -> DeliverSm:
    """A deliver_sm as the client gets it: encoded to a frame and decoded again."""
    pdu = decode(
        encode(
            DeliverSm(
                source_addr=src,
                destination_addr=DST,
                esm_class=esm_class,
                short_message=short_message,
                tlvs=tlvs,
            )
        )
    )
    assert isinstance(pdu, DeliverSm)
    return pdu


def concat(ref: int, total: int, seq: int) -> bytes:
    """An 8-bit concatenation UDH."""
    return bytes((5, 0, 3, ref, total, seq))


def test_pending_bytes_charges_the_whole_pdu() -> None:
    reassembler = Reassembler()
    vendor = Tlv(VENDOR_TAG, b"v" * 1000)
    part = received(concat(1, 2, 1) + b"hi", tlvs=(vendor,))
    assert part.tlvs == (vendor,)
    assert reassembler.feed(part, now=0.0) is None
    # short_message (8), the body copied after the UDH (2), the TLV, the overheads.
    expected = GROUP_OVERHEAD + PART_OVERHEAD + 8 + 2 + TLV_OVERHEAD + 1000
    assert reassembler.pending_bytes == expected


def test_message_payload_body_is_charged_once() -> None:
    reassembler = Reassembler()
    sar = (
        Tlv(TlvTag.SAR_MSG_REF_NUM, 7),
        Tlv(TlvTag.SAR_TOTAL_SEGMENTS, 2),
        Tlv(TlvTag.SAR_SEGMENT_SEQNUM, 1),
    )
    payload = Tlv(TlvTag.MESSAGE_PAYLOAD, b"p" * 500)
    assert reassembler.feed(received(b"", esm_class=0, tlvs=(*sar, payload)), now=0.0) is None
    expected = GROUP_OVERHEAD + PART_OVERHEAD + 4 * TLV_OVERHEAD + 500
    assert reassembler.pending_bytes == expected


def test_tiny_bodies_with_large_tlvs_stay_within_the_bytes_bound() -> None:
    reassembler = Reassembler()  # the client's bounds: 1024 groups, 4 MiB
    limit = reassembler.max_pending_bytes
    vendor_octets = 0
    for ref in range(20):
        for seq in range(1, 11):
            vendor = Tlv(VENDOR_TAG, bytes((ref, seq)) * 30_000)  # 60,000 octets
            part = received(concat(ref, 255, seq) + b"x" * (seq % 2), tlvs=(vendor,))
            assert reassembler.feed(part, now=0.0) is None
            vendor_octets += 60_000
            assert reassembler.pending_bytes <= limit
    assert vendor_octets > 2 * limit  # the peer sent far more than the bound
    assert reassembler.evicted > 0
    assert len(reassembler) < 20
    # Every held group has its 10 parts, each charged at least its TLV (not the 0 of its text).
    held = len(reassembler) * 10 * (PART_OVERHEAD + TLV_OVERHEAD + 60_000)
    assert held <= reassembler.pending_bytes


def test_header_only_parts_across_many_groups_stay_within_the_bytes_bound() -> None:
    reassembler = Reassembler(max_pending=1024, max_pending_bytes=256 * 1024)
    limit = reassembler.max_pending_bytes
    for n in range(1024):
        for seq in range(1, 6):  # total 255: never completes
            part = received(concat(n % 256, 255, seq), src=f"4219{n:08d}")
            assert reassembler.feed(part, now=0.0) is None
        assert reassembler.pending_bytes <= limit
    assert reassembler.evicted > 0
    assert len(reassembler) < 1024
    assert reassembler.pending_bytes >= len(reassembler) * (GROUP_OVERHEAD + PART_OVERHEAD)


def test_a_255_part_message_fits_the_default_bound() -> None:
    reassembler = Reassembler()
    parts = split("x" * (153 * 255))
    assert len(parts) == 255
    message = None
    for part in parts:
        message = reassembler.feed(received(part.short_message, esm_class=part.esm_class), 0.0)
    assert message is not None
    assert message.text == "x" * (153 * 255)
    assert (reassembler.evicted, reassembler.pending_bytes) == (0, 0)
