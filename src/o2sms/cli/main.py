"""Entry point of the ``o2sms`` command: registers one module per subcommand."""

from __future__ import annotations

import typer

app = typer.Typer(help="o2sms, the O2 SMS Connector (SMPP 3.4).", no_args_is_help=True)


@app.callback()
def main() -> None:
    """o2sms, the O2 SMS Connector (SMPP 3.4)."""
