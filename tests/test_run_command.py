"""The README's run command on a fresh data directory: three services up with the demo data, the printed
URLs and key, a clean stop on Ctrl-C, and a second run that reuses the data instead of loading it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import DEV_KEY, free_port

ROOT = Path(__file__).resolve().parents[1]


def _start(data_dir: Path, ports: list[int], log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(ROOT / "scripts" / "run_stack.py"), "--data-dir", str(data_dir),
               "--ports", ",".join(map(str, ports)), "--demo-cdnow-limit", "300"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def _wait_for(log: Path, process: subprocess.Popen[bytes], text: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        output = log.read_text(errors="replace")
        if text in output:
            return output
        if process.poll() is not None:
            raise AssertionError(f"the run command exited with {process.returncode}:\n{output[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"no {text!r} within {seconds} s:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()


def test_the_run_command_brings_the_stack_up_with_demo_data_and_reuses_it(tmp_path: Path) -> None:
    if os.environ.get("CUSTOMER_API_URL"):
        pytest.skip("runs the stack itself")
    ports = [free_port() for _ in range(3)]
    data = tmp_path / "data"
    first = _start(data, ports, tmp_path / "first.log")
    try:
        output = _wait_for(tmp_path / "first.log", first, "Press Ctrl-C", 600)
        for port in ports:
            assert f"http://127.0.0.1:{port}/docs" in output
        assert f"Authorization: Bearer {DEV_KEY}" in output
        auth = {"Authorization": f"Bearer {DEV_KEY}"}
        customers = httpx.get(f"http://127.0.0.1:{ports[0]}/v1/customers", params={"tag": "Instacart", "limit": 500},
                              headers=auth).json()  # fmt: skip
        assert len(customers["items"]) == 500 and customers["next_cursor"]
        complaints = httpx.get(f"http://127.0.0.1:{ports[1]}/v1/complaints", params={"limit": 50}, headers=auth).json()
        states = {c["status"] for c in complaints["items"]}
        assert {"open", "answered", "escalated", "resolved", "replied", "closed", "cancelled"} <= states
        assert any(c["on_hold_since"] for c in complaints["items"])
        plans = httpx.get(f"http://127.0.0.1:{ports[1]}/v1/recovery-plans", headers=auth).json()["items"]
        assert plans and any(p["satisfaction_before"] == 2 for p in plans)
        model = httpx.get(f"http://127.0.0.1:{ports[2]}/v1/models/current", headers=auth).json()
        assert model["sizes"]["customers"] >= 593 and model["evaluation"]["model"]["users"] > 0
    finally:
        assert _stop(first) == 0

    second = _start(data, ports, tmp_path / "second.log")
    try:
        output = _wait_for(tmp_path / "second.log", second, "Press Ctrl-C", 120)
        assert "[demo]" not in output  # the data is there already
        current = httpx.get(
            f"http://127.0.0.1:{ports[2]}/v1/models/current", headers={"Authorization": f"Bearer {DEV_KEY}"}
        )
        assert current.status_code == 200 and current.json()["version"] == model["version"]
    finally:
        assert _stop(second) == 0
