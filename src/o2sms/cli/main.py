"""Entry point of the ``o2sms`` command: registers one module per subcommand."""

from __future__ import annotations

import typer

from o2sms.cli.bench import bench_command
from o2sms.cli.demo import demo_command
from o2sms.cli.plan import plan_command
from o2sms.cli.send import send_command
from o2sms.cli.serve import config_check_command, serve_command
from o2sms.cli.simulator import simulator_command
from o2sms.cli.status import status_command

app = typer.Typer(
    help="o2sms, the O2 SMS Connector (SMPP 3.4).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # never print local variables (credentials) in tracebacks
)
app.command("plan")(plan_command)
app.command("demo")(demo_command)
app.command("send")(send_command)
app.command("status")(status_command)
app.command("bench")(bench_command)
app.command("simulator")(simulator_command)
app.command("serve")(serve_command)

config_app = typer.Typer(help="Check the service's configuration.", no_args_is_help=True)
config_app.command("check")(config_check_command)
app.add_typer(config_app, name="config")
