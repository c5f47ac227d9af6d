"""The context hub's own API (``/api/v1/context``): tenants. The NGSI-LD API lives in ``ngsi``."""

from __future__ import annotations

from fastapi import APIRouter

from cityhub.domains.context.errors import NonexistentTenant
from cityhub.domains.context.ingest import api as ingest_api
from cityhub.domains.context.schemas import TenantOut, TenantTie
from cityhub.domains.context.service import tenants
from cityhub.domains.context.service.tenants import check_tenant_name
from cityhub.domains.identity import CurrentPrincipal, get_unit, require
from cityhub.kernel.audit import record
from cityhub.kernel.web import DbSession

router = APIRouter()
router.include_router(ingest_api.router)

MANAGE_TENANTS = "context.tenants.manage"


@router.get("/tenants", response_model=list[TenantOut], summary="Tenants of the NGSI-LD API")
def list_tenants(session: DbSession, principal: CurrentPrincipal) -> list[TenantOut]:
    """The tenants the caller manages (a manager scoped to one district sees that district's tenants)."""
    require(principal, MANAGE_TENANTS)
    allowed = {ref.name for ref in tenants.tenants_allowed(session, principal, MANAGE_TENANTS)}
    return [TenantOut.model_validate(row) for row in tenants.list_tenants(session) if row.name in allowed]


@router.put("/tenants/{name}", response_model=TenantOut, summary="Create a tenant or tie it to an org unit")
def tie_tenant(name: str, tie: TenantTie, session: DbSession, principal: CurrentPrincipal) -> TenantOut:
    name = check_tenant_name(name)
    if tie.org_unit_id is not None:
        require(principal, MANAGE_TENANTS, get_unit(session, tie.org_unit_id).path)
    else:
        require(principal, MANAGE_TENANTS)
    current = _existing(session, name)
    if current is not None:  # re-tying hands its data over: the caller must manage it where it is now too
        tenants.authorize(principal, MANAGE_TENANTS, current)
    tenants.tie_tenant(session, name, tie.org_unit_id)
    record(
        session,
        actor=principal.actor,
        action="context.tenant.tie",
        object_type="context_tenant",
        object_id=name or "(default)",
        details={"org_unit_id": tie.org_unit_id},
    )
    tenant = next(item for item in tenants.list_tenants(session) if item.name == name)
    return TenantOut.model_validate(tenant)


def _existing(session: DbSession, name: str) -> tenants.TenantRef | None:
    try:
        current = tenants.find_tenant(session, name, create=False)
    except NonexistentTenant:
        return None
    return None if current is tenants.EMPTY_DEFAULT_TENANT else current
