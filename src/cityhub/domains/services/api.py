"""Services JSON API under /api/v1/services: the public catalogue, a resident's favourites and recently used
items, and the catalogue import for operators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from cityhub.domains.identity import (
    CurrentPrincipal,
    Principal,
    optional_principal,
    require_citywide,
    require_permission,
)
from cityhub.domains.services import schemas
from cityhub.domains.services.service import catalogue
from cityhub.kernel.errors import Unauthorized
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.pagination import Page, Paging
from cityhub.kernel.web import DbSession

router = APIRouter()
MANAGE = "services.catalogue.manage"
Code = Annotated[str, Query(max_length=60)]


@router.get("/departments", response_model=list[schemas.DepartmentOut], summary="Departments (public)")
def departments(session: DbSession) -> list[schemas.DepartmentOut]:
    return catalogue.departments(session)


@router.get("/categories", response_model=list[schemas.CategoryOut], summary="Categories (public)")
def categories(session: DbSession) -> list[schemas.CategoryOut]:
    return catalogue.categories(session)


@router.get("/life-events", response_model=list[schemas.LifeEventOut], summary="Life events (public)")
def life_events(session: DbSession) -> list[schemas.LifeEventOut]:
    return catalogue.life_events(session)


@router.get(
    "/items",
    response_model=Page[schemas.ItemOut],
    summary="Find service items: by department, category, life event, kind, and search text in zh or en",
)
def items(
    session: DbSession,
    paging: Paging,
    caller: Annotated[Principal | None, Depends(optional_principal)],
    q: Annotated[str | None, Query(max_length=200, description="Search text, Chinese or English.")] = None,
    department: Code | None = None,
    category: Code | None = None,
    life_event: Code | None = None,
    kind: Annotated[schemas.ItemKind | None, Query()] = None,
    include_unpublished: Annotated[bool, Query(description=f"Needs {MANAGE}.")] = False,
) -> Page[schemas.ItemOut]:
    if include_unpublished:
        require_citywide(_signed_in(caller), MANAGE)
    wanted = catalogue.ItemFilter(q, department, category, life_event, kind, include_unpublished)
    found, total = catalogue.find_items(session, wanted, paging)
    return Page(items=found, total=total, limit=paging.limit, offset=paging.offset)


@router.get("/items/{code}", response_model=schemas.ItemOut, summary="One service item (public)")
def item(code: str, session: DbSession) -> schemas.ItemOut:
    return catalogue.items_out(session, [catalogue.get_item(session, code)])[0]


@router.get("/me/favourites", response_model=list[schemas.MarkedItemOut], summary="My favourite items")
def my_favourites(principal: CurrentPrincipal, session: DbSession) -> list[schemas.MarkedItemOut]:
    return catalogue.favourites(session, principal)


@router.put("/me/favourites/{code}", status_code=status.HTTP_204_NO_CONTENT, summary="Add a favourite")
def add_favourite(code: str, principal: CurrentPrincipal, session: DbSession) -> Response:
    catalogue.add_favourite(session, principal, code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/me/favourites/{code}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a favourite")
def remove_favourite(code: str, principal: CurrentPrincipal, session: DbSession) -> Response:
    catalogue.remove_favourite(session, principal, code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me/recent", response_model=list[schemas.MarkedItemOut], summary="Items I used recently")
def my_recent(principal: CurrentPrincipal, session: DbSession) -> list[schemas.MarkedItemOut]:
    return catalogue.recently_used(session, principal)


@router.post(
    "/me/recent/{code}", status_code=status.HTTP_204_NO_CONTENT, summary="Record that I opened an item"
)
def record_use(code: str, principal: CurrentPrincipal, session: DbSession) -> Response:
    catalogue.record_use(session, principal, catalogue.get_item(session, code))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/catalogue",
    response_model=schemas.ImportOut,
    summary="Create or update departments, categories, life events and items by code (all or nothing)",
)
def import_catalogue(
    body: schemas.CatalogueIn,
    principal: Annotated[Principal, Depends(require_permission(MANAGE))],
    session: DbSession,
) -> schemas.ImportOut:
    require_citywide(principal, MANAGE)
    return catalogue.import_catalogue(session, principal.actor, body)


def _signed_in(caller: Principal | None) -> Principal:
    if caller is None:
        raise Unauthorized(_("Log in or present an API key."), slug="unauthenticated")
    return caller
