"""The hotline's knowledge base (知识库): answers to common consultations, searched in Chinese and English
at intake so that a question the city has answered before is closed at once instead of becoming a ticket.

Articles are indexed in ``voice_article_term`` with the kernel's term cutter (title terms weigh more than
body terms) and ranked by how many of the question's terms they match, then by weight.
"""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal, require_citywide
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import Article, ArticleTerm, Category
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.pagination import PageParams, fetch_page
from cityhub.kernel.textsearch import query_terms, terms_of

MANAGE = "voice.knowledge.manage"
TITLE_WEIGHT = 4
BODY_WEIGHT = 1
MAX_ANSWERS = 5


def save(
    session: Session, principal: Principal, given: schemas.ArticleIn, article_id: int | None = None
) -> schemas.ArticleOut:
    """Create (or, with an id, replace) an article and re-index it; audited."""
    require_citywide(principal, MANAGE)
    article = Article() if article_id is None else _article(session, article_id)
    article.title, article.body, article.published = given.title.strip(), given.body.strip(), given.published
    article.category_id = _category_id(session, given.category)
    article.updated_by, article.updated_at = principal.actor, utcnow()
    session.add(article)
    session.flush()
    _reindex(session, article)
    audit.record(
        session,
        actor=principal.actor,
        action="voice.knowledge.created" if article_id is None else "voice.knowledge.updated",
        object_type="voice_article",
        object_id=str(article.id),
        details={"title": article.title},
    )
    return article_out(session, article)


def remove(session: Session, principal: Principal, article_id: int) -> None:
    require_citywide(principal, MANAGE)
    article = _article(session, article_id)
    session.execute(delete(ArticleTerm).where(ArticleTerm.article_id == article.id))
    session.delete(article)
    audit.record(
        session,
        actor=principal.actor,
        action="voice.knowledge.deleted",
        object_type="voice_article",
        object_id=str(article_id),
        details={"title": article.title},
    )


def answers(session: Session, question: str, limit: int = MAX_ANSWERS) -> list[schemas.ArticleOut]:
    """Published articles that answer ``question`` best, best first (none when no term matches)."""
    terms = query_terms(question)
    if not terms:
        return []
    scores = (
        select(
            ArticleTerm.article_id,
            func.count().label("matched"),
            func.sum(ArticleTerm.weight).label("weight"),
        )
        .where(ArticleTerm.term.in_(terms))
        .group_by(ArticleTerm.article_id)
        .subquery()
    )
    found = session.scalars(
        select(Article)
        .join(scores, scores.c.article_id == Article.id)
        .where(Article.published.is_(True))
        .order_by(scores.c.matched.desc(), scores.c.weight.desc(), Article.id)
        .limit(limit)
    )
    return [article_out(session, article) for article in found]


def listing(
    session: Session, paging: PageParams, include_drafts: bool
) -> tuple[list[schemas.ArticleOut], int]:
    statement = select(Article).order_by(Article.id)
    if not include_drafts:
        statement = statement.where(Article.published.is_(True))
    rows, total = fetch_page(session, statement, paging)
    return [article_out(session, row) for row in rows], total


def published(session: Session, article_id: int) -> schemas.ArticleOut:
    article = _article(session, article_id)
    if not article.published:
        raise NotFound(_("No such knowledge-base article."))
    return article_out(session, article)


def article_out(session: Session, article: Article) -> schemas.ArticleOut:
    category = session.get(Category, article.category_id) if article.category_id else None
    return schemas.ArticleOut(
        id=article.id,
        title=article.title,
        body=article.body,
        category=category.code if category else None,
        published=article.published,
        updated_at=article.updated_at,
    )


def _article(session: Session, article_id: int) -> Article:
    article = session.get(Article, article_id)
    if article is None:
        raise NotFound(_("No such knowledge-base article."))
    return article


def _category_id(session: Session, code: str | None) -> int | None:
    if code is None:
        return None
    found = session.scalar(select(Category.id).where(Category.code == code))
    if found is None:
        raise ValidationProblem(_("Category %(code)s does not exist.", code=code), field="category")
    return found


def _reindex(session: Session, article: Article) -> None:
    session.execute(delete(ArticleTerm).where(ArticleTerm.article_id == article.id))
    weights = dict.fromkeys(terms_of(article.body, prefixes=True), BODY_WEIGHT)
    weights.update(dict.fromkeys(terms_of(article.title, prefixes=True), TITLE_WEIGHT))
    if weights:
        session.execute(
            insert(ArticleTerm),
            [{"term": term, "article_id": article.id, "weight": weight} for term, weight in weights.items()],
        )
