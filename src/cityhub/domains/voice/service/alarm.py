"""Who is told about an urgent ticket: the staff on duty for an emergency, department heads and the
hotline for an escalation. Shared by intake, the emergency watch and the deadline watch."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.identity import Notice, accounts_holding, notify
from cityhub.domains.voice.models import Duty, Ticket, TicketEvent
from cityhub.kernel.db import utcnow
from cityhub.kernel.i18n import lazy_gettext as _l

HANDLE = "voice.tickets.handle"
DISPATCH = "voice.tickets.dispatch"
ESCALATION = "voice.tickets.escalation"

EMERGENCY = (
    _l("Emergency %(number)s: %(category)s"),
    _l("%(address)s — %(description)s Acknowledge it on the emergency board."),
)


def on_duty(session: Session, organization_id: int | None, at: datetime) -> list[int]:
    """Accounts on duty at ``at`` for the department (or, with None, for the hotline)."""
    holder = (
        Duty.organization_id.is_(None) if organization_id is None else Duty.organization_id == organization_id
    )
    rows = session.scalars(select(Duty.account_id).where(holder, Duty.starts_at <= at, Duty.ends_at > at))
    return sorted(set(rows))


def sound(session: Session, ticket: Ticket, category_name: str) -> list[int]:
    """Tell the department's and the hotline's staff on duty about a new emergency at once; when nobody is
    on duty, every member of the department's staff (or every operator) hears it. The accounts told."""
    now = utcnow()
    recipients: set[int] = set()
    if ticket.organization_id is not None:
        recipients |= set(
            on_duty(session, ticket.organization_id, now)
            or accounts_holding(session, HANDLE, ticket.organization_id)
        )
    recipients |= set(on_duty(session, None, now) or accounts_holding(session, DISPATCH))
    params = {
        "number": ticket.number,
        "category": category_name,
        "address": ticket.address or f"{ticket.lat}, {ticket.lon}",
        "description": ticket.description[:200],
    }
    tell(session, recipients, Notice("voice.emergency", *EMERGENCY, params, "/console/voice/emergencies"))
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            actor="system:alarm",
            action="alarm",
            from_status=ticket.status,
            to_status=ticket.status,
            note=", ".join(str(account) for account in sorted(recipients)),
            public=False,
            at=now,
        )
    )
    return sorted(recipients)


def escalation_recipients(session: Session, organization_id: int | None) -> set[int]:
    """Department heads of the handling department (its staff when it has no head) and the operators."""
    recipients: set[int] = set()
    if organization_id is not None:
        recipients |= set(
            accounts_holding(session, ESCALATION, organization_id)
            or accounts_holding(session, HANDLE, organization_id)
        )
    return recipients | set(accounts_holding(session, DISPATCH))


def tell(session: Session, accounts: Iterable[int], notice: Notice) -> None:
    for account_id in sorted(set(accounts)):
        notify(session, account_id, notice)
