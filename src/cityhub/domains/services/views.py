"""Resident pages of the city services entry: the services grid, search, lists by department, category and
life event, and one item with its favourite toggle. The catalogue is public; favourites and recently used
items appear for a signed-in resident."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from cityhub.domains.identity import PageUser, SignedIn
from cityhub.domains.services import schemas
from cityhub.domains.services.service import catalogue
from cityhub.kernel.errors import NotFound
from cityhub.kernel.i18n import get_locale
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.pagination import PageParams
from cityhub.kernel.web import CsrfChecked, DbSession, get_database, render

router = APIRouter()
PAGE_SIZE = 20
KIND_LABELS = {
    "information": _l("Guide"),
    "query": _l("Look up"),
    "form": _l("Apply online"),
    "appointment": _l("Book"),
    "bill": _l("Pay"),
}
Offset = Annotated[int, Query(ge=0, le=100_000)]


def _text(value: schemas.Text | None) -> str:
    """The viewer's language of a bilingual catalogue text."""
    if value is None:
        return ""
    return value.en if get_locale() == "en" else value.zh_CN


def _page(request: Request, name: str, context: dict[str, Any]) -> Response:
    return render(request, f"services/{name}", {"tr": _text, "kinds": KIND_LABELS, **context})


@router.get("/services")
def services_home(request: Request, user: PageUser, session: DbSession) -> Response:
    context: dict[str, Any] = {
        "life_events": catalogue.life_events(session),
        "categories": catalogue.categories(session),
        "departments": catalogue.departments(session),
        "favourites": catalogue.favourites(session, user)[:8] if user and user.account_id else [],
        "recent": catalogue.recently_used(session, user)[:8] if user and user.account_id else [],
    }
    return _page(request, "home.html", context)


@router.get("/services/search")
def search_page(
    request: Request,
    _user: PageUser,
    session: DbSession,
    q: Annotated[str, Query(max_length=200)] = "",
    offset: Offset = 0,
) -> Response:
    found, total = catalogue.find_items(
        session, catalogue.ItemFilter(text=q), PageParams(limit=PAGE_SIZE, offset=offset)
    )
    context = {"heading": None, "q": q, "items": found, "total": total, "offset": offset, "size": PAGE_SIZE}
    return _page(request, "list.html", context)


@router.get("/services/items/{code}")
def item_page(request: Request, user: PageUser, session: DbSession, code: str) -> Response:
    item = catalogue.get_item(session, code)
    shaped = catalogue.items_out(session, [item])[0]
    favourite = False
    if user is not None and user.account_id is not None:
        favourite = catalogue.is_favourite(session, user, item)
        with get_database(request).unit_of_work() as write:  # the page itself is a read
            catalogue.record_use(write, user, item)
    departments = {d.code: d for d in catalogue.departments(session)}
    categories = {c.code: c for c in catalogue.categories(session)}
    events = {e.code: e for e in catalogue.life_events(session)}
    context = {
        "item": shaped,
        "department": departments[shaped.department],
        "category": categories[shaped.category],
        "events": [events[code] for code in shaped.life_events],
        "favourite": favourite,
    }
    return _page(request, "item.html", context)


@router.post("/services/items/{code}/favourite", dependencies=[CsrfChecked])
def toggle_favourite(
    user: SignedIn, session: DbSession, code: str, action: Annotated[str, Form(pattern="^(add|remove)$")]
) -> Response:
    if action == "add":
        catalogue.add_favourite(session, user, code)
    else:
        catalogue.remove_favourite(session, user, code)
    return RedirectResponse(f"/services/items/{code}", status_code=303)


@router.get("/services/{kind}/{code}")
def listing_page(
    request: Request, _user: PageUser, session: DbSession, kind: str, code: str, offset: Offset = 0
) -> Response:
    records: list[schemas.DepartmentOut] | list[schemas.CategoryOut] | list[schemas.LifeEventOut]
    if kind == "departments":
        records, wanted = catalogue.departments(session), catalogue.ItemFilter(department=code)
    elif kind == "categories":
        records, wanted = catalogue.categories(session), catalogue.ItemFilter(category=code)
    elif kind == "life-events":
        records, wanted = catalogue.life_events(session), catalogue.ItemFilter(life_event=code)
    else:
        raise NotFound()
    record = next((r for r in records if r.code == code), None)
    if record is None:
        raise NotFound()
    found, total = catalogue.find_items(session, wanted, PageParams(limit=PAGE_SIZE, offset=offset))
    context = {
        "heading": record,
        "q": "",
        "items": found,
        "total": total,
        "offset": offset,
        "size": PAGE_SIZE,
    }
    return _page(request, "list.html", context)
