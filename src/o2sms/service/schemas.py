"""The HTTP API's JSON shapes, and turning a send request into messages for the store.

Everything a person can get wrong in a request is checked here, before anything is stored:
numbers, sender, text (encodable, not too long, one part when flash), schedule, validity and
callback URL. Each problem is reported as ``RequestProblemError(field, sentence)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError, to_json

from o2sms.client import addresses
from o2sms.client.config import GATEWAY_MAX_PARTS
from o2sms.client.errors import AddressError
from o2sms.store.models import EnqueueResult, InboundMessage, Message, MessageStatus, NewMessage
from o2sms.text import plan
from o2sms.text.errors import MessageTooLongError, TextError

__all__ = [
    "GATEWAY_MAX_PARTS",
    "MAX_VALIDITY",
    "NOT_A_STRING",
    "Accepted",
    "AcceptedMessage",
    "InboundView",
    "MessageRequest",
    "MessageView",
    "RequestProblemError",
    "accepted_json",
    "has_controls",
    "prepare",
]

MAX_VALIDITY = timedelta(days=7)
"""The longest validity accepted; SMSCs cap it (commonly 48 h to 7 days) anyway."""

MAX_SCHEDULE = timedelta(days=365)

NOT_A_STRING = "recipient_not_a_string"
"""The validation error type of a recipient in a ``to`` list that is not a JSON string;
its context's ``index`` says which one."""


NUMBER_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
"""A JSON number's text: a number sent as a string (seconds, or a time given as a number)."""


