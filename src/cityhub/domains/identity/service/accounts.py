"""Accounts, logins with lockout, JWT access/refresh tokens, and role grants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import jwt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity.models import Account, OrgUnit, Person, RefreshToken, RoleAssignment
from cityhub.domains.identity.service.access import GRANT_COLUMNS, Principal, grants_from_rows, require
from cityhub.domains.identity.settings import IdentitySettings
from cityhub.kernel import audit
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.domain import access_catalog
from cityhub.kernel.errors import Conflict, NotFound, Problem, Unauthorized, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.security import (
    DUMMY_PASSWORD_HASH,
    decode_jwt,
    hash_password,
    issue_jwt,
    password_needs_rehash,
    verify_password,
)

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")
MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationProblem(
            _("The password needs at least %(count)s characters.", count=MIN_PASSWORD_LENGTH),
            field="password",
        )


def create_account(
    session: Session, person: Person, username: str, password: str, *, password_hash: str | None = None
) -> Account:
    """A login for a person. ``password_hash`` lets bulk seeding reuse one argon2 hash."""
    if not USERNAME_PATTERN.match(username):
        raise ValidationProblem(_("Usernames are 3-64 letters, digits or _.@-"), field="username")
    if password_hash is None:
        validate_password(password)
        password_hash = hash_password(password)
    if session.scalar(select(Account.id).where(Account.username == username)) is not None:
        raise Conflict(_("The username %(username)s is taken.", username=username), field="username")
    account = Account(person_id=person.id, username=username, password_hash=password_hash)
    session.add(account)
    session.flush()
    return account


def get_account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(_("Account %(id)s does not exist.", id=account_id))
    return account


def authenticate(database: Database, settings: IdentitySettings, username: str, password: str) -> Account:
    """Check a password in its own transaction, so a failed attempt is counted although we refuse it.

    Raises 401 for a wrong username or password (one answer for both) and 423 while the account is locked.
    """
    with database.unit_of_work() as session:
        account = session.scalar(select(Account).where(Account.username == username).with_for_update())
        outcome = _check_login(session, settings, account, password)
    if isinstance(outcome, Problem):
        raise outcome
    return outcome


def _check_login(
    session: Session, settings: IdentitySettings, account: Account | None, password: str
) -> Account | Problem:
    if account is None:
        verify_password(DUMMY_PASSWORD_HASH, password)  # same cost as a real check: no username probing
        return Unauthorized(_("Wrong username or password."), slug="bad-credentials")
    now = utcnow()
    if account.locked_until and account.locked_until > now:
        return _locked(account)
    if not verify_password(account.password_hash, password):
        account.failed_logins += 1
        if account.failed_logins < settings.max_failed_logins:
            return Unauthorized(_("Wrong username or password."), slug="bad-credentials")
        account.failed_logins = 0
        account.locked_until = now + timedelta(minutes=settings.lockout_minutes)
        audit.record(
            session,
            actor="system",
            action="identity.account.locked",
            object_type="account",
            object_id=str(account.id),
            details={"minutes": settings.lockout_minutes},
        )
        return _locked(account)
    if not account.is_active:
        return Unauthorized(_("This account is disabled."), slug="account-disabled")
    account.failed_logins = 0
    account.locked_until = None
    account.last_login_at = now
    if password_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    return account


def _locked(account: Account) -> Problem:
    assert account.locked_until is not None
    retry_after = max(1, int((account.locked_until - utcnow()).total_seconds()))
    return Problem(
        _(
            "Too many failed logins; the account is locked for %(minutes)s more minutes.",
            minutes=(retry_after + 59) // 60,
        ),
        status=423,
        slug="account-locked",
        headers={"Retry-After": str(retry_after)},
        locked_until=account.locked_until.isoformat(),
    )


def issue_tokens(session: Session, secret: str, settings: IdentitySettings, account: Account) -> TokenPair:
    access_lifetime = timedelta(minutes=settings.access_token_minutes)
    access = issue_jwt(secret, {"sub": str(account.id), "typ": "access"}, access_lifetime)
    refresh_lifetime = timedelta(days=settings.refresh_token_days)
    refresh = issue_jwt(secret, {"sub": str(account.id), "typ": "refresh"}, refresh_lifetime)
    jti = jwt.decode(refresh, options={"verify_signature": False})["jti"]
    session.add(RefreshToken(jti=jti, account_id=account.id, expires_at=utcnow() + refresh_lifetime))
    return TokenPair(access, refresh, int(access_lifetime.total_seconds()))


def refresh_tokens(
    session: Session, secret: str, settings: IdentitySettings, refresh_token: str
) -> TokenPair:
    """Rotate: the presented refresh token is revoked and a new pair issued; reuse of a revoked one fails."""
    claims = _decode(secret, refresh_token, "refresh")
    stored = session.get(RefreshToken, claims["jti"], with_for_update=True)
    if stored is None or stored.revoked_at is not None:
        raise Unauthorized(_("This refresh token is no longer valid; log in again."), slug="token-revoked")
    stored.revoked_at = utcnow()
    account = get_account(session, int(claims["sub"]))
    if not account.is_active:
        raise Unauthorized(_("This account is disabled."), slug="account-disabled")
    return issue_tokens(session, secret, settings, account)


def revoke_refresh_token(session: Session, secret: str, refresh_token: str) -> None:
    claims = _decode(secret, refresh_token, "refresh")
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.jti == claims["jti"], RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def _decode(secret: str, token: str, token_type: str) -> dict[str, str]:
    try:
        return decode_jwt(secret, token, token_type)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized(_("The token has expired."), slug="token-expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(_("The token is not valid."), slug="invalid-token") from exc


def principal_from_access_token(session: Session, secret: str, token: str) -> Principal:
    claims = _decode(secret, token, "access")
    return principal_for_account(session, int(claims["sub"]))


def principal_for_account(session: Session, account_id: int) -> Principal:
    """Account and grants in one query: read on every request so that revocations apply at once."""
    rows = session.execute(
        select(Account.username, Account.person_id, Account.is_active, *GRANT_COLUMNS)
        .outerjoin(RoleAssignment, RoleAssignment.account_id == Account.id)
        .outerjoin(OrgUnit, OrgUnit.id == RoleAssignment.org_unit_id)
        .where(Account.id == account_id)
        .order_by(RoleAssignment.id)
    ).all()
    if not rows or not rows[0].is_active:
        raise Unauthorized(_("This account is disabled."), slug="account-disabled")
    grants = grants_from_rows([row[3:] for row in rows if row.role is not None])
    return Principal("account", account_id, rows[0].username, rows[0].person_id, grants)


def change_password(session: Session, account: Account, current: str, new: str) -> None:
    if not verify_password(account.password_hash, current):
        raise Unauthorized(_("The current password is wrong."), slug="bad-credentials")
    validate_password(new)
    account.password_hash = hash_password(new)
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.account_id == account.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def grant_role(
    session: Session,
    granter: Principal | None,
    account: Account,
    role: str,
    org_unit: OrgUnit,
    organization_id: int | None = None,
) -> RoleAssignment:
    """Give a role over a subtree. A granter needs identity.roles.manage over that subtree (None = system)."""
    if role not in access_catalog.roles:
        raise ValidationProblem(_("Unknown role %(role)s.", role=role), field="role")
    if granter is not None:
        require(granter, "identity.roles.manage", org_unit.path)
    duplicate = session.scalar(
        select(RoleAssignment.id).where(
            RoleAssignment.account_id == account.id,
            RoleAssignment.role == role,
            RoleAssignment.org_unit_id == org_unit.id,
            RoleAssignment.organization_id.is_(None)
            if organization_id is None
            else RoleAssignment.organization_id == organization_id,
        )
    )
    if duplicate is not None:
        raise Conflict(_("The account already has this role here."), assignment_id=duplicate)
    assignment = RoleAssignment(
        account_id=account.id,
        role=role,
        org_unit_id=org_unit.id,
        organization_id=organization_id,
        granted_by=granter.id if granter and granter.kind == "account" else None,
    )
    session.add(assignment)
    session.flush()
    audit.record(
        session,
        actor=granter.actor if granter else "system",
        action="identity.role.granted",
        object_type="account",
        object_id=str(account.id),
        details={"role": role, "org_unit": org_unit.code, "organization_id": organization_id},
    )
    return assignment


def withdraw_role(session: Session, granter: Principal, assignment_id: int) -> None:
    assignment = session.get(RoleAssignment, assignment_id)
    if assignment is None:
        raise NotFound(_("Role assignment %(id)s does not exist.", id=assignment_id))
    unit = session.get(OrgUnit, assignment.org_unit_id)
    assert unit is not None
    require(granter, "identity.roles.manage", unit.path)
    session.delete(assignment)
    audit.record(
        session,
        actor=granter.actor,
        action="identity.role.withdrawn",
        object_type="account",
        object_id=str(assignment.account_id),
        details={"role": assignment.role, "org_unit": unit.code},
    )
