"""The service's configuration: a TOML file, then ``O2SMS_*`` environment variables on top.

Every key, its variable and its default are in docs/configuration.md. Nested keys take a double
underscore in the environment: ``[gateway] password`` is ``O2SMS_GATEWAY__PASSWORD``. Secrets are
``SecretStr``: they print as ``**********`` and never reach a log line or an error message.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import ipaddress
import json
import os
import re
import ssl
import tomllib
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from o2sms.client import addresses, session_kinds
from o2sms.client.config import FLASH_SYSTEM_TYPE
from o2sms.client.errors import AddressError
from o2sms.errors import O2smsError
from o2sms.service.webhooks import CallbackUrlError, UrlPolicy, check_callback_url
from o2sms.smpp.pdu import MAX_PASSWORD_LENGTH
from o2sms.store import store_url as parse_store_url

__all__ = [
    "ConfigError",
    "GatewaySettings",
    "RetentionSettings",
    "SandboxSettings",
    "Settings",
    "WebhookSettings",
    "WorkerSettings",
    "api_key_id",
    "load_settings",
]

GATEWAY_INACTIVITY_TIMEOUT: Final = 30.0
"""Seconds without traffic after which the O2 gateway drops a session (the seed's "timeout")."""

_CONFIG_FILE: ContextVar[Path | None] = ContextVar("o2sms_config_file", default=None)
#: whether the gateway input being validated lists hosts, for the checks that need to know if
#: a gateway is meant when the gateway section itself failed validation
_HOSTS_GIVEN: ContextVar[bool] = ContextVar("o2sms_gateway_hosts_given", default=False)

BindMode = Literal["transmitter", "receiver", "transceiver"]


class ConfigError(O2smsError, ValueError):
    """The configuration is invalid; the message lists every problem, one per line."""


_SECRET_PARAMETER: Final = re.compile(r"pass|secret|token|key", re.IGNORECASE)


def _redacted(url: str) -> str:
    """A store URL with any password replaced by ``***``, for printing: the user's, and
    query parameters that may hold one (``?password=``, ``sslpassword``, ``sslkey``...)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        scheme, separator, rest = url.split("?", maxsplit=1)[0].partition("://")
        return scheme + separator + rest.rsplit("@", maxsplit=1)[-1]  # no user, no password
    query = {
        name: "***" if _SECRET_PARAMETER.search(name) else value
        for name, value in parsed.query.items()
    }
    shown = parsed.set(query=query).render_as_string(hide_password=True)
    return shown.replace("=%2A%2A%2A", "=***")


def _split_commas(value: Any) -> Any:
    """``"a, b"`` -> ``["a", "b"]`` for list settings given as one environment variable.

    A JSON array of strings (``'["a", "b"]'``, how pydantic-settings reads other lists) is
    taken as one too: split at its commas, its brackets and quotes would become part of the
    values, API keys that no client sends.
    """
    if isinstance(value, str):
        if value.strip().startswith("["):
            # RecursionError: "[[[[..." nested deeper than json.loads goes, not a ValueError
            with contextlib.suppress(ValueError, RecursionError):
                items = json.loads(value)
                if isinstance(items, list) and all(isinstance(i, str) for i in items):
                    return [item.strip() for item in items if item.strip()]
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _long_enough(keys: list[SecretStr]) -> None:
    """Refuse API keys shorter than 16 characters (guessable), or that an HTTP header cannot
    carry (the server reads a header's bytes as Latin-1: a UTF-8 "í" never matched)."""
    for number, key in enumerate(keys, 1):
        value = key.get_secret_value()
        if len(value) < 16:
            raise ValueError(f"API key number {number} is shorter than 16 characters")
        if not (value.isascii() and value.isprintable()):
            raise ValueError(
                f"API key number {number} must be printable ASCII (letters, digits, "
                "punctuation), as HTTP headers carry it"
            )


_DAY: Final = 86_400.0
"""Seconds in a day: the bound of the worker's waits. Durations are added to the time now,
and one past the year 9999 fails every time it is (a purge, a claim, a webhook's retry)."""
_CENTURY: Final = 36_500.0
"""Days: the bound of the retention periods (to keep for ever, 0)."""


class _Section(BaseModel):
    # No inf or nan: "retry_for = inf" reads as "forever" but overflows every time it is
    # added to a date, failing each webhook's transaction (and with it the status change).
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _split_host(host: str) -> tuple[str, str]:
    """``host:port`` as (host, port); ``[v6]:port`` and a bare IPv6 address as RFC 3986 has
    them ("" for a port not given, "" for a host that cannot be read)."""
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and (not rest.startswith(":") or rest == ":")):
            return "", ""
        try:
            return str(ipaddress.IPv6Address(name)), rest[1:]
        except ValueError:
            return "", ""
    if host.count(":") > 1:  # a bare IPv6 address, which cannot carry a port
        try:
            return str(ipaddress.IPv6Address(host)), ""
        except ValueError:
            return "", ""
    name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
    return name, port


class GatewaySettings(_Section):
    """The SMSC to connect to. No ``hosts`` at all means sandbox mode (the built-in simulator)."""

    hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="host or host:port, primary first (the O2 gateway: smpp1 then smpp2)",
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="default port: 8888, or 8887 with TLS"
    )
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_insecure_skip_verify: bool = False
    system_id: str = Field(default="", max_length=15)
    password: SecretStr = SecretStr("")
    system_type: str = Field(default="", max_length=12, description='route code "r:<code>"')
    bind: Annotated[list[BindMode], NoDecode] = Field(
        default_factory=lambda: list[BindMode](["transceiver"]),
        min_length=1,
        description="one mode for every session, or one mode per session",
    )
    sessions: int | None = Field(
        default=None, ge=1, le=16, description="default: one per bind mode listed, else 4"
    )
    flash_session: bool = False
    window: int = Field(default=10, ge=1, le=1000)
    inbound_concurrency: int = Field(
        default=64,
        ge=1,
        le=1000,
        description="deliver_sm per session being stored at once (answered once committed)",
    )
    rate_limit: float | None = Field(default=None, gt=0, description="messages per second")
    keepalive: float = Field(default=25.0, gt=0)
    response_timeout: float = Field(default=15.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    bind_timeout: float = Field(default=10.0, gt=0, description="seconds to wait for bind_resp")

    _split = field_validator("hosts", "bind", mode="before")(_split_commas)

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            name, port = _split_host(host)
            if not name or (port and not (port.isdigit() and 0 < int(port) < 65536)):
                raise ValueError(f"{host!r} is not host, host:port or [IPv6 address]:port")
        return hosts

    @field_validator("system_id", "password", "system_type")
    @classmethod
    def _bind_field(cls, value: str | SecretStr, info: ValidationInfo) -> str | SecretStr:
        # The bind's C-Octet Strings: Latin-1 without NUL; the password up to 64 octets (the
        # codec's limit). Checked here, not at the first bind; the message never shows it.
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if "\x00" in text:
            raise ValueError("has a NUL character")
        if any(ord(ch) > 0xFF for ch in text):
            raise ValueError("has a character outside Latin-1")
        if info.field_name == "password" and len(text) > MAX_PASSWORD_LENGTH:
            raise ValueError(f"is longer than {MAX_PASSWORD_LENGTH} characters")
        if info.field_name == "system_type" and text.upper() == FLASH_SYSTEM_TYPE:
            # the gateway makes every message of an NSMS bind a flash notification
            raise ValueError("is the flash system_type NSMS: set flash_session instead")
        return value

    @field_validator("tls_ca_file")
    @classmethod
    def _ca_file(cls, path: Path | None) -> Path | None:
        if path is not None:
            try:
                ssl.create_default_context(cafile=str(path))
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"cannot load {str(path)!r} as PEM certificates: {exc}") from None
        return path

    @model_validator(mode="after")
    def _complete(self) -> GatewaySettings:
        if self.hosts and not self.system_id:
            raise ValueError("a gateway needs system_id (and password)")
        if not self.hosts and (self.system_id or self.password.get_secret_value()):
            # Without this, credentials whose hosts went missing (an empty variable, a typo)
            # would quietly run the sandbox: nothing sent, everything "delivered".
            raise ValueError(
                "system_id or password is set but hosts is empty: give the gateway's hosts "
                "(O2SMS_GATEWAY__HOSTS), or no credentials for sandbox mode"
            )
        if len(self.bind) > 1 and self.sessions is not None and len(self.bind) != self.sessions:
            raise ValueError(
                f"bind lists {len(self.bind)} modes for {self.sessions} sessions: "
                "give one mode, or one per session"
            )
        if self.hosts and self.flash_session:
            # the client's own check, so config check finds what serve would fail on
            session_kinds(self.bind_modes(), flash_session=True)
        return self

    @property
    def configured(self) -> bool:
        """True when a real SMSC is configured (otherwise the service runs in sandbox mode)."""
        return bool(self.hosts)

    def endpoints(self) -> list[tuple[str, int]]:
        """``hosts`` as (host, port) pairs, the default port filled in."""
        default = self.port or (8887 if self.tls else 8888)
        pairs = []
        for host in self.hosts:
            name, port = _split_host(host)
            pairs.append((name, int(port) if port else default))
        return pairs

    def bind_modes(self) -> list[BindMode]:
        """One bind mode per session."""
        if len(self.bind) > 1:
            return list(self.bind)
        return self.bind * (self.sessions or 4)


