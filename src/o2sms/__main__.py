"""``python -m o2sms`` runs the ``o2sms`` command."""

from o2sms.cli.main import app

app(prog_name="o2sms")
