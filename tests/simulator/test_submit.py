"""submit_sm validation, decoding into the store, unsupported and malformed PDUs."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime
from typing import Any

import pytest

from o2sms.simulator import Account, MessageIdFormat, Simulator, StoredMessage
from o2sms.simulator.o2_profile import Rejected, check_submit
from o2sms.simulator.store import MessageStore
from o2sms.smpp import (
    CancelSm,
    CommandStatus,
    DataSm,
    EnquireLink,
    QuerySm,
    QuerySmResp,
    SubmitSm,
    Tlv,
    TlvTag,
    encode,
)
from o2sms.text import split
from o2sms.text.udh import build_concat
from tests.simulator.conftest import ACCOUNTS, PASSWORD
from tests.simulator.esme import Esme

S = CommandStatus


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("data_coding", "payload", "encoding", "text"),
    [
        (0, b"Hello \x00 world", "gsm7", "Hello @ world"),  # GSM 03.38: 0x00 is @
        (1, b"IA5 text", "gsm7", "IA5 text"),
        (3, "Grüße".encode("latin-1"), "latin1", "Grüße"),
        (8, "Ahoj, ako sa máš? čšž".encode("utf-16-be"), "ucs2", "Ahoj, ako sa máš? čšž"),
    ],
)
async def test_accepted_and_decoded(
    smsc: Simulator, data_coding: int, payload: bytes, encoding: str, text: str
) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "tx")
    resp = await esme.submit(data_coding=data_coding, short_message=payload)
    assert resp.command_status == 0
    message_id = resp.message_id
    assert re.fullmatch(r"[0-9a-f]{16}", message_id)
    stored = smsc.message(message_id)
    assert stored is not None
    assert (stored.encoding, stored.text, stored.data_coding) == (encoding, text, data_coding)
    assert stored.system_id == "acct"
    assert stored.total == 1
    assert not stored.flash
    await esme.close()


@pytest.mark.asyncio
async def test_message_ids_unique(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "tx")
    ids = {(await esme.submit()).message_id for _ in range(50)}
    assert len(ids) == 50
    await esme.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fmt", "pattern"),
    [
        (MessageIdFormat.DECIMAL, r"[0-9]{1,20}"),
        (
            MessageIdFormat.UUID,
            r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
        ),
    ],
)
async def test_message_id_formats(fmt: MessageIdFormat, pattern: str) -> None:
    async with Simulator(accounts=ACCOUNTS, message_id_format=fmt) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "tx")
        resp = await esme.submit()
        assert re.fullmatch(pattern, resp.message_id)
        await esme.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"destination_addr": ""}, S.ESME_RINVDSTADR),
        ({"destination_addr": "42190x123"}, S.ESME_RINVDSTADR),
        # Infobip reports a bad destination TON as an invalid destination address (0x0B)
        ({"dest_addr_ton": 5, "destination_addr": "Shop"}, S.ESME_RINVDSTADR),
        ({"source_addr": ""}, S.ESME_RINVSRCADR),
        ({"source_addr": "TwelveCharsX"}, S.ESME_RINVSRCADR),  # alphanumeric over 11
        ({"source_addr_ton": 1, "source_addr": "42190A"}, S.ESME_RINVSRCADR),
        ({"data_coding": 4, "short_message": b"\x00\x01"}, S.ESME_RINVDCS),  # binary
        ({"data_coding": 0xF0}, S.ESME_RINVDCS),
        ({"data_coding": 8, "short_message": b"\x00A\x00"}, S.ESME_RINVMSGLEN),  # odd UCS-2
        ({"esm_class": 0x40, "short_message": b"\x05\x00\x03\x01"}, S.ESME_RINVESMCLASS),
        ({"esm_class": 0x04}, S.ESME_RINVESMCLASS),
        ({"registered_delivery": 0x20}, S.ESME_RINVREGDLVFLG),
        ({"registered_delivery": 0x03}, S.ESME_RINVREGDLVFLG),  # reserved: no receipt would come
        ({"registered_delivery": 0x13}, S.ESME_RINVREGDLVFLG),
        ({"priority_flag": 9}, S.ESME_RINVPRTFLG),
        ({"replace_if_present_flag": 2}, S.ESME_RINVREPFLAG),  # only 0 and 1 are defined
        ({"replace_if_present_flag": 0xFF}, S.ESME_RINVREPFLAG),
        # a canned message the gateway does not keep (it documents none): not the text sent
        ({"sm_default_msg_id": 5}, S.ESME_RINVDFTMSGID),
        ({"schedule_delivery_time": "00000001000000AR"}, S.ESME_RINVSCHED),
        ({"schedule_delivery_time": "251399000000000+"}, S.ESME_RINVSCHED),
        ({"validity_period": "200101000000000+"}, S.ESME_RINVEXPIRY),  # already past
        (
            {"schedule_delivery_time": "000000010000000R", "validity_period": "000000000100000R"},
            S.ESME_RINVEXPIRY,  # expires before it is due
        ),
        (
            {"short_message": b"", "tlvs": (Tlv(TlvTag.MESSAGE_PAYLOAD, b"x" * 4001),)},
            S.ESME_RINVMSGLEN,  # over 4000 octets
        ),
        (
            {
                "short_message": b"",
                "data_coding": 8,
                "tlvs": (Tlv(TlvTag.MESSAGE_PAYLOAD, "ab".encode("utf-16-be") * 1800),),
            },
            S.ESME_RINVMSGLEN,  # 3600 octets of UCS-2 need 27 parts
        ),
        (
            {"esm_class": 0x40, "short_message": build_concat(1, 26, 1) + b"part"},
            S.ESME_RINVMSGLEN,  # 26 parts
        ),
        (
            {"tlvs": (Tlv(TlvTag.SAR_MSG_REF_NUM, 1), Tlv(TlvTag.SAR_TOTAL_SEGMENTS, 2))},
            S.ESME_RINVOPTPARAMVAL,  # SAR incomplete
        ),
        (
            {
                "tlvs": (
                    Tlv(TlvTag.SAR_MSG_REF_NUM, 1),
                    Tlv(TlvTag.SAR_TOTAL_SEGMENTS, 2),
                    Tlv(TlvTag.SAR_SEGMENT_SEQNUM, 3),
                )
            },
            S.ESME_RINVOPTPARAMVAL,
        ),
    ],
)
async def test_rejected_with_status(smsc: Simulator, fields: dict[str, Any], status: int) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    resp = await esme.submit(**fields)
    assert resp.command_status == status
    assert smsc.messages() == []
    assert smsc.counters["submit_sm_rejected"] == 1
    assert (await esme.submit()).command_status == 0  # the session goes on
    await esme.close()


@pytest.mark.asyncio
async def test_replace_if_present_flag_0_and_1_accepted(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "tx")
    for flag in (0, 1):
        assert (await esme.submit(replace_if_present_flag=flag)).command_status == 0


@pytest.mark.asyncio
async def test_sm_length_over_254_is_rinvmsglen(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "tx")
    good = encode(SubmitSm(sequence_number=41, source_addr="a", destination_addr="421900"))
    # patch sm_length (the last octet) to 255 and append 255 octets
    frame = bytearray(good[:-1] + b"\xff" + b"x" * 255)
    struct.pack_into(">I", frame, 0, len(frame))
    resp = await esme.raw_request(bytes(frame), 41)
    assert resp.command_status == S.ESME_RINVMSGLEN
    await esme.close()


@pytest.mark.asyncio
async def test_short_message_and_payload_both_set_is_rinvmsglen(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "tx")
    # our codec refuses to encode this mistake: append the TLV to the bytes by hand
    frame = bytearray(
        encode(
            SubmitSm(
                sequence_number=42, source_addr="a", destination_addr="421900", short_message=b"hi"
            )
        )
        + struct.pack(">HH", TlvTag.MESSAGE_PAYLOAD, 1)
        + b"x"
    )
    struct.pack_into(">I", frame, 0, len(frame))
    resp = await esme.raw_request(bytes(frame), 42)
    assert resp.command_status == S.ESME_RINVMSGLEN
    await esme.close()


@pytest.mark.asyncio
async def test_long_message_by_udh_sar_and_payload(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "tx")
    text = "Dobry den, vasa objednavka bola odoslana. " * 6  # 252 characters
    ids: list[str] = []
    for method in ("udh8", "sar"):
        for part in split(text, method=method, reference=7):
            resp = await esme.submit(
                short_message=part.short_message,
                esm_class=part.esm_class,
                data_coding=part.data_coding,
                tlvs=part.tlvs,
            )
            assert resp.command_status == 0
            ids.append(resp.message_id)
    (payload,) = split(text, method="payload")
    resp = await esme.submit(short_message=b"", tlvs=payload.tlvs)
    assert resp.command_status == 0
    assert len(set(ids)) == 4  # each part has its own message_id
    long_messages = smsc.long_messages()
    assert [m.text for m in long_messages] == [text, text]
    assert [m.message_ids for m in long_messages] == [tuple(ids[:2]), tuple(ids[2:])]
    stored = smsc.message(ids[1])
    assert stored is not None
    assert (stored.scheme, stored.part, stored.total, stored.reference) == ("udh8", 2, 2, 7)
    last = smsc.messages()[-1]
    assert (last.scheme, last.text) == ("payload", text)
    await esme.close()


@pytest.mark.asyncio
async def test_flash_session_marks_messages_and_rejects_long(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx", system_type="NSMS")
    resp = await esme.submit(short_message=b"Flash!")
    assert resp.command_status == 0
    stored = smsc.message(resp.message_id)
    assert stored is not None
    assert stored.flash
    assert stored.system_type == "NSMS"
    text = "x" * 200
    udh_part = split(text)[0]
    sar_part = split(text, method="sar")[0]
    (payload,) = split(text, method="payload")
    for fields in (
        {"short_message": udh_part.short_message, "esm_class": 0x40},
        {"short_message": sar_part.short_message, "tlvs": sar_part.tlvs},
        {"short_message": b"", "tlvs": payload.tlvs},
    ):
        assert (await esme.submit(**fields)).command_status == S.ESME_RINVMSGLEN
    # a payload that fits one part is fine on flash
    short_payload = (Tlv(TlvTag.MESSAGE_PAYLOAD, b"short"),)
    assert (await esme.submit(short_message=b"", tlvs=short_payload)).command_status == 0
    await esme.close()


@pytest.mark.asyncio
async def test_a_flash_messages_receipt_comes_as_a_deliver_sm_to_a_receiving_session(
    smsc: Simulator,
) -> None:
    # Seed: "Delivery reports will be sent to you using DeliverSM PDU", for flash too; an
    # NSMS transmitter's reports go to the account's receiving sessions, as any report.
    assert smsc.port is not None
    flash = await Esme.bound(smsc.port, "tx", system_type="NSMS")
    rx = await Esme.bound(smsc.port, "rx")
    message_id = (await flash.submit(registered_delivery=1, short_message=b"Flash!")).message_id
    receipt = await rx.next_delivery()
    assert receipt.esm_class == 0x04
    assert receipt.get_tlv(TlvTag.RECEIPTED_MESSAGE_ID) == message_id
    assert " stat:DELIVRD " in receipt.short_message.decode()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("data_coding", "longest", "unit"),
    [(0, 160, b"a"), (3, 140, b"\xe9"), (8, 70, "\u00e9".encode("utf-16-be"))],
    ids=["gsm7", "latin1", "ucs2"],
)
async def test_flash_short_message_over_one_part_is_refused_like_payload(
    smsc: Simulator, data_coding: int, longest: int, unit: bytes
) -> None:
    """No long SMS on flash, also when the long text comes whole in short_message."""
    assert smsc.port is not None
    flash = await Esme.bound(smsc.port, "trx", system_type="NSMS")
    too_long = unit * (longest + 1)
    as_payload = await flash.submit(
        data_coding=data_coding,
        short_message=b"",
        tlvs=(Tlv(TlvTag.MESSAGE_PAYLOAD, too_long),),
    )
    assert as_payload.command_status == S.ESME_RINVMSGLEN
    as_short = await flash.submit(data_coding=data_coding, short_message=too_long)
    assert as_short.command_status == as_payload.command_status
    assert smsc.messages() == []
    fits = await flash.submit(data_coding=data_coding, short_message=unit * longest)
    assert fits.command_status == 0
    normal = await Esme.bound(smsc.port, "trx")  # not flash: left to the gateway to split
    unflashed = await normal.submit(data_coding=data_coding, short_message=too_long)
    assert unflashed.command_status == 0


_EMOJI = "\U0001f600".encode("utf-16-be")  # a surrogate pair: D83D DE00


def _ucs2_part(method: str, seq: int, total: int, body: bytes) -> dict[str, Any]:
    """submit_sm fields of one UCS-2 part of a long message, by UDH or by SAR TLVs."""
    if method == "udh":
        return {"esm_class": 0x40, "short_message": build_concat(0x42, total, seq) + body}
    sar = (
        Tlv(TlvTag.SAR_MSG_REF_NUM, 0x42),
        Tlv(TlvTag.SAR_TOTAL_SEGMENTS, total),
        Tlv(TlvTag.SAR_SEGMENT_SEQNUM, seq),
    )
    return {"short_message": body, "tlvs": sar}


@pytest.mark.asyncio
@pytest.mark.parametrize("method", ["udh", "sar"])
async def test_ucs2_surrogate_pair_split_over_two_parts_is_accepted(
    smsc: Simulator, method: str
) -> None:
    """Parts split by octets may cut an emoji in two; the reassembled text has it whole."""
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    first = "a".encode("utf-16-be") * 66 + _EMOJI[:2]  # ends with the high surrogate
    second = _EMOJI[2:] + "b".encode("utf-16-be")  # starts with the low one
    for seq, body in ((1, first), (2, second)):
        resp = await esme.submit(data_coding=8, **_ucs2_part(method, seq, 2, body))
        assert resp.command_status == 0, seq
    (long_message,) = smsc.long_messages()
    assert long_message.text == "a" * 66 + "\U0001f600b"
    assert [m.text for m in smsc.messages()] == ["a" * 66 + "\ufffd", "\ufffdb"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("seq", "body"),
    [
        (2, _EMOJI[:2]),  # a high surrogate ending the last part: nothing follows it
        (1, _EMOJI[2:] + b"\x00b"),  # a low surrogate opening the first part
        (1, b"\x00a" + _EMOJI[:2] + b"\x00b"),  # a lone surrogate inside a part
        (1, b"\x00a" + _EMOJI[:2] + b"\x00"),  # odd length
    ],
    ids=["high-at-end-of-last", "low-at-start-of-first", "inside", "odd-length"],
)
async def test_ucs2_lone_surrogate_away_from_a_part_boundary_is_rinvmsglen(
    smsc: Simulator, seq: int, body: bytes
) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    resp = await esme.submit(data_coding=8, **_ucs2_part("udh", seq, 2, body))
    assert resp.command_status == S.ESME_RINVMSGLEN
    single = await esme.submit(data_coding=8, short_message=_EMOJI[:2])  # not a part at all
    assert single.command_status == S.ESME_RINVMSGLEN


@pytest.mark.asyncio
async def test_unsupported_commands_get_generic_nack_rinvcmdid(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    for seq, pdu in enumerate(
        (
            QuerySm(message_id="1", source_addr="a"),
            CancelSm(message_id="1", source_addr="a", destination_addr="1"),
            DataSm(source_addr="a", destination_addr="1"),
        ),
        start=100,
    ):
        resp = await esme.raw_request(pdu.with_sequence_number(seq), seq)
        assert resp.command_id == 0x80000000
        assert resp.command_status == S.ESME_RINVCMDID
    assert (await esme.submit()).command_status == 0
    await esme.close()


@pytest.mark.asyncio
async def test_malformed_pdus_nacked_and_other_sessions_unaffected(smsc: Simulator) -> None:
    assert smsc.port is not None
    bystander = await Esme.bound(smsc.port, "trx")
    esme = await Esme.bound(smsc.port, "trx")
    unknown = struct.pack(">IIII", 16, 0x00000777, 0, 50)
    resp = await esme.raw_request(unknown, 50)
    assert (resp.command_id, resp.command_status) == (0x80000000, S.ESME_RINVCMDID)
    truncated = struct.pack(">IIII", 17, 0x00000004, 0, 51) + b"a"  # C-string without NUL
    resp = await esme.raw_request(truncated, 51)
    # well framed, body cut short: command_length too short for the PDU, so generic_nack
    # (SMPP 3.4 section 4.3.1), and the session goes on: the stream is still in sync
    assert (resp.command_id, resp.command_status) == (0x80000000, S.ESME_RINVCMDLEN)
    assert (await esme.request(EnquireLink())).command_status == 0
    # an untrustworthy command_length: generic_nack ESME_RINVCMDLEN and the connection closes
    resp = await esme.raw_request(struct.pack(">IIII", 8, 0x15, 0, 0), 0)
    assert (resp.command_id, resp.command_status) == (0x80000000, S.ESME_RINVCMDLEN)
    await esme.wait_closed()
    assert (await bystander.submit()).command_status == 0
    await esme.close()
    await bystander.close()


@pytest.mark.asyncio
async def test_query_and_cancel_when_enabled() -> None:
    async with Simulator(
        accounts=(Account("acct", PASSWORD),), accept_query_cancel=True, receipt_delay=30
    ) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port, "trx")
        message_id = (await esme.submit()).message_id
        query = await esme.request(QuerySm(message_id=message_id, source_addr="O2Shop"))
        assert query.command_status == 0
        assert isinstance(query, QuerySmResp)
        assert query.message_state == 1  # ENROUTE
        cancel = CancelSm(
            message_id=message_id,
            source_addr_ton=5,
            source_addr="O2Shop",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr="421900123456",
        )
        assert (await esme.request(cancel)).command_status == 0
        query = await esme.request(QuerySm(message_id=message_id, source_addr="O2Shop"))
        assert isinstance(query, QuerySmResp)
        assert query.message_state == 4  # DELETED
        assert (await esme.request(cancel)).command_status == S.ESME_RCANCELFAIL
        unknown = await esme.request(QuerySm(message_id="nope", source_addr="O2Shop"))
        assert unknown.command_status == S.ESME_RQUERYFAIL
        # source_addr must be the submission's, or NULL ("if not known")
        other = await esme.request(QuerySm(message_id=message_id, source_addr="Other"))
        assert other.command_status == S.ESME_RQUERYFAIL
        unknown_source = await esme.request(QuerySm(message_id=message_id))
        assert unknown_source.command_status == 0
        await esme.close()


def test_the_same_octets_are_decoded_by_each_submit_sms_data_coding() -> None:
    """check_submit remembers the last text it decoded (the submit_sm of one request carry
    the same one), but only for the same octets under the same data_coding; octets it could
    not decode are refused every time."""
    now = datetime.now(UTC)
    options: dict[str, Any] = {
        "now": now,
        "flash": False,
        "data_codings": frozenset({0, 3, 8}),
        "max_parts": 10,
        "max_payload": 64_000,
    }

    def text(short_message: bytes, data_coding: int) -> str:
        pdu = SubmitSm(
            source_addr="O2",
            destination_addr="421903123456",
            data_coding=data_coding,
            short_message=short_message,
        )
        return check_submit(pdu, **options).text

    assert text(b"Hello \x00", 0) == "Hello @"
    assert text(b"Hello \x00", 0) == "Hello @"
    assert text(b"Hello \x00", 3) == "Hello \x00"
    assert text(b"Hello \x00", 0) == "Hello @"
    assert text(b"Hell", 8) == "\u4865\u6c6c"
    for _ in range(2):
        with pytest.raises(Rejected) as refused:
            text(b"\xd8\x00", 8)  # a lone high surrogate
        assert refused.value.command_status == CommandStatus.ESME_RINVMSGLEN
    assert text(b"Hell", 8) == "\u4865\u6c6c"


def test_the_store_keeps_the_newest_in_order_and_a_message_added_again_in_its_place() -> None:
    """Bounded to ``size``, oldest forgotten first (also when a kept message_id is added
    again while full); a kept message_id added again is replaced where it is."""
    now = datetime.now(UTC)

    def message(message_id: str, text: str = "t") -> StoredMessage:
        return StoredMessage(
            message_id, "acct", "", 1, "O2", "421900123456", 0, "gsm7", text, False, "single",
            None, 1, 1, 1, "", "", None, None, now,
        )  # fmt: skip

    def kept() -> list[tuple[str, str]]:
        return [(m.message_id, m.text) for m in store.messages()]

    store = MessageStore(3)
    for message_id in "ab":
        store.add(message(message_id))
    store.add(message("a", "again"))
    assert kept() == [("a", "again"), ("b", "t")]
    store.add(message("c"))
    store.add(message("b", "full"))  # while full: "a" is forgotten first, "b" stays put
    assert kept() == [("b", "full"), ("c", "t")]
    store.add(message("d"))
    store.add(message("b", "oldest"))  # the oldest, added again while full: now the newest
    assert kept() == [("c", "t"), ("d", "t"), ("b", "oldest")]
    store.add(message("e"))
    assert kept() == [("d", "t"), ("b", "oldest"), ("e", "t")]
    assert len(store) == 3
    assert store.get("c") is None
    store.clear()
    store.add(message("f"))
    assert kept() == [("f", "t")]
