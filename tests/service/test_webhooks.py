"""Webhooks end to end: the store's outbox, the sender, a real HTTP receiver on loopback.

The receiver is a small HTTP/1.1 server on 127.0.0.1 (port 0) that checks each signature with
:func:`verify` and answers as each test tells it: 200, 500 then 200, a redirect, or never.
The store runs on SQLite and on PostgreSQL with the real clock and short backoffs. Sync and
async tests share this module, so async ones carry their own asyncio mark.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import trustme

from o2sms.receipts import DeliveryReceipt, ReceiptStat
from o2sms.service.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_ID_HEADER,
    AttemptOutcome,
    CallbackUrlError,
    UrlPolicy,
    WebhookSender,
    check_callback_url,
    resolve_target,
    sign,
    verify,
)
from o2sms.store import MessageStore, NewInbound, NewMessage, WebhookStatus, open_store
from tests.pg import PG_URL, fresh_schema
from tests.service.webhook_receiver import HANG, SECRET, Receiver

DOC = Path(__file__).parents[2] / "docs" / "webhooks.md"


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.close()


# -- a store on each backend, real clock -----------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture
async def store(backend: str, tmp_path: Path, receiver: Receiver) -> AsyncIterator[MessageStore]:
    """A store whose global webhook URL is the receiver's ``/global``; backoff 50..200 ms."""
    options: dict[str, Any] = {
        "webhook_url": receiver.url("/global"),
        "webhook_retry_for": 60.0,
        "webhook_retry_base": 0.05,
        "webhook_retry_cap": 0.2,
    }
    if backend == "sqlite":
        opened = await open_store(tmp_path / "store.db", **options)
        yield opened
        await opened.close()
        return
    async with fresh_schema() as schema:
        opened = await open_store(PG_URL, schema=schema, **options)
        yield opened
        await opened.close()


@pytest_asyncio.fixture
async def make_sender(store: MessageStore) -> AsyncIterator[Callable[..., WebhookSender]]:
    """Build started-later senders on the test's store; every one is stopped at the end."""
    made: list[WebhookSender] = []

    def _make(**options: Any) -> WebhookSender:
        options.setdefault("secret", SECRET)
        options.setdefault("worker_id", f"sender-{len(made)}")
        options.setdefault("poll_interval", 0.05)
        options.setdefault("timeout", 2.0)
        sender = WebhookSender(store, **options)
        made.append(sender)
        return sender

    yield _make
    for sender in made:
        await sender.stop()


