"""Senders and destinations are classified and normalised before anything is sent."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms.client import AddressError
from o2sms.client.addresses import (
    _international_mobile,
    _is_valid,
    _parse_international,
    destination,
    international_number,
    sender,
)


@pytest.mark.parametrize(
    ("given_number", "region", "expected"),
    [
        ("+421 903 123 456", "SK", "421903123456"),
        ("0903 123 456", "SK", "421903123456"),
        ("00421903123456", "SK", "421903123456"),
        ("602 123 456", "CZ", "420602123456"),
        ("+44 20 7946 0958", "SK", "442079460958"),
        ("+39 06 1234 5678", "SK", "390612345678"),  # Italian leading zero
        # spaces of numbers formatted for print: thin, narrow no-break, no-break, figure
        ("+33\u20096\u202f12\u202f34\u202f56\u202f78", "SK", "33612345678"),
        ("0903\u2009123\u2009456", "SK", "421903123456"),
        ("+421\u00a0903\u2007123\u2007456", "SK", "421903123456"),
    ],
)
def test_destinations_become_international(given_number: str, region: str, expected: str) -> None:
    address = destination(given_number, region)
    assert (address.ton, address.npi, address.addr) == (1, 1, expected)


@pytest.mark.parametrize(
    "bad",
    ["12", "hello", "+421 123", "", "+999 123456789", "+421 903 123 456 ext. 5", "0903123456 x5"],
)
def test_bad_destinations_are_refused(bad: str) -> None:
    with pytest.raises(AddressError):
        destination(bad)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("hello", "'hello' is not a phone number"),
        ("+999 123 456", "'+999 123 456' is not a phone number (no such country code)"),
        ("+4219031234567890123456", "'+4219031234567890123456' is not a phone number (too long)"),
        ("+42 1", "'+42 1' is not a phone number (too short)"),
    ],
)
def test_a_refused_destination_says_why_in_words(bad: str, message: str) -> None:
    """The reason reads as English, without phonenumbers' internal error number."""
    with pytest.raises(AddressError) as refused:
        destination(bad)
    assert str(refused.value) == message


@given(st.integers(0, 10**12), st.sampled_from([1, 44, 420, 421, 49, 33, 39, 7, 86, 971]))
def test_fast_path_agrees_with_phonenumbers(national: int, country_code: int) -> None:
    number = f"+{country_code}{national}"
    try:
        slow = phonenumbers.format_number(phonenumbers.parse(number, "SK"), 0)
        slow_valid = phonenumbers.is_valid_number(phonenumbers.parse(number, "SK"))
    except phonenumbers.NumberParseException:
        slow_valid = False
    if slow_valid:
        assert international_number(number) == slow[1:]
    else:
        with pytest.raises(AddressError):
            international_number(number)
    fast = _parse_international(number)
    if fast is not None and phonenumbers.is_valid_number(fast):
        assert phonenumbers.format_number(fast, 0) == slow


@pytest.mark.parametrize(
    ("value", "ton", "npi", "addr"),
    [
        ("O2 Shop", 5, 0, "O2 Shop"),
        ("Infobip1234", 5, 0, "Infobip1234"),
        ("1234", 3, 0, "1234"),
        ("+421903123456", 1, 1, "421903123456"),
        ("421903123456", 1, 1, "421903123456"),
    ],
)
def test_sender_kinds(value: str, ton: int, npi: int, addr: str) -> None:
    assert sender(value) == type(sender(value))(ton, npi, addr)


def test_short_code_ton_is_configurable() -> None:
    assert sender("5555", short_code_ton=0, short_code_npi=1).ton == 0


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "Twelve chars",
        "Šimon",
        "A€€€€€€€€€€",
        "١٢٣",
        "１２３４",
        "²³",
        "+٤٢١٩٠٣١٢٣٤٥٦",
        # GSM 03.38 has them, but source_addr is Latin-1 octets: submit_sm could not carry them
        "Euro €",
        "ΔΩ Shop",
        # GSM characters too, but they would break the sender's name into lines on a handset
        "AB\nC",
        "O2\rShop",
    ],
)
def test_bad_senders_are_refused(bad: str) -> None:
    with pytest.raises(AddressError):
        sender(bad)


def test_lookups_are_cached() -> None:
    international_number.cache_clear()
    international_number("+421903123456")
    international_number("+421903123456")
    assert international_number.cache_info().hits == 1


@given(
    st.integers(10**6, 10**11), st.sampled_from([1, 44, 420, 421, 49, 33, 39, 7, 86, 971, 36, 43])
)
def test_mobile_shortcut_never_disagrees_with_phonenumbers(
    national: int, country_code: int
) -> None:
    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=national)
    assert _is_valid(number) == phonenumbers.is_valid_number(number)


@pytest.mark.parametrize(
    "number", ["+421903123456", "+420602123456", "+447911123456", "+12025550123"]
)
def test_mobile_shortcut_on_real_mobiles(number: str) -> None:
    parsed = phonenumbers.parse(number)
    assert _is_valid(parsed) is True


REGIONS = ["SK", "CZ", "AT", "DE", "HU", "PL", "GB", "US", "IT", "FR", "UA", "IN", "BR", "AE"]


@given(st.sampled_from(REGIONS), st.integers(0, 10**6), st.integers(1, 6))
def test_mobile_shortcut_agrees_near_real_mobile_numbers(
    region: str, digits: int, width: int
) -> None:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    national = str(example.national_number)
    changed = national[:-width] + f"{digits % 10**width:0{width}d}"
    number = phonenumbers.PhoneNumber(
        country_code=example.country_code,
        national_number=int(changed),
        italian_leading_zero=example.italian_leading_zero,
    )
    assert _is_valid(number) == phonenumbers.is_valid_number(number)


def _by_objects(number: str) -> str | None:
    """What international_number's phonenumbers-object path gives for a "+..." number, or None
    when that path leaves it to phonenumbers' general parser."""
    parsed = _parse_international(number)
    if parsed is None or not _is_valid(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]


ALL_REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


@given(
    st.sampled_from(ALL_REGIONS),
    st.integers(0, 10**6),
    st.integers(0, 6),
    st.sampled_from(["+{cc}{n}", "+{cc} {n}", "+0{cc}{n}", "+{cc}0{n}", "{cc}{n}", "+{cc}{n}9"]),
)
def test_string_mobile_path_agrees_with_the_object_path(
    region: str, digits: int, width: int, layout: str
) -> None:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return
    national = str(example.national_number)
    if width:
        national = national[:-width] + f"{digits % 10**width:0{width}d}"
    number = layout.format(cc=example.country_code, n=national)
    fast = _international_mobile(number)
    if fast is not None:  # None: international_number goes on to the object path
        assert fast == _by_objects(number)
        parsed = _parse_international(number)
        assert parsed is not None
        assert phonenumbers.is_valid_number(parsed)


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+421903123456", "421903123456"),
        ("+421 903 123 456", "421903123456"),
        ("+420602123456", "420602123456"),
        ("+421212345678", None),  # a Bratislava landline: phonenumbers' full check decides
        ("+12025550123", None),  # +1 has several regions
        ("+4210903123456", None),  # a national prefix after the country code
        ("+421", None),
        ("+421９03123456", None),  # not ASCII digits
        ("0903123456", None),
    ],
)
def test_string_mobile_path_golden(number: str, expected: str | None) -> None:
    assert _international_mobile(number) == expected
