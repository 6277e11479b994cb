"""What the benchmark scripts share: free ports and the facts about the machine a figure was taken on."""

from __future__ import annotations

import os
import platform
import socket
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
