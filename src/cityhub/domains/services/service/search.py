"""Catalogue search in Chinese and English over a portable term index (``services_search_term``).

Neither SQLite nor a stock PostgreSQL segments Chinese, so the index is built here: Chinese runs are cut with
jieba in search mode (``公积金提取`` gives 公积, 积金, 公积金, 提取), English is lower-cased words plus their
prefixes from three letters (so typing ``pens`` finds pension). A query is cut the same way; items are
ranked by how many of the query's terms they match, then by the weight of the fields they match in (name,
keywords, summary), then by catalogue order. The same index serves both databases through one indexed
``term IN (...)`` lookup.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.orm import Session

from cityhub.domains.services.models import Item, SearchTerm

if TYPE_CHECKING:
    import jieba

NAME_WEIGHT = 8
KEYWORD_WEIGHT = 4
SUMMARY_WEIGHT = 1
MAX_QUERY_TERMS = 24
MIN_PREFIX = 3
MAX_TERM_LENGTH = 64

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[0-9a-z]+")
_STOP_ZH = frozenset(
    "的 了 和 与 及 或 在 我 我的 您 你 怎么 如何 怎样 哪里 什么 要 想 需要 吗 呢 请 办 办理 去".split()  # noqa: SIM905
)
_STOP_EN = frozenset(
    "a an and are can do for how i in is me my of on or the to what when where which with".split()  # noqa: SIM905
)

_tokenizer: jieba.Tokenizer | None = None
_tokenizer_lock = threading.Lock()


def _jieba() -> jieba.Tokenizer:
    """jieba's dictionary, loaded once per process on first use (about half a second)."""
    global _tokenizer
    if _tokenizer is None:
        with _tokenizer_lock:
            if _tokenizer is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _tokenizer = tokenizer
    return _tokenizer


def terms_of(text: str, *, prefixes: bool) -> set[str]:
    """The index terms of ``text``: jieba words of its Chinese runs, its English words (and their prefixes
    when ``prefixes``); stop words and single Latin letters left out."""
    lowered = text.lower()
    found: set[str] = set()
    for run in _CJK_RUN.findall(lowered):
        found.update(word for word in _jieba().lcut_for_search(run) if word not in _STOP_ZH)
    for word in _WORD.findall(lowered):
        if word in _STOP_EN or (len(word) == 1 and not word.isdigit()):
            continue
        found.add(word)
        if prefixes:
            found.update(word[:end] for end in range(MIN_PREFIX, len(word)))
    return {term[:MAX_TERM_LENGTH] for term in found}


def item_terms(item: Item) -> dict[str, int]:
    """Each term of the item with the weight of the heaviest field it occurs in."""
    keywords: Mapping[str, Any] = item.keywords or {}
    fields = (
        (NAME_WEIGHT, [item.name_zh, item.name_en, item.code]),
        (KEYWORD_WEIGHT, [*keywords.get("zh_CN", []), *keywords.get("en", [])]),
        (SUMMARY_WEIGHT, [item.summary_zh, item.summary_en]),
    )
    weights: dict[str, int] = {}
    for weight, texts in fields:
        for term in terms_of(" ".join(texts), prefixes=True):
            weights[term] = max(weight, weights.get(term, 0))
    return weights


def reindex(session: Session, items: Iterable[Item]) -> None:
    """Replace the index rows of ``items`` (flushed, so they have ids)."""
    items = list(items)
    if not items:
        return
    session.execute(delete(SearchTerm).where(SearchTerm.item_id.in_([item.id for item in items])))
    rows = [
        {"term": term, "item_id": item.id, "weight": weight}
        for item in items
        for term, weight in item_terms(item).items()
    ]
    if rows:
        session.execute(insert(SearchTerm), rows)


def query_terms(text: str) -> list[str]:
    """The terms a query looks up (no prefixes: the index already holds them), at most MAX_QUERY_TERMS."""
    return sorted(terms_of(text, prefixes=False))[:MAX_QUERY_TERMS]


def ranked(statement: Select[Any], terms: list[str]) -> Select[Any]:
    """``statement`` (over Item) restricted to items matching any of ``terms``, best matches first."""
    scores = (
        select(
            SearchTerm.item_id,
            func.count().label("matched"),
            func.sum(SearchTerm.weight).label("weight"),
        )
        .where(SearchTerm.term.in_(terms))
        .group_by(SearchTerm.item_id)
        .subquery()
    )
    return statement.join(scores, scores.c.item_id == Item.id).order_by(
        scores.c.matched.desc(), scores.c.weight.desc(), Item.position, Item.id
    )
