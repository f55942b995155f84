"""``o2sms send --via``, ``o2sms send --csv`` and ``o2sms status`` against a real service.

The service (sandbox simulator, real HTTP on a free loopback port, SQLite file) runs on the
test's event loop; the CLI, which runs its own ``asyncio.run``, is invoked in a worker thread
so both make progress at once.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from typer.testing import CliRunner, Result

from o2sms.cli.main import app
from o2sms.cli.service_api import SANDBOX_KEY_FILE, schedule_fields
from o2sms.service.settings import SandboxSettings
from tests.service.conftest import API_KEY, Service, open_service, settings_for

SK_MOBILE = "+421903123456"


@pytest_asyncio.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    """A sandbox connector on a SQLite file, reachable over real HTTP."""
    async with open_service(settings_for(tmp_path)) as started:
        yield started


async def o2sms(*args: str) -> Result:
    """Run the ``o2sms`` command with ``args`` in a thread; a wide, colourless terminal."""
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"}
    )


def via(service: Service) -> list[str]:
    """The options that point a command at ``service`` with its API key."""
    return ["--via", service.running.url, "--api-key", API_KEY]


def one_error_line(result: Result) -> str:
    """The command's only output line, checked to be an ``error:`` line with no traceback."""
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.asyncio
async def test_send_via_service_waits_for_delivery(service: Service) -> None:
    result = await o2sms(
        "send", *via(service), "--to", "0903 123 456", "--text", "Ahoj!", "--from", "O2 Demo",
        "--reference", "order-4711", "--wait", "--timeout", "20",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"queued for {SK_MOBILE}: 1 part(s), gsm7, message id: ")
    message_id = lines[0].rsplit(" ", 1)[1]
    assert lines[-1].endswith(f"{message_id} delivered")
    message = await service.wait_status(message_id, {"delivered"}, timeout=1)
    assert message["reference"] == "order-4711"
    assert message["from"] == "O2 Demo"
    [sent] = service.simulator.messages()
    assert sent.text == "Ahoj!"


