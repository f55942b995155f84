"""The standard-layout fast path of receipt parsing agrees with the general scanner.

``parse`` and ``from_deliver_sm`` read the layout nearly every SMSC writes in one regex step
and build the receipt straight from the match; anything else goes through the general key
scanner. Both must give the same receipt (or the same error) for every text, and message ids
must get the same correlation keys as the straightforward implementation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from o2sms import receipts
from o2sms.receipts import DeliveryReceipt, ReceiptParseError, ReceiptStat, parse
from o2sms.smpp.constants import MessageState

GENERAL_STATS = ["DELIVRD", "UNDELIV", "REJECTD", "ENROUTE", "DELIVERED", "UNDELIVERED"]


def general(
    text: str,
    message_id: str | None = None,
    state: MessageState | None = None,
    network_error_code: bytes | None = None,
) -> DeliveryReceipt:
    """The receipt as the general key scanner alone reads it."""
    return receipts._build(
        receipts._scan_keys(text),
        message_id=message_id,
        state=state,
        network_error_code=network_error_code,
    )


def outcome(read: Callable[[], DeliveryReceipt]) -> DeliveryReceipt | str:
    try:
        return read()
    except ReceiptParseError as exc:
        return f"error: {exc}"


# Ids: mostly hex and decimal, with what the general scanner strips or cuts at (':', NUL,
# ASCII and Unicode whitespace) and other punctuation.
id_chars = st.sampled_from([*"0123456789abcdefABCDEF-_.:", "\x00", "\xa0", "\x1c", "é", "²"])
ids = st.from_regex(r"\A[0-9a-fA-F]{1,20}\Z") | st.text(id_chars, min_size=1, max_size=20)
counts = st.from_regex(r"\A[0-9]{1,4}\Z") | st.sampled_from(["", "x1", "001"])
dates = st.from_regex(r"\A[0-9]{9,13}\Z") | st.sampled_from(["2403151430", "240315143059"])
stats = st.sampled_from(
    [*(s.value for s in ReceiptStat), "DELIVERED", "REJECTED", "UNDELIVERED", "DELIVERY UNKNOWN"]
) | st.from_regex(r"\A[A-Za-z]{1,8}\Z")
errs = st.from_regex(r"\A\w{1,4}\Z") | st.sampled_from(["000", "0x1f", ""])
texts = st.none() | st.text(max_size=25) | st.sampled_from(["a stat:UNDELIV err:1", "x: y"])
separators = st.sampled_from([" ", " ", " ", " ", "  ", "\t"])
tails = st.sampled_from(["", "", "\x00", "\r\n", "\n\x00", " "])


# Field values the fast path takes, for texts exactly in the standard layout.
strict_counts = st.from_regex(r"\A[0-9]{1,3}\Z")
strict_dates = st.from_regex(r"\A([0-9]{10}|[0-9]{12})\Z") | st.sampled_from(["2403151430"])
strict_stats = st.sampled_from([s.value for s in ReceiptStat]) | st.from_regex(r"\A[A-Z]{1,8}\Z")
strict_errs = st.from_regex(r"\A\w{1,4}\Z", alphabet=st.characters(codec="ascii"))


@st.composite
def standard_like(draw: st.DrawFn) -> str:
    """Texts in (half of them exactly) or close to the standard layout: both paths and the border."""
    strict = draw(st.booleans())
    sep = " " if strict else draw(separators)
    count, date, stat, err = (
        (strict_counts, strict_dates, strict_stats, strict_errs)
        if strict
        else (counts, dates, stats, errs)
    )
    parts = [
        f"id:{draw(ids)}",
        f"sub:{draw(count)}",
        f"{draw(st.sampled_from(['dlvrd', 'dlvrld', 'Dlvrd']))}:{draw(count)}",
        f"submit date:{draw(date)}",
        f"done date:{draw(date)}",
        f"stat:{draw(stat)}",
        f"err:{draw(err)}",
    ]
    text = draw(texts)
    if text is not None:
        key = draw(st.sampled_from(["text", "Text"] if strict else ["text", "Text", "TEXT"]))
        parts.append(f"{key}:{text}")
    return sep.join(parts) + draw(tails)


@given(standard_like())
@example("id:1 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVRD err:000")
@example(
    "id:\x00abc sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVRD err:0"
)
@example("id:abc\xa0 sub:1 dlvrd:1 submit date:2403151430 done date:2403151431 stat:DELIVRD err:0")
@example("id:a:b sub:1 dlvrd:1 submit date:2403151430 done date:2403151431 stat:DELIVRD err:0")
def test_fast_path_agrees_with_the_general_scanner(text: str) -> None:
    expected = outcome(lambda: general(text))
    assert outcome(lambda: parse(text)) == expected
    assert outcome(lambda: parse(text.encode("utf-8"))) == outcome(
        lambda: general(text.encode("utf-8").decode("latin-1"))
    )


@given(
    standard_like(),
    st.none() | st.sampled_from(["", "04000000086ECD50", "42"]),
    st.none() | st.sampled_from(MessageState),
    st.none() | st.just(b"\x03\x00\x01"),
)
def test_fast_path_agrees_with_tlv_values(
    text: str, message_id: str | None, state: MessageState | None, code: bytes | None
) -> None:
    fast = outcome(lambda: receipts._read(text, message_id, state, code))
    assert fast == outcome(lambda: general(text, message_id, state, code))


def test_standard_receipts_skip_the_general_scanner(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> dict[str, str]:
        raise AssertionError(f"general scanner used for {text!r}")

    monkeypatch.setattr(receipts, "_scan_keys", refuse)
    r = parse(
        "id:04000000086ECD50 sub:001 dlvrld:001 submit date:240315143059 "
        "done date:2403151431 stat:UNDELIV err:0x1F Text:hello: world\x00\r\n"
    )
    assert r == DeliveryReceipt(
        id="04000000086ECD50",
        sub=1,
        dlvrd=1,
        submit_date=datetime(2024, 3, 15, 14, 30, 59),
        done_date=datetime(2024, 3, 15, 14, 31),
        stat=ReceiptStat.UNDELIV,
        err="0x1F",
        text="hello: world",
    )


@pytest.mark.parametrize(
    "text",
    [
        # odd spacing, missing or extra fields, other spellings: the general scanner reads them
        "id:1  sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVRD err:0",
        "id:1 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVRD",
        "id:1 sub:001 dlvrd:001 submitdate:2403151430 done_date:2403151431 stat:DELIVRD err:0",
        "id:1 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:delivrd err:0",
        "id:1 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVERY "
        "UNKNOWN err:0 text:x",
        "id:1 sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVRD err:0"
        " foo:bar text:x",
        "id:ABCDEF sub:1 dlvrd:1 submit date:2403151430 done date:2403151431 stat:BOGUS err:0",
        "id:\u3000x sub:1 dlvrd:1 submit date:2403151430 done date:2403151431 stat:DELIVRD err:0",
        "sub:001 dlvrd:001 submit date:2403151430 done date:2403151431 stat:DELIVRD err:0",
    ],
)
def test_golden_cases_agree(text: str) -> None:
    assert outcome(lambda: parse(text)) == outcome(lambda: general(text))


# --- message id keys -------------------------------------------------------------------------

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_HEX = re.compile(r"[0-9a-f]+", re.ASCII)


def reference_keys(message_id: str) -> frozenset[str]:
    """message_id_keys as first written: regex tests and a set."""
    clean = message_id.strip().strip("\x00").strip().lower()
    keys = {clean}
    if len(clean) <= receipts.MAX_MESSAGE_ID_LENGTH:
        if _DIGITS.fullmatch(clean):
            keys.add(str(int(clean, 10)))
        if _HEX.fullmatch(clean):
            keys.add(str(int(clean, 16)))
    return frozenset(keys)


@given(
    st.text(st.sampled_from([*"0123456789abcdefABCDEFxz -\x00", "٣", "²", "\xa0"]))
    | st.from_regex(r"\A[0-9a-fA-F]{60,70}\Z")
    | st.text()
)
@example("")
@example("٣")
@example("0" * 64)
@example("f" * 65)
def test_message_id_keys_match_the_reference(message_id: str) -> None:
    assert receipts.message_id_keys(message_id) == reference_keys(message_id)
