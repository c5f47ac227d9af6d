"""HTTP plumbing shared by every domain's routes: the database session and client address."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cityhub.kernel.db import Database
from cityhub.kernel.errors import Forbidden, Problem, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.ratelimit import enforce
from cityhub.kernel.security import csrf_token_for
from cityhub.kernel.settings import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back if it raises.

    Unsafe methods take the write path (``BEGIN IMMEDIATE`` on SQLite). Creating a session does no I/O (it
    connects on first use), so only the commit or rollback goes to the thread pool: one hop, not two.
    """
    async with _transaction(request, write=request.method not in SAFE_METHODS) as session:
        yield session


async def _write_session(request: Request) -> AsyncIterator[Session]:
    """A write transaction even for GET: for reads that must leave an audit record."""
    async with _transaction(request, write=True) as session:
        yield session


@asynccontextmanager
async def _transaction(request: Request, write: bool) -> AsyncIterator[Session]:
    session = get_database(request).request_session(write=write)
    try:
        yield session
    except BaseException:
        await _finish(session, commit=False)
        raise
    await _finish(session, commit=True)


async def _finish(session: Session, commit: bool) -> None:
    if session.in_transaction():
        await run_in_threadpool(_close, session, commit)
    else:
        session.close()  # never touched the database: nothing to send, no thread hop


def _close(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


# scope="function": commit before the response is sent, so a failed commit becomes an error response.
DbSession = Annotated[Session, Depends(_session, scope="function")]
DbWriteSession = Annotated[Session, Depends(_write_session, scope="function")]
AppSettings = Annotated[Settings, Depends(get_app_settings)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    """A page from the shared Jinja2 templates. Domains sit below the web layer and cannot import it, so the
    web layer installs its renderer as ``app.state.render`` (see cityhub.web.templating.render)."""
    renderer: Callable[..., HTMLResponse] = request.app.state.render
    return renderer(request, name, context, status_code)


FLASH_KEY = "flash"  # base.html shows these messages once and forgets them
ResultT = TypeVar("ResultT")


def flash(request: Request, message: str) -> None:
    """A message shown once on the next page."""
    request.session[FLASH_KEY] = [*request.session.get(FLASH_KEY, []), message]


def see_other(url: str) -> RedirectResponse:
    """The redirect after a page's POST (303: the browser follows it with a GET)."""
    return RedirectResponse(url, status_code=303)


def attempt(session: Session, action: Callable[[], ResultT]) -> ResultT | Problem:
    """Run a page's change in a savepoint: its result, or the Problem that undid it (for the page to show
    next to the form, while the request's transaction goes on); a form's pydantic refusal is a Problem too."""
    try:
        with session.begin_nested():
            try:
                return action()
            except ValidationError as exc:
                raise ValidationProblem(described(exc)) from exc
    except Problem as problem:
        return problem


def described(exc: ValidationError) -> str:
    """A pydantic refusal as one line a person can act on ("field: what is wrong; ...")."""
    parts = []
    for error in exc.errors():
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def detail_of(problem: Problem) -> str:
    """What a page shows of a refusal."""
    return problem.detail or problem.title or str(problem)


def attachment(content: bytes | str, media_type: str, filename: str) -> Response:
    """A file to download (CSV, PDF) that no shared cache keeps: it is someone's data."""
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


CSV = "text/csv; charset=utf-8"


def money(cents: int) -> str:
    """An amount in yuan as pages show it: ¥1,234.50."""
    return f"¥{cents / 100:,.2f}"


def csrf_token(request: Request) -> str:
    """The CSRF token of this page session (a session id is created on first use)."""
    session_id = request.session.get("sid")
    if not session_id:
        session_id = secrets.token_urlsafe(16)
        request.session["sid"] = session_id
    settings: Settings = request.app.state.settings
    return csrf_token_for(settings.secret_key, session_id)


async def verify_csrf(request: Request) -> None:
    """Refuse an unsafe page request whose form field or X-CSRF-Token header does not match the session."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get("X-CSRF-Token")
    if not sent:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    expected = csrf_token(request)
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden(
            _("The form has expired or did not come from this site; reload the page and try again."),
            slug="csrf",
        )


CsrfChecked = Depends(verify_csrf)


async def refuse_cross_site(request: Request) -> None:
    """For GET pages with side effects (audited reads): a link on another site must not trigger them.

    Browsers send Sec-Fetch-Site; a cross-site navigation carries the SameSite=Lax cookie, so without this a
    foreign page could make an officer's browser write an audit record with a purpose of its choosing.
    """
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise Forbidden(_("Open this page from within the platform."), slug="cross-site")


SameSiteOnly = Depends(refuse_cross_site)


def public_rate_limit(request: Request) -> None:
    """Limit anonymous use of public endpoints per client address (CITYHUB_RATE_LIMITS__PUBLIC)."""
    settings: Settings = request.app.state.settings
    enforce(settings.rate_limits.storage_uri, settings.rate_limits.public, "public", client_address(request))


PublicRateLimited = Depends(public_rate_limit)