@pytest.mark.asyncio
async def test_send_via_environment_with_schedule_and_idempotency_key(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("O2SMS_URL", service.running.url)
    monkeypatch.setenv("O2SMS_API_KEY", API_KEY)
    args = ("send", "--to", SK_MOBILE, "--text", "Later", "--schedule", "2h")
    first = await o2sms(*args, "--idempotency-key", "k-1")
    assert first.exit_code == 0, first.output
    message_id = first.output.splitlines()[0].rsplit(" ", 1)[1]
    message = await service.wait_status(message_id, {"scheduled"}, timeout=1)
    assert message["schedule_at"] is not None

    again = await o2sms(*args, "--idempotency-key", "k-1")
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[0].endswith(message_id)
    assert "no new SMS" in again.output


@pytest.mark.asyncio
async def test_a_bad_number_is_one_line_and_exit_2(service: Service) -> None:
    result = await o2sms("send", *via(service), "--to", "12", "--text", "Ahoj!")
    assert result.exit_code == 2
    assert one_error_line(result).startswith("error: to: ")


@pytest.mark.asyncio
async def test_a_wrong_api_key_is_one_line_and_exit_2(service: Service) -> None:
    result = await o2sms(
        "send", "--via", service.running.url, "--api-key", "wrong-key-0123456789",
        "--to", SK_MOBILE, "--text", "Ahoj!",
    )  # fmt: skip
    assert result.exit_code == 2
    assert one_error_line(result) == "error: the API key is not valid"


def free_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.asyncio
async def test_service_down_is_one_line_and_exit_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    key = ("--api-key", API_KEY)
    result = await o2sms("send", "--via", url, *key, "--to", SK_MOBILE, "--text", "Ahoj!")
    assert result.exit_code == 1
    assert one_error_line(result) == (
        f"error: cannot connect to the o2sms service at {url} (is `o2sms serve` running there?)"
    )
    status = await o2sms("status", "some-id", "--via", url, *key)
    assert status.exit_code == 1
    assert "cannot connect" in one_error_line(status)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["status", "X", "--via", "http://[::1", "--api-key", API_KEY],
            "error: 'http://[::1' is not a valid service URL (Invalid port: ':1')",
        ),
        # a port no socket can have: OverflowError's traceback came out of the connect
        (
            ["status", "X", "--via", "http://127.0.0.1:99999", "--api-key", API_KEY],
            "error: 'http://127.0.0.1:99999' is not a valid service URL "
            "(its port must be 1 to 65535, got 99999)",
        ),
        (
            [
                *("send", "--via", "http://[::1]:0/", "--api-key", API_KEY),
                *("--to", SK_MOBILE, "--text", "hi"),
            ],
            "error: 'http://[::1]:0/' is not a valid service URL "
            "(its port must be 1 to 65535, got 0)",
        ),
        (
            ["status", "X", "--via", "localhost:8000", "--api-key", API_KEY],
            "error: 'localhost:8000' is not a valid service URL "
            "(it must start with http:// or https://, e.g. http://127.0.0.1:8000)",
        ),
        (
            ["status", "X", "--via", "http://127.0.0.1:1", "--api-key", "klíč-0123456789abcdef"],
            "error: the API key must be printable ASCII (letters, digits, punctuation)",
        ),
        (
            [
                *("send", "--via", "http://127.0.0.1:1", "--api-key", API_KEY),
                *("--to", SK_MOBILE, "--text", "hi", "--idempotency-key", "objednávka-7"),
            ],
            "error: the idempotency key must be printable ASCII (letters, digits, punctuation)",
        ),
    ],
)
async def test_a_url_or_header_http_cannot_carry_is_one_line_and_exit_2(
    args: list[str], error: str
) -> None:
    result = await o2sms(*args)
    assert result.exit_code == 2
    assert one_error_line(result) == error


