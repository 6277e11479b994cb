"""The serving API on a hand-made basket set whose statistics are computed by hand below."""

from __future__ import annotations

import asyncio
import datetime as dt
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from conftest import T0, add_baskets, auth, build_model, customer
from fastapi import FastAPI

from crm_kit.db import Database, utcnow
from crm_kit.testing import own_database, poll_status, serving
from recommend_api.builds.models import ModelVersion
from recommend_api.builds.service import claim_build, request_build, run_build
from recommend_api.config import Settings
from recommend_api.main import ALEMBIC_INI, create_app

# Six baskets of four customers. Baskets holding A: 4, B: 4, C: 3, D: 3 (of 6).
# A&B: baskets 1, 2, 5 → count 3, support 3/6 = 0.5, confidence A→B = 3/4 = 0.75, lift = 0.75 / (4/6) = 1.125.
# A&C: baskets 1, 3 → count 2, support 1/3, confidence A→C = 2/4 = 0.5, lift = 0.5 / (3/6) = 1.0.
# A&D: basket 5 → count 1, support 1/6, confidence A→D = 1/4, lift = 0.25 / 0.5 = 0.5.
BASKETS = [
    (1, ["A", "B", "C"]),
    (1, ["A", "B"]),
    (2, ["A", "C"]),
    (2, ["B", "D"]),
    (3, ["A", "B", "D"]),
    (4, ["C", "D"]),
]
CATEGORIES = {"A": "乳品", "B": "早餐", "C": "乳品", "D": "零食"}


@pytest.fixture
async def model(app: FastAPI, client: httpx.AsyncClient) -> int:
    await add_baskets(app, BASKETS, categories=CATEGORIES)
    return await build_model(client)


async def test_related_items_carry_hand_computed_support_confidence_and_lift(
    client: httpx.AsyncClient, model: int
) -> None:
    body = (await client.get("/v1/items/A/related")).json()
    assert body["sku"] == "A" and body["model_version"] == model
    by_sku = {r["consequent"]: r for r in body["items"]}
    assert by_sku["B"]["count"] == 3
    assert by_sku["B"]["support"] == pytest.approx(0.5)
    assert by_sku["B"]["confidence"] == pytest.approx(0.75)
    assert by_sku["B"]["lift"] == pytest.approx(1.125)
    assert by_sku["C"]["count"] == 2
    assert by_sku["C"]["support"] == pytest.approx(1 / 3)
    assert by_sku["C"]["confidence"] == pytest.approx(0.5)
    assert by_sku["C"]["lift"] == pytest.approx(1.0)
    assert body["items"][0]["consequent"] == "B"


async def test_rules_filter_by_thresholds(client: httpx.AsyncClient, model: int) -> None:
    # Support ≥ 0.3 and confidence ≥ 0.7 leave only A→B and B→A (C→A has 2/3, D→B 2/3).
    body = (await client.get("/v1/rules", params={"min_support": 0.3, "min_confidence": 0.7})).json()
    rules = {(tuple(r["antecedent"]), r["consequent"]): r for r in body["items"]}
    assert set(rules) == {(("A",), "B"), (("B",), "A")}
    assert rules[(("B",), "A")]["lift"] == pytest.approx(1.125)
    only_d = (await client.get("/v1/rules", params={"min_support": 0.1, "min_confidence": 0.5, "sku": "D"})).json()
    assert only_d["items"] and all("D" in [*r["antecedent"], r["consequent"]] for r in only_d["items"])


async def test_rules_page_with_a_cursor(client: httpx.AsyncClient, model: int) -> None:
    params = {"min_support": 0.1, "min_confidence": 0.1, "min_lift": 0, "limit": 2}
    first = (await client.get("/v1/rules", params=params)).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = (await client.get("/v1/rules", params={**params, "cursor": first["next_cursor"]})).json()
    seen = [(tuple(r["antecedent"]), r["consequent"]) for r in first["items"] + second["items"]]
    assert len(seen) == len(set(seen))


