"""split(): golden parts for every method, limits, pair boundaries, flash, references, round trips."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from o2sms.smpp.tlv import Tlv
from o2sms.text import (
    Encoding,
    MessageTooLongError,
    Part,
    RawPart,
    Reassembler,
    SplitMethod,
    TextError,
    UnencodableTextError,
    concat_reference,
    next_reference,
    split,
)

SAR_MSG_REF_NUM, SAR_TOTAL_SEGMENTS, SAR_SEGMENT_SEQNUM = 0x020C, 0x020E, 0x020F
MESSAGE_PAYLOAD = 0x0424
GSM_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà\x0c^{}\\[~]|€"
)


def test_single_part_has_no_udh_or_tlvs_whatever_the_method() -> None:
    for method in SplitMethod:
        assert split("hello", method=method) == [Part(b"hello", 0, 0, ())]
    assert split("a" * 160) == [Part(b"a" * 160, 0, 0, ())]
    assert split("čau") == [Part(bytes.fromhex("010D 0061 0075"), 0, 8, ())]
    assert split("") == [Part(b"", 0, 0, ())]


def test_udh8_golden() -> None:
    parts = split("a" * 161, reference=0x42)
    assert parts == [
        Part(bytes.fromhex("05 00 03 42 02 01") + b"\x61" * 153, 0x40, 0x00, ()),
        Part(bytes.fromhex("05 00 03 42 02 02") + b"\x61" * 8, 0x40, 0x00, ()),
    ]


def test_udh16_golden() -> None:
    parts = split("a" * 161, method="udh16", reference=0x1234)
    assert parts == [
        Part(bytes.fromhex("06 08 04 12 34 02 01") + b"\x61" * 152, 0x40, 0x00, ()),
        Part(bytes.fromhex("06 08 04 12 34 02 02") + b"\x61" * 9, 0x40, 0x00, ()),
    ]


def test_sar_golden() -> None:
    parts = split("a" * 161, method=SplitMethod.SAR, reference=7)
    assert parts == [
        Part(
            b"\x61" * 153,
            0,
            0,
            (Tlv(SAR_MSG_REF_NUM, 7), Tlv(SAR_TOTAL_SEGMENTS, 2), Tlv(SAR_SEGMENT_SEQNUM, 1)),
        ),
        Part(
            b"\x61" * 8,
            0,
            0,
            (Tlv(SAR_MSG_REF_NUM, 7), Tlv(SAR_TOTAL_SEGMENTS, 2), Tlv(SAR_SEGMENT_SEQNUM, 2)),
        ),
    ]


def test_sar_with_a_16_bit_reference_is_sized_like_udh16() -> None:
    parts = split("a" * 161, method="sar", reference=0x1234)
    assert [len(p.short_message) for p in parts] == [152, 9]


def test_payload_golden() -> None:
    assert split("a" * 161, method="payload") == [
        Part(b"", 0, 0, (Tlv(MESSAGE_PAYLOAD, b"\x61" * 161),))
    ]
    assert split("č" * 71, method="payload") == [
        Part(b"", 0, 8, (Tlv(MESSAGE_PAYLOAD, bytes.fromhex("010D") * 71),))
    ]


def test_ucs2_udh8_golden() -> None:
    parts = split("č" * 71, reference=9)
    assert parts[0].short_message == bytes.fromhex("05 00 03 09 02 01") + bytes.fromhex("010D") * 67
    assert parts[1].short_message == bytes.fromhex("05 00 03 09 02 02") + bytes.fromhex("010D") * 4
    assert {p.data_coding for p in parts} == {8}


def test_latin1_split() -> None:
    parts = split("á" * 141, encoding="latin1", reference=1)
    assert [len(p.short_message) - 6 for p in parts] == [134, 7]
    assert parts[0].data_coding == 3


def test_packed_udh8_golden() -> None:
    # Reference section 8: ref 0x42, part 1 of 2, text starting "hellohello":
    # 05 00 03 42 02 01 D0 65 36 FB 8D 2E B3 D9 6F ...
    parts = split("hellohello" * 17, reference=0x42, packed=True)
    assert len(parts) == 2
    first = parts[0].short_message
    assert first[:15] == bytes.fromhex("05 00 03 42 02 01 D0 65 36 FB 8D 2E B3 D9 6F")
    assert len(first) == 140  # 6 octets UDH + 153 septets with 1 fill bit = 134 octets
    assert parts[1].short_message[:6] == bytes.fromhex("05 00 03 42 02 02")
    assert len(parts[1].short_message) == 6 + 15  # 17 septets + 1 fill bit = 120 bits


def test_packed_single_part_golden() -> None:
    assert split("hellohello", packed=True) == [
        Part(bytes.fromhex("E8 32 9B FD 46 97 D9 EC 37"), 0, 0, ())
    ]
    # packed is a GSM 7-bit switch: UCS-2 is unaffected.
    assert split("č", packed=True) == [Part(bytes.fromhex("010D"), 0, 8, ())]


def test_packed_full_part_never_ends_with_cr() -> None:
    # A full packed part ends on an octet boundary, where a last CR reads as the 23.038 pad:
    # the CR moves to part 2 (only when packed).
    text = "a" * 152 + "\r" + "b" * 10
    packed = split(text, packed=True, reference=1)
    assert len(packed[0].short_message) == 140  # 152 septets + pad CR + 1 fill bit
    assert packed[1].short_message[6] == 0x1A  # part 2 opens with CR (0x0D << 1 fill bit)
    unpacked = split(text, reference=1)
    assert unpacked[0].short_message[6:] == b"\x61" * 152 + b"\r"
    reassembler = Reassembler(packed=True)
    assert reassembler.feed(_inbound(packed[0]), now=0.0) is None
    result = reassembler.feed(_inbound(packed[1]), now=0.0)
    assert result is not None
    assert result.text == text


def test_packed_160_septet_sms_ending_with_cr_is_two_exact_parts() -> None:
    # 160 septets fill 140 octets, where a final CR reads as the 23.038 pad of 159 septets:
    # exactness needs 23.038's second CR, which does not fit, so the text takes two parts.
    text = "a" * 159 + "\r"
    parts = split(text, packed=True, reference=1)
    assert len(parts) == 2
    assert all(len(p.short_message) <= 140 for p in parts)
    reassembler = Reassembler(packed=True)
    assert reassembler.feed(_inbound(parts[0]), now=0.0) is None
    result = reassembler.feed(_inbound(parts[1]), now=0.0)
    assert result is not None
    assert result.text == text
    assert len(split(text)) == 1  # unpacked, 160 septets are 160 octets: one SMS
    assert split("a" * 158 + "\r", packed=True)[0].short_message[-1] != 0  # fits, exact


def _reassemble(parts: list[Part], *, packed: bool) -> str:
    reassembler = Reassembler(packed=packed)
    results = [reassembler.feed(_inbound(part), now=0.0) for part in parts]
    assert all(r is None for r in results[:-1])
    last = results[-1]
    assert last is not None
    return last.text


@pytest.mark.parametrize("method", [SplitMethod.UDH8, SplitMethod.UDH16, SplitMethod.SAR])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("offset", range(-3, 3))
def test_cr_before_escape_pair_at_part_boundary_round_trips(
    method: SplitMethod, packed: bool, offset: int
) -> None:
    # "\r€" = CR ESC 0x65 placed around the end of part 1 (septet 153, or 152 for UDH16):
    # the ESC pair must move whole, and the CR left last must not be read as a pad CR.
    limit = 152 if method is SplitMethod.UDH16 else 153
    text = "a" * (limit - 2 + offset) + "\r€" + "b" * 20
    parts = split(text, method=method, packed=packed, reference=9)
    assert len(parts) == 2
    for part in parts:
        if packed:
            assert len(part.short_message) <= (134 if method is SplitMethod.SAR else 140)
        else:
            assert len(_body(part)) <= limit
    if not packed:
        assert _body(parts[0])[-1] != 0x1B
    assert _reassemble(parts, packed=packed) == text


def test_sar_packed_cr_before_escape_on_octet_boundary_round_trips() -> None:
    # The reviewer's case: part 1 is 151 "a" + CR = 152 septets, exactly 133 octets, so
    # 23.038's second CR is needed (and fits, in the septet the ESC pair left).
    text = "a" * 151 + "\r€" + "b" * 10
    parts = split(text, method="sar", packed=True, reference=9)
    assert [len(p.short_message) for p in parts] == [134, 11]
    assert _reassemble(parts, packed=True) == text


def test_escape_pair_on_the_boundary_moves_whole() -> None:
    text = "a" * 152 + "€" + "b" * 10  # ESC would be septet 153 of part 1
    parts = split(text, reference=1)
    assert parts[0].short_message[6:] == b"\x61" * 152
    assert parts[1].short_message[6:] == bytes.fromhex("1B 65") + b"\x62" * 10
    udh16 = split("a" * 151 + "€" + "b" * 10, method="udh16", reference=1)
    assert udh16[0].short_message[7:] == b"\x61" * 151


def test_surrogate_pair_on_the_boundary_moves_whole() -> None:
    text = "a" * 66 + "😀" + "b" * 10  # the high surrogate would be unit 67 of part 1
    parts = split(text, reference=1)
    assert parts[0].short_message[6:] == bytes.fromhex("0061") * 66
    assert parts[1].short_message[6:8] == bytes.fromhex("D83D")
    udh16 = split("a" * 65 + "😀" + "b" * 10, method="udh16", reference=1)
    assert udh16[0].short_message[7:] == bytes.fromhex("0061") * 65


def test_flash() -> None:
    assert split("hi", flash=True) == [Part(b"hi", 0, 0x10, ())]
    assert split("čau", flash=True)[0].data_coding == 0x18
    with pytest.raises(TextError, match="Latin-1"):
        split("hi", encoding="latin1", flash=True)
    with pytest.raises(MessageTooLongError, match="long flash messages are not supported"):
        split("a" * 161, flash=True)
    with pytest.raises(MessageTooLongError, match="long flash"):
        split("a" * 161, flash=True, method="payload")


def test_max_parts() -> None:
    assert len(split("a" * 153 * 255)) == 255
    with pytest.raises(MessageTooLongError, match="max_parts=255"):
        split("a" * (153 * 255 + 1))
    with pytest.raises(MessageTooLongError, match="max_parts=2"):
        split("a" * 307, max_parts=2)
    with pytest.raises(MessageTooLongError):
        split("a" * 307, max_parts=2, method="payload")
    with pytest.raises(TextError, match="max_parts"):
        split("a", max_parts=256)


def test_references_come_from_a_wrapping_counter() -> None:
    first = next_reference()
    assert next_reference() == (first + 1) % 256
    auto = [split("a" * 161)[0].short_message[3] for _ in range(3)]
    assert auto[1] == (auto[0] + 1) % 256
    assert auto[2] == (auto[0] + 2) % 256
    seen = {next_reference() for _ in range(512)}
    assert seen == set(range(256))
    wide = next_reference(ref16=True)
    assert 0 <= wide <= 0xFFFF


def test_reference_range_checked() -> None:
    with pytest.raises(TextError, match="reference"):
        split("a" * 161, reference=256)
    with pytest.raises(TextError, match="reference"):
        split("a" * 161, method="udh16", reference=65536)
    with pytest.raises(TextError, match="reference"):
        split("short", reference=-1)  # checked even when one part needs no reference


def test_transliterate_and_forced_encoding() -> None:
    assert split("čau", transliterate=True) == [Part(b"cau", 0, 0, ())]
    with pytest.raises(UnencodableTextError):
        split("čau", encoding="gsm7")
    assert split("hi", encoding=Encoding.UCS2) == [Part(bytes.fromhex("0068 0069"), 0, 8, ())]


def _inbound(part: Part) -> RawPart:
    return RawPart(
        "421900000001", "1234", part.short_message, part.esm_class, part.data_coding, part.tlvs
    )


def _body(part: Part) -> bytes:
    """The encoded text of one unpacked UDH or SAR part, header removed."""
    data = part.short_message
    if part.esm_class & 0x40:
        data = data[data[0] + 1 :]
    return data


texts = st.one_of(
    st.text(alphabet=GSM_ALPHABET, max_size=700),
    st.text(alphabet="a\r€", max_size=700),
    st.text(alphabet="a€", max_size=700),
    st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=500),
    st.text(max_size=400),  # any unicode but lone surrogates
    st.text(alphabet="a😀", max_size=400),
)


@settings(max_examples=300)
@given(
    texts,
    st.sampled_from(list(SplitMethod)),
    st.sampled_from([None, "latin1", "ucs2"]),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_split_then_reassemble(
    text: str, method: SplitMethod, encoding: str | None, packed: bool, rnd: random.Random
) -> None:
    if encoding == "latin1" and any(ord(c) > 0xFF for c in text):
        with pytest.raises(UnencodableTextError):
            split(text, encoding=encoding, method=method)
        return
    parts = split(text, encoding=encoding, method=method, packed=packed)
    order = list(range(len(parts))) + rnd.sample(range(len(parts)), k=min(len(parts), 3))
    rnd.shuffle(order)  # shuffled, with up to 3 duplicates
    reassembler = Reassembler(packed=packed)
    results = [reassembler.feed(_inbound(parts[i]), now=0.0) for i in order]
    seen: set[int] = set()
    first_complete = -1
    for n, i in enumerate(order):
        seen.add(i)
        if len(seen) == len(parts):
            first_complete = n
            break
    assert all(r is None for r in results[:first_complete])
    message = results[first_complete]
    assert message is not None
    assert message.total == len(parts)
    if parts[0].data_coding == 0:
        text = text.replace("ç", "Ç")  # GSM 03.38 has one C-cedilla: 0x09 decodes to Ç
    assert message.text == text  # exact, CRs at part and octet boundaries included
    # A duplicate arriving after completion starts a new group (a redelivery is delivered
    # again when complete, else it expires); all results are the same message.
    assert all(r.text == message.text for r in results if r is not None)
    assert len(reassembler) <= 1  # a late duplicate may start a group that will expire


@settings(max_examples=300)
@given(texts, st.sampled_from([SplitMethod.UDH8, SplitMethod.UDH16, SplitMethod.SAR]))
def test_parts_respect_limits_and_never_split_pairs(text: str, method: SplitMethod) -> None:
    parts = split(text, method=method)
    ucs2 = parts[0].data_coding == 8
    width = 2 if ucs2 else 1
    if len(parts) == 1:
        assert len(parts[0].short_message) <= (140 if ucs2 else 160)
        return
    limit = {SplitMethod.UDH8: 153, SplitMethod.UDH16: 152, SplitMethod.SAR: 153}[method]
    if ucs2:
        limit = {SplitMethod.UDH8: 67, SplitMethod.UDH16: 66, SplitMethod.SAR: 67}[method]
    for part in parts:
        body = _body(part)
        assert 0 < len(body) <= limit * width
        if ucs2:
            assert not 0xD8 <= body[-2] <= 0xDB  # no high surrogate left dangling
            assert not 0xDC <= body[0] <= 0xDF  # no low surrogate starting a part
        else:
            assert body[-1] != 0x1B  # no ESC left dangling
    udhs = [p.short_message[: p.short_message[0] + 1] for p in parts if p.esm_class & 0x40]
    assert all(len(u) == (7 if method is SplitMethod.UDH16 else 6) for u in udhs)


@settings(max_examples=300)
@given(
    st.one_of(
        st.text(alphabet=GSM_ALPHABET, min_size=150, max_size=1200),
        st.text(alphabet="a\r€", min_size=150, max_size=1200),
    ),
    st.sampled_from([SplitMethod.UDH8, SplitMethod.UDH16, SplitMethod.SAR]),
)
def test_packed_parts_fit_140_octets(text: str, method: SplitMethod) -> None:
    parts = split(text, method=method, packed=True)
    for part in parts:
        header = part.short_message[0] + 1 if part.esm_class & 0x40 else 0
        assert len(part.short_message) <= 140
        if method is SplitMethod.SAR and len(parts) > 1:
            # The SMSC adds a 6-octet UDH: the packed text must leave room for it.
            assert len(part.short_message) <= 134
        assert header in (0, 6, 7)


@pytest.mark.parametrize(
    ("method", "reference"),
    [(SplitMethod.UDH8, 0xAB), (SplitMethod.UDH16, 0x1234), (SplitMethod.SAR, 300)],
)
def test_the_concat_reference_is_read_back_from_every_part(
    method: SplitMethod, reference: int
) -> None:
    parts = split("x" * 400, method=method, reference=reference)
    assert len(parts) == 3
    assert [concat_reference(part) for part in parts] == [reference] * 3


def test_a_single_part_has_no_concat_reference() -> None:
    assert concat_reference(split("hello")[0]) is None
