"""``o2sms send``: one SMS straight over SMPP, or through a running o2sms service (``--via``),
optionally waiting for its delivery; ``--csv`` sends one SMS per row through the service.

Errors print one line on stderr (``error: ...``, never wrapped), never a traceback: for bad
input, or the service's own sentence for a request it refused (exit 2); a plain description
when the SMSC or the service cannot be reached or the send failed (exit 1).
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from o2sms.cli.service_api import (
    FINAL_STATUSES,
    ServiceApi,
    ServiceError,
    api_key_or_sandbox,
    schedule_fields,
)
from o2sms.client import Client, DeliveryReport, Event, addresses
from o2sms.client.api import MAX_RELATIVE_TIME
from o2sms.client.config import FLASH_SYSTEM_TYPE, GATEWAY_MAX_PARTS
from o2sms.errors import O2smsError
from o2sms.smpp.constants import CommandStatus
from o2sms.text import plan

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ISO_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``1d``, ``1h30m`` or ISO 8601 ``PT2H`` as a timedelta."""
    value = text.strip()
    match = _DURATION.fullmatch(value.lower()) or _ISO_DURATION.fullmatch(value.upper())
    if not value or match is None or not any(match.groups()):
        raise typer.BadParameter(f"{text!r} is not a duration such as 90s, 15m, 2h, 1d or PT2H")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise typer.BadParameter(f"{text!r} is longer than any duration can be") from None


SMPP_OPTIONS = (
    "host",
    "port",
    "secondary_host",
    "system_id",
    "password",
    "system_type",
    "tls",
    "tls_ca_file",
    "bind",
)
"""The options that select a direct SMPP send; given on the command line they win over an
``O2SMS_URL`` from the environment."""

_SMPP = "Direct SMPP (without --via)"
_SERVICE = "Through a running o2sms service (--via)"
_CSV = "Bulk from a CSV file (with --via)"


