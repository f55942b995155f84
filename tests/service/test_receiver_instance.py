"""An instance whose sessions are all receivers: it binds, takes receipts, and never submits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from o2sms.simulator import Account, Simulator
from tests.service.conftest import open_service, settings_for

pytestmark = pytest.mark.asyncio

ACCOUNT = Account("acct", "a-password-longer-than-8")


async def test_a_receiver_only_instance_starts_without_a_submit_worker(tmp_path: Path) -> None:
    async with Simulator(accounts=(ACCOUNT,)) as smsc:
        gateway = {
            "hosts": [f"127.0.0.1:{smsc.port}"],
            "system_id": ACCOUNT.system_id,
            "password": ACCOUNT.password,
            "bind": ["receiver"],
            "sessions": 1,
        }
        settings = settings_for(tmp_path, gateway=gateway)
        async with open_service(settings) as service:
            connector = service.running.connector
            assert connector.fatal is None
            assert connector.sessions_bound() == 1
            worker = connector.worker
            assert worker is not None
            assert worker._tasks == []  # nothing to claim messages it cannot send
            # ready: receiving is its job (a pod never ready would stall a rolling update)
            ready = await service.http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["sessions_sending"] == 0
            response = await service.http.post(
                "/v1/messages", json={"to": "+421903123456", "text": "waits"}
            )
            assert response.status_code == 202, response.text
            message_id = response.json()["messages"][0]["id"]
            await asyncio.sleep(0.3)  # several of the worker's polls, were it running
            body = (await service.http.get(f"/v1/messages/{message_id}")).json()
            assert body["status"] == "queued"
        assert smsc.messages() == []