@pytest.fixture
def serve_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder ``o2sms serve`` runs in, as the current folder; no O2SMS_API_KEY set."""
    folder = tmp_path / "serve"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("O2SMS_API_KEY", raising=False)
    return folder


@pytest.mark.asyncio
async def test_send_and_status_find_the_sandbox_key(serve_folder: Path) -> None:
    # No api_keys: the sandbox generates its key and saves it where `o2sms serve` would.
    settings = settings_for(
        serve_folder,
        api_keys=[],
        sandbox={
            "receipt_delay": 0.05,
            "key_file": serve_folder / SANDBOX_KEY_FILE,
            "webhook_secret_file": serve_folder / "o2sms-sandbox-webhook.key",
        },
    )
    async with open_service(settings) as service:
        url = service.running.url
        sent = await o2sms("send", "--via", url, "--to", SK_MOBILE, "--text", "Ahoj!", "--wait")
        assert sent.exit_code == 0, sent.output
        message_id = sent.output.splitlines()[0].rsplit(" ", 1)[1]
        assert sent.output.splitlines()[-1].endswith(f"{message_id} delivered")
        status = await o2sms("status", message_id, "--via", url, "--json")
        assert status.exit_code == 0, status.output
        assert json.loads(status.stdout)["status"] == "delivered"


@pytest.mark.asyncio
async def test_api_key_option_then_environment_then_sandbox_file(
    service: Service, serve_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-key-0123456789"
    args = ("send", "--via", service.running.url, "--to", SK_MOBILE, "--text", "Ahoj!")
    (serve_folder / SANDBOX_KEY_FILE).write_text(wrong + "\n")
    from_file = await o2sms(*args)
    assert from_file.exit_code == 2  # the file's key was sent, and refused
    # ...which the error says: "not valid" alone hid that the key was not the one meant.
    assert one_error_line(from_file) == (
        "error: the API key is not valid (it is the sandbox key from ./o2sms-sandbox.key; "
        "for another service give --api-key or set O2SMS_API_KEY)"
    )
    status = await o2sms("status", "some-id", "--via", service.running.url)
    assert status.exit_code == 2
    assert "from ./o2sms-sandbox.key" in one_error_line(status)
    monkeypatch.setenv("O2SMS_API_KEY", API_KEY)
    assert (await o2sms(*args)).exit_code == 0  # the environment wins over the file
    monkeypatch.setenv("O2SMS_API_KEY", wrong)
    assert (await o2sms(*args, "--api-key", API_KEY)).exit_code == 0  # the option wins


@pytest.mark.asyncio
async def test_no_api_key_anywhere_is_one_line_and_exit_2(serve_folder: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (
        ("send", "--via", url, "--to", SK_MOBILE, "--text", "Ahoj!"),
        ("status", "some-id", "--via", url),
    ):
        result = await o2sms(*args)
        assert result.exit_code == 2, result.output
        assert one_error_line(result) == (
            "error: no API key: give --api-key, set O2SMS_API_KEY, or run this in the folder "
            "where `o2sms serve` (sandbox mode) saved o2sms-sandbox.key"
        )


def test_sandbox_key_file_is_where_serve_saves_it() -> None:
    assert SandboxSettings().key_file == Path(SANDBOX_KEY_FILE)


@pytest.mark.asyncio
async def test_via_and_smpp_options_together_are_refused() -> None:
    result = await o2sms(
        "send", "--via", "http://127.0.0.1:1", "--port", "2775", "--to", SK_MOBILE, "--text", "x"
    )
    assert result.exit_code == 2
    assert "not both" in result.output


@pytest.mark.asyncio
async def test_csv_bulk_send_reports_the_bad_rows(service: Service, tmp_path: Path) -> None:
    bad_lines = {12: "12", 31: "not a number"}  # file lines; the header is line 1
    source = tmp_path / "bulk.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")  # as Excel writes it in Slovakia
        writer.writerow(["to", "text", "reference"])
        for line in range(2, 52):
            number = bad_lines.get(line, f"+42190{line:07d}")
            writer.writerow([number, f"Dobrý deň, zákazník {line}; vaša zásielka", f"r{line}"])
    errors = tmp_path / "errors.csv"

    result = await o2sms(
        "send", *via(service), "--csv", str(source), "--errors", str(errors), "--from", "O2 Shop"
    )
    assert result.exit_code == 1, result.output
    assert "48 of 50 row(s) accepted, 2 failed" in result.output
    assert "line 12: to: " in result.output
    assert "line 31: to: " in result.output
    assert API_KEY not in result.output
    with errors.open(newline="", encoding="utf-8") as handle:
        failed = list(csv.DictReader(handle))
    assert [(row["line"], row["to"]) for row in failed] == [("12", "12"), ("31", "not a number")]
    assert all(row["error"].startswith("to: ") for row in failed)

    response = await service.http.get("/v1/messages", params={"limit": 100})
    stored = response.json()["items"]
    assert len(stored) == 48
    assert {m["reference"] for m in stored} == {f"r{n}" for n in range(2, 52)} - {"r12", "r31"}
    assert {m["from"] for m in stored} == {"O2 Shop"}


@pytest.mark.asyncio
async def test_csv_of_good_rows_exits_0_and_uses_text_option(
    service: Service, tmp_path: Path
) -> None:
    source = tmp_path / "numbers.csv"
    source.write_text("to\n+421903000001\n+421903000002\n\n", encoding="utf-8")
    result = await o2sms("send", *via(service), "--csv", str(source), "--text", "Same for all")
    assert result.exit_code == 0, result.output
    assert "2 of 2 row(s) accepted, 0 failed" in result.output


@pytest.mark.asyncio
async def test_csv_without_the_to_column_is_refused(service: Service, tmp_path: Path) -> None:
    source = tmp_path / "wrong.csv"
    source.write_text("phone,text\n+421903000001,Hi\n", encoding="utf-8")
    result = await o2sms("send", *via(service), "--csv", str(source))
    assert result.exit_code == 2
    assert "no 'to' column" in one_error_line(result)


async def delivered_long_message(service: Service) -> dict[str, object]:
    """A two-part message sent through the API and delivered; its view."""
    text = "Vaša objednávka č. 4711 je na ceste a dorazí zajtra. " * 2
    response = await service.http.post("/v1/messages", json={"to": SK_MOBILE, "text": text})
    assert response.status_code == 202, response.text
    return await service.wait_status(response.json()["messages"][0]["id"], {"delivered"})


@pytest.mark.asyncio
async def test_status_shows_parts_and_timeline(service: Service) -> None:
    message = await delivered_long_message(service)
    parts = message["parts"]
    assert isinstance(parts, list)
    assert len(parts) == 2
    result = await o2sms("status", str(message["id"]), *via(service))
    assert result.exit_code == 0, result.output
    output = result.output
    assert "delivered" in output
    assert SK_MOBILE in output
    assert "ucs2, 2 part(s)" in output
    for part in parts:
        assert part["smsc_id"] in output
    assert "timeline" in output
    for kind in ("queued", "submitted", "receipt"):
        assert kind in output


@pytest.mark.asyncio
async def test_status_json_is_the_api_answer(service: Service) -> None:
    message = await delivered_long_message(service)
    result = await o2sms("status", str(message["id"]), *via(service), "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown.keys() == message.keys()
    for key in ("id", "to", "status", "encoding", "parts_count", "parts", "created_at"):
        assert shown[key] == message[key], key


@pytest.mark.asyncio
async def test_status_of_an_unknown_id_is_exit_1(service: Service) -> None:
    result = await o2sms("status", "no-such-id", *via(service))
    assert result.exit_code == 1
    assert one_error_line(result) == "error: no message with id no-such-id"


@pytest.mark.asyncio
@pytest.mark.parametrize("given", [".", "..", ""])
async def test_status_of_an_id_that_names_another_path_is_refused(
    service: Service, given: str
) -> None:
    result = await o2sms("status", given, *via(service))
    assert result.exit_code == 2
    assert one_error_line(result) == f"error: {given!r} is not a message id"


@pytest.mark.asyncio
async def test_a_duration_too_long_to_compute_is_one_error_line(service: Service) -> None:
    result = await o2sms(
        "send", *via(service), "--to", SK_MOBILE, "--text", "x", "--validity", "99999999999d"
    )
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "error: --validity '99999999999d' is longer than any duration can be"
    )


@pytest.mark.parametrize(
    ("given", "fields"),
    [
        ("2h", {"schedule_in": 7200}),
        ("90m", {"schedule_in": 5400}),
        ("30s", {"schedule_in": 30}),
        ("1h30m", {"schedule_in": 5400}),
        ("PT2H", {"schedule_in": 7200}),
        ("2026-05-01T08:00:00+02:00", {"schedule_at": "2026-05-01T08:00:00+02:00"}),
    ],
)
def test_schedule_becomes_request_fields(given: str, fields: dict[str, object]) -> None:
    assert schedule_fields(given) == fields


@pytest.mark.parametrize("given", ["soon", "", "2026-05-01T08:00:00"])
def test_schedule_that_is_no_time_is_refused(given: str) -> None:
    with pytest.raises(ValueError, match="--schedule"):
        schedule_fields(given)


async def answering(answers: list[tuple[int, dict[str, object]]]) -> asyncio.Server:
    """An HTTP server on loopback (not o2sms) giving ``answers`` in turn, the last repeating."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length:")),
            0,
        )  # fmt: skip
        await reader.readexactly(length)
        status, data = answers.pop(0) if len(answers) > 1 else answers[0]
        body = json.dumps(data).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, "127.0.0.1", 0)


