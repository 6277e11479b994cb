"""Service recovery with the three services running as real processes: a gold customer buys, complains,
is looked after and buys again; and the unhappy paths — lost after 90 silent days, a double deviation,
recommend-api down when the plan is made, customer-api down when it is evaluated — and a customer who takes no
marketing (PIPL restriction, marketing consent withdrawn), who gets no tailored offer."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import (
    RunningService,
    client_for,
    complaint_env,
    free_port,
    recommend_env,
    start_service,
    stop_service,
    wait_for,
)

import complaint_api.models  # noqa: F401  (every table, for the foreign keys)
from complaint_api.recovery.models import RecoveryPlan
from crm_kit.db import Database
from crm_kit.testing import temporary_database

DAIRY, SNACKS, BAKERY = "乳品", "零食", "烘焙"


def _phone() -> str:
    return "139" + str(uuid.uuid4().int)[:8]


def _order(customer_id: str, items: list[tuple[str, str]], when: dt.datetime) -> dict[str, Any]:
    return {
        "order_id": f"E2E-{uuid.uuid4().hex[:14]}", "customer_id": customer_id, "purchased_at": when.isoformat(),
        "items": [{"sku": s, "name": f"商品 {s}", "category": c, "quantity": "1", "unit_price": "12.50"}
                  for s, c in items],
    }  # fmt: skip


class Shop:
    """A small shop's catalogue and a customer base buying from it, unique to each test."""

    def __init__(self, customers: httpx.Client) -> None:
        tag = uuid.uuid4().hex[:6]
        self.customers = customers
        self.milk, self.yogurt = (f"MILK-{tag}", DAIRY), (f"YOGURT-{tag}", DAIRY)
        self.chips, self.bread = (f"CHIPS-{tag}", SNACKS), (f"BREAD-{tag}", BAKERY)

    def customer(self, name: str, tier: str | None = None) -> str:
        made = self.customers.post("/v1/customers", json={"name": name, "phone": _phone()})
        assert made.status_code == 201, made.text
        if tier:
            assert self.customers.patch(f"/v1/customers/{made.json()['id']}", json={"tier": tier}).status_code == 200
        return str(made.json()["id"])

    def history(self, who: str) -> None:
        """Weeks of buying milk with bread or yogurt, and others buying chips with bread."""
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
        orders = [_order(who, [self.milk, self.bread if d % 2 else self.yogurt], start + dt.timedelta(days=d))
                  for d in range(0, 30, 3)]  # fmt: skip
        other = self.customer("邻居")
        orders += [_order(other, [self.chips, self.bread, self.milk], start + dt.timedelta(days=d)) for d in range(3)]
        assert self.customers.post("/v1/purchases/bulk", json={"purchases": orders}).json()["created"] == len(orders)

    def buy_again(self, who: str) -> str:
        order = _order(who, [self.bread], dt.datetime.now(dt.UTC))
        assert self.customers.post("/v1/purchases", json=order).status_code == 201
        return str(order["order_id"])


def _model(recommendations: httpx.Client) -> None:
    """Sync recommend-api and build a model from what it has."""
    assert recommendations.post("/v1/sync").status_code == 200
    version = recommendations.post("/v1/models", json={"evaluate": False}).json()["version"]
    wait_for(lambda: recommendations.get("/v1/models/current").json().get("version", 0) >= version, "the model")


def _take(complaints: httpx.Client, who: str, sku: str) -> dict[str, Any]:
    body = {"customer_id": who, "channel": "app", "category": "food_safety", "sku": sku, "severity": "low",
            "subject": "牛奶变质", "description": "刚买的牛奶打开有酸味。"}  # fmt: skip
    taken = complaints.post("/v1/complaints", json=body)
    assert taken.status_code == 201, taken.text
    return dict(taken.json())


