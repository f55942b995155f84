"""The documentation, checked against the code: reference tables list exactly what the code
has, and the examples run.

* docs/configuration.md: one table row per setting (walked recursively through the pydantic
  models) with its environment variable and default; its TOML files load, with the variables
  its ``export`` lines set; ``o2sms config check`` prints what the page shows.
* docs/http-api.md: every ```http request block is sent, in order, to a sandbox service and
  must answer the status code, headers, fields and ``status`` values of the ```http answer
  block after it; the status table lists exactly ``MessageStatus``.
* docs/operations.md: the metrics table lists exactly the metrics ``/metrics`` exposes.
* README.md: the tour's curl commands work against a sandbox service, and so do its
  ``o2sms`` commands, run without a key from the folder where the service saved it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import shlex
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, SecretStr
from typer.testing import CliRunner

from o2sms.cli.main import app as o2sms_app
from o2sms.client import Client
from o2sms.service.metrics import Metrics
from o2sms.service.settings import Settings, load_settings
from o2sms.store.models import EventKind, MessageStatus
from tests.service.conftest import API_KEY, Service, open_service, settings_for
from tests.service.webhook_receiver import Receiver

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
PENDING = {"queued", "submitted"}  # statuses that change on their own in the sandbox


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def fences(text: str, language: str) -> list[str]:
    """The contents of the fenced code blocks of ``language``, in order."""
    return [body for lang, body in FENCE.findall(text) if lang == language]


def section(text: str, heading: str) -> str:
    """The text under the ``## heading`` up to the next ``## ``."""
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def table_rows(text: str) -> Iterator[list[str]]:
    """The cells of every Markdown table row that is not a header separator."""
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("| ---"):
            yield [cell.strip() for cell in line.strip().strip("|").split("|")]


def backticked(cell: str) -> str | None:
    match = re.fullmatch(r"`([^`]+)`", cell)
    return match.group(1) if match else None


# --- docs/configuration.md ------------------------------------------------------------------


