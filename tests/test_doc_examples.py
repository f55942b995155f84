"""Every ```python block of README.md and docs/*.md runs here, and does what it says.

Blocks are compiled with top-level ``await`` allowed, as a reader would paste them into an
asyncio REPL. Examples that name the real gateway (``smpp1.smstools.sk``) run against a
simulator on a loopback port, the host names swapped textually; examples that loop over
``events()`` for ever run as a task that is cancelled once they printed what they show. Lines
like ``info.encoding, info.parts  # ucs2, 1`` are checked: the tuple's values must print as the
comment says. ``test_every_python_block_is_run`` fails when a block appears that no test runs.
The ``>>>`` examples of every o2sms module's docstrings run as doctests.
"""

from __future__ import annotations

import ast
import asyncio
import doctest
import importlib
import inspect
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from http.server import HTTPServer
from pathlib import Path
from typing import Any, Final, cast

import httpx
import pytest

from o2sms import receipts
from o2sms.client import DeliveryReport
from o2sms.receipts import ReceiptStat
from o2sms.service.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from o2sms.simulator import Account, Simulator

ROOT: Final = Path(__file__).parents[1]
FENCE: Final = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)

ACCOUNT: Final = Account("acct", "long-password-is-fine")  # what README and client.md use

#: ```python blocks per file; a test below runs each one
EXPECTED_BLOCKS: Final = {
    "README.md": 2,
    "docs/client.md": 2,
    "docs/receipts.md": 2,
    "docs/simulator.md": 1,
    "docs/smpp.md": 1,
    "docs/store.md": 1,
    "docs/text.md": 1,
    "docs/webhooks.md": 1,
}

#: blocks that just run: (file, index) -> (commented tuple lines checked, lines printed)
PLAIN_BLOCKS: Final[dict[tuple[str, int], tuple[int, list[str]]]] = {
    ("docs/receipts.md", 0): (1, []),
    ("docs/simulator.md", 0): (0, []),
    ("docs/smpp.md", 0): (0, ["SubmitSm", "SubmitSmResp"]),
    ("docs/text.md", 0): (3, []),
}

#: blocks with a test of their own
SPECIAL_BLOCKS: Final = {
    ("README.md", 0): "test_readme_webhook_receiver",
    ("README.md", 1): "test_readme_client",
    ("docs/client.md", 0): "test_client_md_example",
    ("docs/client.md", 1): "test_client_md_sync_example",
    ("docs/receipts.md", 1): "test_receipts_md_doctest",
    ("docs/store.md", 0): "test_store_md_example",
    ("docs/webhooks.md", 0): "test_webhooks_md_verifier",
}


def python_blocks(name: str) -> list[str]:
    """The contents of the ```python blocks of ``name`` (relative to the repository), in order."""
    return FENCE.findall((ROOT / name).read_text(encoding="utf-8"))


def block(name: str, index: int, contains: str) -> str:
    """One block, checked to be the one the test expects."""
    source = python_blocks(name)[index]
    assert contains in source, f"{name} block {index} is not the one with {contains!r}"
    return source


def substitute(source: str, replacements: Mapping[str, str]) -> str:
    """``source`` with each key (which must occur exactly once) replaced."""
    for old, new in replacements.items():
        assert source.count(old) == 1, f"expected {old!r} once in the example"
        source = source.replace(old, new)
    return source


class Printed:
    """A ``print`` for an example's namespace that keeps what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def __call__(self, *args: object, **_: object) -> None:
        self.calls.append(args)

    @property
    def lines(self) -> list[str]:
        return [" ".join(str(arg) for arg in args) for args in self.calls]


def namespace(module: str, printed: Printed | None = None) -> dict[str, Any]:
    """Globals for running a block as module ``module`` (never ``"__main__"``)."""
    names: dict[str, Any] = {"__name__": module}
    if printed is not None:
        names["print"] = printed
    return names


async def run_block(source: str, filename: str, names: dict[str, Any]) -> None:
    """Run ``source`` in ``names``, awaiting it when it has top-level ``await``."""
    code = compile(source, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, names)
    if inspect.iscoroutine(result):
        await result


def exec_block(source: str, filename: str, names: dict[str, Any]) -> None:
    """Run a block that has no top-level ``await``."""
    exec(compile(source, filename, "exec"), names)


def commented_tuples(source: str) -> Iterator[tuple[str, list[str]]]:
    """The ``a, b, c  # 1, 2, 3`` lines of ``source``: the expression and the values shown."""
    for line in source.splitlines():
        code, sep, comment = line.partition("  # ")
        if not sep:
            continue
        try:
            tree = ast.parse(code, mode="eval")
        except SyntaxError:
            continue
        if isinstance(tree.body, ast.Tuple):
            yield code, [value.strip() for value in comment.split(",")]


