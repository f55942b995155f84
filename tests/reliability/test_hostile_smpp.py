"""Hostile input on the SMPP side (issue 6): the simulator and the client each fed garbage.

Garbage, truncated PDUs, a command_length of 0xFFFFFFFF, a PDU of 1 MiB, a flood of
generic_nacks, responses with unknown sequence numbers, a peer that connects and never binds
and one that sends a byte at a time: the process stays up, memory stays bounded (hostile
lengths are refused on their header, before any body is buffered), the bad connection is
closed with the status SMPP defines for it, and other sessions never notice.

The simulator half keeps a well-behaved :class:`o2sms.client.Client` bound and sending (with
receipts) through every test, and checks after each one that it is still on its first
connection and still served. The client half puts a hostile SMSC first in the host list and a
healthy one second: the client must fail the pending send with a retriable error, drop the bad
link, and carry on through the healthy host. Timeouts are short so the file runs in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
import pytest_asyncio

from o2sms.client import Client, DeliveryReport, Event, SendError, Session, UnreadableResponse
from o2sms.client.connection import SmppProtocol
from o2sms.simulator import Account, Simulator
from o2sms.smpp import (
    BindTransceiver,
    BindTransceiverResp,
    CommandId,
    CommandStatus,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
)
from o2sms.smpp.codec import HEADER_SIZE, decode, encode
from o2sms.smpp.errors import PduError
from o2sms.smpp.framer import Framer
from tests.client.fake_smsc import FakeSmsc

pytestmark = pytest.mark.asyncio

HOST = "127.0.0.1"
PASSWORD = "a-long-password"
NUMBER = "+421903123456"
S = CommandStatus

SESSION_INIT_TIMEOUT = 1.0  #: the simulator closes a connection not bound by then
INACTIVITY_TIMEOUT = 1.5  #: ... and a bound one that sent no PDU for this long
BYTE_INTERVAL = 0.5  #: the slow peer's pace: "one byte a second", scaled to those timeouts
WAIT = 5.0  #: upper bound for anything to happen (a hang fails the test, never a slow run)
MIB = 1024 * 1024

HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: smsc\r\n\r\n"
TLS_CLIENT_HELLO = bytes.fromhex("16 03 01 02 00 01 00 01 fc 03 03") + bytes(64)


def header(length: int, command_id: int, sequence_number: int, status: int = 0) -> bytes:
    """A PDU header with any command_length, true or not."""
    return struct.pack(">IIII", length, command_id, status, sequence_number)


def truncated(pdu: Pdu, keep: int) -> bytes:
    """``pdu`` encoded with only ``keep`` octets of its body and a command_length that agrees.

    The frame is well delimited, so the stream stays in sync, but the body ends too early.
    """
    data = encode(pdu)
    assert keep < len(data) - HEADER_SIZE
    cut = bytearray(data[: HEADER_SIZE + keep])
    struct.pack_into(">I", cut, 0, len(cut))
    return bytes(cut)


def garbage(seed: int, size: int = 4096) -> bytes:
    """Random octets whose first word is no plausible command_length."""
    return b"\xa5" + random.Random(seed).randbytes(size - 1)


async def wait_for(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll until ``condition()`` holds (the test fails after ``timeout``)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


# --- a raw peer ---------------------------------------------------------------------------


class RawPeer:
    """A TCP connection that writes whatever it is told and decodes what comes back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.framer = Framer()
        self.sequence_number = 0

    @classmethod
    async def open(cls, port: int) -> RawPeer:
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    def send(self, pdu: Pdu) -> int:
        """Write a request with the next sequence_number; return that number."""
        self.sequence_number += 1
        self.write(encode(pdu.with_sequence_number(self.sequence_number)))
        return self.sequence_number

    async def read_pdu(self, timeout: float = WAIT) -> Pdu:
        """The next PDU from the peer (raises ConnectionResetError at EOF)."""
        async with asyncio.timeout(timeout):
            while True:
                frame = self.framer.next_frame()
                if frame is not None:
                    return decode(frame)
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionResetError("the peer closed the connection")
                self.framer.feed(data)

    async def read_until_closed(self, timeout: float = WAIT) -> list[Pdu]:
        """Every PDU the peer sends until it closes the connection."""
        pdus: list[Pdu] = []
        async with asyncio.timeout(timeout):
            while True:
                try:
                    pdus.append(await self.read_pdu(timeout))
                except (ConnectionResetError, BrokenPipeError):
                    return pdus

    async def request(self, pdu: Pdu) -> Pdu:
        """Send ``pdu`` and return its response. A receipt the SMSC routes to this session
        meanwhile (another session's, round robin) is acknowledged and passed over."""
        sequence_number = self.send(pdu)
        while True:
            response = await self.read_pdu()
            if isinstance(response, DeliverSm):
                self.write(encode(DeliverSmResp(sequence_number=response.sequence_number)))
                continue
            assert response.sequence_number == sequence_number, response
            return response

    async def bind(self, system_id: str = "other", password: str = PASSWORD) -> Pdu:
        return await self.request(BindTransceiver(system_id=system_id, password=password))

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def submit_sm(**fields: Any) -> SubmitSm:
    values: dict[str, Any] = {
        "source_addr_ton": 5,
        "source_addr": "O2Shop",
        "dest_addr_ton": 1,
        "dest_addr_npi": 1,
        "destination_addr": "421903123456",
        "short_message": b"Hello",
    }
    values.update(fields)
    return SubmitSm(**values)


