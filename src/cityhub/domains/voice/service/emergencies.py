"""The emergency fast path: gas smell, fire risk, flooding, a collapsed structure… Intake sounds the alarm for
the staff on duty (service/alarm.py); one of them acknowledges it on the live board; an alarm nobody
acknowledges within ``emergency_ack_minutes`` is escalated, once, to the department heads and the hotline.
The duty roster says who is on duty when, per department and for the hotline."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import CursorResult, Select, delete, or_, select, update
from sqlalchemy.orm import Session

from cityhub.domains.identity import (
    Notice,
    Principal,
    account_id_of,
    get_organization,
    get_organization_by_code,
    usernames_of,
)
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import OPEN_STATUSES, Category, Duty, Ticket, TicketEvent
from cityhub.domains.voice.service import alarm
from cityhub.domains.voice.service.alarm import HANDLE
from cityhub.domains.voice.service.tickets import (
    Clock,
    claim_once,
    get_ticket,
    handles,
    is_operator,
    ticket_out,
)
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, Forbidden, NotFound
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l

BOARD_KEEPS = timedelta(hours=24)  # acknowledged alarms stay on the board this long
UNANSWERED = (
    _l("Emergency %(number)s not acknowledged"),
    _l("Nobody on duty acknowledged emergency %(number)s (%(category)s) within %(minutes)s minutes."),
)


def acknowledge(session: Session, principal: Principal, number: str, clock: Clock) -> schemas.TicketOut:
    """The first of the staff on duty takes the emergency (a second click answers 409)."""
    ticket = get_ticket(session, principal, number)
    if not (ticket.emergency and handles(principal, ticket)):
        raise Forbidden(
            _("Only the staff handling this emergency may acknowledge it."), slug="not-your-ticket"
        )
    now = utcnow()
    taken: CursorResult[object] = session.execute(  # type: ignore[assignment]
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by=principal.name, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise Conflict(_("This emergency was already acknowledged."), slug="already-acknowledged")
    session.refresh(ticket)
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            actor=principal.actor,
            action="acknowledged",
            from_status=ticket.status,
            to_status=ticket.status,
            note="",
            public=True,
            at=now,
        )
    )
    audit.record(
        session,
        actor=principal.actor,
        action="voice.ticket.acknowledged",
        object_type="voice_ticket",
        object_id=ticket.number,
        details={"seconds": int((now - ticket.created_at).total_seconds())},
    )
    return ticket_out(session, principal, ticket, clock)


def board(session: Session, principal: Principal) -> list[schemas.AlarmOut]:
    """Open emergencies the caller handles (the operator: all), unacknowledged first, oldest first, and
    those acknowledged in the last day."""
    now = utcnow()
    statement: Select[Ticket] = select(Ticket).where(
        Ticket.emergency.is_(True),
        or_(Ticket.acknowledged_at.is_(None), Ticket.acknowledged_at > now - BOARD_KEEPS),
        Ticket.status.in_((*OPEN_STATUSES, "replied")),
    )
    if not is_operator(principal):
        organizations = principal.organizations(HANDLE)
        if not organizations:
            raise Forbidden(_("The emergency board is for the staff on duty."), slug="staff-only")
        statement = statement.where(Ticket.organization_id.in_(organizations))
    rows = session.scalars(
        statement.order_by(Ticket.acknowledged_at.is_not(None), Ticket.created_at).limit(200)
    ).all()
    names = {row.id: row.name_zh for row in session.scalars(select(Category))}
    return [_alarm_out(session, row, names[row.category_id], now) for row in rows]


def _alarm_out(session: Session, ticket: Ticket, category_name: str, now: datetime) -> schemas.AlarmOut:
    until = ticket.acknowledged_at or now
    return schemas.AlarmOut(
        number=ticket.number,
        category_name=category_name,
        description=ticket.description,
        address=ticket.address,
        lon=ticket.lon,
        lat=ticket.lat,
        department=get_organization(session, ticket.organization_id).code if ticket.organization_id else None,
        status=ticket.status,
        created_at=ticket.created_at,
        acknowledged_at=ticket.acknowledged_at,
        acknowledged_by=ticket.acknowledged_by,
        escalated=ticket.alarm_escalated_at is not None,
        waiting_seconds=max(0, int((until - ticket.created_at).total_seconds())),
    )


def watch_alarms(session: Session, clock: Clock) -> int:
    """Escalate each emergency nobody acknowledged in time, once; the number escalated."""
    now = utcnow()
    limit = now - timedelta(minutes=clock.settings.emergency_ack_minutes)
    late = session.scalars(
        select(Ticket).where(
            Ticket.emergency.is_(True),
            Ticket.acknowledged_at.is_(None),
            Ticket.alarm_escalated_at.is_(None),
            Ticket.created_at <= limit,
            Ticket.status.in_(OPEN_STATUSES),
        )
    ).all()
    escalated = 0
    for ticket in late:
        if not claim_once(session, ticket, "alarm_escalated_at", now):
            continue
        category = session.get_one(Category, ticket.category_id)
        params: dict[str, str | int | float] = {
            "number": ticket.number,
            "category": category.name_zh,
            "minutes": clock.settings.emergency_ack_minutes,
        }
        recipients = alarm.escalation_recipients(session, ticket.organization_id)
        alarm.tell(
            session,
            recipients,
            Notice("voice.emergency.escalated", *UNANSWERED, params, "/console/voice/emergencies"),
        )
        audit.record(
            session,
            actor="system:alarm",
            action="voice.ticket.alarm_escalated",
            object_type="voice_ticket",
            object_id=ticket.number,
            details={"told": len(recipients)},
        )
        escalated += 1
    return escalated


# -- the duty roster -----------------------------------------------------------------------------------------


def _roster_scope(session: Session, principal: Principal, department: str | None) -> int | None:
    """The organisation a roster entry is for, checked against who edits it: the operator any, a
    department's staff only their own."""
    organization_id = get_organization_by_code(session, department).id if department else None
    if is_operator(principal) or (
        organization_id is not None and organization_id in principal.organizations(HANDLE)
    ):
        return organization_id
    raise Forbidden(_("You may only keep your own department's roster."), slug="not-your-roster")


