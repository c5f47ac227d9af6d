"""Citizens' data requests ("data wishes"): a signed-in person asks for data the city does not open yet,
perhaps naming the department that holds it; everyone sees the board, most votes first; signed-in people
vote once for a wish and may take their vote back. The department asked — or, for a wish addressed to no
department, the operator — answers: planned (saying what), fulfilled (by a published resource, linked from
the board) or declined (with the reason). The filer is told; filing and answering are audited.

The vote count is kept on the wish by one conditional ``UPDATE … SET votes = votes ± 1`` in the same
transaction as the vote row (whose primary key makes a second vote of the same person fail), so votes at
the same moment are neither lost nor counted twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import DataWish, DataWishVote, Resource
from cityhub.domains.exchange.service.access import ADMINISTER, MANAGE, acts_for, staff_of, tell
from cityhub.domains.exchange.service.applications import on_portal
from cityhub.domains.identity import (
    Notice,
    Principal,
    can_citywide,
    get_organization_by_code,
    organizations_by_id,
)
from cityhub.kernel import audit
from cityhub.kernel.errors import Conflict, Forbidden, NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l

COLLECTING = ("open", "planned")  # wishes that take votes and answers; fulfilled and declined ones are closed
FILED = (
    _l("Data requested by a resident: %(title)s"),
    _l("A resident asks for data: %(title)s. Answer it on the data exchange console."),
)
ANSWERED = (
    _l("Your data request was answered: %(title)s"),
    _l("%(decision)s. %(answer)s"),
)
DECISIONS = {"planned": _l("Planned"), "fulfilled": _l("Fulfilled"), "declined": _l("Declined")}
BOARD = "/data/requests"


def file(session: Session, principal: Principal, data: schemas.WishIn, now: datetime) -> DataWish:
    """A person's wish; the department asked (or the operator, when none is named) is told."""
    account_id = _person(principal)
    department = get_organization_by_code(session, data.department).id if data.department else None
    wish = DataWish(
        title=data.title,
        description=data.description,
        provider_org_id=department,
        account_id=account_id,
        created_at=now,
    )
    session.add(wish)
    session.flush()
    _audit(session, principal, "exchange.wish.filed", wish, {"department": data.department})
    notice = Notice("exchange.wish.filed", *FILED, {"title": wish.title}, "/console/exchange#wishes")
    tell(session, staff_of(session, department), notice)
    return wish


def _person(principal: Principal) -> int:
    if principal.account_id is None:
        raise Forbidden(_("Sign in as a person to ask for data or vote."), slug="person-only")
    return principal.account_id


def get(session: Session, wish_id: int) -> DataWish:
    wish = session.get(DataWish, wish_id)
    if wish is None:
        raise NotFound(_("Data request %(id)s does not exist.", id=wish_id))
    return wish


# -- votes -------------------------------------------------------------------------------------------------


def vote(session: Session, principal: Principal, wish_id: int) -> DataWish:
    """One vote of the caller for a wish still collecting them (409 for a second one)."""
    account_id = _person(principal)
    wish = get(session, wish_id)
    try:
        with session.begin_nested():
            session.add(DataWishVote(wish_id=wish.id, account_id=account_id))
    except IntegrityError as exc:
        raise Conflict(_("You voted for this request already."), slug="already-voted") from exc
    _count(session, wish, +1)
    return wish


def unvote(session: Session, principal: Principal, wish_id: int) -> DataWish:
    """The caller takes their vote back (409 when they have none)."""
    account_id = _person(principal)
    wish = get(session, wish_id)
    removed = session.execute(
        delete(DataWishVote).where(DataWishVote.wish_id == wish.id, DataWishVote.account_id == account_id)
    )
    if removed.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(_("You have not voted for this request."), slug="not-voted")
    _count(session, wish, -1)
    return wish