@pytest_asyncio.fixture
async def other_json_api() -> AsyncIterator[str]:
    """Another HTTP API on loopback (not o2sms): answers every request 200 with a JSON object."""
    server = await answering([(200, {"status": "ok"})])
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.asyncio
async def test_send_to_another_json_api_is_one_line_and_exit_1(
    other_json_api: str, tmp_path: Path
) -> None:
    # A JSON object that is not the 202 answer (--via at the wrong port) was a KeyError's
    # traceback, for one message and for a CSV alike.
    key = ("--api-key", API_KEY)
    result = await o2sms("send", "--via", other_json_api, *key, "--to", SK_MOBILE, "--text", "hi")
    assert result.exit_code == 1
    assert one_error_line(result) == (
        f"error: unexpected answer from {other_json_api}: not the answer to a send request "
        "(is it the o2sms service?)"
    )
    rows = tmp_path / "rows.csv"
    rows.write_text(f"to,text\n{SK_MOBILE},hi\n", encoding="utf-8")
    bulk = await o2sms("send", "--via", other_json_api, *key, "--csv", str(rows))
    assert bulk.exit_code == 1, bulk.output
    assert "Traceback" not in bulk.output
    assert bulk.output.strip().splitlines()[-1] == (
        f"error: unexpected answer from {other_json_api}: not the answer to a send request "
        "(is it the o2sms service?)"
    )


