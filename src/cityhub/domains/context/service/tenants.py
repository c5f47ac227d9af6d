"""NGSI-LD tenants: created on first write, unknown on read (``NonexistentTenant``), optionally tied to an org
unit whose subtree scopes who may use them."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityhub.domains.context.errors import BadRequestData, NonexistentTenant
from cityhub.domains.context.models import Tenant
from cityhub.domains.identity import Principal, can_citywide, get_unit, require
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.errors import Forbidden
from cityhub.kernel.i18n import gettext as _

DEFAULT_TENANT = ""
MAX_TENANT_NAME = 128


@dataclass(frozen=True)
class TenantRef:
    id: int
    name: str
    org_path: str | None  # the tied org unit's subtree path; None for an untied tenant


# The default tenant before anything was written: reads find nothing rather than creating it.
EMPTY_DEFAULT_TENANT = TenantRef(0, DEFAULT_TENANT, None)

# Tenant rows never change identity once created, so name -> ref is cached per connection pool: every session
# of one Database shares it, and a test's fresh database (a fresh engine and pool) gets a fresh cache.
_cache: weakref.WeakKeyDictionary[Any, dict[str, TenantRef]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def _refs(session: Session) -> dict[str, TenantRef]:
    return _refs_of_pool(session.get_bind().engine.pool)


def _refs_of_pool(pool: Any) -> dict[str, TenantRef]:
    refs = _cache.get(pool)
    if refs is None:
        with _cache_lock:
            refs = _cache.setdefault(pool, {})
    return refs


def check_tenant_name(name: str | None) -> str:
    if name is None or name == "":
        return DEFAULT_TENANT
    if len(name) > MAX_TENANT_NAME or not all(ch.isalnum() or ch in "-_." for ch in name):
        raise BadRequestData(f"invalid NGSILD-Tenant {name!r}: use letters, digits, '-', '_' or '.'")
    return name


def cached_tenant(database: Database, name: str) -> TenantRef | None:
    """The tenant if this process already knows it; never touches the database."""
    return _refs_of_pool(database.engine.pool).get(name)


def find_tenant(session: Session, name: str, *, create: bool) -> TenantRef:
    """The tenant named ``name``; created when ``create`` (a write), else NonexistentTenant."""
    refs = _refs(session)
    ref = refs.get(name)
    if ref is not None:
        return ref
    ref = _load(session, name)
    if ref is None:
        if not create:
            if name == DEFAULT_TENANT:
                return EMPTY_DEFAULT_TENANT
            raise NonexistentTenant(f"tenant {name!r} does not exist")
        return _create(session, name)  # cached once committed and loaded again: a rollback may undo it
    refs[name] = ref
    return ref


def _load(session: Session, name: str) -> TenantRef | None:
    row = session.execute(select(Tenant.id, Tenant.org_unit_id).where(Tenant.name == name)).first()
    if row is None:
        return None
    return TenantRef(row.id, name, _unit_path(session, row.org_unit_id))


def _unit_path(session: Session, org_unit_id: int | None) -> str | None:
    if org_unit_id is None:
        return None
    return get_unit(session, org_unit_id).path


def _create(session: Session, name: str, org_unit_id: int | None = None) -> TenantRef:
    try:
        with session.begin_nested():
            tenant = Tenant(name=name, org_unit_id=org_unit_id, created_at=utcnow())
            session.add(tenant)
            session.flush()
    except IntegrityError:  # another request created it first
        existing = _load(session, name)
        assert existing is not None
        return existing
    return TenantRef(tenant.id, name, _unit_path(session, org_unit_id))


def tie_tenant(session: Session, name: str, org_unit_id: int | None) -> TenantRef:
    """Create or re-tie a tenant to an org unit (None unties it); the operator's command."""
    name = check_tenant_name(name)
    tenant = session.scalars(select(Tenant).where(Tenant.name == name)).first()
    if tenant is None:
        ref = _create(session, name, org_unit_id)
    else:
        tenant.org_unit_id = org_unit_id
        session.flush()
        ref = TenantRef(tenant.id, name, _unit_path(session, org_unit_id))
    _cache.clear()  # every engine of this process: the tie changed
    return ref


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.scalars(select(Tenant).order_by(Tenant.name)))


def tenants_allowed(session: Session, principal: Principal, permission: str) -> list[TenantRef]:
    """The tenants in which the principal holds ``permission`` (the default tenant too), by name."""
    refs = [find_tenant(session, name, create=False) for name in session.scalars(select(Tenant.name))]
    if not any(ref.name == DEFAULT_TENANT for ref in refs):
        refs.append(find_tenant(session, DEFAULT_TENANT, create=False))
    return sorted((ref for ref in refs if may(principal, permission, ref)), key=lambda ref: ref.name)


def may(principal: Principal, permission: str, tenant: TenantRef) -> bool:
    """Whether ``authorize`` would let the principal through."""
    if tenant.org_path is not None:
        return principal.can(permission, tenant.org_path)
    return can_citywide(principal, permission)


def authorize(principal: Principal, permission: str, tenant: TenantRef) -> None:
    """A tied tenant needs the permission over its org unit; an untied one over a whole tree (a root unit)."""
    if tenant.org_path is not None:
        require(principal, permission, tenant.org_path)
        return
    if not may(principal, permission, tenant):
        raise Forbidden(
            _("You do not have the permission %(permission)s here.", permission=permission),
            permission=permission,
        )