class WorkerSettings(_Section):
    """How this process takes messages from the shared queue and submits them."""

    concurrency: int = Field(default=500, ge=1, le=10_000, description="messages in flight")
    batch: int = Field(default=250, ge=1, le=1000, description="messages claimed at a time")
    lease_seconds: float = Field(default=60.0, ge=5, le=_DAY)
    poll_interval: float = Field(default=0.5, gt=0, le=60)
    max_attempts: int = Field(default=10, ge=1)
    retry_base: float = Field(default=2.0, gt=0, le=_DAY)
    retry_cap: float = Field(default=300.0, gt=0, le=_DAY)


class WebhookSettings(_Section):
    """Where status changes and inbound SMS are POSTed, and how hard we try."""

    url: str | None = Field(default=None, description="global URL; a message's own wins")
    secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key")
    retry_for: float = Field(
        default=86_400.0, gt=0, le=365 * _DAY, description="seconds to keep retrying"
    )
    # Bounded like the worker's waits: the sender leases each webhook for timeout + 30 s, and
    # a lease past the year 9999 failed every claim (no webhook was ever sent).
    timeout: float = Field(default=10.0, gt=0, le=_DAY, description="seconds per attempt")
    concurrency: int = Field(default=8, ge=1, le=1000)
    slow_receiver_slots: int = Field(
        default=1, ge=1, le=1000, description="attempts at once to a receiver that timed out"
    )
    allow: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="host names, *.suffix or CIDRs; empty: any allowed"
    )
    deny_private: bool = False

    _split = field_validator("allow", mode="before")(_split_commas)

    @model_validator(mode="after")
    def _url(self) -> WebhookSettings:
        try:
            policy = self.policy()
        except ValueError as exc:  # a bad allow-list entry
            raise ValueError(f"allow: {exc}") from None
        if self.url is not None:
            try:
                check_callback_url(self.url, policy)
            except CallbackUrlError as exc:
                raise ValueError(f"url: {exc}") from None
        return self

    def policy(self) -> UrlPolicy:
        """The callback URL policy these settings describe."""
        return UrlPolicy(allow=tuple(self.allow), deny_private=self.deny_private)


