"""Benchmark: customer-api's value refresh (`customer_api.analytics.service.refresh_values`) at scale.

Run from the repository root (PostgreSQL reachable as --pg, a role allowed to CREATE DATABASE):

    .venv/bin/python bench/value_refresh_bench.py [--pg postgresql://postgres@127.0.0.1:5432/postgres]
        [--customers 100000] [--lines 1000000] [--skip-sqlite] [--skip-cdnow] [--synthetic-load copy|service]

What it does, each data set in its own throw-away database (PostgreSQL databases are created on --pg and
dropped at the end, also on failure or Ctrl-C; the SQLite file lives in a temporary folder):

1. CDNOW master (23,570 customers, 69,659 one-line orders, 1997-1998; the file comes from the lifetimes 0.11.3
   wheel via `customer_api.demo`): migrate, import through the product's bulk paths (`register_customers`,
   `import_purchases`, the batches of `customer-api import-cdnow`), ANALYZE, then two full refreshes as of
   1998-07-01 00:00 +08:00, on PostgreSQL and (unless --skip-sqlite) SQLite. The first refresh writes every
   value, tier and segment; the second recomputes everything and finds no tier changes.
2. Synthetic (--customers, about --lines order lines): a seeded, CRM-shaped population. 10 % of customers
   never buy; buyers join uniformly over the two years before as_of (2026-07-01 00:00 +08:00) with a first
   purchase, then buy at a gamma-distributed rate (shape 0.5) and drop out after each purchase with a
   beta-distributed probability, so their purchase count before dropout is geometric (BG/NBD's story);
   the rate scale is solved so that orders = lines / 3.3. Orders have 1 + Poisson lines (mean 3.3) from a
   20,000-SKU catalogue with Zipf popularity, unit prices lognormal around a lognormal per-customer level,
   times in business hours (Asia/Shanghai), 60 % in stores. 1 % of customers withdrew profiling consent.
   Loaded with PostgreSQL COPY by default (customers, their `created` feed events, purchases, lines; every
   column as the product writes it, order fingerprints included, checked against the product's code on a
   sample), or with --synthetic-load service through the product's bulk paths (much slower). Then
   ANALYZE and two full refreshes on PostgreSQL; target: under 60 s.

"load s" is the data load plus ANALYZE (migrations are not counted). Refresh times are wall times of
`refresh_values` (engine creation excluded, first connection included); each refresh's stages are timed
from its progress callback: reading (customers, purchase days, previous P(alive)), scoring and fitting
(RFM, tiers, BG/NBD + Gamma-Gamma fits, holdout check, churn), writing (customer_values, tiers and segments,
feed events, one transaction). Each statement the refresh sends is timed too (SQLAlchemy cursor events: the
driver call, i.e. round trips, server work, the driver's encoding; not SQLAlchemy's compilation and parameter
processing); "outside the driver" is the rest of the wall time: Python in the service, SQLAlchemy, scoring.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import os
import re
import shlex
import signal
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np
import numpy.typing as npt
import orjson
from benchkit import machine_facts
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from uuid_utils.compat import uuid7

from crm_kit.db import Database
from crm_kit.health import upgrade_database
from customer_api.analytics.service import refresh_values
from customer_api.config import Settings
from customer_api.customers.schemas import CustomerCreate
from customer_api.customers.service import register_customers
from customer_api.demo import cdnow_orders, fetch_cdnow_master
from customer_api.main import ALEMBIC_INI
from customer_api.purchases.schemas import PurchaseCreate
from customer_api.purchases.service import import_purchases, order_fingerprint

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
T = TypeVar("T")

TZ = ZoneInfo("Asia/Shanghai")
CDNOW_AS_OF = dt.datetime(1998, 7, 1, tzinfo=TZ)
SYNTHETIC_AS_OF = dt.datetime(2026, 7, 1, tzinfo=TZ)
TARGET_SECONDS = 60.0
CUSTOMER_BATCH = 2000  # as `customer-api import-cdnow`
ORDER_BATCH = 4000
SEED = 20260701

WINDOW_DAYS = 730
NEVER_BUY = 0.10
WITHDRAWN_PROFILING = 0.01
LINES_PER_ORDER = 3.3
CATALOGUE = 20_000
CATEGORIES = ["粮油", "乳品", "生鲜", "休闲食品", "饮料", "酒水", "日用品", "个护", "母婴", "家电", "服饰", "图书"]
CHANNELS = ["store", "online", "app", "wechat"]
CHANNEL_SHARES = [0.60, 0.25, 0.10, 0.05]
STORES = 60
MOBILE_PREFIXES = ["139", "138", "137", "136", "135", "188", "187", "186", "159", "158", "150", "151", "189", "180"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文玉兰红梅志鹏辉婷雪琳晨宇浩然欣怡子涵思雨嘉"

# Columns the COPY load writes; every NOT NULL column without a default must be among them.
COPY_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "type", "status", "name", "phone", "card_number", "tags", "attributes", "tier",
                  "tier_locked", "consents", "restricted", "version", "created_at", "updated_at"),
    "customer_events": ("customer_id", "type", "occurred_at", "data"),
    "purchases": ("id", "order_id", "customer_id", "purchased_at", "channel", "store_id", "currency", "total",
                  "fingerprint", "created_at"),
    "purchase_lines": ("id", "purchase_id", "line_no", "sku", "name", "category", "quantity", "unit_price",
                       "amount"),
}  # fmt: skip


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- results


@dataclasses.dataclass
class Statement:
    calls: int = 0
    rows: int = 0  # parameter sets (executemany) or 1 per call
    seconds: float = 0.0


@dataclasses.dataclass
class Refresh:
    seconds: float
    stages: dict[str, float]
    stats: dict[str, Any]
    statements: dict[str, Statement]


@dataclasses.dataclass
class Run:
    dataset: str
    backend: str
    customers: int = 0
    orders: int = 0
    lines: int = 0
    load_seconds: float = 0.0
    refreshes: list[Refresh] = dataclasses.field(default_factory=list)
    target: float | None = None


# ---------------------------------------------------------------------------------------------- databases


def sqlalchemy_url(admin_url: str, database: str) -> str:
    url = make_url(admin_url).set(drivername="postgresql+asyncpg", database=database)
    return url.render_as_string(hide_password=False)


def asyncpg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def throwaway_postgres(admin_url: str, label: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (SQLAlchemy URL); dropped on the way out, whatever happened."""
    name = f"value_bench_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    log(f"created database {name}")
    try:
        yield sqlalchemy_url(admin_url, name)
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        log(f"dropped database {name}")


