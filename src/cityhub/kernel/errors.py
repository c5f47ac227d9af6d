"""RFC 9457 problems: one exception type for the business logic, rendered as application/problem+json."""

from __future__ import annotations

from typing import Any

from cityhub.kernel.i18n import gettext as _

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://cityhub.dev/problems/"


class Problem(Exception):
    """A failure the client can understand: status, a stable type slug, a translated title and detail."""

    status = 400
    slug = "bad-request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        status: int | None = None,
        slug: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title or self.slug)
        if status is not None:
            self.status = status
        if slug is not None:
            self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    def to_dict(self, instance: str | None = None, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title or default_title(self.status),
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        if request_id:
            body["request_id"] = request_id
        body.update(self.extensions)
        return body


class NotFound(Problem):
    status = 404
    slug = "not-found"


class Conflict(Problem):
    status = 409
    slug = "conflict"


class Unauthorized(Problem):
    status = 401
    slug = "unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(Problem):
    status = 403
    slug = "forbidden"


class ValidationProblem(Problem):
    status = 422
    slug = "validation-error"


class TooManyRequests(Problem):
    status = 429
    slug = "too-many-requests"


def default_title(status: int) -> str:
    titles = {
        400: _("Bad request"),
        401: _("Authentication required"),
        403: _("Forbidden"),
        404: _("Not found"),
        405: _("Method not allowed"),
        409: _("Conflict"),
        413: _("Request too large"),
        415: _("Unsupported media type"),
        422: _("Invalid input"),
        423: _("Locked"),
        429: _("Too many requests"),
        500: _("Internal error"),
        503: _("Service unavailable"),
    }
    return titles.get(status, _("Error"))
