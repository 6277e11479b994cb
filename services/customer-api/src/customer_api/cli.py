"""`customer-api` command line: migrations, serving, and CSV imports with a progress bar."""

from __future__ import annotations

import asyncio
import csv
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_kit.db import Database
from crm_kit.errors import ProblemError
from crm_kit.health import upgrade_database
from customer_api.config import Settings
from customer_api.customers.models import Customer
from customer_api.customers.schemas import CustomerCreate
from customer_api.customers.service import create_customer, normalize_phone
from customer_api.main import ALEMBIC_INI
from customer_api.purchases.service import import_purchases

app = typer.Typer(help="customer-api: the customer archive of the retail CRM.", no_args_is_help=True)
console = Console()

CUSTOMER_BATCH = 500
ORDER_BATCH = 2000


@dataclass
class ImportReport:
    imported: int = 0
    existing: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def show(self, what: str) -> None:
        console.print(
            f"[bold]{what}[/]: {self.imported} imported, {self.existing} already present, {len(self.rejected)} rejected"
        )
        if self.rejected:
            table = Table("row", "reason", title="Rejected rows")
            for row, reason in self.rejected[:50]:
                table.add_row(str(row), reason)
            console.print(table)
            if len(self.rejected) > 50:
                console.print(f"… and {len(self.rejected) - 50} more")


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def _blank_to_none(row: dict[str, str]) -> dict[str, Any]:
    return {k.strip(): (v.strip() or None) for k, v in row.items() if k}


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    settings = Settings()
    upgrade_database(ALEMBIC_INI, settings.resolved_database_url)
    console.print("migrations applied")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8001,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate", help="Apply migrations first")] = True,
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    if migrate_first:
        # Silently: once serving, stdout carries JSON log lines only.
        upgrade_database(ALEMBIC_INI, Settings().resolved_database_url)
    uvicorn.run(
        "customer_api.main:create_app",
        factory=True,
        host=host,
        port=port,
        access_log=False,
        proxy_headers=True,
        log_config=None,  # the app configures JSON logging for every logger, uvicorn's included
    )


def _customer_body(row: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in row.items() if v is not None and k not in {"tags", "external_id"}}
    if row.get("tags"):
        body["tags"] = [t for t in row["tags"].split("|") if t]
    if row.get("external_id"):
        body["attributes"] = {"external_id": row["external_id"]}
    return body


async def _import_customers(path: Path) -> ImportReport:
    settings = Settings()
    database = Database(settings.resolved_database_url)
    report = ImportReport()
    rows = _rows(path)
    try:
        with _progress() as progress:
            task = progress.add_task("customers", total=len(rows))
            for start in range(0, len(rows), CUSTOMER_BATCH):
                async with database.session_scope() as session:
                    for number, raw in enumerate(rows[start : start + CUSTOMER_BATCH], start=start + 2):
                        try:
                            data = CustomerCreate.model_validate(_customer_body(_blank_to_none(raw)))
                            async with session.begin_nested():
                                await create_customer(session, data=data, region=settings.default_region)
                            report.imported += 1
                        except ValidationError as exc:
                            reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                            report.rejected.append((number, reasons))
                        except ProblemError as exc:
                            if getattr(exc, "status", None) == 409:
                                report.existing += 1
                            else:
                                report.rejected.append((number, exc.detail or exc.title))
                        progress.advance(task)
    finally:
        await database.dispose()
    return report


@app.command("import-customers")
def import_customers_command(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV with a header row")],
) -> None:
    """Import customers from CSV: name, phone, email, type, gender, birthday, card_number, owner_id, tags (a|b).

    A row whose phone, email or card number is already on file counts as present and is not duplicated.
    """
    asyncio.run(_import_customers(path)).show("customers")


def _orders(rows: list[dict[str, str]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Group line rows by order_id, keeping the first row number of each order."""
    grouped: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for number, raw in enumerate(rows, start=2):
        row = _blank_to_none(raw)
        grouped[row.get("order_id") or f"<row {number}>"].append((number, row))
    for order_id, lines in grouped.items():
        number, head = lines[0]
        yield (
            number,
            {
                "order_id": order_id,
                "customer_ref": {k: head.get(k) for k in ("customer_id", "card_number", "phone")},
                "purchased_at": head.get("purchased_at"),
                "channel": head.get("channel") or "store",
                "store_id": head.get("store_id"),
                "currency": head.get("currency") or "CNY",
                "items": [
                    {k: line.get(k) for k in ("sku", "name", "category", "quantity", "unit_price")} for _, line in lines
                ],
            },
        )


async def _live_ids(session: AsyncSession, column: Any, values: set[str]) -> dict[str, uuid.UUID]:
    if not values:
        return {}
    rows = await session.execute(select(column, Customer.id).where(column.in_(values), Customer.status == "active"))
    return {value: customer_id for value, customer_id in rows}


async def _resolve_customers(database: Database, orders: list[tuple[int, dict[str, Any]]], region: str) -> None:
    """Replace each order's customer reference (id, card number or phone) by a customer id."""
    cards = {o["customer_ref"]["card_number"] for _, o in orders if o["customer_ref"]["card_number"]}
    phones: dict[str, str] = {}
    for _, o in orders:
        raw = o["customer_ref"]["phone"]
        if raw and raw not in phones:
            try:
                phones[raw] = normalize_phone(raw, region)
            except ProblemError:
                phones[raw] = ""
    async with database.session_scope(read_only=True) as session:
        by_card = await _live_ids(session, Customer.card_number, cards)
        by_phone = await _live_ids(session, Customer.phone, {p for p in phones.values() if p})
    for _, o in orders:
        ref = o.pop("customer_ref")
        customer_id: Any = ref["customer_id"]
        if customer_id is None and ref["card_number"]:
            customer_id = by_card.get(ref["card_number"])
        if customer_id is None and ref["phone"]:
            customer_id = by_phone.get(phones[ref["phone"]])
        o["customer_id"] = str(customer_id) if isinstance(customer_id, uuid.UUID) else customer_id


async def _import_purchases(path: Path) -> ImportReport:
    settings = Settings()
    database = Database(settings.resolved_database_url)
    report = ImportReport()
    orders = list(_orders(_rows(path)))
    try:
        await _resolve_customers(database, orders, settings.default_region)
        with _progress() as progress:
            task = progress.add_task("orders", total=len(orders))
            for start in range(0, len(orders), ORDER_BATCH):
                batch = orders[start : start + ORDER_BATCH]
                async with database.session_scope() as session:
                    result = await import_purchases(session, rows=[o for _, o in batch])
                for outcome in result.results:
                    if outcome.status == "created":
                        report.imported += 1
                    elif outcome.status == "existing":
                        report.existing += 1
                    else:
                        reasons = outcome.detail or "; ".join(
                            f"{e['field']}: {e['message']}" for e in outcome.errors or []
                        )
                        report.rejected.append((batch[outcome.index][0], f"{outcome.order_id}: {reasons}"))
                progress.advance(task, len(batch))
    finally:
        await database.dispose()
    return report


@app.command("import-purchases")
def import_purchases_command(
    path: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV with a header row, one line item a row")
    ],
) -> None:
    """Import purchases from CSV, one line item per row: order_id, customer_id or card_number or phone,
    purchased_at (ISO-8601 with zone), channel, store_id, sku, name, category, quantity, unit_price.

    Rows sharing an order_id form one order. Orders already stored are recognised, not duplicated.
    """
    asyncio.run(_import_purchases(path)).show("purchases")
