"""Binds of every mode and every bind error path, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import struct

import pytest

from o2sms.simulator import Account, Simulator
from o2sms.smpp import (
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CommandStatus,
    EnquireLink,
    Pdu,
    SubmitSm,
    TlvTag,
    Unbind,
)
from o2sms.smpp.codec import encode
from o2sms.smpp.framer import Framer
from tests.simulator.conftest import PASSWORD
from tests.simulator.esme import HOST, Esme

S = CommandStatus


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kind", "bind_type"), [("tx", "transmitter"), ("rx", "receiver"), ("trx", "transceiver")]
)
async def test_bind_every_mode(smsc: Simulator, kind: str, bind_type: str) -> None:
    assert smsc.port is not None
    esme = await Esme.open(smsc.port)
    resp = await esme.bind(kind, "acct", PASSWORD)
    assert resp.command_status == 0
    assert isinstance(resp, BindTransmitterResp | BindReceiverResp | BindTransceiverResp)
    assert resp.system_id == "O2SIM"
    assert resp.get_tlv(TlvTag.SC_INTERFACE_VERSION) == 0x34
    (info,) = smsc.sessions()
    assert info.bind_type == bind_type
    assert info.system_id == "acct"
    await esme.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("system_id", "password", "system_type", "status"),
    [
        ("nobody", PASSWORD, "", S.ESME_RINVSYSID),
        ("acct", "wrong-password", "", S.ESME_RINVPASWD),
        ("acct", PASSWORD[:8], "", S.ESME_RINVPASWD),  # a truncated long password is wrong
        ("typed", "pw", "other", S.ESME_RINVSYSTYP),
    ],
)
async def test_bind_refused_then_closed(
    smsc: Simulator, system_id: str, password: str, system_type: str, status: int
) -> None:
    assert smsc.port is not None
    esme = await Esme.open(smsc.port)
    resp = await esme.bind("trx", system_id, password, system_type)
    assert resp.command_status == status
    await esme.wait_closed()  # the SMSC closes after a refused bind
    assert smsc.counters["binds_refused"] == 1
    await esme.close()


@pytest.mark.asyncio
async def test_allowed_system_type_and_nsms_always_allowed(smsc: Simulator) -> None:
    assert smsc.port is not None
    routed = await Esme.bound(smsc.port, system_id="typed", password="pw", system_type="r:route1")
    flash = await Esme.bound(smsc.port, system_id="typed", password="pw", system_type="NSMS")
    assert sorted(s.system_type for s in smsc.sessions()) == ["NSMS", "r:route1"]
    assert [s.flash for s in smsc.sessions() if s.system_type == "NSMS"] == [True]
    await routed.close()
    await flash.close()


@pytest.mark.asyncio
async def test_bind_beyond_session_limit_is_rbindfail_and_others_stay(smsc: Simulator) -> None:
    assert smsc.port is not None
    first = [await Esme.bound(smsc.port, kind) for kind in ("tx", "rx", "trx", "trx")]
    fifth = await Esme.open(smsc.port)
    resp = await fifth.bind("trx", "acct", PASSWORD)
    assert resp.command_status == S.ESME_RBINDFAIL
    await fifth.wait_closed()
    for esme in first:  # existing sessions unaffected
        assert (await esme.request(EnquireLink())).command_status == 0
        assert (await esme.submit()).command_status == 0 if esme is not first[1] else True
    # a freed slot can be bound again
    await first[0].request(Unbind())
    await first[0].wait_closed()
    again = await Esme.bound(smsc.port)
    for esme in [*first, again, fifth]:
        await esme.close()


@pytest.mark.asyncio
async def test_account_session_limit_overrides_default(smsc: Simulator) -> None:
    assert smsc.port is not None
    one = await Esme.bound(smsc.port, system_id="small", password="pw")
    two = await Esme.open(smsc.port)
    assert (await two.bind("tx", "small", "pw")).command_status == S.ESME_RBINDFAIL
    await one.close()
    await two.close()


@pytest.mark.asyncio
async def test_account_session_limit_zero_refuses_every_bind() -> None:
    """session_limit = 0 on an account (say, to shut it out for a while) allows no bind; it
    is not "unset", which would fall back to the default of 4."""
    async with Simulator(accounts=(Account("shut", "pw", session_limit=0),)) as smsc:
        assert smsc.port is not None
        esme = await Esme.open(smsc.port)
        assert (await esme.bind("trx", "shut", "pw")).command_status == S.ESME_RBINDFAIL
        await esme.close()


@pytest.mark.asyncio
async def test_second_bind_on_same_connection_is_ralybnd(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port)
    bind = BindTransmitter(sequence_number=0x7000_0001, system_id="acct", password=PASSWORD)
    resp = await esme.raw_request(bind, 0x7000_0001)
    assert resp.command_status == S.ESME_RALYBND
    assert (await esme.submit()).command_status == 0  # still bound
    await esme.close()


@pytest.mark.asyncio
async def test_two_binds_in_one_write_then_abort_keep_the_session_limit(smsc: Simulator) -> None:
    """A session is counted once against the account's limit, and its close frees it."""
    assert smsc.port is not None
    for _ in range(2):
        reader, writer = await asyncio.open_connection(HOST, smsc.port)
        writer.write(
            encode(BindTransceiver(sequence_number=1, system_id="acct", password=PASSWORD))
            + encode(BindTransmitter(sequence_number=2, system_id="acct", password=PASSWORD))
        )
        framer = Framer()
        answers: list[Pdu] = []
        async with asyncio.timeout(3):
            while len(answers) < 2:
                framer.feed(await reader.read(65536))
                answers.extend(framer)
        # the core answers the second bind at once, before the first one's bind_resp
        statuses = sorted((a.sequence_number, a.command_status) for a in answers)
        assert statuses == [(1, 0), (2, S.ESME_RALYBND)]
        (info,) = smsc.sessions()
        assert (info.bind_type, info.state) == ("transceiver", "bound_trx")
        writer.transport.abort()  # abrupt close, no unbind
        await smsc.wait_until(lambda: not smsc.sessions())
    full = [await Esme.bound(smsc.port, kind) for kind in ("tx", "rx", "trx", "trx")]
    assert len(smsc.sessions()) == 4
    for esme in full:
        await esme.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [
        (b"acct", b"x" * 70, S.ESME_RINVPASWD),  # over any password the codec takes
        (b"a" * 20, PASSWORD.encode(), S.ESME_RINVSYSID),  # over C(16)
    ],
    ids=["password", "system_id"],
)
async def test_bind_refused_by_the_codec_closes_like_any_refused_bind(
    smsc: Simulator, system_id: bytes, password: bytes, status: int
) -> None:
    """A bind the codec cannot take is answered, then closed, and what follows goes unheard."""
    assert smsc.port is not None
    body = system_id + b"\0" + password + b"\0" + b"\0" + bytes((0x34, 0, 0)) + b"\0"
    bad = struct.pack(">IIII", 16 + len(body), 0x00000009, 0, 1) + body
    good = encode(BindTransceiver(sequence_number=2, system_id="acct", password=PASSWORD))
    reader, writer = await asyncio.open_connection(HOST, smsc.port)
    writer.write(bad + good)
    async with asyncio.timeout(3):
        raw = await reader.read()  # to EOF: the SMSC closes
    writer.close()
    framer = Framer()
    framer.feed(raw)
    assert [(a.sequence_number, a.command_status) for a in framer] == [(1, status)]
    assert (smsc.counters["binds"], smsc.counters["binds_refused"]) == (0, 1)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("command_id", "field", "value", "status"),
    [
        # bind_transmitter 0x02, bind_receiver 0x01, bind_transceiver 0x09 (reference section 1);
        # one character over each field's maximum (system_id C(16), system_type C(13),
        # address_range C(41); password C(65), the codec's widened limit)
        (0x00000002, "system_id", "s" * 16, S.ESME_RINVSYSID),
        (0x00000001, "password", "p" * 65, S.ESME_RINVPASWD),
        (0x00000009, "system_type", "t" * 13, S.ESME_RINVSYSTYP),
        # no status of its own in SMPP 3.4: the generic bind failure
        (0x00000002, "address_range", "^" + "4" * 40, S.ESME_RBINDFAIL),
        (0x00000009, "address_range", "^" + "4" * 40, S.ESME_RBINDFAIL),
    ],
)
async def test_bind_field_over_its_maximum_gets_the_bind_resp_with_its_status(
    smsc: Simulator, command_id: int, field: str, value: str, status: int
) -> None:
    """An over-long bind field is answered by that bind's own resp, not generic_nack."""
    assert smsc.port is not None
    fields = {"system_id": "acct", "password": PASSWORD, "system_type": "", "address_range": ""}
    fields[field] = value
    body = (
        fields["system_id"].encode() + b"\0"
        + fields["password"].encode() + b"\0"
        + fields["system_type"].encode() + b"\0"
        + bytes((0x34, 1, 1))  # interface_version, addr_ton, addr_npi
        + fields["address_range"].encode() + b"\0"
    )  # fmt: skip
    bad = struct.pack(">IIII", 16 + len(body), command_id, 0, 0x1234) + body
    reader, writer = await asyncio.open_connection(HOST, smsc.port)
    writer.write(bad)
    async with asyncio.timeout(3):
        raw = await reader.read()  # to EOF: a refused bind closes the connection
    writer.close()
    # header only (16 octets): command_id with the response bit, the status, the same seq
    assert raw == struct.pack(">IIII", 16, command_id | 0x80000000, status, 0x1234)
    assert smsc.counters["binds_refused"] == 1


