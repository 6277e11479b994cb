"""Business rules of the knowledge base: articles, the revision counter, search and suggestions.

Plain functions over a session; the request (or the caller) commits. Every article write bumps the one
`kb_revision` row in the write's own transaction; every search reads that row (one primary-key read) and
rebuilds this process's in-memory index when the revision differs from the one the index was built at,
so replicas pick up each other's writes on their next search.
"""

from __future__ import annotations

import asyncio
import secrets
import typing
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from complaint_api.kb.models import KbArticle, KbRevision
from complaint_api.kb.schemas import ArticleCreate, ArticleUpdate
from complaint_api.kb.search import ArticleDoc, ArticleMatch, KbIndex, build_index
from crm_kit.concurrency import check_version
from crm_kit.db import utcnow
from crm_kit.errors import Conflict, NotFound

REVISION_ROW = 1
# A new revision row starts at a random value rather than 1: if the tables are emptied or restored, the
# counter must not land on a value some replica still holds an index for.
REVISION_START_RANGE = 2**30
SUGGESTIONS = 3


# --- articles ---------------------------------------------------------------------------------------


async def get_article(session: AsyncSession, article_id: uuid.UUID, *, for_update: bool = False) -> KbArticle:
    query = select(KbArticle).where(KbArticle.id == article_id)
    if for_update:
        query = query.with_for_update()
    article = (await session.execute(query)).scalar_one_or_none()
    if article is None:
        raise NotFound(f"knowledge-base article {article_id} does not exist")
    return article


async def _ensure_slug_free(session: AsyncSession, slug: str, exclude: uuid.UUID | None = None) -> None:
    query = select(KbArticle.id).where(KbArticle.slug == slug)
    if exclude is not None:
        query = query.where(KbArticle.id != exclude)
    existing = (await session.execute(query)).scalar_one_or_none()
    if existing is not None:
        raise Conflict("an article with this slug already exists", field="slug", existing_article_id=str(existing))


async def _flush_unique(
    session: AsyncSession, apply: Callable[[], None], slug: str, exclude: uuid.UUID | None = None
) -> None:
    """Apply a change and flush it in a savepoint: losing a race for the slug becomes the same 409 as the
    check before it, and the transaction stays usable to name the winner."""
    try:
        async with session.begin_nested():
            apply()
            await session.flush()
    except IntegrityError:
        await _ensure_slug_free(session, slug, exclude)
        raise


async def create_article(session: AsyncSession, *, data: ArticleCreate) -> KbArticle:
    await _ensure_slug_free(session, data.slug)
    now = utcnow()
    values = data.model_dump()
    values["tags"] = list(dict.fromkeys(values["tags"]))
    article = KbArticle(id=uuid7(), created_at=now, updated_at=now, **values)
    await _flush_unique(session, lambda: session.add(article), data.slug)
    await bump_revision(session)
    return article


async def update_article(
    session: AsyncSession, *, article_id: uuid.UUID, data: ArticleUpdate, expected_version: int | None
) -> KbArticle:
    article = await get_article(session, article_id, for_update=True)
    check_version(article.version, expected_version)
    values = data.model_dump(exclude_unset=True)
    if "tags" in values:
        values["tags"] = list(dict.fromkeys(values["tags"]))
    changes = {k: v for k, v in values.items() if getattr(article, k) != v}
    if not changes:
        # Nothing to store: no new version, and no reason for any replica to rebuild its index.
        return article
    if "slug" in changes:
        await _ensure_slug_free(session, changes["slug"], exclude=article.id)

    def apply() -> None:
        for name, value in changes.items():
            setattr(article, name, value)
        article.updated_at = utcnow()

    await _flush_unique(session, apply, changes.get("slug", article.slug), article.id)
    await bump_revision(session)
    return article


async def list_articles(
    session: AsyncSession, *, category: str | None, status: str | None, after: uuid.UUID | None, limit: int
) -> Sequence[KbArticle]:
    """Newest first (ids are time-ordered); `limit + 1` rows so the caller knows whether more follow."""
    query = select(KbArticle)
    if category is not None:
        query = query.where(KbArticle.category == category)
    if status is not None:
        query = query.where(KbArticle.status == status)
    if after is not None:
        query = query.where(KbArticle.id < after)
    return (await session.execute(query.order_by(KbArticle.id.desc()).limit(limit + 1))).scalars().all()