async def test_personal_recommendations_explain_themselves(client: httpx.AsyncClient, model: int) -> None:
    body = (await client.get(f"/v1/customers/{customer(1)}/recommendations", params={"limit": 4})).json()
    assert body["personalised"] is True and body["model_version"] == model
    repeat = {i["sku"]: i for i in body["items"] if i["reason"] == "repeat"}
    assert repeat["A"]["times_bought"] == 2 and repeat["B"]["times_bought"] == 2
    assert repeat["A"]["last_bought_at"].startswith("2026-10-02")
    assert repeat["A"]["name"] == "商品A" and repeat["A"]["category"] == "乳品"
    for item in body["items"]:
        if item["reason"] == "bought_together":
            assert item["because"]


async def test_category_and_exclude_filter_recommendations(client: httpx.AsyncClient, model: int) -> None:
    url = f"/v1/customers/{customer(1)}/recommendations"
    dairy = (await client.get(url, params={"category": "乳品"})).json()["items"]
    assert dairy and {i["category"] for i in dairy} == {"乳品"}
    without_a = (await client.get(url, params=[("exclude", "A"), ("exclude", "B")])).json()["items"]
    assert without_a and not {"A", "B"} & {i["sku"] for i in without_a}


async def test_rows_of_one_kind_buy_again_and_discover(client: httpx.AsyncClient, model: int) -> None:
    url = f"/v1/customers/{customer(2)}/recommendations"  # customer 2 bought A, B, C and D: nothing is new
    again = (await client.get(url, params={"kind": "repeat"})).json()
    assert {i["sku"] for i in again["items"]} == {"A", "B", "C", "D"} and again["personalised"] is True
    assert (await client.get(url, params={"kind": "new"})).json()["items"] == []
    url = f"/v1/customers/{customer(3)}/recommendations"  # customer 3 bought A, B and D
    assert [i["sku"] for i in (await client.get(url, params={"kind": "new"})).json()["items"]] == ["C"]
    cold = f"/v1/customers/{customer(999)}/recommendations"
    assert (await client.get(cold, params={"kind": "repeat"})).json()["items"] == []
    assert {i["reason"] for i in (await client.get(cold, params={"kind": "new"})).json()["items"]} == {"popular"}


async def test_cold_start_gets_popular_items(client: httpx.AsyncClient, model: int) -> None:
    body = (await client.get(f"/v1/customers/{customer(999)}/recommendations")).json()
    assert body["personalised"] is False
    assert body["items"] and {i["reason"] for i in body["items"]} == {"popular"}
    popular = (await client.get("/v1/popular", params={"limit": 2})).json()
    assert len(popular["items"]) == 2 and {i["sku"] for i in popular["items"]} <= {"A", "B", "C", "D"}
    dairy = (await client.get("/v1/popular", params={"category": "乳品"})).json()["items"]
    assert {i["sku"] for i in dairy} == {"A", "C"}


async def test_basket_completion_never_returns_the_cart(client: httpx.AsyncClient, model: int) -> None:
    for cart in (["A"], ["A", "B"], ["C", "D"], ["A", "B", "C", "D"]):
        for who in (None, str(customer(2))):
            body = {"items": cart, "limit": 5, **({"customer_id": who} if who else {})}
            response = await client.post("/v1/baskets/complete", json=body)
            assert response.status_code == 200, response.text
            assert not set(cart) & {i["sku"] for i in response.json()["items"]}
    suggestions = (await client.post("/v1/baskets/complete", json={"items": ["A"]})).json()["items"]
    assert suggestions[0]["sku"] == "B" and suggestions[0]["reason"] == "bought_together"
    assert suggestions[0]["because"] == ["A"]


