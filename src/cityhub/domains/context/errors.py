"""NGSI-LD errors (GS CIM 009 clause 5.5.2): problem details whose ``type`` is an ETSI error IRI.

They subclass the kernel's Problem, so the platform's handlers catch them; under ``/ngsi-ld/`` the renderer
registered by the domain answers in the NGSI-LD shape (``type``/``title``/``status``/``detail``) with
``application/json``, and maps the platform's own problems (unknown route, invalid fields) to NGSI-LD types.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from cityhub.domains.context.jsonld.errors import NGSI_LD_ERRORS, JsonLdContextError
from cityhub.kernel.errors import PROBLEM_BASE, Problem

ERROR_MEDIA_TYPE = "application/json"


class NgsiError(Problem):
    """Base of the NGSI-LD error types; subclasses name the type and its status."""

    error_type = "InternalError"
    status = 500

    def __init__(self, detail: str, *, status: int | None = None, **extensions: Any) -> None:
        super().__init__(detail, status=status, slug=self.error_type, title=self.error_type, **extensions)

    @property
    def problem_type(self) -> str:
        return NGSI_LD_ERRORS + self.error_type


class BadRequestData(NgsiError):
    error_type = "BadRequestData"
    status = 400


class InvalidRequest(NgsiError):
    error_type = "InvalidRequest"
    status = 400


class ResourceNotFound(NgsiError):
    error_type = "ResourceNotFound"
    status = 404


class AlreadyExists(NgsiError):
    error_type = "AlreadyExists"
    status = 409


class OperationNotSupported(NgsiError):
    error_type = "OperationNotSupported"
    status = 422


class TooComplexQuery(NgsiError):
    error_type = "TooComplexQuery"
    status = 403


class TooManyResults(NgsiError):
    error_type = "TooManyResults"
    status = 403


class NonexistentTenant(NgsiError):
    error_type = "NonexistentTenant"
    status = 404


class LdContextNotAvailable(NgsiError):
    error_type = "LdContextNotAvailable"
    status = 503


class UnsupportedMediaType(NgsiError):
    error_type = "InvalidRequest"
    status = 415


class NotAcceptable(NgsiError):
    error_type = "InvalidRequest"
    status = 406


def from_context_error(error: JsonLdContextError) -> NgsiError:
    """The NGSI-LD problem for an @context failure (its type and status travel on the exception)."""
    problem = NgsiError(str(error), status=error.status)
    problem.error_type = error.problem_type.removeprefix(NGSI_LD_ERRORS)
    problem.slug = problem.title = problem.error_type
    return problem


# Platform problems raised under /ngsi-ld/ (routing, request validation, auth) in NGSI-LD terms.
_PLATFORM_TYPES = {
    400: "BadRequestData",
    404: "ResourceNotFound",
    405: "OperationNotSupported",
    409: "AlreadyExists",
    413: "BadRequestData",
    422: "BadRequestData",
}


def render_ngsi_error(request: Request, problem: Problem) -> Response:
    if isinstance(problem, NgsiError):
        error_type, status = problem.error_type, problem.status
    else:
        status = 400 if problem.status == 422 else problem.status
        error_type = _PLATFORM_TYPES.get(problem.status, PROBLEM_BASE + problem.slug)
    body: dict[str, Any] = {
        "type": error_type if error_type.startswith("http") else NGSI_LD_ERRORS + error_type,
        "title": error_type.rsplit("/", 1)[-1],
        "status": status,
    }
    if problem.detail:
        body["detail"] = str(problem.detail)
    body.update(problem.extensions)
    return JSONResponse(body, status_code=status, media_type=ERROR_MEDIA_TYPE, headers=problem.headers)
