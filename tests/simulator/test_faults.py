"""Each fault switch, flipped at runtime, globally or for one account."""

from __future__ import annotations

import asyncio

import pytest

from o2sms.simulator import Simulator, server
from o2sms.simulator.faults import TokenBucket
from o2sms.smpp import BindTransmitter, CommandStatus, EnquireLink, Pdu, SubmitSm, SubmitSmResp
from o2sms.smpp.codec import decode, encode
from o2sms.smpp.framer import Framer
from tests.simulator.conftest import ACCOUNTS, PASSWORD
from tests.simulator.esme import HOST, Esme

S = CommandStatus


@pytest.mark.asyncio
async def test_latency(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "tx")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await esme.submit()
    fast = loop.time() - started
    smsc.faults.latency = 0.15
    started = loop.time()
    assert (await esme.submit()).command_status == 0
    assert loop.time() - started >= 0.15 > fast
    smsc.faults.latency = None
    started = loop.time()
    await esme.submit()
    assert loop.time() - started < 0.15


@pytest.mark.asyncio
async def test_throughput_cap_throttles(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "tx")
    smsc.faults_for("acct").max_submit_rate = 5
    futures = [esme.send(esme_submit()) for _ in range(20)]
    statuses = [(await f).command_status for f in futures]
    assert statuses.count(0) == 5
    assert statuses.count(S.ESME_RTHROTTLED) == 15
    assert smsc.counters["submit_sm_throttled"] == 15
    smsc.faults_for("acct").max_submit_rate = None
    assert (await esme.submit()).command_status == 0


def esme_submit() -> SubmitSm:
    return SubmitSm(source_addr="O2Shop", source_addr_ton=5, destination_addr="421900")