def _shown(value: object) -> str:
    """``value`` as it was written in JSON, cut short when long."""
    try:
        text = to_json(value).decode()
    except ValueError:
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class RequestProblemError(ValueError):
    """A request that cannot be sent as given; ``field`` names the JSON field."""

    def __init__(self, field: str, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.field = field if index is None else f"{field}[{index}]"
        self.message = message


class MessageRequest(BaseModel):
    """The body of ``POST /v1/messages``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=False)

    to: str | list[str] = Field(description="a phone number, or a list of them")
    text: str = Field(min_length=1, max_length=10_000)
    sender: str | None = Field(default=None, alias="from", max_length=20)
    flash: bool = False
    schedule_at: AwareDatetime | None = Field(default=None, description="ISO 8601 with offset")
    schedule_in: timedelta | None = Field(
        default=None, description="seconds, or an ISO 8601 duration such as PT2H"
    )
    validity: timedelta | None = Field(default=None, description="seconds or ISO 8601 duration")
    reference: str | None = Field(default=None, max_length=100)
    callback_url: str | None = Field(default=None, max_length=2000)
    encoding: Literal["auto", "gsm7", "latin1", "ucs2"] = "auto"
    transliterate: bool = Field(default=False, description="č -> c etc. to stay in GSM 7-bit")

    # JSON types are checked before pydantic's lax conversions, which took true as 1 second,
    # "yes", "on" or 1 as true, and a number as seconds since 1970: a mistake to name, not guess.
    @field_validator("flash", "transliterate", mode="before")
    @classmethod
    def _json_boolean(cls, value: object) -> object:
        if not isinstance(value, bool):
            raise ValueError(f"must be JSON true or false, not {_shown(value)}")
        return value

    @field_validator("schedule_in", "validity", mode="before")
    @classmethod
    def _duration_not_boolean(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError(
                f"is not a duration: give seconds (7200) or ISO 8601 (PT2H), not {_shown(value)}"
            )
        return value

    @field_validator("schedule_at", mode="before")
    @classmethod
    def _iso_time(cls, value: object) -> object:
        if value is None or isinstance(value, datetime):
            return value
        if not isinstance(value, str) or NUMBER_TEXT.fullmatch(value.strip()):
            raise ValueError(
                "must be an ISO 8601 time with an offset, such as 2026-11-26T12:00:00+01:00, "
                f"not {_shown(value)}"
            )
        return value

    @field_validator("to", mode="before")
    @classmethod
    def _recipient_types(cls, value: object) -> object:
        # Checked before the union: pydantic would name its branches ("to.list[str][1]").
        if isinstance(value, list):
            for index, item in enumerate(value):
                if not isinstance(item, str):
                    raise PydanticCustomError(
                        NOT_A_STRING,
                        'is not a string: write phone numbers as strings, such as "+421903123456"',
                        {"index": index},
                    )
        elif not isinstance(value, str):
            raise ValueError(
                'must be a phone number as a string, such as "+421903123456", or a list of them'
            )
        return value

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("give at least one recipient")
        return value

    def recipients(self) -> list[str]:
        """``to`` as a list."""
        return [self.to] if isinstance(self.to, str) else list(self.to)


class AcceptedMessage(BaseModel):
    """One stored message in the answer to a send request."""

    id: str
    to: str
    status: MessageStatus


class Accepted(BaseModel):
    """The 202 answer: the messages stored, with the encoding and parts each one takes."""

    messages: list[AcceptedMessage]
    encoding: str
    parts: int


def accepted_json(results: Sequence[EnqueueResult], encoding: str, parts: int) -> bytes:
    """:class:`Accepted` for ``results`` as JSON, the same bytes as its ``model_dump_json``.

    Without the models: building one per message and serialising it (an enum pydantic must
    inspect each time) cost several times this on the API's busiest path.
    """
    return to_json(
        {
            "messages": [
                {"id": r.id, "to": r.recipient, "status": r.status.value} for r in results
            ],
            "encoding": encoding,
            "parts": parts,
        }
    )


class PartView(BaseModel):
    """One SMS part of a message."""

    part_no: int
    smsc_id: str | None
    status: MessageStatus
    error_code: str | None
    submitted_at: datetime | None
    receipt_at: datetime | None


class TimelineEntry(BaseModel):
    """One entry of a message's history."""

    at: datetime
    kind: str
    detail: dict[str, Any]


class ErrorView(BaseModel):
    """Why a message failed."""

    code: int | None
    name: str | None
    detail: str | None


class MessageView(BaseModel):
    """A message as the API shows it."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    to: str
    sender: str | None = Field(serialization_alias="from")
    text: str | None
    encoding: str | None
    parts_count: int
    flash: bool
    schedule_at: datetime | None
    validity: float | None
    reference: str | None
    callback_url: str | None
    status: MessageStatus
    attempts: int
    resends: int
    error: ErrorView | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    parts: list[PartView] | None = None
    timeline: list[TimelineEntry] | None = None

    @classmethod
    def of(cls, message: Message, *, detail: bool = False) -> MessageView:
        """The view of a stored message; ``detail`` adds parts and timeline."""
        error = None
        if message.error_name or message.error_code is not None:
            error = ErrorView(
                code=message.error_code, name=message.error_name, detail=message.error_detail
            )
        return cls(
            id=message.id,
            to=message.recipient,
            sender=message.sender,
            text=message.text,
            encoding=message.encoding,
            parts_count=message.parts_count,
            flash=message.flash,
            schedule_at=message.schedule_at,
            validity=None if message.validity is None else message.validity.total_seconds(),
            reference=message.reference,
            callback_url=message.callback_url,
            status=message.status,
            attempts=message.attempts,
            resends=message.resends,
            error=error,
            created_at=message.created_at,
            updated_at=message.updated_at,
            submitted_at=message.submitted_at,
            finished_at=message.finished_at,
            parts=[PartView(**_fields(p)) for p in message.parts] if detail else None,
            timeline=[
                TimelineEntry(at=e.at, kind=e.kind.value, detail=e.detail) for e in message.events
            ]
            if detail
            else None,
        )


class MessagePage(BaseModel):
    """A page of ``GET /v1/messages``; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[MessageView]
    next_cursor: str | None


class InboundView(BaseModel):
    """An inbound SMS."""

    id: int
    sender: str = Field(serialization_alias="from")
    to: str
    text: str | None
    data_coding: int
    parts: int
    received_at: datetime

    @classmethod
    def of(cls, sms: InboundMessage) -> InboundView:
        """The view of a stored inbound SMS."""
        return cls(
            id=sms.id,
            sender=sms.source,
            to=sms.destination,
            text=sms.text,
            data_coding=sms.data_coding,
            parts=sms.parts,
            received_at=sms.received_at,
        )


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def has_controls(value: str) -> bool:
    """True when ``value`` holds a C0 control character or DEL."""
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in value)


def _no_controls(value: str, field: str) -> None:
    if has_controls(value):
        raise RequestProblemError(field, "must not contain control characters")


