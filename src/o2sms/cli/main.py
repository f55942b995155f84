"""Entry point of the ``o2sms`` command: registers one module per subcommand."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import typer

from o2sms.cli.bench import bench_command
from o2sms.cli.demo import demo_command
from o2sms.cli.plan import plan_command
from o2sms.cli.send import send_command
from o2sms.cli.serve import config_check_command, serve_command
from o2sms.cli.simulator import simulator_command
from o2sms.cli.status import status_command


def _help(command: Callable[..., Any]) -> str:
    """``command``'s docstring with each paragraph on one line, for ``--help``.

    Typer keeps a docstring's line breaks, so text wrapped at 100 columns in the source came
    out ragged at any other terminal width; joined, Rich wraps it to the terminal.
    """
    paragraphs = inspect.cleandoc(command.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


app = typer.Typer(
    help="o2sms, the O2 SMS Connector (SMPP 3.4).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # never print local variables (credentials) in tracebacks
)
app.command("plan", help=_help(plan_command))(plan_command)
app.command("demo", help=_help(demo_command))(demo_command)
app.command("send", help=_help(send_command))(send_command)
app.command("status", help=_help(status_command))(status_command)
app.command("bench", help=_help(bench_command))(bench_command)
app.command("simulator", help=_help(simulator_command))(simulator_command)
app.command("serve", help=_help(serve_command))(serve_command)

config_app = typer.Typer(help="Check the service's configuration.", no_args_is_help=True)
config_app.command("check", help=_help(config_check_command))(config_check_command)
app.add_typer(config_app, name="config")