# --- the simulator and a well-behaved session beside the hostile ones ---------------------


class Bystander:
    """A Client bound to the simulator, sending all the time and collecting its receipts."""

    def __init__(self, port: int) -> None:
        self.client = Client(
            HOST,
            port,
            system_id="acct",
            password=PASSWORD,
            sessions=1,
            sender="O2Shop",
            connect_timeout=2.0,
            response_timeout=2.0,
            handler=self._on_event,
        )
        self.sent = 0
        self.errors: list[SendError] = []
        self.reports: list[DeliveryReport] = []
        self.protocol: SmppProtocol | None = None
        self._task: asyncio.Task[None] | None = None

    async def _on_event(self, event: Event) -> None:
        if isinstance(event, DeliveryReport):
            self.reports.append(event)

    @property
    def session(self) -> Session:
        session = self.client.sessions[0]
        assert isinstance(session, Session)
        return session

    async def start(self) -> None:
        await self.client.start()
        self.protocol = self.session.protocol
        assert self.protocol is not None
        self._task = asyncio.create_task(self._traffic())

    async def _traffic(self) -> None:
        number = 0
        while True:
            number += 1
            try:
                await self.client.send(NUMBER, f"bystander {number}")
            except SendError as exc:
                self.errors.append(exc)
            else:
                self.sent += 1
            await asyncio.sleep(0.01)

    async def progress(self, count: int = 3) -> None:
        """Wait for ``count`` more answered submits and receipts, on the very first connection."""
        sent, reports = self.sent, len(self.reports)
        await wait_for(lambda: self.sent >= sent + count and len(self.reports) >= reports + count)
        assert not self.errors, self.errors
        assert self.session.protocol is self.protocol, "the bystander had to reconnect"

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.close()


@pytest_asyncio.fixture
async def smsc() -> AsyncIterator[Simulator]:
    async with Simulator(
        accounts=(
            Account("acct", PASSWORD, session_limit=2),
            Account("other", PASSWORD, session_limit=8),
        ),
        receipt_delay=0.01,
        session_init_timeout=SESSION_INIT_TIMEOUT,
        inactivity_timeout=INACTIVITY_TIMEOUT,
        response_timeout=1.0,
    ) as simulator:
        yield simulator


