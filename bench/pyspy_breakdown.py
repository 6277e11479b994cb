"""Sort py-spy samples of customer-api's `GET /v1/customers/{id}` into cost buckets.

Input is `py-spy record --format raw` output (collapsed stacks, `frame;frame;... count`, a frame being
`function (file:line)`). Each sample goes to one bucket:

1. the first *phase* bucket whose marker occurs anywhere in the stack, in the order of `PHASES`
   (e.g. everything under SQLAlchemy's pre-ping is "pool pre-ping", whatever asyncpg does below it);
2. otherwise the *layer* of the innermost frame that belongs to a known package (`LAYERS`).

py-spy only samples a thread that is running, so the shares are shares of the process's CPU time;
with the server saturated, share × (1 / requests per second) approximates the cost per request.

    .venv/bin/python bench/pyspy_breakdown.py bench/results/<stamp>-profile.txt [--rps 1234]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

# (bucket, markers): a marker is a substring of one frame, `function (file:line)`.
PHASES: list[tuple[str, tuple[str, ...]]] = [
    (
        "DB: pool checkout + pre-ping (`pool_pre_ping=True`: BEGIN; `;`; ROLLBACK = 3 round trips)",
        ("_async_ping", "do_ping", "Pool.connect", "_ConnectionFairy._checkout"),
    ),
    (
        "DB: BEGIN of the request transaction (1 round trip)",
        ("_start_transaction", "Transaction.start", "_connection_for_bind", "_autobegin"),
    ),
    (
        "DB: COMMIT / close of the read-only transaction (1 round trip)",
        (
            "Transaction.__commit",
            "Transaction.__rollback",
            "AsyncSession.commit",
            "AsyncSession.rollback",
            "AsyncSession.close",
            "Session.commit",
            "SessionTransaction.commit",
            "do_commit",
            "_commit_impl",
            "Session.close",
            "do_rollback",
        ),
    ),
    (
        "DB: the SELECT itself (asyncpg bind/execute/decode, JSONB decode)",
        ("_prepare_and_execute", "_jsonb_decoder", "PreparedStatement.", "Connection._do_execute"),
    ),
    ("SQLAlchemy: AsyncSession / Session construction", ("async_sessionmaker.__call__", "Session.__init__")),
    (
        "SQLAlchemy: ORM execute (statement build, cache key, compile cache, row → Customer, greenlet)",
        ("AsyncSession.execute", "Session.execute", "get_customer (", "sqlalchemy/"),
    ),
    ("Serialisation: CustomerRead.model_validate + model_dump_json + Response", ("_render (", "model_response (")),
    (
        "Auth: HTTPBearer + API-key hash + scope check",
        ("current_principal", "HTTPBearer.__call__", "_check (", "KeyRing.authenticate"),
    ),
    ("Access log (structlog)", ("structlog/",)),
    ("Metrics (prometheus_client)", ("prometheus_client/",)),
    (
        "Routing: path matching (fastapi router)",
        (".matches (", "._match (", "effective_candidates", "_get_routes_version"),
    ),
    (
        "FastAPI: dependency resolution (solve_dependencies, params, yield-dependency exit stack)",
        (
            "solve_dependencies",
            "_solve_generator",
            "request_params_to_args",
            "AsyncExitStack.__aexit__",
            "AsyncExitStack.enter_async_context",
            "_asynccontextmanager_with_shielded_exit",
            "_request_session",
            "anyio/",
        ),
    ),
]
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("Profile cache: ProfileReads (path and key check, cached answer)", ("customer_api/customers/cache",)),
    ("DB: asyncpg simple query (BEGIN/COMMIT/ROLLBACK; sample too shallow to tell which)", ("asyncpg/",)),
    ("Request middleware (crm_kit RequestContextMiddleware)", ("crm_kit/observability",)),
    ("Serialisation: pydantic (other)", ("pydantic/",)),
    ("uvicorn + httptools (parse request, write response)", ("uvicorn/",)),
    (
        "Framework middleware + endpoint plumbing (ServerError, Exception, body limit, telemetry, request_response)",
        ("starlette/", "fastapi/", "customer_api/", "crm_kit/"),
    ),
    ("Event loop, sockets, C protocol code (uvloop, asyncio, asyncpg/httptools C parts)", ("asyncio/", "uvloop")),
]
OTHER = "No Python frame on the stack (C code: event loop, GC) / other"


# Leaf frames of threads that wait (AnyIO's worker threads, left over from sync dependencies of other
# routes): py-spy's idle detection misses some of them in blocking mode.
IDLE_LEAVES = ("Condition.wait (threading.py", "Event.wait (threading.py", "Queue.get (queue.py")


def read_samples(path: Path) -> Iterable[tuple[list[str], int]]:
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if count.isdigit() and not frames[-1].startswith(IDLE_LEAVES):
            yield frames, int(count)


def bucket(frames: list[str]) -> str:
    for name, markers in PHASES:
        if any(marker in frame for frame in frames for marker in markers):
            return name
    for frame in reversed(frames):
        for name, markers in LAYERS:
            if any(marker in frame for marker in markers):
                return name
    return OTHER


def breakdown(path: Path) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    for frames, count in read_samples(path):
        counts[bucket(frames)] += count
    return counts, sum(counts.values())


# Bucket name prefix -> the coarse group it is summed into.
GROUPS: list[tuple[tuple[str, ...], str]] = [
    (("DB:",), "PostgreSQL round trips: pre-ping (3), BEGIN, SELECT, COMMIT"),
    (("SQLAlchemy:",), "SQLAlchemy ORM: statement, execute, row → object, session"),
    (("FastAPI:", "Routing:", "Framework"), "FastAPI/Starlette: routing, dependency resolution, middleware stack"),
    (("Serialisation:",), "Serialisation: pydantic model + JSON"),
    (("Profile cache:",), "Profile cache layer (cached answers in front of FastAPI)"),
    (("Auth:", "Access log", "Metrics", "Request middleware"), "crm_kit: auth, request middleware, metrics, log"),
    (("uvicorn", "Event loop", "No Python"), "uvicorn, event loop, sockets, C code"),
]


def group(name: str) -> str:
    return next((g for prefixes, g in GROUPS if name.startswith(prefixes)), "other")


def _table(title: str, counts: Counter[str], total: int, rps: float | None) -> list[str]:
    per_request = rps is not None and rps > 0
    rows = [
        f"| {title} | share of CPU |" + (" ≈ µs per request |" if per_request else ""),
        "| --- | ---: |" + (" ---: |" if per_request else ""),
    ]
    for name, count in counts.most_common():
        share = count / total
        rows.append(f"| {name} | {share:.1%} |" + (f" {share * 1e6 / rps:.0f} |" if per_request else ""))
    return rows


def breakdown_markdown(path: Path, rps: float | None = None) -> str:
    """Two tables: coarse groups, then the buckets they are made of."""
    counts, total = breakdown(path)
    if not total:
        return "py-spy recorded no samples."
    groups: Counter[str] = Counter()
    for name, count in counts.items():
        groups[group(name)] += count
    return "\n".join(
        [
            *_table("Group", groups, total, rps),
            "",
            *_table("Bucket", counts, total, rps),
            "",
            f"{total} samples of the server process (idle threads left out).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--rps", type=float, help="unprofiled requests/s, to turn shares into µs per request")
    parser.add_argument("--top", type=int, default=0, help="also list the N hottest leaf frames")
    args = parser.parse_args()
    print(breakdown_markdown(args.raw, args.rps))
    if args.top:
        leaves: Counter[str] = Counter()
        for frames, count in read_samples(args.raw):
            leaves[re.sub(r"^.*/site-packages/", "", frames[-1])] += count
        total = sum(leaves.values())
        print()
        for frame, count in leaves.most_common(args.top):
            print(f"{count / total:6.1%}  {frame}")


if __name__ == "__main__":
    main()
