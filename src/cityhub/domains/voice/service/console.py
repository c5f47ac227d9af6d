"""The department console's queue: the tickets a member of staff handles (the operator: all), nearest
deadline first, filtered by status, due state, category and type, paged by a keyset cursor so that the
thousandth page costs what the first does, whatever the number of tickets in the store.

Speed at a million tickets: the page is one ``UNION ALL`` of index range scans, one per (department, status)
pair asked for, each ``ORDER BY deadline_at, id LIMIT page+1`` on ``ix_voice_ticket_queue``
(``organization_id, status, deadline_at``; for the operator ``ix_voice_ticket_due``, ``status,
deadline_at``), merged and cut to one page; the page's tickets are then read by primary key. No request
counts the whole table: the counters in the header cover the open tickets only (a single pass over the same
index), and the pages have a "next page" link instead of a total. "warning" is exact in SQL: due before the
start of the ``warn_days``-th working day after today, as :func:`tickets.due_state` decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_, select, union_all
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal, get_organization
from cityhub.domains.voice.models import (
    OPEN_STATUSES,
    TICKET_STATUSES,
    TICKET_TYPES,
    Category,
    Extension,
    Ticket,
)
from cityhub.domains.voice.service.alarm import HANDLE
from cityhub.domains.voice.service.tickets import Clock, due_state, is_operator
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Forbidden, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.workdays import add_workdays

PAGE_SIZE = 50
DUE_STATES = ("overdue", "warning")


@dataclass(frozen=True)
class QueueFilter:
    status: str = "open"  # "open" (received, dispatched, handling) or one status
    due: str | None = None  # overdue | warning
    category: str | None = None  # a code; its branch's tickets too
    type: str | None = None
    after: str | None = None  # the cursor of the previous page's last row

    def checked(self) -> QueueFilter:
        if self.status != "open" and self.status not in TICKET_STATUSES:
            raise ValidationProblem(_("Unknown status %(status)s.", status=self.status), field="status")
        if self.due is not None and self.due not in DUE_STATES:
            raise ValidationProblem(_("Due is overdue or warning."), field="due")
        if self.type is not None and self.type not in TICKET_TYPES:
            raise ValidationProblem(_("Unknown ticket type %(type)s.", type=self.type), field="type")
        return self


@dataclass(frozen=True)
class QueueRow:
    number: str
    type: str
    category: str
    category_name: str
    description: str
    status: str
    due: str
    deadline_at: datetime
    deadline_local: str  # in the city's zone, formatted here: the page shows fifty of them
    emergency: bool
    department_id: int | None


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None
    counts: dict[str, int]


def queue(session: Session, principal: Principal, wanted: QueueFilter, clock: Clock) -> QueuePage:
    scope = _scope(principal)
    wanted = wanted.checked()
    now = utcnow()
    conditions = _conditions(session, wanted, clock, now)
    if wanted.after:
        deadline, ticket_id = _cursor(wanted.after)
        conditions.append(
            and_(
                Ticket.deadline_at >= deadline,
                or_(Ticket.deadline_at > deadline, Ticket.id > ticket_id),
            )
        )
    statuses = OPEN_STATUSES if wanted.status == "open" else (wanted.status,)
    ranges = [
        select(Ticket.id, Ticket.deadline_at)
        .where(*conditions, Ticket.status == status, *_department(organization))
        .order_by(Ticket.deadline_at, Ticket.id)
        .limit(PAGE_SIZE + 1)
        .subquery()
        for organization in (scope if scope is not None else [None])
        for status in statuses
    ]
    merged = union_all(*(select(part.c.id, part.c.deadline_at) for part in ranges)).subquery()
    picked = session.execute(
        select(merged.c.id).order_by(merged.c.deadline_at, merged.c.id).limit(PAGE_SIZE + 1)
    ).all()
    ids = [row[0] for row in picked[:PAGE_SIZE]]
    loaded = {ticket.id: ticket for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(ids)))}
    wanted_categories = {ticket.category_id for ticket in loaded.values()}
    names = {
        row.id: row for row in session.scalars(select(Category).where(Category.id.in_(wanted_categories)))
    }
    rows = [_row(loaded[ticket_id], names[loaded[ticket_id].category_id], clock, now) for ticket_id in ids]
    last = loaded[ids[-1]] if len(picked) > PAGE_SIZE else None
    cursor = f"{last.deadline_at.isoformat()}|{last.id}" if last is not None else None
    return QueuePage(rows, cursor, _counts(session, scope, clock, now))


def _department(organization: int | None) -> list[ColumnElement[bool]]:
    return [] if organization is None else [Ticket.organization_id == organization]


def _scope(principal: Principal) -> list[int] | None:
    if is_operator(principal):
        return None
    mine = sorted(principal.organizations(HANDLE))
    if not mine:
        raise Forbidden(_("The console is for department staff and the operator."), slug="staff-only")
    return mine


def _conditions(
    session: Session, wanted: QueueFilter, clock: Clock, now: datetime
) -> list[ColumnElement[bool]]:
    """The filters besides department and status (which choose the index ranges)."""
    conditions: list[ColumnElement[bool]] = []
    if wanted.due == "overdue":
        conditions += [Ticket.deadline_at <= now, Ticket.status.in_(OPEN_STATUSES)]
    elif wanted.due == "warning":
        conditions += [
            Ticket.deadline_at > now,
            Ticket.deadline_at <= _warning_until(clock, now),
            Ticket.status.in_(OPEN_STATUSES),
        ]
    if wanted.category:
        codes = session.scalars(
            select(Category.id).where(
                or_(Category.code == wanted.category, Category.code.startswith(wanted.category + "."))
            )
        ).all()
        conditions.append(Ticket.category_id.in_(codes))
    if wanted.type:
        conditions.append(Ticket.type == wanted.type)
    return conditions


def _warning_until(clock: Clock, now: datetime) -> datetime:
    """Tickets due up to this instant are in their warning days (see tickets.due_state)."""
    today = now.astimezone(ZoneInfo(clock.tz)).date()
    return datetime.combine(
        add_workdays(today, clock.settings.warn_days, clock.tz), time(), ZoneInfo(clock.tz)
    )


def _counts(session: Session, scope: list[int] | None, clock: Clock, now: datetime) -> dict[str, int]:
    """Open tickets, and how many of them are overdue or in their warning days: one pass over the index."""
    warning_until = _warning_until(clock, now)
    statement = select(
        func.count(),
        func.sum(case((Ticket.deadline_at <= now, 1), else_=0)),
        func.sum(case((and_(Ticket.deadline_at > now, Ticket.deadline_at <= warning_until), 1), else_=0)),
    ).where(Ticket.status.in_(OPEN_STATUSES))
    if scope is not None:
        statement = statement.where(Ticket.organization_id.in_(scope))
    total, overdue, warning = session.execute(statement).one()
    return {"open": int(total or 0), "overdue": int(overdue or 0), "warning": int(warning or 0)}


def _cursor(text: str) -> tuple[datetime, int]:
    try:
        moment, _sep, ticket_id = text.rpartition("|")
        deadline = datetime.fromisoformat(moment)
        if deadline.tzinfo is None:
            raise ValueError(text)
        return deadline, int(ticket_id)
    except ValueError as exc:
        raise ValidationProblem(
            _("The page link is broken; start from the first page."), field="after"
        ) from exc


def _row(ticket: Ticket, category: Category, clock: Clock, now: datetime) -> QueueRow:
    return QueueRow(
        number=ticket.number,
        type=ticket.type,
        category=category.code,
        category_name=category.name_zh,
        description=ticket.description,
        status=ticket.status,
        due=due_state(ticket, clock, now),
        deadline_at=ticket.deadline_at,
        deadline_local=f"{ticket.deadline_at.astimezone(ZoneInfo(clock.tz)):%Y-%m-%d %H:%M}",
        emergency=ticket.emergency,
        department_id=ticket.organization_id,
    )


def pending_extension(session: Session, ticket: Ticket) -> Extension | None:
    """The extension request waiting for the operator's decision, if any."""
    return session.scalar(
        select(Extension).where(Extension.ticket_id == ticket.id, Extension.status == "pending")
    )


def dispatch_targets(session: Session) -> list[tuple[str, str]]:
    """(code, name) of the departments the category tree routes to: whom the operator may dispatch to."""
    ids = session.scalars(
        select(Category.organization_id).where(Category.organization_id.is_not(None)).distinct()
    ).all()
    found = [
        get_organization(session, organization_id) for organization_id in ids if organization_id is not None
    ]
    return sorted((organization.code, organization.name) for organization in found)
