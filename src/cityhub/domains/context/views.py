"""Operator pages of the context hub (``/console/context``): tenants, entity types, entity lists with a map,
one entity's attributes with history charts, and subscriptions with their delivery status.

Thin routes over ``service.console``. Every page needs ``context.entities.read`` in the chosen tenant (a
tenant tied to an org unit: over that unit; an untied one: over a whole tree); the subscriptions page needs
``context.subscriptions.manage`` there. The map and the charts load JSON from the routes below
(``/static/js/context-console.js``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from cityhub.domains.context.service import console
from cityhub.domains.context.service.tenants import TenantRef
from cityhub.domains.context.settings import ContextSettings
from cityhub.domains.identity import Principal, SignedIn, require
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Forbidden
from cityhub.kernel.i18n import get_locale
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.pagination import Page, Paging
from cityhub.kernel.settings import domain_settings
from cityhub.kernel.web import DbSession, render

router = APIRouter(prefix="/console/context")

READ = console.READ
SUBSCRIPTIONS = "context.subscriptions.manage"
ENTITY_PAGE_SIZE = 20
WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
Window = Literal["24h", "7d"]
KIND_LABELS = {
    "Property": _l("Property"),
    "Relationship": _l("Relationship"),
    "GeoProperty": _l("Geo-property"),
    "LanguageProperty": _l("Language property"),
    "VocabProperty": _l("Vocabulary property"),
    "JsonProperty": _l("JSON property"),
    "ListProperty": _l("List property"),
    "ListRelationship": _l("List relationship"),
}

TenantName = Annotated[str, Query(alias="tenant", max_length=128)]
TypeFilter = Annotated[str | None, Query(alias="type", max_length=512)]


def _page(request: Request, name: str, context: dict[str, Any]) -> Response:
    zone = ZoneInfo(request.app.state.settings.timezone)

    def when(moment: datetime | None) -> str:
        return format_datetime(moment, "short", tzinfo=zone, locale=get_locale()) if moment else "—"

    return render(request, name, {"when": when, "kind_labels": KIND_LABELS, **context})


def _entities_context(
    session: DbSession, tenant: TenantRef, type_iri: str | None, paging: Paging
) -> dict[str, Any]:
    paging = paging.model_copy(update={"limit": min(paging.limit, ENTITY_PAGE_SIZE)})
    rows, total = console.entity_page(session, tenant, type_iri, paging)
    page: Page[console.EntityRow] = Page(items=rows, total=total, limit=paging.limit, offset=paging.offset)
    return {"tenant": tenant, "type_iri": type_iri or "", "page": page}


@router.get("")
def context_console(
    request: Request,
    user: SignedIn,
    session: DbSession,
    paging: Paging,
    tenant_name: TenantName = "",
    type_iri: TypeFilter = None,
) -> Response:
    require(user, READ)
    tenant = console.open_tenant(session, user, tenant_name)
    types = console.type_counts(session, tenant)
    context = {
        "tenants": console.readable_tenants(session, user),
        "types": types,
        "type_name": console.display_name(type_iri) if type_iri else None,
        "may_see_subscriptions": _may(user, SUBSCRIPTIONS, session, tenant_name),
        "tile_url": domain_settings(ContextSettings).map_tile_url,
        "tile_attribution": domain_settings(ContextSettings).map_tile_attribution,
        **_entities_context(session, tenant, type_iri, paging),
    }
    return _page(request, "context/console.html", context)


def _may(user: Principal, permission: str, session: DbSession, tenant_name: str) -> bool:
    if not user.has(permission):
        return False
    try:
        console.open_tenant(session, user, tenant_name, permission)
    except Forbidden:
        return False
    return True


@router.get("/entities")
def entity_list(
    request: Request,
    user: SignedIn,
    session: DbSession,
    paging: Paging,
    tenant_name: TenantName = "",
    type_iri: TypeFilter = None,
) -> Response:
    """The entity table alone: the console page swaps it in with htmx when paging."""
    require(user, READ)
    tenant = console.open_tenant(session, user, tenant_name)
    return _page(request, "context/_entities.html", _entities_context(session, tenant, type_iri, paging))


@router.get("/features")
def map_features(
    user: SignedIn,
    session: DbSession,
    tenant_name: TenantName = "",
    type_iri: TypeFilter = None,
    bbox: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    """GeoJSON of the located entities in the visible map area (at most ``MAP_FEATURE_LIMIT``)."""
    require(user, READ)
    tenant = console.open_tenant(session, user, tenant_name)
    box = console.BoundingBox.parse(bbox) if bbox else None
    return JSONResponse(
        console.map_features(session, tenant, type_iri, box), media_type="application/geo+json"
    )


@router.get("/subscriptions")
def subscriptions_page(
    request: Request, user: SignedIn, session: DbSession, paging: Paging, tenant_name: TenantName = ""
) -> Response:
    require(user, SUBSCRIPTIONS)
    tenant = console.open_tenant(session, user, tenant_name, SUBSCRIPTIONS)
    rows, total = console.subscription_page(session, tenant, paging)
    page: Page[console.SubscriptionView] = Page(
        items=rows, total=total, limit=paging.limit, offset=paging.offset
    )
    return _page(request, "context/subscriptions.html", {"tenant": tenant, "page": page})


# Declared before the entity page: ``{entity_id:path}`` would otherwise swallow the ``/series`` suffix.
@router.get("/entities/{entity_id:path}/series")
def entity_series(
    user: SignedIn,
    session: DbSession,
    entity_id: str,
    tenant_name: TenantName = "",
    window: Window = "24h",
) -> JSONResponse:
    """The history of the entity's numeric attributes over the window, for its charts."""
    require(user, READ)
    tenant = console.open_tenant(session, user, tenant_name)
    entity = console.entity_view(session, tenant, entity_id)
    series = console.history_series(session, tenant, entity, utcnow() - WINDOWS[window])
    return JSONResponse(
        {
            "window": window,
            "series": [
                {"name": item.name, "iri": item.iri, "unit": item.unit, "points": item.points}
                for item in series
            ],
        }
    )


@router.get("/entities/{entity_id:path}")
def entity_page(
    request: Request,
    user: SignedIn,
    session: DbSession,
    entity_id: str,
    tenant_name: TenantName = "",
    window: Window = "24h",
) -> Response:
    require(user, READ)
    tenant = console.open_tenant(session, user, tenant_name)
    entity = console.entity_view(session, tenant, entity_id)
    context = {"tenant": tenant, "entity": entity, "window": window, "windows": list(WINDOWS)}
    return _page(request, "context/entity.html", context)
