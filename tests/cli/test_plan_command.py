"""``o2sms plan``: the length calculator's table, its transliterated row and its warnings."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from o2sms.cli.main import app


def plan(*args: str) -> Result:
    return CliRunner().invoke(app, ["plan", *args], env={"COLUMNS": "200", "NO_COLOR": "1"})


def test_a_short_gsm_text_is_one_part() -> None:
    result = plan("Hello")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "as written" in line)
    # 5 septets of a 160-septet part: 155 left
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells == ["as written", "gsm7", "0x00", "1", "5", "155 of 160"]
    assert "warning" not in result.output


def test_a_text_outside_gsm_shows_the_transliterated_choice() -> None:
    result = plan("Ahoj, ako sa máš?")
    assert result.exit_code == 0, result.output
    assert "Characters outside GSM 03.38: á š" in result.output
    assert "Transliterated text: Ahoj, ako sa mas?" in result.output


def test_over_the_gateways_25_parts_warns() -> None:
    # 26 parts of 153 septets (8-bit UDH): the service would answer 422
    result = plan("x" * (153 * 25 + 1))
    assert result.exit_code == 0, result.output
    assert "warning: 26 parts: the O2 gateway takes at most 25" in result.output
    at_the_limit = plan("x" * (153 * 25))
    assert "warning" not in at_the_limit.output
    # UCS-2 needs 30 parts of 67; transliterated, 14 of 153 fit
    choice = plan("ž" * 2000)
    assert "warning: 30 parts" in choice.output
    assert "transliterated it needs 14" in choice.output


def test_an_unknown_encoding_is_one_error_line_and_exit_2() -> None:
    result = plan("Hello", "--encoding", "ebcdic")
    assert result.exit_code == 2
    assert "error:" in result.output
    assert "Traceback" not in result.output


def test_an_error_is_one_unwrapped_line_on_stderr() -> None:
    # It was printed on stdout, wrapped at the terminal's width like any text: a long one
    # (this text's parts) came out as two lines, which scripts cannot grep whole.
    result = CliRunner().invoke(app, ["plan", "x" * 40_000], env={"COLUMNS": "40", "NO_COLOR": "1"})
    assert result.exit_code == 2
    assert result.stdout.strip() == ""
    assert result.stderr.strip().splitlines() == [
        "error: text of 40000 gsm7 units needs about 262 parts of 153, more than max_parts=255"
    ]
