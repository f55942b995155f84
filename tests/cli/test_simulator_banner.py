"""``o2sms simulator`` with no account given says how to bind to the one it makes."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from o2sms.cli.simulator import DEFAULT_ACCOUNT


@pytest.mark.asyncio
async def test_the_built_in_account_is_shown_with_its_password() -> None:
    # It printed "account   o2sms (4 sessions)": a newcomer had no password to bind with.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "o2sms",
        "simulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not lines or "Ctrl+C" not in lines[-1]:
                line = await process.stdout.readline()
                assert line, f"the simulator exited: {lines}"
                lines.append(line.decode().strip())
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    [account] = [line for line in lines if line.startswith("account")]
    assert account.split() == [
        "account",
        f"{DEFAULT_ACCOUNT.system_id},",
        "password",
        DEFAULT_ACCOUNT.password,
        "(4",
        "sessions)",
    ]