def _complain(complaints: httpx.Client, who: str, sku: str, *, assignee: str, score: int | None) -> dict[str, Any]:
    url = f"/v1/complaints/{_take(complaints, who, sku)['id']}"
    steps = [("escalate", {"department": "生鲜部", "assignee_id": assignee}),
             ("resolution", {"root_cause": "cold_chain", "resolution": "退款并致歉", "corrective_action": "冷柜巡检"}),
             ("reply", {"message": "已为您退款，深表歉意"}), ("close", {})]  # fmt: skip
    for action, payload in steps:
        moved = complaints.post(f"{url}/{action}", json=payload)
        assert moved.status_code == 200, moved.text
    if score is not None:
        assert complaints.post(f"{url}/satisfaction", json={"score": score}).status_code == 200
    return dict(complaints.get(url).json())


def _plan(complaints: httpx.Client, complaint: dict[str, Any]) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        plans = complaints.get("/v1/recovery-plans", params={"customer_id": complaint["customer_id"]}).json()
        return next((p for p in plans["items"] if p["complaint_id"] == complaint["id"]), None)

    return dict(wait_for(found, "the recovery plan"))


def _tailored(complaints: httpx.Client, plan: dict[str, Any]) -> dict[str, Any]:
    current = complaints.get(f"/v1/recovery-plans/{plan['id']}").json()
    return dict(next(a for a in current["actions"] if a["type"] == "tailored_offer"))


def _offer(complaints: httpx.Client, plan: dict[str, Any], seconds: float = 60) -> dict[str, Any]:
    """The plan's tailored offer once it is no longer pending: filled or withheld."""
    return dict(
        wait_for(lambda: (a := _tailored(complaints, plan))["offer_status"] != "pending" and a, "the offer", seconds)
    )


def _asked_for_offers(recommend_api: RunningService, who: str) -> bool:
    """Whether recommend-api's log shows a request for the customer's recovery offers."""
    return any(f"/v1/customers/{who}/recovery-offers" in line for line in recommend_api.log_lines())


def _plan_with(complaints: httpx.Client, complaint: dict[str, Any], *types: str) -> httpx.Response:
    actions = {"actions": [{"type": t} for t in types]} if types else {}
    return complaints.post(f"/v1/complaints/{complaint['id']}/recovery", json=actions)


@contextlib.asynccontextmanager
async def _complaint_api_with_peers_down(
    customer_api: RunningService, recommend_api: RunningService, backend: str, tmp_path: Path, *down: str
) -> AsyncIterator[tuple[httpx.Client, Callable[[str], RunningService]]]:
    """A complaint-api of its own, on the suite's backend, that meets the peers named in `down` down (their ports are
    free); a client of it, and what brings such a peer back on its port: a second process on the suite's database."""
    suite = {"customer-api": customer_api, "recommend-api": recommend_api}
    if any(peer.process is None or peer.database_url is None for peer in suite.values()):
        pytest.skip("needs to start and stop services itself")
    ports = {name: free_port() for name in down}
    seen = {name: RunningService(name, f"http://127.0.0.1:{ports[name]}", peer.api_key) if name in ports else peer
            for name, peer in suite.items()}  # fmt: skip
    async with temporary_database(backend, "offline_complaint_api", tmp_path) as database_url:
        env = complaint_env(seen["customer-api"], seen["recommend-api"])
        started = [start_service("complaint-api", database_url, tmp_path, env)]

        def bring_back(name: str) -> RunningService:
            suite_database = suite[name].database_url
            assert suite_database is not None
            extra = recommend_env(customer_api) if name == "recommend-api" else None
            started.append(start_service(name, suite_database, tmp_path, extra, port=ports[name]))
            return started[-1]

        try:
            with client_for(started[0]) as complaints:
                yield complaints, bring_back
        finally:
            for service in reversed(started):
                stop_service(service)