async def test_recovery_offers_avoid_the_complained_sku_and_category(client: httpx.AsyncClient, model: int) -> None:
    url = f"/v1/customers/{customer(1)}/recovery-offers"
    body = (await client.get(url, params={"avoid_sku": "B", "avoid_category": "乳品", "limit": 10})).json()
    skus = {i["sku"] for i in body["items"]}
    assert skus and not skus & {"A", "B", "C"}  # A and C are dairy (乳品)
    anyone = (await client.get(f"/v1/customers/{customer(999)}/recovery-offers", params={"avoid_sku": "A"})).json()
    assert anyone["items"] and not {"A", "C"} & {i["sku"] for i in anyone["items"]}  # C shares A's category


async def test_recovery_offers_are_not_made_because_of_the_avoided_item(client: httpx.AsyncClient, model: int) -> None:
    """Customer 1 bought A, B and C, and only B of them is bought with D often enough: after a complaint about B, D
    may be offered as a popular item, not as one that goes with B."""
    mine = (await client.get(f"/v1/customers/{customer(1)}/recommendations")).json()["items"]
    assert {i["sku"]: i["because"] for i in mine}["D"] == ["B"]
    url = f"/v1/customers/{customer(1)}/recovery-offers"
    for avoided in ({"avoid_sku": "B"}, {"avoid_category": "早餐"}):  # B is breakfast (早餐)
        offered = (await client.get(url, params={**avoided, "limit": 10})).json()["items"]
        assert {i["sku"]: i["reason"] for i in offered} == {"A": "repeat", "C": "repeat", "D": "popular"}, avoided
        assert not any(i["because"] for i in offered), avoided


async def test_recovery_offers_avoid_the_category_of_an_item_first_bought_after_the_build(
    app: FastAPI, client: httpx.AsyncClient, model: int
) -> None:
    """The complaint is about milk bought yesterday: the served model has never seen that SKU, the synced items have."""
    await add_baskets(app, [(5, ["NEW-MILK"])], categories={"NEW-MILK": "乳品"}, start=T0 + dt.timedelta(days=30))
    assert (await client.post("/v1/sync")).status_code == 200  # customer-api is down; the items are read anyway
    assert (await client.get("/v1/models/current")).json()["version"] == model  # no rebuild
    for who in (customer(1), customer(999)):
        url = f"/v1/customers/{who}/recovery-offers"
        offered = (await client.get(url, params={"avoid_sku": "NEW-MILK", "limit": 10})).json()["items"]
        assert offered and not {"A", "C", "NEW-MILK"} & {i["sku"] for i in offered}  # A and C are dairy (乳品)


async def test_categories_are_matched_as_people_type_them(client: httpx.AsyncClient, app: FastAPI) -> None:
    """Spaces, case and full-width forms do not make an avoided category slip through, nor a filter miss."""
    await add_baskets(app, [(1, ["BREAD", "CAKE", "MILK"]), (2, ["BREAD", "TEA"]), (2, ["CAKE", "MILK"])],
                      categories={"BREAD": "Bakery", "CAKE": "bakery ", "MILK": "Dairy", "TEA": "Ｄrinks"})  # fmt: skip
    await build_model(client)
    url = f"/v1/customers/{customer(1)}/recovery-offers"
    for avoided in (" bakery", "BAKERY", "Ｂａｋｅｒｙ"):
        offered = (await client.get(url, params={"avoid_category": avoided, "limit": 10})).json()["items"]
        assert offered and not {"BREAD", "CAKE"} & {i["sku"] for i in offered}, avoided
    for asked in ("bakery", " Bakery "):
        popular = (await client.get("/v1/popular", params={"category": asked})).json()["items"]
        assert {i["sku"] for i in popular} == {"BREAD", "CAKE"}
        mine = (await client.get(f"/v1/customers/{customer(1)}/recommendations", params={"category": asked})).json()
        assert {i["sku"] for i in mine["items"]} == {"BREAD", "CAKE"}
    drinks = (await client.get("/v1/popular", params={"category": "drinks"})).json()["items"]
    assert [i["sku"] for i in drinks] == ["TEA"]


