"""The knowledge-base search index: BM25 over the published articles, in memory, with snippets.

Pure and synchronous: no database and no I/O. `build_index` turns article rows into an immutable
`KbIndex`; `KbIndex.search` scores a query against it. The service decides when to (re)build and
keeps the current index; an index is never changed once built, so requests can share it freely.

Ranking is Okapi BM25 (k1 = 1.5, b = 0.75, Lucene's always-positive idf) over one weighted bag of
terms per article, where a title term counts twice (BM25F with a title boost, collapsed into one
field). The weight of every (term, article) pair is computed at build time into a terms × articles
CSR matrix, so a query is a row gather and a sum: no Python loop over articles at query time.

Colloquial queries use single characters where articles use words (卡丢了 against 丢失): a query
character the articles never use alone stands for the indexed words that contain it, at half weight
and counted once per article (the best of those words), so it helps recall without swamping real words.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import sparse  # type: ignore[import-untyped]  # scipy ships no type information

from complaint_api.kb.analysis import analyse, tokens

K1 = 1.5
B = 0.75
TITLE_WEIGHT = 2.0  # a title term counts as much as two body terms
TAG_WEIGHT = 1.0  # tags are the editor's keywords: counted once more, like body text
SNIPPET_CHARS = 80
# A complaint can be long; its opening states the matter, and analysis time grows with the text.
MAX_QUERY_CHARS = 2000
SCORE_DECIMALS = 4
EXPANSION_WEIGHT = 0.5  # a lone query character standing for the words that contain it

_HAN_CHAR = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]$")
_LINE_BREAKS = str.maketrans({"\n": " ", "\r": " ", "\t": " "})


class ArticleDoc(NamedTuple):
    """What the index needs of an article (a published `KbArticle`, or any row with these fields)."""

    id: uuid.UUID
    slug: str
    title: str
    body: str
    category: str
    tags: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class ArticleMatch:
    """One search result: an article, its score (higher is better, always > 0) and a marked snippet."""

    article_id: uuid.UUID
    slug: str
    title: str
    category: str
    score: float
    snippet: str


@dataclass(frozen=True, slots=True)
class _Analysed:
    """An article's terms with their field-weighted frequencies, and where its body has them (for snippets);
    reused by the next build if unchanged."""

    frequencies: dict[str, float]
    length: float
    body_spans: dict[str, list[tuple[int, int]]]  # term → the spans of the body, as written, analysed to it


def _analyse_article(doc: ArticleDoc) -> _Analysed:
    frequencies: dict[str, float] = {}
    body = tokens(doc.body)
    for weight, terms in (
        (TITLE_WEIGHT, analyse(doc.title)),
        # One tag per line: a line break keeps jieba from joining the end of one tag to the next.
        (TAG_WEIGHT, analyse("\n".join(doc.tags))),
        (1.0, [term for term, _, _ in body]),
    ):
        for term in terms:
            frequencies[term] = frequencies.get(term, 0.0) + weight
    body_spans: dict[str, list[tuple[int, int]]] = {}
    for term, start, end in body:
        body_spans.setdefault(term, []).append((start, end))
    return _Analysed(frequencies, sum(frequencies.values()), body_spans)


def _text_key(doc: ArticleDoc) -> tuple[str, str, tuple[str, ...]]:
    return doc.title, doc.body, tuple(doc.tags)


@dataclass(frozen=True, eq=False)
class KbIndex:
    """An immutable BM25 index of some articles, labelled with the KB revision it was built at."""

    revision: int | None
    docs: tuple[ArticleDoc, ...]
    vocabulary: dict[str, int]
    weights: Any  # scipy.sparse.csr_matrix, terms × docs: the BM25 weight of each term in each article
    category_codes: NDArray[np.int64]
    categories: dict[str, int]
    title_rank: NDArray[np.int64]  # position of each article in (title, slug) order, for ties
    words_with_char: dict[str, NDArray[np.int64]]  # Chinese character → ids of the indexed words holding it
    analysed: tuple[_Analysed, ...]
    _by_text: dict[tuple[str, str, tuple[str, ...]], _Analysed]

    def __len__(self) -> int:
        return len(self.docs)

    def search(self, query: str, *, limit: int = 10, category: str | None = None) -> list[ArticleMatch]:
        """The best `limit` articles for `query`, by score, ties by title; only scores above zero."""
        # Each distinct query term counts once: a repeated word in a complaint is emphasis, not evidence.
        distinct = list(dict.fromkeys(analyse(query[:MAX_QUERY_CHARS])))
        terms = [t for t in distinct if t in self.vocabulary]
        expanded = [t for t in distinct if t not in self.vocabulary and t in self.words_with_char]
        if not (terms or expanded) or limit < 1:
            return []
        scores = np.zeros(len(self.docs), dtype=np.float64)
        if terms:
            rows = self.weights[np.array([self.vocabulary[t] for t in terms], dtype=np.int64)]
            scores += np.bincount(rows.indices, weights=rows.data, minlength=len(self.docs))
        for char in expanded:
            strongest = self.weights[self.words_with_char[char]].max(axis=0)
            scores += EXPANSION_WEIGHT * strongest.toarray().ravel()
        scores = np.round(scores, SCORE_DECIMALS)
        if category is not None:
            code = self.categories.get(category)
            if code is None:
                return []
            scores[self.category_codes != code] = 0.0
        hits = np.flatnonzero(scores > 0)
        best = hits[np.lexsort((self.title_rank[hits], -scores[hits]))][:limit]
        return [
            ArticleMatch(
                article_id=self.docs[i].id,
                slug=self.docs[i].slug,
                title=self.docs[i].title,
                category=self.docs[i].category,
                score=float(scores[i]),
                snippet=snippet(self.docs[i].body, _marks(self.analysed[i].body_spans, terms, expanded)),
            )
            for i in best.tolist()
        ]


def build_index(
    articles: Iterable[ArticleDoc], *, revision: int | None = None, previous: KbIndex | None = None
) -> KbIndex:
    """Index `articles` (the published ones; the caller filters). Articles whose title, body and tags are
    unchanged since `previous` are not analysed again, so a rebuild after one edit costs milliseconds."""
    docs = tuple(articles)
    reusable = previous._by_text if previous is not None else {}
    analysed = tuple(reusable.get(_text_key(d)) or _analyse_article(d) for d in docs)

    vocabulary: dict[str, int] = {}
    term_ids: list[int] = []
    doc_ids: list[int] = []
    frequencies: list[float] = []
    for position, article in enumerate(analysed):
        term_ids.extend(vocabulary.setdefault(term, len(vocabulary)) for term in article.frequencies)
        doc_ids.extend([position] * len(article.frequencies))
        frequencies.extend(article.frequencies.values())

    n = len(docs)
    rows = np.array(term_ids, dtype=np.int64)
    cols = np.array(doc_ids, dtype=np.int64)
    tf = np.array(frequencies, dtype=np.float64)
    lengths = np.array([a.length for a in analysed], dtype=np.float64)
    average = float(lengths.mean()) if n and lengths.sum() > 0 else 1.0
    df = np.bincount(rows, minlength=len(vocabulary)).astype(np.float64)
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    norm = K1 * (1.0 - B + B * lengths / average)
    data = idf[rows] * tf * (K1 + 1.0) / (tf + norm[cols])
    weights = sparse.csr_matrix((data, (rows, cols)), shape=(len(vocabulary), n), dtype=np.float64)

    categories: dict[str, int] = {}
    category_codes = np.array([categories.setdefault(d.category, len(categories)) for d in docs], dtype=np.int64)
    holders: dict[str, list[int]] = {}
    for word, term_id in vocabulary.items():
        if len(word) > 1 and _HAN_CHAR.match(word[0]):
            for char in set(word):
                holders.setdefault(char, []).append(term_id)
    title_rank = np.empty(n, dtype=np.int64)
    title_rank[sorted(range(n), key=lambda i: (docs[i].title, docs[i].slug))] = np.arange(n, dtype=np.int64)

    return KbIndex(
        revision=revision,
        docs=docs,
        vocabulary=vocabulary,
        weights=weights,
        category_codes=category_codes,
        categories=categories,
        title_rank=title_rank,
        words_with_char={c: np.array(ids, dtype=np.int64) for c, ids in holders.items()},
        analysed=analysed,
        _by_text={_text_key(d): a for d, a in zip(docs, analysed, strict=True)},
    )


def _marks(
    body_spans: dict[str, list[tuple[int, int]]], terms: Sequence[str], chars: Sequence[str]
) -> list[tuple[int, int]]:
    """The spans of a body to mark: its words for the query terms, and each lone query character (one
    that stands for the words holding it) where it stands in such a word."""
    marks = [span for term in terms for span in body_spans.get(term, ())]
    for char in chars:
        for word, spans in body_spans.items():
            if char not in word:
                continue
            for start, end in spans:
                if end - start == len(word):  # written as folded, one character for one: mark the character
                    marks += [(start + i, start + i + 1) for i, c in enumerate(word) if c == char]
                else:
                    marks.append((start, end))
    return marks


def snippet(body: str, marks: Iterable[tuple[int, int]], width: int = SNIPPET_CHARS) -> str:
    """About `width` characters of `body` around its first mark, every mark in the window in 【】.

    The marks are spans of the body as written, so the snippet shows the article's own text (退貨 found
    for 退货, `……` kept as it is) and marks whole words (`Delivery` for the term `deliveri`).
    Overlapping marks (a word and the shorter words inside it) become one.
    """
    merged: list[tuple[int, int]] = []
    for start, end in sorted(marks):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    # The first mark a quarter of the way in: some lead-in, most of the window after it.
    start = max(0, merged[0][0] - width // 4) if merged else 0
    end = min(len(body), start + width)
    start = max(0, end - width)
    pieces: list[str] = []
    cursor = start
    for mark_start, mark_end in merged:
        if mark_start >= end:
            break
        end = max(end, mark_end)
        pieces += [body[cursor:mark_start], "【", body[mark_start:mark_end], "】"]
        cursor = mark_end
    pieces.append(body[cursor:end])
    marked = "".join(pieces)
    return ("…" if start > 0 else "") + marked.translate(_LINE_BREAKS).strip() + ("…" if end < len(body) else "")
