"""Duplicate prevention at intake (FixMyStreet practice): open reports of the same category within
``duplicate_radius_m`` and ``duplicate_window_days`` are offered before a new ticket is filed, and the
resident may follow one instead of reporting again. Followers hear of every step as the reporter does.

Nearness uses the kernel's H3 proximity index (``Ticket.cell``) on both databases, then the exact distance.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import OPEN_STATUSES, Category, Follower, Ticket
from cityhub.domains.voice.service.tickets import NEARBY_RES, Clock, get_ticket_public, ticket_out
from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel import audit
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Conflict, Forbidden, ValidationProblem
from cityhub.kernel.geo import cells_within, haversine_m
from cityhub.kernel.i18n import gettext as _

MAX_SUGGESTIONS = 5


def nearby(
    session: Session, category_code: str, lon: float, lat: float, settings: VoiceSettings
) -> list[schemas.NearbyOut]:
    """Open tickets of the category close to (lon, lat), nearest first; only what the public may read."""
    category = session.scalar(select(Category).where(Category.code == category_code))
    if category is None:
        raise ValidationProblem(_("Category %(code)s does not exist.", code=category_code), field="category")
    since = utcnow() - timedelta(days=settings.duplicate_window_days)
    cells = cells_within(lon, lat, settings.duplicate_radius_m, NEARBY_RES)
    candidates = session.scalars(
        select(Ticket).where(
            Ticket.cell.in_(cells),
            Ticket.category_id == category.id,
            Ticket.created_at >= since,
            Ticket.status.in_((*OPEN_STATUSES, "replied")),
            Ticket.merged_into_id.is_(None),
            Ticket.type.in_(settings.open311_published_types),  # what the public may read anyway
        )
    ).all()
    near = []
    for ticket in candidates:
        distance = haversine_m(lon, lat, ticket.lon or 0.0, ticket.lat or 0.0)
        if distance <= settings.duplicate_radius_m:
            near.append((distance, ticket))
    near.sort(key=lambda pair: (pair[0], pair[1].id))
    return [_nearby_out(session, category, ticket, distance) for distance, ticket in near[:MAX_SUGGESTIONS]]


def _nearby_out(session: Session, category: Category, ticket: Ticket, distance: float) -> schemas.NearbyOut:
    followers = session.scalar(select(func.count()).where(Follower.ticket_id == ticket.id)) or 0
    return schemas.NearbyOut(
        number=ticket.number,
        category_name=category.name_zh,
        description=ticket.description,
        status=ticket.status,
        distance_m=round(distance),
        created_at=ticket.created_at,
        followers=followers,
    )


def follow(session: Session, principal: Principal, number: str, clock: Clock) -> schemas.TicketOut:
    """Follow an open ticket instead of reporting the same problem; following twice answers 409."""
    if principal.kind != "account":
        raise Forbidden(_("Only a resident's own account can follow a ticket."), slug="residents-only")
    ticket = get_ticket_public(session, number)
    if ticket.account_id == principal.id:
        raise Conflict(_("You reported this ticket yourself."), slug="own-ticket")
    try:
        with session.begin_nested():
            session.add(Follower(ticket_id=ticket.id, account_id=principal.id))
    except IntegrityError as exc:
        raise Conflict(_("You already follow this ticket."), slug="already-following") from exc
    audit.record(
        session,
        actor=principal.actor,
        action="voice.ticket.followed",
        object_type="voice_ticket",
        object_id=ticket.number,
        details={},
    )
    return ticket_out(session, principal, ticket, clock)
