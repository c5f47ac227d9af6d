"""Catalogue search in Chinese and English over a portable term index (``services_search_term``), with
terms cut by ``cityhub.kernel.textsearch``. Items are ranked by how many of the query's terms they match,
then by the weight of the fields they match in (name, keywords, summary), then by catalogue order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import BindParameter, Select, delete, func, insert, select
from sqlalchemy.orm import Session

from cityhub.domains.services.models import Item, SearchTerm
from cityhub.kernel.textsearch import terms_of

NAME_WEIGHT = 8
KEYWORD_WEIGHT = 4
SUMMARY_WEIGHT = 1


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


def ranked(
    statement: Select[*tuple[Any, ...]], terms: Sequence[str] | BindParameter[Any]
) -> Select[*tuple[Any, ...]]:
    """``statement`` (over Item) restricted to items matching any of ``terms`` (or of an expanding bound
    parameter given them when the statement runs), best matches first.

    The scores are added as the columns ``matched`` and ``weight``, so that a statement reading the ranked
    rows (a page of them in a subquery, say) can keep their order: matched terms, weight, catalogue order.
    The scores are summed per item from the index alone (its covering index on term, item and weight)."""
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
    return (
        statement.add_columns(scores.c.matched, scores.c.weight)
        .join(scores, scores.c.item_id == Item.id)
        .order_by(scores.c.matched.desc(), scores.c.weight.desc(), Item.position, Item.id)
    )
