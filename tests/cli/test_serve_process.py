"""``o2sms serve`` as a user runs it: a real process, its banner, its one-line errors."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from o2sms.simulator import Account, Simulator

pytestmark = pytest.mark.asyncio


def _environment(**settings: str) -> dict[str, str]:
    """This environment without any O2SMS_* setting of the caller's, plus ``settings``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("O2SMS_")}
    return kept | {"O2SMS_HTTP_PORT": "0", "NO_COLOR": "1"} | settings


async def _serve(folder: Path, **settings: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "o2sms",
        "serve",
        cwd=folder,
        env=_environment(**settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _finish(process: asyncio.subprocess.Process) -> tuple[int, str]:
    """Exit status and everything the process printed (stdout then stderr)."""
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


def _free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_sandbox_banner_is_a_working_curl_command_and_sigterm_exits_0(
    tmp_path: Path,
) -> None:
    process = await _serve(tmp_path)
    try:
        await _banner_works(process, tmp_path)
        process.send_signal(signal.SIGTERM)
        code, output = await _finish(process)
    finally:
        if process.returncode is None:  # a failed check must not leave a service running
            process.kill()
            await process.wait()
    assert code == 0, output
    assert "Traceback" not in output


async def _banner_works(process: asyncio.subprocess.Process, tmp_path: Path) -> None:
    """Read the banner; do what its curl commands say; the message must be delivered."""
    assert process.stdout is not None
    banner: list[str] = []
    async with asyncio.timeout(60):
        while not banner or "/v1/messages/<id>" not in banner[-1]:
            line = await process.stdout.readline()
            assert line, "serve exited before printing its banner"
            banner.append(line.decode().rstrip("\n"))
    text = "\n".join(banner)
    key = (tmp_path / "o2sms-sandbox.key").read_text().strip()
    assert f"API key: {key} (saved in o2sms-sandbox.key)" in text
    found = re.search(
        r"curl -s (http://127\.0\.0\.1:\d+)/v1/messages -H 'Authorization: Bearer (\S+)'", text
    )
    assert found is not None, text
    base, shown_key = found.groups()
    assert shown_key == key
    body = re.search(r"-d '(\{.*\})'", text)
    assert body is not None, text
    # What the banner tells a newcomer to run, sent as curl would send it.
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
        sent = await http.post(
            "/v1/messages",
            content=body.group(1),
            headers={"Content-Type": "application/json"},
        )
        assert sent.status_code == 202, sent.text
        message_id = sent.json()["messages"][0]["id"]
        status = ""
        async with asyncio.timeout(30):
            while status != "delivered":
                status = (await http.get(f"/v1/messages/{message_id}")).json()["status"]
                await asyncio.sleep(0.1)


async def test_an_unreachable_store_is_one_line_and_exit_1(tmp_path: Path) -> None:
    url = f"postgresql://o2sms:a-db-password@127.0.0.1:{_free_port()}/test"
    code, output = await _finish(await _serve(tmp_path, O2SMS_STORE_URL=url))
    assert code == 1, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert errors[0].startswith("error: cannot open the store postgresql://o2sms:***@127.0.0.1:")
    assert "Traceback" not in output
    assert "a-db-password" not in output


async def test_a_taken_http_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = await _finish(await _serve(tmp_path, O2SMS_HTTP_PORT=str(port)))
    assert code == 1, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: the HTTP API cannot listen on 127.0.0.1:{port}: address already in use"
    ]
    assert "bound as" not in output  # found before any SMPP session was opened
    assert "Traceback" not in output


async def test_an_http_host_that_does_not_resolve_is_named_in_the_line(tmp_path: Path) -> None:
    # A resolver error has a negative errno, which os.strerror calls "Unknown error -2": the
    # line did not say that the host name (a typo, often) is what is wrong.
    host = "no-such-host.invalid"
    try:
        socket.getaddrinfo(host, 8000)
    except socket.gaierror as exc:
        said = str(exc.strerror)
    else:
        pytest.skip(f"{host} resolves here")
    code, output = await _finish(await _serve(tmp_path, O2SMS_HTTP_HOST=host))
    assert code == 1, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    reason = said[:1].lower() + said[1:]
    assert errors == [f"error: the HTTP API cannot listen on {host}:0: {reason}"]
    assert "unknown error" not in output.lower()


async def test_a_connector_that_cannot_start_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:  # the sandbox SMSC's port, this time
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = await _finish(await _serve(tmp_path, O2SMS_SANDBOX__SMPP_PORT=str(port)))
    assert code == 1, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert errors[0].startswith("error: the connector could not start:")
    assert "HTTP API" not in errors[0]


async def test_refused_credentials_are_not_followed_by_the_listening_banner(
    tmp_path: Path,
) -> None:
    # The banner waited for the HTTP server, not for the connector: after "error: bind
    # refused" the last line a user saw said the service was listening, as it shut down.
    async with Simulator(accounts=(Account("acct", "the-right-password"),), port=0) as smsc:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "o2sms",
            "serve",
            cwd=tmp_path,
            env=_environment(
                O2SMS_GATEWAY__HOSTS=f"127.0.0.1:{smsc.port}",
                O2SMS_GATEWAY__SYSTEM_ID="acct",
                O2SMS_GATEWAY__PASSWORD="a-wrong-password",
                O2SMS_API_KEYS="an-api-key-0123456789",
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,  # one stream: the order as a terminal shows it
        )
        async with asyncio.timeout(60):
            out, _ = await process.communicate()
    code, output = process.returncode, out.decode()
    assert code == 1, output
    lines = output.splitlines()
    errors = [n for n, line in enumerate(lines) if line.startswith("error:")]
    assert len(errors) == 1, output
    assert "ESME_RINVPASWD" in lines[errors[0]]
    assert not any(line.startswith("o2sms listening") for line in lines[errors[0] :]), output