async def test_before_the_first_build_every_answer_is_503_with_retry_after(settings: Settings) -> None:
    fresh = create_app(settings)  # the suite's app keeps serving the last model built by an earlier test
    async with (
        LifespanManager(fresh),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=fresh), base_url="http://fresh", headers=auth("reader")
        ) as client,
    ):
        assert fresh.state.current is None
        for response in [
            await client.get(f"/v1/customers/{customer(1)}/recommendations"),
            await client.get(f"/v1/customers/{customer(1)}/recovery-offers", params={"avoid_sku": "A"}),
            await client.get("/v1/items/A/related"),
            await client.post("/v1/baskets/complete", json={"items": ["A"]}),
            await client.get("/v1/rules"),
            await client.get("/v1/popular"),
        ]:
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.headers["retry-after"] == "5"


async def test_a_build_request_while_one_is_pending_returns_it(client: httpx.AsyncClient, app: FastAPI) -> None:
    await add_baskets(app, BASKETS)
    first = (await client.post("/v1/models", json={"evaluate": False})).json()
    second = (await client.post("/v1/models", json={"evaluate": False})).json()
    if first["status"] in ("queued", "building") and second["version"] != first["version"]:
        pytest.fail("a second build was queued while the first was pending")
    keyed = {"Idempotency-Key": "build-once-0001"}
    again = [(await client.post("/v1/models", json={}, headers=keyed)).json()["version"] for _ in range(2)]
    assert again[0] == again[1]
    # Waited for: a build left running would swap its model in during the next test.
    for version in {first["version"], second["version"], again[0]}:
        done = await poll_status(client, f"/v1/models/{version}", while_in=("queued", "building"))
        assert done["status"] == "ready", done


async def test_a_change_to_the_history_waits_for_no_build_that_already_read_it(app: FastAPI) -> None:
    database: Database = app.state.database
    async with database.sessions() as session:  # never committed: the build worker sees none of it
        running = ModelVersion(status="building", reason="requested", requested_at=utcnow(), heartbeat_at=utcnow())
        session.add(running)
        await session.flush()
        joined, queued = await request_build(session, reason="requested")
        assert (joined.version, queued) == (running.version, False)
        fresh, queued = await request_build(session, reason="erasure", fresh=True)
        assert fresh.version > running.version and queued and fresh.status == "queued"
        # A build still queued has read nothing yet: it serves the next erasure or merge too.
        again, queued = await request_build(session, reason="merge", fresh=True)
        assert (again.version, queued) == (fresh.version, False)
        await session.rollback()


def _own_database(
    backend: str, settings: Settings, tmp_path: Path
) -> AbstractAsyncContextManager[tuple[Database, Settings]]:
    return own_database(backend, settings, prefix="recommend_api_builds", alembic_ini=ALEMBIC_INI, directory=tmp_path)


async def _started_build(database: Database, settings: Settings, builder: str) -> tuple[int, asyncio.Task[None]]:
    """Queue a build, claim it as `builder` and run it up to its CPU work, where it stays: (version, its task)."""
    async with database.session_scope() as session:
        queued, _ = await request_build(session, reason="requested", evaluate=False)
    claim = await claim_build(database, builder=builder, stale_seconds=120)
    assert claim is not None and claim.version == queued.version
    building = asyncio.Event()

    async def hold(stage: str) -> None:
        if stage == "building":
            building.set()
            await asyncio.Event().wait()

    worker = asyncio.create_task(
        run_build(database, claim, settings.model_params(), heartbeat_seconds=30, progress=hold)
    )
    await building.wait()
    return claim.version, worker


async def _version(database: Database, version: int) -> ModelVersion:
    async with database.session_scope(read_only=True) as session:
        return await session.get_one(ModelVersion, version)


