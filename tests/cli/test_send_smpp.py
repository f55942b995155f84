"""``o2sms send`` straight over SMPP: every failure is one unwrapped ``error:`` line on stderr.

A narrow terminal (COLUMNS=40) would wrap a long message over several lines unless the output
is written without wrapping; the tests use one, with messages longer than 40 characters.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import pytest
from typer.testing import CliRunner, Result

from o2sms.cli.main import app
from o2sms.cli.send import direct_sessions
from o2sms.simulator import Account, Simulator
from tests.client.fake_smsc import FakeSmsc, Faults

NARROW = {"COLUMNS": "40", "NO_COLOR": "1", "O2SMS_URL": None}


def o2sms_send(*args: str) -> Result:
    """Run ``o2sms send args`` in-process, on a 40-column terminal."""
    return CliRunner().invoke(app, ["send", *args], env=NARROW)


def the_error_line(result: Result) -> str:
    """The only line of stderr, checked to be an ``error:`` line; nothing on stdout."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert result.stdout.strip() == ""
    assert "Traceback" not in result.output
    return lines[0]


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_bad_schedule_is_one_line_and_exit_2() -> None:
    result = o2sms_send("--to", "0903123456", "--text", "x", "--schedule", "2x")
    assert result.exit_code == 2
    line = the_error_line(result)
    assert "--schedule '2x' is not a duration" in line
    assert len(line) > 40  # long enough that wrapping would have split it


def test_a_bad_validity_is_one_line_and_exit_2() -> None:
    result = o2sms_send("--to", "0903123456", "--text", "x", "--validity", "soon")
    assert result.exit_code == 2
    assert "--validity 'soon' is not a duration" in the_error_line(result)


def test_a_bad_number_is_one_line_and_exit_2() -> None:
    result = o2sms_send("--to", "12", "--text", "a message to nowhere")
    assert result.exit_code == 2
    the_error_line(result)


def test_a_missing_text_is_one_line_and_exit_2() -> None:
    result = o2sms_send("--to", "0903123456")
    assert result.exit_code == 2
    assert "--text is required" in the_error_line(result)


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (["--validity", "200d"], "--validity 200d is more than 99 days"),
        (["--validity", "0s"], "--validity 0s is not a time ahead"),
        (["--schedule", "100d"], "--schedule 100d is more than 99 days"),
        (["--text", ""], "--text is empty"),
        # a soft hyphen and a zero-width space, which transliteration drops: an empty SMS
        (["--text", "\u00ad\u200b", "--transliterate"], "--text is empty once transliterated"),
        (["--host", ""], "--host is empty"),
        # the gateway refuses every part of a text over 25 parts, as the client does now
        (["--text", "x" * (153 * 25 + 1)], "more than max_parts=25"),
    ],
)
def test_input_the_send_would_refuse_is_one_line_and_exit_2_before_connecting(
    option: list[str], words: str
) -> None:
    # These exited 1 like a failed send, after connecting to the SMSC (an empty text was
    # even sent, as an empty SMS; the service refuses one), and --host '' said "give host=".
    result = o2sms_send("--port", str(closed_port()), "--to", "0903123456", "--text", "x", *option)
    assert result.exit_code == 2
    assert words in the_error_line(result)


def test_an_unreachable_smsc_is_one_line_and_exit_1() -> None:
    result = o2sms_send("--port", str(closed_port()), "--to", "0903123456", "--text", "x")
    assert result.exit_code == 1
    assert len(the_error_line(result)) > 40


