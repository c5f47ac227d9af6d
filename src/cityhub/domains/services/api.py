"""Services JSON API under /api/v1/services: the public catalogue, a resident's favourites, recently used
items, department records, bookings, bills and ratings; the desk routes of departments (records, slots,
bills, follow-ups); the catalogue import for operators; and the payment provider's callback."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from cityhub.domains.identity import (
    CurrentPrincipal,
    Principal,
    optional_principal,
    require_citywide,
    require_permission,
)
from cityhub.domains.services import schemas
from cityhub.domains.services.service import appointments, bills, catalogue, forms, ratings, records
from cityhub.domains.services.service.desk import DESK
from cityhub.kernel.db import Database
from cityhub.kernel.errors import NotFound, Unauthorized
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.pagination import MAX_PAGE_SIZE, Page, PageParams, Paging
from cityhub.kernel.payments import payment_provider
from cityhub.kernel.settings import Settings
from cityhub.kernel.uploads import Upload, read_form, single_files, single_values
from cityhub.kernel.web import AppSettings, DbSession, DbWriteSession, get_database

router = APIRouter()
MANAGE = "services.catalogue.manage"
Code = Annotated[str, Query(max_length=60)]
DeskPrincipal = Annotated[Principal, Depends(require_permission(DESK))]
# Seat-taking routes commit inside the handler's own thread: a request session commits in a later thread
# hop, and under a booking rush every pool thread could be waiting on a slot's row lock held by a
# transaction whose commit is queued behind them.
OneHop = Annotated[Database, Depends(get_database)]


@router.get("/departments", response_model=list[schemas.DepartmentOut], summary="Departments (public)")
def departments(session: DbSession) -> list[schemas.DepartmentOut]:
    return catalogue.departments(session)


@router.get("/categories", response_model=list[schemas.CategoryOut], summary="Categories (public)")
def categories(session: DbSession) -> list[schemas.CategoryOut]:
    return catalogue.categories(session)


@router.get("/life-events", response_model=list[schemas.LifeEventOut], summary="Life events (public)")
def life_events(session: DbSession) -> list[schemas.LifeEventOut]:
    return catalogue.life_events(session)


@router.get(
    "/items",
    response_model=Page[schemas.ItemOut],
    summary="Find service items: by department, category, life event, kind, and search text in zh or en",
)
async def items(
    request: Request,
    caller: Annotated[Principal | None, Depends(optional_principal)],
    q: Annotated[str | None, Query(max_length=200, description="Search text, Chinese or English.")] = None,
    department: Code | None = None,
    category: Code | None = None,
    life_event: Code | None = None,
    kind: Annotated[schemas.ItemKind | None, Query()] = None,
    include_unpublished: Annotated[bool, Query(description=f"Needs {MANAGE}.")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")] = 50,
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
) -> Response:
    # The catalogue search, the busiest public route, in one thread hop: the search, its session and the
    # JSON of the page (``Page[ItemOut]``, validated once) all happen in ``_items_json``. A sync route with
    # ``DbSession`` and ``Paging`` took four hops (paging, handler, response validation, commit), each a
    # wait for a pool thread on a busy machine; so ``limit`` and ``offset`` repeat ``Paging``'s parameters,
    # and the database is not a dependency either (``get_database`` is sync: one more hop).
    # (No docstring: it would become the operation's description in the OpenAPI document.)
    if include_unpublished:
        require_citywide(_signed_in(caller), MANAGE)
    wanted = catalogue.ItemFilter(q, department, category, life_event, kind, include_unpublished)
    paging = PageParams(limit=limit, offset=offset)
    body = await run_in_threadpool(_items_json, get_database(request), wanted, paging)
    return Response(content=body, media_type="application/json")


def _items_json(database: Database, wanted: catalogue.ItemFilter, paging: PageParams) -> bytes:
    with database.request_session(write=False) as session:  # a read: nothing to commit
        return catalogue.find_items_json(session, wanted, paging)


@router.get("/items/{code}", response_model=schemas.ItemOut, summary="One service item (public)")
def item(code: str, session: DbSession) -> schemas.ItemOut:
    return catalogue.items_out(session, [catalogue.get_item(session, code)])[0]


@router.get("/me/favourites", response_model=list[schemas.MarkedItemOut], summary="My favourite items")
def my_favourites(principal: CurrentPrincipal, session: DbSession) -> list[schemas.MarkedItemOut]:
    return catalogue.favourites(session, principal)


@router.put("/me/favourites/{code}", status_code=status.HTTP_204_NO_CONTENT, summary="Add a favourite")
def add_favourite(code: str, principal: CurrentPrincipal, session: DbSession) -> Response:
    catalogue.add_favourite(session, principal, code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/me/favourites/{code}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a favourite")
def remove_favourite(code: str, principal: CurrentPrincipal, session: DbSession) -> Response:
    catalogue.remove_favourite(session, principal, code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me/recent", response_model=list[schemas.MarkedItemOut], summary="Items I used recently")
def my_recent(principal: CurrentPrincipal, session: DbSession) -> list[schemas.MarkedItemOut]:
    return catalogue.recently_used(session, principal)


@router.post(
    "/me/recent/{code}", status_code=status.HTTP_204_NO_CONTENT, summary="Record that I opened an item"
)
def record_use(code: str, principal: CurrentPrincipal, session: DbSession) -> Response:
    catalogue.record_use(session, principal, catalogue.get_item(session, code))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/catalogue",
    response_model=schemas.ImportOut,
    summary="Create or update departments, categories, life events and items by code (all or nothing)",
)
def import_catalogue(
    body: schemas.CatalogueIn,
    principal: Annotated[Principal, Depends(require_permission(MANAGE))],
    session: DbSession,
) -> schemas.ImportOut:
    require_citywide(principal, MANAGE)
    return catalogue.import_catalogue(session, principal.actor, body)


def _signed_in(caller: Principal | None) -> Principal:
    if caller is None:
        raise Unauthorized(_("Log in or present an API key."), slug="unauthenticated")
    return caller


# -- a resident's transactions -------------------------------------------------------------------------------


@router.get(
    "/items/{code}/my-records",
    response_model=schemas.MyRecordsOut,
    summary="My own department records of a query item (each read is audited)",
)
def my_records(code: str, principal: CurrentPrincipal, session: DbWriteSession) -> schemas.MyRecordsOut:
    return records.my_records(session, principal, code)


@router.get("/items/{code}/slots", response_model=list[schemas.SlotOut], summary="Future slots of an item")
def slots(
    code: str, session: DbSession, days: Annotated[int, Query(ge=1, le=90)] = 14
) -> list[schemas.SlotOut]:
    return appointments.open_slots(session, code, days=days)


@router.post(
    "/me/bookings",
    response_model=schemas.BookingOut,
    status_code=status.HTTP_201_CREATED,
    summary="Book a slot (409 when it is full)",
)
def book(body: schemas.BookingIn, principal: CurrentPrincipal, database: OneHop) -> schemas.BookingOut:
    with database.unit_of_work() as session:
        return appointments.book(session, principal, body.slot)


@router.get("/me/bookings", response_model=list[schemas.BookingOut], summary="My bookings, newest first")
def my_bookings(principal: CurrentPrincipal, session: DbSession) -> list[schemas.BookingOut]:
    return appointments.my_bookings(session, principal)


@router.post("/me/bookings/{reference}/cancel", response_model=schemas.BookingOut, summary="Cancel a booking")
def cancel_booking(reference: str, principal: CurrentPrincipal, database: OneHop) -> schemas.BookingOut:
    with database.unit_of_work() as session:
        return appointments.cancel(session, principal, reference)


@router.post(
    "/me/bookings/{reference}/reschedule",
    response_model=schemas.BookingOut,
    summary="Move a booking to another slot of the same item",
)
def reschedule_booking(
    reference: str, body: schemas.BookingIn, principal: CurrentPrincipal, database: OneHop
) -> schemas.BookingOut:
    with database.unit_of_work() as session:
        return appointments.reschedule(session, principal, reference, body.slot)


@router.get("/me/bills", response_model=list[schemas.BillOut], summary="My bills")
def my_bills(
    principal: CurrentPrincipal,
    session: DbSession,
    bill_status: Annotated[Literal["unpaid", "paid"] | None, Query(alias="status")] = None,
) -> list[schemas.BillOut]:
    return bills.my_bills(session, principal, bill_status)


@router.post(
    "/me/bills/{bill_id}/pay",
    response_model=schemas.CheckoutOut,
    status_code=status.HTTP_201_CREATED,
    summary="Start paying a bill: the payment provider's checkout address",
)
def pay_bill(
    bill_id: int, principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> schemas.CheckoutOut:
    return bills.start_payment(session, principal, payment_provider(settings), bill_id)


@router.get(
    "/me/bills/{bill_id}/receipt", response_model=schemas.ReceiptOut, summary="The receipt of a paid bill"
)
def bill_receipt(bill_id: int, principal: CurrentPrincipal, session: DbSession) -> schemas.ReceiptOut:
    return bills.receipt(session, principal, bill_id)


@router.post(
    "/me/ratings",
    response_model=schemas.RatingOut,
    status_code=status.HTTP_201_CREATED,
    summary="Rate a completed transaction (好差评, once); 1 or 2 opens a follow-up",
)
def rate(body: schemas.RatingIn, principal: CurrentPrincipal, session: DbSession) -> schemas.RatingOut:
    return ratings.rate(session, principal, body)


# -- department desks ----------------------------------------------------------------------------------------


@router.post(
    "/departments/{department}/items/{code}/records",
    response_model=schemas.RecordsImportOut,
    summary="Store or delete department records of a query item by key (department systems; all or nothing)",
)
def import_records(
    department: str, code: str, body: schemas.RecordsIn, principal: DeskPrincipal, session: DbSession
) -> schemas.RecordsImportOut:
    return records.import_records(session, principal, department, code, body)


@router.post(
    "/departments/{department}/items/{code}/schedule",
    response_model=schemas.ScheduleOut,
    summary="Open appointment slots on the working days of a date range",
)
def open_schedule(
    department: str,
    code: str,
    body: schemas.ScheduleIn,
    principal: DeskPrincipal,
    session: DbSession,
    settings: AppSettings,
) -> schemas.ScheduleOut:
    return appointments.open_schedule(session, principal, department, code, body, settings.timezone)


@router.get(
    "/departments/{department}/items/{code}/bookings",
    response_model=list[schemas.BookingOut],
    summary="Bookings of one day",
)
def desk_bookings(
    department: str,
    code: str,
    day: date,
    principal: DeskPrincipal,
    session: DbSession,
    settings: AppSettings,
) -> list[schemas.BookingOut]:
    return appointments.desk_bookings(session, principal, department, code, day, settings.timezone)


@router.post(
    "/bookings/{reference}/{visit}",
    response_model=schemas.BookingOut,
    summary="Record that the person came (attended) or not (missed)",
)
def mark_visit(
    reference: str, visit: Literal["attended", "missed"], principal: DeskPrincipal, session: DbSession
) -> schemas.BookingOut:
    return appointments.mark_visit(session, principal, reference, attended=visit == "attended")


@router.post(
    "/departments/{department}/bills",
    response_model=schemas.BillsImportOut,
    summary="Issue, amend or cancel bills by number (all or nothing; paid bills are left alone)",
)
def issue_bills(
    department: str, body: schemas.BillsIn, principal: DeskPrincipal, session: DbSession
) -> schemas.BillsImportOut:
    return bills.issue_bills(session, principal, department, body)


@router.get(
    "/follow-ups",
    response_model=Page[schemas.FollowUpOut],
    summary="Follow-ups of bad ratings for the departments I act for",
)
def follow_ups(
    principal: DeskPrincipal,
    session: DbSession,
    paging: Paging,
    follow_up_status: Annotated[Literal["open", "closed"] | None, Query(alias="status")] = None,
) -> Page[schemas.FollowUpOut]:
    found, total = ratings.follow_ups(session, principal, follow_up_status, paging)
    return Page(items=found, total=total, limit=paging.limit, offset=paging.offset)


@router.post(
    "/follow-ups/{follow_up_id}/close",
    response_model=schemas.FollowUpOut,
    summary="Close a follow-up with a note",
)
def close_follow_up(
    follow_up_id: int, body: schemas.FollowUpClose, principal: DeskPrincipal, session: DbSession
) -> schemas.FollowUpOut:
    return ratings.close_follow_up(session, principal, follow_up_id, body.note)


# -- the payment provider ------------------------------------------------------------------------------------


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.post(
    "/payments/callbacks/sandbox",
    summary="Signed callback of the sandbox payment provider (HMAC-SHA256 of the body)",
)
def sandbox_callback(
    body: Annotated[bytes, Depends(_raw_body)],
    signature: Annotated[str, Header(alias="X-Sandbox-Signature", max_length=128)],
    session: DbSession,
    settings: AppSettings,
) -> dict[str, str]:
    status_after = bills.settle_sandbox_callback(session, payment_provider(settings), body, signature)
    return {"status": status_after}


# -- online forms --------------------------------------------------------------------------------------------

MAX_FILES = 10


def uploads_dir(settings: Settings) -> Path:
    return settings.var_dir / "uploads" / "services"


async def form_answers(request: Request) -> tuple[dict[str, str], dict[str, Upload]]:
    """The text answers and files of a multipart (or url-encoded) application, one file per field."""
    answers, files = await read_form(request, max_files=MAX_FILES)
    return single_values(answers), single_files(files)


Answers = Annotated[tuple[dict[str, str], dict[str, Upload]], Depends(form_answers)]


@router.get(
    "/items/{code}/form",
    response_model=schemas.FormOut,
    summary="A form item's fields, pre-filled if I agreed",
)
def form(code: str, principal: CurrentPrincipal, session: DbSession) -> schemas.FormOut:
    _item, fields = forms.form_item(session, code)
    return schemas.FormOut(fields=fields, prefilled=forms.prefilled(session, principal, fields))


@router.post(
    "/items/{code}/applications",
    response_model=schemas.ApplicationOut,
    status_code=status.HTTP_201_CREATED,
    summary="Apply through a form item (multipart: one part per field key; files for file fields)",
    openapi_extra={"requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object"}}}}},
)
def apply(
    code: str, answers: Answers, principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> schemas.ApplicationOut:
    return forms.submit(session, principal, uploads_dir(settings), code, *answers)


@router.get("/me/applications", response_model=list[schemas.ApplicationOut], summary="My applications")
def my_applications(principal: CurrentPrincipal, session: DbSession) -> list[schemas.ApplicationOut]:
    return forms.my_applications(session, principal)


@router.get(
    "/me/applications/{reference}", response_model=schemas.ApplicationOut, summary="One of my applications"
)
def my_application(reference: str, principal: CurrentPrincipal, session: DbSession) -> schemas.ApplicationOut:
    return forms.my_application(session, principal, reference)


@router.post(
    "/me/applications/{reference}/resubmit",
    response_model=schemas.ApplicationOut,
    summary="Answer the department's request for more (multipart, like applying)",
)
def resubmit(
    reference: str, answers: Answers, principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> schemas.ApplicationOut:
    return forms.resubmit(session, principal, uploads_dir(settings), reference, *answers)


@router.post(
    "/me/applications/{reference}/withdraw",
    response_model=schemas.ApplicationOut,
    summary="Withdraw an application",
)
def withdraw(reference: str, principal: CurrentPrincipal, session: DbSession) -> schemas.ApplicationOut:
    return forms.withdraw(session, principal, reference)


@router.get(
    "/departments/{department}/applications",
    response_model=Page[schemas.ApplicationOut],
    summary="A department's applications, oldest first (audited)",
)
def desk_applications(
    department: str,
    principal: DeskPrincipal,
    session: DbWriteSession,
    paging: Paging,
    application_status: Annotated[schemas.ApplicationStatus | None, Query(alias="status")] = None,
) -> Page[schemas.ApplicationOut]:
    found, total = forms.desk_applications(session, principal, department, application_status, paging)
    return Page(items=found, total=total, limit=paging.limit, offset=paging.offset)


@router.post(
    "/applications/{reference}/decision",
    response_model=schemas.ApplicationOut,
    summary="Accept, ask for more, approve or reject an application (the applicant is notified)",
)
def decide(
    reference: str, body: schemas.DecisionIn, principal: DeskPrincipal, session: DbSession
) -> schemas.ApplicationOut:
    return forms.decide(session, principal, reference, body)


@router.get(
    "/attachments/{attachment_id}",
    summary="An application's file, for the applicant or the department handling it (audited for the latter)",
    response_class=FileResponse,
)
def attachment(
    attachment_id: int, principal: CurrentPrincipal, session: DbWriteSession, settings: AppSettings
) -> FileResponse:
    found, path = forms.attachment_file(session, principal, uploads_dir(settings), attachment_id)
    if not path.is_file():
        raise NotFound(_("The file of attachment %(id)s is missing.", id=attachment_id))
    return FileResponse(path, media_type=found.content_type, filename=found.filename)
