"""Settings of a session and of the pool, as frozen dataclasses (credentials never in repr)."""

from __future__ import annotations

from dataclasses import dataclass, field

from o2sms.smpp.state import BindType

O2_PORT = 8888
"""The O2 gateway's plain TCP port (primary and secondary hosts)."""
O2_TLS_PORT = 8887
"""The O2 gateway's TLS port."""
FLASH_SYSTEM_TYPE = "NSMS"
"""system_type that makes the O2 gateway deliver the session's messages as flash SMS."""
GATEWAY_MAX_PARTS = 25
"""The O2 gateway's limit on the parts of one long message (see docs/gateway.md)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One SMSC address; sessions rotate through the configured endpoints in order."""

    host: str
    port: int = O2_PORT
    tls: bool = False

    def __post_init__(self) -> None:
        # Checked here: out of range, connect() raises OverflowError, which no caller takes
        # for a connection failure, on every reconnect.
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be 1 to 65535, got {self.port}")


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """How TLS connections verify the SMSC: the system CAs, or ``ca_file``.

    Verification is on unless ``insecure_skip_verify`` is set, which nobody should do outside a
    test bench: it accepts any certificate for any host name.
    """

    ca_file: str | None = None
    insecure_skip_verify: bool = False
    server_hostname: str | None = None  #: name to verify when it differs from the host


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter, for reconnects and throttling."""

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.2  #: fraction of the delay added or removed at random

    def __post_init__(self) -> None:
        # Checked here so a bad Client(reconnect=...) fails at construction, not as a
        # session that reconnects in a tight loop (or never) much later.
        if not 0 <= self.initial <= self.maximum:
            raise ValueError("backoff needs 0 <= initial <= maximum")
        if self.multiplier < 1:
            raise ValueError("backoff multiplier must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must be between 0 and 1")


RECONNECT_BACKOFF = Backoff()
"""Default wait between reconnect attempts: 0.5 s doubling to 30 s, ±20%."""
SESSION_LIMIT_BACKOFF = Backoff(initial=5.0, maximum=120.0)
"""Default wait after a bind refused for the session limit: 5 s doubling to 2 min, ±20%.

Longer than the reconnect backoff: another process holds the sessions, and hammering the
gateway with binds does not free them sooner.
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """Everything one SMPP session needs to connect, bind and stay up."""

    endpoints: tuple[Endpoint, ...]
    system_id: str
    password: str = field(repr=False)
    system_type: str = ""
    bind: BindType = BindType.TRANSCEIVER
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""
    window: int = 10  #: requests outstanding at once
    response_timeout: float = 15.0  #: seconds to wait for each response
    connect_timeout: float = 10.0
    bind_timeout: float = 10.0  #: seconds from connected to the bind_resp
    unbind_timeout: float = 5.0
    #: on close, time running inbound handlers and outstanding requests get before the unbind
    close_timeout: float = 5.0
    # The O2 gateway closes links silent for 30 s; probing after 25 s keeps clear of that edge.
    enquire_link_interval: float = 25.0
    reconnect: Backoff = RECONNECT_BACKOFF
    #: backoff when the bind is refused because the account has all its sessions already
    session_limit_backoff: Backoff = SESSION_LIMIT_BACKOFF
    tls: TlsSettings = TlsSettings()
    inbound_concurrency: int = 8  #: deliver_sm handled at once before answering
    infobip: bool = True  #: read command_status codes with the O2/Infobip meanings

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("at least one endpoint is needed")
        if self.window < 1:
            raise ValueError("window must be at least 1")
        if not self.enquire_link_interval > 0:  # nan too: it never falls due
            raise ValueError("enquire_link_interval (keepalive) must be positive")
        # Checked here: with 0 every bind expires at once (a retriable error, retried for
        # ever), and no worker would ever take a deliver_sm, leaving each unanswered.
        for name in ("response_timeout", "connect_timeout", "bind_timeout"):
            if not getattr(self, name) > 0:  # not "<= 0": nan would pass that
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.inbound_concurrency < 1:
            raise ValueError("inbound_concurrency must be at least 1")
