"""What a simulated SMSC is: its accounts, outcome rules, limits and timers (frozen values).

A :class:`SimulatorConfig` is built in Python (tests), from CLI options, or from a TOML or
JSON file with the same field names (:func:`load_config`)::

    port = 2775
    receipt_delay = 0.5
    [[accounts]]
    system_id = "acct"
    password = "a-password-longer-than-8"
    session_limit = 4
    system_types = ["", "NSMS"]
    default_sender = "O2Shop"
    [[rules]]
    prefix = "4219000"
    stat = "UNDELIV"
    err = 1
    intermediate = ["ENROUTE"]
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from o2sms.receipts import ReceiptStat
from o2sms.simulator.checks import checked, scalar_types
from o2sms.simulator.faults import Faults, faults_from
from o2sms.simulator.o2_profile import MAX_ALPHANUMERIC_SOURCE

DEFAULT_SESSION_LIMIT = 4
"""Binds per account the O2 gateway allows by default ("allowed to bind with 4 sessions")."""

DEFAULT_INACTIVITY_TIMEOUT = 30.0
"""The gateway's "timeout (keep alive or msg)": 30 s without a PDU closes the connection."""


MAX_ERR: Final = 0xFFFF
"""Largest receipt ``err`` a rule may give: the network_error_code TLV's error is two octets."""

INTERMEDIATE_STATS: Final = frozenset({ReceiptStat.ENROUTE, ReceiptStat.ACCEPTD})
"""Stats an intermediate notification may carry: the message is still on its way (ENROUTE),
or the SMSC accepted it for the subscriber (ACCEPTD, which some platforms send before the
final state, as the gateway's description allows)."""


class MessageIdFormat(StrEnum):
    """How submit_sm_resp message_ids look: hex (most SMSCs), decimal or a UUID."""

    HEX = "hex"
    DECIMAL = "decimal"
    UUID = "uuid"


@dataclass(frozen=True, slots=True)
class Account:
    """An ESME account: credentials, bind limit and the system_types it may bind with.

    ``session_limit`` None takes the simulator's default; ``system_types`` None allows any
    (the flash system_type ``NSMS`` is always allowed, as on the gateway). ``default_sender``
    is the gateway's account default sender: a submit_sm with an empty source_addr is sent
    (stored, and receipted) from it; None keeps answering an empty source_addr with
    ESME_RINVSRCADR. ``faults`` are the account's fault switches to start with (then changed at
    runtime through ``Simulator.faults_for``). ``routes_without_receipts`` lists the
    system_types (routes; ``""`` the default one) whose messages get no delivery report,
    whatever their registered_delivery: the gateway reports "only if your route provides
    delivery reporting".
    """

    system_id: str
    password: str = field(repr=False)  # never in a log line
    session_limit: int | None = None
    system_types: frozenset[str] | None = None
    default_sender: str | None = None
    faults: Faults | None = field(default=None, compare=False)
    routes_without_receipts: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        """Refuse a default_sender that could never pass submit_sm validation itself, and a
        negative session_limit (0 is a limit: no bind)."""
        if self.session_limit is not None and self.session_limit < 0:
            raise ValueError(f"session_limit must be 0 or more, got {self.session_limit}")
        sender = self.default_sender
        if sender is not None and not (sender and len(sender) <= 20 and sender.isascii()):
            raise ValueError(f"default_sender must be 1..20 ASCII characters, got {sender!r}")
        if sender is not None and not sender.isdigit() and len(sender) > MAX_ALPHANUMERIC_SOURCE:
            raise ValueError(
                f"default_sender {sender!r} is alphanumeric (TON 5) and over "
                f"{MAX_ALPHANUMERIC_SOURCE} characters: every submit_sm sent from it would be "
                "refused as an invalid source address"
            )
        # A string's characters would be the routes, and "" in "r:1" is True: the default too.
        if isinstance(self.routes_without_receipts, str):
            raise ValueError(
                "routes_without_receipts must be a set of system_types, not the string "
                f"{self.routes_without_receipts!r}"
            )


