"""Merchant onboarding: a signed-in person applies with documents; the operator's reviewer approves (which
opens the identity organisation and makes the applicant its owner) or rejects with a reason; the owner then
adds clerks and POS keys."""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cityhub.domains.identity import (
    Notice,
    Principal,
    get_organization,
    get_unit_by_code,
    give_organization_role,
    issue_organization_key,
    notify,
    open_organization,
    organization_keys,
    organization_staff,
    require_citywide,
    revoke_organization_key,
    take_organization_role,
)
from cityhub.domains.identity import account_id_of as identity_account_id_of
from cityhub.domains.market import schemas
from cityhub.domains.market.models import Merchant
from cityhub.domains.market.service.access import MANAGE, REDEEM, REVIEW, merchant_for
from cityhub.domains.market.service.stores import relist
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, Forbidden, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.uploads import DOCUMENTS, Upload, content_type, store

DOMAIN = "market"
MAX_DOCUMENTS = 10
STAFF_ROLES = ("merchant_owner", "merchant_clerk")
APPROVED = (_l("Your merchant application was approved"), _l("%(name)s can now open stores and coupons."))
REJECTED = (_l("Your merchant application was not approved"), _l("%(name)s: %(reason)s"))
SUSPENDED = (_l("Your merchant account was suspended"), _l("%(name)s: %(reason)s"))


def apply(session: Session, principal: Principal, data: schemas.MerchantIn) -> Merchant:
    if principal.account_id is None:
        raise Forbidden(_("Only a signed-in person can apply as a merchant."), slug="account-only")
    community = get_unit_by_code(session, data.community)
    if community.kind != "community":
        raise ValidationProblem(_("Choose the community the business is in."), field="community")
    merchant = _merchant(
        data,
        code="M" + secrets.token_hex(5).upper(),
        status="pending",
        applicant_account_id=principal.account_id,
        home_unit_id=community.id,
    )
    session.add(merchant)
    session.flush()
    return merchant


def enrol(
    session: Session,
    principal: Principal,
    organization_id: int,
    owner_account_id: int,
    data: schemas.MerchantIn,
) -> Merchant:
    """Register a business the platform already knows as an identity organisation of kind "merchant" (one
    imported from the business register, its staff's roles already granted in identity): approved at once by
    the reviewer, without opening a second organisation. ``data.community`` is ignored: the organisation's
    home unit is the merchant's."""
    _require_reviewer(principal)
    organization = get_organization(session, organization_id)
    if organization.kind != "merchant":
        raise ValidationProblem(_("Only a merchant organisation can be enrolled."), field="organization_id")
    if session.scalar(select(Merchant.id).where(Merchant.organization_id == organization_id)) is not None:
        raise Conflict(_("This organisation is already a merchant."), slug="already-enrolled")
    merchant = _merchant(
        data,
        code=organization.code,
        status="approved",
        applicant_account_id=owner_account_id,
        home_unit_id=organization.org_unit_id,
        organization_id=organization.id,
        reviewed_by=principal.actor,
        reviewed_at=utcnow(),
    )
    session.add(merchant)
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="market.merchant.enrolled",
        object_type="merchant",
        object_id=str(merchant.id),
        details={"organization": organization.code},
    )
    return merchant


def _merchant(data: schemas.MerchantIn, **state: object) -> Merchant:
    """A merchant row from what the applicant stated, in the given state."""
    stated = data.model_dump(
        include={"name", "name_en", "category", "licence_number", "contact_phone", "description"}
    )
    return Merchant(**stated, documents=[], **state)


def add_document(
    session: Session, principal: Principal, merchant_id: int, upload: Upload, folder: Path
) -> Merchant:
    """A licence scan or permit (PDF/PNG/JPEG) while the application waits for review."""
    merchant = own_application(session, principal, merchant_id)
    if merchant.status != "pending":
        raise Conflict(_("Documents can be added only while the application waits for review."))
    if len(merchant.documents) >= MAX_DOCUMENTS:
        raise Conflict(_("An application holds at most %(n)s documents.", n=MAX_DOCUMENTS))
    try:
        kind = content_type(upload, DOCUMENTS)
    except ValueError as exc:
        raise ValidationProblem(str(exc), field="file") from exc
    digest = store(folder, upload.data)
    merchant.documents = [
        *merchant.documents,
        {"name": upload.filename[:200], "sha256": digest, "content_type": kind},
    ]
    return merchant


def own_application(session: Session, principal: Principal, merchant_id: int) -> Merchant:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None or merchant.applicant_account_id != principal.account_id:
        raise NotFound(_("Merchant %(id)s does not exist.", id=merchant_id))
    return merchant


def my_merchants(session: Session, principal: Principal) -> list[Merchant]:
    """Applications the caller made and merchants the caller works for."""
    acting = principal.organizations(MANAGE) | principal.organizations(REDEEM)
    statement = select(Merchant).where(
        (Merchant.applicant_account_id == principal.account_id) | Merchant.organization_id.in_(acting)
    )
    return list(session.scalars(statement.order_by(Merchant.id)))


def by_code(session: Session, code: str) -> Merchant:
    merchant = session.scalar(select(Merchant).where(Merchant.code == code)) if code else None
    if merchant is None:
        raise NotFound(_("There is no merchant with the code %(code)s.", code=code), field="merchant")
    return merchant


def names_of(session: Session, merchant_ids: list[int]) -> dict[int, str]:
    return dict(
        session.execute(select(Merchant.id, Merchant.name).where(Merchant.id.in_(merchant_ids))).all()
    )


