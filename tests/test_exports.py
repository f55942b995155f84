"""The top-level façade: curated, sorted, lazily loaded."""

from __future__ import annotations

import subprocess
import sys

import o2sms
import o2sms.client
import o2sms.simulator


def test_facade_names_are_the_real_objects() -> None:
    assert o2sms.Client is o2sms.client.Client
    assert o2sms.SyncClient is o2sms.client.SyncClient
    assert o2sms.Simulator is o2sms.simulator.Simulator
    assert sorted(o2sms.__all__) == o2sms.__all__
    for name in o2sms.__all__:
        assert getattr(o2sms, name) is not None


def test_the_protocol_core_imports_without_asyncio_or_phonenumbers() -> None:
    code = (
        "import sys, o2sms.smpp, o2sms.text, o2sms.receipts; "
        "print(sorted(m for m in ('asyncio', 'socket', 'phonenumbers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
