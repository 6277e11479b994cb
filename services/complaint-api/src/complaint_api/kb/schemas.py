"""Request and response bodies of the knowledge base: articles and search results."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from crm_kit.schemas import Omittable, RequestModel, ResponseModel

Language = Literal["zh", "en"]
ArticleStatus = Literal["draft", "published"]

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", min_length=1, max_length=100)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Body = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
Category = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", min_length=1, max_length=50)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=32)]

MAX_TAGS = 20


ARTICLE_EXAMPLE = {
    "slug": "returns-7-day-no-reason",
    "title": "7天无理由退货规则",
    "body": "自购买之日起7天内，商品及包装完好、不影响二次销售的，可凭购物小票或电子订单办理无理由退货。",
    "category": "returns",
    "tags": ["退货", "7天无理由"],
    "language": "zh",
    "status": "published",
}


class ArticleCreate(RequestModel):
    slug: Slug = Field(description="Stable kebab-case name, unique, e.g. `returns-7-day-no-reason`")
    title: Title
    body: Body = Field(description="Plain text, up to 20,000 characters")
    category: Category = Field(description="Kebab-case code, e.g. `returns`, `refunds`, `membership`")
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    language: Language = "zh"
    status: ArticleStatus = Field("published", description="Only published articles are searchable")

    model_config = {"json_schema_extra": {"examples": [ARTICLE_EXAMPLE]}}


class ArticleUpdate(RequestModel):
    """Only the fields sent change; a field cannot be cleared with null."""

    slug: Omittable[Slug] = None
    title: Omittable[Title] = None
    body: Omittable[Body] = None
    category: Omittable[Category] = None
    tags: Omittable[list[Tag]] = Field(None, max_length=MAX_TAGS)
    language: Omittable[Language] = None
    status: Omittable[ArticleStatus] = None

    model_config = {"json_schema_extra": {"examples": [{"title": "7天无理由退货规则（2026年修订）"}]}}


class ArticleRead(ResponseModel):
    id: uuid.UUID
    slug: str
    title: str
    body: str
    category: str
    tags: list[str]
    language: Language
    status: ArticleStatus
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "0196e0aa-4b5c-7d6e-8f70-8192a3b4c5d6",
                    **ARTICLE_EXAMPLE,
                    "version": 1,
                    "created_at": "2026-11-01T01:00:00Z",
                    "updated_at": "2026-11-01T01:00:00Z",
                }
            ]
        }
    }


class SearchHit(ResponseModel):
    article_id: uuid.UUID
    slug: str
    title: str
    category: str
    score: float = Field(description="BM25 score, above zero; comparable within one query only")
    snippet: str = Field(description="About 80 characters of the body around the first match, matches in 【】")


class SearchResults(BaseModel):
    query: str
    items: list[SearchHit]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "query": "退貨",
                    "items": [
                        {
                            "article_id": "0196e0aa-4b5c-7d6e-8f70-8192a3b4c5d6",
                            "slug": "returns-7-day-no-reason",
                            "title": "7天无理由退货规则",
                            "category": "returns",
                            "score": 8.42,
                            "snippet": "商品及包装完好、不影响二次销售的，可凭购物小票或电子订单办理无理由【退货】。",
                        }
                    ],
                }
            ]
        }
    }
