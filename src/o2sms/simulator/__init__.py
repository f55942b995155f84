"""An SMPP 3.4 SMSC that behaves like the O2 (Infobip) gateway, for tests and load tests.

>>> from o2sms.simulator import Account, Simulator
>>> async def demo() -> None:
...     async with Simulator(accounts=(Account("acct", "secret"),)) as smsc:
...         print(smsc.port)  # bind an ESME to 127.0.0.1:smsc.port

Accounts with session limits, receipts over every receiving session, scheduled and flash
messages, inbound SMS, fault injection and inspection; see ``docs/simulator.md``.
"""

from o2sms.simulator.config import (
    Account,
    MessageIdFormat,
    OutcomeRule,
    SimulatorConfig,
    load_config,
    parse_account,
)
from o2sms.simulator.faults import Faults
from o2sms.simulator.o2_profile import BIND_LIMIT_STATUS, FLASH_SYSTEM_TYPE
from o2sms.simulator.server import COUNTERS, SessionInfo, Simulator
from o2sms.simulator.store import LongMessage, StoredMessage

__all__ = [
    "BIND_LIMIT_STATUS",
    "COUNTERS",
    "FLASH_SYSTEM_TYPE",
    "Account",
    "Faults",
    "LongMessage",
    "MessageIdFormat",
    "OutcomeRule",
    "SessionInfo",
    "Simulator",
    "SimulatorConfig",
    "StoredMessage",
    "load_config",
    "parse_account",
]
