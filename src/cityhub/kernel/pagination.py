"""Offset pagination for list endpoints: ``?limit=&offset=`` in, ``{items, total, limit, offset}`` out."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

MAX_PAGE_SIZE = 200


class PageParams(BaseModel):
    limit: int = 50
    offset: int = 0


# async: FastAPI runs a sync dependency in a pool thread, a hop per request for a pure function.
async def _page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


Paging = Annotated[PageParams, Depends(_page_params)]


ItemT = TypeVar("ItemT")


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int
    limit: int
    offset: int


def fetch_page(session: Session, statement: Select[Any], params: PageParams) -> tuple[list[Any], int]:
    """Rows of one page (scalars when the statement selects one entity) and the total count."""
    total = session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0
    rows = session.scalars(statement.limit(params.limit).offset(params.offset)).all()
    return list(rows), total


def page_of(rows: list[Any], total: int, params: PageParams, model: type[ItemT]) -> Page[ItemT]:
    """A page of wire models built from rows (``model`` validates from attributes)."""
    validate = model.model_validate  # type: ignore[attr-defined]
    return Page(items=[validate(row) for row in rows], total=total, limit=params.limit, offset=params.offset)