def send_command(
    ctx: typer.Context,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Destination number (national or +international); required without --csv.",
            show_default=False,
        ),
    ] = None,
    text: Annotated[
        str | None,
        typer.Option(
            "--text",
            help="Message text; required without --csv (with --csv: for rows with no text).",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(envvar="O2SMS_HOST", help="SMSC host.", rich_help_panel=_SMPP)
    ] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(
            envvar="O2SMS_PORT", help="SMSC port (8888, TLS 8887).", rich_help_panel=_SMPP
        ),
    ] = None,
    secondary_host: Annotated[
        str | None,
        typer.Option(envvar="O2SMS_SECONDARY_HOST", help="Failover host.", rich_help_panel=_SMPP),
    ] = None,
    system_id: Annotated[
        str,
        typer.Option(envvar="O2SMS_SYSTEM_ID", help="Account (system_id).", rich_help_panel=_SMPP),
    ] = "",
    password: Annotated[
        str,
        typer.Option(
            envvar="O2SMS_PASSWORD",
            help="Password (prefer the environment variable).",
            rich_help_panel=_SMPP,
        ),
    ] = "",
    system_type: Annotated[
        str,
        typer.Option(
            envvar="O2SMS_SYSTEM_TYPE",
            help="system_type, e.g. a route code r:<code>.",
            rich_help_panel=_SMPP,
        ),
    ] = "",
    tls: Annotated[
        bool, typer.Option(envvar="O2SMS_TLS", help="Connect with TLS.", rich_help_panel=_SMPP)
    ] = False,
    tls_ca_file: Annotated[
        str | None,
        typer.Option(
            envvar="O2SMS_TLS_CA_FILE", help="CA file to verify the SMSC.", rich_help_panel=_SMPP
        ),
    ] = None,
    bind: Annotated[
        str,
        typer.Option(help="transceiver, transmitter or receiver.", rich_help_panel=_SMPP),
    ] = "transceiver",
    sender: Annotated[
        str | None, typer.Option("--from", help="Sender: text, short code or number.")
    ] = None,
    flash: Annotated[bool, typer.Option(help="Send as a flash SMS (one part only).")] = False,
    schedule: Annotated[
        str | None,
        typer.Option(help="Deliver later, e.g. 2h, 90m, PT30M (with --via also an ISO 8601 time)."),
    ] = None,
    validity: Annotated[str | None, typer.Option(help="Give up after, e.g. 1d.")] = None,
    encoding: Annotated[
        str | None, typer.Option(help="gsm7, latin1 or ucs2 (default: automatic).")
    ] = None,
    transliterate: Annotated[
        bool, typer.Option(help="Keep Slovak/Czech text in GSM 7-bit.")
    ] = False,
    wait_receipt: Annotated[
        bool,
        typer.Option(
            "--wait",
            "--wait-receipt",
            help="Wait for the delivery receipt (with --via: a final status); exit 1 unless "
            "delivered.",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds --wait waits (for the receipt; with --via a final status)."),
    ] = 120.0,
    via: Annotated[
        str | None,
        typer.Option(
            envvar="O2SMS_URL",
            help="Send through the o2sms service at this URL, e.g. http://127.0.0.1:8000.",
            rich_help_panel=_SERVICE,
            show_default=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="O2SMS_API_KEY",
            help="The service's API key (prefer the environment variable); without either, "
            "the sandbox key in ./o2sms-sandbox.key.",
            rich_help_panel=_SERVICE,
            show_default=False,
        ),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="Your reference, kept with the message.", rich_help_panel=_SERVICE),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            help="Sending again with the same key never sends a second SMS (with --csv: "
            "KEY:LINE per row).",
            rich_help_panel=_SERVICE,
        ),
    ] = None,
    csv_file: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Send one SMS per row of this CSV file (header row; , ; or tab separated; "
            "UTF-8, or UTF-16 with a BOM as Excel saves Unicode Text).",
            rich_help_panel=_CSV,
            show_default=False,
        ),
    ] = None,
    to_column: Annotated[
        str, typer.Option(help="The column of destination numbers.", rich_help_panel=_CSV)
    ] = "to",
    text_column: Annotated[
        str,
        typer.Option(help="The column of texts (else --text for all).", rich_help_panel=_CSV),
    ] = "text",
    from_column: Annotated[
        str,
        typer.Option(help="The column of senders, if any (else --from).", rich_help_panel=_CSV),
    ] = "from",
    reference_column: Annotated[
        str,
        typer.Option(
            help="The column of references, if any (else --reference).", rich_help_panel=_CSV
        ),
    ] = "reference",
    errors_file: Annotated[
        Path | None,
        typer.Option(
            "--errors",
            help="Write the rows that failed, with line and error, to this CSV file.",
            rich_help_panel=_CSV,
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(min=1, max=100, help="Requests in flight at once.", rich_help_panel=_CSV),
    ] = 16,
) -> None:
    """Send an SMS, directly over SMPP or through a running o2sms service.

    With --via URL (or O2SMS_URL) the message goes through the service's HTTP API: it is stored
    and queued there, and --wait follows its status. The API key is --api-key, else
    O2SMS_API_KEY, else the sandbox's o2sms-sandbox.key in the current folder. Without --via,
    o2sms talks SMPP straight to --host/--port. SMPP options given on the command line win over
    an O2SMS_URL from the environment; --via and SMPP options together on the command line are
    refused.

    --csv sends one SMS per row through the service, with a progress bar.
    """
    if not timeout > 0:  # nan too; checked before anything is sent, which it would not undo
        raise typer.Exit(
            _fail(f"--timeout must be a positive number of seconds, got {timeout:g}", 2)
        )
    if _through_service(ctx, via):
        assert via is not None
        try:
            key = api_key_or_sandbox(api_key)
        except ServiceError as exc:
            raise typer.Exit(_fail(str(exc), exc.exit_code)) from None
        request = ServiceSend(
            url=via,
            api_key=key,
            to=to,
            text=text,
            sender=sender,
            flash=flash,
            schedule=schedule,
            validity=validity,
            encoding=encoding,
            transliterate=transliterate,
            reference=reference,
            idempotency_key=idempotency_key,
            wait=wait_receipt,
            timeout=timeout,
        )
        if csv_file is not None:
            columns = CsvColumns(to_column, text_column, from_column, reference_column)
            raise typer.Exit(send_csv(request, csv_file, columns, errors_file, concurrency))
        raise typer.Exit(send_via_service(request))
    raise typer.Exit(
        send_direct(
            client_options={
                "host": host,
                "port": port,
                "system_id": system_id,
                "password": password,
                "secondary_host": secondary_host,
                "system_type": system_type,
                "tls": tls,
                "tls_ca_file": tls_ca_file,
                "bind": bind,
            },
            csv_file=csv_file,
            to=to,
            text=text,
            sender=sender,
            flash=flash,
            schedule=schedule,
            validity=validity,
            encoding=encoding,
            transliterate=transliterate,
            wait_receipt=wait_receipt,
            timeout=timeout,
        )
    )


