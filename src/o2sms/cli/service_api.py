"""A small client of a running ``o2sms serve``'s HTTP API, for ``o2sms send --via`` and
``o2sms status``.

It speaks the wire contract (JSON field names and lowercase status strings of
``docs/http-api.md``) rather than importing the service's models, so the commands stay a thin
HTTP client. Every failure becomes a :class:`ServiceError` whose text is one sentence a person
can act on, and whose ``exit_code`` the commands use: 2 for a request the service refused
(4xx), 1 for a service that cannot be reached or failed (5xx, timeouts).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote

import httpx

from o2sms.errors import O2smsError

__all__ = [
    "DEFAULT_URL",
    "FINAL_STATUSES",
    "SANDBOX_KEY_FILE",
    "Sent",
    "ServiceApi",
    "ServiceError",
    "api_key_or_sandbox",
    "schedule_fields",
]

DEFAULT_URL: Final = "http://127.0.0.1:8000"
"""Where ``o2sms serve`` listens by default (``--http-host``/``--http-port``)."""

FINAL_STATUSES: Final = frozenset(
    {
        "delivered",
        "undelivered",
        "expired",
        "rejected",
        "deleted",
        "unknown",
        "failed",
        "cancelled",
    }
)
"""Statuses after which a message does not change any more (``accepted`` may still be
upgraded by a later receipt, so it is not among them)."""

SANDBOX_KEY_FILE: Final = "o2sms-sandbox.key"
"""Where ``o2sms serve`` in sandbox mode saves its API key, in the folder it runs in (the
default of ``sandbox.key_file``)."""


class ServiceError(O2smsError):
    """A request to the service failed; ``str()`` is one sentence, ``exit_code`` 1 or 2.

    ``status`` is the HTTP status when the service answered, None when it could not be reached.
    """

    def __init__(self, message: str, *, status: int | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class Sent:
    """The service's 202 answer to a send request: message ids per recipient, encoding, parts."""

    ids: list[str]
    recipients: list[str]
    encoding: str
    parts: int
    replayed: bool  #: the Idempotency-Key was seen before: no new SMS was stored


_DURATION: Final = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ISO_DURATION: Final = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


def schedule_fields(text: str) -> dict[str, Any]:
    """The request fields for ``--schedule``: ``schedule_in`` seconds for a duration (``90s``,
    ``15m``, ``2h``, ``1d``, ``1h30m``, ISO 8601 ``PT2H``), or ``schedule_at`` for an ISO 8601
    time with an offset (``2026-05-01T08:00:00+02:00``).

    Raises ValueError with a sentence for anything else, before any request is made.
    """
    value = text.strip()
    match = _DURATION.fullmatch(value.lower()) or _ISO_DURATION.fullmatch(value.upper())
    if value and match is not None and any(match.groups()):
        days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
        return {"schedule_in": ((days * 24 + hours) * 60 + minutes) * 60 + seconds}
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        at = None
    if at is None or not value:
        raise ValueError(
            f"--schedule {text!r} is neither a duration (90s, 15m, 2h, 1d, PT2H) "
            "nor an ISO 8601 time (2026-05-01T08:00:00+02:00)"
        )
    if at.tzinfo is None:
        raise ValueError(f"--schedule {text!r}: give a time zone, e.g. {value}+02:00 or {value}Z")
    return {"schedule_at": at.isoformat()}


def api_key_or_sandbox(api_key: str | None) -> str:
    """The API key the commands send: ``api_key`` (``--api-key``, else ``O2SMS_API_KEY``, as
    typer read them), else the sandbox key ``o2sms serve`` saved in ``o2sms-sandbox.key`` in
    the current folder.

    Raises ServiceError (exit 2) with one sentence when there is none.
    """
    if api_key:
        return api_key
    path = Path(SANDBOX_KEY_FILE)
    try:
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        key = ""
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ServiceError(f"cannot read the API key in {path}: {reason}", exit_code=2) from None
    if key:
        return key
    raise ServiceError(
        "no API key: give --api-key, set O2SMS_API_KEY, or run this in the folder where "
        f"`o2sms serve` (sandbox mode) saved {SANDBOX_KEY_FILE}",
        exit_code=2,
    )