def add_duty(session: Session, principal: Principal, given: schemas.DutyIn) -> schemas.DutyOut:
    organization_id = _roster_scope(session, principal, given.department)
    duty = Duty(
        organization_id=organization_id,
        account_id=account_id_of(session, given.account),
        starts_at=given.starts_at,
        ends_at=given.ends_at,
    )
    session.add(duty)
    session.flush()
    audit.record(
        session,
        actor=principal.actor,
        action="voice.duty.added",
        object_type="voice_duty",
        object_id=str(duty.id),
        details={"account": given.account, "department": given.department},
    )
    return _duty_out(session, duty, {duty.account_id: given.account})


def remove_duty(session: Session, principal: Principal, duty_id: int) -> None:
    duty = session.get(Duty, duty_id)
    if duty is None:
        raise NotFound(_("No such duty."))
    department = get_organization(session, duty.organization_id).code if duty.organization_id else None
    _roster_scope(session, principal, department)
    session.execute(delete(Duty).where(Duty.id == duty_id))
    audit.record(
        session,
        actor=principal.actor,
        action="voice.duty.removed",
        object_type="voice_duty",
        object_id=str(duty_id),
        details={},
    )


def roster(session: Session, principal: Principal, since: datetime | None = None) -> list[schemas.DutyOut]:
    """Duties ending after ``since`` (default now) that the caller may see, soonest first."""
    statement = select(Duty).where(Duty.ends_at > (since or utcnow()))
    if not is_operator(principal):
        statement = statement.where(Duty.organization_id.in_(principal.organizations(HANDLE)))
    duties = session.scalars(statement.order_by(Duty.starts_at, Duty.id).limit(500)).all()
    names = usernames_of(session, (duty.account_id for duty in duties))
    return [_duty_out(session, duty, names) for duty in duties]


def _duty_out(session: Session, duty: Duty, names: dict[int, str]) -> schemas.DutyOut:
    return schemas.DutyOut(
        id=duty.id,
        account=names.get(duty.account_id, str(duty.account_id)),
        department=get_organization(session, duty.organization_id).code if duty.organization_id else None,
        starts_at=duty.starts_at,
        ends_at=duty.ends_at,
    )
