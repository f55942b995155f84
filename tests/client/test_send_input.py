"""Bad input to ``Client.send`` is refused before anything reaches the SMSC, in words."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from o2sms.client import AddressError, Client, Resume
from o2sms.smpp.times import SmppTimeError
from o2sms.text import TextError
from tests.client.fake_smsc import FakeSmsc, client

pytestmark = pytest.mark.asyncio

NUMBER = "+421 903 123 456"


@pytest.mark.parametrize("split_method", ["udh8", "sar", "payload"])
async def test_an_empty_text_is_refused_not_sent_as_an_empty_sms(split_method: str) -> None:
    async with FakeSmsc() as smsc, client(smsc, split_method=split_method) as sms:
        with pytest.raises(TextError, match="the text is empty"):
            await sms.send(NUMBER, "")
    assert smsc.submits == []


async def test_a_text_transliteration_empties_is_refused() -> None:
    # U+00AD (soft hyphen) is dropped by transliteration: nothing would be left to send
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(TextError, match="empty once transliterated"):
            await sms.send(NUMBER, "\u00ad\u00ad", transliterate=True)
        result = await sms.send(NUMBER, "\u00ad", transliterate=False)  # UCS-2, one character
    assert result.parts == 1
    assert [s.short_message for s in smsc.submits] == [b"\x00\xad"]


@pytest.mark.parametrize("encoding", [None, "ucs2", "latin1"])
async def test_a_nul_character_is_refused_not_sent(encoding: str | None) -> None:
    # GSM 03.38 lacks U+0000, so it went out as UCS-2 0x0000 (or Latin-1 0x00): no handset
    # shows it
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(TextError, match=r"NUL character \(U\+0000\)"):
            await sms.send(NUMBER, "code\x001234", encoding=encoding)
    assert smsc.submits == []


@pytest.mark.parametrize("to", [421903123456, None, b"+421903123456"])
async def test_a_number_that_is_not_a_string_is_refused_in_words(to: Any) -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(AddressError, match="must be a string"):
            await sms.send(to, "x")
    assert smsc.submits == []


@pytest.mark.parametrize("sender", [421903123456, b"O2 Shop", ["O2 Shop"]])
async def test_a_sender_that_is_not_a_string_is_refused_in_words(sender: Any) -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(AddressError, match="must be a string"):
            await sms.send(NUMBER, "x", sender=sender)
    assert smsc.submits == []


@pytest.mark.parametrize("text", [None, b"hello", 42, ["hello"]])
async def test_a_text_that_is_not_a_string_is_refused_in_words(text: Any) -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(TextError, match="the text must be a string"):
            await sms.send(NUMBER, text)
    assert smsc.submits == []


@pytest.mark.parametrize("reference", [42, b"order-42"])
async def test_a_reference_that_is_not_a_string_is_refused(reference: Any) -> None:
    # it would come back in every DeliveryReport, far from the send that set it
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(ValueError, match="reference must be a string"):
            await sms.send(NUMBER, "x", reference=reference)
    assert smsc.submits == []


@pytest.mark.parametrize("retry_timeout", [math.nan, -1.0, "5"])
async def test_a_retry_timeout_that_is_no_time_is_refused(retry_timeout: Any) -> None:
    # NaN compared false with every deadline: the part was retried for ever
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(ValueError, match="retry_timeout must be"):
            await sms.send(NUMBER, "x", retry_timeout=retry_timeout)
    assert smsc.submits == []
    with pytest.raises(ValueError, match="retry_timeout must be"):
        Client("127.0.0.1", 2775, retry_timeout=retry_timeout)


@pytest.mark.parametrize("field", ["schedule", "validity"])
@pytest.mark.parametrize("value", [3600, 3600.0, "PT1H", "2030-01-01T00:00:00Z"])
async def test_a_schedule_or_validity_that_is_no_time_is_refused_in_words(
    field: str, value: Any
) -> None:
    # compared with timedelta(0), these failed with "'<=' not supported between ..."
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(
            ValueError, match=f"{field} must be a timedelta or a timezone-aware datetime"
        ):
            await sms.send(NUMBER, "x", **{field: value})
    assert smsc.submits == []


@pytest.mark.parametrize("field", ["schedule", "validity"])
async def test_a_time_at_the_end_of_the_calendar_is_refused_in_words(field: str) -> None:
    # in UTC these fall outside year 1..9999: astimezone raised OverflowError
    early: Any = datetime.min.replace(tzinfo=timezone(timedelta(hours=1)))
    late: Any = datetime.max.replace(tzinfo=timezone(timedelta(hours=-1)))
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(ValueError, match=f"{field} is in the past"):
            await sms.send(NUMBER, "x", **{field: early})
        with pytest.raises(SmppTimeError, match=f"{field} is .* days ahead"):
            await sms.send(NUMBER, "x", **{field: late})
    assert smsc.submits == []


async def test_a_validity_under_a_second_is_refused_not_sent_as_zero() -> None:
    # a relative time counts whole seconds: it went out as validity 000000000000000R
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(ValueError, match="validity is under a second"):
            await sms.send(NUMBER, "x", validity=timedelta(milliseconds=999))
        await sms.send(NUMBER, "x", validity=timedelta(seconds=1))
        await sms.send(NUMBER, "x", schedule=timedelta(milliseconds=500))  # now: allowed
    assert [(s.validity_period, s.schedule_delivery_time) for s in smsc.submits] == [
        ("000000000001000R", ""),
        ("", "000000000000000R"),
    ]


async def test_a_resume_of_no_parts_whose_reference_does_not_fit_sends_the_text_anew() -> None:
    # the split failed on the reference (300 > 255 for udh8), left no parts, and a resume of
    # no parts matched them: IndexError
    async with FakeSmsc() as smsc, client(smsc) as sms:
        result = await sms.send(NUMBER, "x", resume=Resume(300, ()))
    assert result.parts == 1
    assert [s.short_message for s in smsc.submits] == [b"x"]


async def test_a_resume_that_is_not_a_resume_is_refused_in_words() -> None:
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(ValueError, match="resume must be a Resume"):
            await sms.send(NUMBER, "x", resume=(5, (None,)))  # type: ignore[arg-type]
    assert smsc.submits == []


@pytest.mark.parametrize("encoding", ["gsm7", "latin1"])
async def test_a_lone_surrogate_in_a_forced_encoding_is_named_not_sent_to_ucs2(
    encoding: str,
) -> None:
    # the error said "use UCS-2", which refuses a lone surrogate too
    async with FakeSmsc() as smsc, client(smsc) as sms:
        with pytest.raises(TextError, match="lone UTF-16 surrogate") as raised:
            await sms.send(NUMBER, "broken \ud83d text", encoding=encoding)
    assert "UCS-2" not in str(raised.value)
    assert smsc.submits == []


@pytest.mark.parametrize("region", ["UK", "", "XX"])
async def test_an_unknown_region_is_refused_when_the_client_is_made(region: str) -> None:
    # every national number then failed at send() with "(no such country code)"
    with pytest.raises(ValueError, match="is not a country's ISO 3166 code"):
        Client("127.0.0.1", 2775, region=region)


async def test_a_region_in_lower_case_reads_national_numbers() -> None:
    async with FakeSmsc() as smsc, client(smsc, region="sk") as sms:
        result = await sms.send("0903 123 456", "x")
    assert result.to == "421903123456"
    assert [s.destination_addr for s in smsc.submits] == ["421903123456"]


@pytest.mark.parametrize(
    ("option", "value"),
    [("short_code_ton", 300), ("short_code_ton", -1), ("short_code_npi", "0")],
)
async def test_a_short_code_ton_or_npi_that_is_no_octet_is_refused_when_the_client_is_made(
    option: str, value: Any
) -> None:
    # it failed at the first send from a short code: "cannot encode SubmitSm: ubyte format
    # requires 0 <= number <= 255"
    with pytest.raises(ValueError, match=f"{option} must be 0..255"):
        Client("127.0.0.1", 2775, **{option: value})


@pytest.mark.parametrize("max_parts", ["25", 2.5, True])
async def test_a_max_parts_that_is_not_a_count_is_refused_in_words(max_parts: Any) -> None:
    with pytest.raises(ValueError, match=r"max_parts must be 1\.\.255"):
        Client("127.0.0.1", 2775, max_parts=max_parts)
