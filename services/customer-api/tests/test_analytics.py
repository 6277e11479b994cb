"""Customer value on a small data set whose RFM scores, segments and tiers were worked out by hand.

Observation: purchases before 2026-07-01 00:00 Shanghai time, so the last observed day is 2026-06-30.
Buyers and their purchase days (spend per day):

    A  06-29 06-20 06-01 05-01 04-01   5 × 200      recency 1    window days 5   spend 1000
    B  06-28 05-28 04-28 03-28         4 × 100      recency 2                 4         400
    C  06-25 05-25 04-25               3 × 50       recency 5                 3         150
    D  06-30                           80           recency 0                 1          80
    E  06-10 05-10                     2 × 60       recency 20                2         120
    F  03-01 02-01 01-01               3 × 300      recency 121               3         900
    G  02-15                           40           recency 135               1          40
    H  2025-12-01 2025-11-01           2 × 30       recency 211               2          60
    I  2025-08-01                      20           recency 333               1          20
    J  2025-05-01 (outside the window) 500          recency 425               0           0

Scores, 1 + floor(5 · customers strictly worse / 10):
    R: D5 A5 B4 C4 E3 F3 G2 H2 I1 J1      F: A5 B5 C4 F4 E3 H3 D1 G1 I1 J1
    M: A5 F5 B4 C4 D3 E3 G2 H2 I1 J1
Segments: A Champions, B Loyal, C Loyal, F Loyal, D New, E Need Attention, G Hibernating, H At Risk,
I Lost, J Lost. Tiers over the 11 profiled customers (K bought nothing): gold A (nobody spent more);
silver F, B (1 and 2 spent more, < 20 % of 11); bronze C, E, D (3–5 spent more, < 50 %); the rest regular
— except G, whose tier was set to gold by hand and locked. L is restricted: left out of everything.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from helpers import create_customer, order
from sqlalchemy import select, update
from uuid_utils.compat import uuid7

from crm_kit.db import Database, utcnow
from crm_kit.testing import own_database, poll_status, serving
from customer_api.analytics import jobs
from customer_api.analytics.jobs import request_refresh, run_one
from customer_api.analytics.models import AnalyticsJob
from customer_api.analytics.scoring import quintile_scores, tiers
from customer_api.analytics.service import Progress, customer_value, load_purchase_days, refresh_values
from customer_api.config import Settings
from customer_api.main import ALEMBIC_INI, create_app

AS_OF = "2026-07-01T00:00:00+08:00"
BUYERS: dict[str, list[tuple[str, str]]] = {
    "A": [(d, "200") for d in ("2026-06-29", "2026-06-20", "2026-06-01", "2026-05-01", "2026-04-01")],
    "B": [(d, "100") for d in ("2026-06-28", "2026-05-28", "2026-04-28", "2026-03-28")],
    "C": [(d, "50") for d in ("2026-06-25", "2026-05-25", "2026-04-25")],
    "D": [("2026-06-30", "80")],
    "E": [(d, "60") for d in ("2026-06-10", "2026-05-10")],
    "F": [(d, "300") for d in ("2026-03-01", "2026-02-01", "2026-01-01")],
    "G": [("2026-02-15", "40")],
    "H": [(d, "30") for d in ("2025-12-01", "2025-11-01")],
    "I": [("2025-08-01", "20")],
    "J": [("2025-05-01", "500")],
    "L": [(d, "1000") for d in ("2026-03-01", "2026-02-01", "2026-01-01")],
}
EXPECTED = {  # name: (r, f, m, segment, tier)
    "A": (5, 5, 5, "Champions", "gold"),
    "B": (4, 5, 4, "Loyal", "silver"),
    "C": (4, 4, 4, "Loyal", "bronze"),
    "D": (5, 1, 3, "New", "bronze"),
    "E": (3, 3, 3, "Need Attention", "bronze"),
    "F": (3, 4, 5, "Loyal", "silver"),
    "G": (2, 1, 2, "Hibernating", "gold"),
    "H": (2, 3, 2, "At Risk", "regular"),
    "I": (1, 1, 1, "Lost", "regular"),
    "J": (1, 1, 1, "Lost", "regular"),
}


async def _populate(client: httpx.AsyncClient) -> dict[str, str]:
    ids = {name: (await create_customer(client, name=f"顾客{name}"))["id"] for name in [*BUYERS, "K"]}
    rows = [
        order(ids[name], order_id=f"{name}-{day}", purchased_at=f"{day}T12:00:00+08:00",
              items=[{"sku": f"SKU-{name}", "quantity": "1", "unit_price": spend}])
        for name, days in BUYERS.items()
        for day, spend in days
    ]  # fmt: skip
    assert (await client.post("/v1/purchases/bulk", json={"purchases": rows})).json()["created"] == len(rows)
    assert (await client.patch(f"/v1/customers/{ids['G']}", json={"tier": "gold"})).status_code == 200
    assert (await client.patch(f"/v1/customers/{ids['L']}", json={"restricted": True})).status_code == 200
    return ids


async def _refresh(client: httpx.AsyncClient, as_of: str = AS_OF) -> dict[str, Any]:
    response = await client.post("/v1/analytics/refresh", json={"as_of": as_of})
    assert response.status_code == 202, response.text
    job = response.json()
    deadline = time.monotonic() + 60
    while job["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.1)
        job = (await client.get(response.headers["location"])).json()
    assert job["status"] == "succeeded", job
    return job


async def test_rfm_segments_and_tiers_are_as_worked_out_by_hand(client: httpx.AsyncClient) -> None:
    ids = await _populate(client)
    job = await _refresh(client)
    assert job["stats"]["profiled"] == 11 and job["stats"]["valued"] == 10
    for name, (r, f, m, segment, tier) in EXPECTED.items():
        value = (await client.get(f"/v1/customers/{ids[name]}/value")).json()
        assert value["profiled"] is True, name
        assert (value["rfm"]["r"], value["rfm"]["f"], value["rfm"]["m"]) == (r, f, m), name
        assert value["rfm"]["segment"] == segment, name
        assert value["tier"] == tier, name
        profile = (await client.get(f"/v1/customers/{ids[name]}")).json()
        assert (profile["tier"], profile["segment"]) == (tier, segment), name

    a = (await client.get(f"/v1/customers/{ids['A']}/value")).json()
    assert a["established_value"] == "1000.00" and a["trailing_spend"] == "1000.00"
    assert a["rfm"]["recency_days"] == 1 and a["rfm"]["frequency"] == 5 and a["rfm"]["monetary"] == "1000.00"
    assert 0 <= a["p_alive"] <= 1 and a["expected_purchases"] > 0 and a["model_version"] >= 1
    # Six repeat buyers are too few for the Gamma-Gamma spend model (ten are needed): no predicted spend.
    assert a["predicted_value"] is None and a["expected_order_value"] is None
    j = (await client.get(f"/v1/customers/{ids['J']}/value")).json()
    assert j["established_value"] == "500.00" and j["rfm"]["frequency"] == 0 and j["tier"] == "regular"
    k = (await client.get(f"/v1/customers/{ids['K']}/value")).json()
    assert k["profiled"] and k["rfm"] is None and k["established_value"] == "0.00" and k["tier"] == "regular"


async def test_tier_changes_are_on_the_feed_once(client: httpx.AsyncClient) -> None:
    ids = await _populate(client)
    await _refresh(client)
    names = {v: k for k, v in ids.items()}
    feed = (await client.get("/v1/feeds/customers", params={"limit": 1000})).json()["items"]
    changes = {
        (names[e["customer_id"]], e["data"]["to"], e["data"]["source"]) for e in feed if e["type"] == "tier_changed"
    }
    assert changes == {
        ("G", "gold", "manual"),
        ("A", "gold", "refresh"),
        ("B", "silver", "refresh"),
        ("F", "silver", "refresh"),
        ("C", "bronze", "refresh"),
        ("D", "bronze", "refresh"),
        ("E", "bronze", "refresh"),
    }
    again = await _refresh(client)
    assert again["stats"]["tier_changes"] == 0
    later = (await client.get("/v1/feeds/customers", params={"limit": 1000})).json()["items"]
    assert sum(e["type"] == "tier_changed" for e in later) == len(changes)
    # Version bumps let clients see the profile changed.
    assert (await client.get(f"/v1/customers/{ids['A']}")).headers["etag"] == '"2"'


async def test_restricted_customers_never_appear_in_analytics(client: httpx.AsyncClient) -> None:
    ids = await _populate(client)
    await _refresh(client)
    l_value = (await client.get(f"/v1/customers/{ids['L']}/value")).json()
    assert l_value["profiled"] is False and l_value["excluded_reason"] == "restricted" and l_value["rfm"] is None
    segments = (await client.get("/v1/analytics/segments")).json()
    assert sum(s["customers"] for s in segments["segments"]) == 10
    counts = {s["name"]: s["customers"] for s in segments["segments"]}
    assert counts == {"Loyal": 3, "Lost": 2, "Champions": 1, "New": 1, "Need Attention": 1, "Hibernating": 1,
                      "At Risk": 1}  # fmt: skip
    tier_counts = {t["name"]: t["customers"] for t in segments["tiers"]}
    assert tier_counts == {"gold": 2, "silver": 2, "bronze": 3, "regular": 3}
    risky = (await client.get("/v1/analytics/churn-risk")).json()["items"]
    assert ids["L"] not in [c["customer_id"] for c in risky]

    # Withdrawing profiling consent takes effect at once, before any refresh.
    f_id = ids["F"]
    assert f_id in [c["customer_id"] for c in risky]
    await client.patch(f"/v1/customers/{f_id}", json={"consents": {"profiling": {"status": "withdrawn"}}})
    assert f_id not in [c["customer_id"] for c in (await client.get("/v1/analytics/churn-risk")).json()["items"]]
    f_value = (await client.get(f"/v1/customers/{f_id}/value")).json()
    assert f_value["profiled"] is False and f_value["excluded_reason"] == "profiling_consent_withdrawn"
    assert (await client.get(f"/v1/customers/{f_id}")).json()["segment"] is None
    assert sum(s["customers"] for s in (await client.get("/v1/analytics/segments")).json()["segments"]) == 9


async def test_a_merge_that_brings_a_restriction_or_a_withdrawal_takes_the_survivor_out_of_profiling(
    client: httpx.AsyncClient,
) -> None:
    ids = await _populate(client)
    await _refresh(client)
    withdrawn = await create_customer(client, name="顾客F(重复)")
    consent = {"consents": {"profiling": {"status": "withdrawn"}}}
    assert (await client.patch(f"/v1/customers/{withdrawn['id']}", json=consent)).status_code == 200
    for duplicate, target in ((ids["L"], ids["A"]), (withdrawn["id"], ids["F"])):
        merged = await client.post(f"/v1/customers/{duplicate}/merge", json={"target_id": target})
        assert merged.status_code == 200, merged.text
    a_value = (await client.get(f"/v1/customers/{ids['A']}/value")).json()
    assert a_value["profiled"] is False and a_value["excluded_reason"] == "restricted"
    f_value = (await client.get(f"/v1/customers/{ids['F']}/value")).json()
    assert f_value["profiled"] is False and f_value["excluded_reason"] == "profiling_consent_withdrawn"
    assert sum(s["customers"] for s in (await client.get("/v1/analytics/segments")).json()["segments"]) == 8
    # Followers of the feed are told, on the survivor's own id, as after a PATCH.
    feed = (await client.get("/v1/feeds/customers", params={"limit": 1000})).json()["items"]
    survivors = [(e["customer_id"], e["type"], e["data"]) for e in feed if e["customer_id"] in (ids["A"], ids["F"])]
    assert (ids["A"], "restricted", {}) in survivors
    assert (ids["F"], "consent_changed", {"profiling": "withdrawn"}) in survivors
    assert (ids["A"], "consent_changed") not in [(c, t) for c, t, _ in survivors]
    assert (ids["F"], "restricted") not in [(c, t) for c, t, _ in survivors]


async def test_customers_who_leave_profiling_during_a_refresh_get_nothing_from_it(
    client: httpx.AsyncClient, app: Any
) -> None:
    ids = await _populate(client)
    await _refresh(client)

    async def meanwhile(stage: str, _fraction: float) -> None:
        if stage == "scoring and fitting":  # read, not yet written
            assert (await client.patch(f"/v1/customers/{ids['A']}", json={"restricted": True})).status_code == 200
            assert (await client.delete(f"/v1/customers/{ids['B']}")).status_code == 204

    as_of = dt.datetime.fromisoformat(AS_OF)
    await refresh_values(app.state.database, app.state.settings, as_of=as_of, progress=meanwhile)
    a_value = (await client.get(f"/v1/customers/{ids['A']}/value")).json()
    assert a_value["profiled"] is False and a_value["rfm"] is None
    assert (await client.get(f"/v1/customers/{ids['A']}")).json()["segment"] is None
    async with app.state.database.session_scope(read_only=True) as session:
        assert await customer_value(session, uuid.UUID(ids["A"])) is None
        assert await customer_value(session, uuid.UUID(ids["B"])) is None
    assert sum(s["customers"] for s in (await client.get("/v1/analytics/segments")).json()["segments"]) == 8


async def test_the_pipl_export_holds_the_value_analysis_and_absorbed_profiles_events(
    client: httpx.AsyncClient,
) -> None:
    ids = await _populate(client)
    await _refresh(client)
    export = (await client.get(f"/v1/customers/{ids['A']}/export")).json()
    assert export["value"] == (await client.get(f"/v1/customers/{ids['A']}/value")).json()
    assert export["value"]["rfm"]["segment"] == "Champions" and export["value"]["p_alive"] is not None
    twin = await create_customer(client, name="顾客A(重复)")
    await client.patch(f"/v1/customers/{twin['id']}", json={"consents": {"marketing": {"status": "withdrawn"}}})
    assert (await client.post(f"/v1/customers/{twin['id']}/merge", json={"target_id": ids["A"]})).status_code == 200
    events = (await client.get(f"/v1/customers/{ids['A']}/export")).json()["events"]
    assert {(e["customer_id"], e["type"]) for e in events} >= {(twin["id"], "created"), (twin["id"], "consent_changed")}


async def test_purchase_days_are_business_days_with_the_offset_of_their_own_date(
    client: httpx.AsyncClient, app: Any
) -> None:
    """A business time zone with daylight saving time: each purchase's day takes the offset in force when it was
    made, not the offset at the observation time (Berlin is UTC+2 in July, UTC+1 in January and December)."""
    customer = (await create_customer(client, name="Lena"))["id"]
    bought = {"2026-07-01T22:30:00Z": "2026-07-02", "2026-01-15T23:30:00Z": "2026-01-16",
              "2026-03-29T00:30:00Z": "2026-03-29", "2026-10-24T22:30:00Z": "2026-10-25"}  # fmt: skip
    rows = [order(customer, purchased_at=at, items=[{"sku": "S", "quantity": "1", "unit_price": "9"}]) for at in bought]
    assert (await client.post("/v1/purchases/bulk", json={"purchases": rows})).json()["created"] == len(rows)
    as_of = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    async with app.state.database.session_scope(read_only=True) as session:
        days = await load_purchase_days(session, {uuid.UUID(customer): 0}, as_of=as_of, timezone="Europe/Berlin")
    assert sorted(dt.date.fromordinal(d).isoformat() for d in days.day.tolist()) == sorted(bought.values())


async def test_equal_spends_made_of_different_amounts_rank_equal(client: httpx.AsyncClient) -> None:
    """0.10 + 0.20 and 0.30 are the same spend: both customers get the top tier and the same M score (added as
    floats, the first is more, and the second drops from gold to regular in a base of two)."""
    apart = (await create_customer(client, name="两次"))["id"]
    once = (await create_customer(client, name="一次"))["id"]
    bought = ((apart, "10", "0.10"), (apart, "20", "0.20"), (once, "20", "0.30"))
    line = {"sku": "S", "quantity": "1"}
    rows = [order(c, purchased_at=f"2026-06-{day}T12:00:00+08:00", items=[line | {"unit_price": price}])
            for c, day, price in bought]  # fmt: skip
    assert (await client.post("/v1/purchases/bulk", json={"purchases": rows})).json()["created"] == 3
    await _refresh(client)
    apart_value, once_value = [(await client.get(f"/v1/customers/{c}/value")).json() for c in (apart, once)]
    assert apart_value["tier"] == once_value["tier"] == "gold"
    assert apart_value["rfm"]["monetary"] == once_value["rfm"]["monetary"] == "0.30"
    assert apart_value["rfm"]["m"] == once_value["rfm"]["m"]
    assert apart_value["established_value"] == "0.30"


async def test_churn_risk_lists_valuable_customers_slipping_away_with_reasons(client: httpx.AsyncClient) -> None:
    ids = await _populate(client)
    await _refresh(client)
    page = (await client.get("/v1/analytics/churn-risk")).json()
    by_id = {c["customer_id"]: c for c in page["items"]}
    f = by_id[ids["F"]]  # bought every ~30 days, silent for 121: overdue, and a top spender
    assert "overdue" in [r["code"] for r in f["reasons"]]
    assert float(f["value_at_risk"]) > 0 and f["tier"] == "silver" and f["days_since_last_purchase"] == 121
    assert f["typical_interval_days"] == 29.5
    stakes = [float(c["value_at_risk"]) for c in page["items"]]
    assert stakes == sorted(stakes, reverse=True)
    assert ids["A"] not in by_id  # bought yesterday, keeps coming
    only_gold = (await client.get("/v1/analytics/churn-risk", params={"tier": "gold"})).json()["items"]
    assert all(c["tier"] == "gold" for c in only_gold) and ids["F"] not in [c["customer_id"] for c in only_gold]
    assert (await client.get("/v1/analytics/churn-risk", params={"segment": "Loyal"})).status_code == 200


async def test_refresh_requests_join_the_running_job(client: httpx.AsyncClient, app: Any) -> None:
    # A refresh held by another replica (fresh heartbeat): every request, wherever it lands, joins it.
    async with app.state.database.session_scope() as session:
        running = AnalyticsJob(id=uuid7(), status="running", progress=0.5, requested_at=utcnow(),
                               started_at=utcnow(), heartbeat_at=utcnow())  # fmt: skip
        session.add(running)
    responses = await asyncio.gather(*(client.post("/v1/analytics/refresh", json={}) for _ in range(5)))
    assert {r.status_code for r in responses} == {202}
    assert {r.json()["id"] for r in responses} == {str(running.id)}
    # As of another moment it would write other tiers than asked for: a 409 that names the running job.
    other = await client.post("/v1/analytics/refresh", json={"as_of": AS_OF})
    assert other.status_code == 409 and other.headers["location"] == f"/v1/analytics/jobs/{running.id}", other.text
    async with app.state.database.session_scope() as session:
        await session.execute(update(AnalyticsJob).values(status="failed"))


def _own_database(
    backend: str, settings: Settings, tmp_path: Path
) -> AbstractAsyncContextManager[tuple[Database, Settings]]:
    return own_database(backend, settings, prefix="customer_api_jobs", alembic_ini=ALEMBIC_INI, directory=tmp_path)


async def _job(database: Database, job_id: uuid.UUID) -> AnalyticsJob:
    async with database.session_scope(read_only=True) as session:
        return (await session.execute(select(AnalyticsJob).where(AnalyticsJob.id == job_id))).scalar_one()


def _stop_at(stage: str) -> tuple[asyncio.Event, asyncio.Event, Progress]:
    """A progress hook that holds the refresh at `stage` until let go: (reached, let_go, hook)."""
    reached, let_go = asyncio.Event(), asyncio.Event()

    async def hold(current: str, _fraction: float) -> None:
        if current == stage:
            reached.set()
            await let_go.wait()

    return reached, let_go, hold


async def test_a_refresh_whose_runner_is_stopped_is_queued_again_and_the_next_request_runs_it(
    backend: str, settings: Settings, tmp_path: Path
) -> None:
    """SIGTERM cancels the worker mid-refresh: the job goes back to the queue at once, not after STALE_AFTER."""
    async with _own_database(backend, settings, tmp_path) as (database, own):
        async with database.session_scope() as session:
            job, _ = await request_refresh(session, as_of=None)
        reached, _, hold = _stop_at("scoring and fitting")
        runner = asyncio.create_task(run_one(database, own, progress=hold))
        await reached.wait()
        assert not await run_one(database, own)  # another replica polling now: the job is held, it leaves it be
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        stopped = await _job(database, job.id)
        assert (stopped.status, stopped.started_at, stopped.heartbeat_at) == ("queued", None, None)
        async with database.session_scope() as session:  # what POST /v1/analytics/refresh does: it joins the job
            joined, new = await request_refresh(session, as_of=None)
        assert (joined.id, new) == (job.id, False)

        async with serving(create_app(own)) as client:  # this replica once restarted: it takes the job over at once
            done = await poll_status(client, f"/v1/analytics/jobs/{job.id}", while_in=("queued", "running"))
        assert done["status"] == "succeeded", done


async def test_a_refresh_stage_longer_than_the_stale_timeout_keeps_its_claim(
    backend: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat goes on during a stage (a big base's fit), so no other replica takes the refresh over and
    runs it a second time."""
    monkeypatch.setattr(jobs, "STALE_AFTER", dt.timedelta(seconds=1))
    monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.05)
    async with _own_database(backend, settings, tmp_path) as (database, own):
        async with database.session_scope() as session:
            job, _ = await request_refresh(session, as_of=None)
        reached, let_go, hold = _stop_at("scoring and fitting")
        runner = asyncio.create_task(run_one(database, own, progress=hold))
        try:
            await reached.wait()
            for _ in range(100):  # until the stage has lasted longer than STALE_AFTER
                held = await _job(database, job.id)
                assert held.heartbeat_at is not None and held.started_at is not None
                if held.heartbeat_at - held.started_at > jobs.STALE_AFTER:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("no heartbeat while the stage ran")
            assert not await run_one(database, own)  # another replica polling now: not stale, not taken over
            let_go.set()
            assert await runner
        finally:
            runner.cancel()
        finished = await _job(database, job.id)
        assert (finished.status, finished.started_at) == ("succeeded", held.started_at)