def test_token_bucket_refills() -> None:
    bucket = TokenBucket(2, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.take(0.5)  # half a second buys one token back
    assert not bucket.take(0.5)


@pytest.mark.asyncio
async def test_queue_full_burst(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "tx")
    smsc.faults.queue_full = 2
    statuses = [(await esme.submit()).command_status for _ in range(4)]
    assert statuses == [S.ESME_RMSGQFUL, S.ESME_RMSGQFUL, 0, 0]


@pytest.mark.asyncio
async def test_account_fault_overrides_global_and_spares_others(smsc: Simulator) -> None:
    assert smsc.port is not None
    acct = await Esme.bound(smsc.port, "tx")
    other = await Esme.bound(smsc.port, "tx", system_id="small", password="pw")
    smsc.faults_for("small").queue_full = 1
    assert (await acct.submit()).command_status == 0
    assert (await other.submit()).command_status == S.ESME_RMSGQFUL
    smsc.faults.queue_full = 1
    smsc.faults_for("small").queue_full = 0  # set on the account: the global burst skips it
    assert (await other.submit()).command_status == 0
    assert (await acct.submit()).command_status == S.ESME_RMSGQFUL


@pytest.mark.asyncio
async def test_withhold_responses(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "tx")
    smsc.faults.withhold_responses = True
    with pytest.raises(TimeoutError):
        await esme.submit(timeout=0.1)
    assert (await esme.request(EnquireLink())).command_status == 0  # the link itself is alive
    smsc.faults.withhold_responses = False
    assert (await esme.submit()).command_status == 0
    assert smsc.counters["submit_sm_withheld"] == 1


@pytest.mark.asyncio
async def test_drop_after_n_pdus(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    smsc.faults.drop_after = 2
    assert (await esme.submit()).command_status == 0
    assert (await esme.submit()).command_status == 0
    with pytest.raises(ConnectionResetError):
        await esme.submit()  # the third PDU goes down with the connection
    await esme.wait_closed()
    assert smsc.counters["connections_dropped"] == 1
    await smsc.wait_until(lambda: not smsc.sessions())


@pytest.mark.asyncio
async def test_random_drop(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    smsc.faults.drop_probability = 1.0
    with pytest.raises(ConnectionResetError):
        await esme.submit()
    smsc.faults.drop_probability = 0.0
    again = await Esme.bound(smsc.port, "trx")
    assert (await again.submit()).command_status == 0


@pytest.mark.asyncio
async def test_receipt_delay(smsc: Simulator) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")
    loop = asyncio.get_running_loop()
    smsc.faults_for("acct").receipt_delay = 0.2
    started = loop.time()
    await esme.submit(registered_delivery=1)
    await esme.next_delivery()
    assert loop.time() - started >= 0.2
    smsc.faults.clear()
    smsc.faults_for("acct").clear()
    started = loop.time()
    await esme.submit(registered_delivery=1)
    await esme.next_delivery()
    assert loop.time() - started < 0.2


async def _blast_under_latency(
    max_held: int, count: int, latency: float, body: int
) -> tuple[int, int, float]:
    """Bind, write ``count`` submit_sm in one go under ``latency``; (peak held, answers, s)."""
    async with Simulator(
        accounts=ACCOUNTS, max_held_output=max_held, inactivity_timeout=30.0
    ) as smsc:
        assert smsc.port is not None
        reader, writer = await asyncio.open_connection(HOST, smsc.port)
        framer = Framer()

        async def next_pdu() -> Pdu:
            while (frame := framer.next_frame()) is None:
                data = await reader.read(65536)
                assert data, "closed"
                framer.feed(data)
            return decode(frame)

        writer.write(
            encode(BindTransmitter(system_id="acct", password=PASSWORD, sequence_number=1))
        )
        assert (await next_pdu()).command_status == 0
        smsc.faults.latency = latency
        blob = b"".join(
            encode(
                SubmitSm(
                    sequence_number=2 + i,
                    source_addr="O2Shop",
                    source_addr_ton=5,
                    destination_addr="421900123456",
                    short_message=b"x" * body,
                )
            )
            for i in range(count)
        )
        peak = 0
        done = False

        async def sample() -> None:
            nonlocal peak
            while not done:
                peak = max([peak, *(s.held_octets for s in smsc.sessions())])
                await asyncio.sleep(0)

        sampler = asyncio.create_task(sample())
        loop = asyncio.get_running_loop()
        started = loop.time()
        writer.write(blob)
        answers = 0
        async with asyncio.timeout(20):
            while answers < count:
                pdu = await next_pdu()
                assert pdu.command_status == 0
                answers += 1
        elapsed = loop.time() - started
        done = True
        await sampler
        writer.close()
        await writer.wait_closed()
        return peak, answers, elapsed


@pytest.mark.asyncio
async def test_latency_held_output_is_bounded_under_a_blast() -> None:
    """A client blasting submit_sm under latency: reading pauses, the held output stays bounded.

    Past ``max_held_output`` held octets the session stops reading, so at most the answers to
    one more read are added: asyncio reads up to 256 KiB at a time, here about 1,040 submit_sm
    of 251 octets, answered with 33-octet submit_sm_resp. Without the bound the session would
    hold all 4,000 answers (132,000 octets); every one of them still arrives.
    """
    limit, count, body = 4096, 4000, 200
    submit_size = len(
        encode(
            SubmitSm(
                source_addr="O2Shop",
                source_addr_ton=5,
                destination_addr="421900123456",
                short_message=b"x" * body,
            )
        )
    )
    one_read = (256 * 1024 // submit_size + 1) * 33
    peak, answers, _ = await _blast_under_latency(limit, count, 0.1, body)
    assert answers == count
    assert limit < peak <= limit + one_read
    assert peak < count * 33 // 3


def receipt_wanted() -> SubmitSm:
    return SubmitSm(
        source_addr="O2Shop",
        source_addr_ton=5,
        destination_addr="421900123456",
        registered_delivery=1,
        short_message=b"Hello",
    )


@pytest.mark.asyncio
async def test_receipts_first_sends_the_receipt_elsewhere_and_answers_after_its_ack(
    smsc: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "RECEIPT_FIRST_HOLD", 30.0)  # only the ack releases it here
    assert smsc.port is not None
    sender = await Esme.bound(smsc.port, "trx")
    receiver = await Esme.bound(smsc.port, "rx")
    receiver.auto_ack = False
    smsc.faults.receipts_first = 1
    answer = sender.send(receipt_wanted())
    receipt = await receiver.next_delivery()  # on the other session, though sender can receive
    await asyncio.sleep(0.1)
    assert not answer.done()  # the submit_sm_resp waits for the receipt's deliver_sm_resp
    receiver.conn.send(receipt.response(), 0.0)
    receiver._flush()
    resp = await asyncio.wait_for(answer, 3)
    assert isinstance(resp, SubmitSmResp)
    assert resp.command_status == 0
    assert f"id:{resp.message_id} ".encode() in receipt.short_message
    assert smsc.counters["submit_sm_receipt_first"] == 1
    assert smsc.faults.receipts_first == 0
    # The fault is used up: the next submit is answered at once, its receipt comes later
    # (round robin: on the sender's session this time).
    later = await sender.submit(registered_delivery=1)
    assert later.command_status == 0
    again = await sender.next_delivery()
    assert f"id:{later.message_id} ".encode() in again.short_message
    assert smsc.counters["submit_sm_receipt_first"] == 1


@pytest.mark.asyncio
async def test_receipts_first_holds_the_response_briefly_for_a_client_that_waits(
    smsc: Simulator,
) -> None:
    assert smsc.port is not None
    esme = await Esme.bound(smsc.port, "trx")  # the only receiver: the receipt comes here
    esme.auto_ack = False  # as a client that answers a receipt once it can match it
    smsc.faults_for("acct").receipts_first = 1
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = esme.send(receipt_wanted())
    receipt = await esme.next_delivery()
    assert not answer.done()
    resp = await asyncio.wait_for(answer, 3)
    assert isinstance(resp, SubmitSmResp)
    assert resp.command_status == 0
    assert loop.time() - started >= server.RECEIPT_FIRST_HOLD
    assert f"id:{resp.message_id} ".encode() in receipt.short_message
    esme.conn.send(receipt.response(), 0.0)
    esme._flush()
    await smsc.wait_until(lambda: smsc.counters["receipts_acknowledged"] == 1, timeout=3)
    # Without a receipt asked for, the fault does not apply (and is not used up).
    smsc.faults_for("acct").receipts_first = 1
    assert (await esme.submit(registered_delivery=0)).command_status == 0
    assert smsc.faults_for("acct").receipts_first == 1
    assert smsc.counters["submit_sm_receipt_first"] == 1
