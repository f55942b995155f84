"""Security checks: secrets never leak, TLS verifies the gateway, the API needs its key.

The end-to-end run is in this process (so caplog sees every record of every logger, at DEBUG);
no child process is started here, so there is no child output to scan.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from o2sms.client import Client
from o2sms.client.errors import BindError, ClientError, ConnectError
from o2sms.service.runtime import start_service
from o2sms.service.settings import Settings
from o2sms.simulator import Account, Simulator
from tests.reliability.ledger import build_ledger, wait_final, wait_quiet
from tests.service.conftest import settings_for
from tests.service.webhook_receiver import Receiver

pytestmark = pytest.mark.asyncio

GATEWAY_PASSWORD = "gw-Pa55-7f3a9c"
API_KEY = "api-key-SECRET-5d1e8b2f4a6c"
WEBHOOK_SECRET = "whsec-SECRET-0c9d8e7f6a5b"
WRONG_PASSWORD = "wrong-Pa55-e4d2"
READ_KEY = "read-key-SECRET-8a7b6c5d4e3f"
SECRETS = (GATEWAY_PASSWORD, API_KEY, WEBHOOK_SECRET, WRONG_PASSWORD, READ_KEY)

ACCOUNT = Account("acct", GATEWAY_PASSWORD)
PROTECTED = [
    ("POST", "/v1/messages"),
    ("GET", "/v1/messages"),
    ("GET", "/v1/messages/01JDZ8Q1FJ6M3H0K2Z8T4W9YQA"),
    ("POST", "/v1/messages/01JDZ8Q1FJ6M3H0K2Z8T4W9YQA/cancel"),
    ("GET", "/v1/inbound"),
    ("GET", "/metrics"),
]


@pytest_asyncio.fixture
async def smsc() -> AsyncIterator[Simulator]:
    async with Simulator(accounts=(ACCOUNT,), receipt_delay=0.05) as simulator:
        yield simulator


def secure_settings(tmp_path: Path, smsc: Simulator, receiver: Receiver, password: str) -> Settings:
    return settings_for(
        tmp_path,
        api_keys=[API_KEY],
        read_api_keys=[READ_KEY],
        sender="O2 Test",
        log_level="debug",
        gateway={
            "hosts": [f"127.0.0.1:{smsc.port}"],
            "system_id": ACCOUNT.system_id,
            "password": password,
            "sessions": 2,
        },
        webhooks={"url": receiver.url("/hook?token=abc"), "secret": WEBHOOK_SECRET},
    )


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


async def test_secrets_never_reach_logs_metrics_errors_or_tracebacks(
    smsc: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger's records, at DEBUG
    receiver = Receiver(secret=WEBHOOK_SECRET)
    await receiver.start()
    seen: list[str] = []
    try:
        settings = secure_settings(tmp_path, smsc, receiver, GATEWAY_PASSWORD)
        seen += [repr(settings), str(settings), settings.model_dump_json()]
        service = await start_service(settings)
        try:
            async with httpx.AsyncClient(
                base_url=service.url, headers={"Authorization": f"Bearer {API_KEY}"}
            ) as http:
                response = await http.post(
                    "/v1/messages",
                    json={"to": ["+421903000001", "+421903000002"], "text": "secret run"},
                )
                assert response.status_code == 202
                ids = [m["id"] for m in response.json()["messages"]]
                store = service.connector.store
                await wait_final(store, 2, timeout=20)
                for message_id in ids:
                    seen.append((await http.get(f"/v1/messages/{message_id}")).text)
                metrics = await http.get("/metrics")
                assert metrics.status_code == 200
                seen.append(metrics.text)
                # Error answers, with the secret in the wrong place.
                for headers in (
                    {"Authorization": f"Bearer {API_KEY}x"},
                    {"Authorization": f"Basic {API_KEY}"},
                    {"Authorization": API_KEY},
                ):
                    seen.append((await http.get("/v1/messages", headers=headers)).text)
                seen.append((await http.post("/v1/messages", content=b"{" + API_KEY.encode())).text)
                # A read-only key sending: 403, its key in no answer or log.
                read_only = await http.post(
                    "/v1/messages",
                    json={"to": "+421903000003", "text": "no"},
                    headers={"Authorization": f"Bearer {READ_KEY}"},
                )
                assert read_only.status_code == 403
                seen.append(read_only.text)
                await wait_delivered_hooks(receiver, ids)
            await wait_quiet([smsc])
            ledger = await build_ledger("secure run", store, ids, [smsc])
        finally:
            await service.stop()
        # A failed bind with a wrong password: the error and its traceback.
        wrong = secure_settings(tmp_path / "wrong", smsc, receiver, WRONG_PASSWORD)
        (tmp_path / "wrong").mkdir()
        with pytest.raises(BindError) as refused:
            await start_service(wrong)
        seen += [str(refused.value), repr(refused.value)]
        seen += traceback.format_exception(refused.value)
    finally:
        await receiver.close()
    ledger.check()
    for record in caplog.records:
        seen.append(record.getMessage())
        seen.append(repr(record.args))
        if record.exc_info:
            seen += traceback.format_exception(*record.exc_info)
    seen.append(caplog.text)
    assert len(caplog.records) > 5, "the run logged nothing: the capture is broken"
    where = [text[:300] for text in seen if leaks(text)]
    found = {secret for text in seen for secret in leaks(text)}
    assert not found, f"secrets leaked: {found} in {where}"


async def wait_delivered_hooks(receiver: Receiver, ids: list[str]) -> None:
    """Wait until the receiver got the ``delivered`` webhook of every id."""
    async with asyncio.timeout(20):
        while True:
            done = {
                r.json()["message"]["id"]
                for r in receiver.requests
                if r.json().get("message", {}).get("status") == "delivered"
            }
            if set(ids) <= done:
                return
            await asyncio.sleep(0.05)


async def test_a_password_outside_latin_1_is_refused_without_showing_any_of_it(
    smsc: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    from o2sms.client import BindConfigError, Client

    password = "Pa55-€uro"  # no octet for the euro sign in the bind's Latin-1 field
    caplog.set_level(logging.DEBUG)
    sms = Client("127.0.0.1", smsc.port, ACCOUNT.system_id, password, connect_timeout=2.0)
    with pytest.raises(BindConfigError, match="password has a character outside Latin-1") as got:
        await sms.start()
    await sms.close()
    chain: list[BaseException] = []
    error: BaseException | None = got.value
    while error is not None:  # nothing down the chain keeps the value either
        chain.append(error)
        error = error.__cause__ or error.__context__
    shown = [caplog.text, *traceback.format_exception(got.value)]
    shown += [repr(e) + repr(e.args) + repr(getattr(e, "object", "")) for e in chain]
    assert not [text for text in shown if "€" in text or "Pa55" in text]


async def test_tls_to_an_untrusted_certificate_fails_clearly() -> None:
    async with Simulator(accounts=(ACCOUNT,), port=None, tls_port=0) as smsc:
        assert smsc.tls_port is not None
        client = Client(
            hosts=[("127.0.0.1", smsc.tls_port)],
            system_id=ACCOUNT.system_id,
            password=GATEWAY_PASSWORD,
            tls=True,
            connect_timeout=2.0,
        )
        with pytest.raises(ClientError) as failed:
            await client.start()
        await client.close()
        assert isinstance(failed.value, ConnectError) or isinstance(
            failed.value.__cause__, ConnectError
        ), repr(failed.value)
        assert "not trusted" in str(failed.value) or "certificate" in str(failed.value).lower()
        assert smsc.counters["binds"] == 0
        assert GATEWAY_PASSWORD not in str(failed.value)


async def test_every_endpoint_but_health_needs_the_api_key(smsc: Simulator, tmp_path: Path) -> None:
    receiver = Receiver(secret=WEBHOOK_SECRET)
    await receiver.start()
    service = await start_service(secure_settings(tmp_path, smsc, receiver, GATEWAY_PASSWORD))
    try:
        async with httpx.AsyncClient(base_url=service.url) as http:
            for method, path in PROTECTED:
                for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789abcdef"}):
                    response = await http.request(method, path, headers=headers, json={})
                    assert response.status_code == 401, (method, path, headers, response.text)
                    assert response.headers["WWW-Authenticate"] == "Bearer"
            for path in ("/healthz", "/readyz"):
                assert (await http.get(path)).status_code == 200
    finally:
        await service.stop()
        await receiver.close()


async def test_webhook_url_query_is_not_logged_at_info(
    smsc: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/operations.md: logs never show a webhook URL's query string (it may hold a token).
    ``o2sms serve`` logs at INFO through the root logger, so third-party INFO lines count."""
    caplog.set_level(logging.INFO)
    receiver = Receiver(secret=WEBHOOK_SECRET)
    await receiver.start()
    try:
        service = await start_service(secure_settings(tmp_path, smsc, receiver, GATEWAY_PASSWORD))
        try:
            async with httpx.AsyncClient(
                base_url=service.url, headers={"Authorization": f"Bearer {API_KEY}"}
            ) as http:
                response = await http.post(
                    "/v1/messages", json={"to": "+421903000003", "text": "token run"}
                )
                assert response.status_code == 202
                await wait_delivered_hooks(receiver, [response.json()["messages"][0]["id"]])
        finally:
            await service.stop()
    finally:
        await receiver.close()
    logged = [
        f"{r.name}: {r.getMessage()}" for r in caplog.records if "token=abc" in r.getMessage()
    ]
    assert not logged, logged
