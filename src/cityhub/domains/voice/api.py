"""Voice JSON API under /api/v1/voice: categories, ticket intake (resident app and operator phone desk),
the department queue and the workflow steps; participation: projects with ratings and results, proposals
with supports, comments and moderation, and surveys."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import FileResponse

from cityhub.domains.identity import (
    CurrentPrincipal,
    Principal,
    can_citywide,
    optional_principal,
    require_permission,
)
from cityhub.domains.voice import schemas
from cityhub.domains.voice.service import (
    assessment,
    categories,
    emergencies,
    knowledge,
    nearby,
    projects,
    proposals,
    surveys,
    tickets,
)
from cityhub.domains.voice.service.tickets import DISPATCH, HANDLE, Clock
from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel.pagination import Page, Paging
from cityhub.kernel.settings import domain_settings
from cityhub.kernel.uploads import Upload, read_form
from cityhub.kernel.web import AppSettings, DbSession

router = APIRouter()
Handler = Annotated[Principal, Depends(require_permission(HANDLE))]
Operator = Annotated[Principal, Depends(require_permission(DISPATCH))]
Number = Annotated[str, "ticket number"]


def clock(settings: AppSettings) -> Clock:
    return Clock(domain_settings(VoiceSettings), settings.timezone)


Deadlines = Annotated[Clock, Depends(clock)]


@router.get(
    "/categories", response_model=list[schemas.CategoryOut], summary="The classification tree (public)"
)
def list_categories(session: DbSession) -> list[schemas.CategoryOut]:
    return categories.categories(session)


@router.post("/categories", summary="Create or update categories by code (operator; all or nothing)")
def import_categories(
    body: schemas.CategoriesIn,
    principal: Annotated[Principal, Depends(require_permission(categories.MANAGE))],
    session: DbSession,
) -> dict[str, int]:
    return categories.import_categories(session, principal, body)


@router.post(
    "/tickets",
    response_model=schemas.TicketOut,
    status_code=status.HTTP_201_CREATED,
    summary="Report a problem, complain, suggest or ask (a resident); dispatched at once by category",
)
def report(
    body: schemas.TicketIn, principal: CurrentPrincipal, session: DbSession, deadlines: Deadlines
) -> schemas.TicketOut:
    return tickets.intake(session, principal, body, deadlines)


@router.post(
    "/tickets/phone",
    response_model=schemas.TicketOut,
    status_code=status.HTTP_201_CREATED,
    summary="Type in a call to the hotline (operator)",
)
def phone(
    body: schemas.PhoneTicketIn, principal: Operator, session: DbSession, deadlines: Deadlines
) -> schemas.TicketOut:
    return tickets.intake(session, principal, body, deadlines, channel="phone")


@router.post(
    "/tickets/batch",
    response_model=list[schemas.TransferredOut],
    summary="Hand over up to 1000 tickets from another platform, all or nothing (voice.tickets.transfer)",
)
def transfer(
    body: schemas.TransferBatchIn, principal: CurrentPrincipal, session: DbSession, deadlines: Deadlines
) -> list[schemas.TransferredOut]:
    return tickets.transfer(session, principal, body, deadlines)


@router.get(
    "/tickets",
    response_model=Page[schemas.TicketOut],
    summary="My queue (department: its tickets; operator: all; resident: my reports), nearest deadline first",
)
def queue(
    principal: CurrentPrincipal,
    session: DbSession,
    paging: Paging,
    deadlines: Deadlines,
    ticket_status: Annotated[schemas.TicketStatus | None, Query(alias="status")] = None,
) -> Page[schemas.TicketOut]:
    found, total = tickets.queue(session, principal, ticket_status, paging, deadlines)
    return Page(items=found, total=total, limit=paging.limit, offset=paging.offset)


@router.get("/tickets/{number}", response_model=schemas.TicketOut, summary="One ticket with its timeline")
def ticket(
    number: Number, principal: CurrentPrincipal, session: DbSession, deadlines: Deadlines
) -> schemas.TicketOut:
    return tickets.ticket_out(session, principal, tickets.get_ticket(session, principal, number), deadlines)


@router.post(
    "/tickets/{number}/dispatch", response_model=schemas.TicketOut, summary="Dispatch by hand (operator)"
)
def dispatch(
    number: Number, body: schemas.DispatchIn, principal: Operator, session: DbSession, deadlines: Deadlines
) -> schemas.TicketOut:
    return tickets.dispatch(session, principal, number, body, deadlines)


@router.post(
    "/tickets/{number}/sign", response_model=schemas.TicketOut, summary="Sign for a ticket (department)"
)
def sign(number: Number, principal: Handler, session: DbSession, deadlines: Deadlines) -> schemas.TicketOut:
    return tickets.sign(session, principal, number, deadlines)


@router.post(
    "/tickets/{number}/extension",
    response_model=schemas.TicketOut,
    summary="Ask the operator for more working days (department)",
)
def extension(
    number: Number, body: schemas.ExtensionIn, principal: Handler, session: DbSession, deadlines: Deadlines
) -> schemas.TicketOut:
    return tickets.request_extension(session, principal, number, body, deadlines)


@router.post(
    "/tickets/{number}/extension/decision",
    response_model=schemas.TicketOut,
    summary="Approve or refuse the waiting extension request (operator)",
)
def extension_decision(
    number: Number,
    body: schemas.ExtensionDecisionIn,
    principal: Operator,
    session: DbSession,
    deadlines: Deadlines,
) -> schemas.TicketOut:
    return tickets.decide_extension(session, principal, number, body, deadlines)


@router.post(
    "/tickets/{number}/reply", response_model=schemas.TicketOut, summary="Answer the reporter (department)"
)
def reply(
    number: Number, body: schemas.ReplyIn, principal: Handler, session: DbSession, deadlines: Deadlines
) -> schemas.TicketOut:
    return tickets.reply(session, principal, number, body, deadlines)


@router.post(
    "/tickets/{number}/callback",
    response_model=schemas.TicketOut,
    summary="The reporter's verdict on the answer (reporter or operator): 1-2 reopen, 3-5 close",
)
def callback(
    number: Number,
    body: schemas.CallbackIn,
    principal: CurrentPrincipal,
    session: DbSession,
    deadlines: Deadlines,
) -> schemas.TicketOut:
    return tickets.callback(session, principal, number, body, deadlines)


@router.post(
    "/tickets/{number}/merge",
    response_model=schemas.TicketOut,
    summary="Merge a duplicate into a ticket (operator)",
)
def merge(
    number: Number, body: schemas.MergeIn, principal: Operator, session: DbSession, deadlines: Deadlines
) -> schemas.TicketOut:
    return tickets.merge(session, principal, number, body, deadlines)


# -- before filing: knowledge-base answers and reports of the same problem nearby ---------------------------


@router.get(
    "/suggestions",
    response_model=schemas.SuggestionsOut,
    summary="Knowledge-base answers to the text, and open reports of the category near the point",
)
def suggestions(
    session: DbSession,
    deadlines: Deadlines,
    text: Annotated[str, Query(max_length=4000)] = "",
    category: Annotated[str | None, Query(pattern=r"^[0-9]{2}(\.[0-9]{2}){0,3}$")] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
) -> schemas.SuggestionsOut:
    found = []
    if category is not None and lon is not None and lat is not None:
        found = nearby.nearby(session, category, lon, lat, deadlines.settings)
    return schemas.SuggestionsOut(articles=knowledge.answers(session, text), nearby=found)


@router.post(
    "/tickets/{number}/follow",
    response_model=schemas.TicketOut,
    summary="Follow an open report of the same problem instead of filing another (resident)",
)
def follow(
    number: Number, principal: CurrentPrincipal, session: DbSession, deadlines: Deadlines
) -> schemas.TicketOut:
    return nearby.follow(session, principal, number, deadlines)


def photos_dir(settings: AppSettings) -> Path:
    return settings.var_dir / "uploads" / "voice"


async def posted_photos(request: Request) -> list[Upload]:
    _fields, files = await read_form(request, max_files=tickets.MAX_PHOTOS + 1)
    return [upload for uploads in files.values() for upload in uploads]


PostedPhotos = Annotated[list[Upload], Depends(posted_photos)]


@router.post(
    "/tickets/{number}/photos",
    response_model=schemas.TicketOut,
    summary="Add PNG or JPEG photos to one's open report (multipart, field photos)",
)
def add_photos(
    number: Number,
    uploads: PostedPhotos,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: AppSettings,
    deadlines: Deadlines,
) -> schemas.TicketOut:
    photos = tickets.Photos(uploads, photos_dir(settings))
    return tickets.add_photos(session, principal, number, photos, deadlines)


@router.get("/tickets/{number}/photos/{photo_id}", summary="A photo (reporter and handling staff)")
def photo(
    number: Number, photo_id: int, principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> FileResponse:
    found, path = tickets.photo_file(session, principal, number, photo_id, photos_dir(settings))
    return FileResponse(
        path, media_type=found.content_type, headers={"Cache-Control": "private, max-age=3600"}
    )


# -- assessment ---------------------------------------------------------------------------------------------


@router.get(
    "/assessment", summary="Department figures for a period: response, on-time, resolution, satisfaction"
)
def assessment_figures(
    principal: Annotated[Principal, Depends(require_permission(assessment.VIEW))],
    session: DbSession,
    settings: AppSettings,
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
    department: Annotated[str | None, Query(max_length=64)] = None,
    period: Annotated[
        str | None, Query(max_length=12, description="month, last_month, quarter or custom (from/to)")
    ] = None,
) -> dict[str, Any]:
    """Received, response, on-time, resolution and satisfaction rates per department (the operator: every
    department and the city; department staff: their own), with daily, category, type and map breakdowns.
    The definitions are in docs/domains/voice.md."""
    chosen = assessment.period_of(first, last, settings.timezone, period)
    return assessment.as_json(assessment.assess(session, principal, chosen, department))


# -- emergencies -------------------------------------------------------------------------------------------


@router.get("/emergencies", response_model=list[schemas.AlarmOut], summary="The live emergency board")
def emergency_board(principal: Handler, session: DbSession) -> list[schemas.AlarmOut]:
    return emergencies.board(session, principal)


@router.post(
    "/tickets/{number}/acknowledge",
    response_model=schemas.TicketOut,
    summary="Take an emergency (staff on duty); the first click wins",
)
def acknowledge(
    number: Number, principal: Handler, session: DbSession, deadlines: Deadlines
) -> schemas.TicketOut:
    return emergencies.acknowledge(session, principal, number, deadlines)


@router.get("/duties", response_model=list[schemas.DutyOut], summary="The duty roster from now on")
def duties(principal: Handler, session: DbSession) -> list[schemas.DutyOut]:
    return emergencies.roster(session, principal)


@router.post(
    "/duties",
    response_model=schemas.DutyOut,
    status_code=status.HTTP_201_CREATED,
    summary="Put someone on duty (operator: any; department staff: their department)",
)
def add_duty(body: schemas.DutyIn, principal: Handler, session: DbSession) -> schemas.DutyOut:
    return emergencies.add_duty(session, principal, body)


@router.delete(
    "/duties/{duty_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Take a duty off the roster"
)
def remove_duty(duty_id: int, principal: Handler, session: DbSession) -> Response:
    emergencies.remove_duty(session, principal, duty_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- knowledge base ----------------------------------------------------------------------------------------

Editor = Annotated[Principal, Depends(require_permission(knowledge.MANAGE))]


@router.get("/articles", response_model=Page[schemas.ArticleOut], summary="Knowledge-base articles (public)")
def articles(
    session: DbSession, paging: Paging, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> Page[schemas.ArticleOut]:
    drafts = principal is not None and can_citywide(principal, knowledge.MANAGE)
    found, total = knowledge.listing(session, paging, include_drafts=drafts)
    return Page(items=found, total=total, limit=paging.limit, offset=paging.offset)


@router.get("/articles/{article_id}", response_model=schemas.ArticleOut, summary="One published article")
def article(article_id: int, session: DbSession) -> schemas.ArticleOut:
    return knowledge.published(session, article_id)


@router.post(
    "/articles",
    response_model=schemas.ArticleOut,
    status_code=status.HTTP_201_CREATED,
    summary="Write an article (knowledge-base editor)",
)
def create_article(body: schemas.ArticleIn, principal: Editor, session: DbSession) -> schemas.ArticleOut:
    return knowledge.save(session, principal, body)


@router.put("/articles/{article_id}", response_model=schemas.ArticleOut, summary="Replace an article")
def replace_article(
    article_id: int, body: schemas.ArticleIn, principal: Editor, session: DbSession
) -> schemas.ArticleOut:
    return knowledge.save(session, principal, body, article_id)


@router.delete("/articles/{article_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an article")
def delete_article(article_id: int, principal: Editor, session: DbSession) -> Response:
    knowledge.remove(session, principal, article_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- public ratings of city projects ---------------------------------------------------------------------

Optional = Annotated[Principal | None, Depends(optional_principal)]


def _person(principal: Principal | None) -> int | None:
    return principal.person_id if principal is not None else None


@router.get("/projects", response_model=list[schemas.ProjectOut], summary="City projects and their ratings")
def project_list(session: DbSession, principal: Optional) -> list[schemas.ProjectOut]:
    return projects.listing(session, _person(principal))


@router.get("/projects/{code}", response_model=schemas.ProjectOut, summary="One project and its ratings")
def project(code: str, session: DbSession, principal: Optional) -> schemas.ProjectOut:
    return projects.one(session, code, _person(principal))


@router.post("/projects", response_model=schemas.ProjectOut, summary="Create or update a project by code")
def save_project(
    body: schemas.ProjectIn,
    principal: Annotated[Principal, Depends(require_permission(projects.MANAGE))],
    session: DbSession,
) -> schemas.ProjectOut:
    return projects.save(session, principal, body)


@router.put(
    "/projects/{code}/rating",
    response_model=schemas.ProjectOut,
    summary="Rate a project, five levels and a comment (a resident; again replaces)",
)
def rate_project(
    code: str, body: schemas.ProjectRatingIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.ProjectOut:
    return projects.rate(session, principal, code, body)


@router.get(
    "/projects/{code}/result",
    response_model=schemas.ProjectDetailOut,
    summary="A project's result: progress, milestones and the proposals it carries out (public)",
)
def project_result(code: str, session: DbSession, principal: Optional) -> schemas.ProjectDetailOut:
    return projects.detail(session, code, _person(principal))


ProjectManager = Annotated[Principal, Depends(require_permission(projects.MANAGE))]


@router.post(
    "/projects/{code}/milestones",
    response_model=schemas.MilestoneOut,
    status_code=status.HTTP_201_CREATED,
    summary="Plan a milestone of a project",
)
def add_milestone(
    code: str, body: schemas.MilestoneIn, principal: ProjectManager, session: DbSession
) -> schemas.MilestoneOut:
    return projects.add_milestone(session, principal, code, body)


@router.post(
    "/projects/{code}/milestones/{milestone_id}/reached",
    response_model=schemas.ProjectDetailOut,
    summary="Mark a milestone reached: the project's progress moves to its percentage",
)
def reach_milestone(
    code: str,
    milestone_id: int,
    body: schemas.MilestoneReachedIn,
    principal: ProjectManager,
    session: DbSession,
    settings: AppSettings,
) -> schemas.ProjectDetailOut:
    return projects.reach_milestone(session, principal, code, milestone_id, body, settings.timezone)


# -- proposals, supports, comments and moderation ----------------------------------------------------------


@router.get("/proposals", response_model=Page[schemas.ProposalOut], summary="Residents' proposals (public)")
def proposal_list(
    session: DbSession,
    principal: Optional,
    paging: Paging,
    state: Annotated[schemas.ProposalState | None, Query()] = None,
    order: Annotated[Literal["supports", "newest"], Query()] = "supports",
) -> Page[schemas.ProposalOut]:
    found, total = proposals.listing(session, principal, paging, state, order)
    return Page(items=found, total=total, limit=paging.limit, offset=paging.offset)


@router.post(
    "/proposals",
    response_model=schemas.ProposalOut,
    status_code=status.HTTP_201_CREATED,
    summary="Make a proposal (a resident); it collects supports until its closing date",
)
def propose(body: schemas.ProposalIn, principal: CurrentPrincipal, session: DbSession) -> schemas.ProposalOut:
    return proposals.propose(session, principal, body, domain_settings(VoiceSettings))


@router.get("/proposals/{proposal_id}", response_model=schemas.ProposalOut, summary="One proposal (public)")
def proposal(proposal_id: int, session: DbSession, principal: Optional) -> schemas.ProposalOut:
    return proposals.one(session, principal, proposal_id)


@router.post(
    "/proposals/{proposal_id}/withdraw",
    response_model=schemas.ProposalOut,
    summary="Withdraw one's own proposal before the city answers it",
)
def withdraw(proposal_id: int, principal: CurrentPrincipal, session: DbSession) -> schemas.ProposalOut:
    return proposals.withdraw(session, principal, proposal_id)


@router.put(
    "/proposals/{proposal_id}/support",
    response_model=schemas.SupportsOut,
    summary="Support a proposal (a resident, once, within the per-person cap)",
)
def support(proposal_id: int, principal: CurrentPrincipal, session: DbSession) -> schemas.SupportsOut:
    return proposals.support(session, principal, proposal_id, domain_settings(VoiceSettings))


@router.delete(
    "/proposals/{proposal_id}/support",
    response_model=schemas.SupportsOut,
    summary="Take one's support back while the proposal collects supports",
)
def unsupport(proposal_id: int, principal: CurrentPrincipal, session: DbSession) -> schemas.SupportsOut:
    return proposals.unsupport(session, principal, proposal_id, domain_settings(VoiceSettings))


@router.post(
    "/proposals/{proposal_id}/answer",
    response_model=schemas.ProposalOut,
    summary="The city's official answer: evaluating, accepted (with the project that carries it) or rejected",
)
def answer_proposal(
    proposal_id: int,
    body: schemas.ProposalAnswerIn,
    principal: Annotated[Principal, Depends(require_permission(proposals.ANSWER))],
    session: DbSession,
) -> schemas.ProposalOut:
    return proposals.answer(session, principal, proposal_id, body)


@router.get(
    "/proposals/{proposal_id}/comments",
    response_model=Page[schemas.CommentOut],
    summary="A proposal's comments, oldest first (public; hidden ones without their text)",
)
def comments(
    proposal_id: int, session: DbSession, principal: Optional, paging: Paging
) -> Page[schemas.CommentOut]:
    found, total = proposals.comments(session, principal, proposal_id, paging)
    return Page(items=found, total=total, limit=paging.limit, offset=paging.offset)


@router.post(
    "/proposals/{proposal_id}/comments",
    response_model=schemas.CommentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Comment on a proposal (staff who may answer proposals comment officially)",
)
def comment(
    proposal_id: int, body: schemas.CommentIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.CommentOut:
    return proposals.comment(session, principal, proposal_id, body)


@router.post(
    "/flags",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Report a proposal or comment to the moderators (once per person and item)",
)
def flag(body: schemas.FlagIn, principal: CurrentPrincipal, session: DbSession) -> Response:
    proposals.flag(session, principal, body, domain_settings(VoiceSettings))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


Moderator = Annotated[Principal, Depends(require_permission(proposals.MODERATE))]


@router.get(
    "/moderation",
    response_model=Page[schemas.FlaggedOut],
    summary="Flagged proposals and comments waiting for a moderator, most flagged first",
)
def moderation_queue(principal: Moderator, session: DbSession, paging: Paging) -> Page[schemas.FlaggedOut]:
    found, total = proposals.flagged(session, principal, paging)
    return Page(items=found, total=total, limit=paging.limit, offset=paging.offset)


@router.post(
    "/moderation/{target}/{target_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="A moderator's decision: hide the item or keep (restore) it",
)
def moderate(
    target: Literal["proposal", "comment"],
    target_id: int,
    body: schemas.ModerationDecisionIn,
    principal: Moderator,
    session: DbSession,
) -> Response:
    proposals.moderate(session, principal, target, target_id, body)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- surveys -------------------------------------------------------------------------------------------------


@router.get("/surveys", response_model=list[schemas.SurveyOut], summary="Surveys the caller may see")
def survey_list(session: DbSession, principal: Optional) -> list[schemas.SurveyOut]:
    return surveys.listing(session, principal)


@router.post("/surveys", response_model=schemas.SurveyOut, summary="Publish or update a survey by code")
def save_survey(
    body: schemas.SurveyIn,
    principal: Annotated[Principal, Depends(require_permission(surveys.MANAGE))],
    session: DbSession,
) -> schemas.SurveyOut:
    return surveys.save(session, principal, body)


@router.get("/surveys/{code}", response_model=schemas.SurveyOut, summary="One survey and its questions")
def survey(code: str, session: DbSession, principal: Optional) -> schemas.SurveyOut:
    return surveys.one(session, principal, code)


@router.post(
    "/surveys/{code}/responses",
    response_model=schemas.SurveyOut,
    status_code=status.HTTP_201_CREATED,
    summary="Answer a survey (a resident, once)",
)
def answer_survey(
    code: str, body: schemas.SurveyAnswersIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.SurveyOut:
    return surveys.answer(session, principal, code, body)


@router.get(
    "/surveys/{code}/results",
    response_model=schemas.SurveyResultsOut,
    summary="A survey's results (public when the survey says so; free text for organisers only)",
)
def survey_results(code: str, session: DbSession, principal: Optional) -> schemas.SurveyResultsOut:
    return surveys.results(session, principal, code)
