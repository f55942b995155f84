"""Webhooks: signing, the receiver's check, the callback URL policy, and the sender.

The store writes each webhook to its outbox in the transaction of the change it reports
(:mod:`o2sms.store.outbox`); :class:`WebhookSender` claims due ones, POSTs them and records
every attempt. It runs beside the SMPP workers and shares nothing with them but the store, so
a slow or dead receiver only ever occupies the sender's own slots (oldest webhook first,
whatever the receiver), each for at most ``timeout`` seconds per attempt.

* :func:`sign` / :func:`verify`: HMAC-SHA256 over ``f"{timestamp}.".encode() + body``, sent as
  ``X-O2SMS-Signature: sha256=<hex>`` with ``X-O2SMS-Timestamp`` (Unix seconds). Receivers
  call :func:`verify` (or the recipe in ``docs/webhooks.md``) on the raw body.
* :func:`check_callback_url` with a :class:`UrlPolicy`: only ``http``/``https``, no spaces or
  control characters (header injection), no user name or password, no link-local or cloud
  metadata address unless the allow-list names it; optionally no private addresses, and an
  allow-list of host names, ``*.suffix`` patterns and CIDRs. The sender checks again at send
  time against the addresses the name resolves to, and connects to the address it checked
  (so a DNS answer that changes in between, "DNS rebinding", cannot redirect it).

Delivery is at least once: receivers drop repeats by ``X-O2SMS-Webhook-Id``. See
``docs/webhooks.md`` for payloads, headers, the retry schedule and the policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import socket
import time
import unicodedata
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from o2sms import __version__
from o2sms.store import MessageStore, Webhook

__all__ = [
    "ATTEMPT_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WEBHOOK_ID_HEADER",
    "AttemptOutcome",
    "CallbackUrlError",
    "Resolver",
    "UrlPolicy",
    "WebhookSender",
    "WebhookStats",
    "check_callback_url",
    "resolve_target",
    "sign",
    "verify",
]

log = logging.getLogger("o2sms.service.webhooks")

SIGNATURE_HEADER: Final = "X-O2SMS-Signature"
"""``sha256=<hex>``: HMAC-SHA256 of ``f"{timestamp}.".encode() + body`` with the secret."""
TIMESTAMP_HEADER: Final = "X-O2SMS-Timestamp"
"""Unix time in seconds when the attempt was signed (each retry is signed afresh)."""
WEBHOOK_ID_HEADER: Final = "X-O2SMS-Webhook-Id"
"""The webhook's ``event_id``, the same on every retry: the receiver's deduplication key."""
EVENT_HEADER: Final = "X-O2SMS-Event"
"""``message.status`` or ``inbound.sms`` (also the body's ``type``)."""
ATTEMPT_HEADER: Final = "X-O2SMS-Attempt"
"""1 for the first attempt, then 2, 3..."""

MAX_URL_LENGTH: Final = 2000

Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""``(host, port) -> IP addresses``: how the sender resolves names (tests pass their own)."""

_ALWAYS_DENIED: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network": 0.0.0.0 reaches the local host on Linux
        "169.254.0.0/16",  # IPv4 link-local, cloud metadata (169.254.169.254)
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "::/128",
        "fe80::/10",  # IPv6 link-local
        "fd00:ec2::254/128",  # AWS metadata over IPv6
    )
)
_SHARED_ADDRESS_SPACE: Final = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT
_METADATA_NAMES: Final = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_LABEL: Final = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NUMERIC_HOST: Final = re.compile(r"^[0-9a-fx.]+$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# -- signatures ------------------------------------------------------------------------------


def _key(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else bytes(secret)


def sign(secret: bytes | str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.".encode() + body`` under ``secret``.

    The timestamp is signed with the body so a captured request cannot be replayed later
    with a fresh timestamp; the header carries it as ``sha256=<this>``.
    """
    return hmac.new(_key(secret), f"{int(timestamp)}.".encode() + body, hashlib.sha256).hexdigest()


def verify(
    secret: bytes | str,
    timestamp: int | str,
    body: bytes,
    signature: str,
    *,
    tolerance: float = 300.0,
    now: float | None = None,
) -> bool:
    """True when ``signature`` (the ``X-O2SMS-Signature`` header) signs ``timestamp.body``.

    For receivers: pass the raw request body (before any JSON parsing) and the two headers.
    A timestamp more than ``tolerance`` seconds from ``now`` (default: the current time) is
    refused, which bounds replays. The comparison runs in constant time. The header may list
    several comma-separated ``sha256=`` values; any one matching is enough.
    """
    try:
        ts = int(str(timestamp).strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        return False
    expected = sign(secret, ts, body).encode()
    matched = False
    for candidate in signature.split(","):
        scheme, _, value = candidate.strip().partition("=")
        if scheme.strip().lower() == "sha256":
            matched |= hmac.compare_digest(value.strip().encode("utf-8", "replace"), expected)
    return matched


# -- the callback URL policy ---------------------------------------------------------------


class CallbackUrlError(ValueError):
    """A callback URL the policy refuses; the message is a sentence for the API client."""


def _normalise_host(host: str) -> str:
    """Lowercase, no trailing dot, IDNA (``xn--``) for non-ASCII names; raises on junk."""
    name = host.lower().rstrip(".")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise CallbackUrlError(
                f"the callback URL's host name {host!r} is not a valid host name"
            ) from None
    return name


def _parse_ip(host: str) -> IPAddress | None:
    """The address a host stands for when it is an address (any spelling the OS accepts)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return address.ipv4_mapped
        return address
    if _NUMERIC_HOST.match(host) and any(ch.isdigit() for ch in host):
        # 2852039166, 0xa9fea9fe, 0251.0376.0251.0376: inet_aton reads them as 169.254.169.254
        with contextlib.suppress(OSError):
            return ipaddress.IPv4Address(socket.inet_aton(host))
    return None


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """Which callback URLs webhooks may go to.

    ``allow``: host names (``hooks.example.com``), ``*.suffix`` patterns (``*.example.com``:
    any name under it, not the bare suffix) and addresses or CIDRs (``10.1.2.0/24``). Empty
    means any host that is not denied. A listed name may be used; a name not listed is
    accepted only when the list has CIDRs and every address it resolves to falls in one.

    Always denied unless the allow-list names them: link-local addresses (169.254.0.0/16,
    fe80::/10, where cloud metadata services live), 0.0.0.0 and ``::``, and the metadata host
    names (``metadata.google.internal``, ``metadata``, ``instance-data``...). A metadata *name*
    listed by name may be used, but its link-local *address* needs a CIDR entry too.
    ``deny_private`` also denies loopback, private (RFC 1918, fc00::/7), shared
    (100.64.0.0/10), multicast and reserved addresses, and ``localhost`` names, unless a CIDR
    entry covers the address. Keep it False for a sandbox on one machine; set it (and an
    allow-list) in production.
    """

    allow: tuple[str, ...] = ()
    deny_private: bool = False
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in self.allow:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                suffix = _normalise_host(entry[2:])
                if not suffix or "*" in suffix:
                    raise ValueError(f"bad webhook allow-list entry {raw!r}")
                suffixes.append("." + suffix)
                continue
            name = _normalise_host(entry)
            if not name or not all(_LABEL.match(label) for label in name.split(".")):
                raise ValueError(
                    f"bad webhook allow-list entry {raw!r}: use a host name, *.suffix or a CIDR"
                )
            names.add(name)
        object.__setattr__(self, "allow", tuple(a.strip() for a in self.allow if a.strip()))
        object.__setattr__(self, "_names", frozenset(names))
        object.__setattr__(self, "_suffixes", tuple(suffixes))
        object.__setattr__(self, "_networks", tuple(networks))

    def lists_name(self, host: str) -> bool:
        """True when the allow-list names ``host`` (normalised) or a pattern covers it."""
        return host in self._names or any(host.endswith(s) for s in self._suffixes)

    def lists_address(self, address: IPAddress) -> bool:
        """True when a CIDR entry of the allow-list covers ``address``."""
        return any(address in network for network in self._networks)

    def address_refusal(self, address: IPAddress, *, name_listed: bool = False) -> str | None:
        """Why ``address`` may not be used, completing "<address> is ...", or None if it may.

        ``name_listed``: the host name it came from is on the allow-list by name.
        """
        if self.lists_address(address):
            return None
        if address.is_unspecified or any(address in n for n in _ALWAYS_DENIED):
            return "a link-local or metadata-service address"
        if self.deny_private and (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_multicast
            or address.is_reserved
            or address in _SHARED_ADDRESS_SPACE
        ):
            return "a private or local address"
        if self.allow and not name_listed:
            return "not on the webhook allow-list"
        return None


def _refuse(why: str) -> CallbackUrlError:
    return CallbackUrlError(f"the callback URL is not allowed: {why}")


def _split(url: str) -> tuple[SplitResult, str, int]:
    """Syntax checks; the parts, the normalised host and the port."""
    if len(url) > MAX_URL_LENGTH:
        raise CallbackUrlError(f"the callback URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or unicodedata.category(ch)[0] in "CZ" for ch in url):
        raise CallbackUrlError(
            "the callback URL must not contain spaces, line breaks or other control characters"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL" and the like
        raise CallbackUrlError(f"the callback URL cannot be read: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not url.lower().startswith(f"{scheme}://"):
        raise CallbackUrlError("the callback URL must start with http:// or https://")
    if "@" in parts.netloc:
        raise CallbackUrlError("the callback URL must not contain a user name or password")
    if "\\" in url:
        raise CallbackUrlError("the callback URL must not contain backslashes")
    host = parts.hostname
    if not host:
        raise CallbackUrlError("the callback URL has no host name")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:  # out of range, or 0 (not "the scheme's": no request can reach port 0)
        raise CallbackUrlError("the callback URL has an invalid port")
    name = _normalise_host(host)
    if _parse_ip(name) is None and (
        len(name) > 253 or not all(_LABEL.match(label) for label in name.split("."))
    ):
        raise CallbackUrlError(f"the callback URL's host name {host!r} is not a valid host name")
    return parts, name, port or (443 if scheme == "https" else 80)


def check_callback_url(url: str, policy: UrlPolicy | None = None) -> str:
    """Return ``url`` when webhooks may be sent to it; raise :class:`CallbackUrlError` if not.

    Checks what can be checked without the network (the sender checks the resolved addresses
    again at send time): http or https only, no whitespace or control characters (a CR/LF
    would inject headers), no user name or password, a valid host, and the host against
    ``policy`` (see :class:`UrlPolicy`). The error message is a sentence for the API client.
    """
    policy = policy or UrlPolicy()
    _, host, _ = _split(url)
    address = _parse_ip(host)
    if address is not None:
        why = policy.address_refusal(address)
        if why is not None:
            raise _refuse(f"{address} is {why}")
        return url
    listed = policy.lists_name(host)
    if not listed:
        if host in _METADATA_NAMES:
            raise _refuse(f"{host} is a cloud metadata service")
        if policy.deny_private and (host == "localhost" or host.endswith(".localhost")):
            raise _refuse(f"{host} is the local machine")
        if policy.allow and not policy._networks:
            raise _refuse(f"{host} is not on the webhook allow-list")
    return url


@dataclass(frozen=True, slots=True)
class _Target:
    """Where one attempt really goes: the URL with the checked address, Host, TLS name."""

    url: str
    host_header: str
    sni_hostname: str | None
    address: str
    #: the URL pinned to each of the name's other checked addresses, in the resolver's order:
    #: tried in turn when a connection to the one before is refused ("localhost" is ::1
    #: first on many systems, and many receivers listen on 127.0.0.1 only)
    fallbacks: tuple[str, ...] = ()


async def _system_resolver(host: str, port: int) -> Sequence[str]:
    """Every address the system resolver gives for ``host`` (IPv4 and IPv6), in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for *_, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


async def resolve_target(url: str, policy: UrlPolicy, resolver: Resolver | None = None) -> _Target:
    """Check ``url`` again, resolve its host and check every address; pin the request to one.

    Raises :class:`CallbackUrlError` when the policy refuses the URL or any of its addresses
    (the webhook is then given up), ``OSError`` when the name does not resolve (retried).
    """
    check_callback_url(url, policy)
    parts, host, port = _split(url)
    literal = _parse_ip(host)
    listed = policy.lists_name(host)
    if literal is not None:
        found: Sequence[str] = [str(literal)]
    else:
        found = await (resolver or _system_resolver)(host, port)
        if not found:
            raise OSError(f"{host} has no address")
    addresses: list[IPAddress] = []
    for text in found:
        address = _parse_ip(text.split("%", 1)[0])
        if address is None:
            raise OSError(f"{host} resolved to something that is not an address: {text!r}")
        why = policy.address_refusal(address, name_listed=listed and literal is None)
        if why is not None:
            raise _refuse(f"{host} resolves to {address}, which is {why}")
        addresses.append(address)

    def pinned(address: IPAddress) -> str:
        literal_host = f"[{address}]" if address.version == 6 else str(address)
        netloc = literal_host if parts.port is None else f"{literal_host}:{parts.port}"
        return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))

    named = host if literal is None else str(literal)
    named = f"[{named}]" if ":" in named else named  # an IPv6 literal keeps its brackets
    return _Target(
        url=pinned(addresses[0]),
        host_header=named if parts.port is None else f"{named}:{parts.port}",
        sni_hostname=host if parts.scheme.lower() == "https" and literal is None else None,
        address=str(addresses[0]),
        fallbacks=tuple(pinned(a) for a in addresses[1:]),
    )


