"""Resident pages of the hotline: report a problem with a map pin, photos and the category's questions (with
knowledge-base answers and reports of the same problem nearby offered as one types), my tickets, one ticket
with its timeline and the callback form once the department answered, the public knowledge base; the
staff's live emergency board; and participation: proposals with supports and comments, surveys, city
projects with their ratings and progress, and the moderators' queue."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import ValidationError

from cityhub.domains.identity import PageUser, Principal, SignedIn, units_in_scope
from cityhub.domains.voice import schemas
from cityhub.domains.voice.service import (
    assessment,
    categories,
    console,
    emergencies,
    knowledge,
    nearby,
    projects,
    proposals,
    surveys,
    tickets,
)
from cityhub.domains.voice.service.tickets import Clock
from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel.errors import Forbidden, NotFound, Problem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.pagination import Page, PageParams, Paging
from cityhub.kernel.settings import domain_settings
from cityhub.kernel.uploads import Upload, read_form
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
    "acknowledged": _l("Staff on duty are on their way"),
    "answered_from_knowledge_base": _l("Answered from the knowledge base"),
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
    return _report_form(request, session, {}, {}, None)


def _report_form(
    request: Request,
    session: Any,
    values: dict[str, str],
    answers: dict[str, list[str]],
    problem: Problem | None,
) -> Response:
    outlines = [
        {"name": unit.name, "boundary": unit.boundary}
        for unit in session.scalars(units_in_scope(["/"]))
        if unit.kind == "community" and unit.boundary
    ]
    choices = [c for c in categories.categories(session) if "." in c.code or c.code == "99"]
    chosen = next((c for c in choices if c.code == values.get("category")), choices[0] if choices else None)
    context = {
        "categories": choices,
        "questions": chosen.attributes if chosen else [],
        "answers": answers,
        "values": values,
        "problem": problem,
        "outlines": json.dumps(outlines, ensure_ascii=False),
        "max_photos": tickets.MAX_PHOTOS,
    }
    return _page(request, "report.html", context, 422 if problem else 200)


@router.get("/voice/report/questions")
def report_questions(
    request: Request, user: SignedIn, session: DbSession, category: Annotated[str, Query(max_length=32)] = ""
) -> Response:
    """The chosen category's own questions (htmx fragment of the report form)."""
    chosen = next((c for c in categories.categories(session) if c.code == category), None)
    return _page(
        request, "_questions.html", {"questions": chosen.attributes if chosen else [], "answers": {}}
    )