@pytest_asyncio.fixture
async def bystander(smsc: Simulator) -> AsyncIterator[Bystander]:
    """A session that must not notice anything; checked again after the test, with a new bind."""
    assert smsc.port is not None
    good = Bystander(smsc.port)
    await good.start()
    await good.progress()
    try:
        yield good
        await good.progress()
        fresh = await RawPeer.open(smsc.port)  # the simulator still takes new sessions
        try:
            assert (await fresh.bind()).command_status == 0
            assert (await fresh.request(submit_sm())).command_status == 0
        finally:
            await fresh.close()
    finally:
        await good.stop()


async def open_peer(smsc: Simulator) -> RawPeer:
    assert smsc.port is not None
    return await RawPeer.open(smsc.port)


async def bound_peer(smsc: Simulator) -> RawPeer:
    peer = await open_peer(smsc)
    assert (await peer.bind()).command_status == 0
    return peer


# --- the simulator: framing -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(HTTP_REQUEST, id="http-request"),
        pytest.param(TLS_CLIENT_HELLO, id="tls-client-hello"),
        pytest.param(garbage(6), id="random"),
        pytest.param(b"\x00\x00\x00\x05hello, smsc", id="length-below-header"),
        pytest.param(b"\x00\x00\x00\x00" * 8, id="zeros"),
    ],
)
@pytest.mark.parametrize("bound", [False, True], ids=["unbound", "bound"])
async def test_simulator_garbage_gets_rinvcmdlen_and_the_connection_is_closed(
    smsc: Simulator, bystander: Bystander, data: bytes, bound: bool
) -> None:
    peer = await (bound_peer(smsc) if bound else open_peer(smsc))
    try:
        peer.write(data)
        answers = await peer.read_until_closed()
    finally:
        await peer.close()
    # The nack echoes the sequence_number of a whole 16-octet "header", else says 0.
    sequence_number = int.from_bytes(data[12:16], "big") if len(data) >= HEADER_SIZE else 0
    assert answers == [
        GenericNack(sequence_number=sequence_number, command_status=S.ESME_RINVCMDLEN)
    ]
    await bystander.progress()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xff\xff\xff\xff", id="length-word-only"),
        pytest.param(header(0xFFFFFFFF, CommandId.SUBMIT_SM, 7), id="header"),
        pytest.param(
            header(0xFFFFFFFF, CommandId.SUBMIT_SM, 7) + bytes(1000), id="header-and-body"
        ),
    ],
)
async def test_simulator_command_length_0xffffffff_is_refused_on_its_header(
    smsc: Simulator, bystander: Bystander, data: bytes
) -> None:
    peer = await bound_peer(smsc)
    try:
        peer.write(data)
        answers = await peer.read_until_closed()
    finally:
        await peer.close()
    sequence_number = 7 if len(data) >= HEADER_SIZE else 0  # the header's, when it came whole
    assert answers == [
        GenericNack(sequence_number=sequence_number, command_status=S.ESME_RINVCMDLEN)
    ]
    await bystander.progress()


async def test_simulator_1_mib_pdu_is_refused_before_its_body_is_buffered(
    smsc: Simulator, bystander: Bystander
) -> None:
    body = encode(submit_sm())[HEADER_SIZE:]
    # Only the header and a little of the body: an SMSC buffering up to the announced length
    # would wait for the rest; refusing on the header answers at once and closes.
    peer = await bound_peer(smsc)
    try:
        peer.write(header(HEADER_SIZE + MIB, CommandId.SUBMIT_SM, 9) + body)
        answers = await peer.read_until_closed()
    finally:
        await peer.close()
    assert answers == [GenericNack(sequence_number=9, command_status=S.ESME_RINVCMDLEN)]

    # The whole MiB at once, as a hostile peer would send it.
    peer = await bound_peer(smsc)
    try:
        whole = header(HEADER_SIZE + MIB, CommandId.SUBMIT_SM, 10) + bytes(MIB)
        peer.write(whole)
        answers = await peer.read_until_closed()
    finally:
        with contextlib.suppress(ConnectionError):
            await peer.close()
    assert answers == [GenericNack(sequence_number=10, command_status=S.ESME_RINVCMDLEN)]
    await bystander.progress()


