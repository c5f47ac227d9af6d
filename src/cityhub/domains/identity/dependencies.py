"""FastAPI dependencies that authenticate a caller and check permissions; other domains use them too.

API callers present ``Authorization: Bearer <JWT>`` (people) or ``Authorization: ApiKey <key>`` /
``X-API-Key: <key>`` (machines). Pages use the signed-cookie session instead (see views).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cityhub.domains.identity.service import page_sessions
from cityhub.domains.identity.service.access import Principal, require
from cityhub.domains.identity.service.accounts import account_id_from_access_token, principal_for_account
from cityhub.domains.identity.service.apikeys import principal_from_api_key
from cityhub.domains.identity.service.principals import principal_cache
from cityhub.domains.identity.settings import IdentitySettings
from cityhub.kernel.db import Database
from cityhub.kernel.errors import Unauthorized
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.security import hash_api_key
from cityhub.kernel.settings import domain_settings
from cityhub.kernel.web import get_database

SESSION_ACCOUNT_KEY = "account_id"
# The session key holding the page-session token; also the seed of the page's CSRF tokens.
SESSION_TOKEN_KEY = "sid"  # noqa: S105 - a dictionary key, not a secret


def identity_settings() -> IdentitySettings:
    return domain_settings(IdentitySettings)


def _credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return "bearer", value.strip()
    if scheme.lower() == "apikey" and value:
        return "apikey", value.strip()
    api_key = request.headers.get("x-api-key")
    if api_key:
        return "apikey", api_key.strip()
    return None


async def optional_principal(request: Request) -> Principal | None:
    """The authenticated API caller, or None when no credentials were sent (bad ones still fail).

    Async on purpose: a cached principal costs no thread hop; only a cache miss goes to the database, in a
    short read of its own rather than the request's transaction, which on SQLite would be a write lock held
    for the whole request when the method is unsafe.
    """
    credentials = _credentials(request)
    if credentials is None:
        return None
    key, loader = _cache_key_and_loader(request, *credentials)
    ttl = identity_settings().principal_cache_seconds
    principal = await _cached(key, ttl, loader, get_database(request))
    request.state.principal = principal
    return principal


async def api_key_principal(request: Request, key: str) -> Principal:
    """The machine caller of a key presented elsewhere than the headers (Open311 puts ``api_key`` in the
    form), through the same per-process cache as header credentials; a bad key raises Unauthorized."""
    cache_key, loader = _cache_key_and_loader(request, "apikey", key)
    principal = await _cached(
        cache_key, identity_settings().principal_cache_seconds, loader, get_database(request)
    )
    request.state.principal = principal
    return principal


_Loader = tuple[Callable[..., Principal], tuple[Any, ...]]


def _cache_key_and_loader(request: Request, kind: str, value: str) -> tuple[tuple[str, object], _Loader]:
    """The principal cache key of these credentials and how to load the principal (raises for a bad token)."""
    database = get_database(request)
    if kind == "bearer":
        account_id = account_id_from_access_token(request.app.state.settings.secret_key, value)
        return ("account", account_id), (principal_for_account, (account_id,))
    return ("apikey", hash_api_key(value)), (principal_from_api_key, (value, database))


def _read(database: Database, load: Callable[..., Principal], *args: Any) -> Principal:
    with database.request_session(write=False) as session:
        return load(session, *args)


async def _cached(key: tuple[str, object], ttl: float, loader: _Loader, database: Database) -> Principal:
    principal = principal_cache.get(key, ttl)
    if principal is not None:
        _refresh_if_due(key, ttl, loader, database)
        return principal
    return await asyncio.shield(_flight(key, ttl, loader, database))


def _refresh_if_due(key: tuple[str, object], ttl: float, loader: _Loader, database: Database) -> None:
    """Refresh-ahead: past half its life an entry is reloaded in the background while it keeps answering.

    Under steady load the entry then never expires, so requests never queue behind a refill (nor do raw
    fast paths fall back to the slow route); a change made elsewhere still shows within ``ttl``.
    """
    if principal_cache.due(key):
        _flight(key, ttl, loader, database)


def _flight(
    key: tuple[str, object], ttl: float, loader: _Loader, database: Database
) -> asyncio.Task[Principal]:
    """The one load of ``key`` under way in this event loop (single flight), started if there is none.

    The load is a task of its own, so a caller that goes away does not cancel it for the others.
    """
    loop = asyncio.get_running_loop()
    flight_key = (id(loop), key)
    flight = _in_flight.get(flight_key)
    if flight is None:
        load, args = loader
        flight = loop.create_task(run_in_threadpool(_read, database, load, *args))
        _in_flight[flight_key] = flight
        flight.add_done_callback(lambda done: _landed(flight_key, key, ttl, done))
    return flight


def _landed(
    flight_key: tuple[int, tuple[str, object]],
    key: tuple[str, object],
    ttl: float,
    flight: asyncio.Task[Principal],
) -> None:
    _in_flight.pop(flight_key, None)
    if not flight.cancelled() and flight.exception() is None:
        principal_cache.put(key, flight.result(), ttl)


_in_flight: dict[tuple[int, tuple[str, object]], asyncio.Task[Principal]] = {}


def cached_principal(request: Request) -> Principal | None:
    """The API caller if this process already knows the credentials (no I/O): for raw ASGI fast paths,
    which hand the request to the normal route when this is None. Bad credentials also give None here.
    Must be called in the event loop (a due entry is refreshed in the background)."""
    credentials = _credentials(request)
    if credentials is None:
        return None
    try:
        key, loader = _cache_key_and_loader(request, *credentials)
    except Unauthorized:
        return None
    ttl = identity_settings().principal_cache_seconds
    principal = principal_cache.get(key, ttl)
    if principal is not None:
        _refresh_if_due(key, ttl, loader, get_database(request))
    return principal


async def current_principal(principal: Annotated[Principal | None, Depends(optional_principal)]) -> Principal:
    if principal is None:
        raise Unauthorized(_("Log in or present an API key."), slug="unauthenticated")
    return principal


async def page_principal(request: Request) -> Principal | None:
    """The logged-in page user from the signed session cookie, or None."""
    account_id = request.session.get(SESSION_ACCOUNT_KEY)
    token = request.session.get(SESSION_TOKEN_KEY)
    if not isinstance(account_id, int) or not isinstance(token, str):
        return None
    ttl = identity_settings().principal_cache_seconds
    key = ("page", hash_api_key(token))
    try:
        loader: _Loader = (_principal_for_page_session, (account_id, token))
        principal = await _cached(key, ttl, loader, get_database(request))
    except Unauthorized:
        request.session.clear()
        return None
    request.state.user = principal
    return principal


def _principal_for_page_session(session: Session, account_id: int, token: str) -> Principal:
    if not page_sessions.is_live(session, account_id, token):
        raise Unauthorized(_("Your session has ended; log in again."), slug="session-ended")
    return principal_for_account(session, account_id)


def require_permission(permission: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller must hold ``permission`` somewhere (routes check the exact scope)."""

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        require(principal, permission)
        return principal

    check.__name__ = f"require_{permission.replace('.', '_')}"
    return check


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
