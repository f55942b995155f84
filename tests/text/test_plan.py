"""plan(), the SMS length calculator: known answers computed by hand from the limits table."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms.text import (
    Encoding,
    MessageTooLongError,
    SplitMethod,
    UnencodableTextError,
    plan,
    split,
)


@pytest.mark.parametrize(
    ("text", "encoding", "parts", "units", "part_limit", "remaining"),
    [
        ("", Encoding.GSM7, 1, 0, 160, 160),
        ("a" * 160, Encoding.GSM7, 1, 160, 160, 0),
        ("a" * 161, Encoding.GSM7, 2, 161, 153, 145),  # 153 + 8
        ("a" * 306, Encoding.GSM7, 2, 306, 153, 0),
        ("a" * 307, Encoding.GSM7, 3, 307, 153, 152),
        ("€", Encoding.GSM7, 1, 2, 160, 158),  # an extension character costs 2 septets
        ("€" * 80, Encoding.GSM7, 1, 160, 160, 0),
        ("a" + "€" * 80, Encoding.GSM7, 2, 161, 153, 145),
        ("č" * 70, Encoding.UCS2, 1, 70, 70, 0),
        ("č" * 71, Encoding.UCS2, 2, 71, 67, 63),  # 67 + 4
        ("😀" * 35, Encoding.UCS2, 1, 70, 70, 0),  # an emoji costs 2 UTF-16 units
        ("😀" * 36, Encoding.UCS2, 2, 72, 67, 61),  # 33 emoji (66 units) + 3 (6 units)
    ],
)
def test_known_plans(
    *, text: str, encoding: Encoding, parts: int, units: int, part_limit: int, remaining: int
) -> None:
    result = plan(text)
    assert (result.encoding, result.parts, result.units, result.part_limit, result.remaining) == (
        encoding,
        parts,
        units,
        part_limit,
        remaining,
    )
    assert result.length == units
    assert result.characters == len(text)


def test_escape_pair_pushed_to_next_part_costs_a_septet() -> None:
    # 152 "a" then "€": the ESC would be septet 153 and its code septet 154, so the whole pair
    # moves to part 2, which then holds 2 + 9 = 11 septets.
    result = plan("a" * 152 + "€" + "b" * 9)
    assert (result.parts, result.units, result.remaining) == (2, 163, 153 - 11)


def test_udh16_and_latin1_limits() -> None:
    assert plan("a" * 161, split_method="udh16").part_limit == 152
    assert plan("a" * 305, split_method=SplitMethod.UDH16).parts == 3  # 152 + 152 + 1
    assert plan("á" * 140, encoding="latin1").parts == 1
    latin = plan("á" * 141, encoding="latin1")
    assert (latin.parts, latin.part_limit, latin.remaining, latin.data_coding) == (2, 134, 127, 3)
    assert plan("á" * 141, encoding="latin1", split_method="udh16").part_limit == 133


def test_sar_and_payload_are_sized_like_udh8() -> None:
    assert plan("a" * 307, split_method="sar").parts == 3
    assert plan("a" * 307, split_method="payload").parts == 3


def test_slovak_text_needs_ucs2_but_transliterated_stays_gsm() -> None:
    result = plan("Ahoj, čo robíš?")
    assert result.encoding is Encoding.UCS2
    assert result.data_coding == 8
    assert result.non_gsm == "číš"
    assert result.transliterated is not None
    assert result.transliterated.text == "Ahoj, co robis?"
    assert result.transliterated.encoding is Encoding.GSM7
    assert result.transliterated.parts == 1
    assert result.transliterated.remaining == 160 - 15


def test_transliteration_saves_parts() -> None:
    text = "č" * 100  # 2 UCS-2 parts, 1 GSM part
    result = plan(text)
    assert (result.encoding, result.parts) == (Encoding.UCS2, 2)
    assert result.transliterated is not None
    assert (result.transliterated.encoding, result.transliterated.parts) == (Encoding.GSM7, 1)
    direct = plan(text, transliterate=True)
    assert (direct.encoding, direct.parts, direct.text) == (Encoding.GSM7, 1, "c" * 100)
    assert direct.transliterated is None


def test_no_alternative_when_gsm_already_or_nothing_to_transliterate() -> None:
    assert plan("Hello").transliterated is None
    assert plan("😀").transliterated is None  # transliteration would change nothing


def test_transliterated_text_that_still_needs_ucs2() -> None:
    result = plan("čau 😀")
    assert result.transliterated is not None
    assert result.transliterated.text == "cau 😀"
    assert result.transliterated.encoding is Encoding.UCS2
    assert result.transliterated.non_gsm == "😀"


def test_forced_encoding_that_cannot_carry_the_text() -> None:
    with pytest.raises(UnencodableTextError):
        plan("č", encoding="gsm7")
    assert plan("č", encoding="gsm7", transliterate=True).text == "c"


def test_too_many_parts() -> None:
    assert plan("a" * 153 * 255).parts == 255
    with pytest.raises(MessageTooLongError, match="max_parts=255") as info:
        plan("a" * (153 * 255 + 1))
    assert info.value.max_parts == 255
    with pytest.raises(MessageTooLongError):
        plan("a" * 161, max_parts=1)


@given(
    st.text(alphabet="ab€😀č \r", max_size=700),
    st.sampled_from(list(SplitMethod)),
    st.booleans(),
    st.booleans(),
)
def test_plan_agrees_with_split(
    text: str, method: SplitMethod, translit: bool, packed: bool
) -> None:
    result = plan(text, split_method=method, transliterate=translit, packed=packed)
    parts = split(text, method=method, transliterate=translit, packed=packed)
    if method is SplitMethod.PAYLOAD:
        assert len(parts) == 1
    else:
        assert len(parts) == result.parts
    assert parts[0].data_coding == result.data_coding
    assert 0 <= result.remaining < result.part_limit or result.units == 0 or result.parts == 1


def test_plan_counts_a_packed_160_septet_text_ending_in_cr_as_two_parts() -> None:
    # Packed, its final CR needs 23.038's second CR and a 141st octet (docs/text.md): split()
    # sends two parts, and plan() must say so. Unpacked it is one SMS.
    text = "a" * 159 + "\r"
    assert plan(text, packed=True).parts == len(split(text, packed=True)) == 2
    assert plan(text).parts == len(split(text)) == 1
    assert plan("a" * 160, packed=True).parts == 1
