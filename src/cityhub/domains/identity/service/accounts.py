"""Accounts, logins with lockout, JWT access/refresh tokens, and role grants."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity.models import Account, OrgUnit, Person, RefreshToken, RoleAssignment
from cityhub.domains.identity.service import page_sessions
from cityhub.domains.identity.service.access import (
    GRANT_COLUMNS,
    Principal,
    grants_from_rows,
    require,
    require_all,
)
from cityhub.domains.identity.service.orgs import organization_unit_path, unit_ids_in_scope
from cityhub.domains.identity.service.principals import forget_after_commit
from cityhub.domains.identity.settings import IdentitySettings
from cityhub.kernel import audit
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.domain import access_catalog
from cityhub.kernel.errors import Conflict, Forbidden, NotFound, Problem, Unauthorized, ValidationProblem
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
    """Check a password, then record the outcome in its own short transaction.

    The slow argon2 check runs outside any transaction, so on SQLite a burst of logins never holds the
    database's write lock. The outcome is recorded even though a refusal is raised. Every refusal (unknown
    user, wrong password, locked or disabled account) is the same 401, so answers reveal neither which
    usernames exist nor that a lock was hit.
    """
    with database.reading() as session:
        row = session.execute(
            select(Account.id, Account.password_hash).where(Account.username == username)
        ).first()
    if row is None:
        verify_password(DUMMY_PASSWORD_HASH, password)  # same cost as a real check: no username probing
        raise _bad_credentials()
    password_ok = verify_password(row.password_hash, password)
    new_hash = hash_password(password) if password_ok and password_needs_rehash(row.password_hash) else None
    with database.unit_of_work() as session:
        account = session.get(Account, row.id, with_for_update=True)
        if account is not None and account.password_hash != row.password_hash:
            password_ok = False  # the password changed while we were checking the old one
        accepted = _record_login(session, settings, account, password_ok, new_hash) if account else None
    if accepted is None:
        raise _bad_credentials()
    return accepted


def _bad_credentials() -> Unauthorized:
    return Unauthorized(
        _("Wrong username or password, or too many failed attempts: check and try again later."),
        slug="bad-credentials",
    )


def _record_login(
    session: Session, settings: IdentitySettings, account: Account, password_ok: bool, new_hash: str | None
) -> Account | None:
    now = utcnow()
    if account.locked_until and account.locked_until > now:
        return None
    if not password_ok:
        _count_failure(session, settings, account, now)
        return None
    if not account.is_active:
        return None
    account.failed_logins = 0
    account.locked_until = None
    account.last_login_at = now
    if new_hash is not None:
        account.password_hash = new_hash
    return account


def _count_failure(session: Session, settings: IdentitySettings, account: Account, now: datetime) -> None:
    account.failed_logins += 1
    if account.failed_logins < settings.max_failed_logins:
        return
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


def issue_tokens(
    session: Session, secret: str, settings: IdentitySettings, account: Account, family: str | None = None
) -> TokenPair:
    """An access token and a refresh token; refresh tokens of one login share a family (see refresh)."""
    access_lifetime = timedelta(minutes=settings.access_token_minutes)
    access = issue_jwt(secret, {"sub": str(account.id), "typ": "access"}, access_lifetime)
    refresh_lifetime = timedelta(days=settings.refresh_token_days)
    refresh = issue_jwt(secret, {"sub": str(account.id), "typ": "refresh"}, refresh_lifetime)
    jti = jwt.decode(refresh, options={"verify_signature": False})["jti"]
    session.add(
        RefreshToken(
            jti=jti, family=family or jti, account_id=account.id, expires_at=utcnow() + refresh_lifetime
        )
    )
    return TokenPair(access, refresh, int(access_lifetime.total_seconds()))


def refresh_tokens(
    database: Database, secret: str, settings: IdentitySettings, refresh_token: str
) -> TokenPair:
    """Rotate: the presented refresh token is revoked and a new pair of the same family issued.

    Presenting an already-rotated token means it was copied: the whole family is revoked (both the thief's
    and the owner's sessions end) and the event is audited. Runs in its own transaction so that this
    revocation is kept although the request is refused.
    """
    claims = _decode(secret, refresh_token, "refresh")
    with database.unit_of_work() as session:
        stored = session.get(RefreshToken, claims["jti"], with_for_update=True)
        if stored is None:
            outcome: TokenPair | Problem = _token_revoked()
        elif stored.revoked_at is not None:
            _revoke_family(session, stored)
            outcome = _token_revoked()
        else:
            stored.revoked_at = utcnow()
            account = get_account(session, int(claims["sub"]))
            outcome = (
                issue_tokens(session, secret, settings, account, stored.family)
                if account.is_active
                else Unauthorized(_("This account is disabled."), slug="account-disabled")
            )
    if isinstance(outcome, Problem):
        raise outcome
    return outcome


def _token_revoked() -> Unauthorized:
    return Unauthorized(_("This refresh token is no longer valid; log in again."), slug="token-revoked")


def _revoke_family(session: Session, reused: RefreshToken) -> None:
    still_valid = list(
        session.scalars(
            select(RefreshToken).where(
                RefreshToken.family == reused.family, RefreshToken.revoked_at.is_(None)
            )
        )
    )
    for token in still_valid:
        token.revoked_at = utcnow()
    revoked = len(still_valid)
    audit.record(
        session,
        actor="system",
        action="identity.refresh_token.reused",
        object_type="account",
        object_id=str(reused.account_id),
        details={"family": reused.family, "revoked": revoked},
    )


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


def account_id_from_access_token(secret: str, token: str) -> int:
    """The account an access token speaks for; 401 when it is not a valid, unexpired access token."""
    claims = _decode(secret, token, "access")
    try:
        return int(claims["sub"])
    except ValueError as exc:
        raise Unauthorized(_("The token is not valid."), slug="invalid-token") from exc


def accounts_holding(session: Session, permission: str, organization_id: int | None = None) -> list[int]:
    """Active accounts whose roles carry ``permission`` — on behalf of ``organization_id`` when given (its
    staff), else city-wide ones without an organisation (the operator's): whom to tell about a case."""
    roles = [role for role in access_catalog.roles if permission in access_catalog.permissions_of(role)]
    if not roles:
        return []
    statement = (
        select(RoleAssignment.account_id)
        .join(Account, Account.id == RoleAssignment.account_id)
        .where(RoleAssignment.role.in_(roles), Account.is_active.is_(True))
    )
    if organization_id is not None:
        statement = statement.where(RoleAssignment.organization_id == organization_id)
    else:
        root = select(OrgUnit.id).where(OrgUnit.parent_id.is_(None))
        statement = statement.where(RoleAssignment.org_unit_id.in_(root))
    return sorted(set(session.scalars(statement)))


def account_id_of(session: Session, username: str) -> int:
    """The id of the active account ``username`` (404 otherwise): for rosters and assignments by name."""
    active = select(Account.id).where(Account.username == username, Account.is_active.is_(True))
    found = session.scalar(active)
    if found is None:
        raise NotFound(_("No active account %(username)s.", username=username))
    return found


def usernames_of(session: Session, account_ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(account_ids))
    if not wanted:
        return {}
    rows = session.execute(select(Account.id, Account.username).where(Account.id.in_(wanted)))
    return dict(rows.all())


def remember_locale(session: Session, principal: Principal, locale: str) -> None:
    """The language an account chose, so that what is sent to it later (notifications) speaks it too."""
    if principal.account_id is not None:
        session.execute(update(Account).where(Account.id == principal.account_id).values(locale=locale))


def set_active(session: Session, actor: Principal | None, account: Account, active: bool) -> None:
    """Enable or disable a login; a disabled account's tokens stop working at once in this process."""
    account.is_active = active
    if not active:
        page_sessions.end_all(session, account.id)
    forget_after_commit(session, "account", account.id)
    audit.record(
        session,
        actor=actor.actor if actor else "system",
        action="identity.account.enabled" if active else "identity.account.disabled",
        object_type="account",
        object_id=str(account.id),
    )


def principal_for_account(session: Session, account_id: int) -> Principal:
    """Account and grants in one query: read on every request so that revocations apply at once."""
    # Core, not ORM, execution: this runs on every authenticated request and needs no identity map.
    rows = (
        session.connection()
        .execute(
            select(Account.username, Account.person_id, Account.is_active, *GRANT_COLUMNS)
            .outerjoin(RoleAssignment, RoleAssignment.account_id == Account.id)
            .outerjoin(OrgUnit, OrgUnit.id == RoleAssignment.org_unit_id)
            .where(Account.id == account_id)
            .order_by(RoleAssignment.id)
        )
        .all()
    )
    if not rows or not rows[0].is_active:
        raise Unauthorized(_("This account is disabled."), slug="account-disabled")
    grants = grants_from_rows([row[3:] for row in rows if row.role is not None])
    return Principal("account", account_id, rows[0].username, rows[0].person_id, grants)


def change_password(session: Session, account: Account, current: str, new: str, actor: str) -> None:
    """Replace the password after checking the current one; every other session and refresh token ends."""
    if not verify_password(account.password_hash, current):
        raise Unauthorized(_("The current password is wrong."), slug="bad-credentials")
    validate_password(new)
    account.password_hash = hash_password(new)
    page_sessions.end_all(session, account.id)
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.account_id == account.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    audit.record(
        session,
        actor=actor,
        action="identity.password.changed",
        object_type="account",
        object_id=str(account.id),
    )


def grant_role(
    session: Session,
    granter: Principal | None,
    account: Account,
    role: str,
    org_unit: OrgUnit,
    organization_id: int | None = None,
) -> RoleAssignment:
    """Give a role over a subtree (granter None = the system, e.g. seeding).

    A granter needs identity.roles.manage over the subtree, must hold every permission of the role there
    (nobody hands on more than they hold), must also govern the organisation's unit, and cannot grant to
    their own account.
    """
    if role not in access_catalog.roles:
        raise ValidationProblem(_("Unknown role %(role)s.", role=role), field="role")
    if granter is not None:
        require(granter, "identity.roles.manage", org_unit.path)
        require_all(granter, access_catalog.permissions_of(role), org_unit.path)
        if granter.account_id == account.id:
            raise Forbidden(_("You cannot grant roles to yourself."), slug="self-grant")
        if organization_id is not None:
            require(granter, "identity.roles.manage", organization_unit_path(session, organization_id))
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
        granted_by=granter.account_id if granter else None,
    )
    session.add(assignment)
    session.flush()
    forget_after_commit(session, "account", account.id)
    audit.record(
        session,
        actor=granter.actor if granter else "system",
        action="identity.role.granted",
        object_type="account",
        object_id=str(account.id),
        details={"role": role, "org_unit": org_unit.code, "organization_id": organization_id},
    )
    return assignment


def assignments_in_scope(
    session: Session, account_id: int, scopes: list[str]
) -> list[tuple[RoleAssignment, OrgUnit]]:
    """An account's role assignments over units inside the given subtrees, with their units."""
    rows = session.execute(
        select(RoleAssignment, OrgUnit)
        .join(OrgUnit, OrgUnit.id == RoleAssignment.org_unit_id)
        .where(
            RoleAssignment.account_id == account_id,
            RoleAssignment.org_unit_id.in_(unit_ids_in_scope(scopes)),
        )
        .order_by(RoleAssignment.id)
    )
    return [(assignment, unit) for assignment, unit in rows]


def withdraw_role(session: Session, granter: Principal, assignment_id: int) -> None:
    assignment = session.get(RoleAssignment, assignment_id)
    if assignment is None:
        raise NotFound(_("Role assignment %(id)s does not exist.", id=assignment_id))
    unit = session.get(OrgUnit, assignment.org_unit_id)
    assert unit is not None
    require(granter, "identity.roles.manage", unit.path)
    session.delete(assignment)
    forget_after_commit(session, "account", assignment.account_id)
    audit.record(
        session,
        actor=granter.actor,
        action="identity.role.withdrawn",
        object_type="account",
        object_id=str(assignment.account_id),
        details={"role": assignment.role, "org_unit": unit.code},
    )


def person_of_account(session: Session, account_id: int) -> int:
    """The person an account belongs to (404 for an unknown or deactivated account)."""
    person_id = session.scalar(
        select(Account.person_id).where(Account.id == account_id, Account.is_active.is_(True))
    )
    if person_id is None:
        raise NotFound(_("Account %(id)s does not exist.", id=account_id))
    return person_id
