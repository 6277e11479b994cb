"""Repurchase rates of a period's buyers (the complaint statistics' control group), against hand-computed values.

Day 0 is midnight UTC 200 days before today, so "now" is day 200 plus under 24 hours; the period is
days [0, 180). A window of N days is observable for anchors on or before day 200 − N (plus the hours
of today), i.e. day 170 for 30 days and day 110 for 90 days. Purchases at 09:00 unless stated:

    A  regular  10, 40 (exactly 30 days later)        anchor 10    30 ✓   90 ✓
    B  regular  10, 40 09:01, 100                     anchor 10    30 ✗   90 ✓ (day 40 09:01)
    C  regular  −5 (before the period), 20             anchor 20    30 ✗   90 ✗
    D  regular  100, 185 (after the period)            anchor 100   30 ✗   90 ✓ (85 days)
    E  regular  150, 160                               anchor 150   30 ✓   90 not observable
    F  regular  175, 176                               anchor 175   neither window observable
    G  gold     30, 50                                 anchor 30    30 ✓   90 ✓
    H  regular  10, 20, then erased                    not a live profile: left out
    K  regular  −50, 190                               no purchase in the period: not a buyer

All tiers: 7 buyers (A–G). 30 days: eligible A B C D E G = 6, repurchased A E G = 3 → 0.5.
90 days: eligible A B C D G = 5, repurchased A B D G = 4 → 0.8.
Excluding A and E: 5 buyers; 30 days: eligible B C D G = 4, repurchased G = 1 → 0.25;
90 days: eligible B C D G = 4, repurchased B D G = 3 → 0.75.
Gold: G alone, 1/1 in both windows. Silver: nobody, rates null.
A 7-day window: every buyer observable (anchors ≤ day 193); only F (175 → 176) bought again within 7 days
→ 1/7 = 0.1429. Excluding F too: 0/6 = 0.0, a rate of zero rather than null.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from conftest import auth
from helpers import create_customer, order

from crm_kit.db import utcnow

URL = "/v1/analytics/repurchase"
# Fixed once: every boundary above has at least a day of slack, so a run that crosses midnight still holds.
DAY_0 = utcnow().replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=200)


def _day(day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return DAY_0 + dt.timedelta(days=day, hours=hour, minutes=minute)


def _body(**fields: Any) -> dict[str, Any]:
    return {"from": _day(0, 0).isoformat(), "to": _day(180, 0).isoformat(), **fields}


async def _buyer(client: httpx.AsyncClient, purchases: list[dt.datetime], tier: str | None = None) -> str:
    customer = await create_customer(client)
    if tier is not None:
        url = f"/v1/customers/{customer['id']}"
        patched = await client.patch(url, json={"tier": tier}, headers={"If-Match": '"1"'})
        assert patched.status_code == 200, patched.text
    for when in purchases:
        response = await client.post("/v1/purchases", json=order(customer["id"], purchased_at=when.isoformat()))
        assert response.status_code == 201, response.text
    return str(customer["id"])


def _windows(body: dict[str, Any]) -> dict[int, tuple[int, int, float | None]]:
    return {w["days"]: (w["eligible"], w["repurchased"], w["rate"]) for w in body["windows"]}


async def test_repurchase_rates_equal_the_hand_computed_values(client: httpx.AsyncClient) -> None:
    a = await _buyer(client, [_day(10), _day(40)])
    await _buyer(client, [_day(10), _day(40, minute=1), _day(100)])
    await _buyer(client, [_day(-5), _day(20)])
    await _buyer(client, [_day(100, hour=10), _day(185, hour=10)])
    e = await _buyer(client, [_day(150), _day(160)])
    f = await _buyer(client, [_day(175), _day(176)])
    await _buyer(client, [_day(30), _day(50)], tier="gold")
    h = await _buyer(client, [_day(10), _day(20)])
    assert (await client.delete(f"/v1/customers/{h}")).status_code == 204
    await _buyer(client, [_day(-50), _day(190)])

    everyone = await client.post(URL, json=_body())
    assert everyone.status_code == 200, everyone.text
    body = everyone.json()
    assert body["customers"] == 7 and body["tier"] is None
    assert _windows(body) == {30: (6, 3, 0.5), 90: (5, 4, 0.8)}

    excluded = (await client.post(URL, json=_body(exclude_customer_ids=[a, e]))).json()
    assert excluded["customers"] == 5
    assert _windows(excluded) == {30: (4, 1, 0.25), 90: (4, 3, 0.75)}
    longest = [a, *(str(uuid.uuid4()) for _ in range(9_999))]  # the most a caller may exclude
    assert (await client.post(URL, json=_body(exclude_customer_ids=longest))).json()["customers"] == 6

    gold = (await client.post(URL, json=_body(tier="gold"))).json()
    assert gold["customers"] == 1 and gold["tier"] == "gold"
    assert _windows(gold) == {30: (1, 1, 1.0), 90: (1, 1, 1.0)}
    silver = (await client.post(URL, json=_body(tier="silver"))).json()
    assert silver["customers"] == 0 and _windows(silver) == {30: (0, 0, None), 90: (0, 0, None)}

    week = (await client.post(URL, json=_body(windows_days=[7]))).json()
    assert week["customers"] == 7 and _windows(week) == {7: (7, 1, 0.1429)}
    week_without_f = (await client.post(URL, json=_body(windows_days=[7], exclude_customer_ids=[f]))).json()
    assert _windows(week_without_f) == {7: (6, 0, 0.0)}


async def test_repurchase_input_checks(client: httpx.AsyncClient) -> None:
    bad_bodies = [
        {"from": _day(10).isoformat(), "to": _day(10).isoformat()},
        {"from": _day(20).isoformat(), "to": _day(10).isoformat()},
        _body(windows_days=[0]),
        _body(windows_days=[366]),
        _body(windows_days=[]),
        _body(windows_days=[7, 14, 30, 60, 90]),
        _body(windows_days=[30, 30]),
        _body(tier="platinum"),
        _body(exclude_customer_ids=[str(uuid.uuid4()) for _ in range(10_001)]),
        _body(exclude_customer_ids=["not-a-uuid"]),
        _body(start=_day(0).isoformat()),
        {"to": _day(10).isoformat()},
        {"from": "2026-10-01T00:00:00", "to": _day(10).isoformat()},
    ]
    for bad in bad_bodies:
        response = await client.post(URL, json=bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    forbidden = await client.post(URL, json=_body(), headers=auth("reader"))
    assert forbidden.status_code == 403
