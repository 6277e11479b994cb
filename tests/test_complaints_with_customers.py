"""complaint-api and customer-api as real processes talking over HTTP: snapshots, tiers, unknown customers,
and a complaint taken while customer-api is down that is completed once it is back."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import RunningService, client_for, free_port, start_service, stop_service


def _phone() -> str:
    return "136" + str(uuid.uuid4().int)[:8]


def _complaint(customer_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "channel": "app",
        "category": "delivery",
        "subject": "冰箱送货延误三天",
        "description": "预约周六送货安装，至今未到，也没有人联系我。",
        "severity": "low",
        **fields,
    }


def test_a_gold_customers_complaint_is_never_below_high(customers: httpx.Client, complaints: httpx.Client) -> None:
    gold = customers.post("/v1/customers", json={"name": "黄金会员", "phone": _phone()}).json()
    assert customers.patch(f"/v1/customers/{gold['id']}", json={"tier": "gold"}).status_code == 200
    taken = complaints.post("/v1/complaints", json=_complaint(gold["id"]))
    assert taken.status_code == 201, taken.text
    body = taken.json()
    assert body["snapshot_status"] == "ok" and body["priority"] == "high"
    snapshot = body["customer_snapshot"]
    assert {k: snapshot[k] for k in ("name", "tier", "type")} == {
        "name": "黄金会员",
        "tier": "gold",
        "type": "individual",
    }
    assert snapshot["since"] == gold["created_at"]  # the profile's age: the customer's tenure
    regular = customers.post("/v1/customers", json={"name": "普通顾客", "phone": _phone()}).json()
    assert complaints.post("/v1/complaints", json=_complaint(regular["id"])).json()["priority"] == "low"


def test_a_follow_up_of_another_customers_complaint_is_refused(
    customers: httpx.Client, complaints: httpx.Client
) -> None:
    first, other = (customers.post("/v1/customers", json={"name": n, "phone": _phone()}).json() for n in "甲乙")
    earlier = complaints.post("/v1/complaints", json=_complaint(first["id"])).json()
    refused = complaints.post("/v1/complaints", json=_complaint(other["id"], follows_up=earlier["id"]))
    assert refused.status_code == 422 and refused.json()["field"] == "follows_up", refused.text
    followed = complaints.post("/v1/complaints", json=_complaint(first["id"], follows_up=earlier["id"]))
    assert followed.status_code == 201 and followed.json()["follows_up"] == earlier["id"], followed.text


def test_unknown_customers_are_refused_and_merged_ones_follow_the_survivor(
    customers: httpx.Client, complaints: httpx.Client
) -> None:
    unknown = complaints.post("/v1/complaints", json=_complaint(str(uuid.uuid4())))
    assert unknown.status_code == 422 and unknown.json()["field"] == "customer_id"
    survivor = customers.post("/v1/customers", json={"name": "林静", "phone": _phone()}).json()
    duplicate = customers.post("/v1/customers", json={"name": "林静(重复)", "phone": _phone()}).json()
    customers.post(f"/v1/customers/{duplicate['id']}/merge", json={"target_id": survivor["id"]})
    taken = complaints.post("/v1/complaints", json=_complaint(duplicate["id"])).json()
    assert taken["customer_id"] == survivor["id"] and taken["customer_snapshot"]["name"] == "林静"
    erased = customers.post("/v1/customers", json={"name": "要删除", "phone": _phone()}).json()
    customers.delete(f"/v1/customers/{erased['id']}")
    assert complaints.post("/v1/complaints", json=_complaint(erased["id"])).status_code == 422


@contextlib.contextmanager
def _complaint_api_before_customer_api(
    customer_api: RunningService, tmp_path: Any
) -> Iterator[tuple[httpx.Client, Callable[[], None]]]:
    """A complaint-api of its own that meets customer-api down (its port is free), a client of it, and what brings
    customer-api back on that port: a second process on the suite's customer database."""
    if customer_api.process is None or customer_api.database_url is None:
        pytest.skip("needs to start and stop services itself")
    later_port = free_port()
    complaint_api = start_service(
        "complaint-api",
        f"sqlite+aiosqlite:///{tmp_path}/complaints.db",
        tmp_path,
        {"COMPLAINT_API_CUSTOMER_API_URL": f"http://127.0.0.1:{later_port}", "COMPLAINT_API_SWEEP_SECONDS": "0.3"},
    )
    started: list[RunningService] = []

    def bring_back() -> None:
        assert customer_api.database_url is not None
        started.append(start_service("customer-api", customer_api.database_url, tmp_path, port=later_port))

    try:
        with client_for(complaint_api) as complaints:
            yield complaints, bring_back
    finally:
        stop_service(complaint_api)
        for service in started:
            stop_service(service)


