"""`customer-api` command line: migrations, serving, and CSV imports with a progress bar."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import io
import signal
import subprocess
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from crm_kit.cli import add_service_commands
from crm_kit.db import Database
from crm_kit.errors import ProblemError
from crm_kit.phones import normalize_phone
from customer_api.config import Settings
from customer_api.customers.schemas import CustomerCreate
from customer_api.customers.service import live_ids, register_customers
from customer_api.main import ALEMBIC_INI
from customer_api.purchases.schemas import BulkRowResult
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
    interrupted: bool = False  # Ctrl-C: the batches after the one being written are left for a second run

    def show(self, what: str) -> None:
        console.print(
            f"[bold]{what}[/]: {self.imported} imported, {self.existing} already present, {len(self.rejected)} rejected"
        )
        if self.rejected:
            table = Table("row", "reason", title="Rejected rows")
            for row, reason in sorted(self.rejected)[:50]:  # in file order, whichever step refused them
                table.add_row(str(row), reason)
            console.print(table)
            if len(self.rejected) > 50:
                console.print(f"… and {len(self.rejected) - 50} more")


def _run_import(what: str, work: Callable[[ImportReport], Coroutine[Any, Any, None]]) -> None:
    """Run an import and show its report; exit 1 if rows were rejected. Ctrl-C stops it after the batch being
    written, which commits on its own, so the report counts what is stored and a second run stores the rest
    (exit 130); a second Ctrl-C stops it at once."""
    report = ImportReport()

    def stop(_signal: int, _frame: object) -> None:
        if report.interrupted:
            raise KeyboardInterrupt
        report.interrupted = True
        console.print("stopping after the batch being written (Ctrl-C again to stop at once)")

    in_main_thread = threading.current_thread() is threading.main_thread()  # only there can it take signals
    previous = signal.signal(signal.SIGINT, stop) if in_main_thread else None
    try:
        asyncio.run(work(report))
    finally:
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
    if report.interrupted:
        report.show(f"{what} (interrupted)")
        console.print("Run the same command again to import the rest: what is stored counts as already present.")
        raise typer.Exit(130)
    report.show(what)
    if report.rejected:  # a script or cron job notices: the rows listed above need correcting
        raise typer.Exit(1)


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


# What CSV files from tills and spreadsheets come in: UTF-8 (with or without Excel's byte-order mark), or GB18030,
# the superset of GBK that Excel on Chinese Windows saves.
ENCODINGS = ("utf-8-sig", "gb18030")
Record = tuple[int, dict[str, str | None]]  # a CSV record and the line it ends on


def _rows(path: Path, columns: Collection[str]) -> list[Record]:
    """The file's records, each with the line it ends on (as an editor numbers them, blank lines counted). A file
    whose header is missing, names a column twice or none of `columns` is refused whole, not row by row."""
    data = path.read_bytes()
    for encoding in ENCODINGS:
        try:
            reader = csv.DictReader(io.StringIO(data.decode(encoding), newline=""))
        except UnicodeDecodeError:
            continue
        header = [name.strip() for name in reader.fieldnames or []]
        if not any(header):
            raise typer.BadParameter(f"{path} has no header row: {', '.join(columns)}", param_hint="PATH")
        if twice := sorted({name for name in header if name and header.count(name) > 1}):
            raise typer.BadParameter(f"{path} names the column {', '.join(twice)} twice", param_hint="PATH")
        if not set(header) & set(columns):
            raise typer.BadParameter(
                f"{path}'s header names none of the columns: {', '.join(columns)}", param_hint="PATH"
            )
        return [(reader.line_num, row) for row in reader]
    raise typer.BadParameter(f"{path} is neither UTF-8 nor GB18030 (GBK) text; save it as UTF-8", param_hint="PATH")


def _blank_to_none(row: dict[str, str | None]) -> dict[str, Any]:
    # A record shorter than the header leaves its last fields None: the same as blank.
    return {k.strip(): ((v or "").strip() or None) for k, v in row.items() if k}


def _unreadable(raw: dict[Any, Any]) -> str | None:
    """Why a record cannot be taken as its header names its fields, if so. Fields beyond the header (csv keeps them
    under None) mean the values moved: a comma in an unquoted value, or a decimal comma ("59,50"), would otherwise
    store the wrong value in the wrong column. NUL is text PostgreSQL cannot store."""
    extra = [v for v in raw.get(None) or [] if v.strip()]
    if extra:
        return f"{len(extra)} more field(s) than the header ({', '.join(extra)}): a comma in a value not quoted?"
    if any("\x00" in v for v in raw.values() if isinstance(v, str)):
        return "text may not contain the NUL character (U+0000)"
    return None


require_schema = add_service_commands(
    app, alembic_ini=ALEMBIC_INI, settings=Settings, factory="customer_api.main:create_app", default_port=8001
)


CUSTOMER_COLUMNS = (*CustomerCreate.model_fields, "external_id")


def _customer_body(row: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in row.items() if v is not None and k not in {"tags", "external_id"}}
    if row.get("tags"):
        body["tags"] = [t for t in row["tags"].split("|") if t]
    if row.get("external_id"):
        body["attributes"] = {"external_id": row["external_id"]}
    return body


async def _import_customers(path: Path, report: ImportReport) -> None:
    settings = Settings()
    database = Database(settings.resolved_database_url)
    rows = _rows(path, CUSTOMER_COLUMNS)
    try:
        with _progress() as progress:
            task = progress.add_task("customers", total=len(rows))
            for start in range(0, len(rows), CUSTOMER_BATCH):
                if report.interrupted:
                    break
                valid: list[tuple[int, CustomerCreate]] = []
                for number, raw in rows[start : start + CUSTOMER_BATCH]:
                    if fault := _unreadable(raw):
                        report.rejected.append((number, fault))
                        continue
                    try:
                        valid.append((number, CustomerCreate.model_validate(_customer_body(_blank_to_none(raw)))))
                    except ValidationError as exc:
                        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                        report.rejected.append((number, reasons))
                async with database.session_scope() as session:
                    outcomes = await register_customers(
                        session, rows=[data for _, data in valid], region=settings.default_region
                    )
                for (number, _), outcome in zip(valid, outcomes, strict=True):
                    if outcome.status == "created":
                        report.imported += 1
                    elif outcome.status == "existing":
                        report.existing += 1
                    else:
                        report.rejected.append((number, outcome.reason or "invalid"))
                progress.advance(task, min(CUSTOMER_BATCH, len(rows) - start))
    finally:
        await database.dispose()


@app.command("import-customers")
def import_customers_command(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV with a header row")],
) -> None:
    """Import customers from CSV: name, phone, email, type, gender, birthday, card_number, owner_id, tags (a|b).

    A row whose phone, email or card number is already on file counts as present and is not duplicated; a row
    with none of them is rejected, since a second import could not recognise it.
    """
    require_schema()
    _run_import("customers", lambda report: _import_customers(path, report))


# What an order's rows share. The first row gives them; a later row may leave them blank, but one that gives other
# values is a line of another order (another customer's card, an order id a till reused on another day), which
# would otherwise be stored as part of this one.
ORDER_FIELDS = ("purchased_at", "channel", "store_id", "currency")
CUSTOMER_REFS = ("customer_id", "card_number", "phone")


def _same(field: str, value: str | None) -> object:
    """A value of an order field as compared between the rows of one order: times by the moment they name."""
    if field == "purchased_at" and value is not None:
        with contextlib.suppress(ValueError):
            return dt.datetime.fromisoformat(value)
    return value


PURCHASE_COLUMNS = ("order_id", *CUSTOMER_REFS, *ORDER_FIELDS, "sku", "name", "category", "quantity", "unit_price")


def _orders(rows: list[Record], report: ImportReport) -> Iterator[tuple[int, dict[str, Any]]]:
    """Group line rows by order_id, keeping the first row number of each order. A row without an order_id is
    rejected: the id is what recognises the order when the file is imported again. An order with a row that cannot
    be read, or that gives other order fields than the first, is rejected whole: part of it stored would be a
    conflict once the file is corrected."""
    grouped: dict[str, list[tuple[int, dict[str, Any], str | None]]] = defaultdict(list)
    for number, raw in rows:
        row = _blank_to_none(raw)
        if row.get("order_id") is None:
            report.rejected.append((number, "order_id is missing: it is what recognises the order on a second import"))
            continue
        grouped[row["order_id"]].append((number, row, _unreadable(raw)))
    for order_id, lines in grouped.items():
        number, head, _ = lines[0]
        faults = [(n, fault) for n, _, fault in lines if fault] + [
            (n, f"gives another {' and '.join(differ)} than line {number} of the order")
            for n, line, _ in lines[1:]
            if (differ := [f for f in ORDER_FIELDS if line.get(f) and _same(f, line[f]) != _same(f, head.get(f))])
        ]
        if faults:
            report.rejected += [(n, f"{order_id}: {fault}; the order is not imported") for n, fault in faults]
            continue
        yield (
            number,
            {
                "order_id": order_id,
                "customer_refs": [
                    (n, {k: line.get(k) for k in CUSTOMER_REFS})
                    for n, line, _ in lines
                    if any(line.get(k) for k in CUSTOMER_REFS)
                ],
                "purchased_at": head.get("purchased_at"),
                "channel": head.get("channel") or "store",
                "store_id": head.get("store_id"),
                "currency": head.get("currency") or "CNY",
                "items": [
                    {k: line.get(k) for k in ("sku", "name", "category", "quantity", "unit_price")}
                    for _, line, _ in lines
                ],
            },
        )


async def _resolve_customers(
    database: Database, orders: list[tuple[int, dict[str, Any]]], region: str, report: ImportReport
) -> list[tuple[int, dict[str, Any]]]:
    """Replace each order's customer references (id, card number in any case, or phone; on any of its rows) by a
    customer id. An order whose card number or phone is nobody's on file, or whose rows name different customers,
    is rejected as such."""
    refs = [ref for _, o in orders for _, ref in o["customer_refs"]]
    cards = {ref["card_number"].upper() for ref in refs if ref["card_number"]}
    phones: dict[str, str] = {}
    for ref in refs:
        raw = ref["phone"]
        if raw and raw not in phones:
            try:
                phones[raw] = normalize_phone(raw, region)
            except ProblemError:
                phones[raw] = ""
    async with database.session_scope(read_only=True) as session:
        by_card = await live_ids(session, "card_number", cards)
        by_phone = await live_ids(session, "phone", (p for p in phones.values() if p))

    def customer(ref: dict[str, str | None]) -> str | None:
        if ref["customer_id"] is not None:
            with contextlib.suppress(ValueError):
                return str(uuid.UUID(ref["customer_id"]))
            return ref["customer_id"]  # not an id: the order's validation names it
        found = by_card.get(ref["card_number"].upper()) if ref["card_number"] else None
        if found is None and ref["phone"]:
            found = by_phone.get(phones[ref["phone"]])
        return None if found is None else str(found)

    resolved = []
    for number, o in orders:
        named = [(n, customer(ref)) for n, ref in o.pop("customer_refs")]
        unknown = next((n for n, customer_id in named if customer_id is None), None)
        if unknown is not None:
            report.rejected.append((unknown, f"{o['order_id']}: no customer on file has its card_number or phone"))
            continue
        other = next((n for n, customer_id in named if customer_id != named[0][1]), None)
        if other is not None:
            report.rejected.append(
                (other, f"{o['order_id']}: names another customer than line {named[0][0]}; the order is not imported")
            )
            continue
        o["customer_id"] = named[0][1] if named else None
        resolved.append((number, o))
    return resolved


async def _import_purchases(path: Path, report: ImportReport) -> None:
    settings = Settings()
    database = Database(settings.resolved_database_url)
    orders = list(_orders(_rows(path, PURCHASE_COLUMNS), report))
    try:
        orders = await _resolve_customers(database, orders, settings.default_region, report)
        with _progress() as progress:
            task = progress.add_task("orders", total=len(orders))
            for start in range(0, len(orders), ORDER_BATCH):
                if report.interrupted:
                    break
                batch = orders[start : start + ORDER_BATCH]
                async with database.session_scope() as session:
                    result = await import_purchases(session, rows=[o for _, o in batch])
                for outcome in result.results:
                    if outcome.status == "created":
                        report.imported += 1
                    elif outcome.status == "existing":
                        report.existing += 1
                    else:
                        report.rejected.append((batch[outcome.index][0], f"{outcome.order_id}: {_reason(outcome)}"))
                progress.advance(task, len(batch))
    finally:
        await database.dispose()


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
    require_schema()
    _run_import("purchases", lambda report: _import_purchases(path, report))


@app.command("import-cdnow")
def import_cdnow_command(
    path: Annotated[
        Path | None, typer.Option(help="CDNOW_master.txt; by default taken from the lifetimes wheel on PyPI")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Import only the first N customers")] = None,
) -> None:
    """Import the CDNOW master data set (23,570 customers, 69,659 orders, 1997–1998, in USD) as demo data.

    Customers get generated Chinese names and mainland phone numbers and the card number CDNOW<id>, so a
    second run recognises them. Without --path the file is read from the `lifetimes` 0.11.3 wheel, downloaded
    from the package index with pip into ~/.cache/crm-demo (lifetimes itself is not installed or imported).
    """
    from customer_api.demo import cdnow_orders, fetch_cdnow_master

    require_schema()
    try:
        source = path or fetch_cdnow_master()
    except subprocess.CalledProcessError:
        typer.echo("could not download the CDNOW file: pip says why above; or give --path CDNOW_master.txt", err=True)
        raise typer.Exit(1) from None
    try:
        customers, orders = cdnow_orders(source, limit=limit)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{source} is not the CDNOW master file (customer id, date, CDs, dollars on each line): {exc}",
            param_hint="--path",
        ) from None
    _run_import("CDNOW", lambda report: _import_demo(customers, orders, report))


async def _import_demo(customers: list[CustomerCreate], orders: list[dict[str, Any]], report: ImportReport) -> None:
    settings = Settings()
    database = Database(settings.resolved_database_url)
    try:
        with _progress() as progress:
            task = progress.add_task("customers", total=len(customers))
            ids: dict[str, uuid.UUID] = {}
            for start in range(0, len(customers), CUSTOMER_BATCH * 4):
                if report.interrupted:
                    break
                batch = customers[start : start + CUSTOMER_BATCH * 4]
                async with database.session_scope() as session:
                    outcomes = await register_customers(session, rows=batch, region=settings.default_region)
                for data, outcome in zip(batch, outcomes, strict=True):
                    if outcome.customer_id is not None and data.card_number:
                        ids[data.card_number] = outcome.customer_id
                progress.advance(task, len(batch))
            task = progress.add_task("orders", total=len(orders))
            for start in range(0, len(orders), ORDER_BATCH * 2):
                if report.interrupted:
                    break
                batch = [_for_customer(o, ids) for o in orders[start : start + ORDER_BATCH * 2]]
                async with database.session_scope() as session:
                    result = await import_purchases(session, rows=batch)
                report.imported += result.created
                report.existing += result.existing
                report.rejected += [
                    (start + r.index, _reason(r)) for r in result.results if r.status in ("conflict", "invalid")
                ]
                progress.advance(task, len(batch))
    finally:
        await database.dispose()


def _for_customer(order: dict[str, Any], ids: dict[str, uuid.UUID]) -> dict[str, Any]:
    """The order with its card number replaced by the customer's id."""
    body = {k: v for k, v in order.items() if k != "card_number"}
    body["customer_id"] = str(ids[order["card_number"]])
    return body


