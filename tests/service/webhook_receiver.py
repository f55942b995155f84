"""A webhook receiver for tests: a small HTTP/1.1 server on 127.0.0.1 (port 0) that checks
each request's signature with :func:`verify` and answers as the test planned."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from dataclasses import dataclass, field
from typing import Any

from o2sms.service.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

SECRET = b"whsec-test-0123456789"
HANG = 0  # a planned "status" meaning: never answer


@dataclass
class Received:
    """One request as the receiver saw it, and whether its signature checked out."""

    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    """An HTTP/1.1 server on loopback; ``plans[path]`` lists the answers in turn (last repeats)."""

    ssl_context: ssl.SSLContext | None = None
    secret: bytes | str = SECRET
    plans: dict[str, list[int]] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                lines = head.split("\r\n")
                path = lines[0].split(" ")[1]
                headers = {
                    name.strip().lower(): value.strip()
                    for name, value in (line.split(":", 1) for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                signed = verify(
                    self.secret,
                    headers.get(TIMESTAMP_HEADER.lower(), ""),
                    body,
                    headers.get(SIGNATURE_HEADER.lower(), ""),
                )
                self.requests.append(Received(path, headers, body, signed))
                plan = self.plans.setdefault(path, [200])
                status = plan.pop(0) if len(plan) > 1 else plan[0]
                if status == HANG:
                    await self._release.wait()
                    return
                location = "Location: http://127.0.0.1:9/elsewhere\r\n" if status < 400 else ""
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n{location}\r\nok".encode()
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            self._handlers.discard(task)

    async def close(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.gather(*self._handlers, return_exceptions=True)