def _receiver(url: str) -> str:
    """Who answers ``url``: scheme, normalised host and port (the URL itself if unreadable)."""
    try:
        parts, host, port = _split(url)
    except CallbackUrlError:
        return url
    return f"{parts.scheme.lower()}://{host}:{port}"


def _redact(url: str) -> str:
    """The URL for logs: scheme, host, port and path; no query (it may hold a token)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{query}"


# -- the sender -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one attempt came to, for metrics (``on_attempt``) and tests.

    ``outcome``: ``delivered`` (2xx), ``retry`` (will be tried again) or ``failed`` (given up:
    out of time, or refused by the URL policy).
    """

    webhook_id: int
    event: str
    outcome: str
    status_code: int | None
    error: str | None
    seconds: float


@dataclass(slots=True)
class WebhookStats:
    """Counters since the sender started."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    #: claimed webhooks handed back unsent because their receiver is slow and its slots are
    #: taken (or failed then, past their give_up_at); one webhook may count several times
    deferred: int = 0


class WebhookSender:
    """Claims due webhooks from the store's outbox and POSTs them, ``concurrency`` at a time.

    ``secret`` signs every request (see :func:`sign`); ``policy`` is checked again before
    each attempt, against the addresses the host resolves to. ``timeout`` bounds a whole
    attempt (resolution, connection, headers of the answer), so a receiver that hangs holds
    one slot for that long, never the SMPP pipeline; the answer's body is not read.
    Redirects are never followed (a 3xx is a failed attempt). ``worker_id`` names this sender
    in leases (unique per process). ``http_client`` replaces the client the sender would
    create (and then is not closed by it). Call :meth:`notify` after a change to send at once
    instead of at the next poll (every ``poll_interval`` seconds).

    A receiver (scheme, host and port) whose last attempt got no answer within ``timeout`` is
    *slow*: until one of its attempts is answered in time it gets at most
    ``slow_receiver_slots`` attempts at once, and its other webhooks are handed back unsent,
    due ``timeout`` seconds later. So a hanging receiver cannot take every slot from the others,
    while a healthy one may use them all.
    """

    def __init__(
        self,
        store: MessageStore,
        *,
        secret: bytes | str,
        policy: UrlPolicy | None = None,
        worker_id: str,
        concurrency: int = 8,
        slow_receiver_slots: int = 1,
        timeout: float = 10.0,
        http_client: httpx.AsyncClient | None = None,
        poll_interval: float = 1.0,
        stop_grace: float = 5.0,
        resolver: Resolver | None = None,
        on_attempt: Callable[[AttemptOutcome], None] | None = None,
        on_held_back: Callable[[int], None] | None = None,
    ) -> None:
        if not secret:
            raise ValueError("webhooks need a signing secret")
        if concurrency < 1 or slow_receiver_slots < 1:
            raise ValueError("concurrency and slow_receiver_slots must be at least 1")
        if timeout <= 0 or poll_interval <= 0:
            raise ValueError("timeout and poll_interval must be positive")
        self._store = store
        self._secret = _key(secret)
        self._policy = policy or UrlPolicy()
        self._worker_id = worker_id
        self._concurrency = concurrency
        self._slow_receiver_slots = slow_receiver_slots
        self._slow: set[str] = set()  #: receivers whose last attempt timed out
        self._busy: Counter[str] = Counter()  #: attempts under way, by receiver
        self._timeout = timeout
        self._lease_seconds = timeout + 30.0
        self._poll_interval = poll_interval
        self._stop_grace = stop_grace
        self._resolver = resolver
        self._on_attempt = on_attempt
        self._on_held_back = on_held_back
        self._client = http_client
        self._owns_client = http_client is None
        self._wake = asyncio.Event()
        self._tasks: dict[asyncio.Task[None], tuple[int, str]] = {}  #: webhook id, receiver
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self.stats = WebhookStats()

    def __repr__(self) -> str:
        return f"WebhookSender(worker_id={self._worker_id!r}, concurrency={self._concurrency})"

    @property
    def in_flight(self) -> int:
        """Attempts under way now."""
        return len(self._tasks)

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._loop_task is not None and not self._loop_task.done()

    async def start(self) -> None:
        """Start the claim-and-send loop in the background."""
        if self._loop_task is not None:
            raise RuntimeError("the webhook sender was started already")
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,
                trust_env=False,  # a proxy from the environment would bypass the address checks
                limits=httpx.Limits(max_connections=self._concurrency * 2),
                headers={"User-Agent": f"o2sms-webhooks/{__version__}"},
            )
        self._loop_task = asyncio.create_task(self._run(), name=f"webhooks-{self._worker_id}")

    def notify(self) -> None:
        """Look for due webhooks now (the service calls this after a status change)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming; give attempts under way ``stop_grace`` seconds, then cancel them.

        Cancelled attempts' leases are handed back, so another sender (or the next start)
        sends them at once; they may have reached the receiver already (at least once).
        """
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self._stop_grace)
            cancelled = [self._tasks[task][0] for task in pending]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if cancelled:
                try:
                    await self._store.release_webhooks(self._worker_id, cancelled)
                except Exception:
                    log.warning("could not hand back %d webhook leases", len(cancelled))
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send_due(self) -> int:
        """Claim what is due (up to the free slots), send it and wait: one round, for tests
        and one-shot tools. Returns how many webhooks were attempted."""
        if self._client is None:
            raise RuntimeError("start() the sender first")
        hooks = await self._store.claim_webhooks(
            self._worker_id,
            limit=self._concurrency - len(self._tasks),
            lease_seconds=self._lease_seconds,
        )
        started = await self._start(hooks)
        await asyncio.gather(*started, return_exceptions=True)
        return len(started)

    async def _run(self) -> None:
        """Claim into free slots; wait for a free slot, a notify() or the poll interval."""
        error_delay = self._poll_interval
        while not self._stopping:
            self._wake.clear()
            free = self._concurrency - len(self._tasks)
            delay = self._poll_interval
            if free > 0:
                try:
                    hooks = await self._store.claim_webhooks(
                        self._worker_id, limit=free, lease_seconds=self._lease_seconds
                    )
                except Exception as exc:
                    log.warning("claiming webhooks failed (%s); retrying", type(exc).__name__)
                    delay = error_delay
                    error_delay = min(error_delay * 2, 30.0)
                else:
                    error_delay = self._poll_interval
                    await self._start(hooks)
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _start(self, hooks: Sequence[Webhook]) -> list[asyncio.Task[None]]:
        """Start an attempt for each of ``hooks``, except those of a slow receiver with its
        slots taken: those are handed back (see the class docstring)."""
        started: list[asyncio.Task[None]] = []
        held: list[int] = []
        for hook in hooks:
            receiver = _receiver(hook.url)
            if receiver in self._slow and self._busy[receiver] >= self._slow_receiver_slots:
                held.append(hook.id)
                continue
            task = asyncio.create_task(self._attempt(hook, receiver))
            self._tasks[task] = (hook.id, receiver)
            self._busy[receiver] += 1
            task.add_done_callback(self._finished)
            started.append(task)
        if held:
            try:
                handed_back = await self._store.defer_webhooks(
                    self._worker_id, held, seconds=self._timeout
                )
            except Exception as exc:  # their leases run out and they are claimed again
                log.warning("could not hand back %d webhooks (%s)", len(held), type(exc).__name__)
            else:
                self.stats.deferred += handed_back
                if self._on_held_back is not None:
                    self._on_held_back(handed_back)
                self._wake.set()  # their slots are free for other receivers' webhooks
        return started

    def _finished(self, task: asyncio.Task[None]) -> None:
        entry = self._tasks.pop(task, None)
        if entry is not None:
            receiver = entry[1]
            self._busy[receiver] -= 1
            if self._busy[receiver] <= 0:
                del self._busy[receiver]
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook attempt crashed", exc_info=task.exception())
        self._wake.set()  # a slot is free

    async def _attempt(self, hook: Webhook, receiver: str) -> None:
        """POST one webhook and record the outcome; never raises (except cancellation)."""
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        give_up = timed_out = False
        try:
            async with asyncio.timeout(self._timeout):
                status_code = await self._post(hook)
        except CallbackUrlError as exc:
            error, give_up = str(exc), True
        except TimeoutError:
            error, timed_out = f"no answer within {self._timeout:g} s", True
        except httpx.TimeoutException as exc:  # the client's own clock, same timeout
            error, timed_out = f"{type(exc).__name__}: {exc}".rstrip(": "), True
        except (httpx.HTTPError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        except Exception as exc:  # anything else is a failed attempt too, retried like one
            log.warning("webhook %s attempt raised %s", hook.event_id, type(exc).__name__)
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        seconds = time.monotonic() - started
        if timed_out:
            self._slow.add(receiver)
        else:  # it answered, or failed at once: either way it holds no slot for long
            self._slow.discard(receiver)
        if status_code is not None and not 200 <= status_code < 300:
            error = f"HTTP {status_code}" + (
                " (redirects are not followed)" if 300 <= status_code < 400 else ""
            )
        duration_ms = round(seconds * 1000)
        try:
            if error is None:
                assert status_code is not None
                await self._store.webhook_delivered(
                    hook.id, self._worker_id, status_code=status_code, duration_ms=duration_ms
                )
                outcome = "delivered"
            else:
                after = await self._store.webhook_failed(
                    hook.id,
                    self._worker_id,
                    error=error,
                    status_code=status_code,
                    duration_ms=duration_ms,
                    give_up=give_up,
                )
                outcome = "failed" if after is None or after.status.value == "failed" else "retry"
        except Exception as exc:
            # The lease runs out and the webhook is sent again: at least once, never lost.
            log.warning(
                "could not record webhook %s attempt (%s)", hook.event_id, type(exc).__name__
            )
            return
        self._count(hook, outcome, status_code, error, seconds)

    async def _post(self, hook: Webhook) -> int:
        """Sign and POST the payload to a checked address (the next one of the name when a
        connection is refused); the status code of the answer."""
        assert self._client is not None
        target = await resolve_target(hook.url, self._policy, self._resolver)
        body = json.dumps(hook.payload, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: f"sha256={sign(self._secret, timestamp, body)}",
            WEBHOOK_ID_HEADER: hook.event_id,
            EVENT_HEADER: hook.event.value,
            ATTEMPT_HEADER: str(hook.attempts),
        }
        headers["Host"] = target.host_header
        extensions = {} if target.sni_hostname is None else {"sni_hostname": target.sni_hostname}
        *firsts, last = (target.url, *target.fallbacks)
        for url in firsts:
            try:
                return await self._send(url, body, headers, extensions)
            except httpx.ConnectError:  # nothing was sent: the next address of the name
                continue
        return await self._send(last, body, headers, extensions)

    async def _send(
        self, url: str, body: bytes, headers: dict[str, str], extensions: dict[str, Any]
    ) -> int:
        """POST ``body`` to ``url`` (a checked address); the status code of the answer."""
        assert self._client is not None
        request = self._client.build_request(
            "POST", url, content=body, headers=headers, extensions=extensions
        )
        response = await self._client.send(request, stream=True, follow_redirects=False)
        await response.aclose()  # the body is not needed; a huge one is never read
        return response.status_code

    def _count(
        self,
        hook: Webhook,
        outcome: str,
        status_code: int | None,
        error: str | None,
        seconds: float,
    ) -> None:
        if outcome == "delivered":
            self.stats.delivered += 1
            log.debug("webhook %s delivered to %s", hook.event_id, _redact(hook.url))
        elif outcome == "retry":
            self.stats.retried += 1
            log.debug(
                "webhook %s to %s failed (%s); will retry",
                hook.event_id,
                _redact(hook.url),
                error,
            )
        else:
            self.stats.failed += 1
            log.warning(
                "webhook %s to %s given up after %d attempts: %s",
                hook.event_id,
                _redact(hook.url),
                hook.attempts,
                error,
            )
        if self._on_attempt is not None:
            self._on_attempt(
                AttemptOutcome(hook.id, hook.event.value, outcome, status_code, error, seconds)
            )