async def test_a_build_whose_worker_is_stopped_is_queued_again_and_the_next_request_builds_it(
    backend: str, settings: Settings, tmp_path: Path
) -> None:
    """SIGTERM cancels the worker mid-build: the build goes back to the queue at once, not after the stale time."""
    async with _own_database(backend, settings, tmp_path) as (database, own):
        version, worker = await _started_build(database, own, "replica-a:1")
        assert await claim_build(database, builder="replica-b:2", stale_seconds=120) is None  # held: left be
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
        stopped = await _version(database, version)
        assert (stopped.status, stopped.builder, stopped.started_at, stopped.heartbeat_at) == (
            "queued",
            None,
            None,
            None,
        )
        async with database.session_scope() as session:  # what POST /v1/models does: it returns that build
            joined, queued = await request_build(session, reason="requested")
        assert (joined.version, queued) == (version, False)

        async with serving(create_app(own)) as client:  # this replica once restarted: it builds the version at once
            build = await poll_status(client, f"/v1/models/{version}", while_in=("queued", "building"))
        assert build["status"] == "ready", build


async def test_a_stopped_worker_does_not_hand_back_a_build_another_replica_took_over(
    backend: str, settings: Settings, tmp_path: Path
) -> None:
    async with _own_database(backend, settings, tmp_path) as (database, own):
        version, worker = await _started_build(database, own, "replica-a:1")
        taken = await claim_build(database, builder="replica-b:2", stale_seconds=0)  # as if A had gone silent
        assert taken is not None and taken.version == version
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
        held = await _version(database, version)
        assert (held.status, held.builder, held.started_at) == ("building", "replica-b:2", taken.started_at)


async def test_a_cart_with_an_item_twice_gets_what_it_gets_with_it_once(client: httpx.AsyncClient, model: int) -> None:
    once = (await client.post("/v1/baskets/complete", json={"items": ["A", "D"], "limit": 5})).json()
    for cart in (["A", "A", "A", "D"], ["A", "D", "D", "D"]):
        twice = (await client.post("/v1/baskets/complete", json={"items": cart, "limit": 5})).json()
        assert twice["items"] == once["items"]


async def test_an_item_whose_sku_holds_a_slash_has_its_related_items(app: FastAPI, client: httpx.AsyncClient) -> None:
    await add_baskets(app, [(1, ["MILK/500ML", "BREAD"]), (2, ["MILK/500ML", "BREAD"]), (3, ["EGGS"])])
    await build_model(client)
    for path in ("/v1/items/MILK/500ML/related", "/v1/items/MILK%2F500ML/related"):
        response = await client.get(path)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["sku"] == "MILK/500ML" and [r["consequent"] for r in body["items"]] == ["BREAD"]


