"""The HTTP API (FastAPI): send, look up, list and cancel messages; inbound SMS; health; metrics.

A message is answered 202 only after it is committed to the store. Every endpoint but the
health checks requires ``Authorization: Bearer <API key>``; keys are compared in constant time.
A key from ``read_api_keys`` reads (messages, inbound, metrics); sending and cancelling with it
is answered 403.
Errors are JSON ``{"error": "<one sentence>", "errors": [{"field", "message"}]}``.

While the store cannot be reached (PostgreSQL down, an SQLite file locked by another writer)
a request that needs it is answered 503 with ``Retry-After`` rather than left hanging: a store
call that fails with a connection-level error, or takes longer than ``STORE_TIMEOUT`` seconds,
ends the request. A ``POST /v1/messages`` answered 503 stored nothing *unless* its batch was
already committing when the time ran out; such a message is then stored (and sent) although
the answer was 503. So retry a 503 with the same ``Idempotency-Key``: the retry then answers
202 for the message stored meanwhile instead of storing it twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final, TypeVar

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BeforeValidator, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from o2sms.service.batching import GroupCommit
from o2sms.service.metrics import CONTENT_TYPE, Metrics
from o2sms.service.schemas import (
    NOT_A_STRING,
    NUMBER_TEXT,
    Accepted,
    InboundView,
    MessagePage,
    MessageRequest,
    MessageView,
    RequestProblemError,
    accepted_json,
    has_controls,
    prepare,
)
from o2sms.service.settings import Settings, api_key_id
from o2sms.store import (
    EnqueueResult,
    IdempotencyConflictError,
    MessageStore,
    NewMessage,
    NotCancellableError,
)
from o2sms.store.errors import unavailable
from o2sms.store.models import MessageStatus

__all__ = ["RETRY_AFTER", "STORE_TIMEOUT", "ApiContext", "create_app"]

log = logging.getLogger("o2sms.service.http")

STORE_TIMEOUT = 5.0
"""Seconds a request waits for the store before it is answered 503 (the store's own busy
timeout is longer, for the workers' sake)."""

RETRY_AFTER = 5
"""The ``Retry-After`` (seconds) of a 503 for an unavailable store."""

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
"""The endpoints that need no API key: the health checks (and /docs, /openapi.json)."""

IDEMPOTENCY_KEY_LENGTH = 200
"""The longest ``Idempotency-Key`` header taken."""

_COMPONENTS = "#/components/schemas/{model}"
_SEND_SCHEMAS: dict[str, Any] = MessageRequest.model_json_schema(ref_template=_COMPONENTS)
_SEND_SCHEMAS = {**_SEND_SCHEMAS.pop("$defs", {}), "MessageRequest": _SEND_SCHEMAS}
"""The request body's schema and any it refers to, for the OpenAPI document's components."""


def _error_example(error: str, field_name: str | None = None) -> dict[str, Any]:
    """An OpenAPI answer with an example of the API's error body."""
    body: dict[str, Any] = {"error": error}
    if field_name is not None:
        body["errors"] = [{"field": field_name, "message": error.partition(": ")[2]}]
    return {"content": {"application/json": {"example": body}}}


_READ_ONLY: Final = (
    "this API key may only read (read_api_keys); sending and cancelling need one from api_keys"
)
_READ_ONLY_RESPONSE: dict[str, Any] = {
    "description": "the API key is one of read_api_keys: it may read, not send or cancel",
    **_error_example(_READ_ONLY),
}

_SEND_OPENAPI: dict[str, Any] = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": (
                "the same key returns the same message(s), never a second SMS; not empty, "
                "no control characters"
            ),
            "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_LENGTH},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": _COMPONENTS.format(model="MessageRequest")}}
        },
    },
    "responses": {
        "401": {
            "description": "no API key, or not one of this service's",
            **_error_example("the API key is not valid"),
        },
        "403": _READ_ONLY_RESPONSE,
        "409": {
            "description": "the Idempotency-Key was used for a request with other recipients "
            "or text; nothing was stored"
        },
        "413": {"description": "the body is larger than max_body_bytes"},
        "415": {"description": "the body is not declared JSON (Content-Type)"},
        "422": {
            "description": "a field, the header or the JSON is not valid",
            **_error_example("text: is required", "text"),
        },
        "503": {
            "description": "the store is unavailable or too slow (Retry-After); nothing was "
            "stored unless the batch was already committing: send again with the same "
            "Idempotency-Key, which then answers 202 for that message instead of a second SMS"
        },
    },
}
"""What ``POST /v1/messages`` takes and answers, for the OpenAPI document (it reads them
itself rather than through FastAPI's parameters)."""

