"""``o2sms status ID``: one message as a running o2sms service knows it.

Shows the status, recipient and error, each SMS part (its SMSC message id, own status and
receipt error code) and the timeline, so a person can see where a message is without curl;
``--json`` prints the API's answer as it is, for scripts.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from o2sms.cli.service_api import (
    DEFAULT_URL,
    FINAL_STATUSES,
    ServiceApi,
    ServiceError,
    api_key_or_sandbox,
)

__all__ = ["render_message", "status_command"]


def _when(value: object, day: date | None = None) -> str:
    """An API time (ISO 8601, UTC) in local time to the millisecond, or ``-``.

    A time on ``day`` (local) shows no date: the tables then fit an 80-column terminal.
    """
    if not isinstance(value, str):
        return "-"
    try:
        moment = datetime.fromisoformat(value).astimezone()
    except ValueError:
        return value
    shown = moment.strftime("%H:%M:%S.%f" if moment.date() == day else "%Y-%m-%d %H:%M:%S.%f")
    return shown[:-3]


def _day(value: object) -> date | None:
    """The local date of an API time, or None."""
    try:
        return datetime.fromisoformat(value).astimezone().date() if isinstance(value, str) else None
    except ValueError:
        return None


def _text(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _value(value: object) -> str:
    """A timeline detail value, compact: lists comma-separated."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _status(value: object) -> Text:
    status = _text(value)
    style = "green" if status == "delivered" else ("red" if status in FINAL_STATUSES else "yellow")
    return Text(status, style=style)


def render_message(console: Console, view: dict[str, Any]) -> None:
    """Print ``view`` (the JSON of ``GET /v1/messages/{id}``): summary, parts, timeline."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column(overflow="fold")
    summary.add_row("message", Text(_text(view.get("id"))))
    summary.add_row("status", _status(view.get("status")))
    summary.add_row("to", Text(_text(view.get("to"))))
    summary.add_row("from", Text(_text(view.get("from"))))
    summary.add_row(
        "text",
        Text(f"{_text(view.get('encoding'))}, {_text(view.get('parts_count'))} part(s)"),
    )
    error = view.get("error")
    if isinstance(error, dict):
        reason = ": ".join(str(error[k]) for k in ("name", "detail") if error.get(k))
        code = error.get("code")
        summary.add_row(
            "error", Text(f"{reason} (code {code})" if code is not None else reason or "-")
        )
    if view.get("reference"):
        summary.add_row("reference", Text(str(view["reference"])))
    if view.get("schedule_at"):
        summary.add_row("scheduled", Text(_when(view.get("schedule_at"))))
    summary.add_row("attempts", Text(_text(view.get("attempts"))))
    for label, key in (
        ("created", "created_at"),
        ("submitted", "submitted_at"),
        ("finished", "finished_at"),
    ):
        summary.add_row(label, Text(_when(view.get(key))))
    console.print(summary)

    day = _day(view.get("created_at"))  # the tables' times on this day show no date
    parts = view.get("parts") or []
    if parts:
        table = Table(title=f"parts (times on {day})" if day else "parts", title_justify="left")
        table.add_column("part", justify="right")
        longest = max(len(_text(part.get("smsc_id"))) for part in parts)
        table.add_column("smsc id", overflow="fold", min_width=min(longest, 32))
        table.add_column("status")
        table.add_column("err")
        table.add_column("submitted")
        table.add_column("receipt")
        for part in parts:
            table.add_row(
                _text(part.get("part_no")),
                _text(part.get("smsc_id")),
                _status(part.get("status")),
                _text(part.get("error_code")),
                _when(part.get("submitted_at"), day),
                _when(part.get("receipt_at"), day),
            )
        console.print(table)

    timeline = view.get("timeline") or []
    if timeline:
        table = Table(
            title=f"timeline (times on {day})" if day else "timeline", title_justify="left"
        )
        table.add_column("at")
        table.add_column("event")
        table.add_column("detail", overflow="fold")
        for entry in timeline:
            detail = entry.get("detail") or {}
            shown = (
                " ".join(f"{k}={_value(v)}" for k, v in detail.items() if v is not None)
                if isinstance(detail, dict)
                else str(detail)
            )
            table.add_row(_when(entry.get("at"), day), _text(entry.get("kind")), Text(shown))
        console.print(table)


async def _fetch(url: str, api_key: str | None, message_id: str) -> dict[str, Any]:
    async with ServiceApi(url, api_key) as api:
        return await api.message(message_id)


def status_command(
    message_id: Annotated[str, typer.Argument(metavar="ID", help="The message id.")],
    via: Annotated[
        str,
        typer.Option(envvar="O2SMS_URL", help="The o2sms service's URL."),
    ] = DEFAULT_URL,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="O2SMS_API_KEY",
            help="The service's API key (prefer the environment variable); without either, "
            "the sandbox key in ./o2sms-sandbox.key.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the API's JSON answer as it is.")
    ] = False,
) -> None:
    """Show a message's status, its parts (SMSC ids, part status, err) and its timeline.

    The API key is --api-key, else O2SMS_API_KEY, else the sandbox's o2sms-sandbox.key in the
    current folder. Exit status: 0 when found; 1 when there is no such message or no service
    answers; 2 when there is no API key or the service refuses the request (a wrong key).
    """
    try:
        view = asyncio.run(_fetch(via, api_key_or_sandbox(api_key), message_id))
    except ServiceError as exc:
        message = f"no message with id {message_id}" if exc.status == 404 else str(exc)
        Console(stderr=True).print(
            Text.assemble(("error: ", "red"), message), highlight=False, soft_wrap=True
        )
        raise typer.Exit(1 if exc.status == 404 else exc.exit_code) from None
    if as_json:
        typer.echo(json.dumps(view, indent=2, ensure_ascii=False))
        return
    render_message(Console(highlight=False), view)