_NO_MESSAGE: Final = "no message with id "
"""How the API's 404 for an unknown message id begins (o2sms.service.http)."""


def _from_o2sms(response: httpx.Response) -> bool:
    """True when an error answer has the o2sms API's body: a JSON object with ``error``."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), str)


def _error_sentence(response: httpx.Response) -> str:
    """The API's ``error`` sentence, or a plain description when the body has none."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    return f"the service answered {response.status_code} {response.reason_phrase}".strip()


def _header_value(value: str, what: str) -> str:
    """``value`` if HTTP can carry it in a header (printable ASCII), else ServiceError."""
    if not value.isascii() or not value.isprintable():
        raise ServiceError(
            f"{what} must be printable ASCII (letters, digits, punctuation)", exit_code=2
        )
    return value


class ServiceApi:
    """An async client of one service (``base_url``), authorised with ``api_key`` if given.

    Use as ``async with ServiceApi(url, key) as api``. ``concurrency`` caps the connections,
    which bounds the requests in flight for bulk sends.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        concurrency: int = 16,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        headers = {"User-Agent": "o2sms-cli"}
        if api_key:
            _header_value(api_key, "the API key")
            headers["Authorization"] = f"Bearer {api_key}"
        try:
            url = httpx.URL(self.base_url)
        except httpx.InvalidURL as exc:
            raise ServiceError(
                f"{base_url!r} is not a valid service URL ({exc})", exit_code=2
            ) from None
        scheme = url.scheme
        if url.port is not None and not 1 <= url.port <= 65535:  # connect() would overflow
            raise ServiceError(
                f"{base_url!r} is not a valid service URL "
                f"(its port must be 1 to 65535, got {url.port})",
                exit_code=2,
            )
        if scheme not in {"http", "https"}:  # "localhost:8000" reads as scheme "localhost"
            raise ServiceError(
                f"{base_url!r} is not a valid service URL "
                f"(it must start with http:// or https://, e.g. {DEFAULT_URL})",
                exit_code=2,
            )
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One request; transport failures and error answers become ServiceError."""
        try:
            response = await self._http.request(method, path, json=json, headers=headers)
        except httpx.InvalidURL as exc:
            raise ServiceError(
                f"cannot build the request for {path!r}: {exc}", exit_code=2
            ) from None
        except httpx.ConnectError:
            raise ServiceError(
                f"cannot connect to the o2sms service at {self.base_url} "
                "(is `o2sms serve` running there?)"
            ) from None
        except httpx.TimeoutException:
            raise ServiceError(
                f"the o2sms service at {self.base_url} did not answer in time"
            ) from None
        except httpx.HTTPError as exc:
            raise ServiceError(
                f"request to the o2sms service at {self.base_url} failed: {exc}"
            ) from None
        if response.status_code in {404, 405, 501} and not _from_o2sms(response):
            # No such path or method there: another server (the simulator's HTTP port, say),
            # not an o2sms service with no such message.
            answer = f"HTTP {response.status_code} {response.reason_phrase}".strip()
            raise ServiceError(
                f"unexpected answer from {self.base_url}: {answer} (is it the o2sms service?)"
            )
        if response.status_code >= 400:
            raise ServiceError(
                _error_sentence(response) + self._key_hint(response.status_code),
                status=response.status_code,
                exit_code=2 if response.status_code < 500 else 1,
            )
        if response.status_code >= 300:  # the API never redirects: not the o2sms service
            raise ServiceError(
                f"unexpected answer from {self.base_url}: HTTP {response.status_code} "
                "(is it the o2sms service?)",
                status=response.status_code,
            )
        return response

    def _key_hint(self, status: int) -> str:
        """For a refused key read from the sandbox's file: where it came from, what to do."""
        if status != 401 or not self._api_key:
            return ""
        try:
            sandbox_key = Path(SANDBOX_KEY_FILE).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return ""
        if sandbox_key != self._api_key:
            return ""
        return (
            f" (it is the sandbox key from ./{SANDBOX_KEY_FILE}; for another service give "
            "--api-key or set O2SMS_API_KEY)"
        )

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        """The answer's JSON object, or ServiceError when it is something else."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ServiceError(
                f"unexpected answer from {self.base_url}: not a JSON object "
                "(is it the o2sms service?)"
            )
        return body

    async def send(self, body: Mapping[str, Any], *, idempotency_key: str | None = None) -> Sent:
        """``POST /v1/messages`` with ``body`` (MessageRequest JSON); the 202 answer."""
        headers = None
        if idempotency_key:
            headers = {"Idempotency-Key": _header_value(idempotency_key, "the idempotency key")}
        response = await self._request("POST", "/v1/messages", json=body, headers=headers)
        answer = self._json(response)
        try:  # another API's JSON object (--via at the wrong port) is no traceback either
            messages = answer["messages"]
            return Sent(
                ids=[str(m["id"]) for m in messages],
                recipients=[str(m["to"]) for m in messages],
                encoding=str(answer["encoding"]),
                parts=int(answer["parts"]),
                replayed=response.headers.get("Idempotent-Replayed") == "true",
            )
        except (KeyError, TypeError, ValueError):
            raise ServiceError(
                f"unexpected answer from {self.base_url}: not the answer to a send request "
                "(is it the o2sms service?)"
            ) from None

    async def message(self, message_id: str) -> dict[str, Any]:
        """``GET /v1/messages/{id}``: the message with its parts and timeline, as JSON."""
        if not message_id.strip("."):  # "", "." and ".." would name another resource
            raise ServiceError(f"{message_id!r} is not a message id", exit_code=2)
        try:
            response = await self._request("GET", f"/v1/messages/{_segment(message_id)}")
        except ServiceError as exc:
            if exc.status == 404 and not str(exc).startswith(_NO_MESSAGE):
                # JSON with an error, but not the API's for an unknown message: another server
                # (the simulator's JSON endpoint says "no such resource ...")
                raise ServiceError(
                    f"unexpected answer from {self.base_url}: HTTP 404 Not Found "
                    "(is it the o2sms service?)"
                ) from None
            raise
        view = self._json(response)
        if not _is_message(view):  # another API's JSON object: no traceback, no empty table
            raise ServiceError(
                f"unexpected answer from {self.base_url}: not a message (is it the o2sms service?)"
            )
        return view

    async def wait_final(
        self,
        message_id: str,
        *,
        timeout: float,
        on_change: Callable[[dict[str, Any]], None] | None = None,
        first_interval: float = 0.1,
        max_interval: float = 2.0,
    ) -> dict[str, Any]:
        """Poll the message until its status is final or ``timeout`` seconds pass; the last
        view. ``on_change`` is called with each view whose status differs from the one before.

        The poll interval starts short (a sandbox delivers in well under a second) and grows
        to ``max_interval`` so that a long wait does not load the service.
        """
        deadline = time.monotonic() + timeout
        interval = first_interval
        last_status: str | None = None
        while True:
            view = await self.message(message_id)
            if view.get("status") != last_status:
                last_status = view.get("status")
                if on_change is not None:
                    on_change(view)
            remaining = deadline - time.monotonic()
            if last_status in FINAL_STATUSES or remaining <= 0:
                return view
            await asyncio.sleep(min(interval, remaining))
            interval = min(interval * 1.5, max_interval)


def _is_message(view: Mapping[str, Any]) -> bool:
    """Whether ``view`` has the shape of ``GET /v1/messages/{id}``'s answer, as far as the
    commands read it: an id and a status, parts and timeline lists of objects (or null)."""
    return (
        isinstance(view.get("id"), str)
        and isinstance(view.get("status"), str)
        and all(
            view.get(name) is None
            or (isinstance(view[name], list) and all(isinstance(i, dict) for i in view[name]))
            for name in ("parts", "timeline")
        )
    )


def _segment(value: str) -> str:
    """``value`` safe as one URL path segment (an id typed by a person may hold anything)."""
    return quote(value, safe="")
