"""``o2sms simulator``: prints its address, serves, unbinds its sessions on Ctrl+C, exits 0."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from o2sms.cli.main import app
from o2sms.cli.simulator import DEFAULT_ACCOUNT, build_config
from o2sms.simulator import Account
from tests.simulator.esme import Esme


@pytest.mark.asyncio
async def test_cli_serves_and_unbinds_on_interrupt() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from o2sms.cli.main import app; app()",
        "simulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--account",
        "cli:a-long-password",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(15):
            line = (await process.stdout.readline()).decode()
            match = re.search(r"smpp://127\.0\.0\.1:(\d+)", line)
            assert match, line
            esme = await Esme.bound(int(match.group(1)), system_id="cli")
            assert (await esme.submit()).command_status == 0
            process.send_signal(signal.SIGINT)
            await esme.wait_closed(10)
            assert esme.unbound.is_set()
            assert await process.wait() == 0
            rest = (await process.stdout.read()).decode()
            assert "Stopped." in rest
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_build_config_layers_options(tmp_path: Path) -> None:
    file = tmp_path / "sim.toml"
    file.write_text(
        'port = 9999\nsession_limit = 2\n[[accounts]]\nsystem_id = "f"\npassword = "p"\n'
    )
    config = build_config(
        config_file=file,
        host=None,
        port=0,
        tls_port=None,
        cert=None,
        key=None,
        http_port=None,
        accounts=["c:q"],
        session_limit=None,
        receipt_delay=0.5,
    )
    assert (config.port, config.session_limit, config.receipt_delay) == (0, 2, 0.5)
    assert config.accounts == (Account("f", "p"), Account("c", "q"))
    default = build_config(
        config_file=None,
        host=None,
        port=None,
        tls_port=None,
        cert=None,
        key=None,
        http_port=None,
        accounts=[],
        session_limit=None,
        receipt_delay=None,
    )
    assert default.port == 2775
    assert default.accounts == (DEFAULT_ACCOUNT,)


@pytest.mark.parametrize(("text", "port"), [("session_limit = 3\n", 2775), ("port = 0\n", 0)])
def test_a_config_file_without_a_port_keeps_the_default_port(
    tmp_path: Path, text: str, port: int
) -> None:
    file = tmp_path / "sim.toml"
    file.write_text(text)
    options: dict[str, Any] = dict.fromkeys(
        ("host", "port", "tls_port", "cert", "key", "http_port", "session_limit", "receipt_delay")
    )
    config = build_config(config_file=file, accounts=[], **options)
    assert config.port == port  # the command line over the file over the default (2775)


@pytest.mark.parametrize(
    "option", [["--port", "99999"], ["--tls-port", "-1"], ["--http-port", "65536"]]
)
def test_a_port_out_of_range_is_one_error_line(option: list[str]) -> None:
    result = CliRunner().invoke(app, ["simulator", *option])
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("error:")
    assert "0 to 65535" in line


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (["--receipt-delay", "-1"], "receipt_delay must be 0 or more seconds, got -1"),
        (["--receipt-delay", "nan"], "receipt_delay must be 0 or more seconds, got nan"),
        (["--session-limit", "-2"], "session_limit must be 0 or more, got -2"),
        (["--port", "99999"], "port must be 0 to 65535"),
    ],
)
def test_a_bad_option_is_one_error_line_on_stderr(option: list[str], words: str) -> None:
    # A NaN receipt delay started a simulator that never sent a receipt, a negative session
    # limit one that refused every bind; and errors went to stdout, wrapped at the terminal.
    result = CliRunner().invoke(app, ["simulator", *option], env={"COLUMNS": "30"})
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert words in line