# --- revision -----------------------------------------------------------------------------------------


async def read_revision(session: AsyncSession) -> int | None:
    """The KB's revision; None before the first article was ever written."""
    query = select(KbRevision.revision).where(KbRevision.id == REVISION_ROW)
    return (await session.execute(query)).scalar_one_or_none()


async def bump_revision(session: AsyncSession) -> None:
    """Advance the revision in the caller's transaction, creating the row on the first write.

    The UPDATE locks the row until commit (PostgreSQL), so concurrent KB writes take turns here and
    every committed write is followed by a revision no reader has seen with the old content.
    """
    bump = (
        update(KbRevision)
        .where(KbRevision.id == REVISION_ROW)
        .values(revision=KbRevision.revision + 1)
        .execution_options(synchronize_session=False)
    )
    if typing.cast(CursorResult[typing.Any], await session.execute(bump)).rowcount:
        return
    try:
        async with session.begin_nested():
            start = secrets.randbelow(REVISION_START_RANGE) + 1
            await session.execute(insert(KbRevision).values(id=REVISION_ROW, revision=start))
    except IntegrityError:
        # Another transaction created the row first; it has committed, so ours now updates it.
        await session.execute(bump)


# --- search -------------------------------------------------------------------------------------------


@dataclass
class _IndexSlot:
    """This process's index of one database, and the lock that lets a single request rebuild it."""

    index: KbIndex | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


# Keyed by database URL: `suggest` is called with only a session, and a process may serve (in tests,
# does serve) more than one database.
_slots: dict[str, _IndexSlot] = {}


def _slot(session: AsyncSession) -> _IndexSlot:
    key = session.get_bind().engine.url.render_as_string(hide_password=True)
    slot = _slots.get(key)
    if slot is None:
        slot = _slots[key] = _IndexSlot()
    return slot


def _is_current(index: KbIndex | None, revision: int | None) -> bool:
    # No revision row means the KB was never written through this service: always look at the table.
    return index is not None and revision is not None and index.revision == revision


async def _published_articles(session: AsyncSession) -> list[ArticleDoc]:
    rows = await session.execute(
        select(KbArticle.id, KbArticle.slug, KbArticle.title, KbArticle.body, KbArticle.category, KbArticle.tags)
        .where(KbArticle.status == "published")
        .order_by(KbArticle.id)
    )
    return [ArticleDoc(r.id, r.slug, r.title, r.body, r.category, tuple(r.tags or ())) for r in rows]


async def current_index(session: AsyncSession) -> KbIndex:
    """The index of the published articles as of now: cached while the revision holds, else rebuilt."""
    slot = _slot(session)
    revision = await read_revision(session)
    if _is_current(slot.index, revision):
        return typing.cast(KbIndex, slot.index)
    async with slot.lock:
        # Concurrent searches that found the index stale queue here; the first rebuilds, the rest reuse
        # it. The revision is read again because a write may have landed while this request waited.
        revision = await read_revision(session)
        if _is_current(slot.index, revision):
            return typing.cast(KbIndex, slot.index)
        # The revision is read before the articles, so the articles are at least as new as the label:
        # at worst an index is rebuilt once more than needed, never kept with content older than its label.
        articles = await _published_articles(session)
        index = await asyncio.to_thread(build_index, articles, revision=revision, previous=slot.index)
        slot.index = index
        return index


async def search_articles(
    session: AsyncSession, *, query: str, limit: int = 10, category: str | None = None
) -> list[ArticleMatch]:
    """Published articles matching `query`, best first (BM25; ties by title), each with a marked snippet."""
    index = await current_index(session)
    return index.search(query, limit=limit, category=category)


async def suggest(
    session: AsyncSession, text: str, limit: int = SUGGESTIONS, *, min_score: float = 0.0
) -> list[ArticleMatch]:
    """Up to `limit` knowledge-base answers for a complaint's subject and description, with scores.

    For complaint intake. Only the first 2,000 characters count (the opening states the matter).
    `min_score` drops weak matches; scores are BM25 and comparable within one text only.
    """
    matches = await search_articles(session, query=text, limit=limit)
    return [m for m in matches if m.score > min_score]