def test_a_failed_send_without_an_account_points_to_via() -> None:
    # "o2sms send --to ... --text ..." next to a running o2sms serve went to SMPP port 8888
    # and said only "cannot connect": nothing told a newcomer the service needs --via.
    port = str(closed_port())
    result = o2sms_send("--port", port, "--to", "0903123456", "--text", "x")
    assert result.exit_code == 1
    line = the_error_line(result)
    assert line.startswith(f"error: cannot connect to 127.0.0.1:{port}")
    assert line.endswith(
        "; without --system-id this was a direct SMPP send: to send through o2sms serve, "
        "give --via URL (e.g. http://127.0.0.1:8000)"
    )
    with_account = o2sms_send(
        "--port", port, "--system-id", "acct", "--to", "0903123456", "--text", "x"
    )
    assert with_account.exit_code == 1
    assert "--via" not in the_error_line(with_account)  # SMPP was meant


@pytest.mark.parametrize("port", ["99999", "0", "-5"])
def test_a_port_out_of_range_is_one_line_and_exit_2(port: str) -> None:
    # A usage error, as everywhere else in the CLI (it exited 1, and --port 0 silently went to
    # the default port 8888), refused before any connection is opened.
    result = o2sms_send("--port", port, "--to", "0903123456", "--text", "x")
    assert result.exit_code == 2
    assert the_error_line(result) == f"error: --port must be 1 to 65535, got {port}"


def test_a_receiver_bind_that_cannot_send_is_one_line_and_exit_2() -> None:
    result = o2sms_send("--bind", "receiver", "--to", "0903123456", "--text", "x")
    assert result.exit_code == 2
    assert the_error_line(result) == (
        "error: --bind receiver cannot send: use transceiver or transmitter"
    )


@pytest.mark.parametrize("system_type", ["NSMS", "nsms"])
def test_the_flash_system_type_is_a_usage_error_pointing_to_flash(system_type: str) -> None:
    # Client() refused it with its own words ("use flash_session=True") and the send exited
    # 1, as for a failed send: it is bad input, and --flash is the option for flash
    result = o2sms_send(
        "--port", str(closed_port()), "--system-type", system_type,
        "--to", "0903123456", "--text", "x",
    )  # fmt: skip
    assert result.exit_code == 2
    line = the_error_line(result)
    assert f"--system-type {system_type}" in line
    assert "--flash" in line
    assert "flash_session" not in line


def test_a_bad_bind_mode_is_one_line_and_exit_2() -> None:
    result = o2sms_send("--bind", "nonsense", "--to", "0903123456", "--text", "x")
    assert result.exit_code == 2
    assert the_error_line(result) == (
        "error: --bind must be transceiver, transmitter or receiver, got 'nonsense'"
    )


def test_flash_gets_its_own_session_within_the_count() -> None:
    assert direct_sessions("transceiver", True) == {
        "bind": ["transceiver", "transmitter"],
        "sessions": None,
        "flash_session": True,
    }
    assert direct_sessions("transmitter", False) == {
        "bind": "transmitter",
        "sessions": 1,
        "flash_session": False,
    }