def _count(session: Session, wish: DataWish, step: int) -> None:
    """Move the count by ``step`` in the database itself, only while the wish collects votes (a closed
    wish refuses, undoing the vote row with the request)."""
    counted = session.execute(
        update(DataWish)
        .where(DataWish.id == wish.id, DataWish.status.in_(COLLECTING))
        .values(votes=DataWish.votes + step)
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount == 0:  # type: ignore[attr-defined]
        raise Conflict(_("This request is closed; it takes no more votes."), slug="closed")
    session.refresh(wish)


# -- the answer --------------------------------------------------------------------------------------------


def answer(
    session: Session, principal: Principal, wish_id: int, data: schemas.WishAnswerIn, now: datetime
) -> DataWish:
    """The department asked (the operator for a wish to no department, or for any) answers a collecting
    wish: planned, fulfilled by a resource on the portal, or declined with a reason; the filer is told."""
    wish = get(session, wish_id)
    if not answers(principal, wish):
        raise Forbidden(_("Only the department asked answers this request."), slug="not-addressed")
    if wish.status not in COLLECTING:
        raise Conflict(_("This request has been closed."), slug="closed")
    wish.resource_id = _fulfilling(session, data.resource) if data.decision == "fulfilled" else None
    wish.status, wish.answer = data.decision, data.answer
    wish.answered_by, wish.answered_at = principal.actor, now
    _audit(session, principal, f"exchange.wish.{data.decision}", wish, data.model_dump(mode="json"))
    params = {"title": wish.title, "decision": str(DECISIONS[data.decision]), "answer": data.answer or ""}
    tell(
        session,
        [wish.account_id],
        Notice("exchange.wish.answered", *ANSWERED, params, f"{BOARD}#wish-{wish.id}"),
    )
    return wish


def _fulfilling(session: Session, code: str | None) -> int:
    """The id of the resource that fulfils a wish: one the portal shows (people follow the link)."""
    try:
        return on_portal(session, code or "").id
    except NotFound as exc:
        raise ValidationProblem(
            _("No published open data has the code %(code)s.", code=code), field="resource"
        ) from exc


def answers(principal: Principal | None, wish: DataWish) -> bool:
    """Whether the caller answers the wish: the department asked, or the operator."""
    if principal is None:
        return False
    if wish.provider_org_id is None:
        return can_citywide(principal, ADMINISTER)
    return acts_for(principal, MANAGE, wish.provider_org_id)


# -- the board and the console -----------------------------------------------------------------------------


def board(status: str | None, sort: str) -> Select[DataWish]:
    """Every wish (of one status), most votes first (then newest), or newest first."""
    statement = select(DataWish)
    if status is not None:
        statement = statement.where(DataWish.status == status)
    if sort == "votes":
        return statement.order_by(DataWish.votes.desc(), DataWish.id.desc())
    return statement.order_by(DataWish.id.desc())


def to_answer(session: Session, principal: Principal) -> list[DataWish]:
    """Collecting wishes the caller answers, most votes first: those asked of their departments; the
    operator's, every one."""
    statement = board(None, "votes").where(DataWish.status.in_(COLLECTING)).limit(MAX_LISTED)
    if not can_citywide(principal, ADMINISTER):
        statement = statement.where(DataWish.provider_org_id.in_(principal.organizations(MANAGE)))
    return list(session.scalars(statement))


MAX_LISTED = 200


def departments(session: Session) -> list[Any]:
    """The departments a wish may be addressed to on the board: those providing published data."""
    providing = session.scalars(
        select(Resource.provider_org_id).where(Resource.status == "published").distinct()
    )
    return sorted(organizations_by_id(session, providing).values(), key=lambda department: department.name)


def shape(session: Session, principal: Principal | None, wishes: list[DataWish]) -> list[schemas.WishOut]:
    account_id = principal.account_id if principal is not None else None
    ids = [wish.id for wish in wishes]
    voted = set()
    if account_id is not None and ids:
        voted = set(
            session.scalars(
                select(DataWishVote.wish_id).where(
                    DataWishVote.account_id == account_id, DataWishVote.wish_id.in_(ids)
                )
            )
        )
    departments = organizations_by_id(session, {w.provider_org_id for w in wishes if w.provider_org_id})
    fulfilled = {w.resource_id for w in wishes if w.resource_id is not None}
    resources = (
        {r.id: r for r in session.scalars(select(Resource).where(Resource.id.in_(fulfilled)))}
        if fulfilled
        else {}
    )
    shaped = []
    for wish in wishes:
        department = departments.get(wish.provider_org_id) if wish.provider_org_id else None
        resource = resources.get(wish.resource_id) if wish.resource_id else None
        shaped.append(
            schemas.WishOut(
                id=wish.id,
                title=wish.title,
                description=wish.description,
                department=department.code if department else None,
                department_name=department.name if department else None,
                votes=wish.votes,
                status=wish.status,
                answer=wish.answer,
                resource=resource.code if resource else None,
                resource_name=resource.name if resource else None,
                answered_at=wish.answered_at,
                created_at=wish.created_at,
                voted=wish.id in voted,
                mine=account_id is not None and wish.account_id == account_id,
            )
        )
    return shaped


def _audit(
    session: Session, principal: Principal, action: str, wish: DataWish, details: dict[str, Any]
) -> None:
    audit.record(
        session,
        actor=principal.actor,
        action=action,
        object_type="exchange_data_wish",
        object_id=str(wish.id),
        details=details,
    )