T = TypeVar("T")


@dataclass
class ApiContext:
    """What the API needs from the running service."""

    settings: Settings
    store: MessageStore
    metrics: Metrics
    api_keys: Sequence[str]
    read_api_keys: Sequence[str] = ()  #: keys that may read but not send or cancel
    wake: Callable[[], None] = lambda: None
    sessions_bound: Callable[[], int] = lambda: 0
    #: bound sessions that can submit (transmitter or transceiver, not the flash one)
    sessions_sending: Callable[[], int] = lambda: 0
    #: whether a configured session can send (False: receivers only, an instance that
    #: receives for the others and is ready once any session is bound)
    can_send: Callable[[], bool] = lambda: True
    check_url: Callable[[str], str] | None = None
    startup: Callable[[], Awaitable[None]] | None = None
    shutdown: Callable[[], Awaitable[None]] | None = None
    store_timeout: float | None = None  #: None: :data:`STORE_TIMEOUT`
    _digests: list[tuple[bytes, str, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._digests = [
            (hashlib.sha256(k.encode()).digest(), api_key_id(k), writes)
            for keys, writes in ((self.api_keys, True), (self.read_api_keys, False))
            for k in keys
        ]

    def key_owner(self, presented: str) -> tuple[str, bool] | None:
        """The id of the API key ``presented`` matches and whether it may send and cancel, or
        None; constant time over all keys."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        owner = None
        for known, key_id, writes in self._digests:
            if hmac.compare_digest(digest, known):
                owner = (key_id, writes)
        return owner


class ApiError(Exception):
    """An error answer: status, one sentence, and per-field details."""

    def __init__(
        self,
        status: int,
        message: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []
        self.headers = headers


def _error_response(error: ApiError) -> JSONResponse:
    body: dict[str, Any] = {"error": error.message}
    if error.errors:
        body["errors"] = error.errors
    return JSONResponse(body, status_code=error.status, headers=error.headers)


BODY_KEY = "o2sms.body"
"""The ASGI scope key under which :class:`BodyLimit` leaves the whole request body."""


class BodyLimit:
    """Answers 413 to a request body over ``limit`` bytes, before it is all read."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _too_large(self) -> ApiError:
        return ApiError(413, f"the request body is larger than {self.limit} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self.limit):
                await _error_response(self._too_large())(scope, receive, send)
                return
        # Buffer the body (at most ``limit`` bytes) before the app sees it, so a chunked body
        # that grows too large is refused with 413 rather than half-parsed.
        chunks: list[bytes] = []
        seen = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await _error_response(self._too_large())(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        scope[BODY_KEY] = body  # for the app to take as it is (see :func:`_body`)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _body(request: Request) -> bytes:
    """The request's body: as :class:`BodyLimit` buffered it, else read from the stream."""
    buffered = request.scope.get(BODY_KEY)
    return buffered if isinstance(buffered, bytes) else await request.body()


def _check_idempotency_key(key: str) -> None:
    """Refuse (422) an ``Idempotency-Key`` that could not keep its promise."""
    problem = None
    if not key:
        problem = "is empty (an unset variable?); send a key or no header"
    elif len(key) > IDEMPOTENCY_KEY_LENGTH:
        problem = f"is longer than {IDEMPOTENCY_KEY_LENGTH} characters"
    elif has_controls(key):  # the store's per-message key separator is one
        problem = "must not contain control characters"
    if problem is not None:
        raise _problem("idempotency-key", problem)


def _not_a_number(value: object) -> object:
    """Refuse a number for a time: pydantic reads one as seconds since 1970 (since=2026)."""
    if isinstance(value, str) and NUMBER_TEXT.fullmatch(value.strip()):
        raise ValueError("must be an ISO 8601 time with an offset, e.g. 2026-01-01T00:00:00Z")
    return value


QueryTime = Annotated[datetime | None, BeforeValidator(_not_a_number)]
"""A time query parameter: ISO 8601, never a number."""


def _utc_query(value: datetime | None, name: str) -> datetime | None:
    """A time query parameter in UTC; 422 without a zone or beyond what a store can hold."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise _problem(name, "give a time zone, e.g. 2026-01-01T00:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise _problem(name, "is out of range") from None


async def _from_store(call: Awaitable[T], timeout: float) -> T:
    """Await a store call; 503 with Retry-After when the store is unavailable or too slow."""
    try:
        async with asyncio.timeout(timeout):
            return await call
    except Exception as exc:
        if not unavailable(exc):
            raise
        kind = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        log.warning("the store is unavailable (%s); answering 503", kind)
        raise ApiError(
            503,
            "the message store is unavailable; try again",
            headers={"Retry-After": str(RETRY_AFTER)},
        ) from None


_PLUS_AS_SPACE = re.compile(r":\d\d(\.\d+)? (\d\d:?\d\d|\d\d)$")
"""The end of a time (its minutes or seconds) whose offset's ``+`` a query string turned
into a space; the date and time may be separated by a space too, which stays."""


def _field_name(location: Sequence[int | str]) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "header", "path")]
    name = ""
    for part in parts:
        name += f"[{part}]" if part.isdigit() else (f".{part}" if name else part)
    return name or "body"


def _explain(problems: Sequence[Any]) -> ApiError:
    """A 422 naming each field pydantic's ``problems`` (its ``errors()``) are about."""
    errors = []
    for item in problems:
        where = _field_name(item.get("loc", ()))
        kind = item.get("type", "")
        if kind == "string_unicode":
            message = "is not valid Unicode (a lone UTF-16 surrogate?)"
        elif kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = "is not a field of this request"
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            message = "must be a JSON object"
        elif kind == NOT_A_STRING:
            where = f"{where}[{item['ctx']['index']}]"
            message = str(item.get("msg"))
        elif kind in ("time_delta_parsing", "time_delta_type"):
            message = "is not a duration: give seconds (7200) or ISO 8601 (PT2H, P1DT12H)"
            given = item.get("input")
            if isinstance(given, str) and NUMBER_TEXT.fullmatch(given.strip()):
                message = (
                    f'is a string: give seconds as a JSON number ({given.strip()}, not "{given}") '
                    "or an ISO 8601 duration (PT2H)"
                )
        elif (
            kind.startswith("datetime")
            and tuple(item.get("loc", ()))[:1] == ("query",)
            and _PLUS_AS_SPACE.search(str(item.get("input")))
        ):
            # "...T10:00:00+01:00" typed into a query string: its "+" was decoded as a space.
            head, _, offset = str(item["input"]).rpartition(" ")
            written = f"{head}%2B{offset}"  # the last space only: "2026-01-01 10:00:00 01:00"
            message = f"is not a time: in a query string write an offset's + as %2B ({written})"
        else:
            message = str(item.get("msg", "is invalid")).removeprefix("Value error, ")
        errors.append({"field": where, "message": message})
    first = errors[0] if errors else {"field": "body", "message": "is invalid"}
    return ApiError(422, f"{first['field']}: {first['message']}", errors)


def _problem(field_name: str, message: str) -> ApiError:
    """A 422 about one field."""
    return ApiError(422, f"{field_name}: {message}", [{"field": field_name, "message": message}])


def _allowed_methods(request: Request) -> str:
    """The methods of every route of the request's path, for a 405's ``Allow``.

    Starlette's own names those of the first route of the path only: ``GET`` for
    ``PUT /v1/messages``, whose ``POST`` is another route.
    """
    methods: set[str] = set()
    for route in request.app.router.routes:
        if route.matches(request.scope)[0] is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


def _is_json(content_type: str | None) -> bool:
    """True for ``application/json`` and ``application/<anything>+json``, parameters aside."""
    if not content_type:
        return False
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _send_request(raw: bytes, content_type: str | None) -> MessageRequest:
    """The body of ``POST /v1/messages``, parsed and validated; ApiError when it is not one.

    Parsed here rather than by FastAPI's body parameter, whose machinery cost a one-recipient
    request more than the rest of its handling. The same parser as FastAPI's (``json.loads``,
    which also takes UTF-16 and UTF-32) keeps lone surrogates for validation to name.
    """
    if not _is_json(content_type):
        raise ApiError(415, "send the body as JSON, with Content-Type: application/json")
    if not raw:
        raise _problem("body", "is required")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _problem("body", f"is not valid JSON ({exc.msg} at character {exc.pos})") from None
    except UnicodeDecodeError:
        raise _problem("body", "is not valid JSON (not UTF-8 text)") from None
    except ValueError:  # Python's limit on the digits of an integer
        raise _problem("body", "is not valid JSON (a number with too many digits)") from None
    except RecursionError:
        raise _problem("body", "is nested too deeply to be a message") from None
    try:
        return MessageRequest.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc.errors()) from None


def _key_owner(request: Request, *, writes: bool = False) -> str:
    """The id of the request's API key; 401 when it is missing or wrong, 403 when ``writes``
    (the request sends or cancels) and it is a read-only key."""
    context: ApiContext = request.app.state.context
    authorization = request.headers.get("authorization")
    challenge = {"WWW-Authenticate": "Bearer"}
    if not authorization:
        raise ApiError(
            401, "an API key is required: Authorization: Bearer <key>", headers=challenge
        )
    scheme, _, presented = authorization.partition(" ")
    owner = context.key_owner(presented.strip()) if scheme.lower() == "bearer" else None
    if owner is None:
        raise ApiError(401, "the API key is not valid", headers=challenge)
    key_id, may_write = owner
    if writes and not may_write:
        raise ApiError(403, _READ_ONLY)
    return key_id


async def _authorised(request: Request) -> str:
    """:func:`_key_owner` as a FastAPI dependency.

    ``async`` though it awaits nothing: FastAPI runs a plain ``def`` dependency in its thread
    pool, a thread hop per request and dozens of idle threads under load. The header is read
    from the request rather than declared (it was hidden from the schema anyway): a declared
    header costs FastAPI's parameter machinery on every request.
    """
    return _key_owner(request)


async def _authorised_to_write(request: Request) -> str:
    """:func:`_key_owner` for a request that changes messages, as a FastAPI dependency."""
    return _key_owner(request, writes=True)


OwnerKey = Annotated[str, Depends(_authorised)]
WriterKey = Annotated[str, Depends(_authorised_to_write)]


class _Api(FastAPI):
    """FastAPI, with ``POST /v1/messages`` served without Starlette's middleware and routing.

    Every message comes in through that one endpoint; the framework's layers around it (error
    and exception middleware, exit stack, body limit, router, dependency solving) cost about as
    much as the endpoint's own work (docs/benchmarks.md, eleventh sitting). :attr:`fast_send`,
    set by :func:`create_app`, does what they did for it: the body limit, the JSON error
    answers and a 500 for a bug. The route stays declared, so OpenAPI documents it.
    """

    fast_send: ASGIApp | None = None

    def add_middleware(self, middleware_class: Any, *args: Any, **kwargs: Any) -> None:
        """FastAPI's, and the send endpoint back on the normal way: it must pass the new one."""
        self.fast_send = None
        super().add_middleware(middleware_class, *args, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Take the send endpoint's requests here, hand everything else to FastAPI."""
        if (
            self.fast_send is not None
            and scope["type"] == "http"
            and scope["path"] == "/v1/messages"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            scope["app"] = self
            await self.fast_send(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _served(endpoint: Callable[[Request], Awaitable[Response]]) -> ASGIApp:
    """``endpoint`` as a bare ASGI app: ApiError as its JSON answer, any other error a 500."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await endpoint(Request(scope, receive))
        except ApiError as exc:
            response = _error_response(exc)
        except Exception:
            # What Starlette's ServerErrorMiddleware does: answer 500, let the server log it
            # (uvicorn then closes the connection, so say so).
            await PlainTextResponse(
                "Internal Server Error", status_code=500, headers={"Connection": "close"}
            )(scope, receive, send)
            raise
        await response(scope, receive, send)

    return app


def create_app(context: ApiContext) -> FastAPI:
    """The FastAPI application over ``context``; its lifespan runs startup/shutdown."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if context.startup is not None:
            await context.startup()
        try:
            yield
        finally:
            if context.shutdown is not None:
                await context.shutdown()

    app = _Api(
        # No OpenTelemetry here (metrics are Prometheus): off, its per-request checks go too.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="o2sms",
        summary="The O2 SMS Connector: send SMS, follow delivery, receive inbound SMS.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.context = context
    settings = context.settings
    store = context.store
    metrics = context.metrics
    store_timeout = STORE_TIMEOUT if context.store_timeout is None else context.store_timeout
    flash_available = settings.sends_flash  # settings do not change while the app runs

    def openapi() -> dict[str, Any]:
        """FastAPI's document, plus the schemas the send endpoint refers to by name and the
        Bearer key every endpoint but the health checks needs (read from the request, it is
        no parameter FastAPI could document; without it /docs could not send the key)."""
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            components = document.setdefault("components", {})
            components.setdefault("schemas", {}).update(_SEND_SCHEMAS)
            components["securitySchemes"] = {"apiKey": {"type": "http", "scheme": "bearer"}}
            for path, operations in document.get("paths", {}).items():
                if path not in PUBLIC_PATHS:
                    for operation in operations.values():
                        operation["security"] = [{"apiKey": []}]
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]

    enqueue: GroupCommit[list[NewMessage], list[EnqueueResult] | IdempotencyConflictError] = (
        GroupCommit(store.enqueue_requests, weight=len, max_weight=2000, turn=store.write_turn)
    )

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(_explain(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Allow must name what the path takes (RFC 9110 15.5.6)
            headers["Allow"] = _allowed_methods(request)
        return _error_response(ApiError(exc.status_code, str(exc.detail), headers=headers))

    @app.post(
        "/v1/messages",
        status_code=202,
        response_model=Accepted,
        tags=["messages"],
        openapi_extra=_SEND_OPENAPI,
    )
    async def send_messages(request: Request) -> Response:
        """Store an SMS to one recipient or many; 202 once it is durably queued."""
        # The hot path: body, header and answer are handled here rather than by FastAPI's
        # parameters and response model, which cost more than the rest of the request.
        owner = _key_owner(request, writes=True)
        headers = request.headers
        idempotency_key = headers.get("idempotency-key")
        if idempotency_key is not None:
            _check_idempotency_key(idempotency_key)
        body = _send_request(await _body(request), headers.get("content-type"))
        try:
            new, encoding, parts = prepare(
                body,
                region=settings.region,
                default_sender=settings.sender,
                max_recipients=settings.max_recipients,
                owner=owner,
                idempotency_key=idempotency_key,
                check_url=context.check_url,
                flash_available=flash_available,
            )
        except RequestProblemError as exc:
            raise _problem(exc.field, exc.message) from None
        results = await _from_store(enqueue.submit(new), store_timeout)
        if isinstance(results, IdempotencyConflictError):  # nothing of this request was stored
            raise ApiError(409, "this Idempotency-Key was used before for a different request")
        replayed = [r for r in results if not r.created]
        created = len(results) - len(replayed)
        if created:
            metrics.accepted.inc(created)
            context.wake()
        if replayed:  # what the first request stored, whatever this one asked for
            first = replayed[0].message
            encoding, parts = first.encoding or encoding, first.parts_count
        return Response(
            accepted_json(results, encoding, parts),
            status_code=202,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"} if replayed else None,
        )

    @app.get(
        "/v1/messages/{message_id}",
        response_model=MessageView,
        tags=["messages"],
        response_model_by_alias=True,
    )
    async def get_message(message_id: str, _owner: OwnerKey) -> MessageView:
        """A message with its parts and timeline."""
        message = None
        if "\x00" not in message_id:  # no id has one, and PostgreSQL cannot even compare it
            message = await _from_store(store.get(message_id), store_timeout)
        if message is None:
            raise ApiError(404, f"no message with id {message_id!r}")
        return MessageView.of(message, detail=True)

    @app.get("/v1/messages", response_model=MessagePage, tags=["messages"])
    async def list_messages(  # noqa: PLR0917 - FastAPI reads query parameters from the signature
        _owner: OwnerKey,
        status: Annotated[list[MessageStatus] | None, Query()] = None,
        reference: str | None = None,
        since: QueryTime = None,
        until: QueryTime = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        cursor: str | None = None,
    ) -> MessagePage:
        """Messages newest first, filtered by status, reference and creation time."""
        since, until = _utc_query(since, "since"), _utc_query(until, "until")
        if reference is not None and "\x00" in reference:  # no message has one (prepare)
            raise _problem("reference", "must not contain control characters")
        try:
            page = await _from_store(
                store.list_messages(
                    status=status,
                    reference=reference,
                    created_from=since,
                    created_to=until,
                    limit=limit,
                    cursor=cursor,
                ),
                store_timeout,
            )
        except ValueError as exc:
            raise _problem("cursor", str(exc)) from None
        return MessagePage(
            items=[MessageView.of(m) for m in page.items], next_cursor=page.next_cursor
        )

    @app.post(
        "/v1/messages/{message_id}/cancel",
        response_model=MessageView,
        tags=["messages"],
        responses={403: _READ_ONLY_RESPONSE},
    )
    async def cancel_message(message_id: str, _owner: WriterKey) -> MessageView:
        """Cancel a message that is still queued or scheduled."""
        try:
            if "\x00" in message_id:  # as in get_message
                raise LookupError(message_id)
            message, cancelled = await _from_store(store.cancel_changed(message_id), store_timeout)
        except LookupError:
            raise ApiError(404, f"no message with id {message_id!r}") from None
        except NotCancellableError as exc:
            raise ApiError(409, str(exc)) from None
        if cancelled:  # cancelling a cancelled message again is no new final status
            metrics.final.labels(MessageStatus.CANCELLED.value).inc()
        return MessageView.of(message)

    @app.get("/v1/inbound", response_model=list[InboundView], tags=["inbound"])
    async def list_inbound(
        _owner: OwnerKey,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    ) -> list[InboundView]:
        """Inbound SMS, newest first; pass the last id as ``before_id`` for the next page."""
        inbound = await _from_store(
            store.list_inbound(limit=limit, before_id=before_id), store_timeout
        )
        return [InboundView.of(s) for s in inbound]

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Ready when the store answers and at least one SMPP session that can send (a
        transmitter or transceiver) is bound: a receiver alone sends nothing. An instance
        configured with receivers only is ready once one of them is bound."""
        problems = []
        try:
            async with asyncio.timeout(store_timeout):
                await store.queue_depth()
        except Exception as exc:
            log.warning("readiness: store unreachable: %s", exc)
            problems.append("the store is unreachable")
        bound = context.sessions_bound()
        sending = context.sessions_sending()
        if not context.can_send():
            if bound < 1:  # receivers only: receiving is this instance's job
                problems.append("no SMPP session is bound")
        elif sending < 1:
            problems.append("no SMPP session that can send (transmitter or transceiver) is bound")
        body: dict[str, object] = {
            "status": "ok" if not problems else "unavailable",
            "sessions_bound": bound,
            "sessions_sending": sending,
        }
        if problems:
            body["problems"] = problems
        return JSONResponse(body, status_code=200 if not problems else 503)

    @app.get("/metrics", tags=["health"])
    async def metrics_endpoint(_owner: OwnerKey) -> Response:
        """Prometheus metrics."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.fast_send = BodyLimit(_served(send_messages), limit=settings.max_body_bytes)  # last
    return app