async def test_simulator_unknown_command_ids_get_rinvcmdid_and_the_session_goes_on(
    smsc: Simulator, bystander: Bystander
) -> None:
    peer = await bound_peer(smsc)
    try:
        for command_id in (0x00000777, 0x7FFFFFFF, 0x0000000A, 0x00010000):
            peer.write(header(HEADER_SIZE, command_id, 77))
            assert await peer.read_pdu() == GenericNack(
                sequence_number=77, command_status=S.ESME_RINVCMDID
            )
        # An unknown *response* is not answered (a response never is): the next answer is ours.
        peer.write(header(HEADER_SIZE, 0x80000777, 78))
        assert isinstance(await peer.request(EnquireLink()), EnquireLinkResp)
        assert (await peer.request(submit_sm())).command_status == 0
    finally:
        await peer.close()
    await bystander.progress()


async def test_simulator_truncated_pdus(smsc: Simulator, bystander: Bystander) -> None:
    # A well-delimited frame whose body ends early: its command_length is too short for the
    # PDU, so generic_nack ESME_RINVCMDLEN (SMPP 3.4 section 4.3.1); the stream is still in
    # sync, so the session goes on.
    peer = await bound_peer(smsc)
    try:
        for keep in (0, 3, 20):
            peer.write(truncated(submit_sm(sequence_number=30 + keep), keep))
            answer = await peer.read_pdu()
            assert answer == GenericNack(
                sequence_number=30 + keep, command_status=S.ESME_RINVCMDLEN
            )
        assert (await peer.request(submit_sm())).command_status == 0
    finally:
        await peer.close()

    # Half a PDU, then the peer hangs up: closed, nothing answered.
    peer = await bound_peer(smsc)
    try:
        peer.write(encode(submit_sm(sequence_number=40))[:25])
        peer.writer.write_eof()
        assert await peer.read_until_closed() == []
    finally:
        await peer.close()

    # Half a PDU, then silence: the timeouts close it (session-init unbound, inactivity bound).
    for bound in (False, True):
        peer = await (bound_peer(smsc) if bound else open_peer(smsc))
        try:
            peer.write(encode(submit_sm(sequence_number=41))[:25])
            assert await peer.read_until_closed() == []
        finally:
            await peer.close()
    await bystander.progress()


# --- the simulator: floods and unknown responses ----------------------------------------------


async def test_simulator_generic_nack_flood_is_never_answered(
    smsc: Simulator, bystander: Bystander
) -> None:
    rng = random.Random(6)
    flood = b"".join(
        encode(
            GenericNack(
                sequence_number=rng.randrange(0x7FFFFFFF),
                command_status=rng.choice((0, S.ESME_RINVCMDLEN, S.ESME_RSYSERR, 0xFFFFFFFF)),
            )
        )
        for _ in range(20_000)
    )
    for bound in (False, True):
        peer = await (bound_peer(smsc) if bound else open_peer(smsc))
        try:
            peer.write(flood)
            # Nothing answers a generic_nack: the first PDU back is the answer to this.
            assert isinstance(await peer.request(EnquireLink()), EnquireLinkResp)
            if bound:
                assert (await peer.request(submit_sm())).command_status == 0
        finally:
            await peer.close()
        await bystander.progress()


async def test_simulator_responses_with_unknown_sequence_numbers_are_dropped(
    smsc: Simulator, bystander: Bystander
) -> None:
    peer = await bound_peer(smsc)
    try:
        for response in (
            DeliverSmResp(sequence_number=4242),
            DeliverSmResp(sequence_number=0x7FFFFFFF, command_status=S.ESME_RX_T_APPN),
            EnquireLinkResp(sequence_number=99),
            SubmitSmResp(sequence_number=1, message_id="0123456789ABCDEF"),
            BindTransceiverResp(sequence_number=1, system_id="ESME"),
        ):
            peer.write(encode(response) * 100)
        assert isinstance(await peer.request(EnquireLink()), EnquireLinkResp)
        assert (await peer.request(submit_sm(registered_delivery=1))).command_status == 0
        # Receipts still flow to this session, and its real answers still count.
        receipt = await peer.read_pdu()
        assert receipt.command_id == CommandId.DELIVER_SM
        peer.write(encode(DeliverSmResp(sequence_number=receipt.sequence_number)))
        await wait_for(lambda: smsc.counters["receipts_acknowledged"] > 0)
    finally:
        await peer.close()
    await bystander.progress()


