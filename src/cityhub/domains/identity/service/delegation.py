"""What another domain's own approval may hand out: an organisation, roles within it and machine keys bound
to it (a merchant approved by the market's reviewer, a clerk added by the merchant's owner, a POS key).

The calling domain checks that its caller may do this (the reviewer's or the owner's permission); identity
then acts as the platform (``system:<domain>``) through the same functions an operator uses, so every grant
and key is checked, cached principals are evicted and the audit chain records it, with ``on_behalf_of``
naming the person who asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.identity.models import Account, ApiKey, Organization, OrgUnit, RoleAssignment
from cityhub.domains.identity.service import accounts, apikeys, orgs
from cityhub.domains.identity.service.access import Principal
from cityhub.kernel import audit
from cityhub.kernel.domain import access_catalog
from cityhub.kernel.errors import NotFound
from cityhub.kernel.i18n import gettext as _


@dataclass(frozen=True)
class StaffMember:
    assignment_id: int
    account_id: int
    username: str
    role: str


@dataclass(frozen=True)
class KeyInfo:
    id: int
    name: str
    prefix: str
    permissions: list[str]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


def _platform(session: Session, domain: str, role: str | None = None, *extra: str) -> Principal:
    held = set(extra)
    if role is not None:
        held |= access_catalog.permissions_of(role)
    return orgs.system_principal(session, domain, held)


def _note(
    session: Session, domain: str, on_behalf_of: str, action: str, object_id: int, **details: object
) -> None:
    audit.record(
        session,
        actor=on_behalf_of,
        action=f"identity.delegated.{action}",
        object_type="organization",
        object_id=str(object_id),
        details={"through": domain, **details},
    )


def open_organization(
    session: Session,
    domain: str,
    on_behalf_of: str,
    *,
    kind: str,
    code: str,
    name: str,
    unit_id: int,
    name_en: str | None = None,
) -> int:
    """A new organisation at home in ``unit_id``; its id."""
    unit = orgs.get_unit(session, unit_id)
    platform = _platform(session, domain, None, "identity.orgs.manage")
    organization = orgs.create_organization(session, platform, kind, code, name, unit, name_en)
    _note(session, domain, on_behalf_of, "organization_opened", organization.id, code=code)
    return organization.id


def _home(session: Session, organization_id: int) -> tuple[Organization, OrgUnit]:
    organization = orgs.get_organization(session, organization_id)
    return organization, orgs.get_unit(session, organization.org_unit_id)


def give_organization_role(
    session: Session, domain: str, on_behalf_of: str, *, account_id: int, role: str, organization_id: int
) -> int:
    """``role`` for the account over the organisation's home unit, on its behalf; the assignment id."""
    organization, unit = _home(session, organization_id)
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(_("Account %(id)s does not exist.", id=account_id))
    platform = _platform(session, domain, role, "identity.roles.manage")
    assignment = accounts.grant_role(session, platform, account, role, unit, organization.id)
    _note(session, domain, on_behalf_of, "role_given", organization.id, account_id=account_id, role=role)
    return assignment.id


def take_organization_role(
    session: Session, domain: str, on_behalf_of: str, *, assignment_id: int, organization_id: int
) -> None:
    """Withdraw one role assignment held on behalf of the organisation (404 for any other)."""
    assignment = session.get(RoleAssignment, assignment_id)
    if assignment is None or assignment.organization_id != organization_id:
        raise NotFound(_("Role assignment %(id)s does not exist.", id=assignment_id))
    platform = _platform(session, domain, None, "identity.roles.manage")
    accounts.withdraw_role(session, platform, assignment_id)
    _note(session, domain, on_behalf_of, "role_taken", organization_id, assignment_id=assignment_id)


def organization_staff(session: Session, organization_id: int, roles: tuple[str, ...]) -> list[StaffMember]:
    rows = session.execute(
        select(RoleAssignment.id, Account.id, Account.username, RoleAssignment.role)
        .join(Account, Account.id == RoleAssignment.account_id)
        .where(RoleAssignment.organization_id == organization_id, RoleAssignment.role.in_(roles))
        .order_by(RoleAssignment.id)
    )
    return [StaffMember(*row) for row in rows]


def issue_organization_key(
    session: Session,
    domain: str,
    on_behalf_of: str,
    *,
    organization_id: int,
    name: str,
    permissions: list[str],
    expires_at: datetime | None = None,
) -> tuple[int, str]:
    """A machine key bound to the organisation holding ``permissions`` over its home unit: (id, secret shown
    once)."""
    organization, unit = _home(session, organization_id)
    platform = _platform(session, domain, None, "identity.apikeys.manage", *permissions)
    key, secret = apikeys.create_key(
        session,
        platform,
        name=name,
        permissions=permissions,
        org_unit=unit,
        organization_id=organization.id,
        expires_at=expires_at,
    )
    _note(session, domain, on_behalf_of, "key_issued", organization.id, key_id=key.id)
    return key.id, secret


def revoke_organization_key(
    session: Session, domain: str, on_behalf_of: str, *, organization_id: int, key_id: int
) -> None:
    key = session.get(ApiKey, key_id)
    if key is None or key.organization_id != organization_id:
        raise NotFound(_("API key %(id)s does not exist.", id=key_id))
    apikeys.revoke_key(session, _platform(session, domain, None, "identity.apikeys.manage"), key_id)
    _note(session, domain, on_behalf_of, "key_revoked", organization_id, key_id=key_id)


def organization_keys(session: Session, organization_id: int) -> list[KeyInfo]:
    keys = session.scalars(
        select(ApiKey).where(ApiKey.organization_id == organization_id).order_by(ApiKey.id)
    )
    return [
        KeyInfo(k.id, k.name, k.prefix, list(k.permissions), k.created_at, k.revoked_at, k.last_used_at)
        for k in keys
    ]