@contextmanager
def quiet_client_logs() -> Iterator[None]:
    """Keep the client's log lines (reconnect warnings, ...) off stderr while it runs, unless
    logging was configured: the command reports the outcome itself, as one ``error:`` line.

    Without a handler anywhere, Python prints warnings to stderr (``logging.lastResort``);
    a NullHandler on the ``o2sms`` logger stops that and nothing else.
    """
    if logging.getLogger().handlers:
        yield
        return
    logger = logging.getLogger("o2sms")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def direct_sessions(bind: str, flash: bool) -> dict[str, Any]:
    """The ``Client`` session options for a one-message send with bind mode ``bind``.

    One session; with ``--flash`` a spare second one, which the client binds with system_type
    NSMS in its place (the flash session counts towards the session count), while the first
    keeps ``bind`` so ``--wait-receipt`` still has a session that receives. The spare is of
    the kind the client replaces before ``bind``: a receiver when ``bind`` is receiver (a
    transmitter spare would make it drop the receiver, the one session that can send being
    kept), else a transmitter.
    """
    if flash:
        receiver = bind.strip().lower() == "receiver"
        spare = "receiver" if receiver else "transmitter"
        return {"bind": [bind, spare], "sessions": None, "flash_session": True}
    return {"bind": bind, "sessions": 1, "flash_session": False}