# --- the simulator: silent and slow peers ---------------------------------------------------


async def test_simulator_closes_peers_that_never_bind(
    smsc: Simulator, bystander: Bystander
) -> None:
    peers = [await open_peer(smsc) for _ in range(20)]
    try:
        results = await asyncio.gather(*(peer.read_until_closed() for peer in peers))
        assert results == [[] for _ in peers]  # closed, and nothing said
        await bystander.progress()
    finally:
        for peer in peers:
            await peer.close()
    await wait_for(lambda: all(s.system_id == "acct" for s in smsc.sessions()))


async def dribble(peer: RawPeer, data: bytes) -> int:
    """Write ``data`` one octet per BYTE_INTERVAL until the peer closes; octets written."""
    written = 0
    closed = asyncio.ensure_future(peer.read_until_closed(timeout=len(data) * BYTE_INTERVAL + WAIT))
    try:
        for octet in data:
            if closed.done():
                break
            peer.write(bytes([octet]))
            written += 1
            await asyncio.wait({closed}, timeout=BYTE_INTERVAL)
        assert await closed == [], "the slow PDU was answered"
    finally:
        closed.cancel()
    return written


@pytest.mark.parametrize("bound", [False, True], ids=["unbound", "bound"])
async def test_simulator_closes_a_peer_sending_one_byte_at_a_time(
    smsc: Simulator, bystander: Bystander, bound: bool
) -> None:
    peer = await (bound_peer(smsc) if bound else open_peer(smsc))
    try:
        pdu = (
            submit_sm(sequence_number=50)
            if bound
            else BindTransceiver(sequence_number=1, system_id="other", password=PASSWORD)
        )
        data = encode(pdu)
        written, _ = await asyncio.gather(dribble(peer, data), bystander.progress(10))
    finally:
        await peer.close()
    # Closed by the session-init or inactivity timeout, long before the PDU could complete:
    # octets trickling in are not PDUs and keep no session alive.
    assert written < len(data)


# --- the simulator: binds it must refuse ------------------------------------------------------


async def test_simulator_refuses_bad_credentials_and_binds_beyond_the_limit(
    smsc: Simulator, bystander: Bystander
) -> None:
    refusals = (
        ("acct", "wrong-password", S.ESME_RINVPASWD),
        ("acct", "", S.ESME_RINVPASWD),
        ("nobody", PASSWORD, S.ESME_RINVSYSID),
        ("acct", PASSWORD[:-1], S.ESME_RINVPASWD),
    )
    for system_id, password, status in refusals * 3:
        peer = await open_peer(smsc)
        try:
            answer = await peer.bind(system_id, password)
            assert isinstance(answer, BindTransceiverResp)
            assert answer.command_status == status
            assert await peer.read_until_closed() == []
        finally:
            await peer.close()
    await bystander.progress()

    # acct allows 2 sessions: the bystander holds one, this takes the other ...
    second = await open_peer(smsc)
    try:
        assert (await second.bind("acct")).command_status == 0
        # ... so every further bind is ESME_RBINDFAIL and closed, the bound two untouched.
        for _ in range(5):
            peer = await open_peer(smsc)
            try:
                assert (await peer.bind("acct")).command_status == S.ESME_RBINDFAIL
                assert await peer.read_until_closed() == []
            finally:
                await peer.close()
        assert (await second.request(submit_sm(registered_delivery=0))).command_status == 0
        await bystander.progress()
        assert len([s for s in smsc.sessions() if s.system_id == "acct"]) == 2
    finally:
        await second.close()


# --- the client against a hostile SMSC ------------------------------------------------------