def prepare(
    request: MessageRequest,
    *,
    region: str,
    default_sender: str | None,
    max_recipients: int,
    owner: str,
    idempotency_key: str | None,
    check_url: Callable[[str], str] | None = None,
    now: datetime | None = None,
    flash_available: bool = True,
) -> tuple[list[NewMessage], str, int]:
    """The messages to store for ``request``, with the encoding and parts count of the text.

    ``flash_available`` False refuses flash messages: no session of this connector sends them.

    Raises RequestProblemError for the first thing wrong. Recipients are normalised to international
    numbers; a list sends one message per distinct recipient (duplicates are dropped).
    """
    now = now or datetime.now(UTC)
    recipients = request.recipients()
    if len(recipients) > max_recipients:
        raise RequestProblemError(
            "to", f"at most {max_recipients} recipients per request, got {len(recipients)}"
        )
    numbers: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(recipients):
        try:
            number = "+" + addresses.international_number(raw.strip(), region)
        except AddressError as exc:
            where = None if isinstance(request.to, str) else index
            raise RequestProblemError("to", str(exc), index=where) from None
        if number not in seen:
            seen.add(number)
            numbers.append(number)

    sender = request.sender if request.sender is not None else default_sender
    if sender is not None:
        try:
            addresses.sender(sender, region=region)
        except AddressError as exc:
            raise RequestProblemError("from", str(exc)) from None

    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in request.text):
        raise RequestProblemError("text", "contains a lone UTF-16 surrogate (broken Unicode)")
    if "\x00" in request.text:  # no handset shows it, and PostgreSQL text cannot hold it
        raise RequestProblemError("text", "contains a NUL character (U+0000)")
    try:
        measured = plan(
            request.text,
            encoding=None if request.encoding == "auto" else request.encoding,
            transliterate=request.transliterate,
            max_parts=GATEWAY_MAX_PARTS,
        )
    except MessageTooLongError as exc:
        raise RequestProblemError("text", f"is too long: {exc}") from None
    except TextError as exc:
        raise RequestProblemError("text", str(exc)) from None
    if not measured.text:  # "\u00ad" transliterated: no empty SMS, as no empty text
        raise RequestProblemError(
            "text", "is empty once transliterated (it has only characters transliteration drops)"
        )
    if request.flash and not flash_available:
        raise RequestProblemError(
            "flash",
            "this connector has no flash session to send flash messages on "
            "(set gateway.flash_session = true, O2SMS_GATEWAY__FLASH_SESSION)",
        )
    if request.flash and measured.parts > 1:
        raise RequestProblemError(
            "text",
            f"a flash message must fit one SMS ({measured.encoding.single_limit} "
            f"{measured.encoding.value} characters); this one needs {measured.parts} parts",
        )

    schedule_at = _schedule(request, now)
    if request.validity is not None and not (
        timedelta(seconds=60) <= request.validity <= MAX_VALIDITY
    ):
        raise RequestProblemError("validity", "must be between 60 seconds and 7 days")
    callback = request.callback_url
    if callback is not None:
        _no_controls(callback, "callback_url")
    if callback is not None and check_url is not None:
        try:
            callback = check_url(callback)
        except ValueError as exc:
            raise RequestProblemError("callback_url", str(exc)) from None
    if request.reference is not None:
        _no_controls(request.reference, "reference")

    messages = [
        NewMessage(
            recipient=number,
            text=measured.text,
            sender=sender,
            encoding=measured.encoding.value,
            parts=measured.parts,
            flash=request.flash,
            schedule_at=schedule_at,
            validity=request.validity,
            reference=request.reference,
            idempotency_key=idempotency_key,  # the request's: the store keys each message
            owner=owner,
            callback_url=callback,
        )
        for number in numbers
    ]
    return messages, measured.encoding.value, measured.parts


def _schedule(request: MessageRequest, now: datetime) -> datetime | None:
    if request.schedule_at is not None and request.schedule_in is not None:
        raise RequestProblemError("schedule_at", "give schedule_at or schedule_in, not both")
    if request.schedule_in is not None:
        if request.schedule_in.total_seconds() < 0:
            raise RequestProblemError("schedule_in", "must not be negative")
        if request.schedule_in > MAX_SCHEDULE:
            raise RequestProblemError("schedule_in", "must be at most 365 days")
        return now + request.schedule_in
    if request.schedule_at is not None:
        try:
            at = request.schedule_at.astimezone(UTC)
        except OverflowError:  # within a day of year 1 or of year 9999
            if request.schedule_at.year > 1:
                raise RequestProblemError("schedule_at", "must be at most 365 days ahead") from None
            at = datetime.min.replace(tzinfo=UTC)
        if at < now - timedelta(seconds=5):
            raise RequestProblemError("schedule_at", f"{at.isoformat()} is in the past")
        if at > now + MAX_SCHEDULE:
            raise RequestProblemError("schedule_at", "must be at most 365 days ahead")
        return at
    return None