def send_direct(
    *,
    client_options: dict[str, Any],
    csv_file: Path | None,
    to: str | None,
    text: str | None,
    sender: str | None,
    flash: bool,
    schedule: str | None,
    validity: str | None,
    encoding: str | None,
    transliterate: bool,
    wait_receipt: bool,
    timeout: float,
) -> int:
    """``o2sms send`` straight over SMPP; returns the exit status.

    Every failure is one ``error: ...`` line on stderr, never wrapped (scripts grep and log
    it whole): bad input, including a --schedule or --validity that is no duration, exits 2
    before any connection is opened; a failure to connect, bind, send or get the receipt
    exits 1.
    """
    if csv_file is not None:
        return _fail("--csv sends through the service: give --via URL (or set O2SMS_URL)", 2)
    if to is None or text is None:
        return _fail(f"{'--to' if to is None else '--text'} is required", 2)
    if not text:  # the service refuses an empty text too; nobody wants an empty SMS
        return _fail("--text is empty: give the message text", 2)
    try:
        scheduled = _duration(schedule, "--schedule") if schedule else None
        valid_for = _duration(validity, "--validity") if validity else None
        for option, given, value in (
            ("--schedule", schedule, scheduled),
            ("--validity", validity, valid_for),
        ):
            if option == "--validity" and value is not None and value <= timedelta(0):
                raise ValueError(f"--validity {given} is not a time ahead: give e.g. 1h or 2d")
            if value is not None and value > MAX_RELATIVE_TIME:  # the client would refuse it
                raise ValueError(
                    f"{option} {given} is more than 99 days: SMPP relative times, the only "
                    "kind the gateway takes, reach 99 days 23:59:59"
                )
        # Refuse bad input before opening any connection.
        addresses.destination(to)
        if sender is not None:
            addresses.sender(sender)
        measured = plan(
            text, encoding=encoding, transliterate=transliterate, max_parts=GATEWAY_MAX_PARTS
        )
        if not measured.text:  # only characters transliteration drops: an empty SMS
            raise O2smsError("--text is empty once transliterated: give the message text")
        if measured.parts > 1 and flash:
            raise O2smsError("a flash message must fit one SMS (the gateway has no long flash)")
        _check_smpp_options(client_options, flash, wait_receipt)
        options = {**client_options, **direct_sessions(str(client_options["bind"]), flash)}
    except (O2smsError, ValueError) as exc:
        return _fail(str(exc), 2)
    console = Console(highlight=False, soft_wrap=True)
    try:
        with quiet_client_logs():
            asyncio.run(
                _send(
                    console,
                    options,
                    to=to,
                    text=text,
                    sender=sender,
                    flash=flash,
                    schedule=scheduled,
                    validity=valid_for,
                    encoding=encoding,
                    transliterate=transliterate,
                    wait_receipt=wait_receipt,
                    timeout=timeout,
                )
            )
    except (O2smsError, ValueError) as exc:
        hint = ""
        if sender is None and getattr(exc, "command_status", None) == CommandStatus.ESME_RINVSRCADR:
            hint = "; this account has no default sender at the SMSC: give --from"
        elif not client_options["system_id"]:  # most likely meant for a running o2sms serve
            hint = (
                "; without --system-id this was a direct SMPP send: to send through o2sms "
                "serve, give --via URL (e.g. http://127.0.0.1:8000)"
            )
        return _fail(f"{exc}{hint}", 1)
    return 0


BIND_MODES = ("transceiver", "transmitter", "receiver")


def _check_smpp_options(client_options: dict[str, Any], flash: bool, wait_receipt: bool) -> None:
    """Refuse a --host, --port, --bind or --system-type the send cannot use (ValueError): a
    usage error."""
    if not str(client_options.get("host") or "").strip():
        raise ValueError("--host is empty: give the SMSC's host name or address")
    port = client_options.get("port")
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"--port must be 1 to 65535, got {port}")
    bind = str(client_options["bind"])
    if bind.strip().lower() not in BIND_MODES:
        raise ValueError(
            f"--bind must be {', '.join(BIND_MODES[:-1])} or {BIND_MODES[-1]}, got {bind!r}"
        )
    system_type = str(client_options.get("system_type") or "")
    if system_type.upper() == FLASH_SYSTEM_TYPE:  # as Client() refuses it, in its own terms
        raise ValueError(
            f"--system-type {system_type} would make every message flash: use --flash to send "
            "a flash message"
        )
    if bind.strip().lower() == "receiver" and not flash:  # --flash adds a transmitter
        raise ValueError("--bind receiver cannot send: use transceiver or transmitter")
    if bind.strip().lower() == "transmitter" and wait_receipt:
        # Refused before sending: the wait could only run out (exit 1), and a script
        # retrying on failure would send the SMS again.
        raise ValueError(
            "--wait-receipt needs a session that receives: --bind transmitter gets no "
            "receipts; use transceiver"
        )


