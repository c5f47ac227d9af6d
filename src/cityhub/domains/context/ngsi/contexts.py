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
from cityhub.domains.context.service.tenants import EMPTY_DEFAULT_TENANT, authorize, find_tenant
from cityhub.domains.identity import Principal, optional_principal
from cityhub.kernel.audit import record
from cityhub.kernel.errors import Unauthorized
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.web import DbSession

router = APIRouter(route_class=NgsiRoute)


@router.post("/jsonldContexts", status_code=201)
def add(session: DbSession, call: Call = write_call(MANAGE_CONTEXTS, body_is_context=True)) -> Response:
    _require_whole_tree(call)
    base = str(call.request.base_url)
    row = store.add_context(session, call.resolver, body_of(call), base)
    _audit(session, call, "context.jsonld_context.add", row.id)
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
    _require_whole_tree(call)
    store.delete_context(session, call.resolver, context_id, reload=reload)
    _audit(
        session,
        call,
        "context.jsonld_context.reload" if reload else "context.jsonld_context.delete",
        context_id,
    )
    return Response(status_code=204)


def _require_whole_tree(call: Call) -> None:
    """Stored contexts serve every tenant, so managing them needs the permission over a whole tree."""
    authorize(call.principal, MANAGE_CONTEXTS, EMPTY_DEFAULT_TENANT)


def _audit(session: DbSession, call: Call, action: str, context_id: str) -> None:
    """Stored contexts serve every tenant: who added or removed one is kept (privileged, global change)."""
    record(
        session,
        actor=call.principal.actor,
        action=action,
        object_type="context_jsonld_context",
        object_id=context_id,
        details={"tenant": call.tenant.name},
    )