def test_taken_while_customer_api_is_down_then_completed(
    customer_api: RunningService, customers: httpx.Client, tmp_path: Any
) -> None:
    gold = customers.post("/v1/customers", json={"name": "离线时投诉", "phone": _phone()}).json()
    customers.patch(f"/v1/customers/{gold['id']}", json={"tier": "gold"})
    with _complaint_api_before_customer_api(customer_api, tmp_path) as (complaints, bring_back):
        taken = complaints.post("/v1/complaints", json=_complaint(gold["id"]))
        assert taken.status_code == 201, taken.text
        assert taken.json()["snapshot_status"] == "pending" and taken.json()["priority"] == "low"
        call = complaints.post("/v1/callbacks", json={"customer_id": gold["id"], "topic": "送货时间"}).json()
        assert (call["snapshot_status"], call["priority"], call["name"]) == ("pending", "normal", None)
        # Answered and closed before anyone knows she is gold: no rule fires yet (a low-severity complaint).
        for action in ("answer", "close"):
            url = f"/v1/complaints/{taken.json()['id']}/{action}"
            body = {"message": "已安排明天送达"} if action == "answer" else {}
            assert complaints.post(url, json=body).status_code == 200
        assert complaints.get("/v1/recovery-plans", params={"customer_id": gold["id"]}).json()["items"] == []
        # A second one, rated low: a plan now, for a customer of no known tier (no call).
        rated = complaints.post("/v1/complaints", json=_complaint(gold["id"], subject="又一次送货延误")).json()
        for action, body in (("answer", {"message": "已补发"}), ("close", {}), ("satisfaction", {"score": 1})):
            assert complaints.post(f"/v1/complaints/{rated['id']}/{action}", json=body).status_code == 200
        early = complaints.get("/v1/recovery-plans", params={"customer_id": gold["id"]}).json()["items"]
        assert [(p["tier"], "callback" in [a["type"] for a in p["actions"]]) for p in early] == [(None, False)]
        bring_back()  # customer-api comes back, on the port complaint-api uses
        deadline = time.monotonic() + 45
        while True:
            body = complaints.get(f"/v1/complaints/{taken.json()['id']}").json()
            if body["snapshot_status"] == "ok":
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.3)
        assert body["priority"] == "high" and body["customer_snapshot"]["tier"] == "gold"
        while (called := complaints.get(f"/v1/callbacks/{call['id']}").json())["snapshot_status"] == "pending":
            assert time.monotonic() < deadline, called
            time.sleep(0.3)
        assert (called["snapshot_status"], called["priority"], called["name"]) == ("ok", "high", "离线时投诉")
        events = complaints.get(f"/v1/complaints/{body['id']}/timeline").json()["items"]
        assert [e["type"] for e in events] == [
            "created", "status_changed", "status_changed", "priority_changed", "recovery_plan_created"
        ]  # fmt: skip

        # Once she is known to be gold, the recovery rules run: a plan with a call, following up.
        def plans() -> dict[str, Any]:
            found = complaints.get("/v1/recovery-plans", params={"customer_id": gold["id"]}).json()["items"]
            return {p["complaint_id"]: p for p in found}

        while not all(p["tier"] == "gold" for p in plans().values()):  # the second complaint's snapshot
            assert time.monotonic() < deadline, plans()
            time.sleep(0.3)
        first, second = plans()[body["id"]], plans()[rated["id"]]
        assert (first["triggers"], first["tier"], first["status"]) == (["tier"], "gold", "following_up")
        assert "tier" in second["triggers"] and "low_satisfaction" in second["triggers"]
        for plan in (first, second):
            assert [a["type"] for a in plan["actions"]].count("callback") == 1


