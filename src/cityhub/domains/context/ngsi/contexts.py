"""``/ngsi-ld/v1/jsonldContexts`` (clause 5.13): add, list, serve and delete stored @contexts.

Serving one context (``GET /jsonldContexts/{id}`` without ``details``) is public: JSON-LD processors
dereference the URL of a context without credentials, exactly as they fetch the core context. Listing and
details need ``context.entities.read``; adding and deleting need ``context.contexts.manage``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from cityhub.domains.context.jsonld.negotiation import JSON_LD
from cityhub.domains.context.ngsi.common import (
    MANAGE_CONTEXTS,
    READ,
    Call,
    NgsiRoute,
    body_of,
    read_call,
    tenant_name,
    write_call,
)
from cityhub.domains.context.service import contexts as store
from cityhub.domains.context.service.tenants import authorize, find_tenant
from cityhub.domains.identity import Principal, optional_principal
from cityhub.kernel.errors import Unauthorized
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.web import DbSession

router = APIRouter(route_class=NgsiRoute)


@router.post("/jsonldContexts", status_code=201)
def add(session: DbSession, call: Call = write_call(MANAGE_CONTEXTS)) -> Response:
    base = str(call.request.base_url)
    row = store.add_context(session, call.resolver, body_of(call), base)
    return Response(status_code=201, headers={"Location": store.CONTEXTS_PATH + row.id})


@router.get("/jsonldContexts")
def list_contexts(
    session: DbSession, call: Call = read_call(), details: bool = False, kind: str | None = None
) -> Response:
    rows = store.list_contexts(session, kind)
    content: list[Any] = [store.info_of(row).as_json() if details else row.url for row in rows]
    return JSONResponse(content)


@router.get("/jsonldContexts/{context_id:path}")
def serve(
    context_id: str,
    request: Request,
    session: DbSession,
    principal: Annotated[Principal | None, Depends(optional_principal)],
    details: bool = False,
) -> Response:
    """The document itself, public (see the module docstring); ``details=true`` needs the read permission."""
    row = store.get_context(session, context_id)
    if not details:
        return JSONResponse(row.document, media_type=JSON_LD)
    if principal is None:
        raise Unauthorized(_("Sign in or send an API key to read @context details."))
    authorize(principal, READ, find_tenant(session, tenant_name(request), create=False))
    return JSONResponse(store.info_of(row).as_json())


@router.delete("/jsonldContexts/{context_id:path}", status_code=204)
def delete(
    context_id: str,
    session: DbSession,
    call: Call = write_call(MANAGE_CONTEXTS, with_body=False),
    reload: bool = False,
) -> Response:
    store.delete_context(session, call.resolver, context_id, reload=reload)
    return Response(status_code=204)