class RetentionSettings(_Section):
    """How long finished messages keep their text and their rows."""

    text_days: float | None = Field(default=30.0, ge=0, le=_CENTURY, description="0: keep texts")
    delete_days: float | None = Field(
        default=180.0, ge=0, le=_CENTURY, description="0: keep messages"
    )
    interval: float = Field(default=3600.0, gt=0, description="seconds between purge runs")

    def text_after(self) -> timedelta | None:
        """``text_days`` as a timedelta."""
        return timedelta(days=self.text_days) if self.text_days else None

    def delete_after(self) -> timedelta | None:
        """``delete_days`` as a timedelta."""
        return timedelta(days=self.delete_days) if self.delete_days else None


class SandboxSettings(_Section):
    """The built-in simulator that stands in for the gateway when none is configured."""

    smpp_port: int = Field(default=0, ge=0, le=65535, description="0: any free port")
    receipt_delay: float = Field(default=0.5, ge=0)
    max_pending_receipts: int = Field(
        default=10_000,
        ge=1,
        description="receipts the simulator holds for the service; beyond it submit_sm gets "
        "ESME_RMSGQFUL (they live in this process, so this bounds its memory)",
    )
    key_file: Path = Path("o2sms-sandbox.key")
    webhook_secret_file: Path = Path("o2sms-sandbox-webhook.key")


