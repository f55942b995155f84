"""``o2sms bench`` runs end to end against the simulator it starts (figures not asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest


def test_bench_reports_a_median_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "o2sms", "bench", "--messages", "300", "--runs", "1", "--receipts"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"median of 1: [\d,]+ msg/s .*receipts on", result.stdout)


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    """``o2sms bench ARGS`` in a process of its own, its output plain text."""
    return subprocess.run(
        [sys.executable, "-m", "o2sms", "bench", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        check=False,
    )


def test_bench_with_no_smsc_there_is_one_error_line() -> None:
    # The client's own warning ("session-1: cannot connect ...") came first: two lines.
    result = bench("--port", "1", "--messages", "1", "--runs", "1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot connect to 127.0.0.1:1")


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_bench_with_a_port_out_of_range_is_a_usage_error(port: str) -> None:
    # A usage error exits 2 as everywhere in the CLI (it exited 1, and --port 0 silently
    # measured whatever listened on the default port 8888).
    result = bench("--port", port, "--messages", "1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: --port must be 1 to 65535, got {port}"]


def test_the_send_credentials_in_the_environment_do_not_lock_bench_out_of_its_simulator() -> None:
    # O2SMS_SYSTEM_ID and O2SMS_PASSWORD, set for o2sms send, were sent to the simulator bench
    # starts itself, which knows only bench/bench: "bind refused: ESME_RINVSYSID".
    result = subprocess.run(
        [sys.executable, "-m", "o2sms", "bench", "--messages", "50", "--runs", "1"],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "O2SMS_SYSTEM_ID": "acct",
            "O2SMS_PASSWORD": "the-gateway-password",
        },
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "median of 1:" in result.stdout


@pytest.mark.parametrize(
    ("args", "error"),
    [
        # was exit 1 with the library's "give host= (and secondary_host=) or hosts="
        (["--host", "", "--port", "2775"], "error: --host is empty: give the SMSC's host name or address"),
        # was measured against that host at the port of the simulator bench started here
        (["--host", "smsc.example.com"], "error: --host needs --port (without both, bench starts its own simulator)"),
    ],
)  # fmt: skip
def test_bench_with_a_host_it_cannot_use_is_a_usage_error(args: list[str], error: str) -> None:
    result = bench(*args, "--messages", "1", "--runs", "1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [error]