def _until(check: Any, what: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return result


def test_the_customer_feed_raises_priority_repoints_merges_and_anonymises_erasure(
    customers: httpx.Client, complaints: httpx.Client
) -> None:
    customer = customers.post("/v1/customers", json={"name": "升级会员", "phone": _phone()}).json()
    complaint = complaints.post("/v1/complaints", json=_complaint(customer["id"])).json()
    waiting = complaints.post("/v1/callbacks", json={"customer_id": customer["id"], "topic": "会员权益"}).json()
    assert complaint["priority"] == "low" and waiting["priority"] == "normal"
    customers.patch(f"/v1/customers/{customer['id']}", json={"tier": "gold"})
    raised = _until(
        lambda: (c := complaints.get(f"/v1/complaints/{complaint['id']}").json())["priority"] == "high" and c,
        "the tier change raised the priority",
    )
    assert raised["customer_snapshot"]["tier"] == "gold"
    assert complaints.get(f"/v1/callbacks/{waiting['id']}").json()["priority"] == "high"  # same page of the feed

    survivor = customers.post("/v1/customers", json={"name": "合并后", "phone": _phone()}).json()
    customers.post(f"/v1/customers/{customer['id']}/merge", json={"target_id": survivor["id"]})
    _until(
        lambda: complaints.get(f"/v1/complaints/{complaint['id']}").json()["customer_id"] == survivor["id"],
        "the merge moved the complaint to the survivor",
    )

    leaving = customers.post("/v1/customers", json={"name": "要求删除", "phone": _phone()}).json()
    intake = _complaint(leaving["id"], description="我叫要求删除，电话13600001111")
    key = {"Idempotency-Key": f"intake-{leaving['id']}"}
    said = complaints.post("/v1/complaints", json=intake, headers=key).json()
    complaints.post(f"/v1/complaints/{said['id']}/notes", json={"note": "顾客住在静安区某小区"})
    complaints.post(f"/v1/complaints/{said['id']}/answer", json={"message": "已为您处理"})
    complaints.post(f"/v1/complaints/{said['id']}/close", json={})
    rated = complaints.post(
        f"/v1/complaints/{said['id']}/satisfaction", json={"score": 4, "comment": "我在静安区等了两天"}
    )
    assert rated.status_code == 200, rated.text
    # The desk asks for a call back about the complaint, naming no customer: it is still hers.
    call = {"complaint_id": said["id"], "name": "要求删除", "phone": "13600001111", "topic": "静安区送货回电"}
    callback = complaints.post("/v1/callbacks", json=call).json()
    customers.delete(f"/v1/customers/{leaving['id']}")
    erased = _until(
        lambda: (c := complaints.get(f"/v1/complaints/{said['id']}").json())["customer_snapshot"] == {} and c,
        "the erasure reached complaint-api",
    )
    timeline = complaints.get(f"/v1/complaints/{said['id']}/timeline").json()["items"]
    retried = complaints.post("/v1/complaints", json=intake, headers=key)  # the intake's retry replays nothing
    assert retried.status_code == 410, retried.text
    queue = complaints.get("/v1/callbacks", params={"limit": 500}).json()["items"]
    assert callback["id"] not in [c["id"] for c in queue]  # off the queue: nobody to call
    called = complaints.get(f"/v1/callbacks/{callback['id']}").json()
    for secret in ("要求删除", "13600001111", "静安区"):
        assert secret not in str(erased) and secret not in str(timeline) and secret not in retried.text
        assert secret not in str(called)
    assert (called["status"], called["outcome"]) == ("completed", "erased")
    assert erased["category"] == "delivery" and erased["status"] == "closed"  # the statistics stay
    assert erased["satisfaction"]["score"] == 4 and erased["satisfaction"]["comment"] is None


def test_a_callback_left_by_phone_alone_is_its_customers_in_her_export_and_her_erasure(
    customers: httpx.Client, complaints: httpx.Client
) -> None:
    phone = _phone()
    customer = customers.post("/v1/customers", json={"name": "只留电话", "phone": phone}).json()
    assert customers.patch(f"/v1/customers/{customer['id']}", json={"tier": "gold"}).status_code == 200
    # Another profile whose name holds the number (a `q` search would find it too): not hers.
    customers.post("/v1/customers", json={"name": f"+86{phone} 的邻居", "phone": _phone()})
    typed = f"{phone[:3]} {phone[3:7]} {phone[7:]}"
    taken = complaints.post("/v1/callbacks", json={"phone": typed, "topic": "会员卡补办"})
    assert taken.status_code == 201, taken.text
    callback = taken.json()
    assert (callback["customer_id"], callback["name"], callback["priority"], callback["snapshot_status"]) == (
        customer["id"], None, "high", "ok"
    )  # fmt: skip
    nobody = complaints.post("/v1/callbacks", json={"phone": _phone(), "topic": "咨询"}).json()
    assert (nobody["customer_id"], nobody["snapshot_status"]) == (None, "no_customer")
    exported = complaints.get(f"/v1/customers/{customer['id']}/export").json()
    assert [c["id"] for c in exported["callbacks"]] == [callback["id"]]

    assert customers.delete(f"/v1/customers/{customer['id']}").status_code == 204
    erased = _until(
        lambda: (c := complaints.get(f"/v1/callbacks/{callback['id']}").json())["status"] == "completed" and c,
        "the erasure reached the callback",
    )
    assert (erased["outcome"], erased["name"], erased["phone"]) == ("erased", None, None)
    assert phone not in complaints.get(f"/v1/customers/{customer['id']}/export").text


def test_a_duplicate_merged_into_a_gold_customer_brings_its_open_complaint_up_to_high(
    customers: httpx.Client, complaints: httpx.Client
) -> None:
    gold = customers.post("/v1/customers", json={"name": "金卡会员", "phone": _phone()}).json()
    assert customers.patch(f"/v1/customers/{gold['id']}", json={"tier": "gold"}).status_code == 200
    duplicate = customers.post("/v1/customers", json={"name": "金卡会员(重复)", "phone": _phone()}).json()
    complaint = complaints.post("/v1/complaints", json=_complaint(duplicate["id"])).json()
    waiting = complaints.post("/v1/callbacks", json={"customer_id": duplicate["id"], "topic": "送货"}).json()
    assert complaint["priority"] == "low" and waiting["priority"] == "normal"
    customers.post(f"/v1/customers/{duplicate['id']}/merge", json={"target_id": gold["id"]})
    moved = _until(
        lambda: (c := complaints.get(f"/v1/complaints/{complaint['id']}").json())["priority"] == "high" and c,
        "the merge brought the complaint to the gold customer's priority",
    )
    assert moved["customer_id"] == gold["id"] and moved["customer_snapshot"]["tier"] == "gold"
    # The waiting callback is asked about again in its own step of the snapshot pass, maybe the next pass.
    called = _until(
        lambda: (c := complaints.get(f"/v1/callbacks/{waiting['id']}").json())["priority"] == "high" and c,
        "the merge brought the waiting callback to the gold customer's priority",
    )
    assert called["customer_id"] == gold["id"]


def test_taken_for_an_erased_customer_while_customer_api_is_down_it_is_erased_too(
    customer_api: RunningService, customers: httpx.Client, tmp_path: Any
) -> None:
    gone = customers.post("/v1/customers", json={"name": "已删除顾客", "phone": "13600002222"}).json()
    assert customers.delete(f"/v1/customers/{gone['id']}").status_code == 204
    with _complaint_api_before_customer_api(customer_api, tmp_path) as (complaints, bring_back):
        said = _complaint(gone["id"], subject="已删除顾客的冰箱", description="电话13600002222")
        taken = complaints.post("/v1/complaints", json=said).json()
        call = {"customer_id": gone["id"], "name": "已删除顾客", "phone": "13600002222", "topic": "回电"}
        callback = complaints.post("/v1/callbacks", json=call).json()
        assert taken["snapshot_status"] == callback["snapshot_status"] == "pending"
        bring_back()  # customer-api comes back: it answers 410 for her
        done = _until(
            lambda: (c := complaints.get(f"/v1/complaints/{taken['id']}").json())["snapshot_status"] != "pending" and c,
            "the snapshot pass asked customer-api",
        )
        called = complaints.get(f"/v1/callbacks/{callback['id']}").json()
        for secret in ("已删除顾客", "13600002222"):
            assert secret not in str(done) and secret not in str(called)
        assert done["snapshot_status"] == "unknown_customer"
        assert (called["status"], called["outcome"]) == ("completed", "erased")