def accepted_answer(number: int) -> tuple[int, dict[str, object]]:
    """The service's 202 answer for one message."""
    message = {"id": f"01JDZ8Q1FJ6M3H0K2Z8T4W9Y{number:02d}", "to": SK_MOBILE, "status": "queued"}
    return 202, {"messages": [message], "encoding": "gsm7", "parts": 1}


@pytest.mark.asyncio
async def test_a_csv_send_stopped_by_an_error_says_which_rows_went(tmp_path: Path) -> None:
    # Line 3 is refused (422), line 4 accepted, then the service fails (503) from line 5 on.
    # The run stops there; it told only how many rows were accepted: not which lines were
    # refused or never sent, and --errors wrote nothing, so a rerun sent lines 2 and 4 twice.
    refused: dict[str, object] = {"error": "to: '12' is not a valid phone number (region SK)"}
    unavailable: dict[str, object] = {"error": "the message store is unavailable; try again"}
    server = await answering(
        [accepted_answer(1), (422, refused), accepted_answer(2), (503, unavailable)]
    )
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    source = tmp_path / "bulk.csv"
    source.write_text(
        "to,text\n" + "".join(f"+42190300000{line},hi {line}\n" for line in range(2, 9)),
        encoding="utf-8",
    )
    errors = tmp_path / "errors.csv"
    try:
        result = await o2sms(
            "send", "--via", url, "--api-key", API_KEY, "--csv", str(source),
            "--errors", str(errors), "--concurrency", "1",
        )  # fmt: skip
    finally:
        server.close()
        await server.wait_closed()
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert "2 of 7 row(s) accepted, 1 failed, 4 not sent" in lines
    assert f"line 3: {refused['error']}" in lines
    assert "not sent: lines 5-8" in lines
    assert lines[-1] == f"error: {unavailable['error']}"
    with errors.open(newline="", encoding="utf-8") as handle:
        failed = list(csv.DictReader(handle))
    assert [row["line"] for row in failed] == ["3", "5", "6", "7", "8"]
    assert failed[0]["error"] == refused["error"]
    assert failed[1]["error"] == unavailable["error"]  # the row the error came with
    assert all(row["error"].startswith("not sent: ") for row in failed[2:])


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "answer",
    [
        {"status": "ok"},  # a health endpoint: was shown as a message of dashes, exit 0
        {"id": "x", "status": "delivered", "parts": [1]},  # was an AttributeError traceback
        {"id": "x", "status": "delivered", "timeline": "none"},
    ],
)
async def test_status_from_another_json_api_is_one_line_and_exit_1(
    answer: dict[str, object],
) -> None:
    server = await answering([(200, answer)])
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        result = await o2sms(
            "status", "01JDZ8Q1FJ6M3H0K2Z8T4W9YQA", "--via", url, "--api-key", API_KEY
        )
    finally:
        server.close()
        await server.wait_closed()
    assert result.exit_code == 1, result.output
    assert one_error_line(result) == (
        f"error: unexpected answer from {url}: not a message (is it the o2sms service?)"
    )