def test_a_gold_customer_is_recovered_and_the_statistics_show_it(
    customers: httpx.Client, complaints: httpx.Client, recommendations: httpx.Client
) -> None:
    shop = Shop(customers)
    gold = shop.customer("金卡会员 周敏", tier="gold")
    shop.history(gold)
    _model(recommendations)
    owner = f"mgr-{uuid.uuid4().hex[:8]}"
    complaint = _complain(complaints, gold, shop.milk[0], assignee=owner, score=2)

    plan = _plan(complaints, complaint)
    assert {"low_satisfaction", "tier"} <= set(plan["triggers"]) and plan["tier"] == "gold"
    assert {"apology", "tailored_offer"} <= {a["type"] for a in plan["actions"]}
    assert plan["satisfaction_before"] == 2 and plan["owner_id"] == owner and plan["status"] == "following_up"
    offer = _offer(complaints, plan)
    assert offer["offer_status"] == "filled" and offer["offer_withheld_reason"] is None
    offered = {item["sku"]: item for item in offer["offer"]}
    assert offered and not {shop.milk[0], shop.yogurt[0]} & set(offered)  # never the complained category
    assert all(item["category"] != DAIRY for item in offered.values())

    apology = next(a for a in plan["actions"] if a["type"] == "apology")
    done = complaints.post(
        f"/v1/recovery-plans/{plan['id']}/actions/{apology['id']}/complete", json={"note": "店长致歉"}
    )
    assert done.status_code == 200
    before = complaints.post(f"/v1/recovery-plans/{plan['id']}/evaluate").json()
    assert before["outcome"] == "pending" and before["evidence"]["first_purchase"] is None

    order_id = shop.buy_again(gold)
    after = complaints.post(f"/v1/recovery-plans/{plan['id']}/evaluate")
    assert after.status_code == 200, after.text
    assert after.json()["outcome"] == "recovered"
    assert after.json()["evidence"]["first_purchase"]["order_id"] == order_id
    assert after.json()["evidence"]["repurchase_30d"] is True
    timeline = complaints.get(f"/v1/complaints/{complaint['id']}/timeline", params={"limit": 100}).json()["items"]
    changed = [e["data"] for e in timeline if e["type"] == "recovery_outcome_changed"]
    assert changed == [{"plan_id": plan["id"], "from": "pending", "to": "recovered"}]  # the webhook's event

    day = dt.timedelta(days=1)
    now = dt.datetime.now(dt.UTC)
    stats = complaints.get(
        "/v1/stats/recovery",
        params={"from": (now - day).isoformat(), "to": (now + day).isoformat(), "group_by": "owner"},
    ).json()
    mine = next(g for g in stats["groups"] if g["key"] == owner)
    assert mine["plans"] == 1 and mine["recovery_rate"] == 1.0 and mine["repurchase_30d_rate"] == 1.0
    # The paradox test: gold customers who did not complain, computed by customer-api from real purchases.
    assert stats["control_available"] is True and mine["control"] is not None
    assert set(mine["control"]) == {"customers", "repurchase_30d_rate", "repurchase_90d_rate"}

    def written() -> bool:  # the complaint, the apology and the outcome in customer-api's contact history
        entries = customers.get(f"/v1/customers/{gold}/interactions", params={"limit": 50}).json()["items"]
        subjects = " ".join(e.get("subject") or "" for e in entries)
        return complaint["number"] in subjects and "致歉" in subjects and "已挽回" in subjects

    wait_for(written, "the contact history in customer-api")


def _get(complaints: httpx.Client, plan_id: str) -> dict[str, Any]:
    return dict(complaints.get(f"/v1/recovery-plans/{plan_id}").json())


def _evaluate(complaints: httpx.Client, plan_id: str) -> dict[str, Any]:
    evaluated = complaints.post(f"/v1/recovery-plans/{plan_id}/evaluate")
    assert evaluated.status_code == 200, evaluated.text
    return dict(evaluated.json())