async def migrate(url: str) -> None:
    await asyncio.to_thread(upgrade_database, ALEMBIC_INI, url)


async def with_database(url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    database = Database(url)
    try:
        return await work(database)
    finally:
        await database.dispose()


async def counts(url: str) -> tuple[int, int, int]:
    async def read(database: Database) -> tuple[int, int, int]:
        async with database.session_scope(read_only=True) as session:
            found = [
                (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
                for table in ("customers", "purchases", "purchase_lines")
            ]
        return found[0], found[1], found[2]

    return await with_database(url, read)


async def analyze(url: str) -> None:
    """Fresh planner statistics, as autovacuum would have them on a live database."""

    async def run(database: Database) -> None:
        async with database.engine.connect() as connection:
            await connection.execute(text("ANALYZE"))
            await connection.commit()

    await with_database(url, run)


# ---------------------------------------------------------------------------------------------- product import


async def import_via_service(url: str, customers: Sequence[CustomerCreate], orders: Sequence[dict[str, Any]]) -> None:
    """Customers, then orders keyed by card number, through the product's bulk paths in big transactions."""
    settings = settings_for(url)

    async def run(database: Database) -> None:
        ids: dict[str, uuid.UUID] = {}
        for start in range(0, len(customers), CUSTOMER_BATCH):
            batch = customers[start : start + CUSTOMER_BATCH]
            async with database.session_scope() as session:
                outcomes = await register_customers(session, rows=batch, region=settings.default_region)
            for data, outcome in zip(batch, outcomes, strict=True):
                if outcome.status != "created" or outcome.customer_id is None or data.card_number is None:
                    raise RuntimeError(f"customer {data.card_number} not created: {outcome}")
                ids[data.card_number] = outcome.customer_id
        for start in range(0, len(orders), ORDER_BATCH):
            batch = [
                {**{k: v for k, v in o.items() if k != "card_number"}, "customer_id": str(ids[o["card_number"]])}
                for o in orders[start : start + ORDER_BATCH]
            ]
            async with database.session_scope() as session:
                result = await import_purchases(session, rows=batch)
            bad = [r for r in result.results if r.status != "created"]
            if bad:
                raise RuntimeError(f"{len(bad)} orders not created, first: {bad[0]}")
            if start // ORDER_BATCH % 25 == 0:
                log(f"  orders {start + len(batch):,} / {len(orders):,}")

    await with_database(url, run)


# ---------------------------------------------------------------------------------------------- refresh


def settings_for(url: str) -> Settings:
    return Settings(database_url=url, environment="development", access_log=False)


def statement_label(sql: str) -> str:
    """`INSERT customer_values`, `SELECT purchases`, `SELECT customers FOR UPDATE`, `SELECT pg_advisory_xact_lock`."""
    words = sql.split()
    verb = words[0].upper() if words else "?"
    table = re.search(r"\b(?:INTO|UPDATE|FROM)\s+\"?(\w+)", sql, re.IGNORECASE)
    name = table.group(1) if table else (re.sub(r"\W.*", "", words[1]) if len(words) > 1 else "")
    suffix = " FOR UPDATE" if re.search(r"\bFOR UPDATE\b", sql, re.IGNORECASE) else ""
    return f"{verb} {name}{suffix}"


def watch_statements(database: Database) -> dict[str, Statement]:
    """Wall time per kind of statement, measured around the driver call (round trips, server work and the
    driver's encoding and decoding; not SQLAlchemy's compilation and parameter processing)."""
    timings: dict[str, Statement] = defaultdict(Statement)
    engine = database.engine.sync_engine

    @event.listens_for(engine, "before_cursor_execute")
    def _before(connection: Any, _cursor: Any, _sql: str, _params: Any, _context: Any, _many: bool) -> None:
        connection.info.setdefault("bench_started", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(connection: Any, _cursor: Any, sql: str, params: Any, _context: Any, many: bool) -> None:
        entry = timings[statement_label(sql)]
        entry.seconds += time.perf_counter() - connection.info["bench_started"].pop()
        entry.calls += 1
        entry.rows += len(params) if many else 1

    return timings


async def timed_refresh(url: str, as_of: dt.datetime) -> Refresh:
    settings = settings_for(url)
    marks: list[tuple[str, float]] = []

    async def progress(stage: str, _fraction: float) -> None:
        marks.append((stage, time.perf_counter()))

    async def run(database: Database) -> Refresh:
        statements = watch_statements(database)
        start = time.perf_counter()
        stats = await refresh_values(database, settings, as_of=as_of, progress=progress)
        seconds = time.perf_counter() - start
        stages = {stage: end - begin for (stage, begin), (_, end) in itertools.pairwise(marks)}
        return Refresh(seconds, stages, stats, dict(statements))

    result = await with_database(url, run)
    stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in result.stages.items())
    log(f"  refresh {result.seconds:.2f} s ({stages}); {json.dumps(result.stats)}")
    return result


async def refresh_twice(run: Run, url: str, as_of: dt.datetime) -> None:
    for _ in range(2):
        run.refreshes.append(await timed_refresh(url, as_of))


# ---------------------------------------------------------------------------------------------- CDNOW


async def bench_cdnow(url: str, backend: str, data: tuple[list[CustomerCreate], list[dict[str, Any]]]) -> Run:
    run = Run("CDNOW master", backend)
    log(f"CDNOW on {backend}: migrating")
    await migrate(url)
    log(f"CDNOW on {backend}: importing {len(data[0]):,} customers, {len(data[1]):,} orders via the product")
    start = time.perf_counter()
    await import_via_service(url, *data)
    await analyze(url)
    run.load_seconds = time.perf_counter() - start
    run.customers, run.orders, run.lines = await counts(url)
    log(f"CDNOW on {backend}: loaded in {run.load_seconds:.1f} s; refreshing as of {CDNOW_AS_OF.isoformat()}")
    await refresh_twice(run, url, CDNOW_AS_OF)
    return run


# ---------------------------------------------------------------------------------------------- synthetic data


@dataclasses.dataclass(frozen=True)
class Synthetic:
    """Customers 0..n-1 and their orders in time order; order o's lines are line_start[o]:line_start[o + 1]."""

    names: list[str]
    phones: list[str]  # as entered (mainland mobile); stored in E.164
    cards: list[str]
    withdrawn: npt.NDArray[np.bool_]  # profiling consent withdrawn
    order_customer: IntArray
    order_epoch: IntArray  # seconds since 1970 (UTC), whole seconds
    order_channel: IntArray  # index into CHANNELS
    order_store: IntArray  # store number (stores only)
    line_start: IntArray
    line_sku: IntArray
    line_quantity: IntArray
    line_cents: IntArray  # unit price in fen

    @property
    def orders(self) -> int:
        return int(self.order_customer.size)

    @property
    def lines(self) -> int:
        return int(self.line_sku.size)


def sku_code(sku: int) -> str:
    return f"69{sku:011d}"


def sku_name(sku: int) -> str:
    return f"{CATEGORIES[sku % len(CATEGORIES)]}商品{sku:05d}"


def store_code(channel: int, store: int) -> str | None:
    return f"SH-{store:03d}" if CHANNELS[channel] == "store" else None


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def synthesize(customers: int, lines: int, as_of: dt.datetime, seed: int) -> Synthetic:
    rng = np.random.default_rng(seed)
    window_start = as_of - dt.timedelta(days=WINDOW_DAYS)  # local midnight

    buyer = rng.random(customers) >= NEVER_BUY
    birth = rng.uniform(0, WINDOW_DAYS, customers)  # day of the first purchase
    rate = rng.gamma(0.5, 1.0, customers)  # purchases per day, up to a scale solved below
    dropout = rng.beta(2.0, 6.0, customers)  # chance of leaving after each purchase
    repeats = np.where(buyer, np.minimum(rng.geometric(dropout) - 1, 250), 0)  # repeat purchases before dropout
    owner = np.repeat(np.arange(customers), repeats)
    gaps = rng.standard_exponential(owner.size) / rate[owner]
    ends = np.cumsum(repeats)
    cumulative = np.cumsum(gaps)
    before = np.concatenate([[0.0], cumulative])[(ends - repeats)[owner]]
    unit_offset = cumulative - before  # time of each repeat since the first purchase, at rate scale 1
    room = WINDOW_DAYS - birth[owner]

    target = round(lines / LINES_PER_ORDER)
    low, high = -20.0, 20.0  # log of the rate scale; more scale, more repeats inside the window
    for _ in range(80):
        middle = (low + high) / 2
        made = int(buyer.sum()) + int((unit_offset / np.exp(middle) < room).sum())
        low, high = (middle, high) if made < target else (low, middle)
    kept = unit_offset / np.exp(high) < room
    order_customer = np.concatenate([np.flatnonzero(buyer), owner[kept]])
    order_day = np.concatenate([birth[buyer], (birth[owner] + unit_offset / np.exp(high))[kept]])
    seconds_of_day = rng.integers(9 * 3600, 22 * 3600, order_day.size)  # business hours, local time
    order_epoch = int(window_start.timestamp()) + np.floor(order_day).astype(np.int64) * 86400 + seconds_of_day
    order = np.argsort(order_epoch, kind="stable")
    order_customer, order_epoch = order_customer[order], order_epoch[order]

    n_orders = order_customer.size
    per_order = 1 + rng.poisson(lines / n_orders - 1, n_orders)
    line_start = np.concatenate([[0], np.cumsum(per_order)]).astype(np.int64)
    n_lines = int(line_start[-1])
    line_order = np.repeat(np.arange(n_orders), per_order)
    price_level = rng.lognormal(np.log(30.0), 0.6, customers)
    price = price_level[order_customer[line_order]] * rng.lognormal(0.0, 0.5, n_lines)
    line_cents = np.maximum(np.rint(price).astype(np.int64) * 100 - 10, 90)  # retail prices: xx.90
    line_sku = (rng.zipf(1.3, n_lines) - 1) % CATALOGUE
    line_quantity = rng.choice([1, 2, 3, 4, 6], size=n_lines, p=[0.80, 0.11, 0.05, 0.02, 0.02])

    names = [
        SURNAMES[s] + GIVEN[g] + (GIVEN[h] if two else "")
        for s, g, h, two in zip(
            rng.integers(0, len(SURNAMES), customers).tolist(),
            rng.integers(0, len(GIVEN), customers).tolist(),
            rng.integers(0, len(GIVEN), customers).tolist(),
            (rng.random(customers) < 0.7).tolist(),
            strict=True,
        )
    ]
    return Synthetic(
        names=names,
        phones=[f"{MOBILE_PREFIXES[i % len(MOBILE_PREFIXES)]}{i:08d}" for i in range(customers)],
        cards=[f"SYN{i:08d}" for i in range(customers)],
        withdrawn=rng.random(customers) < WITHDRAWN_PROFILING,
        order_customer=order_customer.astype(np.int64),
        order_epoch=order_epoch.astype(np.int64),
        order_channel=rng.choice(len(CHANNELS), size=n_orders, p=CHANNEL_SHARES).astype(np.int64),
        order_store=rng.integers(1, STORES + 1, n_orders).astype(np.int64),
        line_start=line_start,
        line_sku=line_sku.astype(np.int64),
        line_quantity=line_quantity.astype(np.int64),
        line_cents=line_cents.astype(np.int64),
    )


def order_id(index: int) -> str:
    return f"SYN-{index + 1:08d}"


def order_body(data: Synthetic, o: int) -> dict[str, Any]:
    """Order `o` as `import_purchases` takes it, keyed by card number instead of customer id."""
    channel = int(data.order_channel[o])
    items = []
    for i in range(int(data.line_start[o]), int(data.line_start[o + 1])):
        sku = int(data.line_sku[i])
        items.append(
            {
                "sku": sku_code(sku),
                "name": sku_name(sku),
                "category": CATEGORIES[sku % len(CATEGORIES)],
                "quantity": str(int(data.line_quantity[i])),
                "unit_price": money(int(data.line_cents[i])),
            }
        )
    return {
        "order_id": order_id(o),
        "card_number": data.cards[int(data.order_customer[o])],
        "purchased_at": dt.datetime.fromtimestamp(int(data.order_epoch[o]), TZ).isoformat(),
        "channel": CHANNELS[channel],
        "store_id": store_code(channel, int(data.order_store[o])),
        "currency": "CNY",
        "items": items,
    }


def synthetic_for_service(data: Synthetic) -> tuple[list[CustomerCreate], list[dict[str, Any]]]:
    customers = [
        CustomerCreate(
            name=name,
            phone=phone,
            card_number=card,
            consents={"profiling": {"status": "withdrawn", "source": "app"}} if withdrawn else {},
        )
        for name, phone, card, withdrawn in zip(data.names, data.phones, data.cards, data.withdrawn, strict=True)
    ]
    return customers, [order_body(data, o) for o in range(data.orders)]


async def check_copy_columns(connection: asyncpg.Connection) -> None:
    """Fail early if a migration added a NOT NULL column without a default that the COPY does not fill."""
    rows = await connection.fetch(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = ANY($1::text[]) AND is_nullable = 'NO' AND column_default IS NULL "
        "AND is_identity = 'NO'",
        list(COPY_COLUMNS),
    )
    missing = [
        f"{r['table_name']}.{r['column_name']}" for r in rows if r["column_name"] not in COPY_COLUMNS[r["table_name"]]
    ]
    if missing:
        raise RuntimeError(f"the COPY load does not fill these NOT NULL columns: {', '.join(missing)}")


async def copy_synthetic(url: str, data: Synthetic) -> None:
    """Write the data set as `register_customers` and `import_purchases` would, with COPY."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    region_prefix = "+86"
    customer_ids = [uuid7() for _ in data.names]
    consent_withdrawn = json.dumps(
        {"profiling": {"status": "withdrawn", "updated_at": now.isoformat(), "source": "app"}}
    )
    customers = [
        (customer_ids[i], "individual", "active", data.names[i], region_prefix + data.phones[i], data.cards[i], "[]",
         "{}", "regular", False, consent_withdrawn if withdrawn else "{}", False, 1, now, now)
        for i, withdrawn in enumerate(data.withdrawn.tolist())
    ]  # fmt: skip
    created = json.dumps({"type": "individual", "owner_id": None})
    events = [(customer_id, "created", now, created) for customer_id in customer_ids]

    decimals: dict[int, Decimal] = {}

    def decimal(cents: int) -> Decimal:
        value = decimals.get(cents)
        if value is None:
            value = decimals[cents] = Decimal(cents).scaleb(-2)
        return value

    quantities = {q: Decimal(q).quantize(Decimal("0.001")) for q in np.unique(data.line_quantity).tolist()}
    skus = {s: (sku_code(s), sku_name(s), CATEGORIES[s % len(CATEGORIES)]) for s in np.unique(data.line_sku).tolist()}
    line_orders = np.repeat(np.arange(data.orders), np.diff(data.line_start))
    line_no = np.arange(data.lines) - data.line_start[line_orders] + 1
    amounts = data.line_quantity * data.line_cents
    totals = np.add.reduceat(amounts, data.line_start[:-1]).tolist()
    lines = []
    fingerprint_items = []
    for i, (o, n, sku, q, cents, amount) in enumerate(
        zip(line_orders.tolist(), line_no.tolist(), data.line_sku.tolist(), data.line_quantity.tolist(),
            data.line_cents.tolist(), amounts.tolist(), strict=True)
    ):  # fmt: skip
        code, name, category = skus[sku]
        lines.append((i + 1, o + 1, n, code, name, category, quantities[q], decimal(cents), decimal(amount)))
        fingerprint_items.append([code, name, category, str(quantities[q]), money(cents)])
    purchases = []
    starts = data.line_start.tolist()
    for o, (customer, epoch, channel, store) in enumerate(
        zip(data.order_customer.tolist(), data.order_epoch.tolist(), data.order_channel.tolist(),
            data.order_store.tolist(), strict=True)
    ):  # fmt: skip
        at = dt.datetime.fromtimestamp(epoch, dt.UTC)
        customer_id, store_id = customer_ids[customer], store_code(channel, store)
        canonical = [str(customer_id), at.isoformat(), CHANNELS[channel], store_id, "CNY",
                     fingerprint_items[starts[o] : starts[o + 1]]]  # fmt: skip
        fingerprint = hashlib.sha256(orjson.dumps(canonical)).hexdigest()
        purchases.append((o + 1, order_id(o), customer_id, at, CHANNELS[channel], store_id, "CNY",
                          decimal(totals[o]), fingerprint, now))  # fmt: skip
    verify_sample(data, purchases, lines, customer_ids)

    connection = await asyncpg.connect(asyncpg_url(url))
    try:
        await check_copy_columns(connection)
        async with connection.transaction():
            for table, records in (
                ("customers", customers),
                ("customer_events", events),
                ("purchases", purchases),
                ("purchase_lines", lines),
            ):
                started = time.perf_counter()
                await connection.copy_records_to_table(table, records=records, columns=list(COPY_COLUMNS[table]))
                log(f"  COPY {table}: {len(records):,} rows in {time.perf_counter() - started:.1f} s")
            for table, column in (("purchases", "id"), ("purchase_lines", "id")):
                await connection.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), (SELECT max({column}) FROM {table}))"
                )
    finally:
        await connection.close()


def verify_sample(
    data: Synthetic, purchases: list[tuple[Any, ...]], lines: list[tuple[Any, ...]], ids: list[uuid.UUID]
) -> None:
    """The COPY rows of a sample of orders must equal what the product computes from the same order bodies."""
    for o in np.linspace(0, data.orders - 1, 200).astype(np.int64).tolist():
        body = order_body(data, o)
        body["customer_id"] = str(ids[int(data.order_customer[o])])
        del body["card_number"]
        order = PurchaseCreate.model_validate(body)
        row = purchases[o]
        total = sum((i.quantity * i.unit_price).quantize(Decimal("0.01")) for i in order.items)
        if (row[1], row[3], row[7], row[8]) != (order.order_id, order.purchased_at, total, order_fingerprint(order)):
            raise RuntimeError(f"the COPY row of order {row[1]} differs from the product's computation")
        got = [line[3:8] for line in lines[int(data.line_start[o]) : int(data.line_start[o + 1])]]
        want = [(i.sku, i.name, i.category, i.quantity, i.unit_price) for i in order.items]
        if got != want:
            raise RuntimeError(f"the COPY lines of order {row[1]} differ from the order body")


# ---------------------------------------------------------------------------------------------- main


async def bench_synthetic(url: str, args: argparse.Namespace) -> Run:
    run = Run(f"synthetic (seed {args.seed})", "PostgreSQL", target=TARGET_SECONDS)
    log(f"synthetic: generating {args.customers:,} customers, ~{args.lines:,} lines")
    started = time.perf_counter()
    data = synthesize(args.customers, args.lines, SYNTHETIC_AS_OF, args.seed)
    log(f"synthetic: {data.orders:,} orders, {data.lines:,} lines generated in {time.perf_counter() - started:.1f} s")
    log("synthetic: migrating")
    await migrate(url)
    log(f"synthetic: loading via {args.synthetic_load}")
    start = time.perf_counter()
    if args.synthetic_load == "copy":
        await copy_synthetic(url, data)
    else:
        await import_via_service(url, *synthetic_for_service(data))
    await analyze(url)
    run.load_seconds = time.perf_counter() - start
    run.customers, run.orders, run.lines = await counts(url)
    log(f"synthetic: loaded in {run.load_seconds:.1f} s; refreshing as of {SYNTHETIC_AS_OF.isoformat()}")
    await refresh_twice(run, url, SYNTHETIC_AS_OF)
    return run


def machine() -> dict[str, str]:
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1])
        memory = f"{kib / 1024**2:.0f} GiB"
    facts = machine_facts()
    return {"nproc": facts["nproc"], "CPU": facts["cpu"], "memory": memory, "Python": facts["python"],
            "SQLite": sqlite3.sqlite_version}  # fmt: skip


async def server_version(admin_url: str) -> str:
    connection = await asyncpg.connect(admin_url)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


def seconds(refreshes: list[Refresh], n: int) -> str:
    return f"{refreshes[n].seconds:.2f}" if len(refreshes) > n else "—"


def calls(statement: Statement) -> str:
    text = f"{statement.calls:,} call{'' if statement.calls == 1 else 's'}"
    return text if statement.rows == statement.calls else f"{text}, {statement.rows:,} rows"


def report(runs: list[Run], info: dict[str, str], command: str, total: float) -> str:
    out = [
        "| data set | backend | customers | orders | lines | load s | refresh s (1st) | refresh s (2nd) | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        target = "—"
        if run.target is not None and run.refreshes:
            worst = max(r.seconds for r in run.refreshes)
            target = f"< {run.target:.0f} s {'met' if worst < run.target else 'MISSED'}"
        out.append(
            f"| {run.dataset} | {run.backend} | {run.customers:,} | {run.orders:,} | {run.lines:,} | "
            f"{run.load_seconds:.1f} | {seconds(run.refreshes, 0)} | {seconds(run.refreshes, 1)} | {target} |"
        )
    stage_names = list(dict.fromkeys(s for run in runs for r in run.refreshes for s in r.stages))
    out += [
        "",
        "Refresh stages, seconds (from the progress callback):",
        "",
        "| data set | backend | run | " + " | ".join(stage_names) + " | total |",
        "|---|---|---|" + "---:|" * (len(stage_names) + 1),
    ]
    for run in runs:
        for n, refresh in enumerate(run.refreshes, start=1):
            cells = " | ".join(f"{refresh.stages.get(s, 0.0):.2f}" for s in stage_names)
            out.append(f"| {run.dataset} | {run.backend} | {n} | {cells} | {refresh.seconds:.2f} |")
    out += ["", "Statements (wall time around the driver call, summed per kind):", ""]
    for run in runs:
        for n, refresh in enumerate(run.refreshes, start=1):
            ranked = sorted(refresh.statements.items(), key=lambda item: -item[1].seconds)
            listed = "; ".join(f"{label} {s.seconds:.2f} s ({calls(s)})" for label, s in ranked)
            outside = refresh.seconds - sum(s.seconds for s in refresh.statements.values())
            out.append(f"- {run.dataset}, {run.backend}, run {n}: {listed}; outside the driver {outside:.2f} s")
    out += ["", "Refresh results (stats):", ""]
    for run in runs:
        for n, refresh in enumerate(run.refreshes, start=1):
            out.append(f"- {run.dataset}, {run.backend}, run {n}: `{json.dumps(refresh.stats)}`")
    out += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "", f"Command: `{command}`"]
    out.append(f"Whole benchmark: {total:.0f} s wall time.")
    return "\n".join(out)


async def main(args: argparse.Namespace) -> list[Run]:
    task = asyncio.current_task()
    if task is not None:  # SIGTERM: cancel, so the throw-away databases are still dropped on the way out
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    runs: list[Run] = []
    if not args.skip_cdnow:
        cdnow = cdnow_orders(fetch_cdnow_master())
        async with throwaway_postgres(args.pg, "cdnow") as url:
            runs.append(await bench_cdnow(url, "PostgreSQL", cdnow))
        if not args.skip_sqlite:
            with tempfile.TemporaryDirectory(prefix="value-bench-") as folder:
                runs.append(await bench_cdnow(f"sqlite+aiosqlite:///{folder}/cdnow.db", "SQLite", cdnow))
    async with throwaway_postgres(args.pg, "synthetic") as url:
        runs.append(await bench_synthetic(url, args))
    return runs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="asyncpg URL of a database on the server where throw-away databases are created",
    )
    parser.add_argument("--customers", type=int, default=100_000, help="synthetic customers")
    parser.add_argument("--lines", type=int, default=1_000_000, help="synthetic order lines (about)")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the synthetic data")
    parser.add_argument("--skip-sqlite", action="store_true", help="no CDNOW run on SQLite")
    parser.add_argument("--skip-cdnow", action="store_true", help="synthetic data only")
    parser.add_argument(
        "--synthetic-load",
        choices=["copy", "service"],
        default="copy",
        help="load synthetic data with COPY (default) or through register_customers/import_purchases",
    )
    return parser.parse_args(argv)


def cli() -> None:
    args = parse_args()
    command = shlex.join([os.path.relpath(sys.executable), *sys.argv])
    started = time.perf_counter()
    info = machine()
    info["PostgreSQL"] = asyncio.run(server_version(args.pg))
    runs = asyncio.run(main(args))
    print(report(runs, info, command, time.perf_counter() - started))


if __name__ == "__main__":
    cli()
