"""Delivery receipts: golden texts, TLV preference, format/parse round trips, id correlation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms import receipts
from o2sms.errors import O2smsError
from o2sms.receipts import (
    DeliveryReceipt,
    ReceiptParseError,
    ReceiptStat,
    from_deliver_sm,
    message_id_keys,
    message_ids_match,
    normalise_message_id,
    parse,
)
from o2sms.smpp.constants import EsmClass, MessageState, TlvTag
from o2sms.smpp.pdu import DeliverSm
from o2sms.smpp.tlv import Tlv

SUBMITTED = datetime(2024, 3, 15, 14, 30)
DONE = datetime(2024, 3, 15, 14, 31)


@dataclass(frozen=True)
class FakeDeliverSm:
    """Just the deliver_sm fields from_deliver_sm reads."""

    short_message: bytes = b""
    esm_class: int = EsmClass.DELIVERY_RECEIPT
    tlvs: Sequence[Tlv] = field(default_factory=tuple)
    data_coding: int = 0


# --- ReceiptStat ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stat", "state"),
    [
        (ReceiptStat.DELIVRD, MessageState.DELIVERED),
        (ReceiptStat.EXPIRED, MessageState.EXPIRED),
        (ReceiptStat.DELETED, MessageState.DELETED),
        (ReceiptStat.UNDELIV, MessageState.UNDELIVERABLE),
        (ReceiptStat.ACCEPTD, MessageState.ACCEPTED),
        (ReceiptStat.UNKNOWN, MessageState.UNKNOWN),
        (ReceiptStat.REJECTD, MessageState.REJECTED),
        (ReceiptStat.ENROUTE, MessageState.ENROUTE),
    ],
)
def test_stat_maps_to_message_state_and_back(stat: ReceiptStat, state: MessageState) -> None:
    assert stat.message_state is state
    assert ReceiptStat.from_message_state(state) is stat
    assert stat.is_final is (stat is not ReceiptStat.ENROUTE)


@pytest.mark.parametrize(
    ("text", "stat"),
    [
        ("DELIVRD", ReceiptStat.DELIVRD),
        ("delivrd", ReceiptStat.DELIVRD),
        ("DELIVERED", ReceiptStat.DELIVRD),
        ("Delivered", ReceiptStat.DELIVRD),
        ("DELIVERY UNKNOWN", ReceiptStat.UNKNOWN),  # Infobip's spelling
        ("delivery  unknown", ReceiptStat.UNKNOWN),
        ("UNKNOWN", ReceiptStat.UNKNOWN),
        ("REJECTED", ReceiptStat.REJECTD),  # Infobip's spelling
        ("REJECTD", ReceiptStat.REJECTD),
        ("UNDELIVERABLE", ReceiptStat.UNDELIV),
        ("ACCEPTED", ReceiptStat.ACCEPTD),
        ("ENROUTE", ReceiptStat.ENROUTE),
        (" expired ", ReceiptStat.EXPIRED),
        ("Deleted", ReceiptStat.DELETED),
    ],
)
def test_stat_from_text(text: str, stat: ReceiptStat) -> None:
    assert ReceiptStat.from_text(text) is stat


@pytest.mark.parametrize("text", ["", "DELIVR", "OK", "FAILED"])
def test_stat_from_text_rejects_unknown(text: str) -> None:
    with pytest.raises(ReceiptParseError, match="unknown receipt stat"):
        ReceiptStat.from_text(text)


@pytest.mark.parametrize("state", [0, 9, 255])
def test_stat_from_message_state_rejects_non_3_4_states(state: int) -> None:
    with pytest.raises(ReceiptParseError, match=r"1\.\.8"):
        ReceiptStat.from_message_state(state)


# --- golden receipt texts, written by hand ------------------------------------------------------


def test_seed_layout_with_dlvrld_and_line_breaks() -> None:
    # The O2 gateway's own description: "dlvrld", fields split over lines, no text field.
    r = parse(
        "id:1234567890 sub:001 dlvrld:001\n"
        "submit date:2403151430 done date:2403151431\n"
        "stat:DELIVRD err:000"
    )
    assert r == DeliveryReceipt(
        id="1234567890",
        sub=1,
        dlvrd=1,
        submit_date=SUBMITTED,
        done_date=DONE,
        stat=ReceiptStat.DELIVRD,
        err="000",
        text=None,
    )
    assert r.err_code == 0
    assert r.is_final


def test_appendix_b_layout_with_capital_text_key() -> None:
    r = parse(
        "id:0123456789 sub:001 dlvrd:000 submit date:2403151430 done date:2403151431"
        " stat:UNDELIV err:001 Text:Hello world"
    )
    assert r.id == "0123456789"  # kept verbatim: leading zero not dropped
    assert (r.sub, r.dlvrd) == (1, 0)
    assert r.stat is ReceiptStat.UNDELIV
    assert r.err == "001"
    assert r.err_code == 1
    assert r.text == "Hello world"


def test_twelve_digit_dates_carry_seconds() -> None:
    r = parse(
        "id:7 sub:001 dlvrd:001 submit date:240315143005 done date:240315143159"
        " stat:DELIVRD err:000 text:"
    )
    assert r.submit_date == datetime(2024, 3, 15, 14, 30, 5)
    assert r.done_date == datetime(2024, 3, 15, 14, 31, 59)
    assert r.text == ""


def test_text_runs_to_the_end_with_spaces_and_colons() -> None:
    r = parse("id:42 stat:DELIVRD err:000 text:Meet at 10:30:  room B id:99 stat:REJECTD")
    assert r.id == "42"
    assert r.stat is ReceiptStat.DELIVRD
    assert r.text == "Meet at 10:30:  room B id:99 stat:REJECTD"


def test_keys_after_text_belong_to_the_text() -> None:
    r = parse("id:1 stat:DELIVRD text:hi err:5 sub:9")
    assert r.text == "hi err:5 sub:9"
    assert (r.err, r.sub) == ("", None)


def test_missing_err_and_dates() -> None:
    r = parse("id:abc123 stat:EXPIRED")
    assert r.err == ""
    assert r.err_code is None
    assert r.sub is None
    assert r.dlvrd is None
    assert r.submit_date is None
    assert r.done_date is None
    assert r.text is None
    assert r.message_state is None
    assert r.network_error_code is None


def test_rejected_spelled_out() -> None:
    r = parse(
        "id:55 sub:001 dlvrld:000 submit date:2403151430 done date:2403151430 stat:REJECTED err:034"
    )
    assert r.stat is ReceiptStat.REJECTD
    assert r.stat.message_state is MessageState.REJECTED
    assert r.err_code == 34


def test_delivery_unknown_with_a_space_in_the_value() -> None:
    r = parse(
        "id:56 sub:001 dlvrld:000 submit date:2403151430 done date:2403151430"
        " stat:DELIVERY UNKNOWN err:000"
    )
    assert r.stat is ReceiptStat.UNKNOWN
    assert r.err == "000"


def test_field_order_case_spacing_and_extra_fields() -> None:
    r = parse(
        "  STAT:enroute   ERR:000\r\n ID:4F2A mcc:231 mnc:01 Submit Date:2403151430"
        "\tDone_Date:2403151431  SUB:002 DLVRD:000  TEXT:part one"
    )
    assert r.id == "4F2A"
    assert r.stat is ReceiptStat.ENROUTE
    assert not r.is_final
    assert r.err == "000"
    assert (r.sub, r.dlvrd) == (2, 0)
    assert r.submit_date == SUBMITTED
    assert r.done_date == DONE
    assert r.text == "part one"


def test_malformed_optional_fields_become_none() -> None:
    r = parse("id:9 sub:one dlvrd:x submit date:2413151430 done date:24031514 stat:DELIVRD err:E12")
    assert (r.sub, r.dlvrd, r.submit_date, r.done_date) == (None, None, None, None)
    assert r.err == "E12"
    assert r.err_code is None


def test_stat_value_with_trailing_junk_uses_its_first_word() -> None:
    assert parse("id:1 stat:DELIVRD (final)").stat is ReceiptStat.DELIVRD
    with pytest.raises(ReceiptParseError, match="DELIVRD,ok"):
        parse("id:1 stat:DELIVRD,ok")  # glued junk is not guessed away


def test_bytes_are_decoded_as_latin_1() -> None:
    r = parse(b"id:77 stat:DELIVRD err:000 text:Caf\xe9 \xfc\x00")
    assert r.text == "Café ü"
    assert r.id == "77"


def test_first_of_a_repeated_key_wins() -> None:
    assert parse("id:1 id:2 stat:DELIVRD").id == "1"


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("sub:001 dlvrd:001 stat:DELIVRD err:000", "no 'id:'"),
        ("id: stat:DELIVRD", "no 'id:'"),
        ("id:123 sub:001 dlvrd:001 err:000", "no 'stat:'"),
        ("id:123 stat: err:000", "no 'stat:'"),
        ("text:id:1 stat:DELIVRD", "no 'id:'"),  # inside text, keys do not count
        ("Hello, this is an ordinary MO message", "no 'id:'"),
        ("", "no 'id:'"),
    ],
)
def test_not_a_receipt(text: str, missing: str) -> None:
    with pytest.raises(ReceiptParseError, match=missing):
        parse(text)


def test_unknown_stat_raises() -> None:
    with pytest.raises(ReceiptParseError, match="unknown receipt stat 'SENT'"):
        parse("id:1 stat:SENT")


def test_error_is_in_the_o2sms_tree_and_a_value_error() -> None:
    assert issubclass(ReceiptParseError, O2smsError)
    assert issubclass(ReceiptParseError, ValueError)


# --- from_deliver_sm: TLVs first ----------------------------------------------------------------

TEXT = (
    b"id:288230376293190992 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431"
    b" stat:DELIVRD err:000 text:Hello"
)


def test_tlvs_win_over_the_text() -> None:
    pdu = FakeDeliverSm(
        short_message=TEXT,
        tlvs=(
            Tlv(TlvTag.RECEIPTED_MESSAGE_ID, "04000000086ECD50"),
            Tlv(TlvTag.MESSAGE_STATE, int(MessageState.UNDELIVERABLE)),
            Tlv(TlvTag.NETWORK_ERROR_CODE, b"\x03\x00\x06"),
        ),
    )
    r = from_deliver_sm(pdu)
    assert r.id == "04000000086ECD50"  # the TLV echoes the submit_sm_resp id verbatim
    assert r.stat is ReceiptStat.UNDELIV
    assert r.message_state is MessageState.UNDELIVERABLE
    assert r.network_error_code == b"\x03\x00\x06"
    assert r.text == "Hello"  # the rest still comes from the text
    assert r.submit_date == SUBMITTED


def test_text_only_deliver_sm() -> None:
    r = from_deliver_sm(FakeDeliverSm(short_message=TEXT))
    assert r.id == "288230376293190992"
    assert r.stat is ReceiptStat.DELIVRD
    assert r.message_state is None


def test_tlvs_only_without_parsable_text() -> None:
    pdu = FakeDeliverSm(
        short_message=b"",
        tlvs=(Tlv(TlvTag.MESSAGE_STATE, 2), Tlv(TlvTag.RECEIPTED_MESSAGE_ID, "abc-1\x00")),
    )
    r = from_deliver_sm(pdu)
    assert r.id == "abc-1"
    assert r.stat is ReceiptStat.DELIVRD
    assert (r.sub, r.dlvrd, r.submit_date, r.err, r.text) == (None, None, None, "", None)


def test_message_payload_used_when_short_message_is_empty() -> None:
    pdu = FakeDeliverSm(short_message=b"", tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, TEXT),))
    r = from_deliver_sm(pdu)
    assert r.id == "288230376293190992"
    assert r.text == "Hello"


def test_message_payload_ignored_when_short_message_is_set() -> None:
    pdu = FakeDeliverSm(
        short_message=TEXT, tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, b"id:1 stat:REJECTD"),)
    )
    assert from_deliver_sm(pdu).stat is ReceiptStat.DELIVRD


def test_udhi_bit_does_not_hide_a_receipt() -> None:
    pdu = FakeDeliverSm(short_message=TEXT, esm_class=EsmClass.DELIVERY_RECEIPT | EsmClass.UDHI)
    assert from_deliver_sm(pdu).stat is ReceiptStat.DELIVRD


def test_intermediate_notification_is_a_receipt() -> None:
    pdu = FakeDeliverSm(
        short_message=b"id:1 stat:ENROUTE", esm_class=EsmClass.INTERMEDIATE_NOTIFICATION
    )
    assert not from_deliver_sm(pdu).is_final


@pytest.mark.parametrize("stat", ["ACCEPTD", "DELIVRD", "UNDELIV"])
def test_intermediate_notification_is_never_final(stat: str) -> None:
    """esm_class 0x20 (SMPP 3.4 5.2.12) says "intermediate": the message's fate is still open,
    whatever its stat says (the simulator sends ACCEPTD so, before the final receipt)."""
    text = f"id:1 sub:001 dlvrd:000 submit date:2403151430 done date:2403151430 stat:{stat} err:000"
    pdu = FakeDeliverSm(
        short_message=text.encode(), esm_class=EsmClass.INTERMEDIATE_NOTIFICATION | EsmClass.UDHI
    )
    receipt = from_deliver_sm(pdu)
    assert receipt.stat is ReceiptStat.from_text(stat)
    assert receipt.intermediate
    assert not receipt.is_final
    final = from_deliver_sm(FakeDeliverSm(short_message=text.encode()))
    assert not final.intermediate
    assert final.is_final


def test_mo_message_is_not_a_receipt() -> None:
    with pytest.raises(ReceiptParseError, match="esm_class 0x00"):
        from_deliver_sm(FakeDeliverSm(short_message=TEXT, esm_class=EsmClass.NORMAL))


def test_one_tlv_without_text_is_not_enough() -> None:
    with pytest.raises(ReceiptParseError, match="no 'stat:'"):
        from_deliver_sm(FakeDeliverSm(tlvs=(Tlv(TlvTag.RECEIPTED_MESSAGE_ID, "1"),)))
    with pytest.raises(ReceiptParseError, match="no 'id:'"):
        from_deliver_sm(FakeDeliverSm(tlvs=(Tlv(TlvTag.MESSAGE_STATE, 2),)))


def test_out_of_range_message_state_tlv_falls_back_to_text() -> None:
    pdu = FakeDeliverSm(short_message=TEXT, tlvs=(Tlv(TlvTag.MESSAGE_STATE, 9),))
    r = from_deliver_sm(pdu)
    assert r.stat is ReceiptStat.DELIVRD
    assert r.message_state is None


def test_tlv_values_as_bytes_are_tolerated() -> None:
    pdu = FakeDeliverSm(
        tlvs=(Tlv(TlvTag.RECEIPTED_MESSAGE_ID, b"XYZ\x00"), Tlv(TlvTag.MESSAGE_STATE, b"\x08"))
    )
    r = from_deliver_sm(pdu)
    assert (r.id, r.stat) == ("XYZ", ReceiptStat.REJECTD)


# --- format --------------------------------------------------------------------------------------


def test_format_golden() -> None:
    text = receipts.format(
        "288230376293190992",
        submit_date=SUBMITTED,
        done_date=DONE,
        stat=ReceiptStat.DELIVRD,
        text="Hello from O2, this is longer than twenty",
    )
    assert text == (
        "id:288230376293190992 sub:001 dlvrd:001 submit date:2403151430"
        " done date:2403151431 stat:DELIVRD err:000 text:Hello from O2, this "
    )


def test_format_failure_with_seconds_and_error() -> None:
    text = receipts.format(
        "abc",
        submit_date=datetime(2024, 3, 15, 14, 30, 5),
        done_date=datetime(2024, 3, 15, 14, 31, 6),
        stat=ReceiptStat.UNDELIV,
        err=6,
        seconds=True,
    )
    assert text == (
        "id:abc sub:001 dlvrd:000 submit date:240315143005 done date:240315143106"
        " stat:UNDELIV err:006 text:"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"id": ""},
        {"id": "a b"},
        {"sub": -1},
        {"dlvrd": -1},
        {"err": -1},
        {"err": "0 0"},
        {"err": ""},
        {"submit_date": datetime(1999, 12, 31)},
    ],
)
def test_format_rejects_what_could_not_be_read_back(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "id": "1",
        "submit_date": SUBMITTED,
        "done_date": DONE,
        "stat": ReceiptStat.DELIVRD,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=r"\S"):
        receipts.format(**args)  # type: ignore[arg-type]


ids = st.text(
    alphabet=st.characters(codec="latin-1", exclude_categories=("Zs", "Zl", "Zp", "Cc")),
    min_size=1,
    max_size=64,
)
receipt_dates = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))
receipt_texts = st.text(
    alphabet=st.characters(codec="latin-1", exclude_characters="\x00\r\n"), max_size=30
)


@given(
    message_id=ids,
    sub=st.integers(0, 999),
    dlvrd=st.integers(0, 999),
    submit_date=receipt_dates,
    done_date=receipt_dates,
    stat=st.sampled_from(ReceiptStat),
    err=st.integers(0, 999),
    text=receipt_texts,
    seconds=st.booleans(),
)
def test_format_then_parse_round_trip(
    *,
    message_id: str,
    sub: int,
    dlvrd: int,
    submit_date: datetime,
    done_date: datetime,
    stat: ReceiptStat,
    err: int,
    text: str,
    seconds: bool,
) -> None:
    formatted = receipts.format(
        message_id,
        sub=sub,
        dlvrd=dlvrd,
        submit_date=submit_date,
        done_date=done_date,
        stat=stat,
        err=err,
        text=text,
        seconds=seconds,
    )

    def written(dt: datetime) -> datetime:
        return dt.replace(second=dt.second if seconds else 0, microsecond=0)

    expected = DeliveryReceipt(
        id=message_id,
        sub=sub,
        dlvrd=dlvrd,
        submit_date=written(submit_date),
        done_date=written(done_date),
        stat=stat,
        err=f"{err:03d}",
        text=text[:20],
    )
    assert parse(formatted) == expected
    assert parse(formatted.encode("latin-1")) == expected


@given(st.text() | st.binary())
def test_parse_raises_only_receipt_parse_error(data: str | bytes) -> None:
    try:
        r = parse(data)
    except ReceiptParseError:
        return
    assert r.id
    assert isinstance(r.stat, ReceiptStat)


key_soup = st.lists(
    st.sampled_from(
        ["id:", "ID:", "stat:", "sub:", "dlvrld:", "submit date:", "done date:", "err:", "text:"]
    )
    | st.sampled_from(["DELIVRD", "DELIVERY UNKNOWN", "0", "2403151430", "²³", "9" * 5000])
    | st.text(max_size=5),
    max_size=12,
).map(" ".join)


@given(key_soup)
def test_parse_of_receipt_like_soup_raises_only_receipt_parse_error(data: str) -> None:
    try:
        r = parse(data)
    except ReceiptParseError:
        return
    assert r.id
    assert r.err_code is None or r.err_code >= 0


# --- message id normalisation and correlation (the hex-vs-decimal pitfall) ---------------------


def test_pitfall_golden_resp_hex_matches_dlr_decimal() -> None:
    resp_id, dlr_id = "04000000086ECD50", "288230376293190992"
    assert normalise_message_id(resp_id) == dlr_id
    assert normalise_message_id(dlr_id) == dlr_id
    assert message_id_keys(resp_id) == {"04000000086ecd50", "288230376293190992"}
    assert dlr_id in message_id_keys(dlr_id)
    assert message_ids_match(resp_id, dlr_id)
    assert message_ids_match(dlr_id, resp_id)


def test_all_digit_hex_id_needs_keys_not_auto() -> None:
    # resp id in hex but without letters: auto reads it as decimal; the key set still matches.
    resp_id, dlr_id = "12345678", str(0x12345678)
    assert normalise_message_id(resp_id) == "12345678"
    assert normalise_message_id(resp_id, base="hex") == dlr_id
    assert message_ids_match(resp_id, dlr_id)


@pytest.mark.parametrize(
    ("message_id", "base", "expected"),
    [
        ("0000123", "auto", "123"),
        ("0000123", "decimal", "123"),
        ("0000123", "hex", "291"),
        (" ff\x00", "auto", "255"),
        ("FF", "hex", "255"),
        ("0", "auto", "0"),
        ("6F9619FF-8B86-D011-B42D-00C04FC964FF", "auto", "6f9619ff-8b86-d011-b42d-00c04fc964ff"),
        ("msg_ABC", "auto", "msg_abc"),
        ("", "auto", ""),
    ],
)
def test_normalise_message_id(message_id: str, base: str, expected: str) -> None:
    assert normalise_message_id(message_id, base=base) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("message_id", "base"), [("ff", "decimal"), ("xyz", "hex")])
def test_normalise_with_explicit_base_rejects_other_digits(message_id: str, base: str) -> None:
    with pytest.raises(ReceiptParseError, match="not a"):
        normalise_message_id(message_id, base=base)  # type: ignore[arg-type]


def test_keys_of_non_numeric_and_overlong_ids_are_the_string() -> None:
    assert message_id_keys(" Abc-Def ") == {"abc-def"}
    overlong = "9" * 5000
    assert message_id_keys(overlong) == {overlong}
    assert normalise_message_id(overlong) == overlong
    assert not message_ids_match("abc", "abd")


@given(st.integers(min_value=0, max_value=2**128))
def test_same_number_in_hex_and_decimal_always_matches(n: int) -> None:
    hex_id, dec_id = f"{n:016X}", str(n)
    assert message_ids_match(hex_id, dec_id)
    assert normalise_message_id(hex_id, base="hex") == normalise_message_id(dec_id)
    assert message_ids_match(dec_id.zfill(20), dec_id)


# --- data_coding of the receipt text ------------------------------------------------------------

UCS2_TEXT = (
    "id:288230376293190992 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431"
    " stat:DELIVRD err:000 text:Čau 😀 už"
)


def test_ucs2_receipt_text_is_decoded_by_its_data_coding() -> None:
    # A receipt whose text is UCS-2 (data_coding 8): read as octets it has no "id:" at all.
    pdu = DeliverSm(
        esm_class=EsmClass.DELIVERY_RECEIPT,
        data_coding=0x08,
        short_message=UCS2_TEXT.encode("utf-16-be"),
    )
    r = from_deliver_sm(pdu)
    assert r.id == "288230376293190992"
    assert r.stat is ReceiptStat.DELIVRD
    assert r.submit_date == SUBMITTED
    assert r.text == "Čau 😀 už"


def test_ucs2_receipt_in_message_payload_and_ucs2_class_groups() -> None:
    payload = UCS2_TEXT.encode("utf-16-be")
    pdu = FakeDeliverSm(tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, payload),), data_coding=0x08)
    assert from_deliver_sm(pdu).text == "Čau 😀 už"
    for data_coding in (0x18, 0xE0):  # GSM general group / MWI group with the UCS-2 alphabet
        assert from_deliver_sm(FakeDeliverSm(payload, data_coding=data_coding)).id == (
            "288230376293190992"
        )


def test_broken_ucs2_receipt_text_is_replaced_not_raised() -> None:
    # A lone high surrogate and an odd trailing octet in the text: U+FFFD, not an exception.
    data = "id:7 stat:EXPIRED text:ok".encode("utf-16-be") + b"\xd8\x3d\x00"
    r = from_deliver_sm(FakeDeliverSm(data, data_coding=0x08))
    assert (r.id, r.stat) == ("7", ReceiptStat.EXPIRED)
    assert r.text is not None
    assert r.text.startswith("ok")
    assert "\ufffd" in r.text


def test_ascii_receipt_text_under_a_ucs2_data_coding_is_still_read() -> None:
    # Some SMSCs copy the submit_sm's data_coding (8) into the receipt but write its text in
    # ASCII (seen in the wild: node-smpp issue 68). Read as UTF-16 those octets are CJK
    # garbage with no "id:"; with no TLVs to fall back on the receipt would be lost.
    text = (
        b"id:S21311242091636504458661711 sub:001 dlvrd:001 submit date:170609163650 "
        b"done date:170609163657 stat:DELIVRD err:000 text:"
    )
    for data_coding in (0x08, 0x18):
        r = from_deliver_sm(FakeDeliverSm(text, data_coding=data_coding))
        assert (r.id, r.stat, r.err) == ("S21311242091636504458661711", ReceiptStat.DELIVRD, "000")
        assert r.done_date == datetime(2017, 6, 9, 16, 36, 57)


def test_latin1_and_other_codings_keep_reading_octets() -> None:
    latin1 = TEXT.replace(b"Hello", "café".encode("latin-1"))
    assert from_deliver_sm(FakeDeliverSm(latin1, data_coding=0x03)).text == "café"
    for data_coding in (0x00, 0x01, 0x04, 0x05):  # GSM, IA5, binary, JIS: ASCII keys as octets
        assert from_deliver_sm(FakeDeliverSm(TEXT, data_coding=data_coding)).text == "Hello"


def test_format_with_the_gateways_spelling_reads_back() -> None:
    when = datetime(2026, 11, 25, 12, 0)
    text = receipts.format(
        "7",
        submit_date=when,
        done_date=when,
        stat=ReceiptStat.UNKNOWN,
        stat_text="DELIVERY UNKNOWN",
    )
    assert "stat:DELIVERY UNKNOWN err:000" in text
    assert receipts.parse(text).stat is ReceiptStat.UNKNOWN
    with pytest.raises(ValueError, match="read back"):
        receipts.format(
            "7", submit_date=when, done_date=when, stat=ReceiptStat.UNKNOWN, stat_text="DELIVRD"
        )


# --- receipt dates: the per-minute cache of _format_date ------------------------------------------


def _strftime_date(dt: datetime, seconds: bool) -> str:
    """What _format_date wrote before it kept minutes: the year check, then strftime."""
    if not 2000 <= dt.year <= 2099:
        raise ValueError(f"d year {dt.year} cannot be written: YY covers 2000..2099 only")
    return dt.strftime("%y%m%d%H%M%S" if seconds else "%y%m%d%H%M")


def _written(dt: datetime, seconds: bool) -> str:
    try:
        return receipts._format_date("d", dt, seconds)
    except ValueError as exc:
        return f"error: {exc}"


def _expected(dt: datetime, seconds: bool) -> str:
    try:
        return _strftime_date(dt, seconds)
    except ValueError as exc:
        return f"error: {exc}"


EARLIEST, LATEST = datetime(1990, 1, 1), datetime(2110, 12, 31)  # around 2000..2099
any_datetimes = st.datetimes(EARLIEST, LATEST) | st.datetimes(
    EARLIEST,
    LATEST,
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone.min]),
)


@given(dt=any_datetimes, seconds=st.booleans())
def test_receipt_dates_match_strftime(dt: datetime, seconds: bool) -> None:
    """Cached or not, naive or aware, in range or not: the text (or error) strftime gave."""
    expected = _expected(dt, seconds)
    assert _written(dt, seconds) == expected
    assert _written(dt, seconds) == expected  # the second time from the cache
    assert _written(dt, not seconds) == _expected(dt, not seconds)


@pytest.mark.parametrize(
    "start",
    [
        datetime(2024, 3, 15, 14, 29, 58),  # minute
        datetime(2024, 3, 15, 14, 59, 58),  # hour
        datetime(2024, 2, 28, 23, 59, 58),  # leap day
        datetime(2024, 12, 31, 23, 59, 58),  # year
        datetime(2099, 12, 31, 23, 59, 58),  # the last writable minute
        datetime(1999, 12, 31, 23, 59, 58, tzinfo=UTC),  # the first one
    ],
)
def test_receipt_dates_roll_over(start: datetime) -> None:
    """Second by second over a boundary, both ways and interleaved, each date is its own."""
    moments = [start + timedelta(seconds=n, microseconds=n * 250_000) for n in range(6)]
    for dt in [*moments, *reversed(moments), *moments[::2], *moments[1::2]]:
        for seconds in (False, True):
            assert _written(dt, seconds) == _expected(dt, seconds)


def test_receipt_date_cache_stays_bounded() -> None:
    start = datetime(2030, 1, 1)
    for n in range(receipts._MINUTES_KEPT + 10):
        dt = start + timedelta(minutes=n)
        assert receipts._format_date("d", dt, False) == dt.strftime("%y%m%d%H%M")
    assert 0 < len(receipts._minute_texts) <= receipts._MINUTES_KEPT


def test_receipt_dates_of_other_date_types_use_their_strftime() -> None:
    class Shifted(datetime):
        def strftime(self, fmt: str) -> str:
            return "shifted"

    day = date(2024, 3, 15)
    assert receipts._format_date("d", day, False) == "2403150000"  # type: ignore[arg-type]
    assert receipts._format_date("d", Shifted(2024, 3, 15, 14, 30), True) == "shifted"
    with pytest.raises(ValueError, match="d year 1999"):
        receipts._format_date("d", date(1999, 3, 15), False)  # type: ignore[arg-type]


def test_format_dates_across_a_minute() -> None:
    submitted = datetime(2024, 3, 15, 14, 30, 59, 999_999)
    done = submitted + timedelta(microseconds=1)
    text = receipts.format("ab12", submit_date=submitted, done_date=done, stat=ReceiptStat.DELIVRD)
    assert "submit date:2403151430 done date:2403151431 " in text
    text = receipts.format(
        "ab12", submit_date=done, done_date=submitted, stat=ReceiptStat.DELIVRD, seconds=True
    )
    assert "submit date:240315143100 done date:240315143059 " in text


def test_message_id_keys_of_long_ids_are_not_cached_and_still_right() -> None:
    cache = receipts._cached_keys
    cache.cache_clear()
    long_id = "a" * 200  # over any SMSC's id length: one exact key, kept out of the cache
    assert receipts.message_id_keys(long_id) == frozenset((long_id,))
    assert cache.cache_info().currsize == 0
    assert receipts.message_id_keys(" 04000000086ECD50 ") == frozenset(
        ("04000000086ecd50", "288230376293190992")
    )
    receipts.message_id_keys(" 04000000086ECD50 ")
    info = cache.cache_info()
    assert (info.currsize, info.misses, info.hits) == (1, 1, 1)  # the second came from it