Behaviour = Callable[["HostileSmsc", SubmitSm, asyncio.StreamWriter], Coroutine[Any, Any, None]]


class HostileSmsc:
    """An SMSC that binds the client (unless told not to), then misbehaves on each submit_sm."""

    def __init__(
        self,
        on_submit: Behaviour | None = None,
        *,
        bind: str = "ok",
        misbehave: int = 1,
    ) -> None:
        self.on_submit = on_submit
        #: "ok"; "never" (no answer); "truncated" (an undecodable answer); "nacked"
        self.bind = bind
        self.misbehave = misbehave  #: submits to misbehave on; later ones are answered
        self.mute = False  #: stop answering anything (a dribbler owns the stream)
        self.received: list[Pdu] = []
        self.connections = 0
        self.closed_by_client = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def __aenter__(self) -> HostileSmsc:
        self._server = await asyncio.start_server(self._serve, HOST, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    def nacks(self) -> list[Pdu]:
        return [p for p in self.received if p.command_id == CommandId.GENERIC_NACK]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        framer = Framer()
        tasks: set[asyncio.Task[None]] = set()
        try:
            while data := await reader.read(65536):
                framer.feed(data)
                for pdu in framer:
                    self.received.append(pdu)
                    if self.mute:
                        continue
                    if isinstance(pdu, BindTransceiver):
                        answer = pdu.response(system_id="HOSTILE")
                        if self.bind == "ok":
                            writer.write(encode(answer))
                        elif self.bind == "truncated":
                            writer.write(truncated(answer, 3))
                        elif self.bind == "nacked":
                            nack = GenericNack(
                                sequence_number=pdu.sequence_number,
                                command_status=S.ESME_RINVCMDID,
                            )
                            writer.write(encode(nack))
                    elif isinstance(pdu, EnquireLink):
                        writer.write(encode(pdu.response()))
                    elif isinstance(pdu, SubmitSm):
                        if self.on_submit is not None and self.misbehave > 0:
                            self.misbehave -= 1
                            task = asyncio.create_task(self.on_submit(self, pdu, writer))
                            tasks.add(task)
                            self._tasks.add(task)
                        else:
                            writer.write(encode(pdu.response(message_id="ABCDEF0123456789")))
            self.closed_by_client += 1
        except (ConnectionError, PduError):
            self.closed_by_client += 1
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def send_garbage(_smsc: HostileSmsc, submit: SubmitSm, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" + garbage(7))


async def send_0xffffffff(
    _smsc: HostileSmsc, submit: SubmitSm, writer: asyncio.StreamWriter
) -> None:
    writer.write(header(0xFFFFFFFF, CommandId.SUBMIT_SM_RESP, submit.sequence_number))


async def send_1_mib(_smsc: HostileSmsc, submit: SubmitSm, writer: asyncio.StreamWriter) -> None:
    length = HEADER_SIZE + MIB
    writer.write(header(length, CommandId.SUBMIT_SM_RESP, submit.sequence_number) + bytes(MIB))


async def send_half_then_hang_up(
    _smsc: HostileSmsc, submit: SubmitSm, writer: asyncio.StreamWriter
) -> None:
    writer.write(encode(submit.response(message_id="ABCDEF0123456789"))[:20])
    writer.close()


async def send_half_then_nothing(
    smsc: HostileSmsc, submit: SubmitSm, writer: asyncio.StreamWriter
) -> None:
    smsc.mute = True  # not even enquire_link_resp: the half PDU holds the stream
    writer.write(encode(submit.response(message_id="ABCDEF0123456789"))[:20])


async def send_one_byte_at_a_time(
    smsc: HostileSmsc, submit: SubmitSm, writer: asyncio.StreamWriter
) -> None:
    smsc.mute = True
    for octet in encode(submit.response(message_id="ABCDEF0123456789")):
        writer.write(bytes([octet]))
        await asyncio.sleep(BYTE_INTERVAL)


async def send_truncated_response(
    _smsc: HostileSmsc, submit: SubmitSm, writer: asyncio.StreamWriter
) -> None:
    """A well-delimited submit_sm_resp whose message_id runs into the end of the PDU."""
    writer.write(truncated(submit.response(message_id="ABCDEF0123456789"), 8))


async def flood_generic_nacks_then_answer(
    _smsc: HostileSmsc, submit: SubmitSm, writer: asyncio.StreamWriter
) -> None:
    rng = random.Random(6)
    for _ in range(10):
        writer.write(
            b"".join(
                encode(
                    GenericNack(
                        sequence_number=rng.randrange(submit.sequence_number + 1, 0x7FFFFFFF),
                        command_status=S.ESME_RINVCMDID,
                    )
                )
                for _ in range(1000)
            )
        )
        await asyncio.sleep(0)
    writer.write(encode(submit.response(message_id="ABCDEF0123456789")))


async def answer_unknown_sequence_numbers_first(
    _smsc: HostileSmsc, submit: SubmitSm, writer: asyncio.StreamWriter
) -> None:
    wrong = submit.sequence_number + 1000
    for response in (
        submit.response(message_id="1111111111111111").with_sequence_number(wrong),
        EnquireLinkResp(sequence_number=wrong + 1),
        DeliverSmResp(sequence_number=wrong + 2),
        BindTransceiverResp(sequence_number=wrong + 3, system_id="HOSTILE"),
        SubmitSmResp(sequence_number=0x7FFFFFFF, message_id="2222222222222222"),
    ):
        writer.write(encode(response) * 50)
    writer.write(encode(submit.response(message_id="ABCDEF0123456789")))


def client_for(hostile: HostileSmsc, healthy: FakeSmsc, **options: Any) -> Client:
    """One session, the hostile SMSC first and the healthy one second, short timeouts."""
    settings: dict[str, Any] = {
        "system_id": "acct",
        "password": PASSWORD,
        "sessions": 1,
        "connect_timeout": 2.0,
        "response_timeout": 0.5,
        "keepalive": 0.5,
        "retry_timeout": WAIT,
        "close_timeout": 0.5,
    }
    settings.update(options)
    return Client(hosts=[(HOST, hostile.port), (HOST, healthy.port)], **settings)


LINK_BREAKERS = [
    pytest.param(send_garbage, True, id="garbage"),
    pytest.param(send_0xffffffff, True, id="length-0xffffffff"),
    pytest.param(send_1_mib, True, id="pdu-1-mib"),
    pytest.param(send_half_then_hang_up, False, id="truncated-then-hang-up"),
    pytest.param(send_half_then_nothing, False, id="truncated-then-silence"),
    pytest.param(send_one_byte_at_a_time, False, id="one-byte-at-a-time"),
]


@pytest.mark.parametrize(("behaviour", "unframeable"), LINK_BREAKERS)
async def test_client_fails_over_from_an_smsc_that_breaks_the_stream(
    behaviour: Behaviour, unframeable: bool
) -> None:
    async with (
        HostileSmsc(behaviour) as hostile,
        FakeSmsc() as healthy,
        client_for(hostile, healthy) as sms,
    ):
        assert hostile.connections == 1  # bound to the hostile SMSC first
        with pytest.raises(SendError) as info:
            await sms.send(NUMBER, "into the storm")
        assert info.value.retriable, info.value  # the SMSC may have it: the caller decides
        # The client drops the hostile link and binds to the next host ...
        await wait_for(lambda: hostile.closed_by_client == 1 and healthy.sessions == 1)
        # ... and keeps sending there.
        for number in range(3):
            assert (await sms.send(NUMBER, f"after {number}")).message_ids
        assert [s.short_message for s in healthy.submits] == [b"after 0", b"after 1", b"after 2"]
    if unframeable:  # refused on the length word, before any body: generic_nack RINVCMDLEN
        assert [(n.command_id, n.command_status) for n in hostile.nacks()] == [
            (CommandId.GENERIC_NACK, S.ESME_RINVCMDLEN)
        ]
    else:
        assert hostile.nacks() == []


async def test_client_fails_a_send_whose_response_is_unreadable_retriably() -> None:
    async with (
        HostileSmsc(send_truncated_response) as hostile,
        FakeSmsc() as healthy,
        client_for(hostile, healthy) as sms,
    ):
        with pytest.raises(SendError) as info:
            await sms.send(NUMBER, "answer mangled")
        # The SMSC answered, so it may well have taken the message; nothing says it refused it.
        assert info.value.retriable, info.value
        assert isinstance(info.value.cause, UnreadableResponse)
        assert info.value.command_status is None
        # The stream is still in sync: the session goes on on the same link.
        assert (await sms.send(NUMBER, "answered")).message_ids == ("ABCDEF0123456789",)
        assert hostile.connections == 1
        assert healthy.bind_attempts == 0


@pytest.mark.parametrize(
    "behaviour",
    [
        pytest.param(flood_generic_nacks_then_answer, id="generic-nack-flood"),
        pytest.param(answer_unknown_sequence_numbers_first, id="unknown-sequence-numbers"),
    ],
)
async def test_client_ignores_responses_to_nothing(
    behaviour: Behaviour, caplog: pytest.LogCaptureFixture
) -> None:
    # 10,000 junk PDUs come before the answer: a loaded machine may need more than the
    # usual 0.5 s to read them, and the response timeout is not what is tested here.
    async with (
        HostileSmsc(behaviour) as hostile,
        FakeSmsc() as healthy,
        client_for(hostile, healthy, response_timeout=WAIT) as sms,
    ):
        assert (await sms.send(NUMBER, "first")).message_ids == ("ABCDEF0123456789",)
        assert (await sms.send(NUMBER, "second")).message_ids == ("ABCDEF0123456789",)
        # Nothing answered the junk, the link stayed up, the healthy host was never needed.
        assert hostile.nacks() == []
        assert hostile.connections == 1
        assert hostile.closed_by_client == 0
        assert healthy.bind_attempts == 0
    warnings = [r for r in caplog.records if "late or unsolicited" in r.getMessage()]
    # Reported, but a flood of 10,000 is not 10,000 log lines: one a second at most.
    assert 1 <= len(warnings) <= 1 + WAIT


async def no_submit_expected(
    _smsc: HostileSmsc, submit: SubmitSm, writer: asyncio.StreamWriter
) -> None:
    raise AssertionError("no submit_sm may reach an SMSC that never bound the client")


@pytest.mark.parametrize("bind", ["never", "truncated", "nacked", "one-byte-at-a-time"])
async def test_client_passes_over_an_smsc_that_never_binds_it(bind: str) -> None:
    hostile = (
        DribblingBinder()
        if bind == "one-byte-at-a-time"
        else HostileSmsc(no_submit_expected, bind=bind)
    )
    async with hostile, FakeSmsc() as healthy, client_for(hostile, healthy) as sms:
        assert (await sms.send(NUMBER, "via the healthy host")).message_ids
        await wait_for(lambda: hostile.closed_by_client >= 1)
        assert [type(p) for p in hostile.received][:1] == [BindTransceiver]
        assert not [p for p in hostile.received if isinstance(p, SubmitSm)]
        assert healthy.sessions == 1


class DribblingBinder(HostileSmsc):
    """Answers the bind one octet per BYTE_INTERVAL, and nothing else."""

    def __init__(self) -> None:
        super().__init__(no_submit_expected, bind="never")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            data = await reader.read(65536)
            framer = Framer()
            framer.feed(data)
            bind = next(iter(framer))
            self.received.append(bind)
            answer = encode(bind.response(system_id="HOSTILE"))
            reading = asyncio.ensure_future(reader.read())
            try:
                for octet in answer:
                    if reading.done():
                        break
                    writer.write(bytes([octet]))
                    await asyncio.wait({reading}, timeout=BYTE_INTERVAL)
                await reading
            finally:
                reading.cancel()
            self.closed_by_client += 1
        except ConnectionError:
            self.closed_by_client += 1
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
