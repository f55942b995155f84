"""o2sms, the O2 SMS Connector: SMPP 3.4 client, simulator and protocol core.

The names below are loaded when first used, so ``import o2sms.smpp`` stays free of asyncio,
sockets and phonenumbers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Client": "o2sms.client",
    "DeliveryReport": "o2sms.client",
    "InboundSms": "o2sms.client",
    "O2smsError": "o2sms.errors",
    "SendResult": "o2sms.client",
    "Simulator": "o2sms.simulator",
    "SyncClient": "o2sms.client",
}

__all__ = [
    "Client",
    "DeliveryReport",
    "InboundSms",
    "O2smsError",
    "SendResult",
    "Simulator",
    "SyncClient",
    "__version__",
]

if TYPE_CHECKING:
    from o2sms.client import Client, DeliveryReport, InboundSms, SendResult, SyncClient
    from o2sms.errors import O2smsError
    from o2sms.simulator import Simulator


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'o2sms' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
