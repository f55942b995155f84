"""A simulator on 127.0.0.1 port 0 with short delays, for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from o2sms.simulator import Account, Simulator
from tests.simulator.esme import Esme

PASSWORD = "a-long-password"  # longer than SMPP's 8 characters, as the gateway allows

ACCOUNTS = (
    Account("acct", PASSWORD),
    Account("small", "pw", session_limit=1),
    Account("typed", "pw", system_types=frozenset({"r:route1"})),
)


@pytest_asyncio.fixture(autouse=True)
async def _close_esmes() -> AsyncIterator[None]:
    """Close every test ESME, even when the test failed half-way."""
    yield
    while Esme.open_instances:
        await Esme.open_instances.pop().close()


@pytest_asyncio.fixture
async def smsc() -> AsyncIterator[Simulator]:
    async with Simulator(
        accounts=ACCOUNTS,
        receipt_delay=0.01,
        session_init_timeout=5.0,
        inactivity_timeout=5.0,
        response_timeout=1.0,
        seed=1,
    ) as simulator:
        yield simulator
