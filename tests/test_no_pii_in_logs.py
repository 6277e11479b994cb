"""No personal data in the services' logs: a customer's name, phone and e-mail go through every kind of
call — created, searched, read, updated, a duplicate refused, a bad request, a complaint, a recovery plan,
recommendations, an erasure — and none of them appears in any service's log afterwards."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from conftest import RunningService


def test_personal_data_never_reaches_the_logs(
    customer_api: RunningService,
    complaint_api: RunningService,
    recommend_api: RunningService,
    customers: httpx.Client,
    complaints: httpx.Client,
    recommendations: httpx.Client,
) -> None:
    if customer_api.log_path is None or complaint_api.log_path is None or recommend_api.log_path is None:
        pytest.skip("reads the logs of services it started")
    tag = uuid.uuid4().int
    name, phone = f"隐私测试{tag % 10_000:04d}号", f"138{tag % 100_000_000:08d}"
    email, street = f"privacy.{tag % 10**9}@example.com", f"南京西路{tag % 100_000}号"
    address = {"province": "上海市", "city": "上海市", "district": "静安区", "street": street}
    secrets = [name, phone, email, street]

    made = customers.post("/v1/customers", json={"name": name, "phone": phone, "email": email, "address": address})
    assert made.status_code == 201, made.text
    who = made.json()["id"]
    assert customers.post("/v1/customers", json={"name": name, "phone": phone}).status_code == 409
    assert customers.get("/v1/customers", params={"q": phone}).status_code == 200
    assert customers.get("/v1/customers", params={"q": email}).status_code == 200
    assert customers.post("/v1/customers", json={"name": name, "email": "not-an-email " + email}).status_code == 422
    moved = {**address, "street": street + "1楼"}
    assert (
        customers.patch(f"/v1/customers/{who}", json={"address": moved}, headers={"If-Match": '"1"'}).status_code == 200
    )
    order = {"order_id": f"PII-{tag % 10**12}", "customer_id": who, "purchased_at": "2026-11-01T10:00:00+08:00",
             "items": [{"sku": "PII-SKU", "name": "牛奶", "quantity": "1", "unit_price": "9.90"}]}  # fmt: skip
    assert customers.post("/v1/purchases", json=order).status_code == 201
    body = {"customer_id": who, "channel": "phone", "category": "service_attitude", "severity": "high",
            "subject": f"{name}投诉", "description": f"请回电 {phone}，或发邮件到 {email}"}  # fmt: skip
    complaint = complaints.post("/v1/complaints", json=body)
    assert complaint.status_code == 201, complaint.text
    complaints.post(f"/v1/complaints/{complaint.json()['id']}/answer", json={"message": f"已致电 {phone}"})
    complaints.post(f"/v1/complaints/{complaint.json()['id']}/close", json={})
    callback = {"name": name, "phone": phone, "topic": "回电"}
    assert complaints.post("/v1/callbacks", json=callback).status_code in (201, 422)
    recommendations.post("/v1/sync")
    recommendations.get(f"/v1/customers/{who}/recommendations")
    assert customers.delete(f"/v1/customers/{who}").status_code in (200, 204)
    time.sleep(1.5)  # background passes (feeds, recovery, contact history) run meanwhile

    for service in (customer_api, complaint_api, recommend_api):
        text = "\n".join(service.log_lines())
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{service.name} logged personal data: {leaked}"
