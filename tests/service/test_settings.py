"""Configuration: TOML file, O2SMS_* variables over it, command-line values over both, and
errors that name the key, its variable and what is wrong."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from o2sms.cli.main import app
from o2sms.service.runtime import Connector, sandbox_secret
from o2sms.service.settings import ConfigError, load_settings
from o2sms.store.schema import messages

API_KEYS = ["a-long-enough-api-key-1"]

GATEWAY_TOML = """
store_url = "postgresql://o2sms@db/o2sms"
api_keys = ["a-long-enough-api-key-1"]
sender = "O2 Shop"

[gateway]
hosts = ["smpp1.smstools.sk", "smpp2.smstools.sk:9000"]
system_id = "acct"
password = "a-password-longer-than-8"
bind = ["transmitter", "transmitter", "transmitter", "receiver"]
system_type = "r:1234"

[worker]
concurrency = 50
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "o2sms.toml"
    path.write_text(GATEWAY_TOML)
    return path


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("O2SMS_") and name != "O2SMS_TEST_PG_URL":
            monkeypatch.delenv(name)


def test_defaults_are_sandbox_mode() -> None:
    settings = load_settings()
    assert settings.sandbox_mode
    assert settings.store_url == "sqlite:///o2sms.db"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8000)
    assert settings.gateway.bind_modes() == ["transceiver"] * 4


def test_toml_file(config_file: Path) -> None:
    settings = load_settings(config_file)
    assert not settings.sandbox_mode
    assert settings.gateway.endpoints() == [
        ("smpp1.smstools.sk", 8888),
        ("smpp2.smstools.sk", 9000),
    ]
    assert settings.gateway.bind_modes() == ["transmitter"] * 3 + ["receiver"]
    assert settings.gateway.password.get_secret_value() == "a-password-longer-than-8"
    assert settings.worker.concurrency == 50
    assert settings.worker.batch == 250  # a default inside a section given in part