@pytest.mark.asyncio
async def test_a_failure_in_a_real_process_is_one_line_on_stderr() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "o2sms",
        "send",
        "--port",
        str(closed_port()),
        "--to",
        "0903123456",
        "--text",
        "x",
        env={**os.environ, "COLUMNS": "40", "NO_COLOR": "1", "O2SMS_URL": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1
    assert out == b""
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, err.decode()
    assert lines[0].startswith("error: ")


@pytest.mark.asyncio
async def test_flash_is_sent_through_the_nsms_session() -> None:
    async with FakeSmsc() as smsc:
        process, out, err = await send_process(
            smsc.port, "--to", "0903123456", "--text", "Blesk", "--flash"
        )
    assert process.returncode == 0, err.decode()
    assert "sent to +421903123456" in out.decode()
    assert smsc.submit_system_types == ["NSMS"]
    assert smsc.bind_attempts == 2  # the command's session and the flash one, no more


async def send_process(
    port: int | None, *args: str
) -> tuple[asyncio.subprocess.Process, bytes, bytes]:
    """Run ``o2sms send`` as a process against the SMSC on ``port`` (account acct/pw);
    the finished process, its stdout and its stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "o2sms", "send", "--port", str(port), "--system-id", "acct", *args),
        env={**os.environ, "NO_COLOR": "1", "O2SMS_PASSWORD": "pw", "O2SMS_URL": ""},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return process, out, err


@pytest.mark.asyncio
async def test_no_sender_and_no_default_at_the_smsc_says_give_from() -> None:
    """ESME_RINVSRCADR for an empty source_addr: the error line names the way out."""
    async with Simulator(accounts=(Account("acct", "pw"),), port=0) as smsc:
        process, out, err = await send_process(smsc.port, "--to", "0903123456", "--text", "Ahoj")
    assert process.returncode == 1, err.decode()
    assert out == b""
    (line,) = err.decode().strip().splitlines()
    assert line.startswith("error: ESME_RINVSRCADR")
    assert line.endswith("this account has no default sender at the SMSC: give --from")


@pytest.mark.parametrize("timeout", ["0", "-5", "nan"])
@pytest.mark.parametrize("via", [False, True], ids=["smpp", "via"])
def test_a_timeout_that_is_not_positive_is_one_line_and_exit_2(timeout: str, via: bool) -> None:
    where = ["--via", "http://127.0.0.1:1", "--api-key", "k" * 20] if via else []
    result = o2sms_send(*where, "--to", "0903123456", "--text", "x", "--wait", "--timeout", timeout)
    assert result.exit_code == 2
    assert the_error_line(result) == (
        f"error: --timeout must be a positive number of seconds, got {timeout}"
    )


@pytest.mark.asyncio
async def test_a_negative_timeout_sends_nothing() -> None:
    # Regression: --wait --timeout -5 sent the SMS, then failed at once (exit 1, "no delivery
    # receipt within -5 s"): a script retrying on failure sent it again.
    async with FakeSmsc() as smsc:
        process, _, err = await send_process(
            smsc.port, *("--to", "0903123456", "--text", "Ahoj", "--wait", "--timeout", "-5")
        )
    assert process.returncode == 2, err.decode()
    assert smsc.received == 0


def test_a_receiver_bind_with_flash_keeps_its_receiver() -> None:
    # The spare session the flash session replaces must be a receiver here: a transmitter
    # spare made the client drop the only receiver, so --wait-receipt never got a receipt.
    assert direct_sessions("receiver", True) == {
        "bind": ["receiver", "receiver"],
        "sessions": None,
        "flash_session": True,
    }


@pytest.mark.asyncio
async def test_receiver_flash_wait_receipt_binds_a_receiver_and_gets_the_receipt() -> None:
    async with Simulator(accounts=(Account("acct", "pw"),), port=0, receipt_delay=0.05) as smsc:
        process, out, err = await send_process(
            smsc.port,
            *("--bind", "receiver", "--flash", "--wait-receipt", "--timeout", "10"),
            *("--from", "O2 Shop", "--to", "0903123456", "--text", "Blesk"),
        )
    assert process.returncode == 0, err.decode()
    assert "receipt for " in out.decode()


@pytest.mark.asyncio
@pytest.mark.parametrize("flash", [[], ["--flash"]], ids=["plain", "flash"])
async def test_wait_receipt_with_a_transmitter_bind_is_refused_before_sending(
    flash: list[str],
) -> None:
    # A transmitter never gets receipts: the SMS went out, the wait ran out, exit 1, and a
    # script retrying on failure sent it again. A usage error now, before anything is sent.
    async with FakeSmsc(Faults(receipts=True)) as smsc:
        process, out, err = await send_process(
            smsc.port,
            *("--bind", "transmitter", "--wait-receipt", "--timeout", "1", *flash),
            *("--to", "0903123456", "--text", "Ahoj"),
        )
    assert process.returncode == 2, err.decode()
    assert out == b""
    (line,) = err.decode().strip().splitlines()
    assert line == (
        "error: --wait-receipt needs a session that receives: --bind transmitter gets no "
        "receipts; use transceiver"
    )
    assert smsc.received == 0
