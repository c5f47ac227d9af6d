"""The app factory: settings + database + every installed domain's routers and pages."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette._utils import get_route_path
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Match
from starlette.types import Scope

import cityhub
from cityhub.domains import check_domain_settings, load_models, manifests
from cityhub.kernel.db import Database
from cityhub.kernel.domain import resolve
from cityhub.kernel.settings import Settings, get_settings
from cityhub.web.errors import STANDARD_ERROR_RENDERERS, install_error_handlers
from cityhub.web.middleware import RequestContextMiddleware
from cityhub.web.templating import render

STATIC_DIR = Path(__file__).resolve().parent / "static"


class _PrefixedRouter(APIRouter):
    """A router that requests outside its path prefix skip at once.

    FastAPI 0.165 finds a route by asking every route of every included router in turn, and does it twice
    per request (once to choose, once inside the chosen router): a call to the last domain's API tried about
    280 routes, 2.2 ms of CPU per request, more than the claim it served. A domain's API lives under
    ``/api/v1/<domain>``, so one string comparison rules out all of its routes for any other path.
    """

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._guard = prefix

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = get_route_path(scope)
        if path != self._guard and not path.startswith(self._guard + "/"):
            return Match.NONE, {}
        return super().matches(scope)


def _domain_api(name: str, router: APIRouter) -> APIRouter:
    prefix = f"/api/v1/{name}"
    guarded = _PrefixedRouter(prefix)
    guarded.include_router(router, prefix=prefix, tags=[name])
    return guarded


SESSION_COOKIE = "cityhub_session"

log = logging.getLogger("cityhub.web")


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    check_domain_settings(settings)
    database = database or Database.from_settings(settings)
    load_models()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = None
        # Objects made at start-up live for the whole process: keep the collector from re-scanning them,
        # which otherwise shows up as long pauses in the latency tail.
        gc.freeze()
        if settings.embedded_worker:
            from cityhub.worker import start_embedded_runner

            runner = start_embedded_runner(settings, database)
        try:
            yield
        finally:
            if runner is not None:
                runner.stop()

    app = FastAPI(
        title="cityhub",
        version=cityhub.__version__,
        description="One platform for a city's services, data, devices and communities.",
        lifespan=lifespan,
        openapi_tags=[{"name": m.name, "description": str(m.title)} for m in manifests()],
        telemetry={
            "tracing": settings.opentelemetry,
            "metrics": settings.opentelemetry,
            "logs": settings.opentelemetry,
        },
    )
    app.state.settings = settings
    app.state.db = database
    app.state.render = render  # domains render pages through cityhub.kernel.web.render
    install_error_handlers(app)

    # Added first, so they run innermost: after request id, locale and session, before routing.
    for manifest in manifests():
        for reference in manifest.asgi_middleware:
            app.add_middleware(resolve(reference))
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_hours * 3600,
        same_site="lax",
        https_only=settings.base_url.startswith("https://"),
    )
    app.add_middleware(RequestContextMiddleware, default_locale=settings.default_locale)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    _add_health_routes(app, database)
    # Every domain's API first: each is ruled out by its prefix alone, so a call to any of them skips the
    # pages routers, which have no common prefix and are tried route by route.
    for manifest in manifests():
        if manifest.api:
            app.include_router(_domain_api(manifest.name, resolve(manifest.api)))
    for manifest in manifests():
        for reference in manifest.extra_routers:
            app.include_router(resolve(reference))
        for prefix, renderer in manifest.error_renderers.items():
            STANDARD_ERROR_RENDERERS[prefix] = resolve(renderer)
        if manifest.pages:
            app.include_router(resolve(manifest.pages), include_in_schema=False)
    from cityhub.web.pages import router as shell_pages
    from cityhub.web.sandbox_payments import router as sandbox_payments

    app.include_router(shell_pages, include_in_schema=False)
    app.include_router(sandbox_payments, include_in_schema=False)
    return app


def _add_health_routes(app: FastAPI, database: Database) -> None:
    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="The process can reach its database")
    def readyz() -> JSONResponse:
        try:
            with database.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:
            log.warning("readiness check failed: %s", exc)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "database": database.dialect})
