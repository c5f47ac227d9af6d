"""Machine API keys: hashed, scoped to permissions and an org subtree, expirable and revocable."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity.models import ApiKey, OrgUnit
from cityhub.domains.identity.service.access import (
    NON_DELEGABLE_TO_KEYS,
    Grant,
    Principal,
    known_permission,
    require,
    require_all,
)
from cityhub.domains.identity.service.orgs import organization_unit_path, unit_ids_in_scope
from cityhub.domains.identity.service.principals import forget_after_commit
from cityhub.kernel import audit
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.errors import NotFound, Unauthorized, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.security import constant_time_equal, hash_api_key, new_api_key, split_api_key

LAST_USED_RESOLUTION = timedelta(minutes=5)
log = logging.getLogger("cityhub.identity")
_touch_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="apikey-touch")


def create_key(
    session: Session,
    creator: Principal,
    *,
    name: str,
    permissions: list[str],
    org_unit: OrgUnit,
    organization_id: int | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its secret, shown once.

    A creator hands on only permissions it holds over the key's scope, never the power to mint credentials
    or grant roles, and may bind the key only to an organisation it governs.
    """
    require(creator, "identity.apikeys.manage", org_unit.path)
    if not permissions:
        raise ValidationProblem(_("Give the key at least one permission."), field="permissions")
    for permission in permissions:
        if not known_permission(permission):
            raise ValidationProblem(
                _("Unknown permission %(permission)s.", permission=permission), field="permissions"
            )
        if permission in NON_DELEGABLE_TO_KEYS:
            raise ValidationProblem(
                _("API keys cannot carry %(permission)s; only people may hold it.", permission=permission),
                field="permissions",
            )
    require_all(creator, permissions, org_unit.path)
    if organization_id is not None:
        require(creator, "identity.apikeys.manage", organization_unit_path(session, organization_id))
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationProblem(_("The expiry must be in the future."), field="expires_at")
    full_key, prefix, key_hash = new_api_key()
    key = ApiKey(
        prefix=prefix,
        key_hash=key_hash,
        name=name,
        permissions=sorted(set(permissions)),
        org_unit_id=org_unit.id,
        organization_id=organization_id,
        created_by=creator.account_id,
        expires_at=expires_at,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor=creator.actor,
        action="identity.apikey.created",
        object_type="apikey",
        object_id=str(key.id),
        details={"name": name, "permissions": key.permissions, "org_unit": org_unit.code},
    )
    return key, full_key


def keys_in_scope(scopes: list[str]) -> Select[ApiKey]:
    """Keys scoped inside the given subtrees, newest first."""
    return select(ApiKey).where(ApiKey.org_unit_id.in_(unit_ids_in_scope(scopes))).order_by(ApiKey.id.desc())


def revoke_key(session: Session, revoker: Principal, key_id: int) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(_("API key %(id)s does not exist.", id=key_id))
    unit = session.get(OrgUnit, key.org_unit_id)
    assert unit is not None
    require(revoker, "identity.apikeys.manage", unit.path)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        forget_after_commit(session, "apikey", key.id)
        audit.record(
            session,
            actor=revoker.actor,
            action="identity.apikey.revoked",
            object_type="apikey",
            object_id=str(key.id),
        )
    return key


def principal_from_api_key(session: Session, full_key: str, database: Database | None = None) -> Principal:
    """Check a presented key; the answer never says which part was wrong."""
    prefix = split_api_key(full_key)
    refused = Unauthorized(_("The API key is not valid."), slug="invalid-api-key")
    if prefix is None:
        raise refused
    row = session.execute(
        select(ApiKey, OrgUnit.path)
        .join(OrgUnit, OrgUnit.id == ApiKey.org_unit_id)
        .where(ApiKey.prefix == prefix)
    ).first()
    if row is None or not constant_time_equal(row[0].key_hash, hash_api_key(full_key)):
        raise refused
    key, path = row
    now = utcnow()
    if key.revoked_at is not None:
        raise Unauthorized(_("The API key has been revoked."), slug="api-key-revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthorized(_("The API key has expired."), slug="api-key-expired")
    if database is not None and (key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION):
        _touch_later(database, key.id, now)
    grant = Grant("apikey", key.org_unit_id, path, key.organization_id, frozenset(key.permissions))
    return Principal("apikey", key.id, key.name, None, (grant,))


def _touch_later(database: Database, key_id: int, now: datetime) -> None:
    """Record use at most every few minutes, in the background.

    The request may hold SQLite's write lock already; waiting here for a second write transaction would
    deadlock it, so the stamp is written by another thread once the request is done.
    """
    _touch_executor.submit(_touch, database, key_id, now)


def _touch(database: Database, key_id: int, now: datetime) -> None:
    try:
        with database.unit_of_work() as session:
            session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
    except Exception:  # a lost "last used" stamp must never fail anything
        log.warning("could not record the use of API key %s", key_id, exc_info=True)