async def _shift_closing(database_url: str, plan_id: str, days: int) -> None:
    """Move a plan's closing and follow-ups back in time (as if `days` had passed) in complaint-api's database."""
    database = Database(database_url)
    try:
        async with database.session_scope() as session:
            plan = await session.get(RecoveryPlan, uuid.UUID(plan_id))
            assert plan is not None and plan.complaint_closed_at is not None
            plan.complaint_closed_at -= dt.timedelta(days=days)
            for follow_up in plan.follow_ups:
                follow_up.due_at = plan.complaint_closed_at + dt.timedelta(days=follow_up.offset_days)
    finally:
        await database.dispose()


async def test_silence_for_90_days_is_lost_and_a_second_complaint_is_a_double_deviation(
    customers: httpx.Client, complaints: httpx.Client, complaint_api: RunningService
) -> None:
    if complaint_api.database_url is None:
        pytest.skip("moving time needs complaint-api's database")
    shop = Shop(customers)
    silent = shop.customer("沉默的顾客", tier="silver")
    first = _complain(complaints, silent, shop.milk[0], assignee="mgr-e2e", score=3)
    plan = _plan(complaints, first)
    await _shift_closing(complaint_api.database_url, plan["id"], days=91)
    # The background pass finds the three follow-ups due and evaluates the plan against customer-api.
    lost = wait_for(lambda: (p := _get(complaints, plan["id"]))["status"] == "closed" and p, "the follow-up pass")
    assert lost["outcome"] == "lost" and lost["evidence"]["repurchase_90d"] is False
    assert [f["outcome"] for f in lost["follow_ups"]] == ["lost", "lost", "lost"]

    twice = shop.customer("二次投诉")
    first = _complain(complaints, twice, shop.milk[0], assignee="mgr-e2e", score=1)
    first_plan = _plan(complaints, first)
    second = _complain(complaints, twice, shop.yogurt[0], assignee="mgr-e2e", score=None)
    second_plan = _plan(complaints, second)
    assert second_plan["double_deviation"] is True and "repeat_complaint" in second_plan["triggers"]
    again = _evaluate(complaints, first_plan["id"])
    assert again["outcome"] == "at_risk" and again["evidence"]["repeat_complaint"]["id"] == second["id"]


async def test_offers_wait_for_recommend_api_and_outcomes_for_customer_api(
    customer_api: RunningService,
    recommend_api: RunningService,
    customers: httpx.Client,
    recommendations: httpx.Client,
    backend_of: dict[str, str],
    tmp_path: Path,
) -> None:
    shop = Shop(customers)
    who = shop.customer("离线期间投诉", tier="gold")
    shop.history(who)
    _model(recommendations)
    backend, both = backend_of["customer-api"], ("customer-api", "recommend-api")
    async with _complaint_api_with_peers_down(customer_api, recommend_api, backend, tmp_path, *both) as (
        complaints,
        bring_back,
    ):
        complaint = _complain(complaints, who, shop.milk[0], assignee="mgr-offline", score=None)
        made = complaints.post(f"/v1/complaints/{complaint['id']}/recovery", json={"avoid_categories": [DAIRY]})
        assert made.status_code == 201, made.text
        plan = made.json()
        assert _tailored(complaints, plan)["offer_status"] == "pending"
        await asyncio.sleep(1)  # a few sweeps find both peers down
        assert _tailored(complaints, plan)["offer_status"] == "pending"
        unavailable = complaints.post(f"/v1/recovery-plans/{plan['id']}/evaluate")
        assert unavailable.status_code == 503
        assert complaints.get(f"/v1/recovery-plans/{plan['id']}").json()["outcome"] == "pending"

        order_id = shop.buy_again(who)
        bring_back("customer-api")
        # Retried until complaint-api's circuit breaker lets a call through to the revived customer-api.
        evaluate = f"/v1/recovery-plans/{plan['id']}/evaluate"
        evaluated = wait_for(lambda: (r := complaints.post(evaluate)).status_code == 200 and r, "an evaluation")
        assert evaluated.json()["outcome"] == "recovered"
        assert evaluated.json()["evidence"]["first_purchase"]["order_id"] == order_id
        assert _tailored(complaints, plan)["offer_status"] == "pending"  # recommend-api is still down

        bring_back("recommend-api")
        filled = _offer(complaints, plan, seconds=90)
        assert filled["offer_status"] == "filled"
        assert filled["offer"] and all(item["category"] != DAIRY for item in filled["offer"])


