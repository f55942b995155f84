"""Inputs found by the coverage-guided fuzzers in ``fuzz/`` (see docs/reliability.md, Fuzzing).

Each test replays one minimised input as a byte literal and asserts the documented behaviour.
The round-trip oracle of the ``decode`` target: whatever decodes must encode again and decode
to an equal PDU.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from o2sms import receipts
from o2sms.receipts import ReceiptStat
from o2sms.smpp import (
    CommandStatus,
    DeliverSm,
    PduEncodeError,
    PduError,
    SubmitMulti,
    SubmitMultiResp,
    Tlv,
    TlvTag,
    decode,
    encode,
)


def _frame(command_id: int, body: bytes, *, status: int = 0) -> bytes:
    header = (16 + len(body)).to_bytes(4, "big") + command_id.to_bytes(4, "big")
    return header + status.to_bytes(4, "big") + b"\x00\x00\x00\x01" + body


# submit_multi: service_type, source ton/npi/addr, then number_of_dests and the dest_addresses,
# then esm_class .. sm_default_msg_id and an empty short_message. Each dest is a distribution
# list with an empty dl_name (dest_flag 2, NUL).
_MULTI_HEAD = b"\x00" + b"\x00\x00" + b"\x00"
_MULTI_TAIL = b"\x00\x00\x00" + b"\x00" + b"\x00" + b"\x00\x00\x00\x00" + b"\x00"


def test_submit_multi_with_255_destinations_is_refused() -> None:
    # Found by the round-trip oracle: 255 destinations decoded, but encode allows 254 at most
    # (SMPP 3.4 4.5.1), so the decoded PDU could not be sent on.
    frame = _frame(0x21, _MULTI_HEAD + b"\xff" + b"\x02\x00" * 255 + _MULTI_TAIL)
    with pytest.raises(PduError) as info:
        decode(frame)
    assert info.value.command_status == CommandStatus.ESME_RINVNUMDESTS
    assert info.value.command_id == 0x21
    assert info.value.sequence_number == 1


def test_submit_multi_with_254_destinations_round_trips() -> None:
    frame = _frame(0x21, _MULTI_HEAD + b"\xfe" + b"\x02\x00" * 254 + _MULTI_TAIL)
    pdu = decode(frame)
    assert isinstance(pdu, SubmitMulti)
    assert len(pdu.dest_addresses) == 254
    assert encode(pdu) == frame
    assert decode(encode(pdu)) == pdu


# submit_multi_resp: message_id "", then no_unsuccess and each unsuccess_sme
# (ton, npi, destination_addr "", error_status_code).
_UNSUCCESS = b"\x00\x00" + b"\x00" + b"\x00\x00\x00\x0b"


def test_submit_multi_resp_with_255_unsuccess_smes_is_refused() -> None:
    frame = _frame(0x80000021, b"\x00" + b"\xff" + _UNSUCCESS * 255)
    with pytest.raises(PduError) as info:
        decode(frame)
    assert info.value.command_status == CommandStatus.ESME_RINVNUMDESTS


def test_submit_multi_resp_with_255_unsuccess_smes_keeps_an_error_status() -> None:
    # An error response never fails to decode: its status survives the bad body.
    frame = _frame(0x80000021, b"m1\x00" + b"\xff" + _UNSUCCESS * 255, status=0x58)
    pdu = decode(frame)
    assert isinstance(pdu, SubmitMultiResp)
    assert pdu.command_status == 0x58
    assert pdu.message_id == "m1"
    assert decode(encode(pdu)) == pdu


def test_submit_multi_resp_with_254_unsuccess_smes_round_trips() -> None:
    frame = _frame(0x80000021, b"\x00" + b"\xfe" + _UNSUCCESS * 254)
    pdu = decode(frame)
    assert isinstance(pdu, SubmitMultiResp)
    assert len(pdu.unsuccess_smes) == 254
    assert encode(pdu) == frame


def test_deliver_sm_with_short_message_and_message_payload() -> None:
    # Found by the round-trip oracle (minimised): the decoder is lenient and keeps both texts
    # (a receipt from a sloppy SMSC is not lost; the simulator answers such a submit with
    # ESME_RINVMSGLEN), the encoder refuses to write both (SMPP 3.4 5.3.2.32). Both behaviours
    # are intended; the fuzz oracle checks exactly this pair.
    frame = bytes.fromhex(
        "00000027 00000005 00000000 00000001"
        "00 0000 00 0000 00 000000 00 00 00000000"  # service_type .. sm_default_msg_id
        "01 78"  # sm_length 1, short_message "x"
        "0424 0001 79"  # message_payload "y"
    )
    pdu = decode(frame)
    assert isinstance(pdu, DeliverSm)
    assert pdu.short_message == b"x"
    assert pdu.tlvs == (Tlv(TlvTag.MESSAGE_PAYLOAD, b"y"),)
    with pytest.raises(PduEncodeError, match="both"):
        encode(pdu)


_DATE = datetime(2024, 3, 15, 14, 30)


@pytest.mark.parametrize(("receipt_id", "err"), [("ab\x00", 0), ("\x00", 0), ("ab", "0\x00")])
def test_receipt_format_refuses_nul_in_id_and_err(receipt_id: str, err: int | str) -> None:
    # Found by the receipts target's format/parse round trip: parse strips NULs around a value
    # (SMSC padding), so an id or err with a NUL could not be read back; format now refuses it.
    with pytest.raises(ValueError, match="NUL"):
        receipts.format(
            receipt_id,
            submit_date=_DATE,
            done_date=_DATE,
            stat=ReceiptStat.DELIVRD,
            err=err,
        )


def test_receipt_text_loses_trailing_nul_padding() -> None:
    # The parser's normalisation the round-trip oracle allows: text runs to the end of the
    # receipt, without trailing NUL / CR / LF padding.
    written = receipts.format(
        "7", submit_date=_DATE, done_date=_DATE, stat=ReceiptStat.DELIVRD, text="hi\x00\x00"
    )
    receipt = receipts.parse(written)
    assert receipt.id == "7"
    assert receipt.text == "hi"
