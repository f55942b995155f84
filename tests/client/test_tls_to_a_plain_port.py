"""TLS to a port that answers in plain text (a plain SMPP port): the error says so."""

from __future__ import annotations

import asyncio

import pytest

from o2sms.client.config import Endpoint, TlsSettings
from o2sms.client.errors import ConnectError
from o2sms.client.transport import open_connection


@pytest.mark.asyncio
async def test_tls_to_a_plain_port_says_it_answered_without_tls() -> None:
    # tls = true with a host:8888 (the plain port) said only "failed: WRONG_VERSION_NUMBER".
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # the ClientHello has come
        writer.write(b"\x00\x00\x00\x10\x80\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(plain, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectError) as caught:
            await open_connection(
                Endpoint("127.0.0.1", port, tls=True),
                asyncio.Protocol,
                tls=TlsSettings(insecure_skip_verify=True),
                timeout=10,
            )
    finally:
        server.close()
        await server.wait_closed()
    assert str(caught.value) == (
        f"TLS handshake with 127.0.0.1:{port} (TLS) failed: WRONG_VERSION_NUMBER "
        "(it answered without TLS: a plain SMPP port? the O2 gateway's TLS port is 8887)"
    )
