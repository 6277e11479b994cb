"""What the benchmark scripts share: free ports, the facts about the machine a figure was taken on, and the
command and revision that produced it."""

from __future__ import annotations

import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
from contextlib import suppress
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_model() -> str:
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_facts() -> dict[str, str]:
    """CPUs this process may use, CPU model, kernel and Python."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"nproc": str(cpus), "cpu": cpu_model(), "kernel": platform.release(), "python": platform.python_version()}


REPO_ROOT = Path(__file__).resolve().parents[1]


def git_revision(*paths: str) -> str:
    """The commit, and whether `paths` (relative to the repository) had uncommitted changes."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    revision = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", *paths)
    return revision + (f" + uncommitted changes in {', '.join(paths)}" if dirty else "")


def command_line() -> str:
    """How this script was started, with paths relative to the repository root."""

    def rel(path: str) -> str:
        with suppress(ValueError):
            return str(Path(path).absolute().relative_to(REPO_ROOT))
        return path

    return shlex.join([rel(sys.executable), rel(sys.argv[0]), *sys.argv[1:]])


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server the benchmark started: SIGINT (uvicorn's graceful stop), then kill after 15 s."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
