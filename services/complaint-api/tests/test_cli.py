"""The command line: the starter knowledge base loads once and is searchable at once."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
from typer.testing import CliRunner

from complaint_api.cli import app as cli


def _run(args: list[str], env: dict[str, str]) -> str:
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


async def test_seed_kb_loads_the_starter_manual_once(client: httpx.AsyncClient, database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "CRM_LOG_LEVEL": "WARNING"}
    first = await asyncio.to_thread(_run, ["seed-kb"], env)
    # The app's background jobs log to the same stdout meanwhile, so the summary line is searched for.
    summary = re.search(r"knowledge base: (\d+) articles added", first)
    assert summary, first
    added = int(summary.group(1))
    assert added >= 30
    again = await asyncio.to_thread(_run, ["seed-kb"], env)
    assert f"0 articles added, {added} already present" in again
    found = (await client.get("/v1/kb/search", params={"q": "怎麼退貨"})).json()["items"]
    assert found and found[0]["score"] > 0


def test_migrate_command(tmp_path: Path) -> None:
    output = _run(["migrate"], {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"})
    assert "migrations applied" in output and (tmp_path / "fresh.db").exists()
