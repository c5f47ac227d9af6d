"""Group buying: a merchant's deal with a price, a minimum (and maybe a maximum) number of participants and a
deadline. Residents join by paying through the payment provider; at the deadline the deal closes, and with
enough paid joins every participant gets a voucher of the deal's GROUPON batch, otherwise every payment is
refunded through the same provider.

Who is in is decided by one row: a join's payment counts only by the conditional update
``paid = paid + 1 WHERE status = 'open' AND deadline > now AND paid < capacity``, and the closing moves the
deal out of ``open`` with one conditional update that reads ``paid`` as it stands. Whichever of a payment
and the closing takes the row first, both agree: a payment counted before the closing is in the deal's
outcome, one that comes after it (or over capacity) is refunded. Each join then moves by conditional updates
(``paid → issued``, ``paid → refunding → refunded``), so replayed callbacks and a second closing change
nothing. Merchants see how many joined, never who.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import CursorResult, case, func, select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity import Notice, Principal, notify
from cityhub.domains.market import schemas
from cityhub.domains.market.models import Batch, Coupon, Deal, DealJoin, Merchant
from cityhub.domains.market.service import batches, coupons
from cityhub.domains.market.service.access import MANAGE, merchant_for, person_of
from cityhub.domains.market.service.coupons import Clock
from cityhub.kernel import audit
from cityhub.kernel.db import upsert_into
from cityhub.kernel.errors import Conflict, Forbidden, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.payments import (
    Checkout,
    InvalidCallback,
    Refund,
    RefundSettlement,
    SandboxProvider,
    Settlement,
)

PAYMENT_JOB = "market.deals.payment"
REFUND_JOB = "market.deals.refund"
CLOSER = "system:market"
MAX_DEALS_SHOWN = 100
MAX_JOINS_SHOWN = 200
# What a participant is told, by topic (``market.deal.<topic>``): the deal's outcome, or why a refund began.
NOTICES = {
    "succeeded": (
        _l("Group deal on: %(title)s"),
        _l("%(title)s reached %(joined)s participants. Your voucher %(code)s is in your coupons."),
    ),
    "failed": (
        _l("Group deal did not happen: %(title)s"),
        _l(
            "%(title)s did not reach %(needed)s participants by its deadline. "
            "Your %(amount)s is being refunded."
        ),
    ),
    "cancelled": (
        _l("Group deal cancelled: %(title)s"),
        _l("The merchant cancelled %(title)s. Your %(amount)s is being refunded."),
    ),
    "late": (
        _l("Too late for the group deal: %(title)s"),
        _l(
            "Your payment for %(title)s came after the deal closed or filled up. "
            "Your %(amount)s is being refunded."
        ),
    ),
    "refunded": (
        _l("Refund received: %(title)s"),
        _l("%(amount)s for %(title)s has been refunded to you."),
    ),
}


def _yuan(cents: int) -> str:
    return f"¥{cents / 100:.2f}"


def _new_reference(prefix: str) -> str:
    """An order or refund number the provider sees; unguessable, short enough to read out."""
    return prefix + secrets.token_hex(8).upper()


def _change(
    session: Session, model: type[Deal] | type[DealJoin] | type[Batch], *where: object, **values: object
) -> bool:
    """One conditional update; whether it took."""
    changed: CursorResult[object] = session.execute(  # type: ignore[assignment]
        update(model).where(*where).values(**values).execution_options(synchronize_session=False)  # type: ignore[arg-type]
    )
    return changed.rowcount == 1


# -- the merchant ------------------------------------------------------------------------------------------


def create(
    session: Session, principal: Principal, merchant_id: int, data: schemas.DealIn, now: datetime
) -> schemas.DealOut:
    """Open a deal with its GROUPON batch, kept a draft: nobody can claim it, only the deal gives it out."""
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    if data.deadline <= now:
        raise ValidationProblem(_("The deadline must be in the future."), field="deadline")
    batch = batches.create(
        session,
        principal,
        merchant.id,
        schemas.BatchIn(
            kind="GROUPON",
            title=data.title,
            description=data.description,
            deal_detail=data.deal_detail,
            face_value_cents=data.price_cents,
            valid_days=data.valid_days,
            claim_until=data.deadline,
            stock=data.max_participants or schemas.MAX_DEAL_PARTICIPANTS,
            per_person_limit=1,
            store_ids=data.store_ids,
            status="draft",
        ),
    )
    deal = Deal(
        merchant_id=merchant.id,
        batch_id=batch.id,
        title=data.title,
        description=data.description,
        price_cents=data.price_cents,
        original_price_cents=data.original_price_cents,
        min_participants=data.min_participants,
        max_participants=data.max_participants,
        deadline=data.deadline,
        status="open",
        paid=0,
        created_by=principal.actor,
    )
    session.add(deal)
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="market.deal.created",
        object_type="market_deal",
        object_id=deal.id,
        details=data.model_dump(mode="json"),
    )
    return _shaped(session, [(deal, merchant.name)])[0]


def merchant_deals(session: Session, principal: Principal, merchant_id: int) -> list[schemas.DealOut]:
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    rows = session.scalars(
        select(Deal).where(Deal.merchant_id == merchant.id).order_by(Deal.id.desc()).limit(MAX_DEALS_SHOWN)
    )
    return _shaped(session, [(deal, merchant.name) for deal in rows])


def cancel(
    session: Session,
    principal: Principal,
    provider: SandboxProvider,
    merchant_id: int,
    deal_id: int,
    clock: Clock,
) -> schemas.DealOut:
    """Call an open deal off before its deadline (after it, the closing decides): every paid join is
    refunded."""
    merchant = merchant_for(session, principal, merchant_id, MANAGE)
    deal = session.get(Deal, deal_id)
    if deal is None or deal.merchant_id != merchant.id:
        raise NotFound(_("Deal %(id)s does not exist.", id=deal_id))
    if not _change(
        session,
        Deal,
        Deal.id == deal.id,
        Deal.status == "open",
        Deal.deadline > clock.now,
        status="cancelled",
        closed_at=clock.now,
    ):
        raise Conflict(_("Only an open deal can be cancelled, before its deadline."), slug="not-open")
    session.refresh(deal)
    _conclude(session, provider, deal, clock, principal.actor)
    return _shaped(session, [(deal, merchant.name)])[0]


# -- residents ---------------------------------------------------------------------------------------------


def open_deals(session: Session, now: datetime) -> list[schemas.DealOut]:
    """Deals one can join now, the soonest to close first."""
    rows = session.execute(
        select(Deal, Merchant.name)
        .join(Merchant, Merchant.id == Deal.merchant_id)
        .where(Deal.status == "open", Deal.deadline > now, Merchant.status == "approved")
        .order_by(Deal.deadline, Deal.id)
        .limit(MAX_DEALS_SHOWN)
    ).all()
    return _shaped(session, [(deal, name) for deal, name in rows])


def public_deal(session: Session, deal_id: int) -> schemas.DealOut:
    """A deal of an approved merchant, open or closed (its page stays after the deadline)."""
    row = session.execute(
        select(Deal, Merchant.name)
        .join(Merchant, Merchant.id == Deal.merchant_id)
        .where(Deal.id == deal_id, Merchant.status == "approved")
    ).one_or_none()
    if row is None:
        raise NotFound(_("Deal %(id)s does not exist.", id=deal_id))
    return _shaped(session, [(row[0], row[1])])[0]


def _resident(principal: Principal) -> tuple[int, int]:
    """The person and account of a signed-in resident (notices go to the account)."""
    person_id = person_of(principal)
    if principal.account_id is None:
        raise Forbidden(_("Only a signed-in resident can do this."), slug="resident-only")
    return person_id, principal.account_id


def join(
    session: Session, principal: Principal, provider: SandboxProvider, deal_id: int, now: datetime
) -> schemas.DealCheckoutOut:
    """Take a place in an open deal and the provider's checkout address to pay for it. A join whose payment
    was declined or left unfinished gets its checkout again; a paid one cannot join twice."""
    person_id, account_id = _resident(principal)
    deal = _joinable(session, deal_id, now)
    joined = session.execute(
        upsert_into(session, DealJoin)
        .values(
            deal_id=deal.id,
            person_id=person_id,
            account_id=account_id,
            status="pending",
            amount_cents=deal.price_cents,
            provider=provider.name,
            payment_reference=_new_reference("G"),
            joined_at=now,
        )
        .on_conflict_do_nothing(index_elements=["deal_id", "person_id"])
        .returning(DealJoin.id)
    ).scalar_one_or_none()
    place = session.scalars(
        select(DealJoin).where(DealJoin.deal_id == deal.id, DealJoin.person_id == person_id)
    ).one()
    if joined is None:
        _again(session, place)
    checkout = Checkout(
        reference=place.payment_reference,
        amount_cents=place.amount_cents,
        description=deal.title,
        return_path=f"/market/deals/{deal.id}",
        callback_job=PAYMENT_JOB,
    )
    return schemas.DealCheckoutOut(
        deal_id=deal.id,
        payment_reference=place.payment_reference,
        checkout_url=provider.checkout_url(checkout),
    )


def _joinable(session: Session, deal_id: int, now: datetime) -> Deal:
    deal = session.scalar(
        select(Deal)
        .join(Merchant, Merchant.id == Deal.merchant_id)
        .where(Deal.id == deal_id, Merchant.status == "approved")
    )
    if deal is None:
        raise NotFound(_("Deal %(id)s does not exist.", id=deal_id))
    if deal.status != "open" or deal.deadline <= now:
        raise Conflict(_("This deal is closed."), slug="deal-closed")
    if deal.max_participants is not None and deal.paid >= deal.max_participants:
        raise Conflict(_("This deal is full."), slug="deal-full")
    return deal


def _again(session: Session, place: DealJoin) -> None:
    """A second join of the same person: pay again after a decline, resume an unfinished checkout, or 409."""
    if place.status not in ("pending", "failed"):
        raise Conflict(_("You have already joined this deal."), slug="already-joined")
    _change(session, DealJoin, DealJoin.id == place.id, DealJoin.status == "failed", status="pending")


def my_joins(session: Session, principal: Principal, deal_id: int | None = None) -> list[schemas.DealJoinOut]:
    """The caller's joins (of one deal, or all), newest first."""
    statement = (
        select(DealJoin, Deal, Merchant.name, Coupon.code)
        .join(Deal, Deal.id == DealJoin.deal_id)
        .join(Merchant, Merchant.id == Deal.merchant_id)
        .outerjoin(Coupon, Coupon.id == DealJoin.coupon_id)
        .where(DealJoin.person_id == person_of(principal))
        .order_by(DealJoin.joined_at.desc(), DealJoin.id.desc())
        .limit(MAX_JOINS_SHOWN)
    )
    if deal_id is not None:
        statement = statement.where(DealJoin.deal_id == deal_id)
    rows = session.execute(statement)
    return [
        schemas.DealJoinOut(
            deal_id=deal.id,
            title=deal.title,
            merchant_name=merchant_name,
            deal_status=deal.status,
            deadline=deal.deadline,
            status=place.status,
            amount_cents=place.amount_cents,
            payment_reference=place.payment_reference,
            joined_at=place.joined_at,
            paid_at=place.paid_at,
            refunded_at=place.refunded_at,
            voucher_code=code,
        )
        for place, deal, merchant_name, code in rows
    ]


