"""Run the CRM stack locally: every service on its port, migrations applied, until Ctrl-C.

SQLite files under ./data by default; `--postgres postgresql://user@host:5432` (or CRM_STACK_POSTGRES)
puts each service on its own PostgreSQL database, created when missing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import demo_data as demo

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    command: str

    @property
    def database(self) -> str:
        return self.name.replace("-", "_")


SERVICES = [
    Service("customer-api", 8001, "customer-api"),
    Service("complaint-api", 8002, "complaint-api"),
    Service("recommend-api", 8003, "recommend-api"),
]


async def _ensure_databases(admin_url: str, names: list[str]) -> None:
    import asyncpg

    connection = await asyncpg.connect(admin_url.rstrip("/") + "/postgres")
    try:
        existing = {r["datname"] for r in await connection.fetch("SELECT datname FROM pg_database")}
        for name in names:
            if name not in existing:
                await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def _wait_ready(service: Service, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{service.name} exited with {process.returncode}; see the lines above")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{service.port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{service.name} was not ready after {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=os.environ.get("CRM_STACK_POSTGRES"), help="postgresql://user@host:port")
    parser.add_argument("--data-dir", default=str(ROOT / "data"))
    parser.add_argument("--no-demo", action="store_true", help="Do not load the demo data on the first run")
    parser.add_argument("--demo-cdnow-limit", type=int, help="Load only the first N CDNOW customers")
    parser.add_argument(
        "--ports", default=",".join(str(s.port) for s in SERVICES), help="The three services' ports, comma-separated"
    )
    args = parser.parse_args()
    ports = [int(p) for p in args.ports.split(",")]
    if len(ports) != len(SERVICES):
        raise SystemExit(f"--ports needs {len(SERVICES)} ports")
    services = [Service(s.name, port, s.command) for s, port in zip(SERVICES, ports, strict=True)]
    peers = {
        "complaint-api": {
            "COMPLAINT_API_CUSTOMER_API_URL": f"http://127.0.0.1:{ports[0]}",
            "COMPLAINT_API_RECOMMEND_API_URL": f"http://127.0.0.1:{ports[2]}",
        },
        "recommend-api": {"RECOMMEND_API_CUSTOMER_API_URL": f"http://127.0.0.1:{ports[0]}"},
    }

    if args.postgres:
        asyncio.run(_ensure_databases(args.postgres, [s.database for s in services]))
    processes: list[tuple[Service, subprocess.Popen[bytes]]] = []
    dev_key = os.environ.get("CRM_DEV_API_KEY", "dev-admin-key")
    environments: dict[str, dict[str, str]] = {}
    try:
        for service in services:
            env = {
                **peers.get(service.name, {}),
                "CRM_DATA_DIR": args.data_dir,
                "CRM_ENV": os.environ.get("CRM_ENV", "development"),
            }
            if args.postgres:
                base = args.postgres.rstrip("/").replace("postgresql://", "postgresql+asyncpg://", 1)
                env["DATABASE_URL"] = f"{base}/{service.database}"
            environments[service.name] = env
            command = [str(BIN / service.command), "serve", "--host", "127.0.0.1", "--port", str(service.port)]
            processes.append((service, subprocess.Popen(command, env={**os.environ, **env}, cwd=ROOT)))
        for service, process in processes:
            _wait_ready(service, process)
        # The demo data, once per store: the marker says it was loaded (every step also skips what is there).
        marker = Path(args.data_dir) / f".demo-loaded-{'postgres' if args.postgres else 'sqlite'}"
        if not args.no_demo and not marker.exists():
            stack = demo.Stack(*(f"http://127.0.0.1:{s.port}" for s in services), key=dev_key)
            demo.load(stack, env=environments, cache_dir=demo.cache_dir(), cdnow_limit=args.demo_cdnow_limit)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        store = "PostgreSQL" if args.postgres else f"SQLite in {args.data_dir}"
        print(f"\nThe CRM stack is running on {store}:")
        for service, _ in processes:
            print(f"  {service.name:<14} http://127.0.0.1:{service.port}   docs: http://127.0.0.1:{service.port}/docs")
        print(f"  dev API key:   {dev_key}   (Authorization: Bearer {dev_key})")
        print("Press Ctrl-C to stop.\n", flush=True)
        while all(p.poll() is None for _, p in processes):
            time.sleep(0.5)
        raise SystemExit("a service stopped; stopping the others")
    except KeyboardInterrupt:
        print("\nstopping …")
    finally:
        for _, process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for _, process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
