"""What every NGSI-LD route shares: the error-translating route class, the request's tenant, caller and
@context, body parsing, and responses compacted with the requester's context.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cityhub.domains.context.errors import BadRequestData, InvalidRequest, from_context_error
from cityhub.domains.context.jsonld import (
    ContextResolver,
    JsonLdContextError,
    TermMapper,
    context_link_header,
    request_context,
    response_format,
)
from cityhub.domains.context.jsonld.negotiation import GEO_JSON, JSON_LD
from cityhub.domains.context.query.geoquery import GeoQueryError
from cityhub.domains.context.query.qlang import QuerySyntaxError
from cityhub.domains.context.service.batcher import batcher_for
from cityhub.domains.context.service.tenants import (
    TenantRef,
    authorize,
    cached_tenant,
    check_tenant_name,
    find_tenant,
)
from cityhub.domains.context.settings import ContextSettings
from cityhub.domains.context.store.document import check_entity_id
from cityhub.domains.identity import CurrentPrincipal, Principal
from cityhub.kernel import jsontext
from cityhub.kernel.jsontext import FastJSONResponse
from cityhub.kernel.settings import Settings, domain_settings
from cityhub.kernel.web import DbSession, get_database

TENANT_HEADER = "NGSILD-Tenant"
MAX_BODY_BYTES = 8_000_000
LOCATION_SAFE = (
    "/:@!$&'()*+,;="  # RFC 3986 delimiters allowed in a path; '%', '?', '#' and non-ASCII get encoded
)

READ = "context.entities.read"
WRITE = "context.entities.write"
SUBSCRIBE = "context.subscriptions.manage"
MANAGE_CONTEXTS = "context.contexts.manage"


@contextmanager
def ngsi_errors() -> Iterator[None]:
    """Turns the query/geo/@context modules' exceptions into NGSI-LD problems."""
    try:
        yield
    except JsonLdContextError as exc:
        raise from_context_error(exc) from None
    except QuerySyntaxError as exc:
        raise BadRequestData(f"invalid q: {exc}") from None
    except GeoQueryError as exc:
        raise BadRequestData(f"invalid geo-query: {exc}") from None


class NgsiRoute(APIRoute):
    """Every NGSI-LD route answers the query/geo/@context modules' exceptions as NGSI-LD problems."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def translated(request: Request) -> Response:
            with ngsi_errors():
                return await handler(request)
            raise AssertionError("unreachable")  # pragma: no cover - for type checkers

        return translated


_resolvers: dict[str, ContextResolver] = {}
_resolver_lock = threading.Lock()


def resolver_for(settings: Settings) -> ContextResolver:
    """The process's @context resolver for these settings (one per var_dir, shared by every request)."""
    key = str(settings.var_dir)
    resolver = _resolvers.get(key)
    if resolver is None:
        with _resolver_lock:
            resolver = _resolvers.get(key)
            if resolver is None:
                resolver = ContextResolver.from_settings(settings, domain_settings(ContextSettings))
                _resolvers[key] = resolver
    return resolver


def get_resolver(request: Request) -> ContextResolver:
    return resolver_for(request.app.state.settings)


Resolver = Annotated[ContextResolver, Depends(get_resolver)]


def tenant_name(request: Request) -> str:
    return check_tenant_name(request.headers.get(TENANT_HEADER))


