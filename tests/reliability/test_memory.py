"""Memory stays bounded: a link that keeps dropping must not leave objects behind in the client.

The 1,000,000-message soak cut 413 links; a few kilobytes kept per reconnect would show there
only as a slow creep. Here 80 links are cut and the client's live objects are counted.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections import Counter
from collections.abc import Iterator

import pytest

from o2sms.client import Backoff, Client
from o2sms.simulator import Account, Simulator

pytestmark = pytest.mark.asyncio

ACCOUNT = Account("acct", "a-long-password")
ROUNDS = 20  #: fault windows; each cuts all 4 links once


def _client_objects() -> Counter[str]:
    """Live objects of o2sms's client and SMPP core and asyncio tasks, by type name."""
    gc.collect()
    counts: Counter[str] = Counter()
    for thing in gc.get_objects():
        kind = type(thing)
        module = getattr(kind, "__module__", None)  # some C types answer a descriptor here
        if not isinstance(module, str):
            continue
        if module.startswith(("o2sms.client", "o2sms.smpp")) or kind is asyncio.Task:
            counts[f"{module}.{kind.__qualname__}"] += 1
    return counts


@pytest.fixture
def quiet_client_logs() -> Iterator[None]:
    """Each cut link logs a warning per session; they are expected here."""
    logger = logging.getLogger("o2sms.client")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


@pytest.mark.usefixtures("quiet_client_logs")
async def test_reconnects_leave_no_objects_behind() -> None:
    smsc = Simulator(accounts=(ACCOUNT,), receipt_delay=0.0)
    await smsc.start()
    assert smsc.port is not None
    try:
        async with Client(
            hosts=[("127.0.0.1", smsc.port)],
            system_id=ACCOUNT.system_id,
            password=ACCOUNT.password,
            sessions=4,
            reconnect=Backoff(0.01, 0.05),
        ) as sms:

            async def consume() -> None:
                async for _ in sms.events():
                    pass

            async def burst(count: int) -> None:
                await asyncio.gather(
                    *(sms.send("+421903123456", "x", sender="Memory") for _ in range(count)),
                    return_exceptions=True,  # sends cut with their link fail; that's the point
                )

            consumer = asyncio.create_task(consume())
            await burst(50)
            await asyncio.sleep(0.5)
            before = _client_objects()
            dropped = smsc.counters["connections_dropped"]
            for _ in range(ROUNDS):
                smsc.faults.drop_after = 5
                await burst(40)
                smsc.faults.clear()
                await asyncio.sleep(0.2)
                await burst(20)
            await asyncio.sleep(0.5)
            assert smsc.counters["connections_dropped"] - dropped >= ROUNDS * 2
            after = _client_objects()
            consumer.cancel()
    finally:
        await smsc.stop()
    grown = {kind: after[kind] - before[kind] for kind in after if after[kind] > before[kind]}
    # Anything kept per reconnect would have grown by at least ROUNDS; a few objects of
    # whatever was in flight at the second count are fine.
    assert all(growth < ROUNDS for growth in grown.values()), grown
