"""Speed of the sans-IO core: PDU encode/decode, framer throughput, GSM 03.38 encode + split.

Run: ``.venv/bin/python benchmarks/bench_codec.py`` (add ``--runs 7`` for more repetitions).
Each figure is the median of several timed runs in this one process, next to a hand-packed
``struct`` baseline measured the same way, so the ratio holds on a noisy shared machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import struct
import sys
import time
from collections.abc import Callable

from o2sms.smpp import (
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    Framer,
    SubmitSm,
    SubmitSmResp,
    Tlv,
    TlvTag,
    decode,
    encode,
)
from o2sms.text import split

TEXT_70 = "Your parcel 4711 arrives today between 14:00 and 16:00. Reply STOP to."
TEXT_LONG = (
    "Dobry den, vasa objednavka c. 2024-11-25/0042 bola odoslana. Kurier vas bude "
    "kontaktovat pred dorucenim. Ak nebudete doma, zasielku mozete vyzdvihnut na "
    "najblizsej pobocke do 7 dni. Dakujeme, ze nakupujete u nas! {Info: www.example.sk}"
)

SUBMIT = SubmitSm(
    sequence_number=12345,
    source_addr_ton=5,
    source_addr="O2 Shop",
    dest_addr_ton=1,
    dest_addr_npi=1,
    destination_addr="421900123456",
    registered_delivery=1,
    short_message=TEXT_70.encode("ascii"),
)
RESP = encode(SubmitSmResp(sequence_number=12345, message_id="04000000086ECD50"))
RECEIPT = encode(
    DeliverSm(
        sequence_number=777,
        source_addr_ton=1,
        source_addr_npi=1,
        source_addr="421900123456",
        dest_addr_ton=5,
        destination_addr="O2 Shop",
        esm_class=0x04,
        short_message=(
            b"id:04000000086ECD50 sub:001 dlvrd:001 submit date:2411251200 "
            b"done date:2411251201 stat:DELIVRD err:000 text:Your parcel 4711 arr"
        ),
        tlvs=(
            Tlv(TlvTag.RECEIPTED_MESSAGE_ID, "04000000086ECD50"),
            Tlv(TlvTag.MESSAGE_STATE, 2),
        ),
    )
)

_HEADER = struct.Struct(">IIII")


def baseline_submit_sm() -> bytes:
    """A hand-packed submit_sm with no objects and no validation: the floor to compare with."""
    body = b"".join(
        (
            b"\0\x05\x00O2 Shop\0\x01\x01421900123456\0\0\0\0\0\0\x01\0\0\0",
            bytes((len(SUBMIT.short_message),)),
            SUBMIT.short_message,
        )
    )
    return _HEADER.pack(16 + len(body), 4, 0, 12345) + body


def rate(fn: Callable[[], object], number: int, runs: int) -> float:
    """Median calls per second over ``runs`` timed loops of ``number`` calls."""
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rates.append(number / (time.perf_counter() - start))
    return statistics.median(rates)


def mixed_stream(copies: int) -> bytes:
    """The traffic of one message (submit_sm, its resp, a receipt, its resp) plus a keepalive."""
    unit = b"".join(
        (
            encode(SUBMIT),
            RESP,
            RECEIPT,
            encode(DeliverSmResp(sequence_number=777)),
            encode(EnquireLink(sequence_number=5)),
            encode(EnquireLinkResp(sequence_number=5)),
        )
    )
    return unit * copies


def framer_mb_per_s(stream: bytes, runs: int, *, decode_too: bool) -> float:
    """Median MB/s through the framer, fed in 64 KiB chunks like a socket read loop."""
    chunk = 64 * 1024
    rates = []
    for _ in range(runs):
        framer = Framer()
        start = time.perf_counter()
        for i in range(0, len(stream), chunk):
            framer.feed(stream[i : i + chunk])
            if decode_too:
                for _ in framer:
                    pass
            else:
                for _ in framer.frames():
                    pass
        rates.append(len(stream) / (time.perf_counter() - start) / 1e6)
    return statistics.median(rates)


def main() -> None:
    """Print one line per benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    runs, number = args.runs, args.number

    print(
        f"# {platform.python_implementation()} {platform.python_version()} "
        f"({os.path.realpath(sys.executable)}), {platform.machine()}"
    )
    print(f"# median of {runs} runs; rates in operations per second unless marked")
    base = rate(baseline_submit_sm, number, runs)
    enc = rate(lambda: encode(SUBMIT), number, runs)
    print(f"baseline hand-packed submit_sm   {base:>12,.0f}/s")
    print(f"submit_sm encode                 {enc:>12,.0f}/s   ({enc / base:.2f} x baseline)")
    build = rate(
        lambda: encode(
            SubmitSm(
                sequence_number=1,
                source_addr_ton=5,
                source_addr="O2 Shop",
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr="421900123456",
                registered_delivery=1,
                short_message=SUBMIT.short_message,
            )
        ),
        number,
        runs,
    )
    print(f"submit_sm construct + encode     {build:>12,.0f}/s   ({build / base:.2f} x baseline)")
    print(f"submit_sm_resp decode            {rate(lambda: decode(RESP), number, runs):>12,.0f}/s")
    print(
        f"deliver_sm (receipt) decode      {rate(lambda: decode(RECEIPT), number, runs):>12,.0f}/s"
    )

    stream = mixed_stream(20_000)
    frames = framer_mb_per_s(stream, runs, decode_too=False)
    decoded = framer_mb_per_s(stream, runs, decode_too=True)
    print(
        f"framer, frames only              {frames:>12.1f} MB/s  ({len(stream) / 1e6:.1f} MB mixed stream)"
    )
    print(f"framer + decode                  {decoded:>12.1f} MB/s")

    short = rate(lambda: split(TEXT_70), number // 4, runs)
    long = rate(lambda: split(TEXT_LONG), number // 4, runs)
    print(f"GSM 03.38 encode + split, 70 ch  {short:>12,.0f}/s")
    print(f"GSM 03.38 encode + split, {len(TEXT_LONG)} ch {long:>12,.0f}/s   (2 parts, UDH)")


if __name__ == "__main__":
    main()
