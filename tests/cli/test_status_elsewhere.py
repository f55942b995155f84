"""``o2sms status --via URL`` where URL is some other HTTP server, not an o2sms service."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from typer.testing import CliRunner

from o2sms.cli.main import app
from o2sms.simulator import Simulator


class NotFound(BaseHTTPRequestHandler):
    """Answers every GET 404 with a plain body, as a web server with no such path does."""

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"no such page")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def elsewhere() -> Iterator[str]:
    """The URL of an HTTP server on a free loopback port that is no o2sms service."""
    server = HTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_404_from_another_server_is_not_called_an_unknown_message(elsewhere: str) -> None:
    # "error: no message with id ..." sent the user looking for a message, when --via named
    # another server (the simulator's HTTP port, say).
    result = CliRunner().invoke(
        app,
        ["status", "01JDZ8Q1FJ6M3H0K2Z8T4W9YQA", "--via", elsewhere, "--api-key", "k" * 20],
        env={"COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line == (
        f"error: unexpected answer from {elsewhere}: HTTP 404 Not Found (is it the o2sms service?)"
    )


@pytest.mark.asyncio
async def test_the_simulators_http_port_is_not_called_an_unknown_message() -> None:
    # The simulator's JSON endpoint answers 404 {"error": "no such resource ..."}: JSON with
    # an error, as the API's, but not the API's answer for an unknown message.
    async with Simulator(http_port=0) as smsc:
        url = f"http://127.0.0.1:{smsc.http_port}"
        result = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["status", "01JDZ8Q1FJ6M3H0K2Z8T4W9YQA", "--via", url, "--api-key", "k" * 20],
            env={"COLUMNS": "200", "NO_COLOR": "1"},
        )
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line == (
        f"error: unexpected answer from {url}: HTTP 404 Not Found (is it the o2sms service?)"
    )