class Settings(BaseSettings):
    """Everything ``o2sms serve`` needs; see docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix="O2SMS_",
        env_nested_delimiter="__",
        env_ignore_empty=True,  # an empty variable is no setting (an unset one, often)
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    store_url: str = Field(
        default="sqlite:///o2sms.db",
        description="sqlite or postgresql URL",
        repr=False,  # it may hold the database's password; store_url_redacted is printable
    )
    store_schema: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="PostgreSQL schema"
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    read_api_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    max_recipients: int = Field(default=1000, ge=1, le=100_000)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    region: str = Field(default="SK", min_length=2, max_length=2)  # before sender: it reads it
    sender: str | None = Field(default=None, description="default sender; None: the account's")
    # The store leases as instance + "#" + a 6-digit tag, in 128 characters, which PostgreSQL
    # enforces (and its text holds no NUL): a longer name failed every claim there.
    instance: str | None = Field(
        default=None,
        min_length=1,
        max_length=121,
        pattern=r"^[^\x00]*$",
        description="worker name; default host:pid",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)

    @model_validator(mode="before")
    @classmethod
    def _note_hosts(cls, data: Any) -> Any:
        """Note whether the gateway input lists hosts, before the sections are validated."""
        gateway = data.get("gateway") if isinstance(data, dict) else None
        hosts = (
            gateway.get("hosts") if isinstance(gateway, dict) else getattr(gateway, "hosts", None)
        )
        _HOSTS_GIVEN.set(bool(_split_commas(hosts)))
        return data

    @field_validator("api_keys", "read_api_keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("api_keys")
    @classmethod
    def _key_length(cls, keys: list[SecretStr], info: ValidationInfo) -> list[SecretStr]:
        _long_enough(keys)
        # Checked here, with the other problems, not when the service starts. A gateway
        # missing from info.data was given and is wrong: a gateway is meant (keys are needed)
        # if it lists hosts; without them it is sandbox mode, and its error is the one problem.
        gateway = info.data.get("gateway")
        meant = gateway.configured if gateway is not None else _HOSTS_GIVEN.get()
        if not keys and meant:
            raise ValueError(
                "the HTTP API needs at least one API key when a gateway is configured "
                "(only the sandbox makes its own)"
            )
        return keys

    @field_validator("read_api_keys")
    @classmethod
    def _read_keys(cls, keys: list[SecretStr], info: ValidationInfo) -> list[SecretStr]:
        _long_enough(keys)
        full = {k.get_secret_value() for k in info.data.get("api_keys", ())}
        for number, key in enumerate(keys, 1):
            if key.get_secret_value() in full:
                # Which list wins would be a guess; a read-only key that can send is a leak.
                raise ValueError(f"API key number {number} is in api_keys too")
        return keys

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, level: Any) -> Any:
        # Python's logging writes levels in capitals: O2SMS_LOG_LEVEL=INFO means "info".
        return level.lower() if isinstance(level, str) else level

    @field_validator("store_url")
    @classmethod
    def _store_url(cls, url: str) -> str:
        # Messages built here, from the URL without its password: the parser's quote it whole.
        if not url.strip():  # the working folder itself, "unable to open database file"
            raise ValueError("is empty: give a file path, sqlite:///file.db or postgresql://...")
        try:
            port = make_url(url).port if "://" in url else None
        except ArgumentError:
            port = None  # said below
        except ValueError:
            raise ValueError(f"{_redacted(url)!r}: its port is not a number") from None
        if port is not None and not 1 <= port <= 65535:  # serve said "connection refused"
            raise ValueError(f"{_redacted(url)!r}: its port must be 1 to 65535, got {port}")
        try:
            parse_store_url(url)
        except ArgumentError:
            raise ValueError(f"{_redacted(url)!r} is not a database URL") from None
        except ValueError as exc:
            reason = str(exc).rpartition(": ")[2]
            raise ValueError(f"unsupported store URL {_redacted(url)!r}: {reason}") from None
        return url

    @field_validator("http_host")
    @classmethod
    def _http_host(cls, host: str) -> str:
        # "" listens on every interface: an unset variable in --http-host "$HOST" exposed the
        # API (and, in the sandbox, the key printed with it). Every interface is said 0.0.0.0.
        if not host.strip():
            raise ValueError(
                "is empty: give an address such as 127.0.0.1 (0.0.0.0 for every interface)"
            )
        return host

    @field_validator("region")
    @classmethod
    def _region(cls, region: str) -> str:
        # Checked here: an unknown region ("UK" for GB) would pass, then every national
        # number sent would be refused as "no such country code".
        return addresses.known_region(region)  # the client's own check

    # The checks of one key against another are field validators reading the other from
    # ``info.data`` (fields are validated in order): a model validator would run only once
    # every field is valid, so config check would report them a run after the rest.

    @field_validator("sender")
    @classmethod
    def _sender(cls, sender: str | None, info: ValidationInfo) -> str | None:
        region = info.data.get("region")
        if sender is not None and region is not None:  # no region: that error is reported
            try:
                addresses.sender(sender, region=region)
            except AddressError as exc:
                raise ValueError(str(exc)) from None
        return sender

    @field_validator("store_schema")
    @classmethod
    def _schema(cls, schema: str | None, info: ValidationInfo) -> str | None:
        url = info.data.get("store_url")
        if schema is None or url is None:  # no store_url: that error is reported
            return schema
        if parse_store_url(url).get_backend_name() != "postgresql":  # postgres:// is one
            raise ValueError("a PostgreSQL option, and store_url is SQLite")
        return schema

    @field_validator("webhooks")
    @classmethod
    def _webhook_secret(cls, webhooks: WebhookSettings, info: ValidationInfo) -> WebhookSettings:
        gateway = info.data.get("gateway")
        if webhooks.url and webhooks.secret is None and gateway is not None and gateway.configured:
            raise ValueError("secret: is needed to sign webhooks")
        return webhooks

    def warnings(self) -> list[str]:
        """Valid settings that will not work well, one line each: ``key (VARIABLE): why``."""
        found = []
        keepalive = self.gateway.keepalive
        # Only a gateway's sessions use it: the sandbox's client keeps the client's default.
        if self.gateway.configured and keepalive >= GATEWAY_INACTIVITY_TIMEOUT:
            found.append(
                f"{_where(('gateway', 'keepalive'))}: {keepalive:g} s is not under the "
                f"gateway's {GATEWAY_INACTIVITY_TIMEOUT:g} s inactivity timeout: an idle "
                f"session is dropped before its enquire_link; keep it under "
                f"{GATEWAY_INACTIVITY_TIMEOUT:g} (default 25)"
            )
        if self.gateway.configured and not self.gateway.password.get_secret_value():
            # Valid SMPP (some SMSCs take it), but the O2 gateway needs one: bind refused.
            found.append(
                f"{_where(('gateway', 'password'))}: is empty; the O2 gateway refuses a bind "
                "without a password"
            )
        return found

    @property
    def store_url_redacted(self) -> str:
        """``store_url`` with any password replaced by ``***``, for printing."""
        return _redacted(self.store_url)

    @property
    def sandbox_mode(self) -> bool:
        """True when no gateway is configured: the service runs the simulator in-process."""
        return not self.gateway.configured

    @property
    def sends_flash(self) -> bool:
        """True when a session sends flash messages: the sandbox always binds one (NSMS)."""
        return self.sandbox_mode or self.gateway.flash_session

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Command-line values over environment variables over the TOML file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _CONFIG_FILE.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def _where(location: tuple[int | str, ...]) -> str:
    """``("gateway", "port")`` -> ``gateway.port (O2SMS_GATEWAY__PORT)``."""
    parts = [str(p) for p in location if not isinstance(p, int)]
    if not parts:
        return "configuration"
    return f"{'.'.join(parts)} (O2SMS_{'__'.join(parts).upper()})"


def _model_at(location: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The settings model (Settings or a section) at ``location``, or None."""
    model: type[BaseModel] = Settings
    for part in location:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        kind = field.annotation if field is not None else None
        if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
            return None
        model = kind
    return model