def _typed(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was given on the command line (not the environment or default).

    Compared by name: typer ships its own copy of click, whose ParameterSource is not click's.
    """
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _through_service(ctx: typer.Context, via: str | None) -> bool:
    """Whether this send goes through the service: --via/O2SMS_URL is set and no SMPP option
    was typed on the command line (typed options beat the environment)."""
    if not via:
        return False
    typed = [name for name in SMPP_OPTIONS if _typed(ctx, name)]
    if not typed:
        return True
    if _typed(ctx, "via"):
        options = ", ".join("--" + name.replace("_", "-") for name in typed)
        ctx.fail(f"Give --via (a service) or SMPP options ({options}), not both.")
    return False


async def _send(
    console: Console,
    client_options: dict[str, Any],
    *,
    to: str,
    text: str,
    sender: str | None,
    flash: bool,
    schedule: timedelta | None,
    validity: timedelta | None,
    encoding: str | None,
    transliterate: bool,
    wait_receipt: bool,
    timeout: float,
) -> None:
    waiting: set[str] = set()
    reports: asyncio.Queue[DeliveryReport] = asyncio.Queue()

    async def on_event(event: Event) -> None:
        # Returning acknowledges the receipt: it was printed, which is all this command does.
        if isinstance(event, DeliveryReport) and event.submitted_id in waiting:
            await reports.put(event)

    async with Client(**client_options, handler=on_event) as sms:
        result = await sms.send(
            to,
            text,
            sender=sender,
            flash=flash,
            schedule=schedule,
            validity=validity,
            encoding=encoding,
            transliterate=transliterate,
            report=True,
        )
        waiting.update(result.message_ids)
        console.print(
            f"sent to +{result.to}: {result.parts} part(s), {result.encoding.value}, "
            f"message id(s): {' '.join(result.message_ids)}",
            highlight=False,
        )
        if not wait_receipt:
            return
        try:
            async with asyncio.timeout(timeout):
                while waiting:
                    report = await reports.get()
                    if report.submitted_id not in waiting:
                        continue
                    waiting.discard(report.submitted_id)
                    receipt = report.receipt
                    console.print(
                        f"receipt for {report.submitted_id}: {receipt.stat.value} "
                        f"(err {receipt.err or '-'}, done {receipt.done_date})",
                        highlight=False,
                    )
        except TimeoutError:
            raise O2smsError(f"no delivery receipt within {timeout:g} s") from None


# --- through the service (--via) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceSend:
    """What ``o2sms send --via`` was asked to do; shared by the single and the CSV send."""

    url: str
    api_key: str | None
    to: str | None
    text: str | None
    sender: str | None
    flash: bool = False
    schedule: str | None = None
    validity: str | None = None
    encoding: str | None = None
    transliterate: bool = False
    reference: str | None = None
    idempotency_key: str | None = None
    wait: bool = False
    timeout: float = 120.0

    def common_fields(self) -> dict[str, Any]:
        """The request fields every message of this send shares (``MessageRequest`` JSON).

        Raises ValueError for a --schedule or --validity that is not a duration or time.
        """
        body: dict[str, Any] = {}
        if self.flash:
            body["flash"] = True
        if self.schedule:
            body.update(schedule_fields(self.schedule))
        if self.validity:
            body["validity"] = int(_duration(self.validity, "--validity").total_seconds())
        if self.encoding:
            body["encoding"] = self.encoding
        if self.transliterate:
            body["transliterate"] = True
        return body


@dataclass(frozen=True, slots=True)
class CsvColumns:
    """The CSV header names that hold each field of a row."""

    to: str = "to"
    text: str = "text"
    sender: str = "from"
    reference: str = "reference"


def _duration(text: str, option: str) -> timedelta:
    """parse_duration with the one-sentence ValueError the service path prints."""
    try:
        return parse_duration(text)
    except typer.BadParameter as exc:
        raise ValueError(f"{option} {exc.message}") from None


def _fail(message: str, exit_code: int) -> int:
    """Print ``error: message`` as one line on stderr and return ``exit_code``."""
    # soft_wrap: one line however narrow the terminal, so it can be grepped and logged whole
    Console(stderr=True, soft_wrap=True).print(
        Text.assemble(("error: ", "red"), message), highlight=False
    )
    return exit_code


def _clock() -> str:
    return datetime.now().astimezone().strftime("%H:%M:%S")


def _status_line(view: dict[str, Any]) -> Text:
    """``12:00:01 <id> delivered`` plus the error, when the message has one."""
    status = str(view.get("status"))
    style = "green" if status == "delivered" else ("red" if status in FINAL_STATUSES else "")
    line = Text.assemble(f"{_clock()} {view.get('id')} ", (status, style))
    error = view.get("error")
    if isinstance(error, dict) and (error.get("name") or error.get("detail")):
        line.append(
            f" ({': '.join(str(v) for v in (error.get('name'), error.get('detail')) if v)})"
        )
    return line


def send_via_service(request: ServiceSend) -> int:
    """``o2sms send --via``: POST one message, print its id(s), encoding and parts, and with
    --wait follow it to a final status. The exit status: 0 when accepted (with --wait: when
    delivered), 1 otherwise, 2 when the service refused the request."""
    if request.to is None or request.text is None:
        return _fail(f"{'--to' if request.to is None else '--text'} is required", 2)
    try:
        body = {"to": request.to, "text": request.text, **request.common_fields()}
    except ValueError as exc:
        return _fail(str(exc), 2)
    if request.sender is not None:
        body["from"] = request.sender
    if request.reference is not None:
        body["reference"] = request.reference
    try:
        return asyncio.run(_send_one(request, body))
    except ServiceError as exc:
        return _fail(str(exc), exc.exit_code)


async def _send_one(request: ServiceSend, body: dict[str, Any]) -> int:
    console = Console(highlight=False, soft_wrap=True)
    async with ServiceApi(request.url, request.api_key) as api:
        sent = await api.send(body, idempotency_key=request.idempotency_key)
        for message_id, recipient in zip(sent.ids, sent.recipients, strict=True):
            console.print(
                f"queued for {recipient}: {sent.parts} part(s), {sent.encoding}, "
                f"message id: {message_id}",
                markup=False,
            )
        if sent.replayed:
            console.print("(this Idempotency-Key was used before: no new SMS was stored)")
        if not request.wait:
            return 0
        delivered = True
        for message_id in sent.ids:
            view = await api.wait_final(
                message_id,
                timeout=request.timeout,
                on_change=lambda v: console.print(_status_line(v)),
            )
            status = view.get("status")
            if status not in FINAL_STATUSES:
                console.print(
                    f"no final status for {message_id} within {request.timeout:g} s "
                    f"(last: {status})",
                    markup=False,
                )
            delivered = delivered and status == "delivered"
        return 0 if delivered else 1


Row = tuple[int, dict[str, str]]
"""A CSV data row and the file line it starts on (the header is line 1)."""


@dataclass(frozen=True, slots=True)
class RowFailure:
    """A CSV row the service did not accept."""

    line: int  #: the line of the file (the header is line 1)
    row: dict[str, str]
    error: str


def _read_csv(path: Path, columns: CsvColumns, default_text: str | None) -> list[Row]:
    """The data rows of ``path`` with the file line each starts on; ValueError when the file
    cannot be used (missing, no header, no to column, no text column and no --text)."""
    try:
        with path.open("rb") as raw:  # Excel's "Unicode Text" is UTF-16 with a BOM
            utf16 = raw.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
        with path.open(newline="", encoding="utf-16" if utf16 else "utf-8-sig") as handle:
            header = handle.readline()
            # The header names the separator: Excel writes ";" in many European locales.
            delimiter = max(",;\t", key=header.count)
            handle.seek(0)
            reader = csv.DictReader(handle, delimiter=delimiter)
            fields = list(reader.fieldnames or [])
            if columns.to not in fields:
                found = ", ".join(fields) or "none"
                raise ValueError(
                    f"{path}: no {columns.to!r} column in the header row (columns: {found})"
                )
            if columns.text not in fields and default_text is None:
                raise ValueError(f"{path}: no {columns.text!r} column, and no --text given")
            rows: list[Row] = []
            line = reader.line_num + 1
            for record in reader:
                row = {k: (v or "") for k, v in record.items() if isinstance(k, str)}
                if any(row.values()):  # blank lines at the end of a file are no SMS
                    rows.append((line, row))
                line = reader.line_num + 1
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"cannot read {path}: {reason}") from None


def send_csv(
    request: ServiceSend,
    path: Path,
    columns: CsvColumns,
    errors_file: Path | None,
    concurrency: int,
) -> int:
    """``o2sms send --via URL --csv FILE``: one request per row, ``concurrency`` at a time,
    under a progress bar; then the rows that failed, by line. Exit 0 only when every row was
    accepted; a service that cannot be reached, fails or refuses the API key stops the run,
    and the rows not sent are listed (and written to ``errors_file`` with the refused ones)."""
    if request.wait:
        return _fail("--wait follows one message; use `o2sms status ID` after a bulk send", 2)
    if request.to is not None:  # it would be ignored: the rows name the recipients
        return _fail("give --to or --csv, not both (the CSV's to column holds the recipients)", 2)
    try:
        common = request.common_fields()
        rows = _read_csv(path, columns, request.text)
    except ValueError as exc:
        return _fail(str(exc), 2)
    console = Console(highlight=False, soft_wrap=True)
    sent = CsvOutcome()
    interrupted = False
    try:
        asyncio.run(_send_rows(request, rows, columns, common, concurrency, console, sent))
    except ServiceError as exc:
        return _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:  # Ctrl+C: say what went, what did not, and what may have
        interrupted = True
        sent.stop_at_interrupt(rows)
    failures, unsent, unknown, fatal = sent.failures, sent.unsent, sent.unknown, sent.fatal
    if fatal is not None and not sent.accepted and not failures:  # nothing went: one line
        return _fail(str(fatal), fatal.exit_code)
    summary = f"{sent.accepted} of {len(rows)} row(s) accepted, {len(failures)} failed"
    summary += f", {len(unsent)} not sent" if unsent else ""
    console.print(summary + (f", {len(unknown)} unknown" if unknown else ""), markup=False)
    shown = 20
    for failure in failures[:shown]:
        console.print(f"line {failure.line}: {failure.error}", markup=False)
    if len(failures) > shown:
        more = f"... and {len(failures) - shown} more"
        console.print(more + ("" if errors_file else " (--errors FILE lists them all)"))
    if unsent:
        console.print(f"not sent: lines {_line_ranges(f.line for f in unsent)}", markup=False)
    if unknown:
        lines = _line_ranges(f.line for f in unknown)
        console.print(f"unknown ({_UNKNOWN}): line{'s' if len(unknown) > 1 else ''} {lines}")
    not_accepted = sorted(failures + unsent + unknown, key=lambda f: f.line)
    if not_accepted and errors_file is not None:
        try:
            _write_failures(errors_file, not_accepted)
        except OSError as exc:
            return _fail(f"cannot write {errors_file}: {exc.strerror or exc}", 1)
        console.print(f"failed rows written to {errors_file}", markup=False)
    if interrupted:
        return _fail("interrupted", 130)
    if fatal is not None:
        return _fail(str(fatal), fatal.exit_code)
    return 0 if not failures else 1


def _line_ranges(lines: Iterable[int]) -> str:
    """``2, 5-8, 11``: the line numbers, consecutive ones as ranges."""
    spans: list[list[int]] = []
    for line in sorted(lines):
        if spans and line == spans[-1][1] + 1:
            spans[-1][1] = line
        else:
            spans.append([line, line])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


_UNKNOWN = "interrupted while being sent; it may have been accepted"


@dataclass(slots=True)
class CsvOutcome:
    """What a CSV send came to: rows accepted, refused, and not sent because ``fatal`` (an
    error every further row would get too) or an interrupt stopped the run."""

    accepted: int = 0
    failures: list[RowFailure] = field(default_factory=list)
    unsent: list[RowFailure] = field(default_factory=list)  #: ``fatal``'s row, those not tried
    fatal: ServiceError | None = None
    #: rows whose request was under way when the run was interrupted
    unknown: list[RowFailure] = field(default_factory=list)
    taken: set[int] = field(default_factory=set)  #: lines a worker took
    sending: dict[int, dict[str, str]] = field(default_factory=dict)  #: requests under way

    def stop_at_interrupt(self, rows: list[Row]) -> None:
        """Sort the rows an interrupt left: under way (unknown) or never taken (not sent)."""
        self.unknown = [RowFailure(line, row, _UNKNOWN) for line, row in self.sending.items()]
        self.unsent += [
            RowFailure(line, row, "not sent: the run was interrupted")
            for line, row in rows
            if line not in self.taken
        ]
        for found in (self.failures, self.unsent, self.unknown):
            found.sort(key=lambda f: f.line)


async def _send_rows(
    request: ServiceSend,
    rows: list[Row],
    columns: CsvColumns,
    common: dict[str, Any],
    concurrency: int,
    console: Console,
    outcome: CsvOutcome,
) -> None:
    """Send ``rows`` with ``concurrency`` workers; what was accepted, refused and not sent
    goes in ``outcome`` as it happens (an interrupt leaves it as it was then).

    A failure that would repeat on every row (service unreachable, 401/403, 5xx) stops the
    workers, instead of being reported once per row; the rows not sent are listed.
    """
    pending = iter(rows)
    failures = outcome.failures
    unsent = outcome.unsent
    progress = Progress(
        TextColumn("sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[green]{task.fields[accepted]} accepted[/] [red]{task.fields[failed]} failed"),
        TimeElapsedColumn(),
        console=console,
    )
    task = progress.add_task("send", total=len(rows), accepted=0, failed=0)

    def body_of(row: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "to": row[columns.to],
            "text": row.get(columns.text) or request.text or "",
            **common,
        }
        sender = row.get(columns.sender) or request.sender
        if sender:
            body["from"] = sender
        reference = row.get(columns.reference) or request.reference
        if reference:
            body["reference"] = reference
        return body

    async def worker(api: ServiceApi) -> None:
        for line, row in pending:  # one shared iterator: each row goes to one worker
            outcome.taken.add(line)
            if outcome.fatal is not None:
                unsent.append(RowFailure(line, row, _not_sent(outcome.fatal)))
                return
            key = f"{request.idempotency_key}:{line}" if request.idempotency_key else None
            outcome.sending[line] = row  # stays there if an interrupt cancels the request
            try:
                await api.send(body_of(row), idempotency_key=key)
            except ServiceError as exc:
                del outcome.sending[line]
                if exc.status is None or exc.status in {401, 403} or exc.status >= 500:
                    outcome.fatal = outcome.fatal or exc
                    unsent.append(RowFailure(line, row, str(exc)))
                    return
                failures.append(RowFailure(line, row, str(exc)))
            else:
                del outcome.sending[line]
                outcome.accepted += 1
            progress.update(task, advance=1, accepted=outcome.accepted, failed=len(failures))

    with progress:
        async with ServiceApi(request.url, request.api_key, concurrency=concurrency) as api:
            await asyncio.gather(*(worker(api) for _ in range(min(concurrency, len(rows)))))
    if outcome.fatal is not None:
        for line, row in pending:
            outcome.taken.add(line)
            unsent.append(RowFailure(line, row, _not_sent(outcome.fatal)))
    failures.sort(key=lambda f: f.line)
    unsent.sort(key=lambda f: f.line)


def _not_sent(fatal: ServiceError) -> str:
    """The error of a row never tried because ``fatal`` stopped the run."""
    return f"not sent: the run stopped at an earlier row's error ({fatal})"


def _write_failures(path: Path, failures: list[RowFailure]) -> None:
    """The failed rows as CSV: line, error, then the row's own columns, so they can be fixed
    and sent again."""
    columns: list[str] = []
    for failure in failures:
        columns.extend(c for c in failure.row if c not in columns)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "error", *columns])
        for failure in failures:
            writer.writerow(
                [failure.line, failure.error, *(failure.row.get(c, "") for c in columns)]
            )