@dataclass(frozen=True, slots=True)
class OutcomeRule:
    """What happens to messages whose destination_addr starts with ``prefix``.

    ``stat`` and ``err`` go into the receipt; ``delay`` (seconds after submission or after the
    scheduled time) overrides the simulator's receipt_delay. ``intermediate`` lists the
    intermediate notifications (``ENROUTE``, ``ACCEPTD``) sent, in that order, as soon as the
    message is accepted and before its final receipt, to submit_sm whose registered_delivery
    asks for them (bit 4, 0x10); strings are accepted and turned into :class:`ReceiptStat`.
    """

    prefix: str
    stat: ReceiptStat = ReceiptStat.DELIVRD
    err: int = 0
    delay: float | None = None
    intermediate: tuple[ReceiptStat, ...] = ()

    def __post_init__(self) -> None:
        """Normalise ``intermediate`` to ReceiptStat; refuse stats that end a message and an
        ``err`` the receipt cannot carry (its network_error_code TLV has two octets)."""
        if not 0 <= self.err <= MAX_ERR:
            raise ValueError(
                f"rule {self.prefix!r}: err must be 0..{MAX_ERR} (a GSM/network error code), "
                f"got {self.err}"
            )
        stats = tuple(ReceiptStat.from_text(str(s)) for s in self.intermediate)
        wrong = [s.value for s in stats if s not in INTERMEDIATE_STATS]
        if wrong:
            raise ValueError(
                f"intermediate notifications can be ENROUTE or ACCEPTD, not {', '.join(wrong)}"
            )
        object.__setattr__(self, "intermediate", stats)


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Every setting of the simulator; defaults behave like the O2 gateway's description."""

    host: str = "127.0.0.1"
    port: int | None = 0  #: plain SMPP port; 0 picks a free one, None disables it
    tls_port: int | None = None  #: SMPP over TLS; 0 picks a free one
    certfile: str | None = None  #: PEM certificate for TLS; None generates a self-signed one
    keyfile: str | None = None
    http_port: int | None = None  #: JSON inspection / MO injection endpoint; 0 picks a free one
    accounts: tuple[Account, ...] = ()
    session_limit: int = DEFAULT_SESSION_LIMIT
    system_id: str = "O2SIM"  #: the SMSC's system_id in bind responses
    inactivity_timeout: float | None = DEFAULT_INACTIVITY_TIMEOUT
    session_init_timeout: float | None = 10.0
    response_timeout: float = 10.0  #: wait for deliver_sm_resp before resending
    window: int = 64  #: deliver_sm outstanding per session
    message_id_format: MessageIdFormat = MessageIdFormat.HEX
    receipt_delay: float = 0.1  #: default delay from submission (or schedule) to receipt
    rules: tuple[OutcomeRule, ...] = ()
    receipt_expiry: float = 3600.0  #: a receipt waiting for a receiving session is dropped after
    receipt_retry_delay: float = 1.0  #: after deliver_sm_resp with an error, or undecodable
    #: per account, waiting for a receiving session: from here on submit_sm gets RMSGQFUL
    max_pending_receipts: int = 100_000
    max_scheduled: int = 1_000_000  #: receipts not yet due; beyond it submit_sm gets RMSGQFUL
    store_size: int = 10_000  #: messages kept for inspection (the oldest are forgotten)
    data_codings: frozenset[int] = frozenset({0, 1, 3, 8})
    max_parts: int = 25
    max_payload: int = 4000  #: octets of message_payload
    accept_query_cancel: bool = False  #: answer query_sm/cancel_sm instead of ESME_RINVCMDID
    #: answer failures with Infobip's codes where the gateway has one (0x9F for a bad TLV
    #: length, ...; o2_profile.INFOBIP_STATUSES); False: the plain SMPP 3.4 statuses
    infobip_statuses: bool = True
    #: bind with interface_version below 0x34: False (the gateway: "version 3.3 is not
    #: supported") refuses it with ESME_RBINDFAIL; True accepts an SMPP 3.3 ESME (sent no TLVs)
    accept_smpp33: bool = False
    #: octets of output the latency fault may hold per session; past it, reading from that
    #: session pauses until the held output is written (memory stays bounded under a blast)
    max_held_output: int = 64 * 1024
    #: global fault switches to start with (``[faults]`` in a file; ``Simulator.faults`` after)
    faults: Faults | None = field(default=None, compare=False)
    seed: int | None = None  #: seed of the random connection-drop fault

    def __post_init__(self) -> None:
        """Refuse a port no socket can have here, rather than when the listener opens, and
        values that would make a simulator that runs but never answers as asked."""
        for name in ("port", "tls_port", "http_port"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 65535:
                raise ValueError(f"{name} must be 0 to 65535 (0: any free port), got {value}")
        if not self.receipt_delay >= 0:  # NaN too: its receipts were never sent
            raise ValueError(f"receipt_delay must be 0 or more seconds, got {self.receipt_delay:g}")
        if self.session_limit < 0:
            raise ValueError(f"session_limit must be 0 or more, got {self.session_limit}")

    def with_options(self, **options: Any) -> SimulatorConfig:
        """A copy with some fields replaced (unknown names raise TypeError)."""
        return replace(self, **options)


def parse_account(spec: str) -> Account:
    """``ID:PASSWORD`` (the CLI's --account) -> Account; the password may contain ':'."""
    system_id, sep, password = spec.partition(":")
    if not sep or not system_id:
        raise ValueError(f"account must be ID:PASSWORD, got {spec!r}")
    return Account(system_id, password)


def _account(data: Mapping[str, Any]) -> Account:
    types = data.get("system_types")
    silent = data.get("routes_without_receipts", ())
    system_id = str(data["system_id"])
    where = f"accounts[{system_id!r}]"
    for key, value in (("system_types", types), ("routes_without_receipts", silent)):
        if value is not None and not isinstance(value, list | tuple):  # a str: its characters
            raise ValueError(
                f"{where}.{key} must be a list of system_types "
                f'("": the default route), got {value!r}'
            )
    return Account(
        system_id=system_id,
        password=str(data["password"]),
        session_limit=checked(f"{where}.session_limit", data.get("session_limit"), int, True),
        system_types=None if types is None else frozenset(str(t) for t in types),
        default_sender=None if data.get("default_sender") is None else str(data["default_sender"]),
        faults=None
        if data.get("faults") is None
        else faults_from(data["faults"], f"{where}.faults"),
        routes_without_receipts=frozenset(str(t) for t in silent),
    )


def _rule(data: Mapping[str, Any]) -> OutcomeRule:
    where = f"rules[{data.get('prefix', '')!r}]"
    return OutcomeRule(
        prefix=str(data.get("prefix", "")),
        stat=ReceiptStat.from_text(str(data.get("stat", "DELIVRD"))),
        err=checked(f"{where}.err", data.get("err", 0), int),
        delay=checked(f"{where}.delay", data.get("delay"), float, True),
        intermediate=tuple(ReceiptStat.from_text(str(s)) for s in data.get("intermediate", ())),
    )


def config_from_mapping(
    data: Mapping[str, Any], base: SimulatorConfig | None = None
) -> SimulatorConfig:
    """A config from plain data (a parsed TOML/JSON file).

    Unknown keys, and values that are not of the setting's type (``receipt_delay = "0.5"``),
    raise ValueError naming the key: caught when the file is loaded, not in every session.
    """
    known = {f.name for f in fields(SimulatorConfig)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown simulator setting(s): {', '.join(sorted(unknown))}")
    options: dict[str, Any] = {}
    for key, value in data.items():
        if key == "accounts":
            options[key] = tuple(_account(a) for a in value)
        elif key == "rules":
            options[key] = tuple(_rule(r) for r in value)
        elif key == "data_codings":
            options[key] = frozenset(checked(key, v, int) for v in value)
        elif key == "message_id_format":
            options[key] = MessageIdFormat(value)
        elif key == "faults":
            options[key] = faults_from(value)
        else:
            options[key] = checked(key, value, *_SETTING_TYPES[key])
    return replace(base or SimulatorConfig(), **options)


#: setting -> (scalar type, None allowed); every field but the tables handled above
_SETTING_TYPES: Final = scalar_types(SimulatorConfig)


def load_config(path: str | Path, base: SimulatorConfig | None = None) -> SimulatorConfig:
    """Read a TOML file (or JSON when the name ends in .json) into a SimulatorConfig."""
    path = Path(path)
    raw = path.read_bytes()
    data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode("utf-8"))
    return config_from_mapping(data, base)


def merge_accounts(config: SimulatorConfig, accounts: Iterable[Account]) -> SimulatorConfig:
    """Add accounts (replacing those with the same system_id)."""
    by_id = {a.system_id: a for a in config.accounts}
    for account in accounts:
        by_id[account.system_id] = account
    return replace(config, accounts=tuple(by_id.values()))


__all__ = [
    "DEFAULT_INACTIVITY_TIMEOUT",
    "DEFAULT_SESSION_LIMIT",
    "INTERMEDIATE_STATS",
    "Account",
    "MessageIdFormat",
    "OutcomeRule",
    "SimulatorConfig",
    "config_from_mapping",
    "load_config",
    "merge_accounts",
    "parse_account",
]
