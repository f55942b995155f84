"""``o2sms send``: one SMS straight over SMPP, optionally waiting for its delivery receipt."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.console import Console

from o2sms.client import Client, DeliveryReport, Event, addresses
from o2sms.errors import O2smsError
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
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def send_command(
    to: Annotated[
        str, typer.Option("--to", help="Destination number (national or +international).")
    ],
    text: Annotated[str, typer.Option("--text", help="Message text.")],
    host: Annotated[str, typer.Option(envvar="O2SMS_HOST", help="SMSC host.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(envvar="O2SMS_PORT", help="SMSC port (8888, TLS 8887).")
    ] = None,
    secondary_host: Annotated[
        str | None, typer.Option(envvar="O2SMS_SECONDARY_HOST", help="Failover host.")
    ] = None,
    system_id: Annotated[
        str, typer.Option(envvar="O2SMS_SYSTEM_ID", help="Account (system_id).")
    ] = "",
    password: Annotated[
        str,
        typer.Option(envvar="O2SMS_PASSWORD", help="Password (prefer the environment variable)."),
    ] = "",
    system_type: Annotated[
        str,
        typer.Option(envvar="O2SMS_SYSTEM_TYPE", help="system_type, e.g. a route code r:<code>."),
    ] = "",
    tls: Annotated[bool, typer.Option(envvar="O2SMS_TLS", help="Connect with TLS.")] = False,
    tls_ca_file: Annotated[
        str | None, typer.Option(envvar="O2SMS_TLS_CA_FILE", help="CA file to verify the SMSC.")
    ] = None,
    bind: Annotated[
        str, typer.Option(help="transceiver, transmitter or receiver.")
    ] = "transceiver",
    sender: Annotated[
        str | None, typer.Option("--from", help="Sender: text, short code or number.")
    ] = None,
    flash: Annotated[bool, typer.Option(help="Send as a flash SMS (one part only).")] = False,
    schedule: Annotated[str | None, typer.Option(help="Deliver later, e.g. 2h or PT30M.")] = None,
    validity: Annotated[str | None, typer.Option(help="Give up after, e.g. 1d.")] = None,
    encoding: Annotated[
        str | None, typer.Option(help="gsm7, latin1 or ucs2 (default: automatic).")
    ] = None,
    transliterate: Annotated[
        bool, typer.Option(help="Keep Slovak/Czech text in GSM 7-bit.")
    ] = False,
    wait_receipt: Annotated[
        bool, typer.Option(help="Wait for the delivery receipt and print it.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the receipt.")] = 120.0,
) -> None:
    """Send one SMS over SMPP and print its message id(s)."""
    console = Console()
    try:
        scheduled = parse_duration(schedule) if schedule else None
        valid_for = parse_duration(validity) if validity else None
        # Refuse bad input before opening any connection.
        addresses.destination(to)
        if sender is not None:
            addresses.sender(sender)
        if plan(text, encoding=encoding, transliterate=transliterate).parts > 1 and flash:
            raise O2smsError("a flash message must fit one SMS (the gateway has no long flash)")
        asyncio.run(
            _send(
                console,
                {
                    "host": host,
                    "port": port,
                    "system_id": system_id,
                    "password": password,
                    "secondary_host": secondary_host,
                    "system_type": system_type,
                    "tls": tls,
                    "tls_ca_file": tls_ca_file,
                    "bind": bind,
                    "sessions": 1,
                    "flash_session": flash,
                },
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
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None


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