# -- the provider's callbacks ------------------------------------------------------------------------------


def settle_payment(session: Session, provider: SandboxProvider, settlement: Settlement, now: datetime) -> str:
    """Apply a verified payment callback: count the join in the deal, or refund a payment that came too late
    or over capacity; the join's status afterwards. Idempotent."""
    place = session.scalar(select(DealJoin).where(DealJoin.payment_reference == settlement.reference))
    if place is None or place.provider != provider.name:
        raise InvalidCallback(_("The payment callback names an unknown order."), status=404)
    if settlement.amount_cents != place.amount_cents:
        raise InvalidCallback(_("The payment callback states another amount than the order."))
    if not settlement.succeeded:
        _change(session, DealJoin, DealJoin.id == place.id, DealJoin.status == "pending", status="failed")
    elif _change(
        session,
        DealJoin,
        DealJoin.id == place.id,
        DealJoin.status.in_(("pending", "failed")),
        status="paid",
        provider_transaction=settlement.transaction,
        paid_at=now,
    ):
        _count_or_refund(session, provider, place, now)
    session.refresh(place)
    if settlement.succeeded and place.provider_transaction != settlement.transaction:
        _keep_duplicate(session, provider.name, place, settlement)
    return place.status


def _count_or_refund(session: Session, provider: SandboxProvider, place: DealJoin, now: datetime) -> None:
    capacity = func.coalesce(Deal.max_participants, schemas.MAX_DEAL_PARTICIPANTS)
    counted = _change(
        session,
        Deal,
        Deal.id == place.deal_id,
        Deal.status == "open",
        Deal.deadline > now,
        Deal.paid < capacity,
        paid=Deal.paid + 1,
    )
    if not counted:
        deal = session.get_one(Deal, place.deal_id)
        _refund(session, provider, place, deal, "late")
    audit.record(
        session,
        actor=f"provider:{provider.name}",
        action="market.deal_join.counted" if counted else "market.deal_join.late",
        object_type="market_deal_join",
        object_id=place.payment_reference,
        details={"deal_id": place.deal_id, "amount_cents": place.amount_cents},
    )


