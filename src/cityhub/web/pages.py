"""The HTML shell: the resident home with every domain's service tiles, and the language switch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from cityhub.domains import manifests
from cityhub.domains.identity import PageUser, Principal, get_person, remember_locale
from cityhub.domains.identity.views import SignedIn, safe_next
from cityhub.kernel.domain import Tile
from cityhub.kernel.i18n import SUPPORTED_LOCALES
from cityhub.kernel.web import CsrfChecked, DbSession
from cityhub.web.middleware import LOCALE_COOKIE
from cityhub.web.templating import render

router = APIRouter()

LOCALE_COOKIE_SECONDS = 365 * 24 * 3600


def visible_tiles(user: Principal) -> list[Tile]:
    """Every installed domain's tiles that this user may open, in display order."""
    tiles = [
        tile
        for manifest in manifests()
        for tile in manifest.tiles
        if tile.permission is None or user.has(tile.permission)
    ]
    return sorted(tiles, key=lambda tile: (tile.order, tile.key))


@router.get("/")
def home(request: Request, user: SignedIn, session: DbSession) -> Response:
    person_name = get_person(session, user.person_id).name if user.person_id else user.name
    return render(request, "home.html", {"tiles": visible_tiles(user), "person_name": person_name})


@router.post("/locale", dependencies=[CsrfChecked])
def switch_locale(
    request: Request,
    user: PageUser,
    session: DbSession,
    locale: Annotated[str, Form(max_length=8)],
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    """Remember the chosen language in a cookie (read by RequestContextMiddleware) and, for a signed-in
    user, on the account (notifications are written in it), and go back."""
    response = RedirectResponse(safe_next(next_path), status_code=303)
    if locale in SUPPORTED_LOCALES:
        if user is not None:
            remember_locale(session, user, locale)
        response.set_cookie(
            LOCALE_COOKIE,
            locale,
            max_age=LOCALE_COOKIE_SECONDS,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
    return response
