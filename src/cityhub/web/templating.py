"""Jinja2 environment shared by the shell and every domain's pages (templates/<domain>/...)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context

from cityhub.domains import manifests
from cityhub.kernel.errors import Problem, default_title
from cityhub.kernel.i18n import LOCALE_NAMES, SUPPORTED_LOCALES, get_locale, gettext, ngettext
from cityhub.kernel.web import csrf_token

WEB_DIR = Path(__file__).resolve().parent
DOMAINS_DIR = WEB_DIR.parent / "domains"


@pass_context
def localtime(context: Context, moment: datetime | None) -> str:
    """A moment in the platform's time zone and the viewer's language (``{{ when | localtime }}``)."""
    if moment is None:
        return "—"
    zone = ZoneInfo(context["request"].app.state.settings.timezone)
    return format_datetime(moment, "short", tzinfo=zone, locale=get_locale())


@cache
def templates() -> Jinja2Templates:
    loaders = [FileSystemLoader(WEB_DIR / "templates")]
    loaders += [
        FileSystemLoader(DOMAINS_DIR / manifest.name / "templates")
        for manifest in manifests()
        if (DOMAINS_DIR / manifest.name / "templates").is_dir()
    ]
    environment = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(["html", "xml"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    environment.filters["localtime"] = localtime
    environment.globals.update(
        supported_locales=SUPPORTED_LOCALES,
        locale_names=LOCALE_NAMES,
        get_locale=get_locale,
        csrf_token=csrf_token,
    )
    return Jinja2Templates(env=environment)


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    user = getattr(request.state, "user", None)
    merged = {"request": request, "user": user, "locale": get_locale()}
    merged.update(context or {})
    response = templates().TemplateResponse(request, name, merged, status_code=status_code)
    if user is not None:
        # Pages of a signed-in user may show personal data or a secret shown once: never from a cache.
        response.headers["Cache-Control"] = "no-store"
    return response


def render_error_page(request: Request, problem: Problem) -> HTMLResponse:
    context = {"problem": problem, "title": problem.title or default_title(problem.status)}
    response = render(request, "error.html", context, status_code=problem.status)
    response.headers.update(problem.headers)
    return response
