"""Every error of our own API as RFC 9457 problem+json; HTML pages get an error page instead."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from cityhub.kernel.errors import PROBLEM_MEDIA_TYPE, Conflict, Problem, ValidationProblem
from cityhub.kernel.i18n import gettext as _

log = logging.getLogger("cityhub.web")

# Standard APIs (NGSI-LD, Open311, CKAN, FHIR) register their own handlers by path prefix.
STANDARD_ERROR_RENDERERS: dict[str, Any] = {}


def problem_response(request: Request, problem: Problem) -> Response:
    for prefix, renderer in STANDARD_ERROR_RENDERERS.items():
        if request.url.path.startswith(prefix):
            response: Response = renderer(request, problem)
            return response
    if _wants_html(request):
        from cityhub.web.templating import render_error_page

        return render_error_page(request, problem)
    body = problem.to_dict(instance=request.url.path, request_id=getattr(request.state, "request_id", None))
    return JSONResponse(
        body, status_code=problem.status, media_type=PROBLEM_MEDIA_TYPE, headers=problem.headers
    )


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/ngsi-ld/", "/open311/", "/fhir/", "/docs", "/openapi")):
        return False
    return "text/html" in request.headers.get("accept", "")


def _validation_errors(exc: RequestValidationError | ValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        errors.append(
            {
                "location": [str(part) for part in error.get("loc", ())],
                "message": error.get("msg", ""),
                "type": error.get("type", ""),
            }
        )
    return errors


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    # A safety net: a page's form checked by a pydantic model inside the handler is bad input, not a bug.
    @app.exception_handler(ValidationError)
    async def _validation(request: Request, exc: RequestValidationError | ValidationError) -> Response:
        problem = ValidationProblem(_("The request has invalid fields."), errors=_validation_errors(exc))
        return problem_response(request, problem)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) and exc.status_code not in (404, 405) else None
        problem = Problem(detail, status=exc.status_code, slug=slug, headers=dict(exc.headers or {}))
        return problem_response(request, problem)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        # A safety net: services check uniqueness first, but a race between two requests ends here.
        log.info("integrity error on %s %s: %s", request.method, request.url.path, exc.orig)
        problem = Conflict(_("The change conflicts with existing data; nothing was saved."))
        return problem_response(request, problem)

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def _out_of_range(request: Request, exc: Exception) -> Response:
        # A value the database cannot hold (an id beyond 64 bits, text too long for a column).
        log.info("value out of range on %s %s: %s", request.method, request.url.path, exc)
        problem = ValidationProblem(_("A value is out of range or too long; nothing was saved."))
        return problem_response(request, problem)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        problem = Problem(
            _("Something went wrong on our side; it has been logged."), status=500, slug="internal"
        )
        return problem_response(request, problem)
