"""Resident pages of the city services entry: the services grid, search, lists by department, category and
life event, one item with its favourite toggle and what the item does (look up my records, book a slot,
pay), and "my services" (bookings and bills, each rated once done). The catalogue is public; the rest is
for a signed-in resident."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.identity import PageUser, SignedIn
from cityhub.domains.services import schemas
from cityhub.domains.services.api import Answers, uploads_dir
from cityhub.domains.services.models import Department, Item
from cityhub.domains.services.service import appointments, bills, catalogue, forms, ratings, records
from cityhub.domains.services.service.desk import desk_departments
from cityhub.kernel.errors import Forbidden, NotFound, Problem, ValidationProblem
from cityhub.kernel.i18n import get_locale
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.pagination import PageParams
from cityhub.kernel.payments import payment_provider
from cityhub.kernel.web import (
    AppSettings,
    CsrfChecked,
    DbSession,
    DbWriteSession,
    SameSiteOnly,
    get_database,
    money,
    render,
)

router = APIRouter()
PAGE_SIZE = 20
KIND_LABELS = {
    "information": _l("Guide"),
    "query": _l("Look up"),
    "form": _l("Apply online"),
    "appointment": _l("Book"),
    "bill": _l("Pay"),
}
Offset = Annotated[int, Query(ge=0, le=100_000)]


def _text(value: schemas.Text | None) -> str:
    """The viewer's language of a bilingual catalogue text."""
    if value is None:
        return ""
    return value.en if get_locale() == "en" else value.zh_CN


