"""Recommendations, related items, basket completion, rules, popular items and recovery offers.

Everything is answered from the model, the audience and the catalogue held in memory; the only checks per request are
the key and, for a customer, whether they may be served from their own history.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from crm_kit.auth import Principal, require
from crm_kit.errors import BadRequest, NotFound, ServiceUnavailable, problem_responses
from crm_kit.pagination import Page, PageParams
from crm_kit.schemas import model_response
from recommend_api.builds.current import CurrentModel
from recommend_api.engine import model as engine
from recommend_api.recommendations.schemas import (
    Association,
    BasketCompletion,
    Popular,
    Recommendations,
    Related,
    Sku,
)
from recommend_api.sync.audience import Audience
from recommend_api.sync.catalogue import Catalogue

router = APIRouter(prefix="/v1", tags=["recommendations"])
RULE_FLOORS = engine.Params()  # what a build keeps of the rules (the service configures no other)
Reader = Annotated[Principal, require("recommendations:read")]
Limit = Annotated[int, Query(ge=1, le=50, description="How many items")]
Category = Annotated[
    str | None,
    Query(min_length=1, max_length=100, description="Only items of this category (case, spaces and width aside)"),
]
SkuList = Annotated[list[Sku], Query(max_length=100)]


def _current(request: Request) -> CurrentModel:
    """The served model, or 503 before the first build. Called, not declared as a dependency: FastAPI solves each
    dependency per request and runs a sync one in its thread pool, which together cost several times the CPU of
    computing and rendering the recommendations."""
    current: CurrentModel | None = request.app.state.current
    if current is None:
        raise ServiceUnavailable("no model has been built yet: POST /v1/models", headers={"Retry-After": "5"})
    return current


def _resolve(request: Request, customer_id: uuid.UUID) -> tuple[uuid.UUID, bool]:
    audience: Audience = request.app.state.audience
    return audience.resolve(customer_id)


def _render(current: CurrentModel, suggestions: Sequence[engine.Suggestion]) -> list[dict[str, Any]]:
    """Suggestions as the fields of the `Suggestion` schema; the body model validates them all in one call."""
    return [
        {
            "sku": s.sku, "name": current.names.get(s.sku), "category": s.category, "score": round(s.score, 6),
            "reason": s.reason, "times_bought": s.times_bought,
            "last_bought_at": dt.datetime.fromtimestamp(s.last_bought_at, dt.UTC) if s.last_bought_at else None,
            "because": list(s.because),
        }
        for s in suggestions
    ]  # fmt: skip


def _answer(
    current: CurrentModel, served: uuid.UUID | None, who: str | None, items: Sequence[engine.Suggestion]
) -> Response:
    """A customer's suggestions; personalised when served from their own history (`who`, which is None for
    cold start, erased, restricted or unconsenting customers)."""
    body = Recommendations(
        customer_id=served, personalised=who is not None and current.model.knows_customer(who),
        model_version=current.version, items=_render(current, items),
    )  # fmt: skip
    return model_response(body)


def _association(current: CurrentModel, a: engine.Association) -> Association:
    return Association(
        antecedent=list(a.antecedent), consequent=a.consequent, consequent_name=current.names.get(a.consequent),
        count=a.count, support=a.support, confidence=a.confidence, lift=a.lift,
    )  # fmt: skip


@router.get(
    "/customers/{customer_id}/recommendations",
    response_model=Recommendations,
    summary="Recommendations for a customer (猜你喜欢)",
    description="Items to buy again (`repeat`, with how often and when last bought), items that go with what "
    "they buy (`bought_together`, with the items that led to them) and `popular` items. Customers with no "
    "history, erased or restricted customers and those who withdrew profiling consent get popular items only. "
    '`kind` picks one part for a row of its own: `repeat` (a "buy it again" row: items bought before only, '
    'none without a history) or `new` (a "discover" row: items the customer never bought only).',
    responses=problem_responses(401, 403, 422, 503),
)
async def recommendations(
    customer_id: uuid.UUID,
    request: Request,
    _: Reader,
    limit: Limit = 10,
    category: Category = None,
    exclude: Annotated[SkuList, Query(description="SKUs not to suggest (repeat the parameter)")] = [],  # noqa: B006
    kind: Annotated[
        engine.Kind, Query(description="`mixed` (items to buy again, then new ones), `repeat` or `new` only")
    ] = "mixed",
) -> Response:
    current = _current(request)
    served, personal = _resolve(request, customer_id)
    who = str(served) if personal else None
    items = current.model.recommend(who, limit, category=category, exclude=exclude, kind=kind)
    return _answer(current, served, who, items)


@router.get(
    "/customers/{customer_id}/recovery-offers",
    response_model=Recommendations,
    summary="Win-back offers for a customer recovering from a complaint",
    description="What the customer likes, never the SKU or any item of the category the complaint was about "
    "(the category of each `avoid_sku` is avoided as well; categories match whatever their case, spaces or "
    "full-width forms).",
    responses=problem_responses(401, 403, 422, 503),
)
async def recovery_offers(
    customer_id: uuid.UUID,
    request: Request,
    _: Reader,
    limit: Limit = 5,
    avoid_sku: Annotated[SkuList, Query(description="SKUs the complaint was about")] = [],  # noqa: B006
    avoid_category: Annotated[
        list[Annotated[str, Query(min_length=1, max_length=100)]],
        Query(max_length=20, description="Categories the complaint was about"),
    ] = [],  # noqa: B006
) -> Response:
    current = _current(request)
    served, personal = _resolve(request, customer_id)
    who = str(served) if personal else None
    # The complained item's own category is avoided too, even when the caller does not know it, and also when the
    # item was first bought after the model was built (the catalogue has it) or has changed category since.
    catalogue: Catalogue = request.app.state.catalogue
    known = [*map(current.model.category_of, avoid_sku), *map(catalogue.category_of, avoid_sku)]
    categories = set(avoid_category) | {c for c in known if c is not None}
    items = current.model.recovery_offers(who, limit, avoid_skus=avoid_sku, avoid_categories=categories)
    return _answer(current, served, who, items)


@router.get(
    "/items/{sku:path}/related",
    response_model=Related,
    summary="Frequently bought together (连带购买)",
    description="Items bought in the same baskets as this one, with support, confidence and lift.",
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def related(
    sku: Annotated[str, Path(min_length=1, max_length=64)], request: Request, _: Reader, limit: Limit = 10
) -> Response:
    current = _current(request)
    if not current.model.knows_item(sku):
        raise NotFound(f"no purchase of item {sku} is known")
    items = [_association(current, a) for a in current.model.related(sku, limit)]
    return model_response(Related(sku=sku, name=current.names.get(sku), model_version=current.version, items=items))


@router.post(
    "/baskets/complete",
    response_model=Recommendations,
    summary="Complete a basket (购物车推荐)",
    description="Cross-sell suggestions for a cart, never an item already in it; personalised by the customer's "
    "history when `customer_id` is given and they may be profiled.",
    responses=problem_responses(401, 403, 422, 503),
)
async def complete_basket(data: BasketCompletion, request: Request, _: Reader) -> Response:
    current = _current(request)
    served, personal = (None, False) if data.customer_id is None else _resolve(request, data.customer_id)
    who = str(served) if served is not None and personal else None
    return _answer(current, served, who, current.model.complete_basket(data.items, data.limit, customer_id=who))


@router.get(
    "/rules",
    response_model=Page[Association],
    summary="Association rules",
    description="Rules `antecedent → consequent` mined from all baskets, strongest lift first. Itemsets of two "
    "and three items. `sku` keeps the rules that contain it. Answered from the rules each build keeps: support of "
    f"at least {RULE_FLOORS.rule_min_support:g} and confidence of at least {RULE_FLOORS.rule_min_confidence:g}, "
    f"the {RULE_FLOORS.max_rules:,} of highest lift; lower thresholds find no weaker rules.",
    responses=problem_responses(400, 401, 403, 422, 503),
)
async def rules(
    request: Request,
    _: Reader,
    page: Annotated[PageParams, Depends()],
    min_support: Annotated[float, Query(ge=0, le=1)] = 0.001,
    min_confidence: Annotated[float, Query(ge=0, le=1)] = 0.1,
    min_lift: Annotated[float, Query(ge=0, le=1e6)] = 1.0,
    sku: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> Response:
    current = _current(request)
    position = page.keyset(int, int)
    version, offset = position if position else (current.version, 0)
    if version != current.version:
        raise BadRequest("a newer model is served since this cursor was made; start again", field="cursor")
    found = current.model.rules(
        min_support=min_support, min_confidence=min_confidence, min_lift=min_lift, sku=sku,
        limit=offset + page.limit + 1,
    )  # fmt: skip
    shown = found[offset : offset + page.limit]
    more = len(found) > offset + page.limit
    next_cursor = page.next_cursor(current.version, offset + page.limit) if more else None
    return model_response(Page(items=[_association(current, a) for a in shown], next_cursor=next_cursor))


@router.get(
    "/popular",
    response_model=Popular,
    summary="Popular items (热销)",
    description="Best sellers by recent baskets (older purchases count less), overall or in one category.",
    responses=problem_responses(401, 403, 422, 503),
)
async def popular(request: Request, _: Reader, limit: Limit = 10, category: Category = None) -> Response:
    current = _current(request)
    items = _render(current, current.model.popular(limit, category=category))
    return model_response(Popular(category=category, model_version=current.version, items=items))