def applications(status: str | None) -> Select[Merchant]:
    statement = select(Merchant).order_by(Merchant.id.desc())
    return statement.where(Merchant.status == status) if status else statement


def get_for_review(session: Session, principal: Principal, merchant_id: int) -> Merchant:
    _require_reviewer(principal)
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(_("Merchant %(id)s does not exist.", id=merchant_id))
    return merchant


def _require_reviewer(principal: Principal) -> None:
    require_citywide(principal, REVIEW)


def review(session: Session, principal: Principal, merchant_id: int, decision: schemas.ReviewIn) -> Merchant:
    """Approve, reject or suspend; audited, and the applicant is told."""
    merchant = get_for_review(session, principal, merchant_id)
    allowed = {"approve": ("pending", "suspended"), "reject": ("pending",), "suspend": ("approved",)}
    if merchant.status not in allowed[decision.decision]:
        raise Conflict(
            _("A %(status)s merchant cannot be given this decision.", status=merchant.status),
            slug="wrong-state",
        )
    if decision.decision == "approve" and merchant.organization_id is None:
        merchant.organization_id = open_organization(
            session,
            DOMAIN,
            principal.actor,
            kind="merchant",
            code=merchant.code,
            name=merchant.name,
            unit_id=merchant.home_unit_id,
            name_en=merchant.name_en,
        )
        give_organization_role(
            session,
            DOMAIN,
            principal.actor,
            account_id=merchant.applicant_account_id,
            role="merchant_owner",
            organization_id=merchant.organization_id,
        )
    merchant.status = {"approve": "approved", "reject": "rejected", "suspend": "suspended"}[decision.decision]
    merchant.review_reason = decision.reason
    relist(session, merchant)
    merchant.reviewed_by = principal.actor
    merchant.reviewed_at = utcnow()
    audit.record(
        session,
        actor=principal.actor,
        action=f"market.merchant.{merchant.status}",
        object_type="merchant",
        object_id=str(merchant.id),
        details={"reason": decision.reason},
    )
    title, body = {"approved": APPROVED, "rejected": REJECTED, "suspended": SUSPENDED}[merchant.status]
    params = {"name": merchant.name, "reason": decision.reason or ""}
    notify(
        session,
        merchant.applicant_account_id,
        Notice(f"market.merchant.{merchant.status}", title, body, params, "/market/merchant"),
    )
    return merchant


def staff(session: Session, principal: Principal, merchant_id: int) -> list[schemas.StaffOut]:
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    assert merchant.organization_id is not None
    members = organization_staff(session, merchant.organization_id, STAFF_ROLES)
    return [
        schemas.StaffOut(assignment_id=m.assignment_id, username=m.username, role=m.role) for m in members
    ]


def add_staff(
    session: Session, principal: Principal, merchant_id: int, data: schemas.StaffIn
) -> schemas.StaffOut:
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    assert merchant.organization_id is not None
    try:
        account_id = identity_account_id_of(session, data.username)
    except NotFound as exc:
        raise ValidationProblem(
            _("No account is called %(name)s.", name=data.username), field="username"
        ) from exc
    assignment_id = give_organization_role(
        session,
        DOMAIN,
        principal.actor,
        account_id=account_id,
        role=data.role,
        organization_id=merchant.organization_id,
    )
    return schemas.StaffOut(assignment_id=assignment_id, username=data.username, role=data.role)


def remove_staff(session: Session, principal: Principal, merchant_id: int, assignment_id: int) -> None:
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    assert merchant.organization_id is not None
    owners = organization_staff(session, merchant.organization_id, ("merchant_owner",))
    if [m.assignment_id for m in owners] == [assignment_id]:
        raise Conflict(_("A merchant keeps at least one owner."), slug="last-owner")
    take_organization_role(
        session,
        DOMAIN,
        principal.actor,
        assignment_id=assignment_id,
        organization_id=merchant.organization_id,
    )


def pos_keys(session: Session, principal: Principal, merchant_id: int) -> list[schemas.PosKeyOut]:
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    assert merchant.organization_id is not None
    return [
        schemas.PosKeyOut(
            id=k.id,
            name=k.name,
            prefix=k.prefix,
            created_at=k.created_at,
            revoked_at=k.revoked_at,
            last_used_at=k.last_used_at,
        )
        for k in organization_keys(session, merchant.organization_id)
    ]


def issue_pos_key(
    session: Session, principal: Principal, merchant_id: int, data: schemas.PosKeyIn
) -> schemas.PosKeyOut:
    """A key for a till: it may look up and redeem the merchant's coupons, nothing else."""
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    assert merchant.organization_id is not None
    if data.expires_at is not None and data.expires_at.tzinfo is None:
        raise ValidationProblem(_("Give the expiry with a zone offset."), field="expires_at")
    key_id, secret = issue_organization_key(
        session,
        DOMAIN,
        principal.actor,
        organization_id=merchant.organization_id,
        name=data.name,
        permissions=[REDEEM],
        expires_at=data.expires_at,
    )
    info = next(k for k in organization_keys(session, merchant.organization_id) if k.id == key_id)
    return schemas.PosKeyOut(
        id=info.id,
        name=info.name,
        prefix=info.prefix,
        created_at=info.created_at,
        revoked_at=None,
        last_used_at=None,
        secret=secret,
    )


def revoke_pos_key(session: Session, principal: Principal, merchant_id: int, key_id: int) -> None:
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    assert merchant.organization_id is not None
    revoke_organization_key(
        session, DOMAIN, principal.actor, organization_id=merchant.organization_id, key_id=key_id
    )
