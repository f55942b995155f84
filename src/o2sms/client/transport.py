"""The only socket and TLS code of the client: open a connection to one endpoint.

Foreign exceptions (OSError, ssl.SSLError, timeouts) are mapped to :class:`ConnectError` here
(:class:`BindConfigError` for a CA file that cannot be loaded), so nothing above this module
sees them.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from typing import TypeVar

from o2sms.client.config import Endpoint, TlsSettings
from o2sms.client.errors import BindConfigError, ConnectError

P = TypeVar("P", bound=asyncio.Protocol)


def tls_context(settings: TlsSettings) -> ssl.SSLContext:
    """A client context that verifies the certificate and host name unless told otherwise."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Turn Nagle's algorithm off: small PDUs must not wait for delayed acknowledgements."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def open_connection(
    endpoint: Endpoint,
    protocol_factory: Callable[[], P],
    *,
    tls: TlsSettings,
    timeout: float,
) -> tuple[asyncio.Transport, P]:
    """Connect to ``endpoint`` (TLS when it says so) and return the transport and protocol."""
    loop = asyncio.get_running_loop()
    try:
        context = tls_context(tls) if endpoint.tls else None
    except (OSError, ssl.SSLError) as exc:  # a CA file missing or not PEM: no retry helps
        raise BindConfigError(f"the TLS CA file {tls.ca_file!r} cannot be used: {exc}") from None
    where = f"{endpoint.host}:{endpoint.port}{' (TLS)' if endpoint.tls else ''}"
    try:
        async with asyncio.timeout(timeout):
            transport, protocol = await loop.create_connection(
                protocol_factory,
                endpoint.host,
                endpoint.port,
                ssl=context,
                server_hostname=(tls.server_hostname or endpoint.host) if context else None,
            )
    except ssl.SSLCertVerificationError as exc:
        raise ConnectError(
            f"TLS certificate of {where} is not trusted: {exc.verify_message}"
        ) from None
    except ssl.SSLError as exc:
        hint = ""
        if exc.reason == "WRONG_VERSION_NUMBER":  # an answer that is no TLS record
            hint = (
                " (it answered without TLS: a plain SMPP port? the O2 gateway's TLS port is 8887)"
            )
        raise ConnectError(
            f"TLS handshake with {where} failed: {exc.reason or exc}{hint}"
        ) from None
    except TimeoutError:
        raise ConnectError(f"connecting to {where} timed out after {timeout:g} s") from None
    except OSError as exc:
        raise ConnectError(f"cannot connect to {where}: {exc.strerror or exc}") from None
    set_nodelay(transport)
    return transport, protocol
