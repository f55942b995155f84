"""``o2sms plan``: the SMS length calculator, with the transliterated alternative."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from o2sms.service.schemas import GATEWAY_MAX_PARTS
from o2sms.text import Plan, TextError, plan


def _row(table: Table, label: str, result: Plan) -> None:
    table.add_row(
        label,
        result.encoding.value,
        f"0x{result.data_coding:02X}",
        str(result.parts),
        f"{result.units}",
        f"{result.remaining} of {result.part_limit}",
    )


def plan_command(
    text: Annotated[str, typer.Argument(help="The message text.")],
    encoding: Annotated[
        str | None, typer.Option(help="Force gsm7, latin1 or ucs2 (default: automatic).")
    ] = None,
    transliterate: Annotated[
        bool, typer.Option(help="Replace characters GSM 03.38 lacks (č -> c) before measuring.")
    ] = False,
) -> None:
    """Tell how TEXT will be sent: encoding, number of parts, room left in the last part."""
    console = Console()
    try:
        result = plan(text, encoding=encoding, transliterate=transliterate)
    except (TextError, ValueError) as exc:
        # One line on stderr, never wrapped, no markup read in the message: as the others do.
        line = Text.assemble(("error:", "red"), " ", str(exc))
        Console(stderr=True, soft_wrap=True, highlight=False).print(line)
        raise typer.Exit(2) from None
    table = Table("option", "encoding", "data_coding", "parts", "units", "left in last part")
    _row(table, "as written" if not transliterate else "transliterated", result)
    if result.transliterated is not None:
        _row(table, "transliterated", result.transliterated)
    console.print(table)
    if result.non_gsm:
        console.print(f"Characters outside GSM 03.38: {' '.join(sorted(result.non_gsm))}")
    if result.transliterated is not None:
        console.print(f"Transliterated text: {result.transliterated.text}")
    if result.parts > GATEWAY_MAX_PARTS:
        # Said here, not only by the 422 the service would answer for this text.
        shorter = result.transliterated
        console.print(
            f"[yellow]warning:[/yellow] {result.parts} parts: the O2 gateway takes at most "
            f"{GATEWAY_MAX_PARTS}, and o2sms refuses such a text (HTTP 422)"
            + (
                f"; transliterated it needs {shorter.parts}"
                if shorter is not None and shorter.parts <= GATEWAY_MAX_PARTS
                else ""
            )
        )