def test_environment_overrides_the_file(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2SMS_GATEWAY__PASSWORD", "from-the-environment")
    monkeypatch.setenv("O2SMS_API_KEYS", "first-key-0123456789, second-key-0123456789")
    monkeypatch.setenv("O2SMS_WORKER__BATCH", "7")
    monkeypatch.setenv("O2SMS_GATEWAY__HOSTS", "a.example,b.example:1")
    settings = load_settings(config_file, http_port=9000)
    assert settings.gateway.password.get_secret_value() == "from-the-environment"
    assert [k.get_secret_value() for k in settings.api_keys] == [
        "first-key-0123456789",
        "second-key-0123456789",
    ]
    assert settings.worker.batch == 7
    assert settings.worker.concurrency == 50
    assert settings.gateway.endpoints() == [("a.example", 8888), ("b.example", 1)]
    assert settings.http_port == 9000


def test_tls_default_port() -> None:
    settings = load_settings(
        None,
        gateway={"hosts": ["smpp1.smstools.sk"], "system_id": "a", "tls": True},
        api_keys=API_KEYS,
    )
    assert settings.gateway.endpoints() == [("smpp1.smstools.sk", 8887)]


def test_secrets_never_print(config_file: Path) -> None:
    settings = load_settings(config_file)
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "a-password-longer-than-8" not in shown
    assert "a-long-enough-api-key-1" not in shown


@pytest.mark.parametrize(
    ("toml", "env", "expected"),
    [
        ("[gateway]\nhostz = ['x']\n", {}, "gateway.hostz (O2SMS_GATEWAY__HOSTZ): unknown key"),
        ("http_port = 70000\n", {}, "http_port (O2SMS_HTTP_PORT): Input should be less than"),
        (
            "",
            {"O2SMS_WORKER__CONCURRENCY": "many"},
            "worker.concurrency (O2SMS_WORKER__CONCURRENCY)",
        ),
        ("[gateway]\nhosts = ['x']\n", {}, "a gateway needs system_id"),
        (
            "[gateway]\nhosts = ['x:99999']\nsystem_id = 'a'\n",
            {},
            "is not host, host:port or [IPv6 address]:port",
        ),
        ("[gateway]\nbind = ['receiver', 'sender']\n", {}, "gateway.bind"),
        # no session at all: the client would refuse it only when the service starts
        ("[gateway]\nbind = []\n", {}, "gateway.bind (O2SMS_GATEWAY__BIND)"),
        (
            "[gateway]\nbind = ['receiver', 'transmitter']\nsessions = 3\n",
            {},
            "2 modes for 3 sessions",
        ),
        ("sender = 'A sender too long'\n", {}, "longer than 11"),
        # a check of several keys still names the key and variable to fix, not the section
        ("sender = 'A sender too long'\n", {}, "sender (O2SMS_SENDER): alphanumeric"),
        (
            "[webhooks]\nurl = 'ftp://hooks.example.com/'\n",
            {},
            "webhooks.url (O2SMS_WEBHOOKS__URL): the callback URL must start with http://",
        ),
        (
            "",
            {"O2SMS_WEBHOOKS__ALLOW": "hooks.example.com:443"},
            "webhooks.allow (O2SMS_WEBHOOKS__ALLOW): bad webhook allow-list entry",
        ),
        ("region = 'UK'\n", {}, "region (O2SMS_REGION): 'UK' is not a country"),
        # "forever" is not a duration: the arithmetic with it fails at every use
        ("[webhooks]\nretry_for = inf\n", {}, "webhooks.retry_for (O2SMS_WEBHOOKS__RETRY_FOR)"),
        ("", {"O2SMS_WORKER__LEASE_SECONDS": "inf"}, "finite number"),
        ("", {"O2SMS_REGION": "XX"}, "region (O2SMS_REGION): 'XX' is not a country"),
        ("api_keys = ['short']\n", {}, "shorter than 16"),
        ("read_api_keys = ['short']\n", {}, "read_api_keys (O2SMS_READ_API_KEYS): API key number"),
        (
            "api_keys = ['a-long-enough-api-key-1']\n",
            {"O2SMS_READ_API_KEYS": "reader-key-0123456789,a-long-enough-api-key-1"},
            "read_api_keys (O2SMS_READ_API_KEYS): API key number 2 is in api_keys too",
        ),
        ("store_schema = 'x'\n", {}, "store_schema (O2SMS_STORE_SCHEMA): a PostgreSQL option"),
        ("this is not toml", {}, "not valid TOML"),
        ("[gateway]\nsystem_id = 'acct'\n", {}, "system_id or password is set but hosts is empty"),
        ("", {"O2SMS_GATEWAY__PASSWORD": "secret12"}, "but hosts is empty"),
        ("", {"O2SMS_GATEWAY": "notjson"}, "gateway (O2SMS_GATEWAY): not a JSON object"),
        ("[gateway]\ntls_ca_file = '/nonexistent/ca.pem'\n", {}, "cannot load"),
    ],
)
def test_errors_say_what_and_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, env: dict[str, str], expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert expected in str(caught.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    # Checks that look at two keys are reported with the other problems, not only once
    # those are fixed: config check would otherwise take a run per problem.
    path = tmp_path / "bad.toml"
    path.write_text(
        "http_port = 'x'\nsender = 'A sender too long'\nstore_schema = 'sms'\n"
        "[gateway]\nhosts = ['smpp1.smstools.sk']\nsystem_id = 'acct'\n"
        "[webhooks]\nurl = 'https://hooks.example.com/o2sms'\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert [line.partition(":")[0] for line in str(caught.value).splitlines()] == [
        "store_schema (O2SMS_STORE_SCHEMA)",
        "api_keys (O2SMS_API_KEYS)",  # a gateway is configured: no sandbox key stands in
        "http_port (O2SMS_HTTP_PORT)",
        "sender (O2SMS_SENDER)",
        "webhooks.secret (O2SMS_WEBHOOKS__SECRET)",
    ]


@pytest.mark.parametrize("command", [["config", "check"], ["serve"]])
def test_missing_api_keys_are_reported_with_the_other_problems(
    tmp_path: Path, command: list[str]
) -> None:
    # Regression: with a gateway configured and no api_keys, config check and serve reported
    # the other problems, and the missing keys only on the next run, once those were fixed
    # (serve in another format, from the connector it was building).
    path = tmp_path / "nokeys.toml"
    path.write_text(
        GATEWAY_TOML.replace('api_keys = ["a-long-enough-api-key-1"]', "http_port = 99999")
    )
    result = CliRunner().invoke(app, [*command, "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        "error: invalid configuration",
        "api_keys (O2SMS_API_KEYS): the HTTP API needs at least one API key when a gateway "
        "is configured (only the sandbox makes its own)",
        "http_port (O2SMS_HTTP_PORT): Input should be less than or equal to 65535",
    ]


def test_gateway_bind_timeout_is_read_checked_and_given_to_the_client(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert load_settings(config_file).gateway.bind_timeout == 10.0  # the default
    monkeypatch.setenv("O2SMS_GATEWAY__BIND_TIMEOUT", "2.5")
    settings = load_settings(config_file)
    assert settings.gateway.bind_timeout == 2.5
    connector = Connector(settings.model_copy(update={"store_url": f"sqlite:///{tmp_path}/o.db"}))
    sms = connector._client(SimpleNamespace(batch=None))  # type: ignore[arg-type]
    assert {s.config.bind_timeout for s in sms._pool.sessions} == {2.5}
    monkeypatch.setenv("O2SMS_GATEWAY__BIND_TIMEOUT", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file)
    assert str(caught.value) == (
        "gateway.bind_timeout (O2SMS_GATEWAY__BIND_TIMEOUT): Input should be greater than 0"
    )


KEEPALIVE_WARNING = (
    "warning: gateway.keepalive (O2SMS_GATEWAY__KEEPALIVE): {} s is not under the gateway's "
    "30 s inactivity timeout: an idle session is dropped before its enquire_link; keep it "
    "under 30 (default 25)"
)


@pytest.mark.parametrize(("keepalive", "warned"), [(29.5, False), (30, True), (45, True)])
def test_config_check_warns_of_a_keepalive_not_under_the_gateways_timeout(
    tmp_path: Path, keepalive: float, warned: bool
) -> None:
    # The seed: a link with no keep alive or message for 30 s is dropped.
    path = tmp_path / "o2sms.toml"
    path.write_text(GATEWAY_TOML.replace("[worker]", f"keepalive = {keepalive}\n\n[worker]"))
    result = CliRunner().invoke(app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output  # a warning, not an error
    lines = result.output.splitlines()
    assert lines[0] == "configuration is valid: gateway mode"
    expected = [KEEPALIVE_WARNING.format(f"{keepalive:g}")] if warned else []
    assert [line for line in lines if "keepalive" in line] == expected


def test_config_check_says_nothing_of_keepalive_in_sandbox_mode(tmp_path: Path) -> None:
    # The sandbox's client keeps its own keepalive: gateway.keepalive is not used there.
    path = tmp_path / "o2sms.toml"
    path.write_text("[gateway]\nkeepalive = 60\n")
    result = CliRunner().invoke(app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "keepalive" not in result.output


@pytest.mark.asyncio
async def test_the_service_warns_on_start_of_a_keepalive_not_under_30_s(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # the gateway's port: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = load_settings(
        store_url=f"sqlite:///{tmp_path / 'o2sms.db'}",
        api_keys=API_KEYS,
        gateway={
            "hosts": [f"127.0.0.1:{port}"],
            "system_id": "acct",
            "keepalive": 30,
            "connect_timeout": 0.3,
        },
    )
    connector = Connector(settings)
    with caplog.at_level(logging.WARNING, logger="o2sms"):
        await connector.start()
        await connector.stop()
    assert KEEPALIVE_WARNING.format(30).removeprefix("warning: ") in caplog.messages


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        # no hosts: sandbox mode is meant, whose API key is made for it
        ("[gateway]\nport = 'x'\n", "gateway.port (O2SMS_GATEWAY__PORT): Input should be"),
        ("[gateway]\nsessions = 20\n", "gateway.sessions (O2SMS_GATEWAY__SESSIONS): Input should"),
        ("[gateway]\nsystem_id = 'acct'\n", "gateway (O2SMS_GATEWAY): system_id or password is"),
        # keys given: only the gateway is wrong
        (
            "api_keys = ['a-long-enough-api-key-1']\n"
            "[gateway]\nhosts = ['smpp1.smstools.sk:99999']\nsystem_id = 'acct'\n",
            "gateway.hosts (O2SMS_GATEWAY__HOSTS): 'smpp1.smstools.sk:99999' is not host",
        ),
    ],
    ids=["sandbox-bad-port", "sandbox-bad-sessions", "credentials-no-hosts", "keys-given"],
)
def test_an_invalid_gateway_is_reported_alone(tmp_path: Path, toml: str, problem: str) -> None:
    # Regression: a gateway section that failed validation counted as a configured gateway,
    # so config check added "the HTTP API needs at least one API key" to its one problem.
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    result = CliRunner().invoke(app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert lines[0] == "error: invalid configuration"
    assert len(lines) == 2, lines
    assert lines[1].startswith(problem)


def test_an_invalid_gateway_with_hosts_still_needs_api_keys(tmp_path: Path) -> None:
    # hosts are given: a gateway is meant, and its missing keys are a second problem
    path = tmp_path / "bad.toml"
    path.write_text("[gateway]\nhosts = ['smpp1.smstools.sk:99999']\nsystem_id = 'acct'\n")
    result = CliRunner().invoke(app, ["config", "check", "--config", str(path)])
    assert [line.partition(":")[0] for line in result.output.splitlines()] == [
        "error",
        "gateway.hosts (O2SMS_GATEWAY__HOSTS)",
        "api_keys (O2SMS_API_KEYS)",
    ]


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings("/nonexistent/o2sms.toml")


def test_config_check_command(config_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(app, ["config", "check", "--config", str(config_file)])
    assert good.exit_code == 0, good.output
    assert "configuration is valid: gateway mode" in good.output
    assert "smpp2.smstools.sk:9000" in good.output
    assert "a-password-longer-than-8" not in good.output

    def refused(name: str, toml: str) -> str:
        """What config check prints for ``toml``, which it must refuse (exit 2, no traceback)."""
        path = tmp_path / name
        path.write_text(toml)
        result = runner.invoke(app, ["config", "check", "--config", str(path)])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        return result.output

    assert "gateway.port (O2SMS_GATEWAY__PORT)" in refused("bad.toml", "[gateway]\nport = 'x'\n")

    no_keys = refused(
        "nokeys.toml", GATEWAY_TOML.replace('api_keys = ["a-long-enough-api-key-1"]', "")
    )
    assert "needs at least one API key" in no_keys
    assert "configuration is valid" not in no_keys  # not both verdicts

    other_database = refused("mysql.toml", 'store_url = "mysql://user:a-db-password@db/o2"\n')
    assert "store_url (O2SMS_STORE_URL): unsupported store URL" in other_database
    assert "a-db-password" not in other_database


def test_config_check_takes_the_command_line_values_serve_takes(config_file: Path) -> None:
    # docs/configuration.md: serve and config check read the command line first; config
    # check had no such options, so the values serve would run with could not be checked.
    runner = CliRunner()
    options = ["--http-host", "0.0.0.0", "--http-port", "8081", "--store-url", "sqlite:///x.db"]
    good = runner.invoke(app, ["config", "check", "--config", str(config_file), *options])
    assert good.exit_code == 0, good.output
    assert "store: sqlite:///x.db" in good.output
    assert "http: 0.0.0.0:8081" in good.output
    bad = runner.invoke(app, ["config", "check", "-c", str(config_file), "--http-port", "99999"])
    assert bad.exit_code == 2, bad.output
    assert "http_port (O2SMS_HTTP_PORT): Input should be less than or equal to 65535" in (
        bad.output
    )


def test_a_configuration_error_is_one_unwrapped_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('store_url = "mysql://user@a-rather-long-database-host.example.com/o2sms"\n')
    result = CliRunner().invoke(
        app, ["config", "check", "--config", str(bad)], env={"COLUMNS": "40"}
    )
    lines = result.output.strip().splitlines()
    assert lines[0] == "error: invalid configuration"
    assert len(lines) == 2  # the problem on one line however narrow the terminal
    assert lines[1].startswith("store_url (O2SMS_STORE_URL): unsupported store URL")


def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'sender = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_settings(path)


def test_an_empty_variable_is_no_setting(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unset shell variable exported empty must not erase the file's gateway (which would
    # quietly turn a production configuration into sandbox mode).
    monkeypatch.setenv("O2SMS_GATEWAY__HOSTS", "")
    settings = load_settings(config_file)
    assert not settings.sandbox_mode
    assert settings.gateway.hosts


def test_a_sandbox_key_file_that_cannot_be_used_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot save the sandbox's key there"):
        sandbox_secret(tmp_path / "no-such-folder" / "key")
    with pytest.raises(ConfigError, match="cannot read the sandbox's key from it"):
        sandbox_secret(tmp_path)  # a folder


def test_ipv6_hosts_with_and_without_a_port() -> None:
    settings = load_settings(
        gateway={
            "hosts": ["[::1]:2775", "::1", "[2001:db8::1]", "smpp1.example:9000"],
            "system_id": "acct",
        },
        api_keys=API_KEYS,
    )
    assert settings.gateway.endpoints() == [
        ("::1", 2775),
        ("::1", 8888),
        ("2001:db8::1", 8888),
        ("smpp1.example", 9000),
    ]


@pytest.mark.parametrize(
    "host", ["2001:db8::1:2775:zz", "[::1]x", "[::1", ":2775", "[example.com]:2775", "[::1]:"]
)
def test_a_host_that_cannot_be_read_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="IPv6 address"):
        load_settings(gateway={"hosts": [host], "system_id": "acct"})


def test_the_database_password_is_not_in_the_settings_repr() -> None:
    settings = load_settings(store_url="postgresql://o2sms:DB-SECRET-PW@127.0.0.1/test")
    assert "DB-SECRET-PW" not in repr(settings)
    assert "DB-SECRET-PW" not in settings.store_url_redacted
    in_query = load_settings(
        store_url="postgresql://o2sms@127.0.0.1/test?password=DB-SECRET-PW&sslmode=require"
    )
    assert in_query.store_url_redacted == (
        "postgresql://o2sms@127.0.0.1/test?password=***&sslmode=require"
    )


def test_a_lone_comma_empties_a_list_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "o2sms.toml"
    path.write_text("[webhooks]\nallow = ['hooks.example.com']\n")
    assert load_settings(path).webhooks.allow == ["hooks.example.com"]
    monkeypatch.setenv("O2SMS_WEBHOOKS__ALLOW", ",")
    assert load_settings(path).webhooks.allow == []


def test_read_only_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2SMS_READ_API_KEYS", "reader-key-0123456789, other-reader-0123456789")
    settings = load_settings()
    assert [k.get_secret_value() for k in settings.read_api_keys] == [
        "reader-key-0123456789",
        "other-reader-0123456789",
    ]
    assert "reader-key-0123456789" not in repr(settings)


def test_a_list_from_the_environment_may_be_a_json_array(monkeypatch: pytest.MonkeyPatch) -> None:
    # pydantic-settings reads lists as JSON elsewhere: split at its commas, the brackets and
    # quotes became part of the keys, so every request with the real ones was refused.
    monkeypatch.setenv("O2SMS_API_KEYS", '["first-key-0123456789", "second-key-0123456789"]')
    monkeypatch.setenv("O2SMS_GATEWAY__BIND", '["transmitter", "receiver"]')
    settings = load_settings()
    keys = [key.get_secret_value() for key in settings.api_keys]
    assert keys == ["first-key-0123456789", "second-key-0123456789"]
    assert settings.gateway.bind == ["transmitter", "receiver"]


@pytest.mark.parametrize(
    "url", ["postgres://o2sms@db/o2sms", "postgresql+asyncpg://o2sms@db/o2sms"]
)
def test_store_schema_goes_with_every_postgresql_url_the_store_takes(url: str) -> None:
    assert load_settings(store_url=url, store_schema="sms").store_schema == "sms"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("O2SMS_WEBHOOKS__RETRY_FOR", "1e12"),
        ("O2SMS_WEBHOOKS__TIMEOUT", "1e12"),  # the sender's lease is timeout + 30 s
        ("O2SMS_WORKER__LEASE_SECONDS", "1e12"),
        ("O2SMS_WORKER__RETRY_CAP", "1e12"),
        ("O2SMS_WORKER__RETRY_BASE", "1e12"),
        ("O2SMS_RETENTION__TEXT_DAYS", "1e300"),
        ("O2SMS_RETENTION__DELETE_DAYS", "1e300"),
    ],
)
def test_a_duration_too_long_for_a_date_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    # As with inf: a finite duration that no date can be that far ahead of overflows at every
    # use (a webhook row's give_up_at fails the status change it goes with; every claim fails).
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=rf"\({variable}\): Input should be less than"):
        load_settings()


def test_a_list_too_deeply_nested_for_json_is_read_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # json.loads raises RecursionError (no ValueError) on deep nesting: config check crashed.
    monkeypatch.setenv("O2SMS_API_KEYS", "[" * 100_000)
    keys = [key.get_secret_value() for key in load_settings().api_keys]
    assert keys == ["[" * 100_000]  # split at commas, as any text not a JSON array of strings


def test_sandbox_mode_signs_webhooks_without_a_configured_secret() -> None:
    # webhooks.secret is needed with a gateway only: the sandbox generates one.
    settings = load_settings(webhooks={"url": "https://hooks.example.com/o2sms"})
    assert settings.sandbox_mode
    assert settings.webhooks.secret is None


@pytest.mark.parametrize("instance", ["s" * 122, "sms\x001"])
def test_an_instance_name_the_store_cannot_lease_under_is_refused(instance: str) -> None:
    # The worker leases as instance + "#" + a 6-digit tag, in a 128-character column that
    # PostgreSQL enforces (and whose text cannot hold NUL): each claim failed, logged as
    # "store unavailable?", and nothing was ever sent.
    with pytest.raises(ConfigError, match=r"\(O2SMS_INSTANCE\)"):
        load_settings(instance=instance)


def test_the_longest_instance_name_fits_the_lease_column() -> None:
    settings = load_settings(instance="s" * 121)
    assert settings.instance == "s" * 121
    assert len(f"{settings.instance}#3fa9c2") <= messages.c.lease_owner.type.length  # type: ignore[attr-defined]


def test_log_level_is_read_in_any_case(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Python's logging names levels in capitals (INFO); O2SMS_LOG_LEVEL=INFO was refused.
    monkeypatch.setenv("O2SMS_LOG_LEVEL", "INFO")
    assert load_settings().log_level == "info"
    monkeypatch.delenv("O2SMS_LOG_LEVEL")
    path = tmp_path / "level.toml"
    path.write_text('log_level = "Warning"\n')
    assert load_settings(path).log_level == "warning"
    path.write_text('log_level = "verbose"\n')
    with pytest.raises(ConfigError, match="log_level"):
        load_settings(path)


def test_a_section_variable_with_one_underscore_is_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # O2SMS_GATEWAY_PASSWORD names no setting, so it was ignored like o2sms send's own
    # variables, and the gateway was bound with an empty password.
    monkeypatch.setenv("O2SMS_GATEWAY_PASSWORD", "a-password-longer-than-8")
    monkeypatch.setenv("o2sms_worker_concurrency", "5")
    monkeypatch.setenv("O2SMS_HOST", "smpp1.smstools.sk")  # o2sms send's: still ignored
    with pytest.raises(ConfigError) as caught:
        load_settings()
    lines = sorted(str(caught.value).splitlines())
    assert lines == [
        "gateway.password (O2SMS_GATEWAY__PASSWORD): given as O2SMS_GATEWAY_PASSWORD, "
        "with one underscore, which names no setting",
        "worker.concurrency (O2SMS_WORKER__CONCURRENCY): given as o2sms_worker_concurrency, "
        "with one underscore, which names no setting",
    ]
    assert "a-password-longer-than-8" not in str(caught.value)
    monkeypatch.delenv("O2SMS_GATEWAY_PASSWORD")
    monkeypatch.setenv("o2sms_worker_concurrency", "")  # empty: not set, as documented
    assert load_settings().worker.concurrency == 500


def test_a_section_variable_that_is_no_json_names_the_variables_to_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # It said 'error parsing value for field "gateway" from source "EnvSettingsSource":
    # Expecting value: line 1 column 1 (char 0)', pydantic-settings' words, not o2sms's.
    monkeypatch.setenv("O2SMS_GATEWAY", "smpp1.smstools.sk")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == (
        "gateway (O2SMS_GATEWAY): not a JSON object (Expecting value: line 1 column 1 "
        "(char 0)); give each key as a variable of its own, such as O2SMS_GATEWAY__HOSTS"
    )


def test_a_key_in_the_wrong_section_says_where_it_belongs(tmp_path: Path) -> None:
    # TOML puts every key below a [section] header into that section: a store_url written
    # after [gateway] was "gateway.store_url: unknown key (a typo?)", though spelt right.
    path = tmp_path / "order.toml"
    path.write_text(
        'api_keys = ["a-long-enough-api-key-1"]\n'
        "concurrency = 5\n"
        "[gateway]\n"
        'hosts = ["smpp1.smstools.sk"]\n'
        'system_id = "acct"\n'
        "retry_base = 1\n"
        'store_url = "sqlite:///x.db"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert sorted(str(caught.value).splitlines()) == [
        "concurrency (O2SMS_CONCURRENCY): not a top-level key; it belongs under [worker] "
        "(or [webhooks])",
        "gateway.retry_base (O2SMS_GATEWAY__RETRY_BASE): not a key of [gateway]; it belongs "
        "under [worker]",
        "gateway.store_url (O2SMS_GATEWAY__STORE_URL): not a key of [gateway]; it is a "
        "top-level key (in TOML, above the first [section] header)",
    ]


@pytest.mark.parametrize(
    ("gateway", "problem"),
    [
        ({"sessions": 1}, "needs a session of its own within the 1 configured"),
        ({"bind": ["transmitter", "receiver"]}, "would leave no session that receives"),
    ],
)
def test_a_flash_session_without_room_is_a_config_error(
    gateway: dict[str, object], problem: str
) -> None:
    # Found by config check, not when serve builds its client and fails to start.
    with pytest.raises(ConfigError, match=problem):
        load_settings(
            gateway={"hosts": ["127.0.0.1"], "system_id": "acct", "flash_session": True} | gateway,
            api_keys=API_KEYS,
        )
    settings = load_settings(
        gateway={"hosts": ["127.0.0.1"], "system_id": "acct", "flash_session": True},
        api_keys=API_KEYS,
    )
    assert settings.gateway.flash_session  # 4 transceivers: one becomes the NSMS session


@pytest.mark.parametrize("variable", ["O2SMS_API_KEYS", "O2SMS_READ_API_KEYS"])
@pytest.mark.parametrize("key", ["klíč-0123456789abcdef", "tab\there-0123456789abcdef"])
def test_an_api_key_http_cannot_carry_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, key: str
) -> None:
    # An HTTP header carries no such key (the server reads its bytes as Latin-1, so "í" as
    # sent in UTF-8 never matched): config check said valid, and every request got 401.
    monkeypatch.setenv("O2SMS_API_KEYS", "full-key-0123456789abcdef")
    monkeypatch.setenv(variable, f"another-key-0123456789,{key}")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == (
        f"{variable.removeprefix('O2SMS_').lower()} ({variable}): API key number 2 must be "
        "printable ASCII (letters, digits, punctuation), as HTTP headers carry it"
    )
    assert key not in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("password", "p" * 65, "is longer than 64 characters"),
        ("password", "heslo€123", "has a character outside Latin-1"),
        ("password", "nul\x00inside", "has a NUL character"),
        ("system_id", "účet€", "has a character outside Latin-1"),
        ("system_type", "r:€", "has a character outside Latin-1"),
        # every message would be flash (seed: NSMS in the bind), or none could be sent
        ("system_type", "nsms", "is the flash system_type NSMS: set flash_session instead"),
    ],
)
def test_a_bind_field_the_bind_pdu_cannot_carry_is_refused(
    tmp_path: Path, field: str, value: str, problem: str
) -> None:
    # The bind's C-Octet Strings are Latin-1, NUL-terminated (the password up to 64 octets):
    # config check said valid, and serve stopped at its first bind ("cannot encode").
    gateway = {"hosts": ["127.0.0.1:2775"], "system_id": "acct", "password": "secret12"}
    gateway[field] = value
    lines = [f"{name} = {json.dumps(setting)}" for name, setting in gateway.items()]
    config = tmp_path / "o2sms.toml"
    config.write_text(
        'api_keys = ["full-key-0123456789abcdef"]\n[gateway]\n' + "\n".join(lines) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    variable = f"O2SMS_GATEWAY__{field.upper()}"
    assert str(caught.value) == f"gateway.{field} ({variable}): {problem}"
    if field == "password":
        assert value not in str(caught.value)


@pytest.mark.parametrize(
    ("port", "problem"),
    [
        ("99999", "its port must be 1 to 65535, got 99999"),  # serve: "connection refused"
        ("0", "its port must be 1 to 65535, got 0"),
        ("abc", "its port is not a number"),  # "invalid literal for int() with base 10"
    ],
)
def test_a_store_url_with_an_impossible_port_is_refused(
    monkeypatch: pytest.MonkeyPatch, port: str, problem: str
) -> None:
    monkeypatch.setenv("O2SMS_STORE_URL", f"postgresql://o2sms:DB-SECRET-PW@db.example:{port}/o2")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("store_url (O2SMS_STORE_URL): ")
    assert message.endswith(problem)
    assert "DB-SECRET-PW" not in message


@pytest.mark.parametrize("host", ["", "  "])
def test_an_empty_http_host_is_refused(host: str) -> None:
    # `o2sms serve --http-host "$HOST"` with HOST unset: "" made the API listen on every
    # interface (0.0.0.0), the sandbox's key printed beside "http://:8000".
    with pytest.raises(ConfigError) as caught:
        load_settings(http_host=host)
    assert str(caught.value) == (
        "http_host (O2SMS_HTTP_HOST): is empty: give an address such as 127.0.0.1 "
        "(0.0.0.0 for every interface)"
    )


def test_an_empty_store_url_is_refused() -> None:
    # `o2sms serve --store-url "$URL"` with URL unset passed config check; serve then said
    # "cannot open the store : unable to open database file" (it tried the folder itself).
    with pytest.raises(ConfigError) as caught:
        load_settings(store_url=" ")
    assert str(caught.value) == (
        "store_url (O2SMS_STORE_URL): is empty: give a file path, sqlite:///file.db or "
        "postgresql://..."
    )


def test_an_unknown_key_names_the_key_meant(tmp_path: Path) -> None:
    # "unknown key (a typo?)" left the reader to find which: a section's key written at the
    # top, a misspelt section or key.
    config = tmp_path / "typo.toml"
    config.write_text(
        'api_keys = ["full-key-0123456789abcdef"]\npassword = "secret12"\n'
        '[gateway]\nhost = "smsc.example.com"\nsystem_id = "acct"\n'
        '[webhook]\nurl = "http://127.0.0.1:9000/"\n[worker]\ntotally_new = 1\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert sorted(str(caught.value).splitlines()) == [
        "gateway.host (O2SMS_GATEWAY__HOST): unknown key (did you mean gateway.hosts?)",
        "password (O2SMS_PASSWORD): not a top-level key; it belongs under [gateway]",
        "webhook (O2SMS_WEBHOOK): unknown key (did you mean webhooks?)",
        "worker.totally_new (O2SMS_WORKER__TOTALLY_NEW): unknown key (a typo?)",
    ]


def test_a_variable_for_a_section_there_is_not_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # O2SMS_WORKERS__BATCH (for worker.batch) was ignored without a word: config check said
    # valid, and serve ran with the default. (Single-word O2SMS_* variables stay free: the
    # send and status commands read O2SMS_URL, O2SMS_API_KEY, O2SMS_PASSWORD...)
    monkeypatch.setenv("O2SMS_WORKERS__BATCH", "3")
    monkeypatch.setenv("O2SMS_NOTHING__LIKE_IT", "1")
    monkeypatch.setenv("O2SMS_PASSWORD", "for-o2sms-send")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).splitlines() == [
        "nothing.like_it (O2SMS_NOTHING__LIKE_IT): unknown key (a typo?)",
        "workers.batch (O2SMS_WORKERS__BATCH): unknown key (did you mean worker.batch?)",
    ]


def test_a_short_sandbox_key_is_replaced_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "o2sms-sandbox.key"
    path.write_text("short\n")
    with caplog.at_level(logging.WARNING, logger="o2sms.service"):
        key = sandbox_secret(path)
    assert len(key) >= 16
    assert path.read_text().strip() == key
    assert "under 16 characters, so a new one replaces it" in caplog.text
    assert "short" not in caplog.text.replace(str(path), "")


def test_config_check_warns_of_an_empty_gateway_password(tmp_path: Path) -> None:
    # The seed: username and password are required; an empty one passed in silence and
    # serve then stopped at the gateway's refusal.
    path = tmp_path / "o2sms.toml"
    path.write_text(
        'api_keys = ["a-long-enough-api-key-1"]\n'
        '[gateway]\nhosts = ["127.0.0.1:2775"]\nsystem_id = "acct"\n'
    )
    result = CliRunner().invoke(app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output  # valid SMPP: a warning, not an error
    assert (
        "warning: gateway.password (O2SMS_GATEWAY__PASSWORD): is empty; the O2 gateway "
        "refuses a bind without a password"
    ) in result.output.splitlines()
    path.write_text(path.read_text() + 'password = "secret12"\n')
    result = CliRunner().invoke(app, ["config", "check", "--config", str(path)])
    assert "password" not in result.output
