"""The load mix bench/load_test.py runs with locust: what a store's systems do all day, against all three
services at once — profile reads, orders from the tills, complaints taken and moved on, recommendations and
basket completion in the app.

Service URLs, the key and the seeded customer ids come from the environment that load_test.py sets.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import uuid

from locust import HttpUser, constant_throughput, task

CUSTOMER_API = os.environ["LOAD_CUSTOMER_API"]
COMPLAINT_API = os.environ["LOAD_COMPLAINT_API"]
RECOMMEND_API = os.environ["LOAD_RECOMMEND_API"]
CUSTOMERS = os.environ["LOAD_CUSTOMERS"].split(",")
SKUS = [f"LOAD-{i:04d}" for i in range(200)]
RATE = float(os.environ.get("LOAD_USER_RATE", "0"))  # requests a second per simulated user; 0 = as fast as possible


class StoreSystems(HttpUser):
    host = CUSTOMER_API
    wait_time = constant_throughput(RATE) if RATE > 0 else (lambda self: 0)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {os.environ['LOAD_KEY']}"
        self.open_complaints: list[str] = []

    @task(35)
    def read_profile(self) -> None:
        self.client.get(f"{CUSTOMER_API}/v1/customers/{random.choice(CUSTOMERS)}", name="GET /v1/customers/{id}")

    @task(20)
    def record_order(self) -> None:
        items = [
            {"sku": sku, "name": f"商品 {sku}", "category": f"品类{int(sku[-4:]) % 12}", "quantity": "1",
             "unit_price": "12.50"}
            for sku in random.sample(SKUS, random.randint(1, 4))
        ]  # fmt: skip
        order = {"order_id": f"LOAD-{uuid.uuid4().hex}", "customer_id": random.choice(CUSTOMERS),
                 "purchased_at": dt.datetime.now(dt.UTC).isoformat(), "channel": "store", "items": items}  # fmt: skip
        self.client.post(f"{CUSTOMER_API}/v1/purchases", json=order, name="POST /v1/purchases")

    @task(25)
    def recommendations(self) -> None:
        who = random.choice(CUSTOMERS)
        self.client.get(
            f"{RECOMMEND_API}/v1/customers/{who}/recommendations?limit=10",
            name="GET /v1/customers/{id}/recommendations",
        )

    @task(5)
    def complete_basket(self) -> None:
        body = {"items": random.sample(SKUS, 2), "customer_id": random.choice(CUSTOMERS), "limit": 5}
        self.client.post(f"{RECOMMEND_API}/v1/baskets/complete", json=body, name="POST /v1/baskets/complete")

    @task(10)
    def take_complaint(self) -> None:
        body = {"customer_id": random.choice(CUSTOMERS), "channel": "app", "category": "delivery",
                "severity": random.choice(["low", "medium"]), "subject": "送货延误",
                "description": "约好上午送达，下午还没到。"}  # fmt: skip
        response = self.client.post(f"{COMPLAINT_API}/v1/complaints", json=body, name="POST /v1/complaints")
        if response.status_code == 201:
            self.open_complaints.append(response.json()["id"])

    @task(5)
    def move_complaint_on(self) -> None:
        if not self.open_complaints:
            return
        complaint = self.open_complaints.pop()
        self.client.post(
            f"{COMPLAINT_API}/v1/complaints/{complaint}/answer", json={"message": "已为您加急配送，今天下午送达。"},
            name="POST /v1/complaints/{id}/answer",
        )  # fmt: skip
        self.client.post(f"{COMPLAINT_API}/v1/complaints/{complaint}/close", json={},
                         name="POST /v1/complaints/{id}/close")  # fmt: skip
