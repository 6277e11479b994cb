"""The complaint process of DESIGN §3 over HTTP: both paths, every illegal move, concurrency, satisfaction."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from conftest import auth
from test_kb import article as kb_article

from complaint_api.complaints.service import TRANSITIONS, allowed_actions, priority_for

CUSTOMER = "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42"
BODIES: dict[str, dict[str, Any]] = {
    "answer": {"message": "根据退换货政策，可在7天内无理由退货"},
    "escalate": {"department": "生鲜部", "assignee_id": "mgr-012", "note": "请核实批次"},
    "resolution": {
        "root_cause": "cold_chain",
        "resolution": "全额退款并补偿50元券",
        "corrective_action": "冷柜温控改为每2小时巡检",
    },
    "reply": {"message": "经核实为冷链问题，已为您全额退款并补偿50元券"},
    "close": {},
    "reopen": {"reason": "退款未到账"},
    "cancel": {"reason": "invalid"},
}


async def take(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {
        "customer_id": CUSTOMER,
        "channel": "phone",
        "category": "food_safety",
        "subject": "买的牛奶已经变质",
        "description": "昨天在静安店买的鲜牛奶，打开有酸味，保质期内。",
        "severity": "high",
        **fields,
    }
    response = await client.post("/v1/complaints", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def step(client: httpx.AsyncClient, complaint: dict[str, Any], action: str, **extra: Any) -> httpx.Response:
    return await client.post(f"/v1/complaints/{complaint['id']}/{action}", json={**BODIES[action], **extra})


async def test_intake_numbers_prioritises_and_keeps_the_complaint_when_customer_api_is_down(
    client: httpx.AsyncClient,
) -> None:
    first = await take(client)
    second = await take(client, severity="low")
    assert re.fullmatch(r"C\d{8}-0001", first["number"]) and second["number"].endswith("-0002")
    assert first["status"] == "open" and first["priority"] == "high" and second["priority"] == "low"
    assert first["snapshot_status"] == "pending" and first["customer_snapshot"] == {}
    read = await client.get(f"/v1/complaints/{first['id']}")
    assert read.status_code == 200 and read.headers["etag"] == '"1"'
    timeline = (await client.get(f"/v1/complaints/{first['id']}/timeline")).json()["items"]
    assert [(e["type"], e["to_status"]) for e in timeline] == [("created", "open")]


async def test_first_contact_resolution_path(client: httpx.AsyncClient) -> None:
    complaint = await take(client)
    article = (await client.post("/v1/kb/articles", json=kb_article(slug="milk-refund"))).json()["id"]
    answered = await step(client, complaint, "answer", article_id=article)
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["status"] == "answered" and body["answered_article_id"] == article
    assert body["first_responded_at"] and body["resolved_at"]
    closed = (await step(client, complaint, "close")).json()
    assert closed["status"] == "closed" and closed["closed_at"]
    rated = await client.post(
        f"/v1/complaints/{complaint['id']}/satisfaction", json={"score": 5, "reason_code": "speed"}
    )
    assert rated.status_code == 200 and rated.json()["satisfaction"]["score"] == 5


async def test_escalation_path_with_timeline_kept_apart(client: httpx.AsyncClient) -> None:
    complaint = await take(client)
    for action, status in (
        ("escalate", "escalated"),
        ("resolution", "resolved"),
        ("reply", "replied"),
        ("close", "closed"),
    ):
        response = await step(client, complaint, action)
        assert response.status_code == 200, (action, response.text)
        assert response.json()["status"] == status
    final = (await client.get(f"/v1/complaints/{complaint['id']}")).json()
    assert final["department"] == "生鲜部" and final["assignee_id"] == "mgr-012"
    assert final["root_cause"] == "cold_chain" and final["corrective_action"].startswith("冷柜")
    assert final["version"] == 5
    await client.post(f"/v1/complaints/{complaint['id']}/notes", json={"note": "顾客情绪激动，回访时注意语气"})
    everything = (await client.get(f"/v1/complaints/{complaint['id']}/timeline")).json()["items"]
    assert [e["to_status"] for e in everything if e["type"] == "status_changed"] == [
        "escalated", "resolved", "replied", "closed"
    ]  # fmt: skip
    assert all(e["actor"] == "dev" for e in everything)
    public = (await client.get(f"/v1/complaints/{complaint['id']}/timeline", params={"visibility": "public"})).json()
    assert [e["note"] for e in public["items"]] == [BODIES["reply"]["message"]]
    internal = (
        await client.get(f"/v1/complaints/{complaint['id']}/timeline", params={"visibility": "internal"})
    ).json()
    assert "顾客情绪激动，回访时注意语气" in [e["note"] for e in internal["items"]]


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
async def test_every_illegal_move_is_a_409_naming_the_allowed_ones(client: httpx.AsyncClient, action: str) -> None:
    # Walk a complaint through each state and try the action wherever the process does not allow it.
    paths = {
        "open": [],
        "answered": ["answer"],
        "escalated": ["escalate"],
        "resolved": ["escalate", "resolution"],
        "replied": ["escalate", "resolution", "reply"],
        "closed": ["answer", "close"],
        "reopened": ["answer", "close", "reopen"],
        "cancelled": ["cancel"],
    }
    for state, path in paths.items():
        if state in TRANSITIONS[action].from_states:
            continue
        complaint = await take(client)
        for earlier in path:
            assert (await step(client, complaint, earlier)).status_code == 200
        response = await step(client, complaint, action)
        assert response.status_code == 409, (action, state)
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["status_now"] == state and problem["allowed_actions"] == allowed_actions(state)


async def test_a_score_is_a_whole_number_as_the_schema_says(client: httpx.AsyncClient) -> None:
    complaint = await take(client)
    await step(client, complaint, "answer")
    await step(client, complaint, "close")
    url = f"/v1/complaints/{complaint['id']}/satisfaction"
    for score in (True, "3", 2.5):
        refused = await client.post(url, json={"score": score})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.score", refused.text
    assert (await client.get(f"/v1/complaints/{complaint['id']}")).json()["satisfaction"] is None
    assert (await client.post(url, json={"score": 3})).status_code == 200


async def test_reopen_then_escalate_and_rate_again(client: httpx.AsyncClient) -> None:
    complaint = await take(client)
    await step(client, complaint, "answer")
    await step(client, complaint, "close")
    first = await client.post(f"/v1/complaints/{complaint['id']}/satisfaction", json={"score": 2, "comment": "没解决"})
    assert first.status_code == 200
    again = await client.post(f"/v1/complaints/{complaint['id']}/satisfaction", json={"score": 4})
    assert again.status_code == 409
    reopened = (await step(client, complaint, "reopen")).json()
    assert reopened["status"] == "reopened" and reopened["reopen_count"] == 1 and reopened["closed_at"] is None
    for action in ("escalate", "resolution", "reply", "close"):
        assert (await step(client, complaint, action)).status_code == 200
    second = await client.post(f"/v1/complaints/{complaint['id']}/satisfaction", json={"score": 4})
    assert second.status_code == 200 and second.json()["satisfaction"]["closure"] == 1
    events = (await client.get(f"/v1/complaints/{complaint['id']}/timeline")).json()["items"]
    assert [e["type"] for e in events].count("satisfaction_low") == 1


async def test_reopen_window_and_follow_up(client: httpx.AsyncClient, app: Any) -> None:
    complaint = await take(client)
    await step(client, complaint, "answer")
    await step(client, complaint, "close")
    app.state.settings.reopen_days = 0
    try:
        late = await step(client, complaint, "reopen")
    finally:
        app.state.settings.reopen_days = 14
    assert late.status_code == 409 and "follows_up" in late.json()["detail"]
    follow = await take(client, follows_up=complaint["id"])
    assert follow["follows_up"] == complaint["id"]
    missing = await client.post("/v1/complaints", json={**BODIES["answer"], "customer_id": CUSTOMER})
    assert missing.status_code == 422


async def test_cancel_a_duplicate_links_it(client: httpx.AsyncClient) -> None:
    original = await take(client)
    duplicate = await take(client)
    no_link = await step(client, duplicate, "cancel", reason="duplicate")
    assert no_link.status_code == 422
    itself = await step(client, duplicate, "cancel", reason="duplicate", duplicate_of=duplicate["id"])
    assert itself.status_code == 422
    linked = await step(client, duplicate, "cancel", reason="duplicate", duplicate_of=original["id"])
    assert linked.status_code == 200
    assert linked.json()["status"] == "cancelled" and linked.json()["duplicate_of"] == original["id"]
    # The original stays: it cannot be cancelled as a duplicate of its own duplicate (or of any cancelled one).
    back = await step(client, original, "cancel", reason="duplicate", duplicate_of=duplicate["id"])
    assert back.status_code == 422 and back.json()["field"] == "duplicate_of", back.text
    assert (await client.get(f"/v1/complaints/{original['id']}")).json()["status"] == "open"


async def test_opposite_duplicate_cancellations_at_once_leave_one_complaint_open(client: httpx.AsyncClient) -> None:
    first, second = await take(client), await take(client)
    racing = await asyncio.gather(
        step(client, first, "cancel", reason="duplicate", duplicate_of=second["id"]),
        step(client, second, "cancel", reason="duplicate", duplicate_of=first["id"]),
    )
    assert sorted(r.status_code for r in racing) in ([200, 422], [200, 503]), [r.text for r in racing]
    statuses = [(await client.get(f"/v1/complaints/{c['id']}")).json()["status"] for c in (first, second)]
    assert sorted(statuses) == ["cancelled", "open"]


async def test_an_answer_names_an_article_that_exists(client: httpx.AsyncClient) -> None:
    complaint = await take(client)
    unknown = await step(client, complaint, "answer", article_id=str(uuid.uuid4()))
    assert unknown.status_code == 422 and unknown.json()["field"] == "article_id", unknown.text
    assert (await client.get(f"/v1/complaints/{complaint['id']}")).json()["status"] == "open"


async def test_a_note_retried_with_its_key_is_stored_once(client: httpx.AsyncClient) -> None:
    complaint = await take(client)
    url, key = f"/v1/complaints/{complaint['id']}/notes", {"Idempotency-Key": "note-once-0001"}
    sent = [await client.post(url, json={"note": "已致电顾客", "visibility": "public"}, headers=key) for _ in range(2)]
    assert [r.status_code for r in sent] == [201, 201] and sent[1].headers["idempotent-replayed"] == "true"
    assert sent[0].json() == sent[1].json()
    timeline = (await client.get(f"/v1/complaints/{complaint['id']}/timeline")).json()["items"]
    assert [e["note"] for e in timeline if e["type"] == "message"] == ["已致电顾客"]


async def test_concurrent_transitions_cannot_both_win(client: httpx.AsyncClient) -> None:
    complaint = await take(client)
    racing = await asyncio.gather(
        step(client, complaint, "answer"),
        client.post(f"/v1/complaints/{complaint['id']}/escalate", json=BODIES["escalate"], headers={"If-Match": '"1"'}),
        client.post(f"/v1/complaints/{complaint['id']}/cancel", json=BODIES["cancel"], headers={"If-Match": '"1"'}),
    )
    assert sorted(r.status_code for r in racing)[0] == 200
    assert [r.status_code for r in racing].count(200) == 1
    assert all(r.status_code in (409, 412) for r in racing if r.status_code != 200)
    final = (await client.get(f"/v1/complaints/{complaint['id']}")).json()
    assert final["version"] == 2
    stale = await client.post(f"/v1/complaints/{complaint['id']}/close", json={}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412


async def test_lists_filters_and_search(client: httpx.AsyncClient) -> None:
    a = await take(client, subject="收银员态度恶劣", category="service_attitude", channel="store")
    b = await take(client, subject="配送超时两天", category="delivery", channel="app")
    await step(client, b, "escalate")

    async def numbers(**params: Any) -> list[str]:
        response = await client.get("/v1/complaints", params=params)
        assert response.status_code == 200, response.text
        return [c["number"] for c in response.json()["items"]]

    assert await numbers(category="delivery") == [b["number"]]
    assert await numbers(status="escalated", department="生鲜部") == [b["number"]]
    assert await numbers(q="态度") == [a["number"]]
    assert await numbers(q=a["number"]) == [a["number"]]
    assert await numbers(channel="store", priority="high") == [a["number"]]
    # Latin letters in any case, on PostgreSQL too; a number typed in lower case.
    c = await take(client, subject="Broken TV remote", description="The REMOTE arrived cracked.")
    for q in ("broken", "BROKEN", "remote arrived", c["number"].lower()):
        assert await numbers(q=q) == [c["number"]], q


async def test_scopes_idempotency_and_bad_input(client: httpx.AsyncClient) -> None:
    body = {"customer_id": CUSTOMER, "channel": "wechat", "category": "price", "subject": "价签与结算价不符",
            "description": "标价19.9结算29.9"}  # fmt: skip
    key = {"Idempotency-Key": "wx-msg-88123"}
    first = await client.post("/v1/complaints", json=body, headers=key)
    retry = await client.post("/v1/complaints", json=body, headers=key)
    assert first.json()["id"] == retry.json()["id"] and retry.headers["idempotent-replayed"] == "true"
    assert (await client.post("/v1/complaints", json={**body, "channel": "fax"})).status_code == 422
    assert (await client.post("/v1/complaints", json={**body, "mood": "angry"})).status_code == 422
    assert (await client.post("/v1/complaints", json=body, headers=auth("reader"))).status_code == 403
    assert (await client.get("/v1/complaints", headers=auth("reader"))).status_code == 200
    agent = await client.post(
        f"/v1/complaints/{first.json()['id']}/answer",
        json=BODIES["answer"],
        headers={**auth("agent"), "X-Actor": "cs-008"},
    )
    assert agent.status_code == 200
    events = (await client.get(f"/v1/complaints/{first.json()['id']}/timeline")).json()["items"]
    assert events[-1]["actor"] == "agent:cs-008"


def test_priority_follows_severity_and_a_gold_customer_is_never_below_high() -> None:
    assert priority_for("low", None) == "low" and priority_for("critical", "regular") == "urgent"
    assert priority_for("low", "gold") == "high" and priority_for("medium", "gold") == "high"
    assert priority_for("critical", "gold") == "urgent" and priority_for("low", "silver") == "normal"
