"""好差评: a resident rates each completed transaction once (1 very dissatisfied … 5 very satisfied); a bad
rating (2 or less) opens a follow-up the department must close with a note of what it did."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import CursorResult, Integer, func, select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity import Notice, Principal, notify
from cityhub.domains.services import schemas
from cityhub.domains.services.models import (
    Application,
    Bill,
    Booking,
    Department,
    FollowUp,
    Item,
    Payment,
    Rating,
)
from cityhub.domains.services.service.desk import desk_departments, require_desk
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, NotFound
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.pagination import PageParams, fetch_page

BAD_LEVEL = 2
GOOD_LEVEL = 4
ANSWERED = (
    _l("The department answered your rating"),
    _l("About your rating of %(level)s out of 5: %(note)s"),
)


def rate(session: Session, principal: Principal, given: schemas.RatingIn) -> schemas.RatingOut:
    subject_id, item_id, department_id = _completed(session, principal, given)
    if _rating_of(session, given.kind, subject_id) is not None:
        raise Conflict(_("You have already rated this."), slug="already-rated")
    rating = Rating(
        subject_kind=given.kind,
        subject_id=subject_id,
        item_id=item_id,
        department_id=department_id,
        account_id=principal.id,
        level=given.level,
        comment=given.comment.strip(),
    )
    session.add(rating)
    session.flush()
    if rating.level <= BAD_LEVEL:
        session.add(FollowUp(rating_id=rating.id, department_id=department_id))
        session.flush()
    return rating_out(session, rating)


def _completed(
    session: Session, principal: Principal, given: schemas.RatingIn
) -> tuple[int, int | None, int]:
    """(subject id, item id, department id) of the caller's completed transaction named by ``given``."""
    not_found = NotFound(_("%(reference)s is not one of your transactions.", reference=given.reference))
    if principal.kind != "account":
        raise not_found
    if given.kind == "booking":
        booking = session.scalar(
            select(Booking).where(Booking.reference == given.reference, Booking.account_id == principal.id)
        )
        if booking is None:
            raise not_found
        if booking.status != "attended":
            raise Conflict(_("Only an appointment you attended can be rated."), slug="not-completed")
        item = session.get_one(Item, booking.item_id)
        return booking.id, item.id, item.department_id
    if given.kind == "application":
        application = session.scalar(
            select(Application).where(
                Application.reference == given.reference, Application.account_id == principal.id
            )
        )
        if application is None:
            raise not_found
        if application.status not in ("approved", "rejected"):
            raise Conflict(_("Only a decided application can be rated."), slug="not-completed")
        return application.id, application.item_id, application.department_id
    payment = session.scalar(
        select(Payment).where(Payment.reference == given.reference, Payment.account_id == principal.id)
    )
    if payment is None:
        raise not_found
    if payment.status != "succeeded":
        raise Conflict(_("Only a completed payment can be rated."), slug="not-completed")
    bill = session.get_one(Bill, payment.bill_id)
    return payment.id, bill.item_id, bill.department_id


def _rating_of(session: Session, kind: str, subject_id: int) -> Rating | None:
    return session.scalar(select(Rating).where(Rating.subject_kind == kind, Rating.subject_id == subject_id))


def rating_out(session: Session, rating: Rating) -> schemas.RatingOut:
    department = session.get_one(Department, rating.department_id)
    item = session.get(Item, rating.item_id) if rating.item_id is not None else None
    return schemas.RatingOut(
        id=rating.id,
        kind=rating.subject_kind,
        item=item.code if item else "",
        department=department.code,
        level=rating.level,
        comment=rating.comment,
        created_at=rating.created_at,
        follow_up=session.scalar(select(FollowUp.id).where(FollowUp.rating_id == rating.id)),
    )


def follow_ups(
    session: Session, principal: Principal, status: str | None, paging: PageParams
) -> tuple[list[schemas.FollowUpOut], int]:
    """Follow-ups of the departments the caller acts for, oldest open first."""
    department_ids = [department.id for department in desk_departments(session, principal)]
    statement = select(FollowUp).where(FollowUp.department_id.in_(department_ids))
    if status is not None:
        statement = statement.where(FollowUp.status == status)
    rows, total = fetch_page(
        session, statement.order_by(FollowUp.status.desc(), FollowUp.created_at, FollowUp.id), paging
    )
    return [follow_up_out(session, row) for row in rows], total


def follow_up_out(session: Session, follow_up: FollowUp) -> schemas.FollowUpOut:
    return schemas.FollowUpOut(
        id=follow_up.id,
        rating=rating_out(session, session.get_one(Rating, follow_up.rating_id)),
        status=follow_up.status,
        note=follow_up.note,
        created_at=follow_up.created_at,
        closed_at=follow_up.closed_at,
    )


def close_follow_up(
    session: Session, principal: Principal, follow_up_id: int, note: str
) -> schemas.FollowUpOut:
    follow_up = session.get(FollowUp, follow_up_id)
    if follow_up is None:
        raise NotFound(_("Follow-up %(id)s does not exist.", id=follow_up_id))
    require_desk(principal, session.get_one(Department, follow_up.department_id))
    closed: CursorResult[object] = session.execute(  # type: ignore[assignment]
        update(FollowUp)
        .where(FollowUp.id == follow_up.id, FollowUp.status == "open")
        .values(status="closed", note=note.strip(), closed_at=utcnow(), closed_by=principal.actor)
        .execution_options(synchronize_session=False)
    )
    if closed.rowcount != 1:
        raise Conflict(_("This follow-up is already closed."), slug="follow-up-closed")
    rating = session.get_one(Rating, follow_up.rating_id)
    params: dict[str, str | int] = {"level": rating.level, "note": note.strip()}
    notify(
        session, rating.account_id, Notice("services.rating.answered", *ANSWERED, params, "/services/mine")
    )
    audit.record(
        session,
        actor=principal.actor,
        action="services.follow_up.closed",
        object_type="services_follow_up",
        object_id=str(follow_up.id),
    )
    session.refresh(follow_up)
    return follow_up_out(session, follow_up)


def satisfaction(session: Session, department: Department, days: int = 30) -> schemas.SatisfactionOut:
    """The department's 好差评 over the last ``days``: how many, the mean level, the share of 4 and 5."""
    since = utcnow() - timedelta(days=days)
    count, mean, good = session.execute(
        select(
            func.count(),
            func.avg(Rating.level),
            func.sum((Rating.level >= GOOD_LEVEL).cast(Integer)),
        ).where(Rating.department_id == department.id, Rating.created_at >= since)
    ).one()
    open_follow_ups = session.scalar(
        select(func.count()).where(FollowUp.department_id == department.id, FollowUp.status == "open")
    )
    return schemas.SatisfactionOut(
        days=days,
        ratings=count,
        mean_level=round(float(mean), 2) if mean is not None else None,
        satisfied_share=round(int(good or 0) / count, 3) if count else None,
        open_follow_ups=open_follow_ups or 0,
    )
