"""Write the seed corpora of the fuzz targets to ``fuzz/seeds/<target>/`` (committed).

The seeds are the golden vectors of ``tests/smpp/test_golden.py`` (hand-written from the SMPP
3.4 reference) plus a few PDUs, receipt texts and UDHs from the test suites, each with the
control octets its target reads first. Run from the repository root: ``python -m fuzz.make_corpus``.
"""

from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path

from o2sms.smpp import (
    DeliverSm,
    DistributionList,
    EnquireLink,
    Pdu,
    SmeAddress,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    TlvTag,
    UnsuccessSme,
    encode,
)
from o2sms.text import split, udh
from tests.smpp.test_golden import GOLDEN

SEEDS = Path(__file__).resolve().parent / "seeds"

RECEIPT_TEXTS = [
    b"id:7 sub:001 dlvrd:001 stat:DELIVRD err:000",
    b"id:288230376293190992 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431"
    b" stat:DELIVRD err:000 text:Hello",
    b"id:04000000086ECD50 sub:001 dlvrld:000 submit date:240315143059 done date:240315143101"
    b" stat:DELIVERY UNKNOWN err:012 Text:a b: c",
    b"id:abc sub:1 dlvrd:0 Submit_Date:2403151430 Done_Date:2403151431 stat:REJECTED err:0",
    b"stat:UNDELIV id:99 err:0x1f text:",
]


def extra_pdus() -> list[Pdu]:
    receipt = RECEIPT_TEXTS[1]
    return [
        DeliverSm(
            sequence_number=9,
            source_addr="421900123456",
            destination_addr="8080",
            esm_class=0x04,
            short_message=receipt,
            tlvs=(
                Tlv(TlvTag.RECEIPTED_MESSAGE_ID, "04000000086ECD50"),
                Tlv(TlvTag.MESSAGE_STATE, 2),
                Tlv(TlvTag.NETWORK_ERROR_CODE, b"\x03\x00\x01"),
            ),
        ),
        DeliverSm(
            sequence_number=10,
            esm_class=0x40,
            data_coding=8,
            short_message=udh.build_concat(7, 2, 1) + "Čau".encode("utf-16-be"),
        ),
        SubmitSm(
            sequence_number=11,
            destination_addr="421900000000",
            registered_delivery=1,
            tlvs=(
                Tlv(TlvTag.MESSAGE_PAYLOAD, b"x" * 300),
                Tlv(TlvTag.SAR_MSG_REF_NUM, 513),
                Tlv(TlvTag.SAR_TOTAL_SEGMENTS, 2),
                Tlv(TlvTag.SAR_SEGMENT_SEQNUM, 1),
                Tlv(0x1400, b"vendor"),
            ),
        ),
        SubmitMulti(
            sequence_number=12,
            dest_addresses=(SmeAddress(1, 1, "421900000001"), SmeAddress(1, 1, "421900000002")),
            short_message=b"hi",
        ),
        SubmitMultiResp(
            sequence_number=12,
            message_id="m1",
            unsuccess_smes=(UnsuccessSme(1, 1, "421900000002", 0x0B),),
        ),
        SubmitMulti(  # the most destinations allowed, for mutations just past the bound
            sequence_number=16,
            dest_addresses=(SmeAddress(1, 1, "1"),) * 127 + (DistributionList("dl"),) * 127,
        ),
        SubmitMultiResp(sequence_number=16, unsuccess_smes=(UnsuccessSme(1, 1, "1", 0x0B),) * 254),
        SubmitSmResp(sequence_number=13, command_status=0x58),
        SubmitSmResp(sequence_number=14, message_id="04000000086ECD50"),
        EnquireLink(sequence_number=15),
    ]


def frames() -> list[bytes]:
    return [bytes.fromhex(wire) for _, wire in GOLDEN] + [encode(p) for p in extra_pdus()]


def seeds() -> dict[str, list[bytes]]:
    rng = random.Random(20240601)
    all_frames = frames()
    out: dict[str, list[bytes]] = {name: [] for name in ("framer", "decode", "receipts", "udh")}
    for frame in all_frames:
        out["decode"] += [b"\x00" + frame, b"\x01" + frame]
    # framer: octet 0 = limit index (bits 0-2) and read mode (bits 3-4), octet 1 = chunk seed
    for i in range(0, len(all_frames), 4):
        stream = b"".join(all_frames[i : i + 4])
        for mode in range(4):
            out["framer"].append(bytes((6 | mode << 3, rng.choice((0, 1, 5, 40, 255)))) + stream)
    out["framer"].append(b"\x06\x07" + all_frames[0] + b"\xff\xff\xff\xff")
    out["framer"].append(b"\x04\x03" + all_frames[0] + all_frames[0][:7])
    # receipts: octet 0 = mode (0 octets, 1 text, 2 deliver_sm, 3 format, 4 message ids)
    for text in RECEIPT_TEXTS:
        out["receipts"] += [b"\x00" + text, b"\x01" + text, b"\x02\x04\x00\x03" + text]
    out["receipts"] += [bytes((mode,)) + rng.randbytes(60) for mode in (2, 3, 3, 4)]
    out["receipts"].append(b"\x04" + b"\x01" * 4 + b"04000000086ECD50" + b"288230376293190992")
    # udh: octet 0 = mode (0 parse, 1 build_concat, 2 build)
    for part in split("Ahoj, ako sa máš? " * 12) + split("Čau 😀 " * 30, method="udh16"):
        out["udh"].append(b"\x00" + part.short_message)
    out["udh"] += [
        b"\x00" + bytes.fromhex("0a050400000000") + b"\x00\x03\x01\x02\x01" + b"body",
        b"\x00\x00",
        b"\x01" + rng.randbytes(12),
        b"\x02" + rng.randbytes(40),
    ]
    # reassembly: a FuzzedDataProvider stream; random octets reach every kind of part
    out["reassembly"] = [rng.randbytes(rng.randrange(16, 800)) for _ in range(12)]
    return out


def main() -> None:
    for target, items in seeds().items():
        folder = SEEDS / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for item in items:
            (folder / hashlib.sha1(item).hexdigest()).write_bytes(item)
        print(f"{target}: {len(items)} seeds in {folder}")


if __name__ == "__main__":
    main()