def _restricted(shop: Shop, name: str, tier: str | None = None) -> str:
    who = shop.customer(name, tier)
    assert shop.customers.patch(f"/v1/customers/{who}", json={"restricted": True}).status_code == 200
    return who


def _marketing(customers: httpx.Client, who: str, status: str) -> None:
    changed = customers.patch(f"/v1/customers/{who}", json={"consents": {"marketing": {"status": status}}})
    assert changed.status_code == 200, changed.text


def test_a_customer_who_takes_no_marketing_gets_a_plan_without_a_tailored_offer(
    customers: httpx.Client, complaints: httpx.Client
) -> None:
    shop = Shop(customers)
    gold = _restricted(shop, "限制处理的金卡会员", tier="gold")
    complaint = _complain(complaints, gold, shop.milk[0], assignee="mgr-pipl", score=2)
    assert complaint["customer_snapshot"].get("restricted") is True
    plan = _plan(complaints, complaint)  # made by the rules: the apology and the call stay, the offer does not
    assert {"low_satisfaction", "tier"} <= set(plan["triggers"])
    assert [a["type"] for a in plan["actions"]] == ["apology", "callback"]

    # Marketing consent withdrawn after the complaint was taken: the customer feed brings it to its snapshot.
    later = shop.customer("投诉后退订营销")
    taken = _take(complaints, later, shop.milk[0])
    assert taken["customer_snapshot"].get("marketing_consent") is None
    _marketing(customers, later, "withdrawn")
    url = f"/v1/complaints/{taken['id']}"
    wait_for(
        lambda: complaints.get(url).json()["customer_snapshot"].get("marketing_consent") == "withdrawn", "the feed"
    )
    made = _plan_with(complaints, taken)
    assert made.status_code == 201, made.text
    assert [a["type"] for a in made.json()["actions"]] == ["apology"]


def test_a_tailored_offer_asked_for_a_customer_who_takes_no_marketing_is_refused(
    customers: httpx.Client, complaints: httpx.Client
) -> None:
    shop = Shop(customers)
    withdrawn = shop.customer("已退订营销")
    _marketing(customers, withdrawn, "withdrawn")
    refusals = {
        _restricted(shop, "已限制处理"): "no marketing: processing restricted",
        withdrawn: "marketing consent withdrawn",
    }
    for who, reason in refusals.items():
        complaint = _take(complaints, who, shop.milk[0])
        refused = _plan_with(complaints, complaint, "apology", "tailored_offer")
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert reason in refused.json()["detail"] and refused.json()["errors"][0]["field"] == "actions"
        # Compensation is service, not marketing: the same plan without the offer is made.
        made = _plan_with(complaints, complaint, "apology", "coupon")
        assert made.status_code == 201, made.text
        assert [a["type"] for a in made.json()["actions"]] == ["apology", "coupon"]