def check_commented_tuples(source: str, names: dict[str, Any]) -> int:
    """Assert every commented tuple line shows its real values; return how many there were."""
    checked = 0
    for code, shown in commented_tuples(source):
        values = eval(code, names)
        assert [str(value) for value in values] == shown, code
        checked += 1
    return checked


async def run_until(
    coroutine: Any, printed: Printed, done: Callable[[], bool], timeout: float = 10.0
) -> None:
    """Run an example that never ends until ``done()``, then cancel it."""
    task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
    try:
        async with asyncio.timeout(timeout):
            while not done():
                assert not task.done() or task.exception() is None, task.exception()
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def smsc() -> Simulator:
    return Simulator(accounts=(ACCOUNT,), receipt_delay=0.01)


def local_gateway(simulator: Simulator, *, secondary: bool = True) -> dict[str, str]:
    """The examples' gateway host names (``secondary``: both), swapped for ``simulator``."""
    hosts = {'"smpp1.smstools.sk"': f'"127.0.0.1", port={simulator.port}'}
    return hosts | {'"smpp2.smstools.sk"': '"127.0.0.1"'} if secondary else hosts


# --- the check that every block is run ------------------------------------------------------


def test_every_python_block_is_run() -> None:
    files = ["README.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md")))]
    counts = {name: n for name in files if (n := len(python_blocks(name)))}
    assert counts == EXPECTED_BLOCKS, "a ```python block was added or removed: run it here"
    every = {(name, i) for name, n in EXPECTED_BLOCKS.items() for i in range(n)}
    assert not set(PLAIN_BLOCKS) & set(SPECIAL_BLOCKS)
    assert every == set(PLAIN_BLOCKS) | set(SPECIAL_BLOCKS)
    for test in SPECIAL_BLOCKS.values():
        assert callable(globals().get(test)), test


# --- blocks that run as they are ------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(("name", "index"), sorted(PLAIN_BLOCKS))
async def test_plain_block(name: str, index: int) -> None:
    tuples, lines = PLAIN_BLOCKS[name, index]
    source = python_blocks(name)[index]
    printed = Printed()
    names = namespace(f"doc_{index}", printed)
    await run_block(source, f"{name}[{index}]", names)
    assert check_commented_tuples(source, names) == tuples
    assert printed.lines == lines


def test_receipts_md_doctest() -> None:
    source = block("docs/receipts.md", 1, ">>> receipts.")
    test = doctest.DocTestParser().get_doctest(
        source, {"receipts": receipts}, "docs/receipts.md[1]", "docs/receipts.md", 0
    )
    result = doctest.DocTestRunner().run(test)
    assert result.attempted == 2
    assert result.failed == 0


# --- docstrings -----------------------------------------------------------------------------

SOURCE: Final = ROOT / "src"


def modules_with_examples() -> list[str]:
    """The o2sms modules whose source has a ``>>>`` example (in any of its docstrings)."""
    names = []
    for path in sorted((SOURCE / "o2sms").rglob("*.py")):
        if ">>> " in path.read_text(encoding="utf-8"):
            parts = path.relative_to(SOURCE).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_smpp_package_docstring_has_examples() -> None:
    assert "o2sms.smpp" in modules_with_examples()