@router.get("/voice/report/suggestions")
def report_suggestions(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    description: Annotated[str, Query(max_length=4000)] = "",
    category: Annotated[str, Query(max_length=32)] = "",
    lon: Annotated[str, Query(max_length=30)] = "",
    lat: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    """Answers from the knowledge base and open reports of the same problem nearby (htmx fragment)."""
    found: list[schemas.NearbyOut] = []
    point = _point(lon, lat)
    if point is not None and category:
        try:
            found = nearby.nearby(session, category, *point, _clock(settings).settings)
        except Problem:
            found = []
    context = {
        "articles": knowledge.answers(session, description) if len(description) >= 2 else [],
        "nearby": found,
        "category": category,
        "description": description,
    }
    return _page(request, "_suggestions.html", context)


def _point(lon: str, lat: str) -> tuple[float, float] | None:
    try:
        return (float(lon), float(lat)) if lon and lat else None
    except ValueError:
        return None


async def posted_report(request: Request) -> tuple[dict[str, list[str]], list[Upload]]:
    fields, files = await read_form(request, max_files=tickets.MAX_PHOTOS + 1)
    return fields, files.get("photos", [])


PRIVATE_CACHE = {"Cache-Control": "private, max-age=3600"}
REPORT_FIELDS = ("type", "category", "description", "address", "lon", "lat", "answered_by_article")


@router.post("/voice/report", dependencies=[CsrfChecked])
def report(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    posted: Annotated[tuple[dict[str, list[str]], list[Upload]], Depends(posted_report)],
) -> Response:
    fields, photos = posted
    plain, answers = categories.split_answers(fields)
    values = {name: plain.get(name, "").strip() for name in REPORT_FIELDS}
    try:
        given = schemas.TicketIn.model_validate(
            {
                **{name: value for name, value in values.items() if value},
                "lon": float(values["lon"]) if values["lon"] else None,
                "lat": float(values["lat"]) if values["lat"] else None,
                "attributes": answers,
            }
        )
        folder = settings.var_dir / "uploads" / "voice"
        made = tickets.intake(session, user, given, _clock(settings), photos=tickets.Photos(photos, folder))
    except (ValidationError, ValueError) as exc:
        problem = Problem(str(exc).splitlines()[0][:300], status=422)
        return _report_form(request, session, values, answers, problem)
    except Problem as problem:
        return _report_form(request, session, values, answers, problem)
    return RedirectResponse(f"/voice/tickets/{made.number}", status_code=303)


@router.post("/voice/tickets/{number}/follow", dependencies=[CsrfChecked])
def follow(user: SignedIn, session: DbSession, settings: AppSettings, number: str) -> Response:
    nearby.follow(session, user, number, _clock(settings))
    return RedirectResponse(f"/voice/tickets/{number}", status_code=303)


@router.get("/voice/tickets/{number}/photos/{photo_id}")
def photo(user: SignedIn, session: DbSession, settings: AppSettings, number: str, photo_id: int) -> Response:
    found, path = tickets.photo_file(session, user, number, photo_id, settings.var_dir / "uploads" / "voice")
    return FileResponse(
        path, media_type=found.content_type, headers={"Cache-Control": "private, max-age=3600"}
    )


@router.get("/voice/knowledge")
def knowledge_page(
    request: Request, session: DbSession, q: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    """The hotline's answers to common questions, searchable by anyone."""
    if q.strip():
        found = knowledge.answers(session, q, limit=20)
    else:
        found, _total = knowledge.listing(session, PageParams(limit=50), include_drafts=False)
    return _page(request, "knowledge.html", {"articles": found, "q": q})


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


# -- the live emergency board (staff on duty, the operator) ------------------------------------------------


@router.get("/console/voice/emergencies")
def emergency_board(request: Request, user: SignedIn, session: DbSession) -> Response:
    return _page(request, "emergencies.html", {"alarms": emergencies.board(session, user)})


@router.get("/console/voice/emergencies/board")
def emergency_board_rows(request: Request, user: SignedIn, session: DbSession) -> Response:
    """The board's rows, polled by htmx every few seconds."""
    return _page(request, "_alarms.html", {"alarms": emergencies.board(session, user)})


@router.post("/console/voice/emergencies/{number}/acknowledge", dependencies=[CsrfChecked])
def acknowledge(user: SignedIn, session: DbSession, settings: AppSettings, number: str) -> Response:
    emergencies.acknowledge(session, user, number, _clock(settings))
    return RedirectResponse("/console/voice/emergencies", status_code=303)


# -- the department console --------------------------------------------------

DUE_LABELS = {
    "on_time": _l("On time"),
    "warning": _l("Due soon"),
    "overdue": _l("Overdue"),
    "done": _l("Done"),
}


@router.get("/console/voice")
def console_queue(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    status: Annotated[str, Query(max_length=12)] = "open",
    due: Annotated[str | None, Query(max_length=10)] = None,
    category: Annotated[str | None, Query(max_length=32)] = None,
    type: Annotated[str | None, Query(max_length=16)] = None,
    after: Annotated[str | None, Query(max_length=80)] = None,
) -> Response:
    """The queue: nearest deadline first, coloured by how close the deadline is, a keyset "next page"."""
    wanted = console.QueueFilter(status, due or None, category or None, type or None, after or None)
    page = console.queue(session, user, wanted, _clock(settings))
    context = {
        "page": page,
        "wanted": wanted,
        "dues": DUE_LABELS,
        "categories": categories.categories(session),
        "next_query": urlencode(
            {k: v for k, v in {**asdict(wanted), "after": page.next_cursor}.items() if v}
        ),
    }
    return _page(request, "console_queue.html", context)


@router.get("/console/voice/tickets/{number}")
def console_ticket(
    request: Request, user: SignedIn, session: DbSession, settings: AppSettings, number: str
) -> Response:
    clock = _clock(settings)
    found = tickets.get_ticket(session, user, number)
    if not tickets.handles(user, found):
        raise Forbidden(_("Only the department handling this ticket may do this."), slug="not-your-ticket")
    context = {
        "ticket": tickets.ticket_out(session, user, found, clock),
        "operator": tickets.is_operator(user),
        "extension": console.pending_extension(session, found),
        "departments": console.dispatch_targets(session),
        "dues": DUE_LABELS,
    }
    return _page(request, "console_ticket.html", context)


CONSOLE_STEPS = ("sign", "reply", "extension", "decision", "dispatch", "merge")


@router.post("/console/voice/tickets/{number}/{step}", dependencies=[CsrfChecked])
def console_step(
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    number: str,
    step: str,
    posted: Annotated[tuple[dict[str, list[str]], list[Upload]], Depends(posted_report)],
) -> Response:
    """One workflow step from the console's forms; the service checks who may take it."""
    fields = {name: values[-1] for name, values in posted[0].items() if values}
    clock = _clock(settings)
    try:
        if step == "sign":
            tickets.sign(session, user, number, clock)
        elif step == "reply":
            tickets.reply(session, user, number, schemas.ReplyIn(text=fields.get("text", "")), clock)
        elif step == "extension":
            given = schemas.ExtensionIn(days=fields.get("days", "0"), reason=fields.get("reason", ""))
            tickets.request_extension(session, user, number, given, clock)
        elif step == "decision":
            decided = schemas.ExtensionDecisionIn(
                approve=fields.get("approve") == "yes", note=fields.get("note", "")
            )
            tickets.decide_extension(session, user, number, decided, clock)
        elif step == "dispatch":
            sent = schemas.DispatchIn(department=fields.get("department", ""), note=fields.get("note", ""))
            tickets.dispatch(session, user, number, sent, clock)
        elif step == "merge":
            tickets.merge(session, user, number, schemas.MergeIn(into=fields.get("into", "")), clock)
        else:
            raise NotFound(_("No such step."))
    except ValidationError as exc:
        raise Problem(str(exc).splitlines()[0][:300], status=422) from exc
    return RedirectResponse(f"/console/voice/tickets/{number}", status_code=303)


@router.get("/console/voice/assessment")
def console_assessment(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
    department: Annotated[str | None, Query(max_length=64)] = None,
    period: Annotated[str | None, Query(max_length=12)] = None,
) -> Response:
    """Rates per department (coloured good / fair / poor), the daily trend and the categories (ECharts) and
    the heat grid of where reports come from (Leaflet). The operator's page is the city's dashboard: every
    department and the city's totals; department staff see their own department."""
    chosen = assessment.period_of(first, last, settings.timezone, period or None)
    found = assessment.assess(session, user, chosen, department or None)
    # the figures for the charts, embedded; "</" escaped so that the JSON stays inside its <script>
    data = json.dumps(assessment.as_json(found), ensure_ascii=False).replace("</", "<\\/")
    context = {
        "found": found,
        "data": data,
        "department": department or "",
        "grade": assessment.grade,
        "presets": PERIOD_LABELS,
        "departments": console.dispatch_targets(session) if tickets.is_operator(user) else [],
    }
    return _page(request, "console_assessment.html", context)


PERIOD_LABELS = {
    "month": _l("This month"),
    "last_month": _l("Last month"),
    "quarter": _l("This quarter"),
    "custom": _l("Custom"),
}


# -- participation: proposals, surveys, projects and moderation ----------------------------------------------

STATE_LABELS = {
    "open": _l("Collecting supports"),
    "evaluating": _l("Being evaluated"),
    "accepted": _l("Accepted"),
    "rejected": _l("Not accepted"),
    "withdrawn": _l("Withdrawn"),
}
FLAG_LABELS = {
    "spam": _l("Spam or advertising"),
    "offensive": _l("Offensive or abusive"),
    "off_topic": _l("Off topic"),
    "other": _l("Something else"),
}


def _voice(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    return _page(request, name, {"states": STATE_LABELS, "flag_reasons": FLAG_LABELS, **context}, status_code)


def _person_of(user: Principal | None) -> int | None:
    return user.person_id if user is not None else None


@router.get("/voice/participate")
def participate(
    request: Request,
    user: PageUser,
    session: DbSession,
    paging: Paging,
    state: Annotated[str, Query(max_length=12)] = "",
    order: Annotated[Literal["supports", "newest"], Query()] = "supports",
) -> Response:
    """Have your say: surveys (the ended ones with their results), proposals (most supported or newest, a
    page at a time) and city projects to rate."""
    wanted_state = state if state in STATE_LABELS else None
    found, total = proposals.listing(session, user, paging, wanted_state, order)
    context = {
        "proposals": Page(items=found, total=total, limit=paging.limit, offset=paging.offset),
        "state": wanted_state or "",
        "order": order,
        "surveys": surveys.listing(session, user),
        "projects": projects.listing(session, _person_of(user)),
    }
    return _voice(request, "participate.html", context)


@router.get("/voice/proposals/new")
def proposal_form(request: Request, user: SignedIn) -> Response:
    return _voice(request, "proposal_new.html", {"values": {}, "problem": None})


@router.post("/voice/proposals", dependencies=[CsrfChecked])
def propose(
    request: Request,
    user: SignedIn,
    session: DbSession,
    title: Annotated[str, Form(max_length=400)] = "",
    body: Annotated[str, Form(max_length=16000)] = "",
) -> Response:
    values = {"title": title.strip(), "body": body.strip()}
    try:
        made = proposals.propose(session, user, schemas.ProposalIn(**values), domain_settings(VoiceSettings))
    except ValidationError as exc:
        problem = Problem(str(exc).splitlines()[0][:300], status=422)
        return _voice(request, "proposal_new.html", {"values": values, "problem": problem}, 422)
    except Problem as problem:
        return _voice(request, "proposal_new.html", {"values": values, "problem": problem}, problem.status)
    return RedirectResponse(f"/voice/proposals/{made.id}", status_code=303)


@router.get("/voice/proposals/{proposal_id}")
def proposal_page(request: Request, user: PageUser, session: DbSession, proposal_id: int) -> Response:
    found = proposals.one(session, user, proposal_id)
    thread, _total = proposals.comments(session, user, proposal_id, PageParams(limit=200))
    context = {
        "proposal": found,
        "comments": thread,
        "result": projects.detail(session, found.project, _person_of(user)) if found.project else None,
        "can_answer": user is not None and user.has(proposals.ANSWER),
        "support": proposals.supports_of(session, user, proposal_id, domain_settings(VoiceSettings))
        if user is not None
        else None,
    }
    return _voice(request, "proposal.html", context)


@router.post("/voice/proposals/{proposal_id}/support", dependencies=[CsrfChecked])
def support(
    request: Request,
    user: SignedIn,
    session: DbSession,
    proposal_id: int,
    withdraw: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    """Support (or, with withdraw=yes, take back the support); htmx swaps the support box in place."""
    settings = domain_settings(VoiceSettings)
    if withdraw == "yes":
        counts = proposals.unsupport(session, user, proposal_id, settings)
    else:
        counts = proposals.support(session, user, proposal_id, settings)
    if request.headers.get("HX-Request"):
        found = proposals.one(session, user, proposal_id)
        return _voice(request, "_support.html", {"proposal": found, "support": counts})
    return RedirectResponse(f"/voice/proposals/{proposal_id}", status_code=303)


@router.post("/voice/proposals/{proposal_id}/comments", dependencies=[CsrfChecked])
def comment(
    user: SignedIn,
    session: DbSession,
    proposal_id: int,
    body: Annotated[str, Form(min_length=1, max_length=4000)],
) -> Response:
    made = proposals.comment(session, user, proposal_id, schemas.CommentIn(body=body))
    return RedirectResponse(f"/voice/proposals/{proposal_id}#comment-{made.id}", status_code=303)


@router.post("/voice/proposals/{proposal_id}/flags", dependencies=[CsrfChecked])
def flag(
    user: SignedIn,
    session: DbSession,
    proposal_id: int,
    target: Annotated[str, Form(max_length=10)],
    target_id: Annotated[int, Form(ge=1)],
    reason: Annotated[str, Form(max_length=10)],
) -> Response:
    given = schemas.FlagIn.model_validate({"target": target, "id": target_id, "reason": reason})  # 422 if bad
    proposals.flag(session, user, given, domain_settings(VoiceSettings))
    return RedirectResponse(f"/voice/proposals/{proposal_id}?flagged=1", status_code=303)


@router.post("/voice/proposals/{proposal_id}/withdraw", dependencies=[CsrfChecked])
def withdraw(user: SignedIn, session: DbSession, proposal_id: int) -> Response:
    proposals.withdraw(session, user, proposal_id)
    return RedirectResponse(f"/voice/proposals/{proposal_id}", status_code=303)


@router.post("/voice/proposals/{proposal_id}/answer", dependencies=[CsrfChecked])
def answer(
    user: SignedIn,
    session: DbSession,
    proposal_id: int,
    state: Annotated[str, Form(max_length=12)],
    answer: Annotated[str, Form(max_length=8000)],
    project: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    given = schemas.ProposalAnswerIn.model_validate(  # a bad field answers 422 (cityhub.web.errors)
        {"state": state, "answer": answer, "project": project.strip() or None}
    )
    proposals.answer(session, user, proposal_id, given)
    return RedirectResponse(f"/voice/proposals/{proposal_id}", status_code=303)


@router.get("/voice/projects/{code}")
def project_page(request: Request, user: PageUser, session: DbSession, code: str) -> Response:
    found = projects.detail(session, code, _person_of(user))
    linked = proposals.several(session, user, found.proposals)
    return _voice(request, "project.html", {"project": found, "proposals": linked})


@router.post("/voice/projects/{code}/rating", dependencies=[CsrfChecked])
def rate_project(
    user: SignedIn,
    session: DbSession,
    code: str,
    level: Annotated[int, Form(ge=1, le=5)],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    projects.rate(session, user, code, schemas.ProjectRatingIn(level=level, comment=comment))
    return RedirectResponse(f"/voice/projects/{code}?rated=1", status_code=303)


@router.get("/voice/surveys/{code}")
def survey_page(request: Request, user: PageUser, session: DbSession, code: str) -> Response:
    """A survey: its form for a signed-in resident, and its results once answered or ended (public results
    are shown to anyone, signed in or not)."""
    return _survey_page(request, session, user, code, {}, None)


def _survey_page(
    request: Request,
    session: Any,
    user: Principal | None,
    code: str,
    values: dict[str, list[str]],
    problem: Problem | None,
) -> Response:
    found = surveys.one(session, user, code)
    results = None
    if found.answered or found.state == "closed" or (user is not None and user.has(surveys.MANAGE)):
        try:
            results = surveys.results(session, user, code)
        except Forbidden:  # results kept for the organisers
            results = None
    context = {"survey": found, "results": results, "values": values, "problem": problem}
    return _voice(request, "survey.html", context, problem.status if problem else 200)


async def posted_fields(request: Request) -> dict[str, list[str]]:
    fields, _files = await read_form(request, max_files=0)
    return fields


@router.post("/voice/surveys/{code}", dependencies=[CsrfChecked])
def answer_survey(
    request: Request,
    user: SignedIn,
    session: DbSession,
    code: str,
    fields: Annotated[dict[str, list[str]], Depends(posted_fields)],
) -> Response:
    found = surveys.one(session, user, code)
    try:
        surveys.answer(session, user, code, surveys.answers_from_form(found, fields))
    except Problem as problem:
        return _survey_page(request, session, user, code, fields, problem)
    return RedirectResponse(f"/voice/surveys/{code}", status_code=303)


@router.get("/console/voice/moderation")
def moderation(request: Request, user: SignedIn, session: DbSession) -> Response:
    found, total = proposals.flagged(session, user, PageParams(limit=100))
    return _voice(request, "console_moderation.html", {"items": found, "total": total})


@router.post("/console/voice/moderation/{target}/{target_id}", dependencies=[CsrfChecked])
def moderate(
    user: SignedIn,
    session: DbSession,
    target: str,
    target_id: int,
    hide: Annotated[str, Form(max_length=3)],
) -> Response:
    if target not in ("proposal", "comment"):
        raise NotFound(_("No such step."))
    decision = schemas.ModerationDecisionIn(hide=hide == "yes")
    proposals.moderate(session, user, target, target_id, decision)  # type: ignore[arg-type]
    return RedirectResponse("/console/voice/moderation", status_code=303)
