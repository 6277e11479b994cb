"""Text analysis of knowledge-base search: Chinese (simplified or traditional) and English text into index terms.

Documents and queries go through the same `tokens`, so whatever it does to one it does to the other:
NFKC (full-width letters and digits become ASCII), traditional folded to simplified (`退貨` → `退货`),
lower case, jieba's search-mode segmentation (HMM off) for Chinese, the Snowball English stemmer, and
no punctuation, whitespace or stopwords. Each term keeps the span of the text it was cut from, so a
snippet can mark the words as written (`Delivery` for the term `deliveri`, `退貨` for `退货`).

jieba's dictionary loads once, when this module is imported (about half a second), never per request.
"""

from __future__ import annotations

import functools
import itertools
import logging
import unicodedata
from collections.abc import Sequence
from typing import NamedTuple

import jieba  # type: ignore[import-untyped]
import opencc
import snowballstemmer  # type: ignore[import-untyped]

jieba.setLogLevel(logging.WARNING)
_ENGLISH = snowballstemmer.stemmer("english")
jieba.initialize()

# Retail-policy words jieba's general dictionary lacks or splits (`无理由` → `无`/`理由`). Added to the
# process-wide dictionary once, before any text is analysed, so documents and queries segment alike.
DOMAIN_WORDS = (
    "无理由",
    "无理由退货",
    "原路退回",
    "到账",
    "价保",
    "价格保护",
    "储值卡",
    "购物卡",
    "礼品卡",
    "不记名",
    "记名卡",
    "不记名卡",
    "电子发票",
    "专票",
    "普票",
    "红冲",
    "三包",
    "送装",
    "送货上门",
    "临期",
    "满减",
    "优惠券",
    "叠加",
    "银卡",
    "金卡",
    "钻石卡",
    "钻石会员",
    "会员日",
    "定金",
    "尾款",
    "预售",
    "缺货登记",
    "失物招领",
    "服务台",
    "退换货",
    "积分兑换",
    "停车券",
    "离境退税",
    "以旧换新",
)
for _word in DOMAIN_WORDS:
    jieba.add_word(_word)

_T2S = opencc.OpenCC("t2s")

# Words that carry no topic: particles, pronouns, question words, the filler of a question or a complaint.
STOPWORDS_ZH = frozenset(
    """
    的 了 吗 呢 吧 啊 呀 哦 嘛 么 着 过 地 得 之 与 及 和 或 跟 同 而 并 但 却 也 都 就 还 又 再 才 只
    我 你 您 他 她 它 我们 你们 他们 她们 咱们 自己 大家 这 那 这个 那个 这些 那些 这里 那里 哪 哪个
    哪些 哪里 什么 什么样 什么时候 怎么 怎么办 怎么样 怎样 如何 为什么 为何 多少 多久 几 几天 时候
    是 不是 是否 有 没 没有 在 会 能 能够 可以 可不可以 可否 要 想 需要 请问 请 问 一下 一个 个 些
    把 被 给 对 向 从 到 让 等 如果 因为 所以 就是 还是 以及 而且 或者 已经 一直 非常 很 太 最 更
    啦 嗯 哈 呗 不 别 该 应该 可能 一般 下 上 中
    一次 要求 直接 昨天 今天 明天 上周 上次 刚才 刚刚 突然 然后 以后 之后 结果 东西 真的 觉得 知道 说
    """.split()  # noqa: SIM905 - a word list reads best as text
)
STOPWORDS_EN = frozenset(
    """
    a an the is are was were be been being am do does did doing have has had having i me my mine we us
    our you your yours he him his she her it its they them their this that these those there here what
    which who whom whose when where why how to of in on at for from by with about into onto over under
    and or but not no nor so than then too very can could will would shall should may might must just
    if as up out off any all some such only own same also please get got
    """.split()  # noqa: SIM905 - a word list reads best as text
)


# An index term, and the span `text[start:end]` of the text as written that it was cut from. A plain
# tuple: a document has one per word, and a named tuple would make indexing measurably slower.
Token = tuple[str, int, int]


class Folded(NamedTuple):
    """Folded text, and for each of its characters the span of the original text it came from."""

    text: str
    starts: Sequence[int]
    ends: Sequence[int]


@functools.lru_cache(maxsize=65_536)
def _fold_cluster(cluster: str) -> str:
    return unicodedata.normalize("NFKC", cluster).lower()


def _clusters(text: str) -> Sequence[str]:
    """`text` cut before every character but a combining mark, which stays with the one it may compose with."""
    if not any(map(unicodedata.combining, text)):
        return text  # one character each
    clusters: list[str] = []
    for char in text:
        if clusters and unicodedata.combining(char):
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters


def fold(text: str) -> Folded:
    """The form terms are cut from: NFKC, simplified, lower case, each character traced to the original.

    NFKC can change the length (`…` → `...`), so it runs per cluster, where it composes and decomposes.
    OpenCC's t2s tables map every phrase to one of the same length, so simplifying the whole text at
    once (phrases need their context) keeps the positions.
    """
    clusters = _clusters(text)
    pieces = list(map(_fold_cluster, clusters))
    simplified: str = _T2S.convert("".join(pieces))
    if len(simplified) == len(clusters) == len(text):
        return Folded(simplified, range(len(text)), range(1, len(text) + 1))  # one character for one
    bounds = list(itertools.accumulate(map(len, clusters), initial=0))
    starts = list(itertools.chain.from_iterable(map(itertools.repeat, bounds[:-1], map(len, pieces))))
    ends = list(itertools.chain.from_iterable(map(itertools.repeat, bounds[1:], map(len, pieces))))
    return Folded(simplified, starts, ends)


def stem(word: str) -> str:
    return str(_ENGLISH.stemWord(word))


def tokens(text: str) -> list[Token]:
    """Index terms of any text, in order, repeats kept (they are term frequencies), with their spans."""
    folded, starts, ends = fold(text)
    found: list[Token] = []
    # HMM off: unknown words fall apart into single characters the same way in documents and queries,
    # where the HMM could join them differently depending on the neighbouring text.
    for word, start, end in jieba.tokenize(folded, mode="search", HMM=False):
        if word in STOPWORDS_ZH or word in STOPWORDS_EN or not word.isalnum():
            continue  # punctuation and whitespace are not alphanumeric; Chinese characters are
        term = stem(word) if word.isascii() else word
        found.append((term, starts[start], ends[end - 1]))
    return found


def analyse(text: str) -> list[str]:
    """Index terms of any text: what documents are indexed by and what queries look for."""
    return [term for term, _, _ in tokens(text)]
