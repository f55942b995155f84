"""``o2sms simulator --config FILE``: a file it cannot use is one error line naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from o2sms.cli.main import app


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("missing.toml", None, "does not exist"),
        ("bad.toml", "port = \n", "not valid TOML: Invalid value (at line 1, column 8)"),
        ("bad.json", '{"port": }', "not valid JSON: Expecting value: line 1 column 10"),
        ("latin1.toml", b'host = "\xff"\n', "not UTF-8 text"),
        ("port.toml", 'port = "x"\n', "port must be an integer"),
    ],
)
def test_a_config_file_it_cannot_use_is_named_in_the_error(
    tmp_path: Path, name: str, content: str | bytes | None, words: str
) -> None:
    # The errors said "Invalid value (at line 1, column 8)" or "[Errno 2] No such file or
    # directory", without saying that (or which) configuration file was meant.
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(app, ["simulator", "--config", str(path)])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: configuration file {str(path)!r}"), line
    assert words in line
    assert "Errno" not in line