async def test_a_service_configured_to_explore_gives_every_nth_slot_to_a_new_item(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await add_baskets(app, BASKETS, categories=CATEGORIES)
    settings: Settings = app.state.settings
    settings.explore_every = 2  # RECOMMEND_API_EXPLORE_EVERY=2: every build of this service uses it
    try:
        await build_model(client)
    finally:
        settings.explore_every = 0
    assert (await client.get("/v1/models/current")).json()["params"]["explore_every"] == 2
    body = (await client.get(f"/v1/customers/{customer(3)}/recommendations")).json()  # bought A, B and D
    assert [i["reason"] == "repeat" for i in body["items"][:3]] == [True, False, True]
    assert body["items"][1]["sku"] == "C"


async def test_build_stores_an_evaluation(client: httpx.AsyncClient, app: FastAPI) -> None:
    # Customers with at least two baskets are evaluated on their last one.
    await add_baskets(app, [(n % 5, [*["A", "B", "C"][n % 3 :], "D"]) for n in range(30)], categories=CATEGORIES)
    version = await build_model(client, evaluate=True)
    current = (await client.get("/v1/models/current")).json()
    assert current["version"] == version
    evaluation = current["evaluation"]
    assert {"model", "model_new_items", "popularity", "top_frequency"} <= set(evaluation)
    assert evaluation["model_new_items"]["repeat_ratio"] == 0
    assert evaluation["model"]["users"] == 5 and 0 <= evaluation["model"]["recall"] <= 1
    assert current["sizes"]["baskets"] == 30


async def test_a_model_swap_under_load_answers_every_request(client: httpx.AsyncClient, app: FastAPI) -> None:
    await add_baskets(app, BASKETS, categories=CATEGORIES)
    first = await build_model(client)
    statuses: list[int] = []
    versions: list[int] = []
    stop = asyncio.Event()

    async def hammer() -> None:
        while not stop.is_set():
            response = await client.get(f"/v1/customers/{customer(1)}/recommendations")
            statuses.append(response.status_code)
            versions.append(response.json()["model_version"])
            await asyncio.sleep(0)

    workers = [asyncio.create_task(hammer()) for _ in range(4)]
    try:
        last = first
        for day in range(3):
            await add_baskets(app, [(5, ["A", "D"])], start=dt.datetime(2026, 11, 1 + day, tzinfo=dt.UTC))
            last = await build_model(client)
        # Requests already under way when the last swap landed answer with the version before; wait for a new one.
        for _ in range(1000):
            if last in versions:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.gather(*workers)
    assert last > first
    assert statuses and set(statuses) == {200}
    assert set(versions) <= set(range(first, last + 1)) and last in versions


async def test_a_restarted_replica_serves_the_stored_version(
    client: httpx.AsyncClient, model: int, settings: Settings
) -> None:
    other = create_app(settings)
    async with (
        LifespanManager(other),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other), base_url="http://other", headers=dict(client.headers)
        ) as replica,
    ):
        current = (await replica.get("/v1/models/current")).json()
        assert current["version"] == model
        mine = (await client.get(f"/v1/customers/{customer(1)}/recommendations")).json()
        theirs = (await replica.get(f"/v1/customers/{customer(1)}/recommendations")).json()
        assert mine == theirs


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("get", "/v1/customers/not-a-uuid/recommendations", {}),
        ("get", f"/v1/customers/{customer(1)}/recommendations", {"params": {"limit": 0}}),
        ("get", f"/v1/customers/{customer(1)}/recommendations", {"params": {"limit": 51}}),
        ("get", f"/v1/customers/{customer(1)}/recommendations", {"params": {"kind": "everything"}}),
        ("get", "/v1/rules", {"params": {"min_support": 2}}),
        ("get", "/v1/rules", {"params": {"cursor": "forged.cursor"}}),
        ("get", "/v1/popular", {"params": {"category": ""}}),
        ("post", "/v1/baskets/complete", {"json": {"items": []}}),
        ("post", "/v1/baskets/complete", {"json": {"items": ["A"], "coupon": "x"}}),
        ("post", "/v1/baskets/complete", {"json": {"items": ["A"], "customer_id": "nobody"}}),
        ("post", "/v1/models", {"json": {"evaluate": "often"}}),
        ("post", "/v1/models", {"json": {"evaluate": 0}}),  # true or false, not a number
        ("get", "/v1/models/0", {}),
        ("get", "/v1/items/UNKNOWN/related", {}),
    ],
)
async def test_bad_requests_get_a_problem(
    client: httpx.AsyncClient, model: int, method: str, url: str, kwargs: dict[str, object]
) -> None:
    response = await getattr(client, method)(url, **kwargs)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == response.status_code


async def test_keys_and_scopes(client: httpx.AsyncClient, model: int) -> None:
    url = f"/v1/customers/{customer(1)}/recommendations"
    assert (await client.get(url, headers={"Authorization": ""})).status_code == 401
    assert (await client.get(url, headers=auth("outsider"))).status_code == 403
    assert (await client.get(url, headers=auth("reader"))).status_code == 200
    assert (await client.post("/v1/models", json={}, headers=auth("reader"))).status_code == 403
    assert (await client.post("/v1/sync", headers=auth("reader"))).status_code == 403