async def until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    """Wait until ``condition()`` (sync or async) is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def submitted(store: MessageStore, callback: str | None, smsc_id: str) -> str:
    message = (
        await store.enqueue(NewMessage("+421900000001", "hi", callback_url=callback))
    ).message
    await store.claim("w")
    await store.mark_submitted(message.id, [smsc_id], worker_id="w")
    return message.id


def delivrd(smsc_id: str) -> DeliveryReceipt:
    return DeliveryReceipt(smsc_id, 1, 1, None, None, ReceiptStat.DELIVRD, "000", None)


async def first_webhooks_delivered(store: MessageStore, message_ids: Sequence[str]) -> bool:
    """Whether the first webhook of each of ``message_ids`` was delivered."""
    for message_id in message_ids:
        hooks = await store.list_webhooks(message_id=message_id)
        if not hooks or hooks[0].status is not WebhookStatus.DELIVERED:
            return False
    return True


async def backlog_empty(store: MessageStore) -> bool:
    return await store.webhook_backlog() == 0


# -- signatures ------------------------------------------------------------------------------


def test_a_signature_verifies_and_anything_changed_does_not() -> None:
    body = b'{"type":"message.status"}'
    now = 1_700_000_000
    signature = f"sha256={sign(SECRET, now, body)}"
    assert len(signature) == len("sha256=") + 64
    assert verify(SECRET, now, body, signature, now=now)
    assert verify(SECRET, str(now), body, signature, now=now + 299)
    assert verify(SECRET.decode(), now, body, signature, now=now)  # str secrets work too
    assert verify(SECRET, now, body, f"sha256=00, {signature}", now=now)  # any of several
    assert not verify(b"other secret", now, body, signature, now=now)
    assert not verify(SECRET, now, body + b" ", signature, now=now)
    assert not verify(SECRET, now + 1, body, signature, now=now)
    assert not verify(SECRET, now, body, signature, now=now + 301)  # too old: a replay
    assert not verify(SECRET, "soon", body, signature, now=now)
    assert not verify(SECRET, now, body, sign(SECRET, now, body), now=now)  # no sha256= prefix
    assert not verify(SECRET, now, body, "sha256=žžž", now=now)


def test_the_documented_recipe_verifies_a_real_signature() -> None:
    block = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None, "docs/webhooks.md needs a ```python verify recipe"
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)
    recipe = namespace["verify_o2sms_webhook"]
    body = b'{"type":"inbound.sms","id":"01J"}'
    now = int(time.time())
    headers = {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: f"sha256={sign(SECRET, now, body)}"}
    assert recipe(SECRET, headers, body) is True
    assert recipe(b"wrong", headers, body) is False
    assert recipe(SECRET, headers, body + b"x") is False
    stale = {TIMESTAMP_HEADER: str(now - 600), SIGNATURE_HEADER: sign(SECRET, now - 600, body)}
    assert recipe(SECRET, stale, body) is False


# -- the URL policy --------------------------------------------------------------------------

DENIED = [
    ("http://169.254.169.254/latest/meta-data/", UrlPolicy(), "link-local"),
    ("http://[fe80::1]/hook", UrlPolicy(), "link-local"),
    ("http://[::ffff:169.254.169.254]/", UrlPolicy(), "link-local"),
    ("http://2852039166/", UrlPolicy(), "169.254.169.254"),  # the same, as one number
    ("http://0.0.0.0:8000/", UrlPolicy(), "link-local or metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", UrlPolicy(), "metadata"),
    ("http://metadata/", UrlPolicy(), "metadata"),
    ("http://instance-data/latest/", UrlPolicy(), "metadata"),
    ("https://hooks.example.com/x\r\nX-Injected: 1", UrlPolicy(), "line breaks"),
    ("https://hooks.example.com/x%0d%0a\n", UrlPolicy(), "line breaks"),
    ("https://hooks.example.com/a b", UrlPolicy(), "spaces"),
    ("https://hooks.example.com/\x00", UrlPolicy(), "control characters"),
    ("https://user:secret@hooks.example.com/", UrlPolicy(), "user name or password"),
    ("https://evil.com\\@hooks.example.com/", UrlPolicy(), "user name or password"),
    ("ftp://hooks.example.com/", UrlPolicy(), "http:// or https://"),
    ("javascript:alert(1)", UrlPolicy(), "http:// or https://"),
    ("http:/hooks.example.com", UrlPolicy(), "http:// or https://"),
    ("https:///path", UrlPolicy(), "no host"),
    ("https://hooks.example.com:99999/", UrlPolicy(), "invalid port"),
    # port 0 was taken for the scheme's and accepted, then every delivery failed for the
    # whole retry time: no request can reach port 0
    ("https://hooks.example.com:0/", UrlPolicy(), "invalid port"),
    ("http://[::1/hook", UrlPolicy(), "cannot be read"),
    ("https://bad_host-.com/", UrlPolicy(), "not a valid host name"),
    ("https://" + "a" * 2000 + ".com/", UrlPolicy(), "longer than"),
    ("http://127.0.0.1:8000/", UrlPolicy(deny_private=True), "private or local"),
    ("http://10.1.2.3/", UrlPolicy(deny_private=True), "private or local"),
    ("http://[::1]/", UrlPolicy(deny_private=True), "private or local"),
    ("http://localhost:8000/", UrlPolicy(deny_private=True), "local machine"),
    ("https://example.com/", UrlPolicy(allow=("*.example.com",)), "allow-list"),
    ("https://other.org/", UrlPolicy(allow=("hooks.example.com",)), "allow-list"),
    ("http://192.0.2.1/", UrlPolicy(allow=("hooks.example.com",)), "allow-list"),
]

ALLOWED = [
    ("http://127.0.0.1:8000/hook", UrlPolicy()),
    ("https://hooks.example.com/o2sms?token=abc", UrlPolicy()),
    ("HTTPS://Hooks.Example.COM./x", UrlPolicy(allow=("hooks.example.com",))),
    ("https://a.b.example.com/", UrlPolicy(allow=("*.example.com",))),
    ("https://bücher.example/x", UrlPolicy()),
    ("http://10.1.2.3/", UrlPolicy(allow=("10.0.0.0/8",), deny_private=True)),
    ("https://internal.corp/", UrlPolicy(allow=("10.0.0.0/8",))),  # checked when resolved
    ("http://169.254.169.254/", UrlPolicy(allow=("169.254.169.254",))),  # explicitly listed
    ("http://metadata.google.internal/", UrlPolicy(allow=("metadata.google.internal",))),
]


@pytest.mark.parametrize(("url", "policy", "why"), DENIED)
def test_callback_urls_the_policy_refuses(url: str, policy: UrlPolicy, why: str) -> None:
    with pytest.raises(CallbackUrlError, match=re.escape(why)) as caught:
        check_callback_url(url, policy)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("the callback URL")


@pytest.mark.parametrize(("url", "policy"), ALLOWED)
def test_callback_urls_the_policy_accepts(url: str, policy: UrlPolicy) -> None:
    assert check_callback_url(url, policy) == url


def test_a_bad_allow_list_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="allow-list entry"):
        UrlPolicy(allow=("not a host",))
    with pytest.raises(ValueError, match="allow-list entry"):
        UrlPolicy(allow=("*.*.example.com",))


def fixed(*addresses: str) -> Callable[[str, int], Any]:
    async def resolve(_host: str, _port: int) -> Sequence[str]:
        return addresses

    return resolve


@pytest.mark.asyncio
async def test_the_resolved_address_is_checked_and_pinned() -> None:
    # DNS rebinding: the name passed the accept-time check, its address does not
    with pytest.raises(CallbackUrlError, match=r"resolves to 169\.254\.169\.254"):
        await resolve_target("https://hooks.example.com/x", UrlPolicy(), fixed("169.254.169.254"))
    with pytest.raises(CallbackUrlError, match="private or local"):
        await resolve_target(
            "https://hooks.example.com/x",
            UrlPolicy(deny_private=True),
            fixed("203.0.113.5", "10.0.0.1"),  # one bad address refuses the name
        )
    with pytest.raises(CallbackUrlError, match="allow-list"):
        await resolve_target(
            "https://internal.corp/x", UrlPolicy(allow=("10.0.0.0/8",)), fixed("192.0.2.7")
        )
    target = await resolve_target(
        "https://internal.corp:8443/x?t=1", UrlPolicy(allow=("10.0.0.0/8",)), fixed("10.0.0.7")
    )
    assert target.url == "https://10.0.0.7:8443/x?t=1"
    assert (target.host_header, target.sni_hostname) == ("internal.corp:8443", "internal.corp")
    v6 = await resolve_target("http://hooks.example.com/", UrlPolicy(), fixed("2001:db8::1"))
    assert (v6.url, v6.host_header) == ("http://[2001:db8::1]/", "hooks.example.com")


# -- sending ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_status_change_is_posted_signed_and_recorded(
    store: MessageStore, receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    outcomes: list[AttemptOutcome] = []
    sender = make_sender(on_attempt=outcomes.append)
    await sender.start()
    message_id = await submitted(store, receiver.url("/hook?token=t1"), "S1")
    sender.notify()
    await until(lambda: len(receiver.requests) == 1)
    await store.apply_receipt(delivrd("S1"))
    sender.notify()
    await until(lambda: len(receiver.requests) == 2)
    await until(lambda: backlog_empty(store))

    first, second = receiver.requests
    assert first.signed
    assert second.signed
    assert first.path == "/hook?token=t1"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert first.headers["x-o2sms-event"] == "message.status"
    assert first.headers["x-o2sms-attempt"] == "1"
    assert first.headers["user-agent"].startswith("o2sms-webhooks/")
    assert [r.json()["message"]["status"] for r in receiver.requests] == ["submitted", "delivered"]
    assert second.json()["message"]["id"] == message_id
    assert second.json()["id"] == second.headers[WEBHOOK_ID_HEADER.lower()]
    hooks = await store.list_webhooks(message_id=message_id)
    assert [h.status for h in hooks] == [WebhookStatus.DELIVERED] * 2
    attempts = await store.list_webhook_attempts(message_id)
    assert [(a.status_code, a.error) for a in attempts] == [(200, None), (200, None)]
    assert [o.outcome for o in outcomes] == ["delivered", "delivered"]
    assert sender.stats.delivered == 2


@pytest.mark.asyncio
async def test_a_failing_receiver_is_retried_with_each_attempt_recorded(
    store: MessageStore, receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    receiver.plans["/flaky"] = [500, 503, 200]
    sender = make_sender()
    await sender.start()
    message_id = await submitted(store, receiver.url("/flaky"), "S1")
    await until(lambda: backlog_empty(store))
    attempts = await store.list_webhook_attempts(message_id)
    assert [(a.status_code, a.error) for a in attempts] == [
        (500, "HTTP 500"),
        (503, "HTTP 503"),
        (200, None),
    ]
    assert all(r.signed for r in receiver.requests)
    assert [r.headers["x-o2sms-attempt"] for r in receiver.requests] == ["1", "2", "3"]
    assert len({r.headers["x-o2sms-webhook-id"] for r in receiver.requests}) == 1  # dedup key
    [hook] = await store.list_webhooks(message_id=message_id)
    assert hook.status is WebhookStatus.DELIVERED
    assert sender.stats.retried == 2


@pytest.mark.asyncio
async def test_a_hanging_receiver_holds_only_its_own_slot(
    store: MessageStore, receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    receiver.plans["/hang"] = [HANG]
    sender = make_sender(concurrency=4, timeout=2.0)
    await sender.start()
    hung = await submitted(store, receiver.url("/hang"), "H")
    await until(lambda: receiver.at("/hang"))
    started = time.monotonic()
    others = [await submitted(store, receiver.url(f"/ok{n}"), f"S{n}") for n in range(10)]
    sender.notify()
    await until(lambda: first_webhooks_delivered(store, others))
    assert time.monotonic() - started < 2.0  # before the hanging attempt even timed out
    await until(lambda: len(receiver.at("/hang")) >= 2)  # timed out, then tried again
    attempts = await store.list_webhook_attempts(hung)
    assert attempts[0].status_code is None
    assert attempts[0].error == "no answer within 2 s"
    assert 1900 <= attempts[0].duration_ms < 5000


@pytest.mark.asyncio
async def test_a_receiver_that_timed_out_gets_one_slot_and_the_others_the_rest(
    store: MessageStore, receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    healthy = Receiver()
    await healthy.start()
    try:
        held_back: list[int] = []
        sender = make_sender(
            concurrency=4, timeout=1.0, poll_interval=1.0, on_held_back=held_back.append
        )
        # 16 webhooks to the hanging receiver first, each with a URL of its own: oldest first,
        # they alone would fill the four slots for four rounds of the timeout before any of
        # the healthy receiver's went out
        for n in range(16):
            receiver.plans[f"/hang/{n}"] = [HANG]
            await submitted(store, receiver.url(f"/hang/{n}"), f"H{n}")
        others = [await submitted(store, healthy.url(f"/ok{n}"), f"S{n}") for n in range(6)]
        await sender.start()
        await until(lambda: len(receiver.requests) >= 4)
        started = time.monotonic()
        await until(lambda: first_webhooks_delivered(store, others))
        # the first four attempts time out (1 s), then the hanging receiver keeps one slot
        assert time.monotonic() - started < 2.5
        assert sender.stats.deferred > 0
        assert sum(held_back) == sender.stats.deferred  # what the service's metric counts
        hanging = await store.list_webhooks(status=WebhookStatus.PENDING)
        assert sum(h.attempts for h in hanging) <= 4 + 1 + 1  # never attempted when put off
    finally:
        await healthy.close()


@pytest.mark.asyncio
async def test_a_name_whose_first_address_refuses_is_tried_at_the_next(
    store: MessageStore, receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    # "localhost" is ::1 first on many systems, while a receiver often listens on 127.0.0.1
    # only: a refused connection (nothing sent) goes on to the name's next checked address.
    sender = make_sender(resolver=fixed("::1", "127.0.0.1"))
    await sender.start()
    message_id = await submitted(store, receiver.url("/local", host="localhost"), "S1")
    await until(lambda: first_webhooks_delivered(store, [message_id]))
    [request] = receiver.at("/local")
    assert request.headers["host"] == f"localhost:{receiver.port}"


@pytest.mark.asyncio
async def test_no_next_address_once_a_request_may_have_gone_out(
    store: MessageStore, receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    # The first address takes the connection and the request, then hangs up unanswered: the
    # receiver behind it may have acted on it, so the next address gets no copy of it.
    heard = asyncio.Event()

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        heard.set()
        writer.close()

    rude = await asyncio.start_server(hang_up, "127.0.0.2", receiver.port)
    try:
        sender = make_sender(resolver=fixed("127.0.0.2", "127.0.0.1"))
        await sender.start()
        message_id = await submitted(store, receiver.url("/local", host="localhost"), "S1")

        async def failed_once() -> bool:
            hooks = await store.list_webhooks(message_id=message_id)
            return bool(hooks) and hooks[0].last_error is not None

        await until(failed_once)
        assert heard.is_set()
        assert receiver.at("/local") == []
    finally:
        rude.close()


@pytest.mark.asyncio
async def test_every_address_refusing_is_one_failed_attempt(
    store: MessageStore, make_sender: Callable[..., WebhookSender]
) -> None:
    sender = make_sender(resolver=fixed("127.0.0.3", "127.0.0.2"))
    await sender.start()
    message_id = await submitted(store, "http://localhost:9/x", "S1")

    async def failed_once() -> bool:
        hooks = await store.list_webhooks(message_id=message_id)
        return bool(hooks) and hooks[0].last_error is not None

    await until(failed_once)
    [hook] = await store.list_webhooks(message_id=message_id)
    assert hook.status is WebhookStatus.PENDING  # retried later, not given up
    assert "ConnectError" in (hook.last_error or "")


@pytest.mark.asyncio
async def test_stop_is_bounded_and_hands_leases_back(
    store: MessageStore, receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    receiver.plans["/hang"] = [HANG]
    sender = make_sender(timeout=30.0, stop_grace=0.2)
    await sender.start()
    await submitted(store, receiver.url("/hang"), "H")
    await until(lambda: receiver.at("/hang"))
    started = time.monotonic()
    await sender.stop()
    assert time.monotonic() - started < 2.0
    assert not sender.running
    [hook] = await store.list_webhooks()
    assert (hook.status, hook.lease_owner, hook.attempts) == (WebhookStatus.PENDING, None, 0)


@pytest.mark.asyncio
async def test_redirects_are_not_followed(
    store: MessageStore, receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    receiver.plans["/moved"] = [302, 200]
    sender = make_sender()
    await sender.start()
    message_id = await submitted(store, receiver.url("/moved"), "S1")
    await until(lambda: backlog_empty(store))
    attempts = await store.list_webhook_attempts(message_id)
    assert [(a.status_code, a.error) for a in attempts] == [
        (302, "HTTP 302 (redirects are not followed)"),
        (200, None),
    ]
    assert [r.path for r in receiver.requests] == ["/moved", "/moved"]


@pytest.mark.asyncio
async def test_an_inbound_sms_goes_to_the_global_url(
    store: MessageStore, receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    sender = make_sender()
    await sender.start()
    sms = await store.record_inbound(NewInbound("+421900000001", "4444", "Ahoj 👋", data_coding=8))
    await until(lambda: receiver.at("/global"))
    [request] = receiver.at("/global")
    assert request.signed
    assert request.headers["x-o2sms-event"] == "inbound.sms"
    body = request.json()
    assert body["type"] == "inbound.sms"
    assert body["inbound"]["id"] == sms.id
    assert body["inbound"]["text"] == "Ahoj 👋"


@pytest.mark.asyncio
async def test_a_url_refused_at_send_time_is_given_up_without_a_request(
    store: MessageStore, receiver: Receiver, make_sender: Callable[..., WebhookSender]
) -> None:
    # accepted earlier (or the name now resolves elsewhere): the sender checks again
    sender = make_sender(policy=UrlPolicy(deny_private=True))
    await sender.start()
    message_id = await submitted(store, receiver.url("/hook"), "S1")
    await until(lambda: backlog_empty(store))
    [hook] = await store.list_webhooks(message_id=message_id)
    assert hook.status is WebhookStatus.FAILED
    assert hook.last_error == (
        "the callback URL is not allowed: 127.0.0.1 is a private or local address"
    )
    assert receiver.requests == []
    assert sender.stats.failed == 1


@pytest.mark.asyncio
async def test_https_goes_to_the_checked_address_with_the_name_for_tls(
    store: MessageStore, make_sender: Callable[..., WebhookSender]
) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.test").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    tls_receiver = Receiver(ssl_context=server_context)
    await tls_receiver.start()
    client = httpx.AsyncClient(verify=client_context, trust_env=False)
    try:
        sender = make_sender(http_client=client, resolver=fixed("127.0.0.1"))
        await sender.start()
        message_id = await submitted(store, tls_receiver.url("/tls", host="hooks.test"), "S1")
        await until(lambda: backlog_empty(store))
        [hook] = await store.list_webhooks(message_id=message_id)
        assert hook.status is WebhookStatus.DELIVERED, hook.last_error
        [request] = tls_receiver.requests
        assert request.signed
        assert request.headers["host"] == f"hooks.test:{tls_receiver.port}"
        await sender.stop()
    finally:
        await client.aclose()
        await tls_receiver.close()
