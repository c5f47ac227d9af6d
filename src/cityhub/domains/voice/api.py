"""Voice JSON API under /api/v1/voice: categories, ticket intake (resident app and operator phone desk),
the department queue and the workflow steps."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from cityhub.domains.identity import CurrentPrincipal, Principal, require_permission
from cityhub.domains.voice import schemas
from cityhub.domains.voice.service import categories, tickets
from cityhub.domains.voice.service.tickets import DISPATCH, HANDLE, Clock
from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel.pagination import Page, Paging
from cityhub.kernel.settings import domain_settings
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
