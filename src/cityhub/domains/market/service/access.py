"""Who may act for a merchant: a grant holding the permission on behalf of the merchant's organisation
(the owner's and clerks' roles, or a POS key bound to it). Deny by default: anyone else gets 403 (merchant
ids are public anyway, on every store page)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal
from cityhub.domains.market.models import Merchant, Store
from cityhub.kernel.errors import Forbidden, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _

MANAGE = "market.merchant.manage"
REDEEM = "market.coupons.redeem"
REVIEW = "market.merchants.review"


def merchant_for(session: Session, principal: Principal, merchant_id: int, permission: str) -> Merchant:
    """The merchant, if the principal holds ``permission`` for it; 404 when it does not exist, 403 when the
    caller has no such power there."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound(_("Merchant %(id)s does not exist.", id=merchant_id))
    if merchant.organization_id is None or merchant.organization_id not in principal.organizations(
        permission
    ):
        raise Forbidden(
            _("You do not act for this merchant (%(permission)s).", permission=permission),
            permission=permission,
        )
    if merchant.status != "approved":
        raise Forbidden(_("This merchant is not approved to trade."), slug="merchant-not-approved")
    return merchant


def till_store(session: Session, merchant: Merchant, store_id: int) -> Store:
    """The store a till serves an order at: one of the merchant's own (422 otherwise)."""
    store = session.get(Store, store_id)
    if store is None or store.merchant_id != merchant.id:
        raise ValidationProblem(_("Store %(id)s is not this merchant's.", id=store_id), field="store_id")
    return store


def person_of(principal: Principal) -> int:
    """The resident behind the caller (machines and the system have none)."""
    if principal.person_id is None:
        raise Forbidden(_("Only a signed-in resident can do this."), slug="resident-only")
    return principal.person_id