def _reason(outcome: BulkRowResult) -> str:
    return outcome.detail or "; ".join(f"{e['field']}: {e['message']}" for e in outcome.errors or []) or outcome.status


@app.command("clv-holdout")
def clv_holdout_command(
    calibration_end: Annotated[str, typer.Option(help="Last day of the calibration period (YYYY-MM-DD)")],
    holdout_end: Annotated[str, typer.Option(help="Last day of the holdout period (YYYY-MM-DD)")],
) -> None:
    """Fit BG/NBD on purchases up to the calibration end; compare predicted and actual repeat purchase days in
    the holdout, per calibration frequency and in total. Counts purchase days in the business time zone."""
    from customer_api.analytics.service import holdout_check, observe

    require_schema()
    settings = Settings()
    last = dt.date.fromisoformat(holdout_end)
    as_of = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=ZoneInfo(settings.business_timezone))

    async def run() -> dict[str, Any] | None:
        database = Database(settings.resolved_database_url)
        try:
            observation = await observe(database, settings, as_of)
        finally:
            await database.dispose()
        return holdout_check(
            observation.purchases,
            len(observation.ids),
            calibration_last_day=dt.date.fromisoformat(calibration_end).toordinal(),
            holdout_last_day=last.toordinal(),
            unit_days=settings.clv_time_unit_days,
        )

    check = asyncio.run(run())
    if check is None:
        console.print("[red]too few customers with repeat purchases in the calibration period to fit the model[/]")
        raise typer.Exit(1)
    bg = check["bgnbd"]
    console.print(
        f"BG/NBD on {check['customers']} customers, calibration to {check['calibration_end']}, time unit "
        f"{settings.clv_time_unit_days} days: r={bg['r']:.4f} alpha={bg['alpha']:.4f} a={bg['a']:.4f} b={bg['b']:.4f}"
    )
    table = Table("repeat purchases in calibration", "customers", "predicted mean", "actual mean",
                  title=f"Holdout to {check['holdout_end']}")  # fmt: skip
    for group in check["by_frequency"]:
        table.add_row(group["frequency"], str(group["customers"]), f"{group['predicted_mean']:.3f}",
                      f"{group['actual_mean']:.3f}")  # fmt: skip
    console.print(table)
    console.print(
        f"total repeat purchase days in the holdout: predicted {check['predicted_repeat_purchases']:.1f}, "
        f"actual {check['actual_repeat_purchases']}"
    )