async def test_an_offer_is_withheld_when_marketing_consent_is_withdrawn_after_the_plan(
    customer_api: RunningService,
    recommend_api: RunningService,
    customers: httpx.Client,
    recommendations: httpx.Client,
    backend_of: dict[str, str],
    tmp_path: Path,
) -> None:
    shop = Shop(customers)
    withdrew, ordinary = shop.customer("事后退订营销"), shop.customer("普通顾客")
    for who in (withdrew, ordinary):
        shop.history(who)
    _model(recommendations)
    backend = backend_of["customer-api"]
    async with _complaint_api_with_peers_down(customer_api, recommend_api, backend, tmp_path, "recommend-api") as (
        complaints,
        bring_back,
    ):
        plans = {}
        for who in (withdrew, ordinary):  # theirs first in line: a pass reaches it while recommend-api is down
            made = _plan_with(complaints, _take(complaints, who, shop.milk[0]), "apology", "tailored_offer")
            assert made.status_code == 201, made.text
            plans[who] = made.json()
        _marketing(customers, withdrew, "withdrawn")

        # customer-api is asked before recommend-api: the offer is withheld while recommend-api is still down.
        withheld = _offer(complaints, plans[withdrew], seconds=30)
        assert withheld["offer_status"] == "withheld" and withheld["offer"] is None
        assert withheld["offer_withheld_reason"] == "marketing consent withdrawn"
        assert withheld["status"] == "cancelled"  # not announced as due, not to be done
        complete = f"/v1/recovery-plans/{plans[withdrew]['id']}/actions/{withheld['id']}/complete"
        done = complaints.post(complete, json={})
        assert done.status_code == 409 and "marketing consent withdrawn" in done.json()["detail"]

        recommend_again = bring_back("recommend-api")
        filled = _offer(complaints, plans[ordinary], seconds=90)
        assert filled["offer_status"] == "filled" and filled["offer"]
        assert _asked_for_offers(recommend_again, ordinary) and not _asked_for_offers(recommend_again, withdrew)

        # Consent given again later: the withheld offer stays withheld, and recommend-api is still not asked.
        _marketing(customers, withdrew, "granted")
        complaint_url = f"/v1/complaints/{plans[withdrew]['complaint_id']}"
        wait_for(
            lambda: complaints.get(complaint_url).json()["customer_snapshot"].get("marketing_consent") == "granted",
            "the customer feed",
        )
        await asyncio.sleep(1)  # a few more passes
        assert _tailored(complaints, plans[withdrew]) == withheld
        assert not _asked_for_offers(recommend_again, withdrew)


async def test_offers_wait_for_customer_api_then_are_filled_or_withheld(
    customer_api: RunningService,
    recommend_api: RunningService,
    customers: httpx.Client,
    recommendations: httpx.Client,
    backend_of: dict[str, str],
    tmp_path: Path,
) -> None:
    shop = Shop(customers)
    restricted, ordinary = _restricted(shop, "离线期间的限制处理"), shop.customer("离线期间的普通顾客")
    for who in (restricted, ordinary):
        shop.history(who)
    _model(recommendations)
    backend = backend_of["customer-api"]
    async with _complaint_api_with_peers_down(customer_api, recommend_api, backend, tmp_path, "customer-api") as (
        complaints,
        bring_back,
    ):
        plans = {}
        for who in (restricted, ordinary):
            complaint = _take(complaints, who, shop.milk[0])
            assert complaint["snapshot_status"] == "pending"
            # Nothing is known of the customer yet: the offer is not refused, the background pass decides.
            made = _plan_with(complaints, complaint, "apology", "tailored_offer")
            assert made.status_code == 201, made.text
            plans[who] = made.json()
        await asyncio.sleep(1.5)  # a few passes, with recommend-api up, cannot ask customer-api
        assert [_tailored(complaints, plans[who])["offer_status"] for who in plans] == ["pending", "pending"]
        assert not _asked_for_offers(recommend_api, restricted) and not _asked_for_offers(recommend_api, ordinary)

        bring_back("customer-api")
        withheld, filled = (_offer(complaints, plans[who], seconds=90) for who in (restricted, ordinary))
        assert (withheld["offer_status"], withheld["offer"]) == ("withheld", None)
        assert withheld["offer_withheld_reason"] == "no marketing: processing restricted"
        assert filled["offer_status"] == "filled" and filled["offer"]
        assert _asked_for_offers(recommend_api, ordinary) and not _asked_for_offers(recommend_api, restricted)