LEVELS = {
    1: _l("Very dissatisfied"),
    2: _l("Dissatisfied"),
    3: _l("Fair"),
    4: _l("Satisfied"),
    5: _l("Very satisfied"),
}
STATUS_LABELS = {
    "booked": _l("Booked"),
    "cancelled": _l("Cancelled"),
    "attended": _l("Attended"),
    "missed": _l("Missed"),
    "unpaid": _l("Unpaid"),
    "paid": _l("Paid"),
    "submitted": _l("Submitted"),
    "accepted": _l("Being handled"),
    "needs_more": _l("More needed from you"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected"),
    "withdrawn": _l("Withdrawn"),
}


def _page(request: Request, name: str, context: dict[str, Any]) -> Response:
    return render_page(request, name, context)


def render_page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    shared = {"tr": _text, "kinds": KIND_LABELS, "money": money, "levels": LEVELS, "statuses": STATUS_LABELS}
    return render(request, f"services/{name}", {**shared, **context}, status_code)


@router.get("/services")
def services_home(request: Request, user: PageUser, session: DbSession) -> Response:
    context: dict[str, Any] = {
        "life_events": catalogue.life_events(session),
        "categories": catalogue.categories(session),
        "departments": catalogue.departments(session),
        "favourites": catalogue.favourites(session, user)[:8] if user and user.account_id else [],
        "recent": catalogue.recently_used(session, user)[:8] if user and user.account_id else [],
    }
    return _page(request, "home.html", context)


@router.get("/services/search")
def search_page(
    request: Request,
    _user: PageUser,
    session: DbSession,
    q: Annotated[str, Query(max_length=200)] = "",
    offset: Offset = 0,
) -> Response:
    found, total = catalogue.find_items(
        session, catalogue.ItemFilter(text=q), PageParams(limit=PAGE_SIZE, offset=offset)
    )
    context = {"heading": None, "q": q, "items": found, "total": total, "offset": offset, "size": PAGE_SIZE}
    return _page(request, "list.html", context)


@router.get("/services/items/{code}")
def item_page(request: Request, user: PageUser, session: DbSession, code: str) -> Response:
    item = catalogue.get_item(session, code)
    shaped = catalogue.items_out(session, [item])[0]
    favourite = False
    if user is not None and user.account_id is not None:
        favourite = catalogue.is_favourite(session, user, item)
        with get_database(request).unit_of_work() as write:  # the page itself is a read
            catalogue.record_use(write, user, item)
    departments = {d.code: d for d in catalogue.departments(session)}
    categories = {c.code: c for c in catalogue.categories(session)}
    events = {e.code: e for e in catalogue.life_events(session)}
    context = {
        "item": shaped,
        "department": departments[shaped.department],
        "category": categories[shaped.category],
        "events": [events[code] for code in shaped.life_events],
        "favourite": favourite,
        "slots": appointments.open_slots(session, code) if item.kind == "appointment" else [],
    }
    return _page(request, "item.html", context)


@router.get("/services/items/{code}/records", dependencies=[SameSiteOnly])
def records_page(request: Request, user: SignedIn, session: DbWriteSession, code: str) -> Response:
    """The resident's own department records (an audited read, hence the write session)."""
    item = catalogue.get_item(session, code)
    shaped = catalogue.items_out(session, [item])[0]
    try:
        mine, refusal = records.my_records(session, user, code), None
    except Problem as problem:
        mine, refusal = None, problem.detail
    return _page(request, "records.html", {"item": shaped, "mine": mine, "refusal": refusal})


@router.post("/services/items/{code}/book", dependencies=[CsrfChecked])
def book_slot(user: SignedIn, session: DbSession, code: str, slot: Annotated[int, Form(ge=1)]) -> Response:
    # The page's write transaction is already open (SignedIn reads the city's name in it), so unlike the
    # API's booking (see api.OneHop) this one commits with the request: pages are not where a rush comes.
    appointments.book(session, user, slot)
    return RedirectResponse("/services/mine", status_code=303)


@router.post("/services/bookings/{reference}/cancel", dependencies=[CsrfChecked])
def cancel_booking(user: SignedIn, session: DbSession, reference: str) -> Response:
    appointments.cancel(session, user, reference)
    return RedirectResponse("/services/mine", status_code=303)


@router.get("/services/items/{code}/apply")
def apply_page(
    request: Request,
    user: SignedIn,
    session: DbSession,
    code: str,
    reference: Annotated[str | None, Query(max_length=16)] = None,
) -> Response:
    """The form, empty or pre-filled, or with an application's answers when the department asked for more."""
    if reference is None:
        return _form_page(request, session, user, code)
    application = forms.my_application(session, user, reference)
    answers = forms.answers_as_typed(forms.form_fields_of(session, application.item), application.answers)
    return _form_page(request, session, user, application.item, answers, application=application)


def _form_page(
    request: Request,
    session: Session,
    user: Any,
    code: str,
    answers: dict[str, str] | None = None,
    problem: Problem | None = None,
    application: schemas.ApplicationOut | None = None,
) -> Response:
    item, fields = forms.form_item(session, code)
    prefill = forms.prefilled(session, user, fields)
    context = {
        "item": catalogue.items_out(session, [item])[0],
        "fields": fields,
        "values": answers if answers is not None else prefill,
        "prefilled": bool(prefill),
        "errors": {
            error["field"]: error["detail"]
            for error in (problem.extensions.get("errors", []) if problem else [])
        },
        "problem": problem.detail if problem else None,
        "application": application,
    }
    return render_page(request, "apply.html", context, status_code=422 if problem else 200)


@router.post("/services/items/{code}/apply", dependencies=[CsrfChecked])
def apply(
    request: Request, user: SignedIn, session: DbSession, settings: AppSettings, code: str, answers: Answers
) -> Response:
    try:  # answers are checked before anything is written, so a refusal leaves nothing to undo
        done = forms.submit(session, user, uploads_dir(settings), code, *answers)
    except ValidationProblem as problem:
        return _form_page(request, session, user, code, answers[0], problem)
    return RedirectResponse(f"/services/applications/{done.reference}", status_code=303)


@router.post("/services/prefill", dependencies=[CsrfChecked])
def allow_prefill(
    user: SignedIn,
    session: DbSession,
    back: Annotated[str, Form(pattern=r"^/services/items/[a-z0-9-]+/apply$")],
) -> Response:
    forms.allow_prefill(session, user)
    return RedirectResponse(back, status_code=303)


@router.get("/services/applications/{reference}")
def application_page(request: Request, user: SignedIn, session: DbSession, reference: str) -> Response:
    application = forms.my_application(session, user, reference)
    fields = forms.form_fields_of(session, application.item)
    return _page(request, "application.html", {"application": application, "fields": fields})


@router.post("/services/applications/{reference}/withdraw", dependencies=[CsrfChecked])
def withdraw_application(user: SignedIn, session: DbSession, reference: str) -> Response:
    forms.withdraw(session, user, reference)
    return RedirectResponse(f"/services/applications/{reference}", status_code=303)


@router.post("/services/applications/{reference}/resubmit", dependencies=[CsrfChecked])
def resubmit_application(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    reference: str,
    answers: Answers,
) -> Response:
    try:
        forms.resubmit(session, user, uploads_dir(settings), reference, *answers)
    except ValidationProblem as problem:
        application = forms.my_application(session, user, reference)
        return _form_page(request, session, user, application.item, answers[0], problem, application)
    return RedirectResponse(f"/services/applications/{reference}", status_code=303)


@router.get("/services/attachments/{attachment_id}")
def attachment_download(
    user: SignedIn, session: DbWriteSession, settings: AppSettings, attachment_id: int
) -> Response:
    found, path = forms.attachment_file(session, user, uploads_dir(settings), attachment_id)
    if not path.is_file():
        raise NotFound()
    return FileResponse(path, media_type=found.content_type, filename=found.filename)


@router.get("/services/mine")
def my_services(request: Request, user: SignedIn, session: DbSession) -> Response:
    try:
        my_bills, refusal = bills.my_bills(session, user), None
    except Problem as problem:
        my_bills, refusal = [], problem.detail
    context = {
        "bookings": appointments.my_bookings(session, user),
        "bills": my_bills,
        "refusal": refusal,
        "applications": forms.my_applications(session, user),
    }
    return _page(request, "mine.html", context)


@router.get("/services/bills/{bill_id}")
def bill_page(request: Request, user: SignedIn, session: DbSession, bill_id: int) -> Response:
    bill = bills.bill_out(session, bills.own_bill(session, user, bill_id))
    return _page(request, "bill.html", {"bill": bill})


@router.post("/services/bills/{bill_id}/pay", dependencies=[CsrfChecked])
def pay_bill(user: SignedIn, session: DbSession, settings: AppSettings, bill_id: int) -> Response:
    checkout = bills.start_payment(session, user, payment_provider(settings), bill_id)
    return RedirectResponse(checkout.checkout_url, status_code=303)


@router.post("/services/ratings", dependencies=[CsrfChecked])
def rate(
    user: SignedIn,
    session: DbSession,
    kind: Annotated[schemas.RatedKind, Form()],
    reference: Annotated[str, Form(max_length=40)],
    level: Annotated[int, Form(ge=1, le=5)],
    comment: Annotated[str, Form(max_length=2000)] = "",
    back: Annotated[str, Form(pattern=r"^/services/[A-Za-z0-9/-]*$")] = "/services/mine",
) -> Response:
    ratings.rate(
        session, user, schemas.RatingIn(kind=kind, reference=reference, level=level, comment=comment)
    )
    return RedirectResponse(back, status_code=303)


@router.post("/services/items/{code}/favourite", dependencies=[CsrfChecked])
def toggle_favourite(
    user: SignedIn, session: DbSession, code: str, action: Annotated[str, Form(pattern="^(add|remove)$")]
) -> Response:
    if action == "add":
        catalogue.add_favourite(session, user, code)
    else:
        catalogue.remove_favourite(session, user, code)
    return RedirectResponse(f"/services/items/{code}", status_code=303)


@router.get("/console/services", dependencies=[SameSiteOnly])
def desk_page(
    request: Request,
    user: SignedIn,
    session: DbWriteSession,  # listing applications is an audited read
    settings: AppSettings,
    department: Annotated[str | None, Query(max_length=60)] = None,
) -> Response:
    """A department's desk: its 好差评 of the last 30 days, open follow-ups, and today's appointments."""
    mine = desk_departments(session, user)
    chosen = next((d for d in mine if d.code == department), mine[0] if mine else None)
    if chosen is None:
        raise Forbidden(_("You do not act for any department."), slug="not-your-department")
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    items = session.scalars(
        select(Item)
        .where(Item.department_id == chosen.id, Item.kind == "appointment")
        .order_by(Item.position)
    ).all()
    bookings = {
        item.code: appointments.desk_bookings(session, user, chosen.code, item.code, today, settings.timezone)
        for item in items
    }
    follow_ups, _total = ratings.follow_ups(session, user, "open", PageParams(limit=200))
    waiting = [
        application
        for status in ("submitted", "accepted")
        for application in forms.desk_applications(session, user, chosen.code, status, PageParams(limit=50))[
            0
        ]
    ]
    context = {
        "departments": mine,
        "department": chosen,
        "summary": ratings.satisfaction(session, chosen),
        "follow_ups": [f for f in follow_ups if f.rating.department == chosen.code],
        "items": {item.code: catalogue.name_of(item) for item in items},
        "bookings": bookings,
        "today": today,
        "applications": waiting,
    }
    return _page(request, "desk.html", context)


@router.post("/console/services/applications/{reference}/decision", dependencies=[CsrfChecked])
def desk_decide(
    user: SignedIn,
    session: DbSession,
    reference: str,
    status: Annotated[schemas.Decision, Form()],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    decided = forms.decide(session, user, reference, schemas.DecisionIn(status=status, note=note))
    return RedirectResponse(
        f"/console/services?department={decided.department}#applications", status_code=303
    )


@router.post("/console/services/bookings/{reference}/{visit}", dependencies=[CsrfChecked])
def desk_mark_visit(user: SignedIn, session: DbSession, reference: str, visit: str) -> Response:
    if visit not in ("attended", "missed"):
        raise NotFound()
    booking = appointments.mark_visit(session, user, reference, attended=visit == "attended")
    item = catalogue.get_item(session, booking.item, include_unpublished=True)
    return RedirectResponse(
        f"/console/services?department={_department_code(session, item)}", status_code=303
    )


@router.post("/console/services/follow-ups/{follow_up_id}/close", dependencies=[CsrfChecked])
def desk_close_follow_up(
    user: SignedIn,
    session: DbSession,
    follow_up_id: int,
    note: Annotated[str, Form(min_length=1, max_length=2000)],
) -> Response:
    closed = ratings.close_follow_up(session, user, follow_up_id, note)
    return RedirectResponse(f"/console/services?department={closed.rating.department}", status_code=303)


def _department_code(session: Session, item: Item) -> str:
    return session.get_one(Department, item.department_id).code


@router.get("/services/{kind}/{code}")
def listing_page(
    request: Request, _user: PageUser, session: DbSession, kind: str, code: str, offset: Offset = 0
) -> Response:
    records: list[schemas.DepartmentOut] | list[schemas.CategoryOut] | list[schemas.LifeEventOut]
    if kind == "departments":
        records, wanted = catalogue.departments(session), catalogue.ItemFilter(department=code)
    elif kind == "categories":
        records, wanted = catalogue.categories(session), catalogue.ItemFilter(category=code)
    elif kind == "life-events":
        records, wanted = catalogue.life_events(session), catalogue.ItemFilter(life_event=code)
    else:
        raise NotFound()
    record = next((r for r in records if r.code == code), None)
    if record is None:
        raise NotFound()
    found, total = catalogue.find_items(session, wanted, PageParams(limit=PAGE_SIZE, offset=offset))
    context = {
        "heading": record,
        "q": "",
        "items": found,
        "total": total,
        "offset": offset,
        "size": PAGE_SIZE,
    }
    return _page(request, "list.html", context)
