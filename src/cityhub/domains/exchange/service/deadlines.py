"""Owners' answer deadlines for departments' requests and people's applications to open data: the owner's
staff are reminded once when the deadline is a day away, and once it has passed the case is escalated to them
and to the operator. Each step happens once per case — a conditional update takes it, so two workers never
send it twice. (Objections have their own escalation in ``corrections``.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from cityhub.domains.exchange.models import OpenApplication, Request, Resource
from cityhub.domains.exchange.service.access import ADMINISTER, staff_of, tell
from cityhub.domains.identity import Notice, accounts_holding
from cityhub.kernel import audit
from cityhub.kernel.i18n import lazy_gettext as _l

REMIND_BEFORE = timedelta(days=1)
ACTOR = "system:exchange"


@dataclass(frozen=True)
class Awaited:
    """A kind of case waiting for an owner's answer: its table, its words, the console's section."""

    kind: str  # request | application
    model: type[Request] | type[OpenApplication]
    reminder: tuple[Any, Any]
    overdue: tuple[Any, Any]
    section: str


KINDS = (
    Awaited(
        "request",
        Request,
        (
            _l("Answer due tomorrow: a request for %(resource)s"),
            _l("A department's request for %(resource)s is due to be answered by %(due)s."),
        ),
        (
            _l("Request overdue: %(resource)s"),
            _l("A department's request for %(resource)s was due %(due)s and is still unanswered."),
        ),
        "requests",
    ),
    Awaited(
        "application",
        OpenApplication,
        (
            _l("Answer due tomorrow: an application for %(resource)s"),
            _l("An application to use %(resource)s is due to be answered by %(due)s."),
        ),
        (
            _l("Application overdue: %(resource)s"),
            _l("An application to use %(resource)s was due %(due)s and is still unanswered."),
        ),
        "applications",
    ),
)


def chase(session: Session, now: datetime, tz: str) -> int:
    """Remind and escalate every pending case whose time has come; how many notices went out (per case)."""
    sent = 0
    for awaited in KINDS:
        model = awaited.model
        # Escalation first: a case found already past its deadline is escalated, not reminded
        sent += _step(session, awaited, model.escalated_at, model.due_at <= now, now, tz)
        sent += _step(session, awaited, model.reminded_at, model.due_at <= now + REMIND_BEFORE, now, tz)
    return sent


def _step(
    session: Session,
    awaited: Awaited,
    marker: InstrumentedAttribute[datetime | None],
    due: Any,
    now: datetime,
    tz: str,
) -> int:
    model = awaited.model
    cases: Sequence[Any] = session.scalars(
        select(model).where(model.status == "pending", due, marker.is_(None))
    ).all()
    escalating = marker.key == "escalated_at"
    taken = 0
    for case in cases:
        claimed = session.execute(
            update(model)
            .where(model.id == case.id, marker.is_(None))
            .values({marker.key: now})
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another worker took this step
        if escalating and case.reminded_at is None:  # past due already: the reminder is moot
            session.execute(update(model).where(model.id == case.id).values(reminded_at=now))
        resource = session.get_one(Resource, case.resource_id)
        accounts = set(staff_of(session, resource.provider_org_id))
        if escalating:
            accounts |= set(accounts_holding(session, ADMINISTER))
        words = awaited.overdue if escalating else awaited.reminder
        topic = f"exchange.{awaited.kind}.{'overdue' if escalating else 'reminder'}"
        params = {"resource": resource.name, "due": case.due_at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d")}
        tell(session, sorted(accounts), Notice(topic, *words, params, f"/console/exchange#{awaited.section}"))
        if escalating:
            audit.record(
                session,
                actor=ACTOR,
                action=f"exchange.{awaited.kind}.escalated",
                object_type=model.__tablename__,
                object_id=str(case.id),
                details={"due_at": case.due_at.isoformat()},
            )
        taken += 1
    return taken
