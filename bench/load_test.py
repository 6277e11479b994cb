"""Load test of the whole stack on PostgreSQL: measure capacity, then hold 70 % of it for ten minutes.

1. Starts customer-api, complaint-api and recommend-api on fresh PostgreSQL databases, seeds customers and
   orders, syncs recommend-api and builds a model.
2. Capacity: locust (bench/locust_mix.py, the day's mix of reads, orders, complaints and recommendations)
   with as many users as it takes, no waiting, for `--capacity-seconds`; the total rate reached is the
   capacity of this machine with the load generator on it.
3. Steady run: the same mix at `--share` of that rate (constant throughput per user) for `--seconds`,
   sampling each service's resident memory every 10 s.
Reports per endpoint p50/p99 and failures, 5xx counts, and each service's memory trend (least-squares slope
over the second half of the run, when caches are warm) to stdout and `--out`.

    .venv/bin/pip install -c constraints.txt -r bench/requirements.txt
    .venv/bin/python bench/load_test.py            # about 13 minutes; --seconds 60 for a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from benchkit import free_port, machine_facts
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
KEY = "load-test-dev-key"
SERVICES = ("customer-api", "complaint-api", "recommend-api")


async def _databases(admin: str, names: list[str], *, drop: bool) -> None:
    connection = await asyncpg.connect(admin)
    try:
        for name in names:
            if drop:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def _start(name: str, url: str, port: int, env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    full = {**os.environ, "CRM_ENV": "development", "CRM_DEV_API_KEY": KEY, "CRM_ACCESS_LOG": "false",
            "CRM_DATA_DIR": str(workdir), "DATABASE_URL": url, **env}  # fmt: skip
    log = (workdir / f"{name}.log").open("wb")
    process = subprocess.Popen([str(BIN / name), "serve", "--port", str(port)], env=full, stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{name} did not start; see {workdir / name}.log")


def _seed(urls: dict[str, str], customers: int) -> list[str]:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(headers=headers, timeout=120) as client:
        ids = []
        for i in range(customers):
            body = {"name": f"压测顾客{i}", "phone": f"1580000{i:04d}"}
            ids.append(client.post(f"{urls['customer-api']}/v1/customers", json=body).json()["id"])
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
        orders = [
            {"order_id": f"SEED-{uuid.uuid4().hex}", "customer_id": ids[i % len(ids)],
             "purchased_at": (start + dt.timedelta(minutes=7 * i)).isoformat(),
             "items": [{"sku": f"LOAD-{(i * k) % 200:04d}", "category": f"品类{(i * k) % 12}", "quantity": "1",
                        "unit_price": "12.50"} for k in (1, 3, 7)]}
            for i in range(customers * 10)
        ]  # fmt: skip
        client.post(f"{urls['customer-api']}/v1/purchases/bulk", json={"purchases": orders}).raise_for_status()
        while client.post(f"{urls['recommend-api']}/v1/sync").json()["more"]:
            pass
        version = client.post(f"{urls['recommend-api']}/v1/models", json={"evaluate": False}).json()["version"]
        while client.get(f"{urls['recommend-api']}/v1/models/current").json().get("version", 0) < version:
            time.sleep(0.5)
    return ids


def _locust_command(*, users: int, seconds: int, prefix: Path) -> list[str]:
    return [str(BIN / "locust"), "-f", str(ROOT / "bench" / "locust_mix.py"), "--headless", "-u", str(users),
            "-r", str(users), "--run-time", f"{seconds}s", "--csv", str(prefix), "--only-summary",
            "--stop-timeout", "10", "--loglevel", "WARNING"]  # fmt: skip


def _locust(env: dict[str, str], *, users: int, seconds: int, prefix: Path) -> list[dict[str, str]]:
    command = _locust_command(users=users, seconds=seconds, prefix=prefix)
    subprocess.run(command, env={**os.environ, **env}, check=False, stdout=subprocess.DEVNULL)
    with open(f"{prefix}_stats.csv", newline="") as f:
        return list(csv.DictReader(f))


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _server_errors(failures_csv: Path) -> int:
    """5xx answers in a locust run, from its failures table ("500 Server Error: …")."""
    with failures_csv.open(newline="") as f:
        return sum(int(row["Occurrences"]) for row in csv.DictReader(f) if re.match(r"\D*5\d\d ", row["Error"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--admin", default=os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--capacity-seconds", type=int, default=60)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--share", type=float, default=0.7)
    parser.add_argument("--users", type=int, default=40, help="Simulated users (the capacity run's concurrency)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.md")
    args = parser.parse_args()

    tag = uuid.uuid4().hex[:8]
    names = {s: f"load_{s.replace('-', '_')}_{tag}" for s in SERVICES}
    asyncio.run(_databases(args.admin, list(names.values()), drop=False))
    base = args.admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    ports = {s: free_port() for s in SERVICES}
    urls = {s: f"http://127.0.0.1:{p}" for s, p in ports.items()}
    peers = {
        "complaint-api": {"COMPLAINT_API_CUSTOMER_API_URL": urls["customer-api"],
                          "COMPLAINT_API_RECOMMEND_API_URL": urls["recommend-api"]},
        "recommend-api": {"RECOMMEND_API_CUSTOMER_API_URL": urls["customer-api"]},
    }  # fmt: skip
    processes: dict[str, subprocess.Popen[bytes]] = {}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            for service in SERVICES:
                url = f"{base}/{names[service]}"
                processes[service] = _start(service, url, ports[service], peers.get(service, {}), workdir)
            print("seeding …", flush=True)
            customers = _seed(urls, args.customers)
            env = {"LOAD_CUSTOMER_API": urls["customer-api"], "LOAD_COMPLAINT_API": urls["complaint-api"],
                   "LOAD_RECOMMEND_API": urls["recommend-api"], "LOAD_CUSTOMERS": ",".join(customers),
                   "LOAD_KEY": KEY}  # fmt: skip
            print(f"capacity: {args.users} users without waiting for {args.capacity_seconds} s …", flush=True)
            capacity_rows = _locust(env, users=args.users, seconds=args.capacity_seconds, prefix=workdir / "cap")
            capacity = float(next(r for r in capacity_rows if r["Name"] == "Aggregated")["Requests/s"])
            target = capacity * args.share
            print(f"capacity {capacity:.0f} req/s; now {target:.0f} req/s for {args.seconds} s …", flush=True)
            memory: dict[str, list[tuple[float, float]]] = {s: [] for s in SERVICES}
            steady_env = {**env, "LOAD_USER_RATE": str(target / args.users)}
            command = _locust_command(users=args.users, seconds=args.seconds, prefix=workdir / "steady")
            runner = subprocess.Popen(command, env={**os.environ, **steady_env}, stdout=subprocess.DEVNULL)
            t0 = time.monotonic()
            while runner.poll() is None:
                for service, process in processes.items():
                    memory[service].append((time.monotonic() - t0, _rss_mib(process.pid)))
                time.sleep(10)
            with open(workdir / "steady_stats.csv", newline="") as f:
                rows = list(csv.DictReader(f))
            server_errors = _server_errors(workdir / "steady_failures.csv")
        finally:
            for process in processes.values():
                process.terminate()
            for process in processes.values():
                process.wait(timeout=30)
            asyncio.run(_databases(args.admin, list(names.values()), drop=True))
    report = _report(args, capacity, target, rows, memory, server_errors, time.time() - started)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)


def _report(
    args: argparse.Namespace, capacity: float, target: float, rows: list[dict[str, str]],
    memory: dict[str, list[tuple[float, float]]], server_errors: int, seconds: float,
) -> str:  # fmt: skip
    facts = machine_facts()
    lines = [
        "## The whole stack under load (issue 8)",
        "",
        f"`.venv/bin/python bench/load_test.py` — {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}, "
        f"{seconds / 60:.1f} min in all. Machine: {facts['nproc']} CPUs ({facts['cpu']}), "
        f"Python {facts['python']}; "
        "the three services (one uvicorn worker each), PostgreSQL and locust share these cores.",
        "",
        f"Capacity (the mix, {args.users} users without waiting, {args.capacity_seconds} s): "
        f"**{capacity:.0f} req/s**. "
        f"Steady run at {args.share:.0%} of it: target {target:.0f} req/s for {args.seconds} s.",
        "",
        "| endpoint | requests | failures | req/s | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        name = "**all**" if row["Name"] == "Aggregated" else row["Name"]  # names carry their method
        lines.append(
            f"| {name} | {row['Request Count']} | {row['Failure Count']} | {float(row['Requests/s']):.1f} | "
            f"{row['50%']} | {row['99%']} | {float(row['Max Response Time']):.0f} |"
        )
    lines += [
        "",
        f"5xx answers logged by the services during the steady run: **{server_errors}**.",
        "",
        "| service | RSS at start MiB | RSS at end MiB | slope over the second half MiB/min | r² |",
        "|---|---:|---:|---:|---:|",
    ]
    for service, samples in memory.items():
        half = [s for s in samples if s[0] >= samples[-1][0] / 2]
        fit: Any = stats.linregress([t for t, _ in half], [m for _, m in half]) if len(half) >= 3 else None
        slope = f"{fit.slope * 60:+.2f}" if fit is not None else "n/a"
        r2 = f"{fit.rvalue**2:.2f}" if fit is not None else "n/a"
        lines.append(f"| {service} | {samples[0][1]:.0f} | {samples[-1][1]:.0f} | {slope} | {r2} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
