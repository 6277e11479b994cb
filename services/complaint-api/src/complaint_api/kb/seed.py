"""The starter knowledge base: a department store's policy manual, shipped as `seed_articles.json`.

`seed_articles` adds the articles whose slug is not in the KB yet and leaves every other article alone
(an edited seed article keeps its edits), so it can run on every deployment.
"""

from __future__ import annotations

import json
from importlib import resources

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from complaint_api.kb import service
from complaint_api.kb.models import KbArticle
from complaint_api.kb.schemas import ArticleCreate
from crm_kit.db import utcnow

SEED_FILE = "seed_articles.json"


def load_seed_articles() -> list[ArticleCreate]:
    """The shipped articles, each checked by the same rules as an article written through the API."""
    text = resources.files("complaint_api.kb").joinpath(SEED_FILE).read_text(encoding="utf-8")
    return [ArticleCreate.model_validate(item) for item in json.loads(text)]


async def seed_articles(session: AsyncSession) -> tuple[int, int]:
    """Add the starter articles missing by slug: (created, already present). The caller commits."""
    articles = load_seed_articles()
    present = set((await session.execute(select(KbArticle.slug))).scalars().all())
    missing = [a for a in articles if a.slug not in present]
    if missing:
        now = utcnow()
        session.add_all(KbArticle(id=uuid7(), created_at=now, updated_at=now, **a.model_dump()) for a in missing)
        await session.flush()
        # One revision for the batch: replicas rebuild their index once, not once per article.
        await service.bump_revision(session)
    return len(missing), len(articles) - len(missing)
