"""Who may act for which department: its staff for their own organisations, the operator for all."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.exchange.models import Resource
from cityhub.domains.identity import (
    Notice,
    Principal,
    accounts_holding,
    can_citywide,
    get_organization,
    get_organization_by_code,
    notify,
)
from cityhub.kernel.errors import Forbidden, NotFound
from cityhub.kernel.i18n import gettext as _

MANAGE = "exchange.resources.manage"
REQUEST = "exchange.data.request"
READ = "exchange.data.read"
ADMINISTER = "exchange.catalogue.administer"


def acts_for(principal: Principal, permission: str, organization_id: int) -> bool:
    """Staff act for the organisations their role names; the operator, administering, for every one."""
    return organization_id in principal.organizations(permission) or can_citywide(principal, ADMINISTER)


def department(session: Session, principal: Principal, permission: str, code: str) -> int:
    """The id of the department ``code`` when the caller may act for it with ``permission``."""
    organization = get_organization_by_code(session, code)
    if not acts_for(principal, permission, organization.id):
        raise Forbidden(_("You do not act for %(department)s.", department=organization.name))
    return organization.id


def owned_resource(session: Session, principal: Principal, code: str) -> Resource:
    """A resource its provider's staff (or the operator) manage; 404 for anyone else who cannot see it."""
    resource = resource_by_code(session, code)
    if not acts_for(principal, MANAGE, resource.provider_org_id):
        raise Forbidden(
            _("Only %(department)s manages this resource.", department=provider_name(session, resource))
        )
    return resource


def resource_by_code(session: Session, code: str) -> Resource:
    resource = session.scalar(select(Resource).where(Resource.code == code))
    if resource is None:
        raise NotFound(_("Resource %(code)s does not exist.", code=code))
    return resource


def provider_name(session: Session, resource: Resource) -> str:
    return get_organization(session, resource.provider_org_id).name


def staff_of(session: Session, organization_id: int | None) -> list[int]:
    """Whom to tell about a department's case: its staff who manage its resources; for a case addressed to
    no department, the city-wide operators."""
    if organization_id is None:
        return accounts_holding(session, ADMINISTER)
    return accounts_holding(session, MANAGE, organization_id)


def tell(session: Session, accounts: Iterable[int], notice: Notice) -> None:
    """The same notice to each of ``accounts`` (each in their own language), in the caller's transaction."""
    for account_id in accounts:
        notify(session, account_id, notice)