async def test_a_refresh_as_of_a_future_moment_is_refused(client: httpx.AsyncClient) -> None:
    ahead = (utcnow() + dt.timedelta(days=1)).isoformat()
    refused = await client.post("/v1/analytics/refresh", json={"as_of": ahead})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.as_of", refused.text
    # Waited for: a refresh left running would write its (empty) observation over the next test's customers.
    await _refresh(client, utcnow().isoformat())


async def test_two_refreshes_at_once_agree_and_announce_each_change_once(client: httpx.AsyncClient, app: Any) -> None:
    ids = await _populate(client)
    as_of = dt.datetime.fromisoformat(AS_OF)
    first, second = await asyncio.gather(
        refresh_values(app.state.database, app.state.settings, as_of=as_of),
        refresh_values(app.state.database, app.state.settings, as_of=as_of),
    )
    assert first["valued"] == second["valued"] == 10
    assert first["tier_changes"] + second["tier_changes"] == 6
    feed = (await client.get("/v1/feeds/customers", params={"limit": 1000})).json()["items"]
    assert sum(e["type"] == "tier_changed" and e["data"]["source"] == "refresh" for e in feed) == 6
    for name, (*_, segment, tier) in EXPECTED.items():
        profile = (await client.get(f"/v1/customers/{ids[name]}")).json()
        assert (profile["tier"], profile["segment"]) == (tier, segment), name
    segments = (await client.get("/v1/analytics/segments")).json()
    assert sum(s["customers"] for s in segments["segments"]) == 10
    model = (await client.get("/v1/analytics/clv-model")).json()
    assert model["time_unit"] == "week" and set(model["bgnbd"]) >= {"r", "alpha", "a", "b"}
    assert model["version"] == segments["model_version"]


