"""A running connector for each test: sandbox simulator, real HTTP on a free port, and the
store on a SQLite file or a fresh PostgreSQL schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from o2sms.service.runtime import RunningService, start_service
from o2sms.service.settings import Settings
from o2sms.simulator import Simulator
from tests.pg import PG_URL, fresh_schema

API_KEY = "test-key-0123456789abcdef"


@dataclass
class Service:
    """A started connector and an HTTP client authorised with ``API_KEY``."""

    running: RunningService
    http: httpx.AsyncClient

    @property
    def simulator(self) -> Simulator:
        """The sandbox SMSC the connector talks to."""
        simulator = self.running.connector.simulator
        assert simulator is not None
        return simulator

    async def wait_status(
        self, message_id: str, wanted: set[str], timeout: float = 10.0
    ) -> dict[str, Any]:
        """Poll ``GET /v1/messages/{id}`` until its status is one of ``wanted``."""
        body: dict[str, Any] = {}
        async with asyncio.timeout(timeout):
            while True:
                response = await self.http.get(f"/v1/messages/{message_id}")
                assert response.status_code == 200, response.text
                body = response.json()
                if body["status"] in wanted:
                    return body
                await asyncio.sleep(0.02)


StoreOptions = Callable[[], Awaitable[dict[str, Any]]]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every service test that uses ``store_options`` runs on both stores."""
    return str(request.param)


@pytest_asyncio.fixture
async def store_options(backend: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """``store_url`` (and ``store_schema``) of a fresh, empty store on ``backend``."""
    if backend == "sqlite":
        yield {"store_url": f"sqlite:///{tmp_path / 'o2sms.db'}"}
        return
    async with fresh_schema("o2sms_svc") as schema:
        yield {"store_url": PG_URL, "store_schema": schema}


def settings_for(tmp_path: Path, **options: Any) -> Settings:
    """Test settings: sandbox mode, HTTP on a free loopback port, fast receipts and polls."""
    values: dict[str, Any] = {
        "store_url": f"sqlite:///{tmp_path / 'o2sms.db'}",
        "api_keys": [API_KEY],
        "http_host": "127.0.0.1",
        "http_port": 0,
        "sandbox": {
            "receipt_delay": 0.05,
            "key_file": tmp_path / "sandbox.key",
            "webhook_secret_file": tmp_path / "sandbox-webhook.key",
        },
        "worker": {"poll_interval": 0.05},
    }
    values.update(options)
    return Settings(**values)


@asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Service]:
    """Start a connector with ``settings``; stop it (unbind, close the store) afterwards."""
    running = await start_service(settings)
    try:
        async with httpx.AsyncClient(
            base_url=running.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10.0
        ) as http:
            yield Service(running, http)
    finally:
        await running.stop()


@pytest_asyncio.fixture
async def service(store_options: dict[str, Any], tmp_path: Path) -> AsyncIterator[Service]:
    """A sandbox connector on the test's store (SQLite file or PostgreSQL schema)."""
    async with open_service(settings_for(tmp_path, **store_options)) as started:
        yield started


@pytest_asyncio.fixture
async def sqlite_service(tmp_path: Path) -> AsyncIterator[Service]:
    """A sandbox connector on a SQLite file, for tests that do not depend on the store."""
    async with open_service(settings_for(tmp_path)) as started:
        yield started
