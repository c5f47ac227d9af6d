"""API keys bound to a grant: the consumer department's staff issue one for a consumer system, which then
reads that grant and no other. Identity keeps the key (hashed, shown once, revocable); this module binds it
(``exchange_grant_key``), lets it expire with the grant and revokes it with the grant.

A key bound to no grant — a department key the operator issued with ``exchange.data.read`` — reads every
grant of its department; a key bound to grants reads only those."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import Grant, GrantKey, Resource
from cityhub.domains.exchange.service.access import READ, REQUEST, acts_for
from cityhub.domains.identity import (
    Principal,
    issue_organization_key,
    organization_keys,
    revoke_organization_key,
)
from cityhub.kernel.errors import Conflict, Forbidden, NotFound
from cityhub.kernel.i18n import gettext as _

DOMAIN = "exchange"


def _held_grant(session: Session, principal: Principal, grant_id: int) -> Grant:
    """A grant the caller's department holds (the consumer's staff), else 404."""
    grant = session.get(Grant, grant_id)
    if grant is None or not acts_for(principal, REQUEST, grant.consumer_org_id):
        raise NotFound(_("Grant %(id)s does not exist.", id=grant_id))
    return grant


def issue(session: Session, principal: Principal, grant_id: int, now: datetime) -> schemas.GrantKeyIssued:
    """A new key for the grant, valid until the grant ends; its secret is in this answer only."""
    grant = _held_grant(session, principal, grant_id)
    if grant.revoked_at is not None or grant.valid_until <= now:
        raise Conflict(_("This grant is not in force; no key can be issued for it."), slug="grant-ended")
    resource = session.get_one(Resource, grant.resource_id)
    key_id, secret = issue_organization_key(
        session,
        DOMAIN,
        principal.actor,
        organization_id=grant.consumer_org_id,
        name=f"grant {grant.id}: {resource.code}"[:200],
        permissions=[READ],
        expires_at=grant.valid_until,
    )
    session.add(GrantKey(api_key_id=key_id, grant_id=grant.id, created_by=principal.actor, created_at=now))
    session.flush()
    shown = next(key for key in _keys(session, grant) if key.id == key_id)
    return schemas.GrantKeyIssued(**shown.model_dump(), key=secret)


def listed(session: Session, principal: Principal, grant_id: int) -> list[schemas.GrantKeyOut]:
    return _keys(session, _held_grant(session, principal, grant_id))


def revoke(session: Session, principal: Principal, grant_id: int, key_id: int) -> schemas.GrantKeyOut:
    grant = _held_grant(session, principal, grant_id)
    if key_id not in _bound(session, grant.id):
        raise NotFound(_("API key %(id)s does not exist.", id=key_id))
    revoke_organization_key(
        session, DOMAIN, principal.actor, organization_id=grant.consumer_org_id, key_id=key_id
    )
    return next(key for key in _keys(session, grant) if key.id == key_id)


def revoke_all(session: Session, actor: str, grant: Grant) -> None:
    """The grant ended: its keys end with it."""
    live = {key.id for key in organization_keys(session, grant.consumer_org_id) if key.revoked_at is None}
    for key_id in _bound(session, grant.id) & live:
        revoke_organization_key(session, DOMAIN, actor, organization_id=grant.consumer_org_id, key_id=key_id)


def check_binding(session: Session, principal: Principal, grant: Grant) -> None:
    """A key bound to grants reads only those (403 ``key-not-for-grant``); other callers are not concerned."""
    if principal.kind != "apikey":
        return
    bound_to = set(session.scalars(select(GrantKey.grant_id).where(GrantKey.api_key_id == principal.id)))
    if bound_to and grant.id not in bound_to:
        raise Forbidden(_("This API key was issued for another grant."), slug="key-not-for-grant")


def _bound(session: Session, grant_id: int) -> set[int]:
    return set(session.scalars(select(GrantKey.api_key_id).where(GrantKey.grant_id == grant_id)))


def _keys(session: Session, grant: Grant) -> list[schemas.GrantKeyOut]:
    bound = _bound(session, grant.id)
    return [
        schemas.GrantKeyOut(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            last_used_at=key.last_used_at,
            expires_at=grant.valid_until,
        )
        for key in organization_keys(session, grant.consumer_org_id)
        if key.id in bound
    ]
