"""Demo data from a real retail data set: the CDNOW master file (Fader & Hardie's CD retailer, 1997–1998).

The file ships inside the `lifetimes` 0.11.3 wheel on PyPI; it is taken from there with pip, which reads
only from the package index, and unpacked into a cache folder. Customers get Chinese names (Faker, seeded,
so every run makes the same ones), mainland mobile numbers and the card number CDNOW<id>.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from faker import Faker

from customer_api.customers.schemas import CustomerCreate

WHEEL = "lifetimes==0.11.3"
MEMBER = "lifetimes/datasets/CDNOW_master.txt"
MOBILE_PREFIXES = ["139", "138", "137", "136", "135", "188", "187", "186", "159", "158", "150", "151", "189", "180"]


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "crm-demo"


def fetch_cdnow_master() -> Path:
    """The path of CDNOW_master.txt, downloading the wheel that carries it on first use."""
    target = cache_dir() / "CDNOW_master.txt"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", WHEEL, "-d",
         str(target.parent)],
        check=True,
    )  # fmt: skip
    wheel = next(target.parent.glob("[Ll]ifetimes-0.11.3-*.whl"))
    partial = target.with_suffix(".part")  # renamed once whole: a run stopped midway leaves no short file behind
    with zipfile.ZipFile(wheel) as archive:
        partial.write_bytes(archive.read(MEMBER))
    partial.replace(target)
    return target


def cdnow_orders(path: Path, *, limit: int | None = None) -> tuple[list[CustomerCreate], list[dict[str, Any]]]:
    """Customers and their orders (one line each: the CDs bought), orders keyed to the customer's card number."""
    lines: dict[int, list[tuple[str, int, str]]] = defaultdict(list)
    for row in path.read_text().splitlines()[1:]:
        customer, date, cds, dollars = row.split()
        lines[int(customer)].append((date, int(cds), dollars))
    fake = Faker("zh_CN")
    fake.seed_instance(1997)
    customers: list[CustomerCreate] = []
    orders: list[dict[str, Any]] = []
    for position, cdnow_id in enumerate(sorted(lines)[:limit]):
        card = f"CDNOW{cdnow_id:05d}"
        customers.append(
            CustomerCreate(
                name=fake.name(),
                phone=f"{MOBILE_PREFIXES[position % len(MOBILE_PREFIXES)]}{cdnow_id:08d}",
                card_number=card,
                gender="unknown",
                tags=["CDNOW"],
                attributes={"source": "CDNOW master", "cdnow_id": cdnow_id},
            )
        )
        same_day: dict[str, int] = defaultdict(int)
        for date, cds, dollars in lines[cdnow_id]:
            same_day[date] += 1
            day = dt.datetime.strptime(date, "%Y%m%d")
            orders.append(
                {
                    "order_id": f"{card}-{date}-{same_day[date]}",
                    "card_number": card,
                    "purchased_at": f"{day:%Y-%m-%d}T12:00:00+08:00",
                    "channel": "online",
                    "currency": "USD",
                    "items": [
                        {
                            "sku": "CDNOW-CD",
                            "name": f"音乐CD ×{cds}",
                            "category": "音像制品",
                            "quantity": "1",
                            "unit_price": dollars,
                        }
                    ],
                }
            )
    return customers, orders
