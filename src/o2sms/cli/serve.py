"""``o2sms serve`` (the connector daemon) and ``o2sms config check``."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from o2sms.service.runtime import protect_logs, serve
from o2sms.service.settings import ConfigError, Settings, load_settings

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML configuration file (O2SMS_* variables override it)"),
]
# Defaults in parentheses: Rich read "[sqlite:///o2sms.db]" in a help text as markup.
HttpHostOption = Annotated[str | None, typer.Option(help="HTTP address (default: 127.0.0.1).")]
HttpPortOption = Annotated[int | None, typer.Option(help="HTTP port (default: 8000).")]
StoreUrlOption = Annotated[
    str | None,
    typer.Option(help="sqlite:///file.db or postgresql://... (default: sqlite:///o2sms.db)."),
]


def _load(config_file: Path | None, **overrides: object) -> Settings:
    try:
        return load_settings(config_file, **overrides)
    except ConfigError as exc:
        # Plain lines, never wrapped: each problem stays on one line when piped or logged.
        typer.echo(f"error: invalid configuration\n{exc}", err=True)
        raise typer.Exit(2) from None


def _run(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on uvloop when it is installed (a faster event loop), else on asyncio's."""
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _tune_gc() -> None:
    """Fewer garbage collections for a daemon that allocates many short-lived objects a message.

    What was imported at start is frozen out of the collector's way, and the young generation
    is collected every 20,000 allocations instead of 700; reference counting frees almost
    everything anyway, the collector only finds cycles.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def serve_command(
    config_file: ConfigOption = None,
    http_host: HttpHostOption = None,
    http_port: HttpPortOption = None,
    store_url: StoreUrlOption = None,
) -> None:
    """Run the connector: HTTP API, durable queue, SMPP sessions, webhooks.

    With no gateway configured it runs in sandbox mode: the built-in O2 simulator answers
    in-process and SQLite keeps the messages in the working folder.
    """
    settings = _load(config_file, http_host=http_host, http_port=http_port, store_url=store_url)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    protect_logs()
    # uvicorn shuts down cleanly on SIGINT/SIGTERM, then raises the signal again for us: let
    # SIGTERM end the process like Ctrl+C, with exit status 0, instead of killing it.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    _tune_gc()
    try:
        status = _run(
            serve(  # plain lines: the curl command must not wrap
                settings, announce=typer.echo, complain=lambda line: typer.echo(line, err=True)
            )
        )
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        status = 0
    raise typer.Exit(status)


def config_check_command(
    config_file: ConfigOption = None,
    http_host: HttpHostOption = None,
    http_port: HttpPortOption = None,
    store_url: StoreUrlOption = None,
) -> None:
    """Validate a configuration and show what the service would use (secrets hidden).

    It reads what o2sms serve reads: these options over the O2SMS_* variables over the file.
    """
    settings = _load(config_file, http_host=http_host, http_port=http_port, store_url=store_url)
    console = Console(soft_wrap=True)
    mode = "sandbox (built-in simulator)" if settings.sandbox_mode else "gateway"
    console.print(f"configuration is valid: {mode} mode", markup=False, highlight=False)
    if not settings.sandbox_mode:
        hosts = ", ".join(f"{h}:{p}" for h, p in settings.gateway.endpoints())
        binds = ", ".join(settings.gateway.bind_modes())
        console.print(
            f"gateway: {hosts}; system_id {settings.gateway.system_id}; sessions: {binds}",
            markup=False,
            highlight=False,
        )
    console.print(f"store: {settings.store_url_redacted}", markup=False, highlight=False)
    console.print(f"http: {settings.http_host}:{settings.http_port}", markup=False, highlight=False)
    for line in settings.warnings():  # valid, so exit status 0, but worth fixing
        typer.echo(f"warning: {line}", err=True)