@pytest.mark.asyncio
async def test_csv_saved_by_excel_as_unicode_text_is_read(service: Service, tmp_path: Path) -> None:
    # Excel's "Unicode Text" is UTF-16 with a BOM, tab separated: it was refused with
    # "'utf-8' codec can't decode byte 0xff in position 0".
    source = tmp_path / "excel.txt"
    rows = "to\ttext\r\n+421903000001\tDobrý deň\r\n+421903000002\tĎakujeme\r\n"
    source.write_bytes(rows.encode("utf-16"))  # BOM, then UTF-16 in this machine's order
    result = await o2sms("send", *via(service), "--csv", str(source))
    assert result.exit_code == 0, result.output
    assert "2 of 2 row(s) accepted, 0 failed" in result.output
    stored = (await service.http.get("/v1/messages")).json()["items"]
    assert sorted(m["text"] for m in stored) == ["Dobrý deň", "Ďakujeme"]


@pytest.mark.asyncio
async def test_a_csv_send_interrupted_says_which_rows_went(tmp_path: Path) -> None:
    # Ctrl+C during a bulk send printed "Aborted!": not which rows the service had accepted,
    # so a rerun sent them again. Lines 2 and 3 are accepted; line 4 hangs when interrupted.
    requests: list[int] = []
    hanging = asyncio.Event()
    release = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                requests.append(len(requests) + 1)
                if len(requests) > 2:
                    hanging.set()
                    await release.wait()
                    return
                body = json.dumps(accepted_answer(len(requests))[1]).encode()
                writer.write(
                    b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    source = tmp_path / "bulk.csv"
    source.write_text(
        "to,text\n" + "".join(f"+42190300000{line},hi\n" for line in range(2, 8)),
        encoding="utf-8",
    )
    errors = tmp_path / "errors.csv"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "o2sms", "send", "--via", url, "--api-key", API_KEY,
        "--csv", str(source), "--errors", str(errors), "--concurrency", "1",
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(30):
            await hanging.wait()
            process.send_signal(signal.SIGINT)
            out, err = await process.communicate()
    finally:
        release.set()
        server.close()
        await server.wait_closed()
    output = out.decode() + err.decode()
    assert process.returncode == 130, output
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert "2 of 6 row(s) accepted, 0 failed, 3 not sent, 1 unknown" in lines
    assert "not sent: lines 5-7" in lines
    assert "unknown (interrupted while being sent; it may have been accepted): line 4" in lines
    assert lines[-1] == "error: interrupted"
    with errors.open(newline="", encoding="utf-8") as handle:
        listed = list(csv.DictReader(handle))
    assert [row["line"] for row in listed] == ["4", "5", "6", "7"]


@pytest.mark.asyncio
async def test_csv_with_to_is_a_usage_error(service: Service, tmp_path: Path) -> None:
    # --to was ignored without a word: the CSV's rows went, not the number typed.
    source = tmp_path / "numbers.csv"
    source.write_text("to\n+421903000001\n", encoding="utf-8")
    result = await o2sms(
        "send", *via(service), "--csv", str(source), "--to", SK_MOBILE, "--text", "Hi"
    )
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "error: give --to or --csv, not both (the CSV's to column holds the recipients)"
    )
    assert (await service.http.get("/v1/messages")).json()["items"] == []