def _sections() -> dict[str, type[BaseModel]]:
    """The settings' sections (``gateway``, ``worker``...) by name, with their models."""
    return {
        name: field.annotation
        for name, field in Settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }


def _misplaced(location: tuple[int | str, ...]) -> str | None:
    """Where a key unknown at ``location`` belongs, when it is a key elsewhere, else None.

    In TOML every key below a ``[section]`` header is in that section, so a top-level key
    written after one lands there; the message should not call it a typo.
    """
    *parent, key = [str(p) for p in location if not isinstance(p, int)]
    sections = [
        name
        for name, model in _sections().items()
        if key in model.model_fields and [name] != parent
    ]
    here = f"not a key of [{'.'.join(parent)}]" if parent else "not a top-level key"
    if parent and key in Settings.model_fields and key not in sections:
        return f"{here}; it is a top-level key (in TOML, above the first [section] header)"
    if sections:
        others = f" (or {', '.join(f'[{name}]' for name in sections[1:])})" if sections[1:] else ""
        return f"{here}; it belongs under [{sections[0]}]{others}"
    return None


def _meant(location: tuple[int | str, ...]) -> str | None:
    """The key an unknown one at ``location`` was likely meant to be: a close spelling in its
    section (``gateway.host``: ``gateway.hosts``). A key of another section: _misplaced."""
    *section, name = (str(p) for p in location)
    model = _model_at(tuple(section))
    if model is None:
        return None
    close = difflib.get_close_matches(name, list(model.model_fields), n=1, cutoff=0.75)
    if close:
        return ".".join([*section, close[0]])
    return None


