"""Who is calling and what they may do: principals, scoped grants, and the one permission check."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cityhub.domains.identity.models import OrgUnit, RoleAssignment
from cityhub.kernel.domain import access_catalog
from cityhub.kernel.errors import Forbidden
from cityhub.kernel.i18n import gettext as _


@dataclass(frozen=True)
class Grant:
    """A set of permissions held over the org subtree whose path is ``org_path``."""

    role: str
    org_unit_id: int
    org_path: str
    organization_id: int | None
    permissions: frozenset[str]


@dataclass(frozen=True)
class Principal:
    kind: Literal["account", "apikey", "system"]
    id: int
    name: str
    person_id: int | None
    grants: tuple[Grant, ...]

    @property
    def actor(self) -> str:
        """How the audit chain names this caller ("system:cli" for the command line)."""
        return f"system:{self.name}" if self.kind == "system" else f"{self.kind}:{self.id}"

    @property
    def account_id(self) -> int | None:
        """The account behind the caller, for created_by/granted_by columns (None for keys and the system)."""
        return self.id if self.kind == "account" else None

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(grant.role for grant in self.grants)

    def has(self, permission: str) -> bool:
        return any(permission in grant.permissions for grant in self.grants)

    def can(self, permission: str, org_path: str | None = None) -> bool:
        """True when a grant holds the permission over ``org_path`` (or anywhere, when None)."""
        return any(
            permission in grant.permissions and (org_path is None or org_path.startswith(grant.org_path))
            for grant in self.grants
        )

    def scopes(self, permission: str) -> list[str]:
        """Subtree paths where the permission holds; lists filter by them (``path LIKE scope%``)."""
        paths = sorted({grant.org_path for grant in self.grants if permission in grant.permissions})
        return [
            path for path in paths if not any(path != other and path.startswith(other) for other in paths)
        ]

    def organizations(self, permission: str) -> set[int]:
        return {
            grant.organization_id
            for grant in self.grants
            if permission in grant.permissions and grant.organization_id is not None
        }


# Machines may not mint credentials or hand out power: these permissions can be held by people only.
NON_DELEGABLE_TO_KEYS = frozenset({"identity.roles.manage", "identity.apikeys.manage"})


def require_all(principal: Principal, permissions: Iterable[str], org_path: str) -> None:
    """Refuse unless the principal holds every one of the permissions over ``org_path``.

    Used when handing power on (roles, keys): nobody can give what they do not hold themselves.
    """
    missing = sorted(code for code in permissions if not principal.can(code, org_path))
    if missing:
        raise Forbidden(
            _("You cannot hand on permissions you do not hold here: %(missing)s", missing=", ".join(missing)),
            permission=missing[0],
            missing=missing,
        )


def require(principal: Principal, permission: str, org_path: str | None = None) -> None:
    """The single permission check: raise 403 unless the principal may do this here."""
    if not principal.can(permission, org_path):
        raise Forbidden(
            _("You do not have the permission %(permission)s here.", permission=permission),
            permission=permission,
        )


def can_citywide(principal: Principal, permission: str) -> bool:
    """Whether the principal holds ``permission`` over a whole tree (a root org unit): for what serves the
    whole city, such as the service catalogue or shared NGSI-LD contexts."""
    return any(path.count("/") == 2 for path in principal.scopes(permission))


def require_citywide(principal: Principal, permission: str) -> None:
    if not can_citywide(principal, permission):
        raise Forbidden(
            _("You need the permission %(permission)s over the whole city.", permission=permission),
            permission=permission,
        )


GRANT_COLUMNS = (
    RoleAssignment.role,
    RoleAssignment.org_unit_id,
    OrgUnit.path,
    RoleAssignment.organization_id,
)


def grants_from_rows(rows: Iterable[Sequence[Any]]) -> tuple[Grant, ...]:
    """Grants from (role, org_unit_id, path, organization_id) rows selected with GRANT_COLUMNS."""
    return tuple(
        Grant(role, unit_id, path, organization_id, access_catalog.permissions_of(role))
        for role, unit_id, path, organization_id in rows
    )


def known_permission(code: str) -> bool:
    return code in access_catalog.permissions
