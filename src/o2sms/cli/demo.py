"""``o2sms demo``: what the protocol core does with one Slovak message, end to end, offline."""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.console import Console

from o2sms import receipts
from o2sms.smpp import DeliverSm, Framer, SubmitSm, Tlv, TlvTag, encode
from o2sms.smpp.times import relative_time
from o2sms.text import Reassembler, plan, split

DEMO_TEXT = (
    "Dobrý deň, vaša objednávka č. 4711 je na ceste. Kuriér vás bude kontaktovať "
    "pred doručením; ak nebudete doma, zásielku si vyzdvihnite do 7 dní na pobočke. Ďakujeme!"
)


def demo_command() -> None:
    """Plan, split, encode, frame and reassemble a long Slovak SMS, then parse its receipt."""
    console = Console()
    console.print(f"[bold]Text[/bold] ({len(DEMO_TEXT)} characters):\n{DEMO_TEXT}\n")
    info = plan(DEMO_TEXT)
    console.print(
        f"As written: {info.encoding.value}, {info.parts} parts, {info.remaining} units left."
    )
    if info.transliterated is not None:
        alt = info.transliterated
        console.print(
            f"Transliterated: {alt.encoding.value}, {alt.parts} parts, {alt.remaining} left:\n"
            f"  {alt.text}\n"
        )
    sent_text = info.transliterated.text if info.transliterated is not None else DEMO_TEXT
    parts = split(sent_text)
    stream = b""
    for number, part in enumerate(parts, start=1):
        pdu = SubmitSm(
            sequence_number=number,
            source_addr_ton=5,
            source_addr="O2 Demo",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="421900123456",
            esm_class=part.esm_class,
            data_coding=part.data_coding,
            registered_delivery=1,
            validity_period=relative_time(timedelta(hours=2)),
            short_message=part.short_message,
            tlvs=part.tlvs,
        )
        wire = encode(pdu)
        stream += wire
        console.print(f"submit_sm part {number}: {len(wire)} octets  {wire[:40].hex(' ')} ...")

    framer = Framer()
    reassembler = Reassembler()
    for octet in range(0, len(stream), 7):  # a stream arriving in small pieces
        framer.feed(stream[octet : octet + 7])
        for submitted in framer:
            assert isinstance(submitted, SubmitSm)
            inbound = DeliverSm(
                source_addr=submitted.destination_addr,
                destination_addr=submitted.source_addr,
                esm_class=submitted.esm_class,
                data_coding=submitted.data_coding,
                short_message=submitted.short_message,
            )
            done = reassembler.feed(inbound, now=0.0)
            if done is not None:
                console.print(f"\nReassembled from {len(parts)} parts: {done.text}")

    now = datetime(2026, 11, 25, 12, 0)
    text = receipts.format(
        "04000000086ECD50",
        submit_date=now,
        done_date=now + timedelta(seconds=4),
        stat=receipts.ReceiptStat.DELIVRD,
        text=sent_text,
    )
    receipt = receipts.from_deliver_sm(
        DeliverSm(
            esm_class=0x04,
            short_message=text.encode("latin-1", "replace"),
            tlvs=(
                Tlv(TlvTag.RECEIPTED_MESSAGE_ID, "04000000086ECD50"),
                Tlv(TlvTag.MESSAGE_STATE, 2),
            ),
        )
    )
    console.print(f"\nReceipt text: {text}")
    console.print(
        f"Parsed: id={receipt.id} stat={receipt.stat.value} final={receipt.stat.is_final} "
        f"done={receipt.done_date}"
    )
    console.print(
        "Same message in decimal, as some SMSCs write it: "
        f"{receipts.normalise_message_id('04000000086ECD50')}"
    )
