"""Where a request's @context comes from, and where a response's goes (GS CIM 009 clause 6.3, HTTP binding).

Requests:
- ``application/json`` (and ``application/merge-patch+json``): the context is in a ``Link`` header with
  ``rel="http://www.w3.org/ns/json-ld#context"``, or absent (core context only). An ``@context`` member in the
  body is an error.
- ``application/ld+json``: the context is the body's ``@context`` (each entity's, for array bodies); it is
  required, and a JSON-LD ``Link`` header as well is an error.
- Requests without a body (GET, DELETE) take the ``Link`` header if any.

These request errors are ``BadRequestData`` (400), as Stellio answers; a malformed ``Link`` header or several
context links (JSON-LD "multiple context link headers") are ``InvalidRequest`` (400); an unsupported
Content-Type is 415 and an unsatisfiable Accept 406.

Responses: ``Accept: application/ld+json`` puts the context in the body as ``@context``; ``application/json``
(the default, also for ``*/*``) and ``application/geo+json`` send it in a ``Link`` header.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

from cityhub.domains.context.jsonld.errors import INVALID_REQUEST, ContextRequestError
from cityhub.domains.context.jsonld.processing import ABSOLUTE_IRI

JSONLD_CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
JSON = "application/json"
JSON_LD = "application/ld+json"
GEO_JSON = "application/geo+json"
MERGE_PATCH_JSON = "application/merge-patch+json"
RESPONSE_MEDIA_TYPES = (JSON, JSON_LD, GEO_JSON)

_LINK_CONTEXT_TYPES = (JSON, MERGE_PATCH_JSON)
_WHITESPACE = " \t"

HeaderValue = str | Iterable[str] | None
"""One header value, or all values of a repeated header (e.g. Starlette's ``headers.getlist("link")``)."""


# -- Link header --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """One link of a Link header (RFC 8288): its target and parameters (names lower-cased, first one wins)."""

    url: str
    params: Mapping[str, str]

    @property
    def rels(self) -> tuple[str, ...]:
        """Relation types, lower-cased (RFC 8288 compares them case-insensitively)."""
        return tuple(self.params.get("rel", "").lower().split())


def parse_link_header(header: HeaderValue) -> list[Link]:
    """Every link in one or more Link header values; ContextRequestError (InvalidRequest) when malformed."""
    values = [header] if isinstance(header, str) else list(header or ())
    return [link for value in values for link in _LinkParser(value).links()]


def context_url_from_link(header: HeaderValue) -> str | None:
    """The URL of the JSON-LD context link, None if there is none; several, or a relative URL, are errors."""
    urls = [link.url for link in parse_link_header(header) if JSONLD_CONTEXT_REL in link.rels]
    if not urls:
        return None
    if len(urls) > 1:
        raise ContextRequestError("more than one JSON-LD context Link header", INVALID_REQUEST)
    if not ABSOLUTE_IRI.match(urls[0]) or urls[0].startswith("_:"):
        raise ContextRequestError(f"the JSON-LD context Link must be an absolute URL, not {urls[0]!r}")
    return urls[0]


def context_link_header(url: str) -> str:
    """The Link header value that hands a response's @context to the client."""
    if any(character in url for character in "<> \t\r\n"):
        raise ValueError(f"cannot put {url!r} in a Link header")
    return f'<{url}>; rel="{JSONLD_CONTEXT_REL}"; type="{JSON_LD}"'


class _LinkParser:
    """``#link = <URI-Reference> *( ";" parameter )`` separated by commas; quoted values may hold , and ;."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._at = 0

    def links(self) -> list[Link]:
        links: list[Link] = []
        while self._skip(_WHITESPACE + ","):
            url = self._target()
            links.append(Link(url, MappingProxyType(self._params())))
        return links

    def _skip(self, characters: str) -> bool:
        """Skip ``characters``; True if anything is left."""
        while self._at < len(self._text) and self._text[self._at] in characters:
            self._at += 1
        return self._at < len(self._text)

    def _error(self, expected: str) -> ContextRequestError:
        return ContextRequestError(
            f"malformed Link header: expected {expected} at position {self._at} of {self._text!r}",
            INVALID_REQUEST,
        )

    def _target(self) -> str:
        if self._text[self._at] != "<":
            raise self._error("'<'")
        end = self._text.find(">", self._at + 1)
        if end < 0:
            raise self._error("'>'")
        url = self._text[self._at + 1 : end].strip()
        self._at = end + 1
        return url

    def _params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        while self._skip(_WHITESPACE) and self._text[self._at] != ",":
            if self._text[self._at] != ";":
                raise self._error("';' or ','")
            self._at += 1
            self._skip(_WHITESPACE)
            name = self._token().lower()
            if not name:
                raise self._error("a parameter name")
            value = self._param_value()
            params.setdefault(name, value)
        return params

    def _param_value(self) -> str:
        self._skip(_WHITESPACE)
        if self._at >= len(self._text) or self._text[self._at] != "=":
            return ""
        self._at += 1
        self._skip(_WHITESPACE)
        if self._at < len(self._text) and self._text[self._at] == '"':
            return self._quoted()
        return self._token()

    def _token(self) -> str:
        start = self._at
        while self._at < len(self._text) and self._text[self._at] not in _WHITESPACE + ";,=":
            self._at += 1
        return self._text[start : self._at]

    def _quoted(self) -> str:
        characters: list[str] = []
        self._at += 1
        while self._at < len(self._text):
            character = self._text[self._at]
            self._at += 1
            if character == '"':
                return "".join(characters)
            if character == "\\" and self._at < len(self._text):
                character = self._text[self._at]
                self._at += 1
            characters.append(character)
        raise self._error("a closing '\"'")


# -- requests -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestContext:
    """Where a request's @context is: ``link`` (``context`` is the URL), ``body`` (``context`` is the body's
    ``@context``; for an array body ``item_contexts`` holds each entity's), or ``core`` (none given).
    """

    source: Literal["link", "body", "core"]
    context: Any = None
    media_type: str | None = None
    item_contexts: tuple[Any, ...] = ()


def media_type_of(content_type: str | None) -> str | None:
    """``application/ld+json; charset=utf-8`` → ``application/ld+json``; None for a missing header."""
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def request_context(content_type: str | None, link: HeaderValue = None, body: Any = None) -> RequestContext:
    """Decide where the @context of a request comes from. ``body`` is the parsed JSON body (None: no body)."""
    link_url = context_url_from_link(link)
    if body is None:
        return _from_link(link_url, media_type_of(content_type))
    media_type = media_type_of(content_type)
    if media_type in _LINK_CONTEXT_TYPES:
        if _contexts_in(body):
            raise ContextRequestError(
                f"a body sent as {media_type} must not contain @context: send the context in a Link header, "
                f"or the body as {JSON_LD}"
            )
        return _from_link(link_url, media_type)
    if media_type == JSON_LD:
        if link_url is not None:
            raise ContextRequestError(
                f"a JSON-LD context Link header must not accompany a {JSON_LD} body: "
                "put the context in the body"
            )
        return _from_body(body)
    raise ContextRequestError(
        f"Content-Type must be {JSON} or {JSON_LD}, not {media_type or 'missing'}", INVALID_REQUEST, 415
    )


def _from_link(link_url: str | None, media_type: str | None) -> RequestContext:
    if link_url is None:
        return RequestContext("core", None, media_type)
    return RequestContext("link", link_url, media_type)


def _contexts_in(body: Any) -> bool:
    items = body if isinstance(body, list) else [body]
    return any(isinstance(item, dict) and "@context" in item for item in items)


def _from_body(body: Any) -> RequestContext:
    if isinstance(body, list):
        if not all(isinstance(item, dict) and "@context" in item for item in body):
            raise ContextRequestError(f"every entity of a {JSON_LD} array body must contain @context")
        return RequestContext("body", None, JSON_LD, tuple(item["@context"] for item in body))
    if not isinstance(body, dict) or "@context" not in body:
        raise ContextRequestError(f"a body sent as {JSON_LD} must contain @context")
    return RequestContext("body", body["@context"], JSON_LD)


# -- responses ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseFormat:
    """The media type to answer with and whether the @context goes in the body (else in a Link header)."""

    media_type: str
    context_in_body: bool

    @property
    def context_in_link(self) -> bool:
        return not self.context_in_body


@dataclass(frozen=True)
class _MediaRange:
    type: str
    subtype: str
    quality: float
    position: int

    def specificity(self, media_type: str) -> int:
        """2 for an exact match, 1 for ``type/*``, 0 for ``*/*``, -1 for no match."""
        kind, _, subtype = media_type.partition("/")
        if self.type == "*":
            return 0
        if self.type != kind:
            return -1
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == subtype else -1


def response_format(accept: str | None, offers: Sequence[str] = RESPONSE_MEDIA_TYPES) -> ResponseFormat:
    """Pick the response media type from ``Accept`` (RFC 9110: the most specific matching range gives each
    offer its quality; ties go to the range listed first, then to the order of ``offers``).
    """
    ranges = _parse_accept(accept)
    if not ranges:
        return ResponseFormat(offers[0], offers[0] == JSON_LD)
    scored = [(_score(offer, ranges), -index, offer) for index, offer in enumerate(offers)]
    best_score, _, best = max(scored)
    if best_score[0] <= 0:
        raise ContextRequestError(
            f"none of {', '.join(offers)} is acceptable (Accept: {accept})", INVALID_REQUEST, 406
        )
    return ResponseFormat(best, best == JSON_LD)


def _score(offer: str, ranges: list[_MediaRange]) -> tuple[float, int, int]:
    matches = [(media_range.specificity(offer), -media_range.position, media_range) for media_range in ranges]
    matching = [match for match in matches if match[0] >= 0]
    if not matching:
        return (0.0, -1, 0)
    specificity, negative_position, media_range = max(matching, key=lambda match: (match[0], match[1]))
    return (media_range.quality, specificity, negative_position)


def _parse_accept(accept: str | None) -> list[_MediaRange]:
    ranges: list[_MediaRange] = []
    for position, part in enumerate((accept or "").split(",")):
        media_type, *params = (piece.strip() for piece in part.split(";"))
        kind, slash, subtype = media_type.lower().partition("/")
        if not slash or not kind or not subtype:
            continue
        ranges.append(_MediaRange(kind, subtype, _quality(params), position))
    return ranges


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0
