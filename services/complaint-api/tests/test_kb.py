"""Knowledge base: articles (create, read, list, update), scopes, the revision, search, suggestions, the seed."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from importlib import resources
from typing import Any

import httpx
import pytest
from conftest import auth
from fastapi import FastAPI

from complaint_api.kb import service
from complaint_api.kb.analysis import analyse, stem, tokens
from complaint_api.kb.search import ArticleDoc, KbIndex, build_index
from complaint_api.kb.seed import load_seed_articles, seed_articles

ARTICLES = "/v1/kb/articles"
SEARCH = "/v1/kb/search"


def article(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "slug": "durian-cake-preorder",
        "title": "榴莲千层蛋糕预订须知",
        "body": "榴莲千层蛋糕需提前2天在烘焙柜台预订，预订时支付全款，取货时间为上午10点至晚上9点。",
        "category": "orders",
        "tags": ["烘焙", "预订", "烘焙"],
        "language": "zh",
        "status": "published",
    }
    body.update(overrides)
    return body


async def create(client: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    response = await client.post(ARTICLES, json=article(**overrides))
    assert response.status_code == 201, response.text
    return response


async def seed(app: FastAPI) -> tuple[int, int]:
    async with app.state.database.session_scope() as session:
        return await seed_articles(session)


async def revision(app: FastAPI) -> int | None:
    async with app.state.database.session_scope(read_only=True) as session:
        return await service.read_revision(session)


async def search(client: httpx.AsyncClient, q: str, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(SEARCH, params={"q": q, **params})
    assert response.status_code == 200, response.text
    assert response.json()["query"] == q
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def slugs(client: httpx.AsyncClient, q: str, **params: Any) -> list[str]:
    return [item["slug"] for item in await search(client, q, **params)]


# --- articles -----------------------------------------------------------------------------------------


async def test_create_answers_201_with_location_and_etag_and_reads_back(client: httpx.AsyncClient) -> None:
    response = await create(client)
    body = response.json()
    assert body["slug"] == "durian-cake-preorder"
    assert body["tags"] == ["烘焙", "预订"]  # duplicates dropped, order kept
    assert body["language"] == "zh" and body["status"] == "published" and body["version"] == 1
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"{ARTICLES}/{body['id']}"
    read = await client.get(response.headers["location"])
    assert read.status_code == 200 and read.headers["etag"] == '"1"'
    assert read.json() == body


async def test_create_with_idempotency_key_replays(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "kb-create-1"}
    first = await client.post(ARTICLES, json=article(), headers=headers)
    again = await client.post(ARTICLES, json=article(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == first.json()["id"]


async def test_list_filters_by_category_and_status_and_pages(client: httpx.AsyncClient) -> None:
    ids = [
        (await create(client, slug=f"orders-{i}", status="draft" if i == 2 else "published")).json()["id"]
        for i in range(4)
    ]
    await create(client, slug="parking-1", category="parking")

    page = await client.get(ARTICLES, params={"category": "orders", "limit": 2})
    assert page.status_code == 200
    assert [a["id"] for a in page.json()["items"]] == [ids[3], ids[2]]  # newest first
    rest = await client.get(ARTICLES, params={"category": "orders", "limit": 2, "cursor": page.json()["next_cursor"]})
    assert [a["id"] for a in rest.json()["items"]] == [ids[1], ids[0]]
    assert rest.json()["next_cursor"] is None

    drafts = await client.get(ARTICLES, params={"status": "draft"})
    assert [a["id"] for a in drafts.json()["items"]] == [ids[2]]
    assert (await client.get(ARTICLES, params={"cursor": "forged"})).status_code == 400


async def test_patch_with_if_match_changes_only_what_was_sent(client: httpx.AsyncClient) -> None:
    created = (await create(client)).json()
    location = f"{ARTICLES}/{created['id']}"
    response = await client.patch(location, json={"title": "榴莲千层蛋糕预订须知（新）"}, headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"'
    assert response.json()["title"] == "榴莲千层蛋糕预订须知（新）"
    assert response.json()["body"] == created["body"] and response.json()["updated_at"] > created["updated_at"]

    # Sending what is already stored changes nothing: no new version.
    same = await client.patch(location, json={"category": "orders"}, headers={"If-Match": '"2"'})
    assert same.status_code == 200 and same.headers["etag"] == '"2"'


async def test_duplicate_slug_is_409(client: httpx.AsyncClient) -> None:
    first = (await create(client)).json()
    duplicate = await client.post(ARTICLES, json=article(title="另一篇"))
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"
    assert duplicate.json()["field"] == "slug" and duplicate.json()["existing_article_id"] == first["id"]

    other = (await create(client, slug="another-slug")).json()
    renamed = await client.patch(f"{ARTICLES}/{other['id']}", json={"slug": "durian-cake-preorder"})
    assert renamed.status_code == 409


async def test_stale_if_match_is_412_and_changes_nothing(client: httpx.AsyncClient) -> None:
    created = (await create(client)).json()
    location = f"{ARTICLES}/{created['id']}"
    assert (await client.patch(location, json={"title": "第一次修改"}, headers={"If-Match": '"1"'})).status_code == 200
    stale = await client.patch(location, json={"title": "第二次修改"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    assert (await client.get(location)).json()["title"] == "第一次修改"


@pytest.mark.parametrize(
    "payload",
    [
        article(author="王芳"),
        article(title="标" * 201),
        article(body="字" * 20_001),
        article(tags=[f"tag{i}" for i in range(21)]),
        article(language="ja"),
        article(status="archived"),
        article(slug="Not A Slug"),
        article(category=""),
    ],
    ids=["unknown-field", "long-title", "long-body", "too-many-tags", "language", "status", "slug", "category"],
)
async def test_invalid_article_is_422(client: httpx.AsyncClient, payload: dict[str, Any]) -> None:
    response = await client.post(ARTICLES, json=payload)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_invalid_patch_is_422(client: httpx.AsyncClient) -> None:
    location = f"{ARTICLES}/{(await create(client)).json()['id']}"
    for payload in ({"author": "王芳"}, {"title": None}, {"tags": ["x"] * 21}):
        response = await client.patch(location, json=payload)
        assert response.status_code == 422, payload
    assert (await client.get(location)).json()["version"] == 1


async def test_unknown_article_is_404(client: httpx.AsyncClient) -> None:
    missing = f"{ARTICLES}/{uuid.uuid4()}"
    assert (await client.get(missing)).status_code == 404
    assert (await client.patch(missing, json={"title": "无"})).status_code == 404


async def test_scopes(client: httpx.AsyncClient) -> None:
    # "agent" and "reader" hold kb:read only; "kb-editor" holds kb:read and kb:write.
    created = await client.post(ARTICLES, json=article(), headers=auth("kb-editor"))
    assert created.status_code == 201
    location = created.headers["location"]
    for key in ("agent", "reader"):
        assert (await client.post(ARTICLES, json=article(slug="x"), headers=auth(key))).status_code == 403
        assert (await client.patch(location, json={"title": "改"}, headers=auth(key))).status_code == 403
        assert (await client.get(ARTICLES, headers=auth(key))).status_code == 200
        assert (await client.get(location, headers=auth(key))).status_code == 200
        assert (await client.get(SEARCH, params={"q": "榴莲"}, headers=auth(key))).status_code == 200
    edited = await client.patch(location, json={"title": "改"}, headers=auth("kb-editor"))
    assert edited.status_code == 200
    forbidden = await client.post(ARTICLES, json=article(slug="y"), headers=auth("agent"))
    assert forbidden.json()["required_scope"] == "kb:write"
    assert (await client.get(SEARCH, params={"q": "榴莲"}, headers={"Authorization": ""})).status_code == 401


async def test_every_write_advances_the_revision(client: httpx.AsyncClient, app: FastAPI) -> None:
    assert await revision(app) is None
    created = (await create(client)).json()
    first = await revision(app)
    assert first is not None
    await client.patch(f"{ARTICLES}/{created['id']}", json={"status": "draft"})
    assert await revision(app) == first + 1
    await client.patch(f"{ARTICLES}/{created['id']}", json={"status": "draft"})  # no change, no revision
    assert await revision(app) == first + 1
    await client.post(ARTICLES, json=article(slug="durian-cake-preorder"))  # 409: rolled back
    assert await revision(app) == first + 1
    await create(client, slug="second")
    assert await revision(app) == first + 2


# --- search over the seeded knowledge base -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("怎么退货", "returns-7-day-no-reason"),
        ("怎麼退貨", "returns-7-day-no-reason"),
        ("积分什么时候过期", "points-expiry"),
        ("積分什麼時候過期", "points-expiry"),
        ("停车免费多久", "parking-fees-and-member-free-hours"),
        ("停車免費多久", "parking-fees-and-member-free-hours"),
        ("储值卡退款多久到账", "refund-timing-by-payment-method"),
        ("發票抬頭開錯了", "invoice-title-change"),
        ("购物卡丢了", "gift-card-loss-report"),
        ("購物卡丟了", "gift-card-loss-report"),
        ("买到过期的牛奶", "food-expired-and-near-expiry"),
        ("收银员态度很差", "staff-attitude-complaints"),
        ("优惠券能和满减一起用吗", "coupon-stacking-rules"),
        ("我要删除我的个人信息", "personal-information-requests"),
        ("空调安装要等多久", "large-appliance-delivery-installation"),
        ("refund to credit card", "en-refund-to-credit-card"),
        ("Refunded to my CREDIT CARD?", "en-refund-to-credit-card"),
        ("parking", "en-parking-and-opening-hours"),
        ("tax refund", "en-departure-tax-refund"),
    ],
)
async def test_seeded_search_finds_the_right_article_first(
    client: httpx.AsyncClient, app: FastAPI, query: str, expected: str
) -> None:
    await seed(app)
    found = await slugs(client, query)
    assert found and found[0] == expected, found


async def test_search_results_are_scored_sorted_and_marked(client: httpx.AsyncClient, app: FastAPI) -> None:
    await seed(app)
    items = await search(client, "退货", limit=5)
    assert len(items) == 5
    assert set(items[0]) == {"article_id", "slug", "title", "category", "score", "snippet"}
    scores = [item["score"] for item in items]
    assert all(score > 0 for score in scores) and scores == sorted(scores, reverse=True)
    assert all("【退货】" in item["snippet"] and len(item["snippet"]) <= 120 for item in items)
    # The traditional query marks the simplified text it matched.
    assert "【过期】" in (await search(client, "過期"))[0]["snippet"]

    returns_only = await search(client, "退款", category="returns")
    assert returns_only and {item["category"] for item in returns_only} == {"returns"}
    assert await search(client, "退款", category="no-such-category") == []
    assert len(await search(client, "退货", limit=1)) == 1


async def snippet_of(client: httpx.AsyncClient, body: str, query: str) -> str:
    """The snippet the search for `query` shows of a new article with `body` (and an unrelated title)."""
    await create(
        client, slug="snippet", title="服务说明", body=body, tags=[], language="en" if body.isascii() else "zh"
    )
    [hit] = await search(client, query)
    snippet: str = hit["snippet"]
    return snippet


@pytest.mark.parametrize(
    ("body", "query", "expected"),
    [
        (  # "Delivery" is indexed as "deliveri", which is not a prefix of the word
            "Delivery is free within 5 km of each store. Orders placed before 2 pm are packed the same day and "
            "leave by van. Large deliveries are booked by phone.",
            "delivery",
            "【Delivery】 is free within 5 km of each store. Orders placed before 2 pm are packed…",
        ),
        (  # "parkade" begins with "park", the stem of "parking", but is another word
            "Our parkade is not a pick-up point. Parking is free for two hours.",
            "parking",
            "Our parkade is not a pick-up point. 【Parking】 is free for two hours.",
        ),
        (  # jieba reads 本店/员工 here: the first 店员 in the text is not the word
            "本店员工均经过服务培训，如对店员的服务不满意，请到服务台反映。",
            "店员",
            "本店员工均经过服务培训，如对【店员】的服务不满意，请到服务台反映。",
        ),
    ],
    ids=["stem-not-a-prefix", "stem-a-prefix-of-another-word", "chinese-word-boundaries"],
)
async def test_snippet_marks_the_words_that_matched(
    client: httpx.AsyncClient, body: str, query: str, expected: str
) -> None:
    assert await snippet_of(client, body, query) == expected


@pytest.mark.parametrize(
    ("body", "query", "expected"),
    [
        # NFKC makes each "…" three dots and full-width letters ASCII; traditional folds to simplified.
        (
            "请稍候……退貨須知：ＶＩＰ会员凭小票办理退货。",
            "退货",
            "请稍候……【退貨】須知：ＶＩＰ会员凭小票办理【退货】。",
        ),
        ("请稍候……退貨須知：ＶＩＰ会员凭小票办理退货。", "vip", "请稍候……退貨須知：【ＶＩＰ】会员凭小票办理退货。"),
        (  # the window is measured in the body as written, where each "……" is two characters (six folded)
            "节假日人多，请耐心排队……" * 8 + "退貨時請攜帶小票。" + "如有疑问请咨询服务台。" * 6,
            "退货",
            "…请耐心排队……节假日人多，请耐心排队……【退貨】時請攜帶小票。"
            + "如有疑问请咨询服务台。" * 4
            + "如有疑问请咨询…",
        ),
    ],
    ids=["ellipsis-full-width-traditional", "full-width-letters", "window-after-ellipses"],
)
async def test_snippet_shows_the_body_as_written(
    client: httpx.AsyncClient, body: str, query: str, expected: str
) -> None:
    assert await snippet_of(client, body, query) == expected


@pytest.mark.parametrize("query", ["火星探测器", "的了吗", "？！。", "the a is"])
async def test_a_query_with_no_match_returns_no_items(client: httpx.AsyncClient, app: FastAPI, query: str) -> None:
    await seed(app)
    assert await search(client, query) == []


async def test_search_validates_its_parameters(client: httpx.AsyncClient) -> None:
    assert (await client.get(SEARCH)).status_code == 422
    assert (await client.get(SEARCH, params={"q": ""})).status_code == 422
    assert (await client.get(SEARCH, params={"q": "退货", "limit": 51})).status_code == 422
    assert await search(client, "退货") == []  # an empty knowledge base


async def test_published_drafts_and_title_edits_reach_search_at_once(client: httpx.AsyncClient, app: FastAPI) -> None:
    await seed(app)
    assert await search(client, "榴莲千层") == []  # builds the index of the seeded KB

    draft = (await create(client, status="draft")).json()
    location = f"{ARTICLES}/{draft['id']}"
    assert await search(client, "榴莲千层") == []  # drafts are not searchable

    await client.patch(location, json={"status": "published"}, headers={"If-Match": '"1"'})
    assert await slugs(client, "榴莲千层") == ["durian-cake-preorder"]

    # The new title is searchable at once; words only the old title had are gone.
    await client.patch(location, json={"title": "芒果班戟订购须知"}, headers={"If-Match": '"2"'})
    assert await slugs(client, "芒果班戟") == ["durian-cake-preorder"]
    await client.patch(location, json={"body": "需提前2天在烘焙柜台预订。"}, headers={"If-Match": '"3"'})
    assert await search(client, "榴莲") == []

    # A title edit moves an article up: the title counts double.
    for slug, hours in (("noodles-lunch", "上午十点开始"), ("noodles-dinner", "下午五点结束")):
        await create(client, slug=slug, title="面食档口说明", body=f"档口供应手工拉面，每天{hours}。")
    before = await slugs(client, "手工拉面")
    assert sorted(before) == ["noodles-dinner", "noodles-lunch"]
    second = (await client.get(ARTICLES, params={"category": "orders"})).json()["items"]
    second_id = next(a["id"] for a in second if a["slug"] == before[1])
    await client.patch(f"{ARTICLES}/{second_id}", json={"title": "手工拉面供应时间"})
    assert await slugs(client, "手工拉面") == [before[1], before[0]]

    await client.patch(location, json={"status": "draft"})
    assert "durian-cake-preorder" not in await slugs(client, "芒果班戟")


async def test_a_write_through_another_replica_is_seen(client: httpx.AsyncClient, app: FastAPI) -> None:
    # Seeding through the database directly stands for another replica: this process's index learns
    # of it only through the revision row.
    assert await search(client, "积分") == []
    await seed(app)
    assert (await slugs(client, "积分什么时候过期"))[0] == "points-expiry"


async def test_concurrent_searches_rebuild_the_index_once(
    client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(app)
    builds: list[int | None] = []

    def counting_build(*args: Any, **kwargs: Any) -> KbIndex:
        builds.append(kwargs.get("revision"))
        return build_index(*args, **kwargs)

    monkeypatch.setattr(service, "build_index", counting_build)
    results = await asyncio.gather(*(slugs(client, "停车免费多久") for _ in range(10)))
    assert all(r == results[0] for r in results) and results[0][0] == "parking-fees-and-member-free-hours"
    assert len(builds) == 1
    await slugs(client, "退货")
    assert len(builds) == 1  # same revision, same index


async def test_suggest_gives_up_to_three_scored_answers_for_a_complaint(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    await seed(app)
    complaint = "上周在超市买的牛奶已经过期了，喝了以后肚子不舒服。要求退款并赔偿。"
    async with app.state.database.session_scope(read_only=True) as session:
        suggestions = await service.suggest(session, complaint)
        none = await service.suggest(session, "火星探测器")
        one = await service.suggest(session, complaint, limit=1)
    assert len(suggestions) == 3
    assert suggestions[0].slug == "food-expired-and-near-expiry"
    assert all(s.score > 0 for s in suggestions) and suggestions[0].score >= suggestions[1].score
    assert isinstance(suggestions[0].article_id, uuid.UUID) and suggestions[0].title and suggestions[0].snippet
    assert none == [] and [s.slug for s in one] == [suggestions[0].slug]


async def test_seeding_is_idempotent_and_keeps_edits(client: httpx.AsyncClient, app: FastAPI) -> None:
    total = len(load_seed_articles())
    assert await seed(app) == (total, 0)
    first = await revision(app)
    listing = (await client.get(ARTICLES, params={"limit": 100})).json()["items"]
    assert len(listing) == total
    edited = next(a for a in listing if a["slug"] == "store-opening-hours")
    await client.patch(f"{ARTICLES}/{edited['id']}", json={"title": "营业时间（春节调整）"})
    assert await seed(app) == (0, total)
    assert await revision(app) == (first or 0) + 1  # the edit, not the second seed
    assert (await client.get(f"{ARTICLES}/{edited['id']}")).json()["title"] == "营业时间（春节调整）"


# --- the seed file, analysis and the index, without HTTP --------------------------------------------------


def test_seed_file_is_a_realistic_starter_kb() -> None:
    raw = json.loads(resources.files("complaint_api.kb").joinpath("seed_articles.json").read_text(encoding="utf-8"))
    articles = load_seed_articles()
    assert len(articles) == len(raw) >= 32
    assert len({a.slug for a in articles}) == len(articles)
    assert 2 <= sum(a.language == "en" for a in articles) <= 3
    assert all(a.status == "published" and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", a.slug) for a in articles)
    assert {"returns", "refunds", "membership", "delivery", "invoices", "food-safety", "parking"} <= {
        a.category for a in articles
    }


def test_analyse_folds_traditional_drops_stopwords_and_stems() -> None:
    assert analyse("怎麼退貨？") == analyse("怎么退货") == ["退货"]
    assert analyse("積分什麼時候過期") == ["积分", "过期"]
    assert analyse("的了吗，我") == []
    assert analyse("The REFUNDS are refunded") == ["refund", "refund"]
    assert analyse("ＶＩＰ卡") == analyse("vip卡")  # full-width folds to ASCII
    # Each term keeps the span of the text as written, whatever folding did to the length before it.
    text = "請稍候……ＶＩＰ退貨，Delivery ﬁne Cafe\u0301"
    assert [(term, text[start:end]) for term, start, end in tokens(text)] == [
        ("稍候", "稍候"),
        ("vip", "ＶＩＰ"),
        ("退货", "退貨"),
        ("deliveri", "Delivery"),
        ("fine", "ﬁne"),
        ("caf", "Caf"),
        ("é", "e\u0301"),  # a letter and its combining accent fold together
    ]
    assert [stem(w) for w in ("parking", "cards", "shipping", "charged", "charge")] == [
        "park",
        "card",
        "ship",
        "charg",
        "charg",
    ]


def doc(slug: str, title: str, body: str, category: str = "general", tags: tuple[str, ...] = ()) -> ArticleDoc:
    return ArticleDoc(uuid.uuid4(), slug, title, body, category, tags)


def test_index_ranks_by_bm25_with_title_boost_and_ties_by_title() -> None:
    index = build_index(
        [
            doc("in-body", "会员服务说明", "本店支持退货，请携带小票到服务台办理相关手续和咨询。"),
            doc("in-title", "退货说明", "请携带小票到服务台办理相关手续和咨询，工作人员会协助。"),
            doc("twin-b", "说明二", "停车场 入口", category="parking"),
            doc("twin-a", "说明一", "停车场 入口", category="parking"),
            doc("unrelated", "营业时间", "每天十点开门。"),
        ],
        revision=7,
    )
    assert index.revision == 7 and len(index) == 5
    results = index.search("退貨")
    assert [r.slug for r in results] == ["in-title", "in-body"]
    assert results[0].score > results[1].score > 0
    assert [r.slug for r in index.search("停车场")] == ["twin-a", "twin-b"]  # equal scores: by title
    assert [r.slug for r in index.search("退货", category="parking")] == []
    assert [r.slug for r in index.search("入口", category="parking", limit=1)] == ["twin-a"]
    assert index.search("火星") == [] and index.search("") == [] and index.search("退货", limit=0) == []


def test_snippet_marks_the_first_match_in_a_window_of_the_body() -> None:
    body = "这是一段很长的开头说明文字，" * 10 + "顾客退貨時請攜帶小票。" + "结尾的补充说明文字，" * 10
    [match] = build_index([doc("long", "说明", body)]).search("退货")
    assert "【退貨】" in match.snippet  # matched through folding, shown as written
    assert match.snippet.startswith("…") and match.snippet.endswith("…")
    assert 70 <= len(match.snippet) <= 90
    [english] = build_index([doc("en", "Refunds", "Card refunds take 7 days. Cash is refunded at once.")]).search(
        "refund"
    )
    assert english.snippet == "Card 【refunds】 take 7 days. Cash is 【refunded】 at once."
    # A match only in the title: the opening of the body, unmarked.
    [title_only] = build_index([doc("t", "退货须知", "请携带小票。")]).search("退货")
    assert title_only.snippet == "请携带小票。"


def test_single_characters_stand_for_the_words_that_hold_them() -> None:
    index = build_index(
        [doc("lost", "购物卡挂失", "购物卡丢失请挂失。"), doc("rules", "购物卡规则", "购物卡有效期3年。")]
    )
    results = index.search("卡丢了")
    assert [r.slug for r in results] == ["lost", "rules"]
    assert results[0].snippet == "购物【卡】【丢】失请挂失。"


def test_empty_index() -> None:
    index = build_index([])
    assert len(index) == 0 and index.search("退货") == []


def test_rebuild_reuses_the_analysis_of_unchanged_articles() -> None:
    docs = [doc(f"a{i}", f"标题{i}", f"正文{i} 退货") for i in range(3)]
    first = build_index(docs, revision=1)
    changed = [docs[0], docs[1]._replace(title="新标题"), docs[2]]
    second = build_index(changed, revision=2, previous=first)
    assert second.analysed[0] is first.analysed[0] and second.analysed[2] is first.analysed[2]
    assert second.analysed[1] is not first.analysed[1]
    assert second.search("新标题")[0].slug == "a1"


def test_an_index_of_1000_articles_answers_with_a_full_page() -> None:
    seeds = load_seed_articles()
    docs = [
        doc(f"{a.slug}-{i}", f"{a.title}（{i}）", f"{a.body}本条自第{i}号公告起执行。", a.category, tuple(a.tags))
        for i, a in ((i, seeds[i % len(seeds)]) for i in range(1000))
    ]
    # How fast this builds is measured in bench/complaint_api_bench.py, not asserted here.
    index = build_index(docs)
    found = index.search("积分什么时候过期", limit=50)
    assert len(found) == 50 and len({hit.article_id for hit in found}) == 50