def _keep_duplicate(session: Session, provider: str, place: DealJoin, settlement: Settlement) -> None:
    """A second payment of the same join (two checkouts paid in two tabs): kept in the audit trail for the
    operator to refund, as the services domain keeps a bill's duplicate payment."""
    audit.record(
        session,
        actor=f"provider:{provider}",
        action="market.deal_join.duplicate_payment",
        object_type="market_deal_join",
        object_id=place.payment_reference,
        details={"transaction": settlement.transaction, "amount_cents": settlement.amount_cents},
    )


def settle_refund(session: Session, provider: str, settlement: RefundSettlement, now: datetime) -> str:
    """Apply a verified refund callback; the join's status afterwards. Idempotent."""
    place = session.scalar(select(DealJoin).where(DealJoin.refund_reference == settlement.reference))
    if place is None or place.provider != provider:
        raise InvalidCallback(_("The refund callback names an unknown refund."), status=404)
    if (settlement.amount_cents, settlement.payment_transaction) != (
        place.amount_cents,
        place.provider_transaction,
    ):
        raise InvalidCallback(_("The refund callback states another payment than the refund."))
    if not settlement.succeeded:  # the money is still owed: the join stays refunding for the operator
        audit.record(
            session,
            actor=f"provider:{provider}",
            action="market.deal_join.refund_refused",
            object_type="market_deal_join",
            object_id=place.payment_reference,
            details={"refund": settlement.reference, "transaction": settlement.transaction},
        )
    elif _change(
        session,
        DealJoin,
        DealJoin.id == place.id,
        DealJoin.status == "refunding",
        status="refunded",
        refunded_at=now,
    ):
        deal = session.get_one(Deal, place.deal_id)
        _tell(session, place, deal, "refunded", f"/market/deals/{deal.id}")
        audit.record(
            session,
            actor=f"provider:{provider}",
            action="market.deal_join.refunded",
            object_type="market_deal_join",
            object_id=place.payment_reference,
            details={"refund": settlement.reference, "amount_cents": settlement.amount_cents},
        )
    session.refresh(place)
    return place.status