@pytest.mark.parametrize("module_name", modules_with_examples())
def test_docstring_examples(module_name: str) -> None:
    module = importlib.import_module(module_name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    attempted = 0
    for test in doctest.DocTestFinder().find(module, module_name):
        result = runner.run(test)
        attempted += result.attempted
        assert result.failed == 0, f"{test.name}: see the doctest output above"
    assert attempted > 0


# --- README.md ------------------------------------------------------------------------------


def test_readme_webhook_receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = block("README.md", 0, "class Hook")
    monkeypatch.chdir(tmp_path)  # the receiver reads its secret from the working folder
    secret = "sandbox-webhook-secret"
    (tmp_path / "o2sms-sandbox-webhook.key").write_text(secret + "\n", encoding="utf-8")
    printed = Printed()
    names = namespace("hook", printed)  # not __main__: defines Hook, does not serve on 9000
    exec_block(source, "README.md:hook.py", names)
    server = HTTPServer(("127.0.0.1", 0), names["Hook"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    body = b'{"type":"message.status","message":{"status":"delivered"}}'
    timestamp = int(time.time())
    signed = {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"sha256={sign(secret, timestamp, body)}",
    }
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        with httpx.Client(timeout=5) as http:
            assert http.post(url, content=body, headers=signed).status_code == 204
            tampered = body.replace(b"delivered", b"failed")
            assert http.post(url, content=tampered, headers=signed).status_code == 401
            assert http.post(url, content=body).status_code == 401  # unsigned
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert printed.lines == [
        f"signed: {body.decode()}",
        f"NOT SIGNED: {tampered.decode()}",
        f"NOT SIGNED: {body.decode()}",
    ]


@pytest.mark.asyncio
async def test_readme_client() -> None:
    source = block("README.md", 1, "sms.events()")
    printed = Printed()
    async with smsc() as simulator:
        source = substitute(source, local_gateway(simulator))
        code = compile(source, "README.md[1]", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        await run_until(
            eval(code, namespace("readme_client", printed)),
            printed,
            lambda: len(printed.calls) >= 2,
        )
    [message_ids], [report] = printed.calls[:2]
    assert isinstance(message_ids, tuple)
    assert len(message_ids) == 1
    assert [m.destination_addr for m in simulator.messages()] == ["421903123456"]
    assert simulator.messages()[0].text == "Dobry den!"  # transliterated
    assert isinstance(report, DeliveryReport)
    assert report.message_id == message_ids[0]
    assert report.receipt.stat is ReceiptStat.DELIVRD


# --- docs/client.md -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_client_md_example() -> None:
    source = block("docs/client.md", 0, "async def main")
    printed = Printed()
    async with smsc() as simulator:
        source = substitute(
            source,
            # timedelta: its receipt comes while we wait
            local_gateway(simulator) | {"timedelta(hours=2)": "timedelta(seconds=1)"},
        )
        names = namespace("client_example", printed)  # not __main__: asyncio.run not called
        exec_block(source, "docs/client.md[0]", names)
        injected = False

        def shown() -> bool:
            nonlocal injected
            if printed.calls and not injected:  # sent: now an inbound SMS for the other branch
                simulator.inject_mo(ACCOUNT.system_id, "421903123456", "4444", "STOP")
                injected = True
            return len(printed.calls) >= 3

        await run_until(names["main"](), printed, shown)
    [message] = simulator.messages()
    assert message.scheduled_for is not None  # sent as a scheduled message
    assert printed.lines == [
        f"('{message.message_id}',) gsm7 1",
        "421903123456 STOP",
        "order-42 1 DELIVRD",
    ]


@pytest.mark.asyncio
async def test_client_md_sync_example() -> None:
    source = block("docs/client.md", 1, "SyncClient(")
    printed = Printed()
    async with smsc() as simulator:
        source = substitute(source, local_gateway(simulator, secondary=False))
        names = namespace("sync_example", printed)
        # SyncClient blocks: run it in a thread while the simulator answers on this loop.
        async with asyncio.timeout(30):
            await asyncio.to_thread(exec_block, source, "docs/client.md[1]", names)
    [message] = simulator.messages()
    assert message.source_addr == "O2 Shop"
    assert printed.lines == [f"{message.message_id} DELIVRD"]


# --- docs/store.md --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_store_md_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = block("docs/store.md", 0, "open_store(")
    monkeypatch.chdir(tmp_path)
    printed = Printed()
    await run_block(source, "docs/store.md[0]", namespace("store_example", printed))
    assert printed.lines == ["delivered True"]
    assert (tmp_path / "o2sms.db").exists()


# --- docs/webhooks.md -----------------------------------------------------------------------

Verifier = Callable[[bytes, Mapping[str, str], bytes], bool]


def test_webhooks_md_verifier() -> None:
    source = block("docs/webhooks.md", 0, "def verify_o2sms_webhook")
    names = namespace("verifier")
    exec_block(source, "docs/webhooks.md[0]", names)
    verify_o2sms_webhook = cast(Verifier, names["verify_o2sms_webhook"])
    secret = b"webhook-secret"
    body = b'{"type":"message.status","message":{"status":"delivered"}}'

    def headers(timestamp: int, *extra: str) -> dict[str, str]:
        signature = ", ".join([*extra, f"sha256={sign(secret, timestamp, body)}"])
        return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature}

    now = int(time.time())
    cases = [  # (headers, body, accepted)
        (headers(now), body, True),
        ({k.lower(): v for k, v in headers(now).items()}, body, True),
        (headers(now, "sha256=" + "0" * 64), body, True),  # rotation: any one matches
        (headers(now), body.replace(b"delivered", b"failed"), False),  # tampered
        (headers(now - 3600), body, False),  # replayed an hour later
        ({TIMESTAMP_HEADER: str(now)}, body, False),  # unsigned
    ]
    for sent, received, accepted in cases:
        assert verify_o2sms_webhook(secret, sent, received) is accepted, sent
        lowered = {k.lower(): v for k, v in sent.items()}
        signature = lowered.get(SIGNATURE_HEADER.lower(), "")
        ours = verify(secret, lowered[TIMESTAMP_HEADER.lower()], received, signature)
        assert ours is accepted  # the same answer as o2sms's own verify
