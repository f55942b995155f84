"""The running connector: store, SMPP client, workers, webhooks and HTTP API in one process.

``Connector`` owns the parts' lifecycle; ``serve()`` runs it under uvicorn until a signal.
Sandbox mode (no gateway configured) starts the simulator in-process in front of the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections import Counter, OrderedDict
from collections.abc import Callable
from pathlib import Path

import uvicorn

from o2sms.client import Client
from o2sms.client.config import FLASH_SYSTEM_TYPE
from o2sms.client.errors import ClientError
from o2sms.client.session import Session, SessionStatus
from o2sms.errors import O2smsError
from o2sms.service.http import ApiContext, create_app
from o2sms.service.metrics import Metrics
from o2sms.service.settings import ConfigError, Settings
from o2sms.service.webhooks import AttemptOutcome, WebhookSender, check_callback_url
from o2sms.service.workers import EventRecorder, SubmitRecords, SubmitWorker
from o2sms.simulator import Account, Simulator
from o2sms.store import MessageStore, create_engine, migrate

__all__ = ["SANDBOX_SYSTEM_ID", "Connector", "serve"]

log = logging.getLogger("o2sms.service")

SANDBOX_SYSTEM_ID = "o2sms"
SANDBOX_SENDER = "O2SMS"
"""The sender in sandbox mode when none is configured (the real account has its own default)."""


LEAKY_LOGGERS = ("httpx", "httpcore", "aiosqlite", "sqlalchemy", "asyncpg")
"""Libraries whose INFO/DEBUG lines carry what passes through them: httpx logs webhook URLs
with their query strings (tokens), aiosqlite and SQLAlchemy log statements with their values
(phone numbers, texts)."""


def protect_logs() -> None:
    """Raise :data:`LEAKY_LOGGERS` to WARNING, so what they carry never reaches a log."""
    for name in LEAKY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def sandbox_secret(path: Path, prefix: str = "sbx_") -> str:
    """A sandbox secret (API key, webhook key): read from ``path``, or generated and saved
    there (mode 0600), so it stays the same from one start to the next.

    Raises ConfigError, in one line, when the file can be neither read nor written.
    """
    try:
        key = path.read_text().strip()
        if len(key) >= 16:
            return key
        # a key that short is refused anyway: say so, since a client may still be using it
        log.warning("%s: its key is under 16 characters, so a new one replaces it", path)
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the sandbox's key from it: {exc}") from None
    key = prefix + secrets.token_urlsafe(24)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot save the sandbox's key there: {exc.strerror}") from None
    return key


class StoreUnavailableError(O2smsError):
    """The store could not be reached or migrated at start (the message says which and why)."""


class Connector:
    """One ``o2sms serve`` process. ``start()``/``stop()``, or ``async with``."""

    def __init__(self, settings: Settings, *, store: MessageStore | None = None) -> None:
        self.settings = settings
        protect_logs()
        self.metrics = Metrics()
        # A tag per run: a restarted instance must not give back (or extend) the leases its
        # crashed predecessor of the same name left, whose messages may be on the wire.
        name = settings.instance or f"{socket.gethostname()}:{os.getpid()}"
        self.worker_id = f"{name}#{secrets.token_hex(3)}"
        self._own_store = store is None
        self._migrated = False  #: check_store brought the schema up to date
        #: why start() failed (uvicorn only logs it), for ``serve`` to say in one line
        self.start_error: BaseException | None = None
        self.store: MessageStore = store or MessageStore(
            create_engine(settings.store_url, schema=settings.store_schema),
            max_attempts=settings.worker.max_attempts,
            retry_base=settings.worker.retry_base,
            retry_cap=settings.worker.retry_cap,
            webhook_url=settings.webhooks.url,
            webhook_retry_for=settings.webhooks.retry_for,
        )
        self.simulator: Simulator | None = None
        self.client: Client | None = None
        self.worker: SubmitWorker | None = None
        self.api_keys = [k.get_secret_value() for k in settings.api_keys]
        self.read_api_keys = [k.get_secret_value() for k in settings.read_api_keys]
        self._submitted_at: OrderedDict[str, float] = OrderedDict()
        self._queue_depth = 0
        self._callbacks_used = False  #: a message with a callback_url was accepted here
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()
        self.fatal: BaseException | None = None  #: why the service cannot work (bad credentials)
        self.on_fatal: Callable[[BaseException], None] | None = None
        #: the sandbox's own key, shown in the banner; a configured key is never printed
        self.sandbox_key: str | None = None
        if settings.sandbox_mode and not self.api_keys:
            self.sandbox_key = sandbox_secret(settings.sandbox.key_file)
            self.api_keys = [self.sandbox_key]
        secret = settings.webhooks.secret
        self.webhook_secret: str | None = secret.get_secret_value() if secret else None
        if settings.sandbox_mode and self.webhook_secret is None:
            self.webhook_secret = sandbox_secret(settings.sandbox.webhook_secret_file, "whsec_")
        self.policy = settings.webhooks.policy()
        self.webhooks: WebhookSender | None = None
        if not self.api_keys:
            raise ConfigError("api_keys (O2SMS_API_KEYS): the HTTP API needs at least one API key")

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Connector:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def check_store(self) -> None:
        """Reach the store and bring its schema up to date, before anything else starts.

        Raises StoreUnavailableError, whose message says in one line which store and why,
        instead of a driver's traceback from deep inside the HTTP server's start-up.
        """
        if not self._own_store or self._migrated:
            return
        try:
            await migrate(self.store.engine)
        except Exception as exc:  # drivers raise OSError, SQLAlchemyError, TypeError (options)
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise StoreUnavailableError(
                f"cannot open the store {self.settings.store_url_redacted}: "
                f"{reason[0] if reason else type(exc).__name__}"
            ) from exc
        self._migrated = True

    async def check_clock(self) -> float | None:
        """Warn when this host's clock and the PostgreSQL server's disagree by more than a
        sixth of a lease; return the offset in seconds (None on SQLite, or unknown).

        Every instance compares leases with its own clock: two whose clocks differ by two
        thirds of a lease (the least a lease has left between renewals) take over each
        other's messages on the wire, sending them twice. Each within a sixth of the server's
        keeps every pair within a third.
        """
        try:
            offset = await self.store.clock_offset()
        except Exception as exc:
            log.warning("cannot compare this host's clock with the store's: %s", exc)
            return None
        bound = self.settings.worker.lease_seconds / 6
        if offset is not None and abs(offset) > bound:
            log.warning(
                "this host's clock is %.1f s %s the PostgreSQL server's (more than %.0f s): "
                "instances sharing the queue compare leases with their own clocks, so such a "
                "difference lets one take over messages another is still sending; keep the "
                "clocks in sync (NTP)",
                abs(offset),
                "ahead of" if offset > 0 else "behind",
                bound,
            )
        return offset

    async def start(self) -> None:
        """Open the store (migrating it), start the SMSC link and the workers."""
        settings = self.settings
        store = self.store
        await self.check_store()
        await self.check_clock()
        for line in settings.warnings():
            log.warning("%s", line)
        if settings.sandbox_mode:
            self.simulator = Simulator(
                accounts=(Account(SANDBOX_SYSTEM_ID, secrets.token_urlsafe(12)),),
                port=settings.sandbox.smpp_port,
                receipt_delay=settings.sandbox.receipt_delay,
                max_pending_receipts=settings.sandbox.max_pending_receipts,
            )
            await self.simulator.start()
        if self.webhook_secret is not None:
            self.webhooks = WebhookSender(
                store,
                secret=self.webhook_secret,
                policy=self.policy,
                worker_id=self.worker_id,
                concurrency=settings.webhooks.concurrency,
                slow_receiver_slots=settings.webhooks.slow_receiver_slots,
                timeout=settings.webhooks.timeout,
                on_attempt=self._webhook_attempt,
                on_held_back=self.metrics.webhooks_held_back.inc,
            )
            await self.webhooks.start()
        records = SubmitRecords()
        recorder = EventRecorder(
            store,
            metrics=self.metrics,
            submitted_at=self._submitted_at,
            on_change=self._changed,
            records=records,
        )
        self.client = self._client(recorder)
        self.worker = SubmitWorker(
            store,
            self.client,
            worker_id=self.worker_id,
            settings=settings.worker,
            metrics=self.metrics,
            submitted_at=self._submitted_at,
            on_change=self._changed,
            records=records,
        )
        self.metrics.watch(
            sessions=self._session_states,
            in_flight=lambda: self.worker.in_flight if self.worker else 0,
            queue_depth=lambda: self._queue_depth,
        )
        self._tasks = [
            asyncio.create_task(self._connect(), name="o2sms-connect"),
            asyncio.create_task(self._poll_depth(), name="o2sms-queue-depth"),
            asyncio.create_task(self._retention(), name="o2sms-retention"),
            asyncio.create_task(self._analyze(), name="o2sms-analyze"),
        ]

    def _client(self, recorder: EventRecorder) -> Client:
        gateway = self.settings.gateway
        if self.simulator is not None:
            account = self.simulator.config.accounts[0]
            return Client(
                self.simulator.config.host,
                self.simulator.port,
                account.system_id,
                account.password,
                sessions=gateway.sessions or 4,
                flash_session=self.settings.sends_flash,  # sandbox: one NSMS bind, always
                window=gateway.window,
                inbound_concurrency=gateway.inbound_concurrency,
                sender=self.settings.sender or SANDBOX_SENDER,
                region=self.settings.region,
                handler=recorder,
                batch_handler=recorder.batch,
            )
        return Client(
            hosts=gateway.endpoints(),
            system_id=gateway.system_id,
            password=gateway.password.get_secret_value(),
            tls=gateway.tls,
            tls_ca_file=str(gateway.tls_ca_file) if gateway.tls_ca_file else None,
            tls_insecure_skip_verify=gateway.tls_insecure_skip_verify,
            bind=gateway.bind_modes(),
            flash_session=gateway.flash_session,
            window=gateway.window,
            inbound_concurrency=gateway.inbound_concurrency,
            system_type=gateway.system_type,
            keepalive=gateway.keepalive,
            response_timeout=gateway.response_timeout,
            connect_timeout=gateway.connect_timeout,
            bind_timeout=gateway.bind_timeout,
            rate_limit=gateway.rate_limit,
            sender=self.settings.sender,
            region=self.settings.region,
            handler=recorder,
            batch_handler=recorder.batch,
        )

    async def _connect(self) -> None:
        """Bind to the SMSC, retrying while the failure may pass; then start submitting."""
        assert self.client is not None
        assert self.worker is not None
        delay = 1.0
        while True:
            try:
                await self.client.start()
                break
            except ClientError as exc:
                if not exc.retriable:
                    log.error("cannot bind to the SMSC: %s", exc)
                    self.fatal = exc
                    if self.on_fatal is not None:
                        self.on_fatal(exc)
                    return
                log.warning("cannot reach the SMSC yet (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
        self._connected.set()
        if not self.client.can_send():
            # Receivers (and perhaps the flash session) only: the queue is another
            # instance's to send, and a worker here would only fail what it claims.
            log.info("bound to the SMSC; no session can send, so this instance submits nothing")
            return
        log.info("bound to the SMSC; submitting as %s", self.worker_id)
        self.worker.start()

    async def wait_connected(self) -> None:
        """Return once the client is bound and the worker runs (when a session can send)."""
        await self._connected.wait()

    async def stop(self) -> None:
        """Stop taking work, finish what is on the wire, unbind, close the store."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.worker is not None:
            # First, so that the parts of a long message already under way can all go out;
            # closing the client at once would cut such a message in two.
            await self.worker.stop()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()
        if self.webhooks is not None:
            await self.webhooks.stop()
        if self.simulator is not None:
            await self.simulator.stop()
        if self._own_store:
            await self.store.close()

    def _changed(self) -> None:
        """A message's status changed: its webhook (if any) is in the outbox, send it now.

        Only when webhooks are in use; otherwise the sender's poll finds the rare one.
        """
        if self.webhooks is not None and (self.settings.webhooks.url or self._callbacks_used):
            self.webhooks.notify()

    def _webhook_attempt(self, outcome: AttemptOutcome) -> None:
        self.metrics.webhooks.labels(outcome.outcome).inc()

    def check_callback_url(self, url: str) -> str:
        """``url`` if webhooks may go there (for the API's ``callback_url``), else ValueError."""
        self._callbacks_used = True
        if self.webhook_secret is None:
            raise ValueError(
                "this service has no webhook secret (webhooks.secret), so it sends no callbacks"
            )
        return check_callback_url(url, self.policy)

    # --- status -------------------------------------------------------------------------

    def _sessions(self) -> list[Session]:
        if self.client is None:
            return []
        return [s for s in self.client.sessions if isinstance(s, Session)]

    def _session_states(self) -> dict[str, int]:
        """Sessions by state, every state included: a series that vanished at 0 (no session
        bound) could not be alerted on."""
        counts = Counter({state.value: 0 for state in SessionStatus})
        counts.update(s.status.value for s in self._sessions())
        return dict(counts)

    def sessions_bound(self) -> int:
        """SMPP sessions bound now."""
        return sum(1 for s in self._sessions() if s.is_bound)

    def sessions_sending(self) -> int:
        """SMPP sessions bound now that can submit ordinary messages: transmitters and
        transceivers, not receivers nor the NSMS flash session (flash messages only)."""
        return sum(
            1
            for s in self._sessions()
            if s.is_bound and s.bind_type.can_submit and s.config.system_type != FLASH_SYSTEM_TYPE
        )

    async def _poll_depth(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                self._queue_depth = await self.store.queue_depth()
            await asyncio.sleep(5.0)

    async def _analyze(self) -> None:
        """Keep the database's query plans fitting the tables' sizes: after 1, 2, 4, ... seconds
        while the store is young (a store that starts empty and fills at thousands of rows a
        second is planned as empty until then: sequential scans), then every ten minutes."""
        interval = 1.0
        while True:
            await asyncio.sleep(interval)
            try:
                await self.store.analyze()
            except Exception as exc:
                log.warning("refreshing the store's statistics failed: %s", exc)
            interval = min(interval * 2, 600.0)

    async def _retention(self) -> None:
        retention = self.settings.retention
        while True:
            try:
                result = await self.store.purge(
                    text_after=retention.text_after(), delete_after=retention.delete_after()
                )
                if result.texts or result.messages:
                    log.info("retention: %s", result)
            except Exception as exc:
                log.warning("retention run failed: %s", exc)
            await asyncio.sleep(retention.interval)

    def api_context(self) -> ApiContext:
        """The HTTP API's view of this connector (startup/shutdown run this connector)."""

        def wake() -> None:
            if self.worker is not None:
                self.worker.wake()

        async def startup() -> None:
            try:
                await self.start()
            except Exception as exc:
                # uvicorn runs no shutdown after a failed startup: close what did start.
                self.start_error = exc
                with contextlib.suppress(Exception):
                    await self.stop()
                raise

        return ApiContext(
            settings=self.settings,
            store=self.store,
            metrics=self.metrics,
            api_keys=self.api_keys,
            read_api_keys=self.read_api_keys,
            wake=wake,
            sessions_bound=self.sessions_bound,
            sessions_sending=self.sessions_sending,
            can_send=lambda: self.client is None or self.client.can_send(),
            check_url=self.check_callback_url,
            startup=startup,
            shutdown=self.stop,
        )


def _http_base(host: str, port: int) -> str:
    """``http://host:port``, an IPv6 address in brackets (``http://[::1]:8000``) as URLs
    need it: ``http://::1:8000`` is no URL curl or httpx can use."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _banner(settings: Settings, connector: Connector, host: str, port: int) -> str:
    base = _http_base(host, port)
    lines = [f"o2sms listening on {base} (API docs: {base}/docs)"]
    if settings.sandbox_mode:
        key = connector.sandbox_key
        lines += [
            "sandbox mode: no gateway configured, so the built-in O2 simulator answers in-process",
            f"store: {settings.store_url_redacted}",
        ]
        if key is None:  # a configured key: the operator has it, and logs must not
            auth = '-H "Authorization: Bearer $O2SMS_API_KEY"'
            lines.append("API key: one of the configured api_keys (not shown)")
        else:
            auth = f"-H 'Authorization: Bearer {key}'"
            lines.append(f"API key: {key} (saved in {settings.sandbox.key_file})")
        lines += [
            "try:",
            f"  curl -s {base}/v1/messages {auth} \\",
            "       -H 'Content-Type: application/json' \\",
            """       -d '{"to": "+421903123456", "from": "O2 Demo", "text": "Ahoj!"}'""",
            f"  curl -s {base}/v1/messages/<id> {auth}",
        ]
    return "\n".join(lines)


class RunningService:
    """A connector with its HTTP server, started in the background (tests, benchmarks, serve)."""

    def __init__(self, connector: Connector, server: uvicorn.Server) -> None:
        self.connector = connector
        self.server = server
        self.task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The HTTP port (useful with ``http_port = 0``)."""
        sockets = [s for srv in self.server.servers for s in (srv.sockets or ())]
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """The API's base URL."""
        return _http_base(self.connector.settings.http_host, self.port)

    async def stop(self) -> None:
        """Stop the HTTP server and the connector (unbind, close the store)."""
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


def build_server(connector: Connector) -> uvicorn.Server:
    """A uvicorn server for ``connector``'s API; its lifespan starts and stops the connector."""
    settings = connector.settings
    config = uvicorn.Config(
        create_app(connector.api_context()),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
    )
    return uvicorn.Server(config)


async def start_service(
    settings: Settings, *, store: MessageStore | None = None, timeout: float = 30.0
) -> RunningService:
    """Start the connector and its HTTP API; return once the API listens and a session is
    bound. Raises what stopped it (a bad configuration, refused credentials)."""
    connector = Connector(settings, store=store)
    running = RunningService(connector, build_server(connector))
    running.task = asyncio.create_task(running.server.serve(), name="o2sms-http")
    connected = asyncio.create_task(connector.wait_connected())
    try:
        async with asyncio.timeout(timeout):
            while not (running.server.started and connected.done()):
                if running.task.done() or connector.fatal is not None:
                    break
                await asyncio.sleep(0.01)
    except TimeoutError:
        pass
    finally:
        connected.cancel()
    if not (running.server.started and connector.sessions_bound()):
        await running.stop()
        if connector.fatal is not None:
            raise connector.fatal
        if running.task.done() and running.task.exception() is not None:
            raise running.task.exception()  # type: ignore[misc]
        raise TimeoutError("the service did not start (no HTTP listener or no session bound)")
    return running


async def serve(
    settings: Settings,
    *,
    announce: Callable[[str], None] = print,
    complain: Callable[[str], None] | None = None,
) -> int:
    """Run the connector and its HTTP API until interrupted; return the exit status.

    ``announce`` shows the start-up banner, ``complain`` (default: ``announce``) the one-line
    errors that end the process.
    """
    complain = complain or announce
    connector = Connector(settings)
    server = build_server(connector)

    def fatal(exc: BaseException) -> None:
        complain(f"error: {exc}")
        server.should_exit = True

    connector.on_fatal = fatal

    async def announce_when_started() -> None:
        while not server.started:
            await asyncio.sleep(0.05)
        if server.should_exit:  # stopping already (refused credentials): not "listening"
            return
        sockets = [s for srv in server.servers for s in (srv.sockets or ())]
        port = sockets[0].getsockname()[1] if sockets else settings.http_port
        announce(_banner(settings, connector, settings.http_host, port))

    host, port = settings.http_host, settings.http_port
    try:  # before anything starts: a taken port is said in one line, and no session binds
        listener = socket.create_server(
            (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
        )
    except OSError as exc:
        complain(f"error: the HTTP API cannot listen on {host}:{port}: {_reason(exc)}")
        await connector.store.close()
        return 1
    try:
        await connector.check_store()
    except StoreUnavailableError as exc:
        complain(f"error: {exc}")
        listener.close()
        await connector.store.close()
        return 1
    except BaseException:
        listener.close()
        await connector.store.close()
        raise
    watcher = asyncio.create_task(announce_when_started())
    try:
        await server.serve(sockets=[listener])
    except SystemExit:
        if server.started:
            raise
        # uvicorn's way of saying it did not start: the port, or the connector's start.
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    listener.close()
    if not server.started and connector.fatal is None:
        if connector.start_error is not None:
            complain(f"error: the connector could not start: {connector.start_error}")
        else:
            complain(f"error: the HTTP API could not start on {host}:{port} (the log says why)")
    return 1 if connector.fatal is not None or not server.started else 0


def _reason(exc: OSError) -> str:
    """An OS error's reason in lower case, as the rest of the line: "address already in use".

    A resolver's error (a host name that does not resolve) has a negative errno, which
    ``os.strerror`` does not know: its own text says it ("name or service not known").
    """
    if exc.errno and exc.errno > 0:
        reason = os.strerror(exc.errno)
    else:
        reason = (exc.strerror or str(exc)).split(" (while attempting", 1)[0]
    return reason[:1].lower() + reason[1:]
