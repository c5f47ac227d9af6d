"""Resident pages of the hotline: report a problem with a map pin, my tickets, one ticket with its timeline
and the callback form once the department answered."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from cityhub.domains.identity import SignedIn, units_in_scope
from cityhub.domains.voice import schemas
from cityhub.domains.voice.service import categories, tickets
from cityhub.domains.voice.service.tickets import Clock
from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel.errors import Problem
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.pagination import PageParams
from cityhub.kernel.settings import domain_settings
from cityhub.kernel.web import AppSettings, CsrfChecked, DbSession, render

router = APIRouter()
TYPE_LABELS = {
    "consultation": _l("Question"),
    "help": _l("Request for help"),
    "suggestion": _l("Suggestion"),
    "complaint": _l("Complaint"),
    "report": _l("Report of wrongdoing"),
}
STATUS_LABELS = {
    "received": _l("Received"),
    "dispatched": _l("Passed to the department"),
    "handling": _l("Being handled"),
    "replied": _l("Answered"),
    "closed": _l("Closed"),
    "merged": _l("Merged"),
}
ACTION_LABELS = {
    "received": _l("Received"),
    "dispatched": _l("Passed to the department"),
    "signed": _l("The department took it on"),
    "replied": _l("The department answered"),
    "callback": _l("Your verdict"),
    "merged": _l("Merged with the same problem reported earlier"),
}


def _clock(settings: Any) -> Clock:
    return Clock(domain_settings(VoiceSettings), settings.timezone)


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    labels = {"types": TYPE_LABELS, "statuses": STATUS_LABELS, "actions": ACTION_LABELS}
    return render(request, f"voice/{name}", {**labels, **context}, status_code)


@router.get("/voice")
def my_tickets(request: Request, user: SignedIn, session: DbSession, settings: AppSettings) -> Response:
    found, _total = tickets.queue(session, user, None, PageParams(limit=100), _clock(settings))
    mine = [ticket for ticket in found if ticket.reporter is None]  # staff see their queue elsewhere
    return _page(request, "mine.html", {"tickets": mine})


@router.get("/voice/report")
def report_page(request: Request, user: SignedIn, session: DbSession) -> Response:
    return _report_form(request, session, {}, None)


def _report_form(request: Request, session: Any, values: dict[str, str], problem: Problem | None) -> Response:
    outlines = [
        {"name": unit.name, "boundary": unit.boundary}
        for unit in session.scalars(units_in_scope(["/"]))
        if unit.kind == "community" and unit.boundary
    ]
    context = {
        "categories": [c for c in categories.categories(session) if "." in c.code or c.code == "99"],
        "values": values,
        "problem": problem,
        "outlines": json.dumps(outlines, ensure_ascii=False),
    }
    return _page(request, "report.html", context, 422 if problem else 200)


@router.post("/voice/report", dependencies=[CsrfChecked])
def report(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    type: Annotated[str, Form(max_length=20)],
    category: Annotated[str, Form(max_length=32)],
    description: Annotated[str, Form(max_length=4000)],
    address: Annotated[str, Form(max_length=400)] = "",
    lon: Annotated[str, Form(max_length=30)] = "",
    lat: Annotated[str, Form(max_length=30)] = "",
) -> Response:
    values = {
        "type": type,
        "category": category,
        "description": description,
        "address": address,
        "lon": lon,
        "lat": lat,
    }
    try:
        given = schemas.TicketIn.model_validate(
            {**values, "lon": float(lon) if lon else None, "lat": float(lat) if lat else None}
        )
        made = tickets.intake(session, user, given, _clock(settings))
    except (ValidationError, ValueError) as exc:
        return _report_form(request, session, values, Problem(str(exc).splitlines()[0][:300], status=422))
    except Problem as problem:
        return _report_form(request, session, values, problem)
    return RedirectResponse(f"/voice/tickets/{made.number}", status_code=303)


@router.get("/voice/tickets/{number}")
def ticket_page(
    request: Request, user: SignedIn, session: DbSession, settings: AppSettings, number: str
) -> Response:
    clock = _clock(settings)
    ticket = tickets.ticket_out(session, user, tickets.get_ticket(session, user, number), clock)
    return _page(request, "ticket.html", {"ticket": ticket})


@router.post("/voice/tickets/{number}/callback", dependencies=[CsrfChecked])
def callback(
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    number: str,
    level: Annotated[int, Form(ge=1, le=5)],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    tickets.callback(
        session, user, number, schemas.CallbackIn(level=level, comment=comment), _clock(settings)
    )
    return RedirectResponse(f"/voice/tickets/{number}", status_code=303)
