"""Each fault switch, flipped at runtime, globally or for one account."""

from __future__ import annotations

import asyncio

import pytest

from o2sms.simulator import Simulator
from o2sms.simulator.faults import TokenBucket
from o2sms.smpp import CommandStatus, EnquireLink, SubmitSm
from tests.simulator.esme import Esme

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
