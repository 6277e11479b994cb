"""HTTP routes of the knowledge base: articles (create, list, read, update) and search."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from complaint_api.kb import service
from complaint_api.kb.models import KbArticle
from complaint_api.kb.schemas import (
    ArticleCreate,
    ArticleRead,
    ArticleStatus,
    ArticleUpdate,
    SearchHit,
    SearchResults,
)
from crm_kit.auth import Principal, require
from crm_kit.concurrency import IfMatch, etag
from crm_kit.db import SessionDep
from crm_kit.errors import problem_responses
from crm_kit.idempotency import IdempotencyDep
from crm_kit.pagination import Page, PageParams
from crm_kit.schemas import model_response

router = APIRouter(prefix="/v1/kb", tags=["knowledge base"])

KbReader = Annotated[Principal, require("kb:read")]
KbWriter = Annotated[Principal, require("kb:write")]


def _render(article: KbArticle, *, status_code: int = 200, location: bool = False) -> Response:
    headers = {"ETag": etag(article.version)}
    if location:
        headers["Location"] = f"/v1/kb/articles/{article.id}"
    return model_response(ArticleRead.model_validate(article), status_code=status_code, headers=headers)


@router.post(
    "/articles",
    status_code=201,
    response_model=ArticleRead,
    summary="Write a knowledge-base article",
    description="The slug must be unique (409 otherwise). A published article is searchable at once, on "
    "every replica. Send `Idempotency-Key` to retry safely.",
    responses=problem_responses(401, 403, 409, 422),
)
async def create_article(
    data: ArticleCreate, session: SessionDep, idempotency: IdempotencyDep, _: KbWriter
) -> Response:
    async def produce() -> Response:
        article = await service.create_article(session, data=data)
        return _render(article, status_code=201, location=True)

    return await idempotency.execute(produce)


@router.get(
    "/articles",
    response_model=Page[ArticleRead],
    summary="List knowledge-base articles",
    description="Newest first, drafts included unless `status` says otherwise.",
    responses=problem_responses(400, 401, 403, 422),
)
async def list_articles(
    session: SessionDep,
    _: KbReader,
    page: Annotated[PageParams, Depends()],
    category: Annotated[str | None, Query(max_length=50)] = None,
    status: ArticleStatus | None = None,
) -> Response:
    after = page.keyset(uuid.UUID)
    rows = await service.list_articles(
        session, category=category, status=status, after=after[0] if after else None, limit=page.limit
    )
    return model_response(page.page(rows, ArticleRead.model_validate, lambda a: (a.id,)))


@router.get(
    "/search",
    response_model=SearchResults,
    summary="Search the published articles",
    description="Chinese (simplified or traditional: 退貨 finds 退货) and English. Results are ranked by "
    "BM25, titles weighing double, ties by title; each carries a snippet with the matches in 【】. "
    "A query with nothing in common with any article returns no items.",
    responses=problem_responses(401, 403, 422),
)
async def search(
    session: SessionDep,
    _: KbReader,
    q: Annotated[str, Query(min_length=1, max_length=500, description="What the customer asked")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    category: Annotated[str | None, Query(max_length=50)] = None,
) -> Response:
    matches = await service.search_articles(session, query=q, limit=limit, category=category)
    items = [SearchHit.model_validate(m, from_attributes=True) for m in matches]
    return model_response(SearchResults(query=q, items=items))


@router.get(
    "/articles/{article_id}",
    response_model=ArticleRead,
    summary="Read a knowledge-base article",
    description="Drafts included. The `ETag` header carries the version for `If-Match` on update.",
    responses=problem_responses(401, 403, 404, 422),
)
async def read_article(article_id: uuid.UUID, session: SessionDep, _: KbReader) -> Response:
    return _render(await service.get_article(session, article_id))


@router.patch(
    "/articles/{article_id}",
    response_model=ArticleRead,
    summary="Update a knowledge-base article",
    description="Send `If-Match` with the `ETag` you read: a stale version is a 412 and nothing changes. "
    "Publishing, unpublishing (`status: draft`) and edits reach search at once, on every replica.",
    responses=problem_responses(401, 403, 404, 409, 412, 422),
)
async def update_article(
    article_id: uuid.UUID, data: ArticleUpdate, session: SessionDep, _: KbWriter, expected_version: IfMatch
) -> Response:
    article = await service.update_article(session, article_id=article_id, data=data, expected_version=expected_version)
    return _render(article)
