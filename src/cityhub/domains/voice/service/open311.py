"""Open311 GeoReport v2 over the 12345 workflow: categories are services (their questions are service
attributes), tickets are service requests. Requests posted here enter the same workflow as the app's and
the hotline's (channel ``open311``); the public lists show no reporter, and only the ticket types the
operator publishes (reports 举报 stay confidential).

Status: ``open`` while the city works on it, ``closed`` once answered, closed or merged (status_notes says
how). Lists keep the spec's 90-day rule; ``page``/``page_size`` and per-request ``notes`` (the public
timeline) are the common extensions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal, can_citywide, get_organization
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import Category, Ticket, TicketEvent
from cityhub.domains.voice.service.categories import attributes_of
from cityhub.domains.voice.service.tickets import Clock, file_ticket
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Forbidden, NotFound, Problem, ValidationProblem
from cityhub.kernel.i18n import get_locale
from cityhub.kernel.i18n import gettext as _

SUBMIT = "voice.open311.submit"
WINDOW = timedelta(days=90)
MAX_PAGE_SIZE = 1000
CLOSED = ("replied", "closed", "merged")


@dataclass
class RequestForm:
    """A POST requests body as the client sent it (form-encoded), before any checks."""

    service_code: str = ""
    lat: str = ""
    long: str = ""
    address_string: str = ""
    address_id: str = ""
    description: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    email: str = ""
    media_url: str = ""
    attributes: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestsQuery:
    service_request_ids: Sequence[str] = ()
    service_codes: Sequence[str] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: Sequence[str] = ()
    page: int = 1
    page_size: int = MAX_PAGE_SIZE
    with_notes: bool = False


def _iso(moment: datetime | None, tz: str) -> str | None:
    return moment.astimezone(ZoneInfo(tz)).isoformat(timespec="seconds") if moment else None


def _name(category: Category) -> str:
    return category.name_en if get_locale().startswith("en") else category.name_zh


# -- services ------------------------------------------------------------------------------------------------


def services(session: Session) -> list[dict[str, Any]]:
    """Every leaf of the classification tree, grouped under its top-level branch."""
    rows = session.scalars(select(Category).order_by(Category.code)).all()
    parents = {row.parent_id for row in rows if row.parent_id is not None}
    by_code = {row.code: row for row in rows}
    listed = []
    for row in rows:
        if row.id in parents:
            continue
        top = by_code.get(row.code.split(".")[0])
        listed.append(
            {
                "service_code": row.code,
                "service_name": _name(row),
                "description": row.description or _name(row),
                "metadata": bool(row.attributes),
                "type": "realtime",
                "keywords": ",".join(dict.fromkeys([row.name_zh, row.name_en])),
                "group": _name(top) if top is not None and top is not row else None,
            }
        )
    return listed


def definition(session: Session, code: str) -> dict[str, Any]:
    category = _service(session, code)
    attributes = []
    for position, attribute in enumerate(attributes_of(category), start=1):
        attributes.append(
            {
                "variable": attribute.variable,
                "code": attribute.code,
                "datatype": attribute.datatype,
                "required": attribute.required,
                "datatype_description": attribute.datatype_description or None,
                "order": attribute.order or position,
                "description": attribute.description,
                "values": [{"key": value.key, "name": value.name} for value in attribute.values],
            }
        )
    return {"service_code": category.code, "attributes": attributes}


def _service(session: Session, code: str) -> Category:
    category = session.scalar(select(Category).where(Category.code == code))
    if category is None:
        raise NotFound(_("Service %(code)s does not exist.", code=code))
    return category


# -- creating ------------------------------------------------------------------------------------------------


def submit(session: Session, principal: Principal, form: RequestForm, clock: Clock) -> list[dict[str, Any]]:
    """File a service request as a ticket; answers its id, the token and what to expect."""
    if not can_citywide(principal, SUBMIT):
        raise Forbidden(_("This api_key may not submit service requests."), slug="open311-submit")
    if not form.service_code:
        raise ValidationProblem(_("service_code is required."), field="service_code")
    category = _service(session, form.service_code)
    given = _ticket_in(category, form, clock)
    ticket = file_ticket(session, principal, given, clock, channel="open311")
    notice = _("We will answer by %(deadline)s.", deadline=_iso(ticket.deadline_at, clock.tz))
    return [{"service_request_id": ticket.number, "token": ticket.token, "service_notice": notice}]


def _ticket_in(category: Category, form: RequestForm, clock: Clock) -> schemas.Open311TicketIn:
    has_point = bool(form.lat or form.long)
    if not (has_point or form.address_string or form.address_id):
        raise ValidationProblem(_("Give lat and long, address_string or address_id."), field="lat")
    address = form.address_string or (f"address_id {form.address_id}" if form.address_id else "")
    description = form.description.strip() or f"{category.name_zh}: {address or f'{form.lat}, {form.long}'}"
    try:
        return schemas.Open311TicketIn(
            type=clock.settings.open311_ticket_type,
            category=category.code,
            description=description,
            address=address,
            lon=float(form.long) if has_point else None,
            lat=float(form.lat) if has_point else None,
            attributes=dict(form.attributes),
            reporter_name=f"{form.last_name}{form.first_name}".strip() or form.email,
            reporter_phone=form.phone or form.email,
            media_url=form.media_url,
        )
    except ValueError as exc:  # a float() that failed, or pydantic's ValidationError (a ValueError too)
        raise ValidationProblem(_explain(exc)) from exc


def _explain(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        names = {"lon": "long", "category": "service_code"}
        described = []
        for error in exc.errors():
            where = str(error["loc"][0]) if error["loc"] else "request"
            described.append(f"{names.get(where, where)}: {error['msg']}")
        return "; ".join(described)
    return _("lat and long must be numbers.")


def by_token(session: Session, token: str) -> list[dict[str, Any]]:
    ticket = session.scalar(select(Ticket).where(Ticket.token == token))
    if ticket is None:
        raise NotFound(_("Token %(token)s does not exist.", token=token))
    return [{"service_request_id": ticket.number, "token": token}]


# -- reading -------------------------------------------------------------------------------------------------


def find(session: Session, query: RequestsQuery, clock: Clock) -> list[dict[str, Any]]:
    """Published requests matching the query; ids override every other filter, as the spec says."""
    statement = _published(clock)
    if query.service_request_ids:
        statement = statement.where(Ticket.number.in_(query.service_request_ids))
    else:
        end = query.end or (query.start + WINDOW if query.start else utcnow())
        start = query.start or end - WINDOW
        if end - start > WINDOW:
            raise ValidationProblem(
                _("start_date and end_date may be at most 90 days apart."), field="start_date"
            )
        statement = statement.where(Ticket.created_at >= start, Ticket.created_at <= end)
        if query.service_codes:
            statement = statement.join(Category, Category.id == Ticket.category_id).where(
                Category.code.in_(query.service_codes)
            )
        if query.statuses:
            wanted = set(query.statuses)
            if wanted == {"open"}:
                statement = statement.where(Ticket.status.not_in(CLOSED))
            elif wanted == {"closed"}:
                statement = statement.where(Ticket.status.in_(CLOSED))
    rows = session.scalars(
        statement.order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .offset((query.page - 1) * query.page_size)
        .limit(query.page_size)
    ).all()
    return _shapes(session, rows, clock, query.with_notes)


def one(session: Session, number: str, clock: Clock) -> list[dict[str, Any]]:
    ticket = session.scalar(_published(clock).where(Ticket.number == number))
    if ticket is None:
        raise NotFound(_("Service request %(id)s does not exist.", id=number))
    return _shapes(session, [ticket], clock, with_notes=True)


def _published(clock: Clock) -> Select[Ticket]:
    return select(Ticket).where(Ticket.type.in_(clock.settings.open311_published_types))


def _shapes(session: Session, rows: Sequence[Ticket], clock: Clock, with_notes: bool) -> list[dict[str, Any]]:
    categories = {row.id: row for row in session.scalars(select(Category))}
    agencies: dict[int, str] = {}
    notes: dict[int, list[dict[str, Any]]] = {}
    if with_notes and rows:
        events = session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id.in_([row.id for row in rows]), TicketEvent.public.is_(True))
            .order_by(TicketEvent.id)
        )
        for event in events:
            notes.setdefault(event.ticket_id, []).append(
                {
                    "datetime": _iso(event.at, clock.tz),
                    "status": "closed" if event.to_status in CLOSED else "open",
                    "type": event.action,
                    "description": event.note or None,
                }
            )
    shaped = []
    for row in rows:
        category = categories[row.category_id]
        if row.organization_id is not None and row.organization_id not in agencies:
            agencies[row.organization_id] = get_organization(session, row.organization_id).name
        closed = row.status in CLOSED
        request: dict[str, Any] = {
            "service_request_id": row.number,
            "status": "closed" if closed else "open",
            "status_notes": _status_notes(session, row),
            "service_name": _name(category),
            "service_code": category.code,
            "description": row.description,
            "agency_responsible": agencies.get(row.organization_id) if row.organization_id else None,
            "service_notice": None,
            "requested_datetime": _iso(row.created_at, clock.tz),
            "updated_datetime": _iso(row.closed_at or row.replied_at or row.updated_at, clock.tz),
            "expected_datetime": None if closed else _iso(row.deadline_at, clock.tz),
            "address": row.address or None,
            "address_id": None,
            "zipcode": None,
            "lat": row.lat,
            "long": row.lon,
            "media_url": row.media_url or None,
        }
        if with_notes:
            request["notes"] = notes.get(row.id, [])
        shaped.append(request)
    return shaped


def _status_notes(session: Session, ticket: Ticket) -> str | None:
    if ticket.status == "merged" and ticket.merged_into_id is not None:
        target = session.get_one(Ticket, ticket.merged_into_id)
        return _("Merged into %(number)s, a report of the same problem.", number=target.number)
    return ticket.reply or None


def refused(problem: Problem) -> tuple[int, list[dict[str, Any]]]:
    """The spec's error answer for a problem: 403 for a bad or missing api_key, 404, 400 for the rest."""
    status = {401: 403, 403: 403, 404: 404, 405: 405, 429: 429}.get(problem.status, 400)
    if problem.status >= 500:
        status = problem.status
    description = problem.detail or problem.title or problem.slug
    errors = problem.extensions.get("errors")
    if isinstance(errors, list) and errors:
        described = []
        for error in errors:
            if isinstance(error, dict):
                where = error.get("field") or ".".join(str(part) for part in error.get("location", []))
                described.append(f"{where}: {error.get('detail') or error.get('message')}")
        description = f"{description} {'; '.join(described)}".strip()
    return status, [{"code": status, "description": str(description)}]