def _explain(error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        location = tuple(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            meant = _meant(location)
            message = _misplaced(location) or (
                f"unknown key (did you mean {meant}?)" if meant else "unknown key (a typo?)"
            )
        # A check of several keys (a model validator) is reported at its model; its message
        # names the key to fix first ("url: ..."): report it there, with that key's variable.
        key, colon, rest = message.partition(": ")
        model = _model_at(location) if colon else None
        if model is not None and key in model.model_fields:
            location, message = (*location, key), rest
        lines.append(f"{_where(location)}: {message}")
    return "\n".join(lines)


def _stray_variables() -> tuple[list[str], list[str]]:
    """Problem lines for the ``O2SMS_*`` variables that name no setting yet look meant to:
    one for a section's key with one underscore (``O2SMS_GATEWAY_PASSWORD``), and one for a
    ``O2SMS_<SECTION>__<KEY>`` whose section does not exist (``O2SMS_WORKERS__BATCH``).

    pydantic-settings reads declared fields only, so both were ignored unsaid. Other variables
    without ``__`` are left alone: the send and status commands read their own (``O2SMS_URL``,
    ``O2SMS_API_KEY``...), and none of those starts with a section's name.
    """
    sections = _sections()
    misspelt, strays = [], []
    for variable, value in sorted(os.environ.items()):
        name = variable.upper()
        if not name.startswith("O2SMS_") or not value:  # empty counts as not set
            continue
        if "__" in name:
            section, *keys = name.removeprefix("O2SMS_").lower().split("__")
            if section in Settings.model_fields:
                continue  # its keys are checked with the rest
            close = difflib.get_close_matches(section, list(sections), n=1, cutoff=0.75)
            meant = f"did you mean {'.'.join([close[0], *keys])}?" if close else "a typo?"
            strays.append(f"{_where((section, *keys))}: unknown key ({meant})")
            continue
        for section, model in sections.items():
            key = name.removeprefix(f"O2SMS_{section.upper()}_").lower()
            if name.startswith(f"O2SMS_{section.upper()}_") and key in model.model_fields:
                misspelt.append(
                    f"{_where((section, key))}: given as {variable}, with one underscore, "
                    "which names no setting"
                )
    return misspelt, strays


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Read the configuration: ``overrides`` (command line) > ``O2SMS_*`` > TOML file > defaults.

    Raises ConfigError naming every bad key, its environment variable and what is wrong.
    """
    path = Path(config_file) if config_file is not None else None
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"configuration file {str(path)!r} does not exist")
        try:
            with path.open("rb") as handle:
                tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text, as TOML must be: {exc.reason}") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    misspelt, strays = _stray_variables()
    token = _CONFIG_FILE.set(path)
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError("\n".join([*misspelt, _explain(exc), *strays])) from None
    except SettingsError as exc:  # e.g. O2SMS_GATEWAY='...' that is not JSON
        cause = exc.__cause__
        field = re.match(r'error parsing value for field "(\w+)"', str(exc))
        model = _model_at((field.group(1),)) if field else None
        if field is None or model is None:
            raise ConfigError(f"{exc}{f': {cause}' if cause else ''}") from None
        name = field.group(1)
        example = next(iter(model.model_fields))
        raise ConfigError(
            f"{_where((name,))}: not a JSON object ({cause}); give each key as a variable "
            f"of its own, such as O2SMS_{name.upper()}__{example.upper()}"
        ) from None
    finally:
        _CONFIG_FILE.reset(token)
    if misspelt or strays:
        raise ConfigError("\n".join([*misspelt, *strays]))
    return settings


def api_key_id(key: str) -> str:
    """A short public name for an API key (scopes idempotency keys; safe to log)."""
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:12]
