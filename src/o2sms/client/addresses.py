"""Sender and destination addresses: classify, validate and normalise before anything is sent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import phonenumbers

from o2sms.client.errors import AddressError
from o2sms.fastinit import fast_init
from o2sms.smpp.constants import Npi, Ton
from o2sms.text import gsm0338

ALPHANUMERIC_MAX_SEPTETS = 11
"""An alphanumeric sender is at most 11 GSM 7-bit characters (TP-OA holds 10 octets)."""
SHORT_CODE_MAX_DIGITS = 8


@fast_init
@dataclass(frozen=True, slots=True)
class Address:
    """An address as SMPP carries it: type of number, numbering plan, digits or text."""

    ton: int
    npi: int
    addr: str


def _parse_international(number: str) -> phonenumbers.PhoneNumber | None:
    """A "+<country code><digits>" number without phonenumbers' general parser (10 µs saved).

    Country codes are prefix-free, so the first known prefix of 1 to 3 digits is the one.
    Anything else (national formats, letters, a national number starting with 0) returns None
    and goes through ``phonenumbers.parse``.
    """
    if not number.startswith("+"):
        return None
    digits = number[1:].replace(" ", "")
    if not digits.isdigit() or not digits.isascii():
        return None
    for length in (1, 2, 3):
        country_code = int(digits[:length])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = digits[length:]
            if not national or national[0] == "0":
                return None
            return phonenumbers.PhoneNumber(
                country_code=country_code, national_number=int(national)
            )
    return None


@lru_cache(maxsize=512)
def _mobile_patterns(
    region: str,
) -> tuple[re.Pattern[str], re.Pattern[str], tuple[int, ...]] | None:
    """The general and mobile number patterns of a region, from phonenumbers' metadata."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.general_desc is None or metadata.mobile is None:
        return None
    general = metadata.general_desc.national_number_pattern
    mobile = metadata.mobile.national_number_pattern
    if not general or not mobile:
        return None
    return re.compile(general), re.compile(mobile), tuple(metadata.mobile.possible_length or ())


def _is_valid(number: phonenumbers.PhoneNumber) -> bool:
    """``phonenumbers.is_valid_number``, answering mobile numbers (what SMS goes to) first.

    phonenumbers decides validity by trying up to ten number types in turn; a number that
    matches its region's general and mobile patterns is valid whatever the others say, so
    that one check settles most destinations at a fifth of the cost. Everything else gets
    the full check.
    """
    region = phonenumbers.region_code_for_number(number)
    patterns = _mobile_patterns(region) if region else None
    if patterns is not None and not number.italian_leading_zero:
        general, mobile, lengths = patterns
        national = str(number.national_number)
        if (
            (not lengths or len(national) in lengths)
            and general.fullmatch(national)
            and mobile.fullmatch(national)
        ):
            return True
    return bool(phonenumbers.is_valid_number(number))


def _international_mobile(number: str) -> str | None:
    """What ``international_number`` gives for a "+<country code><digits>" mobile number of a
    country code with one region, without phonenumbers objects; None for anything else.

    The same steps as :func:`_parse_international`, :func:`_is_valid`'s mobile check and the
    E.164 format, on strings: the national significant number of a number without a leading 0
    is its digits as written, so the E.164 form is the country code and those digits.
    """
    if not number.startswith("+"):
        return None
    digits = number[1:].replace(" ", "")
    if not digits.isdigit() or not digits.isascii():
        return None
    regions_by_code = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
    for length in (1, 2, 3):
        country_code = int(digits[:length])
        regions = regions_by_code.get(country_code)
        if regions is not None:
            break
    else:
        return None
    national = digits[length:]
    if not national or national[0] == "0" or len(regions) != 1:
        return None
    patterns = _mobile_patterns(regions[0])
    if patterns is None:
        return None
    general, mobile, lengths = patterns
    if (
        (not lengths or len(national) in lengths)
        and general.fullmatch(national)
        and mobile.fullmatch(national)
    ):
        return f"{country_code}{national}"
    return None


_PARSE_ERRORS: Final = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: " (no such country code)",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: " (too short)",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: " (too short)",
    phonenumbers.NumberParseException.TOO_LONG: " (too long)",
}
"""Why phonenumbers could not read a number, in words (its own text names its internals)."""