async def test_analytics_scopes_and_empty_state(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/analytics/clv-model")).status_code == 404
    empty = (await client.get("/v1/analytics/segments")).json()
    assert empty["segments"] == [] and empty["as_of"] is None
    reader = {"Authorization": "Bearer reader-key-0001"}
    assert (await client.post("/v1/analytics/refresh", json={}, headers=reader)).status_code == 403
    assert (await client.post("/v1/analytics/refresh", json={"as_of": "2026-07-01"})).status_code == 422
    assert (await client.post("/v1/analytics/refresh", json={"as_of": 0})).status_code == 422  # not 1970


async def test_a_larger_base_gets_predicted_value_and_a_holdout_check(client: httpx.AsyncClient) -> None:
    rng = np.random.default_rng(7)
    rows = []
    for c in range(60):
        customer = await create_customer(client, name=f"客户{c}")
        rate = rng.uniform(0.01, 0.08)  # purchase days per day while active
        alive_days = int(rng.uniform(60, 540))
        days = sorted({int(d) for d in rng.uniform(0, alive_days, size=max(1, rng.poisson(rate * alive_days)))})
        for d in days:
            date = np.datetime64("2025-01-01") + np.timedelta64(d, "D")
            price = f"{rng.uniform(20, 200):.2f}"
            items = [{"sku": "S", "quantity": "1", "unit_price": price}]
            rows.append(order(customer["id"], purchased_at=f"{date}T12:00:00+08:00", items=items))
    assert (await client.post("/v1/purchases/bulk", json={"purchases": rows})).json()["created"] == len(rows)
    await _refresh(client)
    model = (await client.get("/v1/analytics/clv-model")).json()
    assert model["gamma_gamma"] is not None and model["holdout"]["customers"] > 0
    assert model["holdout"]["predicted_repeat_purchases"] > 0
    values = (await client.get("/v1/customers", params={"limit": 100})).json()["items"]
    predicted = [(await client.get(f"/v1/customers/{c['id']}/value")).json()["predicted_value"] for c in values]
    assert all(p is not None and float(p) >= 0 for p in predicted)


def test_quintiles_give_equal_customers_equal_scores() -> None:
    assert quintile_scores(np.array([3.0, 3.0, 3.0, 3.0])).tolist() == [1, 1, 1, 1]
    assert quintile_scores(np.arange(10, dtype=float)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert quintile_scores(np.array([0.0, 5.0, 5.0, 9.0]), higher_is_better=False).tolist() == [4, 2, 2, 1]


def test_tiers_share_ties_and_leave_non_spenders_regular() -> None:
    # 40 customers: the two top spenders are gold (nobody spent more); the 18 tied at 10 all have two
    # customers above them (5 % of 40), under the silver line of 20 %, so all 18 are silver together.
    spend = np.array([100.0, 100.0] + [10.0] * 18 + [0.0] * 20)
    placed = tiers(spend, {"gold": 0.05, "silver": 0.15, "bronze": 0.30})
    assert placed[:2] == ["gold", "gold"] and set(placed[2:20]) == {"silver"} and set(placed[20:]) == {"regular"}
