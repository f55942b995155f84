"""``o2sms simulator``: run the simulated O2 SMSC until interrupted, then unbind and exit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import tomllib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from o2sms.simulator import (
    Account,
    Simulator,
    SimulatorConfig,
    load_config,
    parse_account,
)
from o2sms.simulator.config import merge_accounts

DEFAULT_ACCOUNT = Account("o2sms", "o2sms-simulator")
"""Used when neither --account nor --config names one, so the simulator is usable at once."""


def build_config(
    *,
    config_file: Path | None,
    host: str | None,
    port: int | None,
    tls_port: int | None,
    cert: Path | None,
    key: Path | None,
    http_port: int | None,
    accounts: list[str],
    session_limit: int | None,
    receipt_delay: float | None,
) -> SimulatorConfig:
    """CLI options over the config file over the defaults (port 2775)."""
    defaults = SimulatorConfig(port=2775)
    config = _load_file(config_file, defaults) if config_file else defaults
    options: dict[str, object] = {}
    if host is not None:
        options["host"] = host
    if port is not None:
        options["port"] = port
    if tls_port is not None:
        options["tls_port"] = tls_port
    if cert is not None:
        options["certfile"] = str(cert)
    if key is not None:
        options["keyfile"] = str(key)
    if http_port is not None:
        options["http_port"] = http_port
    if session_limit is not None:
        options["session_limit"] = session_limit
    if receipt_delay is not None:
        options["receipt_delay"] = receipt_delay
    config = config.with_options(**options)
    config = merge_accounts(config, (parse_account(spec) for spec in accounts))
    if not config.accounts:
        config = merge_accounts(config, (DEFAULT_ACCOUNT,))
    return config


def _load_file(path: Path, defaults: SimulatorConfig) -> SimulatorConfig:
    """``load_config``, its errors as ValueError naming the file (the parsers' do not)."""
    where = f"configuration file {str(path)!r}"
    if not path.is_file():
        raise ValueError(f"{where} does not exist")
    try:
        return load_config(path, defaults)
    except OSError as exc:
        raise ValueError(f"{where}: cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{where}: not UTF-8 text: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where}: not valid TOML: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{where}: {exc}") from None


async def run(config: SimulatorConfig, console: Console) -> None:
    """Serve until SIGINT/SIGTERM, then unbind every session and return."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with Simulator(config) as smsc:
        if smsc.port is not None:
            console.print(f"SMPP      smpp://{config.host}:{smsc.port}")
        if smsc.tls_port is not None:
            generated = " (self-signed certificate)" if config.certfile is None else ""
            console.print(f"SMPP/TLS  {config.host}:{smsc.tls_port}{generated}")
        if smsc.http_port is not None:
            console.print(f"HTTP      http://{config.host}:{smsc.http_port}/")
        for account in config.accounts:
            limit = account.session_limit or config.session_limit
            # The built-in account's password is public; one given here stays unprinted.
            shown = f", password {account.password}" if account == DEFAULT_ACCOUNT else ""
            console.print(f"account   {account.system_id}{shown} ({limit} sessions)")
        console.print("Press Ctrl+C to stop.")
        await stop.wait()
        console.print("Stopping: unbinding sessions...")
    console.print("Stopped.")


def simulator_command(
    *,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="SMPP port (default 2775; 0: any).")] = None,
    tls_port: Annotated[int | None, typer.Option(help="SMPP over TLS port.")] = None,
    cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    key: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    http_port: Annotated[
        int | None, typer.Option(help="JSON inspection and MO endpoint port.")
    ] = None,
    account: Annotated[
        list[str] | None, typer.Option(help="ID:PASSWORD, repeatable.", show_default=False)
    ] = None,
    session_limit: Annotated[
        int | None, typer.Option(help="Binds per account (default 4).")
    ] = None,
    receipt_delay: Annotated[
        float | None, typer.Option(help="Seconds from submit_sm to its receipt (default 0.1).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML or JSON settings file.")] = None,
) -> None:
    """Run an SMPP 3.4 SMSC that behaves like the O2 gateway, until interrupted."""
    console = Console()
    try:
        settings = build_config(
            config_file=config,
            host=host,
            port=port,
            tls_port=tls_port,
            cert=cert,
            key=key,
            http_port=http_port,
            accounts=account or [],
            session_limit=session_limit,
            receipt_delay=receipt_delay,
        )
    except (OSError, ValueError, TypeError) as exc:
        _error(str(exc))
        raise typer.Exit(2) from None
    try:
        asyncio.run(run(settings, console))
    except OSError as exc:
        _error(str(exc))
        raise typer.Exit(1) from None


def _error(message: str) -> None:
    """``error: message`` as one line on stderr, never wrapped, as the other commands do."""
    line = Text.assemble(("error:", "red"), " ", message)  # no markup read in the message
    Console(stderr=True, soft_wrap=True, highlight=False).print(line)