# -- closing -----------------------------------------------------------------------------------------------


def any_due(session: Session, now: datetime) -> bool:
    """Whether an open deal is past its deadline (a cheap read for the frequent closing job)."""
    return (
        session.scalar(select(Deal.id).where(Deal.status == "open", Deal.deadline <= now).limit(1))
        is not None
    )


def close_due(session: Session, provider: SandboxProvider, clock: Clock) -> int:
    """Close every open deal past its deadline: succeeded with enough paid joins (vouchers), else failed
    (refunds). Each deal moves by one conditional update, so a closing running twice, or at once in two
    workers, concludes each deal once. How many deals this run closed."""
    due = session.scalars(
        select(Deal.id).where(Deal.status == "open", Deal.deadline <= clock.now).order_by(Deal.deadline)
    ).all()
    return sum(_close(session, provider, deal_id, clock) for deal_id in due)


def _close(session: Session, provider: SandboxProvider, deal_id: int, clock: Clock) -> bool:
    outcome = case((Deal.paid >= Deal.min_participants, "succeeded"), else_="failed")
    if not _change(
        session,
        Deal,
        Deal.id == deal_id,
        Deal.status == "open",
        Deal.deadline <= clock.now,
        status=outcome,
        closed_at=clock.now,
    ):
        return False
    _conclude(session, provider, session.get_one(Deal, deal_id, populate_existing=True), clock, CLOSER)
    return True