_SPACES: Final = str.maketrans(
    dict.fromkeys(
        "\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f", " "
    )
)
"""Unicode's space separators phonenumbers does not take, as a plain space: the thin and
narrow no-break spaces of numbers formatted for print (French locales write ``+33 6 12 34
56 78`` with U+202F) and pasted into a request."""


@lru_cache(maxsize=65_536)
def international_number(number: str, region: str = "SK") -> str:
    """``number`` in international format without '+', validated with phonenumbers.

    National numbers are read in ``region`` (``0903 123 456`` in SK is ``421903123456``).
    Raises AddressError for anything that is not a valid phone number.
    """
    if not number.isascii():
        number = number.translate(_SPACES)
    mobile = _international_mobile(number)  # most destinations, at a third of the cost
    if mobile is not None:
        return mobile
    parsed = _parse_international(number)
    if parsed is not None and _is_valid(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
    # The general parser also strips national prefixes written after the country code.
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException as exc:
        why = _PARSE_ERRORS.get(exc.error_type, "")
        raise AddressError(f"{number!r} is not a phone number{why}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise AddressError(f"{number!r} is not a valid phone number (region {region})")
    if parsed.extension:  # an SMS reaches the number, never an extension behind it
        raise AddressError(
            f"{number!r} has an extension ({parsed.extension}), which SMS cannot reach"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]


def known_region(region: str) -> str:
    """``region`` in upper case, once phonenumbers knows it; ValueError for anything else
    (national numbers could not be read: "UK" is GB)."""
    code = region.strip().upper() if isinstance(region, str) else region
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"{region!r} is not a country's ISO 3166 code (SK, CZ, GB...) to read national "
            "numbers in"
        )
    return code


_INTERNATIONAL: Final = Ton.INTERNATIONAL  # members off their class are slow on Python 3.11
_ISDN: Final = Npi.ISDN


def destination(number: str, region: str = "SK") -> Address:
    """A destination: always an international number, TON 1 NPI 1."""
    if type(number) is not str and not isinstance(number, str):
        raise not_a_string("the phone number", number, "'+421903123456'")
    return Address(_INTERNATIONAL, _ISDN, international_number(number.strip(), region))


def not_a_string(what: str, value: object, example: str) -> AddressError:
    """The error for an address given as something else than a str (an int loses its '+')."""
    return AddressError(
        f"{what} must be a string such as {example}, not {type(value).__name__} {value!r:.40}"
    )


@lru_cache(maxsize=1024)
def sender(
    value: str,
    *,
    region: str = "SK",
    short_code_ton: int = Ton.NETWORK_SPECIFIC,
    short_code_npi: int = Npi.UNKNOWN,
) -> Address:
    """Classify a sender: alphanumeric (TON 5), short code (TON 3 by default) or international.

    Operators differ on short codes, hence the configurable TON/NPI.
    """
    text = value.strip()
    if not text:
        raise AddressError("the sender is empty")
    digits = text[1:] if text.startswith("+") else text
    if not (digits.replace(" ", "").isdigit() and digits.isascii()):  # not "١٢٣" or "²³"
        if not gsm0338.is_encodable(text):
            raise AddressError(f"alphanumeric sender {text!r} has characters outside GSM 03.38")
        if not text.isprintable():  # GSM has LF and CR, but a sender name has no lines
            raise AddressError(f"alphanumeric sender {text!r} has a control character")
        # source_addr is a C-Octet String, Latin-1 on the wire: GSM's Greek letters and the
        # euro sign have no octet there, and submit_sm could not be encoded at all.
        beyond = next((ch for ch in text if ord(ch) > 0xFF), None)
        if beyond is not None:
            raise AddressError(
                f"alphanumeric sender {text!r} has {beyond!r}, which the SMPP source address "
                "(Latin-1) cannot carry"
            )
        if gsm0338.septet_count(text) > ALPHANUMERIC_MAX_SEPTETS:
            raise AddressError(
                f"alphanumeric sender {text!r} is longer than {ALPHANUMERIC_MAX_SEPTETS} characters"
            )
        return Address(Ton.ALPHANUMERIC, Npi.UNKNOWN, text)
    digits = digits.replace(" ", "")
    if not text.startswith("+") and len(digits) <= SHORT_CODE_MAX_DIGITS:
        return Address(short_code_ton, short_code_npi, digits)
    return Address(Ton.INTERNATIONAL, Npi.ISDN, international_number(text, region))
