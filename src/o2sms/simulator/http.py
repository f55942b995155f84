"""A tiny JSON endpoint for people and tests: inspect the simulator, inject inbound SMS.

Stdlib asyncio only, HTTP/1.1 with ``Connection: close``; meant for 127.0.0.1.

=======================  ================================================================
``GET /``                everything: messages, long_messages, sessions, counters (``?limit=N``)
``GET /messages``        received messages (``?limit=N``, newest N)
``GET /sessions``        open connections
``GET /counters``        counters
``POST /mo``             JSON ``{"system_id", "source_addr", "destination_addr", "text"}``:
                         deliver an inbound SMS; answers ``{"parts": N}``
=======================  ================================================================
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, urlsplit

MAX_BODY: Final = 64 * 1024
_REASONS: Final = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class Inspectable(Protocol):
    """What the endpoint needs from the simulator."""

    def snapshot(self, limit: int | None = None) -> dict[str, Any]: ...
    def inject_mo(
        self,
        system_id: str,
        source_addr: str,
        destination_addr: str,
        text: str,
        *,
        encoding: str | None = None,
    ) -> int: ...


def _limit(query: str) -> int | None:
    values = parse_qs(query).get("limit")
    return int(values[0]) if values else None


def handle(target: Inspectable, method: str, path: str, body: bytes) -> tuple[int, Any]:
    """Route one request to (status, JSON-able answer); pure apart from the target's calls."""
    url = urlsplit(path)
    route = url.path.rstrip("/") or "/"
    try:
        if method == "GET":
            if route == "/":
                return 200, target.snapshot(_limit(url.query))
            if route in ("/messages", "/sessions", "/counters"):
                snap = target.snapshot(_limit(url.query))
                return 200, snap[route[1:]]
            return 404, {"error": f"no such resource {route}"}
        if method == "POST" and route == "/mo":
            data = json.loads(body or b"{}")
            parts = target.inject_mo(
                str(data["system_id"]),
                str(data["source_addr"]),
                str(data["destination_addr"]),
                str(data["text"]),
                encoding=data.get("encoding"),
            )
            return 200, {"parts": parts}
        return 405, {"error": f"{method} {route} is not supported"}
    except (KeyError, ValueError, TypeError) as exc:
        return 400, {"error": str(exc) or type(exc).__name__}


async def _serve_one(
    target: Inspectable, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        async with asyncio.timeout(10):
            request_line = await reader.readline()
            parts = request_line.decode("latin-1").split()
            length: int | None = 0  # None: a Content-Length that is not a number
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    value = value.strip()
                    ok = value.isascii() and value.isdigit() and len(value) <= 9
                    length = int(value) if ok else None
            if len(parts) < 2 or length is None or length > MAX_BODY:
                status, answer = 400, {"error": "bad request"}
            else:
                body = await reader.readexactly(length) if length else b""
                status, answer = handle(target, parts[0].upper(), parts[1], body)
        payload = json.dumps(answer, indent=1).encode()
        writer.write(
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            "Connection: close\r\n\r\n".encode("latin-1")
            + payload
        )
        await writer.drain()
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def serve(target: Inspectable, host: str, port: int) -> asyncio.Server:
    """Start the endpoint; close the returned server to stop it."""

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_one(target, reader, writer)

    return await asyncio.start_server(client, host, port)


__all__ = ["Inspectable", "handle", "serve"]