def _conclude(session: Session, provider: SandboxProvider, deal: Deal, clock: Clock, actor: str) -> None:
    """What a closed deal's paid joins get: a voucher each when it succeeded, their money back otherwise.
    The batch ends either way: nothing else gives it out."""
    batch = session.get_one(Batch, deal.batch_id)
    paid = session.scalars(
        select(DealJoin).where(DealJoin.deal_id == deal.id, DealJoin.status == "paid").order_by(DealJoin.id)
    ).all()
    for place in paid:
        if deal.status == "succeeded":
            _issue_voucher(session, place, deal, batch, clock)
        else:
            _refund(session, provider, place, deal, deal.status)
    _change(session, Batch, Batch.id == batch.id, Batch.status == "draft", status="ended")
    audit.record(
        session,
        actor=actor,
        action=f"market.deal.{deal.status}",
        object_type="market_deal",
        object_id=deal.id,
        details={"paid": deal.paid, "min_participants": deal.min_participants, "concluded": len(paid)},
    )


def _issue_voucher(session: Session, place: DealJoin, deal: Deal, batch: Batch, clock: Clock) -> None:
    if not _change(session, DealJoin, DealJoin.id == place.id, DealJoin.status == "paid", status="issued"):
        return
    voucher = coupons.issue(session, clock, batch, place.person_id)
    _change(session, DealJoin, DealJoin.id == place.id, coupon_id=voucher.id)
    link = f"/market/me/coupons/{voucher.code}"
    _tell(session, place, deal, "succeeded", link, code=voucher.code, joined=deal.paid)


def _refund(session: Session, provider: SandboxProvider, place: DealJoin, deal: Deal, why: str) -> None:
    """Ask the provider to give a paid join's money back (settled by its refund callback); ``why`` is the
    notice's topic: the deal failed, was cancelled, or the payment came late."""
    reference = _new_reference("R")
    if not _change(
        session,
        DealJoin,
        DealJoin.id == place.id,
        DealJoin.status == "paid",
        status="refunding",
        refund_reference=reference,
    ):
        return
    session.refresh(place)
    assert place.provider_transaction is not None  # set when it was paid
    provider.refund(session, Refund(reference, place.provider_transaction, place.amount_cents, REFUND_JOB))
    _tell(session, place, deal, why, f"/market/deals/{deal.id}", needed=deal.min_participants)


def _tell(session: Session, place: DealJoin, deal: Deal, topic: str, link: str, **params: str | int) -> None:
    subject, body = NOTICES[topic]
    values: dict[str, str | int] = {"title": deal.title, "amount": _yuan(place.amount_cents), **params}
    notify(session, place.account_id, Notice(f"market.deal.{topic}", subject, body, values, link))


# -- shaping -----------------------------------------------------------------------------------------------


def _shaped(session: Session, deals: Sequence[tuple[Deal, str]]) -> list[schemas.DealOut]:
    """Deals (with their merchant's name) as the wire shows them, their vouchers' terms read at once."""
    if not deals:
        return []
    batch_ids = [deal.batch_id for deal, _name in deals]
    vouchers = {batch.id: batch for batch in session.scalars(select(Batch).where(Batch.id.in_(batch_ids)))}
    stores = batches.stores_of_batches(session, batch_ids)
    return [
        schemas.DealOut(
            id=deal.id,
            merchant_id=deal.merchant_id,
            merchant_name=merchant_name,
            batch_id=deal.batch_id,
            title=deal.title,
            description=deal.description,
            deal_detail=vouchers[deal.batch_id].deal_detail or "",
            price_cents=deal.price_cents,
            original_price_cents=deal.original_price_cents,
            min_participants=deal.min_participants,
            max_participants=deal.max_participants,
            deadline=deal.deadline,
            valid_days=vouchers[deal.batch_id].valid_days or 0,
            store_ids=stores[deal.batch_id],
            status=deal.status,
            joined=deal.paid,
            closed_at=deal.closed_at,
        )
        for deal, merchant_name in deals
    ]
