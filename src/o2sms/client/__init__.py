"""asyncio SMPP client: sessions, the pool, and the send/events API (with a blocking facade)."""

from o2sms.client.api import Client, Resume, SendError, SendResult, session_kinds
from o2sms.client.config import Backoff, Endpoint, SessionConfig, TlsSettings
from o2sms.client.errors import (
    AddressError,
    BindConfigError,
    BindError,
    ClientClosedError,
    ClientError,
    ConnectError,
    ConnectionLost,
    EventNotConfirmedError,
    NotSentError,
    ResponseTimeout,
    SubmitError,
    UnreadableResponse,
)
from o2sms.client.events import DeliveryReport, Event, InboundSms, UnreadableDeliverSm
from o2sms.client.pool import Pool, RateLimiter, assign
from o2sms.client.session import Session, SessionStatus
from o2sms.client.sync import SyncClient

__all__ = [
    "AddressError",
    "Backoff",
    "BindConfigError",
    "BindError",
    "Client",
    "ClientClosedError",
    "ClientError",
    "ConnectError",
    "ConnectionLost",
    "DeliveryReport",
    "Endpoint",
    "Event",
    "EventNotConfirmedError",
    "InboundSms",
    "NotSentError",
    "Pool",
    "RateLimiter",
    "ResponseTimeout",
    "Resume",
    "SendError",
    "SendResult",
    "Session",
    "SessionConfig",
    "SessionStatus",
    "SubmitError",
    "SyncClient",
    "TlsSettings",
    "UnreadableDeliverSm",
    "UnreadableResponse",
    "assign",
    "session_kinds",
]
