"""Slovak/Czech transliteration to GSM 03.38: golden sentences and invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2sms.text import is_gsm7, transliterate


def test_slovak_pangram() -> None:
    assert transliterate(
        "Kŕdeľ šťastných ďatľov učí pri ústí Váhu mĺkveho koňa obhrýzať kôru a žrať čerstvé mäso."
    ) == (
        # é and ä are GSM 03.38 characters, so they stay.
        "Krdel stastnych datlov uci pri usti Vahu mlkveho kona obhryzat koru a zrat cerstvé mäso."
    )


def test_czech_pangram_capitals() -> None:
    assert (
        transliterate("PŘÍLIŠ ŽLUŤOUČKÝ KŮŇ ÚPĚL ĎÁBELSKÉ ÓDY")
        == "PRILIS ZLUTOUCKY KUN UPEL DABELSKÉ ODY"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("čôďľĺňŕšťýžáíóúůěř", "codllnrstyzaiouuer"),
        ("ČÔĎĽĹŇŔŠŤÝŽÁÍÓÚŮĚŘ", "CODLLNRSTYZAIOUUER"),
        ("„Ahoj“ a “hi”", '"Ahoj" a "hi"'),
        ("‚x‘ ’y’", "'x' 'y'"),
        ("a – b — c", "a - b - c"),
        ("Počkaj…", "Pockaj..."),
        ("10\u00a0000\u2009Kč\u202f!", "10 000 Kc !"),
        ("é ä ö ü Ä Ö Ü É ñ à å ø ß Ç ç Δ €", "é ä ö ü Ä Ö Ü É ñ à å ø ß Ç ç Δ €"),
        ("ǘ", "ü"),  # keeps the accents GSM has
        ("c\u030cau", "cau"),  # decomposed input is normalised first
        ("ﬁ Ａ", "fi A"),
        ("łódź", "lodz"),
    ],
)
def test_mappings(source: str, expected: str) -> None:
    assert transliterate(source) == expected


def test_characters_without_gsm_form_stay() -> None:
    # The message then still needs UCS-2, which plan() reports.
    assert transliterate("25 °C 😀 Ж") == "25 °C 😀 Ж"
    assert not is_gsm7(transliterate("25 °C"))


@given(st.text(max_size=200))
def test_idempotent(text: str) -> None:
    once = transliterate(text)
    assert transliterate(once) == once


@given(st.text(alphabet=st.characters(max_codepoint=0x2FF), max_size=200))
def test_latin_text_becomes_gsm_except_unmappable(text: str) -> None:
    result = transliterate(text)
    leftovers = {c for c in result if not is_gsm7(c)}
    # Only characters that have no GSM form at all survive, unchanged, from the input.
    assert leftovers <= set(text)
    for char in leftovers:
        assert transliterate(char) == char


@given(
    st.text(
        alphabet="@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./09:;<=>?¡AZÄÖÑÜ§¿azäöñüà^{}[]~|€",
        max_size=200,
    )
)
def test_gsm_text_is_unchanged(text: str) -> None:
    assert transliterate(text) == text