def setting_fields(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Every leaf setting as ``section.key`` -> its default (sections walked recursively)."""
    found: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found |= setting_fields(annotation, f"{prefix}{name}.")
        else:
            found[prefix + name] = info.get_default(call_default_factory=True)
    return found


def comparable(value: Any) -> Any:
    """A default as TOML would write it: secrets and paths as strings, lists element-wise."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


def documented_settings() -> dict[str, tuple[str, str]]:
    """``key`` -> (environment variable, default cell) from docs/configuration.md's tables."""
    rows: dict[str, tuple[str, str]] = {}
    for cells in table_rows(read("docs/configuration.md")):
        if len(cells) != 5 or cells[0] == "key":
            continue
        key, variable = backticked(cells[0]), backticked(cells[1])
        assert key is not None, cells
        assert variable is not None, cells
        assert key not in rows, f"{key} is listed twice"
        rows[key] = (variable, cells[3])
    return rows


def test_configuration_lists_every_setting_with_its_variable_and_default() -> None:
    fields = setting_fields(Settings)
    rows = documented_settings()
    assert sorted(rows) == sorted(fields)
    for key, (variable, default_cell) in rows.items():
        assert variable == "O2SMS_" + key.replace(".", "__").upper(), key
        default = fields[key]
        if default is None:
            assert default_cell == "(unset)", key
        else:
            literal = backticked(default_cell)
            assert literal is not None, f"{key}: write the default as a `TOML value`"
            assert tomllib.loads(f"v = {literal}")["v"] == comparable(default), key


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("O2SMS_"):
            monkeypatch.delenv(name)


def export_secrets(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set the variables of the page's ``export NAME=value`` lines."""
    for block in fences(text, "sh"):
        for line in block.splitlines():
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                monkeypatch.setenv(name, shlex.split(value)[0])


def test_configuration_examples_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = read("docs/configuration.md")
    clean_environment(monkeypatch)
    export_secrets(text, monkeypatch)
    full, tls = fences(text, "toml")
    path = tmp_path / "o2sms.toml"
    path.write_text(full, encoding="utf-8")
    settings = load_settings(path)
    assert not settings.sandbox_mode
    assert settings.gateway.endpoints() == [
        ("smpp1.smstools.sk", 8888),
        ("smpp2.smstools.sk", 8888),
    ]
    assert settings.gateway.bind_modes() == ["transmitter"] * 3 + ["receiver"]
    assert settings.gateway.system_type.startswith("r:")
    assert len(settings.api_keys) == 2
    assert settings.webhooks.secret is not None

    path.write_text(tls, encoding="utf-8")
    settings = load_settings(path)
    assert settings.gateway.tls
    assert settings.gateway.endpoints() == [("smpp-ssl.smstools.sk", 8887)]
    assert len(settings.gateway.bind_modes()) == 4


def test_config_check_prints_what_the_page_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from o2sms.cli.serve import config_check_command

    text = read("docs/configuration.md")
    clean_environment(monkeypatch)
    export_secrets(text, monkeypatch)
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.chdir(tmp_path)
    Path("o2sms.toml").write_text(fences(text, "toml")[0], encoding="utf-8")
    console = fences(text, "console")[0].splitlines()
    assert console[0] == "$ o2sms config check --config o2sms.toml"
    config_check_command(Path("o2sms.toml"))
    assert capsys.readouterr().out.splitlines() == console[1:]


# --- docs/http-api.md -----------------------------------------------------------------------


@dataclass
class Exchange:
    """A request block of docs/http-api.md and the answer block after it."""

    method: str
    target: str
    headers: dict[str, str]
    body: str
    status: int
    answer_headers: dict[str, str] = field(default_factory=dict)
    answer_body: str = ""


def split_http(block: str) -> tuple[str, dict[str, str], str]:
    """(first line, headers, body) of an HTTP message as written in a ```http block."""
    head, _, body = block.partition("\n\n")
    first, *lines = head.splitlines()
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return first, headers, body.strip()


def exchanges(text: str) -> list[Exchange]:
    found: list[Exchange] = []
    request: tuple[str, dict[str, str], str] | None = None
    for block in fences(text, "http"):
        first, headers, body = split_http(block)
        if first.startswith("HTTP/"):
            assert request is not None, f"an answer without a request: {first}"
            line, request_headers, request_body = request
            method, target = line.split()
            found.append(
                Exchange(
                    method,
                    target,
                    request_headers,
                    request_body,
                    int(first.split()[1]),
                    headers,
                    body,
                )
            )
            request = None
        else:
            assert request is None, f"{request} has no answer block"
            request = (first, headers, body)
    assert request is None, f"{request} has no answer block"
    return found


def learn(documented: Any, actual: Any, known: dict[str, str]) -> None:
    """Map the ids and cursors the page shows to the ones this run got."""
    if isinstance(documented, dict) and isinstance(actual, dict):
        for key in documented.keys() & actual.keys():
            doc_value, real_value = documented[key], actual[key]
            if key in {"id", "next_cursor"} and isinstance(doc_value, str):
                if isinstance(real_value, str) and doc_value not in known:
                    known[doc_value] = real_value
            else:
                learn(doc_value, real_value, known)
    elif isinstance(documented, list) and isinstance(actual, list):
        for doc_item, real_item in zip(documented, actual, strict=False):
            learn(doc_item, real_item, known)


def same_shape(documented: Any, actual: Any, where: str) -> None:
    """The same fields at every level (lists: their first items), and the same ``status``."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), where
        assert sorted(documented) == sorted(actual), where
        for key, value in documented.items():
            if key == "detail":  # a timeline entry's details depend on its kind
                continue
            if key == "status" and isinstance(value, str):
                assert actual[key] == value, f"{where}.status"
            same_shape(value, actual[key], f"{where}.{key}")
    elif isinstance(documented, list) and documented:
        assert isinstance(actual, list), where
        assert actual, f"{where} is empty"
        same_shape(documented[0], actual[0], f"{where}[0]")
    elif documented is not None and actual is not None:
        assert type(documented) is type(actual), where


def substitute(text: str, known: dict[str, str]) -> str:
    for documented, actual in known.items():
        text = text.replace(documented, actual)
    return text


async def settle(service: Service, ids: list[str]) -> None:
    """Wait until the sandbox has finished with every message sent so far."""
    for message_id in ids:
        await service.wait_status(message_id, {s.value for s in MessageStatus} - PENDING)


async def run(service: Service, exchange: Exchange, known: dict[str, str]) -> httpx.Response:
    headers = {name: substitute(value, known) for name, value in exchange.headers.items()}
    body = substitute(exchange.body, known)
    if body:
        headers["Content-Type"] = "application/json"
    return await service.http.request(
        exchange.method,
        substitute(exchange.target, known),
        headers=headers,
        content=body.encode() if body else None,
    )


def service_settings(tmp_path: Path) -> Settings:
    sandbox = {
        "receipt_delay": 0.05,
        "key_file": tmp_path / "sandbox.key",
        "webhook_secret_file": tmp_path / "sandbox-webhook.key",
    }
    # the page's read-only key, which it shows being refused a send
    return settings_for(tmp_path, sandbox=sandbox, read_api_keys=["reader-key-0123456789abcdef"])


async def wait_inbound(service: Service) -> None:
    async with asyncio.timeout(10):
        while not (await service.http.get("/v1/inbound")).json():
            await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_http_api_examples_answer_as_documented(tmp_path: Path) -> None:
    page = exchanges(read("docs/http-api.md"))
    async with open_service(service_settings(tmp_path)) as service:
        secret = service.running.connector.webhook_secret
        assert secret is not None
        receiver = Receiver(secret=secret)
        await receiver.start()
        try:
            # The page's callback URL points at a test receiver, and an inbound SMS arrives.
            known = {"https://hooks.example.com/o2sms": receiver.url("/o2sms")}
            service.simulator.inject_mo("o2sms", "421903123456", "4444", "STOP")
            await wait_inbound(service)
            created: list[str] = []
            for exchange in page:
                where = f"{exchange.method} {exchange.target}"
                response = await run(service, exchange, known)
                assert response.status_code == exchange.status, (where, response.text)
                for name, value in exchange.answer_headers.items():
                    assert response.headers.get(name) == value, (where, name)
                if exchange.answer_body:
                    documented = json.loads(exchange.answer_body)
                    actual = response.json()
                    learn(documented, actual, known)
                    same_shape(documented, actual, where)
                if exchange.method == "POST" and exchange.status == 202:
                    created += [m["id"] for m in response.json()["messages"]]
                await settle(service, created)
                # Now the next request sees what the page shows (e.g. "delivered").
            async with asyncio.timeout(10):
                while not any(
                    r.json()["message"]["status"] == "delivered" for r in receiver.at("/o2sms")
                ):
                    await asyncio.sleep(0.02)
            assert all(r.signed for r in receiver.at("/o2sms"))
        finally:
            await receiver.close()


def test_http_api_lists_every_message_status_and_timeline_kind() -> None:
    text = read("docs/http-api.md")
    statuses = [backticked(cells[0]) for cells in table_rows(section(text, "Message statuses"))]
    assert [s for s in statuses if s is not None] == [s.value for s in MessageStatus]
    for kind in EventKind:
        assert f"`{kind.value}`" in section(text, "`GET /v1/messages/{id}`: one message")


# --- docs/operations.md ---------------------------------------------------------------------


def exposed_metrics() -> set[str]:
    """The metric names ``/metrics`` shows (counters with their ``_total``)."""
    metrics = Metrics()
    metrics.watch(sessions=lambda: {"bound": 1}, in_flight=lambda: 0, queue_depth=lambda: 0)
    names = set()
    for family in metrics.registry.collect():
        names.add(family.name + "_total" if family.type == "counter" else family.name)
    return names


def test_operations_lists_every_metric() -> None:
    rows = table_rows(section(read("docs/operations.md"), "Metrics"))
    documented = {backticked(cells[0]) for cells in rows} - {None}
    assert documented == exposed_metrics()


# --- docs/client.md -------------------------------------------------------------------------


def test_client_options_table_lists_every_parameter() -> None:
    # sender=, in the page's first example, had no row: what it does and its default nowhere.
    rows = list(table_rows(section(read("docs/client.md"), "Options of `Client`")))
    documented = {name for cells in rows[1:] for name in re.findall(r"`(\w+)`", cells[0])}
    parameters = set(inspect.signature(Client.__init__).parameters) - {"self"}
    assert documented == parameters


# --- docs/gateway.md ------------------------------------------------------------------------

#: The receipt layout as the seed ("O2 SMS Connector, SMPP 3.4") writes it, its line breaks
#: joined: "dlvrld" is its spelling, not Appendix B's "dlvrd".
SEED_RECEIPT_LAYOUT = (
    "id:<message_id> sub:<message_sub> dlvrld:<message_dlvrld> submit date:<message_submit_date>"
    " done date:<message_done_date> stat:<message_stat> err:<message_err>"
)


def seed_quote(heading: str) -> str:
    """The ``**Seed:**`` paragraph of a docs/gateway.md section, its lines joined."""
    text = section(read("docs/gateway.md"), heading)
    start = text.index("**Seed:**")
    return " ".join(text[start : text.index("\n\n", start)].split())


def test_gateway_quotes_the_seeds_receipt_layout_and_o2sms_reads_it() -> None:
    quote = seed_quote("Delivery reports")
    keys = re.findall(r"(?:^|\s)([a-z ]+?):", SEED_RECEIPT_LAYOUT)
    layout = re.search(r"`(id:[^`]*)`", quote)
    assert layout is not None, quote
    assert re.findall(r"(?:^|\s)([a-z ]+?):", layout.group(1)) == keys
    # and a receipt written in that layout is read (dlvrld as dlvrd, no text field)
    from o2sms.receipts import ReceiptStat, parse

    receipt = parse(
        "id:0A1B sub:001 dlvrld:001 submit date:2612080505 done date:2612080506 "
        "stat:DELIVRD err:000"
    )
    assert (receipt.id, receipt.dlvrd, receipt.stat) == ("0A1B", 1, ReceiptStat.DELIVRD)


def test_gateway_names_the_bind_refusals_o2sms_takes_for_the_session_limit() -> None:
    from o2sms.client.errors import SESSION_LIMIT_STATUSES

    text = section(read("docs/gateway.md"), "Bind modes and the 4 sessions")
    sentence = text[text.index("A bind beyond the account's limit") :].split(";")[0]
    named = set(re.findall(r"`(ESME_\w+)`", sentence))
    assert named == {status.name for status in SESSION_LIMIT_STATUSES}, sentence
    assert "seed" in sentence.lower(), "say the seed names no status for it"


def test_gateway_lists_infobips_statuses_and_says_where_they_come_from() -> None:
    from o2sms.smpp.constants import INFOBIP_STATUS_MEANINGS

    text = section(read("docs/gateway.md"), "Submit errors: command_status")
    rows = {
        int(cells[0].strip("`").split()[0], 16): cells[2].split(" (")[0]
        for cells in table_rows(text)
        if cells[0] != "command_status"
    }
    assert rows == INFOBIP_STATUS_MEANINGS
    # the seed announces "a few proprietary platform command statuses" and lists none
    quote = seed_quote("Submit errors: command_status")
    assert "lists none" in quote, quote


# --- README.md ------------------------------------------------------------------------------


def curl_commands(text: str) -> list[list[str]]:
    """The curl commands of the README's ```sh blocks, continuation lines joined."""
    commands = []
    for block in fences(text, "sh"):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip().startswith("curl "):
                commands.append(shlex.split(command))
    return commands


def readme_hook() -> type[BaseHTTPRequestHandler]:
    """The README's ``hook.py`` handler class (its module run without ``__main__``)."""
    [source] = [b for b in fences(read("README.md"), "python") if "class Hook" in b]
    namespace: dict[str, Any] = {"__name__": "readme_hook"}
    exec(compile(source, "README.md:hook.py", "exec"), namespace)
    hook: type[BaseHTTPRequestHandler] = namespace["Hook"]
    return hook


@pytest.mark.asyncio
async def test_readme_tour_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = curl_commands(read("README.md"))
    assert len(commands) >= 4
    monkeypatch.chdir(tmp_path)  # where o2sms serve keeps its key files
    settings = settings_for(
        tmp_path,
        sandbox={"receipt_delay": 0.05, "webhook_secret_file": "o2sms-sandbox-webhook.key"},
    )
    message_id = "no message sent yet"
    async with open_service(settings) as service:
        hook_server = HTTPServer(("127.0.0.1", 0), readme_hook())
        threading.Thread(target=hook_server.serve_forever, daemon=True).start()
        hook_url = f"http://127.0.0.1:{hook_server.server_address[1]}"
        try:
            for args in commands:
                url = next(a for a in args if a.startswith("http://"))
                url = re.sub(r"^http://127\.0\.0\.1:8000", service.running.url, url)
                url = re.sub(r"01[0-9A-HJKMNP-TV-Z]{24}", message_id, url)
                body = args[args.index("-d") + 1] if "-d" in args else None
                headers = {"Authorization": f"Bearer {API_KEY}"}
                if body is not None:
                    body = body.replace("http://127.0.0.1:9000", hook_url)
                    headers["Content-Type"] = "application/json"
                async with httpx.AsyncClient(timeout=10) as http:
                    response = await http.request(
                        "POST" if body is not None else "GET", url, headers=headers, content=body
                    )
                assert response.is_success, (args, response.text)
                if body is not None:
                    message_id = response.json()["messages"][0]["id"]
                    await settle(service, [message_id])
            printed = ""
            async with asyncio.timeout(10):
                while '"status":"delivered"' not in printed.replace(" ", ""):
                    await asyncio.sleep(0.02)
                    printed += capsys.readouterr().out
            assert "NOT SIGNED" not in printed
            assert printed.count("signed:") >= 2  # submitted, then delivered
        finally:
            hook_server.shutdown()
            hook_server.server_close()


def o2sms_commands(text: str) -> list[list[str]]:
    """The ``.venv/bin/o2sms`` commands of the README's ```sh blocks (``serve`` left out),
    without the program name."""
    commands = []
    for block in fences(text, "sh"):
        for command in block.splitlines():
            if command.startswith(".venv/bin/o2sms "):
                args = shlex.split(command)
                if args[1] != "serve":
                    commands.append(args[1:])
    return commands


@pytest.mark.asyncio
async def test_readme_o2sms_commands_find_the_sandbox_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = o2sms_commands(read("README.md"))
    assert [c[0] for c in commands] == ["send", "status"]
    monkeypatch.chdir(tmp_path)  # where o2sms serve keeps its key files
    monkeypatch.delenv("O2SMS_API_KEY", raising=False)
    settings = settings_for(
        tmp_path,
        api_keys=[],  # the sandbox makes its own key and saves it in o2sms-sandbox.key
        sandbox={
            "receipt_delay": 0.05,
            "key_file": "o2sms-sandbox.key",
            "webhook_secret_file": "o2sms-sandbox-webhook.key",
        },
    )
    message_id = "no message sent yet"
    runner = CliRunner()
    async with open_service(settings) as service:
        monkeypatch.setenv("O2SMS_URL", service.running.url)  # status has no --via in the tour
        for documented in commands:
            args = [
                re.sub(r"^http://127\.0\.0\.1:8000", service.running.url, a) for a in documented
            ]
            args = [re.sub(r"01[0-9A-HJKMNP-TV-Z]{24}", message_id, a) for a in args]
            result = await asyncio.to_thread(runner.invoke, o2sms_app, args)
            assert result.exit_code == 0, (args, result.output)
            if args[0] == "send":
                message_id = result.output.splitlines()[0].rsplit(" ", 1)[1]
                assert result.output.splitlines()[-1].endswith(f"{message_id} delivered")
            else:
                assert "delivered" in result.output


TABLE_SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")


@pytest.mark.parametrize(
    "name", ["README.md", *sorted(f"docs/{p.name}" for p in DOCS.glob("*.md"))]
)
def test_every_table_starts_with_its_header(name: str) -> None:
    """A table row after prose starts a table, so the next line is its header's separator:
    a paragraph dropped between two rows renders the rows after it as text."""
    text = FENCE.sub("", read(name))
    lines = text.splitlines()
    stray = [
        f"{name}:{number}: {line[:60]}"
        for number, (before, line, after) in enumerate(
            zip(["", *lines[:-1]], lines, [*lines[1:], ""], strict=True), 1
        )
        if line.startswith("|") and not before.startswith("|") and not TABLE_SEPARATOR.match(after)
    ]
    assert not stray
