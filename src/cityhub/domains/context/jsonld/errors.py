"""Errors of @context handling, each carrying the NGSI-LD problem type and HTTP status to answer with.

The broker renders them as problem+json without a mapping table of its own: ``problem_type``, ``status`` and
``str(error)`` are the type, status and detail. ``args`` hold the constructor arguments so that a cached
failure can be re-raised as a fresh copy (``copy.copy``) without growing one traceback forever.
"""

from __future__ import annotations

NGSI_LD_ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
BAD_REQUEST_DATA = NGSI_LD_ERRORS + "BadRequestData"
INVALID_REQUEST = NGSI_LD_ERRORS + "InvalidRequest"
LD_CONTEXT_NOT_AVAILABLE = NGSI_LD_ERRORS + "LdContextNotAvailable"


class JsonLdContextError(Exception):
    """Base of every error raised by ``cityhub.domains.context.jsonld``."""

    problem_type: str = BAD_REQUEST_DATA
    status: int = 400


class ContextNotAvailable(JsonLdContextError):
    """A referenced @context could not be obtained: network failure, timeout, HTTP error, too large, fetching
    disabled, or a URL that cannot be dereferenced.

    NGSI-LD answers ``LdContextNotAvailable``. Status 503, as Orion-LD (failed download), Scorpio, Stellio
    and ETSI's conformance tests (043_01, "Verify receiving 503 - LdContextNotAvailable") expect. One
    implementer reads 504 in the error-type table of GS CIM 009 v1.9.1 (Table 6.3.4-1); that was not checked
    against the spec text here. This attribute is the only place the status is decided.
    """

    problem_type = LD_CONTEXT_NOT_AVAILABLE
    status = 503

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, reason)
        self.url = url
        self.reason = reason

    def __str__(self) -> str:
        return f"@context {self.url} is not available: {self.reason}"


class InvalidContext(JsonLdContextError):
    """An @context (inline or downloaded) is not a valid JSON-LD context, or nests too deep or in a cycle.

    The client sent or named it, so this is ``BadRequestData`` (400), as Orion-LD and Stellio answer.
    """

    def __init__(self, reason: str, url: str | None = None) -> None:
        super().__init__(reason, url)
        self.reason = reason
        self.url = url

    def __str__(self) -> str:
        where = f" ({self.url})" if self.url else ""
        return f"invalid @context{where}: {self.reason}"


class ContextRequestError(JsonLdContextError):
    """The request's headers and body disagree about where its @context is (Link header vs body, content
    type), or its Link/Accept/Content-Type header cannot be used.
    """

    def __init__(self, message: str, problem_type: str = BAD_REQUEST_DATA, status: int = 400) -> None:
        super().__init__(message, problem_type, status)
        self.message = message
        self.problem_type = problem_type
        self.status = status

    def __str__(self) -> str:
        return self.message