@pytest.mark.asyncio
async def test_bind_refused_by_the_codec_leaves_a_bound_session_bound(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port)
    body = b"acct\0" + b"x" * 70 + b"\0\0" + bytes((0x34, 0, 0)) + b"\0"
    bad = struct.pack(">IIII", 16 + len(body), 0x00000009, 0, 0x7000_0002) + body
    resp = await esme.raw_request(bad, 0x7000_0002)
    assert resp.command_status != 0
    assert (await esme.submit()).command_status == 0  # still bound, still open
    assert smsc.counters["binds_refused"] == 0


@pytest.mark.asyncio
async def test_submit_before_bind_is_rinvbndsts(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.open(smsc.port)
    submit = SubmitSm(sequence_number=7, source_addr="a", destination_addr="1")
    resp = await esme.raw_request(submit, 7)  # our own state table would refuse to send it
    assert resp.command_status == S.ESME_RINVBNDSTS
    assert (await esme.request(EnquireLink())).command_status == 0  # answered before bind too
    await esme.close()


@pytest.mark.asyncio
async def test_submit_on_receiver_is_rinvbndsts(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "rx")
    submit = SubmitSm(sequence_number=9, source_addr="a", destination_addr="1")
    resp = await esme.raw_request(submit, 9)
    assert resp.command_status == S.ESME_RINVBNDSTS
    await esme.close()


@pytest.mark.asyncio
async def test_unbind_answered_and_connection_closed(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port)
    resp = await esme.request(Unbind())
    assert resp.command_status == 0
    await esme.wait_closed()
    await smsc.wait_until(lambda: not smsc.sessions())
    await esme.close()


@pytest.mark.asyncio
async def test_requests_before_an_unbind_are_answered_before_its_unbind_resp(
    smsc: Simulator,
) -> None:
    """The submit_sm_resp of a submit_sm sent just before unbind comes before the unbind_resp.

    After unbind_resp the session is over: an ESME that stops reading there would miss the
    answer to a message the SMSC accepted, and send it again (a duplicate SMS).
    """
    assert smsc.port is not None
    reader, writer = await asyncio.open_connection(HOST, smsc.port)
    writer.write(encode(BindTransceiver(sequence_number=1, system_id="acct", password=PASSWORD)))
    submit = SubmitSm(
        sequence_number=2,
        source_addr_ton=5,
        source_addr="O2Shop",
        destination_addr="421900123456",
        short_message=b"Hello",
    )
    await asyncio.sleep(0.05)  # bound before the next read
    writer.write(
        encode(EnquireLink(sequence_number=3))
        + encode(submit)
        + encode(Unbind(sequence_number=4))
        + encode(EnquireLink(sequence_number=5))  # after the unbind: refused
    )
    async with asyncio.timeout(3):
        raw = await reader.read()  # to EOF: the SMSC closes after the unbind_resp
    writer.close()
    framer = Framer()
    framer.feed(raw)
    answers = [(a.command_id, a.sequence_number, a.command_status) for a in framer]
    assert answers == [
        (0x80000009, 1, 0),
        (0x80000015, 3, 0),
        (0x80000004, 2, 0),
        (0x80000006, 4, 0),
        (0x80000015, 5, S.ESME_RINVBNDSTS),
    ]
    assert len(smsc.messages()) == 1


@pytest.mark.asyncio
async def test_session_init_timeout_closes_unbound_connection() -> None:
    async with Simulator(session_init_timeout=0.05) as smsc:
        assert smsc.port is not None
        esme = await Esme.open(smsc.port)
        await esme.wait_closed(1.0)
        await esme.close()


@pytest.mark.asyncio
async def test_inactivity_timeout_closes_idle_session() -> None:
    from tests.simulator.conftest import ACCOUNTS

    async with Simulator(accounts=ACCOUNTS, inactivity_timeout=0.1) as smsc:
        assert smsc.port is not None
        esme = await Esme.bound(smsc.port)
        for _ in range(4):  # traffic keeps it open past the timeout
            await asyncio.sleep(0.04)
            await esme.request(EnquireLink())
        assert not esme.closed.is_set()
        await esme.wait_closed(1.0)  # then silence closes it
        await esme.close()


@pytest.mark.asyncio
async def test_shutdown_unbinds_sessions() -> None:
    from tests.simulator.conftest import ACCOUNTS

    smsc = Simulator(accounts=ACCOUNTS)
    await smsc.start()
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port)
    await smsc.stop()
    assert esme.unbound.is_set()  # the SMSC sent unbind, we answered
    await esme.wait_closed()
    await esme.close()