@dataclass
class Call:
    """One NGSI-LD request: who calls, in which tenant, with which @context, answering in which format."""

    request: Request
    principal: Principal
    tenant: TenantRef
    resolver: ContextResolver
    mapper: TermMapper
    media_type: str
    context_in_body: bool

    def expand(self, name: str) -> str:
        return self.mapper.expand_term(name)

    def expand_all(self, names: Iterable[str]) -> list[str]:
        return [self.mapper.expand_term(name) for name in names]

    def compact(self, document: Mapping[str, Any]) -> dict[str, Any]:
        return self.mapper.compact_entity(document)

    def respond(
        self, content: Any, status_code: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        """JSON in the negotiated media type; the @context in the body (JSON-LD) or a Link header."""
        headers = dict(headers or {})
        context = self.mapper.context
        if self.context_in_body:
            body_context = context.body_context
            if isinstance(content, list):
                content = [{"@context": body_context, **item} for item in content]
            elif isinstance(content, dict):
                content = {"@context": body_context, **content}
        else:
            link = context.link_url or context.core_url
            headers["Link"] = context_link_header(link)
        return FastJSONResponse(content, status_code=status_code, media_type=self.media_type, headers=headers)


def _mapper_for(resolver: ContextResolver, context: Any) -> TermMapper:
    return resolver.mapper(context)


async def read_body(request: Request) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequestData(f"the body is larger than {MAX_BODY_BYTES} bytes", status=413)
    return parse_body(await request.body())


def parse_body(raw: bytes) -> Any:
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequestData(f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        raise InvalidRequest("the request has no body")
    try:
        return jsontext.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None


def _build_call(
    request: Request,
    principal: Principal,
    session: Any,
    resolver: ContextResolver,
    permission: str,
    *,
    body: Any = None,
    write: bool,
    offers: tuple[str, ...] = ("application/json", JSON_LD),
) -> Call:
    tenant = find_tenant(session, tenant_name(request), create=write)
    authorize(principal, permission, tenant)
    context = request_context(request.headers.get("content-type"), request.headers.get("link"), body)
    chosen = response_format(request.headers.get("accept"), offers)
    mapper = _mapper_for(resolver, context.context if context.source != "core" else None)
    return Call(request, principal, tenant, resolver, mapper, chosen.media_type, chosen.context_in_body)


def cached_call(
    request: Request,
    principal: Principal,
    resolver: ContextResolver,
    permission: str,
    body: Any,
) -> Call | None:
    """The Call without a thread hop when the tenant and the @context are already known (the hot path)."""
    tenant = cached_tenant(get_database(request), tenant_name(request))
    if tenant is None:
        return None
    context = request_context(request.headers.get("content-type"), request.headers.get("link"), body)
    mapper = resolver.cached_mapper(context.context if context.source != "core" else None)
    if mapper is None:
        return None
    authorize(principal, permission, tenant)
    chosen = response_format(request.headers.get("accept"), ("application/json", JSON_LD))
    return Call(request, principal, tenant, resolver, mapper, chosen.media_type, chosen.context_in_body)


def read_call(permission: str = READ, offers: tuple[str, ...] = ("application/json", JSON_LD, GEO_JSON)):  # type: ignore[no-untyped-def]
    """A dependency for GET routes: tenant must exist (default excepted), the caller may read it."""

    def dependency(
        request: Request, principal: CurrentPrincipal, session: DbSession, resolver: Resolver
    ) -> Call:
        return _build_call(request, principal, session, resolver, permission, write=False, offers=offers)

    return Depends(dependency)


def write_call(permission: str = WRITE, *, with_body: bool = True, body_is_context: bool = False):  # type: ignore[no-untyped-def]
    """A dependency for writes: parses the JSON body (``Call.request.state.body``), creates the tenant.

    ``body_is_context``: the body's ``@context`` is the payload (``/jsonldContexts``), not the request's.
    """

    async def dependency(
        request: Request, principal: CurrentPrincipal, session: DbSession, resolver: Resolver
    ) -> Call:
        body = await read_body(request) if with_body else None
        request.state.body = body
        negotiated = None if body_is_context else body
        call = cached_call(request, principal, resolver, permission, negotiated)
        if call is not None:
            return call
        return await run_in_threadpool(
            _build_call, request, principal, session, resolver, permission, body=negotiated, write=True
        )

    return Depends(dependency)


def body_call(permission: str = WRITE, offers: tuple[str, ...] = ("application/json", JSON_LD)):  # type: ignore[no-untyped-def]
    """For requests with a body that do not write in the request's transaction: queries sent by POST, and
    updates done by the group-commit writer (on SQLite a request's write transaction would lock it out).
    The tenant must exist already; the route opens its own session (``read_session``) when it reads.
    """

    async def dependency(request: Request, principal: CurrentPrincipal, resolver: Resolver) -> Call:
        body = await read_body(request)
        request.state.body = body
        call = cached_call(request, principal, resolver, permission, body)
        if call is not None:
            return call
        with get_database(request).request_session(write=False) as session:
            return await run_in_threadpool(
                _build_call,
                request,
                principal,
                session,
                resolver,
                permission,
                body=body,
                write=False,
                offers=offers,
            )

    return Depends(dependency)


def read_session(call: Call) -> Session:
    """A light read session for routes that take their Call from ``body_call``; close it after use."""
    return get_database(call.request).request_session(write=False)


async def patch_attribute(call: Call, entity_id: str, attr: str) -> Response:
    """PATCH /entities/{id}/attrs/{attr} (clause 5.6.4), group-committed with concurrent updates of this
    process (``service.batcher``); shared by the route and the ASGI fast path (``ngsi.fastpath``)."""
    check_entity_id(entity_id)
    fragment = call.mapper.expand_attribute(body_of(call))
    if not isinstance(fragment, dict):
        raise BadRequestData("the body must be a JSON object")
    batcher = batcher_for(get_database(call.request))
    await batcher.patch(call.tenant, entity_id, call.expand(attr), fragment)
    return Response(status_code=204)


def location(collection: str, resource_id: str) -> dict[str, str]:
    """The ``Location`` header of a created resource, its id percent-encoded: a header is ASCII, an id any
    URI (``urn:ngsi-ld:Café:1``)."""
    return {"Location": f"/ngsi-ld/v1/{collection}/{quote(resource_id, safe=LOCATION_SAFE)}"}


def body_of(call: Call) -> Any:
    return call.request.state.body


def object_body(call: Call) -> dict[str, Any]:
    """The JSON-object body without its ``@context`` (already applied to ``call.mapper``)."""
    body = body_of(call)
    if not isinstance(body, dict):
        raise BadRequestData("the body must be a JSON object")
    return without_context(body)


def without_context(body: Any) -> Any:
    if isinstance(body, dict) and "@context" in body:
        return {key: value for key, value in body.items() if key != "@context"}
    return body


def split_list(value: str | None) -> list[str]:
    """A comma-separated query parameter as a list (empty items dropped)."""
    if not value:
        return []
    return [item.strip() for item in value.split(",") if item.strip()]


def options_of(value: str | None, allowed: Iterable[str]) -> set[str]:
    options = set(split_list(value))
    unknown = options - set(allowed)
    if unknown:
        raise BadRequestData(f"unknown options: {', '.join(sorted(unknown))}")
    return options
