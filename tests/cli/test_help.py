"""``o2sms COMMAND --help``: the commands' docstrings read as paragraphs at any width."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from o2sms.cli.main import app

# the commands whose docstrings have a paragraph wrapped over several lines (the others are
# one line each, so their help has no seam to check)
COMMANDS = [["send"], ["status"], ["serve"]]


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_joins_the_docstrings_wrapped_lines(path: list[str]) -> None:
    """Where the source wrapped a paragraph, --help on a wide terminal shows one line."""
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.strip(" │").split()) for line in result.output.splitlines()]
    group = typer.main.get_command(app)
    for name in path:
        group = group.commands[name]  # type: ignore[attr-defined]
    doc = inspect.cleandoc(group.callback.__doc__ or "")
    seams = [
        f"{before.split()[-1]} {after.split()[0]}"
        for paragraph in doc.split("\n\n")
        for before, after in itertools.pairwise(paragraph.splitlines())
    ]
    assert seams, "no wrapped paragraph: nothing to check"
    for seam in seams:
        assert any(seam in line for line in lines), f"{seam!r} is split across lines"


def test_send_help_reads_as_sentences() -> None:
    """The send command's longer paragraph is not broken where the source wrapped it."""
    result = CliRunner().invoke(app, ["send", "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert "it is stored and queued there" in result.output


def test_serve_help_shows_the_defaults_of_its_options() -> None:
    """Each of serve's options shows the default it falls back to, the store's URL too."""
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if "--" in line}
    assert "127.0.0.1" in lines["--http-host"]
    assert "8000" in lines["--http-port"]
    assert "sqlite:///o2sms.db" in lines["--store-url"]


def _commands(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    """Every leaf command under ``command`` with its path of names."""
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, [*path, name])
    else:
        yield path, command


def test_every_option_says_what_it_is() -> None:
    # send's --to-column ... --reference-column and bench's --system-id and --password
    # showed only a type and a default in --help.
    bare = [
        f"{' '.join(path)} {option.opts[0]}"
        for path, command in _commands(typer.main.get_command(app), [])
        for option in command.params
        if option.opts[0].startswith("--") and not option.help
    ]
    assert bare == []


def test_simulator_help_shows_the_defaults_it_does_not_say_elsewhere() -> None:
    result = CliRunner().invoke(
        app, ["simulator", "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"}
    )
    lines = {line.split()[1]: line for line in result.output.splitlines() if "--" in line}
    assert "127.0.0.1" in lines["--host"]
    assert "0.1" in lines["--receipt-delay"]
