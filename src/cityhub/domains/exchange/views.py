"""The open-data portal: published open resources to browse and search by anyone, each with its data items,
a preview of its current version and a CSV or JSON download. The department console of the data exchange:
a department's resources (loading their data), the requests to answer and the grants given, the catalogue to
ask from, the requests made and the grants held (with their downloads)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.api import InsightDays, applicant_file, exchange_settings
from cityhub.domains.exchange.models import DataWish, Resource, Version
from cityhub.domains.exchange.service import (
    applications,
    catalogue,
    corrections,
    grants,
    insight,
    keys,
    loads,
    opening,
    wishes,
)
from cityhub.domains.exchange.service.access import (
    MANAGE,
    REQUEST,
    acts_for,
    owned_resource,
    resource_by_code,
)
from cityhub.domains.identity import (
    Principal,
    SignedIn,
    get_organization,
    get_organization_by_code,
    page_principal,
    require,
)
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Forbidden, NotFound, Problem, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.pagination import Page, PageParams, Paging, fetch_page
from cityhub.kernel.uploads import MAX_FILE_BYTES, Upload, read_form, single_files, single_values
from cityhub.kernel.web import (
    AppSettings,
    CsrfChecked,
    DbSession,
    DbWriteSession,
    PublicRateLimited,
    attempt,
    detail_of,
    flash,
    get_database,
    render,
    see_other,
)

router = APIRouter()
PREVIEW_ROWS = 20
Visitor = Annotated[Principal | None, Depends(page_principal)]


@router.get("/data")
def portal(
    request: Request,
    session: DbSession,
    paging: Paging,
    q: Annotated[str, Query(max_length=200)] = "",
    provider: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Open data: the published open resources, newest change first, by words and provider."""
    provider_id = get_organization_by_code(session, provider).id if provider else None
    listed = catalogue.search(None, q or None, provider_id, public_classes=applications.PORTAL_CLASSES)
    rows, total = fetch_page(session, listed, paging)
    page: Page[schemas.ResourceOut] = Page(
        items=catalogue.shape(session, rows), total=total, limit=paging.limit, offset=paging.offset
    )
    return render(request, "exchange/portal.html", {"page": page, "q": q, "provider": provider})


# --- data requests and applications to use conditionally open data ------------------------------------------
# The board of citizens' data requests (a form to file one, votes), and a person's applications to use data
# open on application (有条件开放), with their downloads. Registered before /data/{code}: "requests" and "me"
# name these pages, not resources.

WISH_STATES = {
    "open": _l("Waiting for an answer"),
    "planned": _l("Planned"),
    "fulfilled": _l("Fulfilled"),
    "declined": _l("Declined"),
}
APPLICATION_STATES = {
    "pending": _l("Waiting for an answer"),
    "approved": _l("Approved"),
    "rejected": _l("Rejected"),
    "expired": _l("Expired"),
}
MY_APPLICATIONS = "/data/me/applications"
LongText = Annotated[str, Form(max_length=8000)]


def _board(
    request: Request,
    session: Session,
    visitor: Principal | None,
    paging: PageParams,
    status: str,
    sort: str,
    values: dict[str, str] | None = None,
    problem: Problem | None = None,
) -> Response:
    """``values``: a refused request's form as it was sent, shown again with ``problem``."""
    rows, total = fetch_page(session, wishes.board(status or None, sort), paging)
    page: Page[schemas.WishOut] = Page(
        items=wishes.shape(session, visitor, rows), total=total, limit=paging.limit, offset=paging.offset
    )
    context = {
        "page": page,
        "status": status,
        "sort": sort,
        "wish_states": WISH_STATES,
        "signed_in": visitor is not None,
        "departments": wishes.departments(session),
        "values": values or {},
        "problem": detail_of(problem) if problem else None,
    }
    return render(request, "exchange/data_requests.html", context, problem.status if problem else 200)


@router.get("/data/requests")
def data_requests(
    request: Request,
    session: DbSession,
    visitor: Visitor,
    paging: Paging,
    status: Literal["", "open", "planned", "fulfilled", "declined"] = "",
    sort: Literal["votes", "new"] = "votes",
) -> Response:
    """Citizens' data requests, most votes first, with their answers; a form to ask for data."""
    return _board(request, session, visitor, paging, status, sort)


@router.post("/data/requests", dependencies=[CsrfChecked])
def file_data_request(
    request: Request,
    user: SignedIn,
    session: DbSession,
    paging: Paging,
    title: LongText = "",
    description: LongText = "",
    department: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    values = {"title": title, "description": description, "department": department.strip()}

    def file() -> DataWish:
        data = schemas.WishIn.model_validate({**values, "department": values["department"] or None})
        return wishes.file(session, user, data, utcnow())

    outcome = attempt(session, file)  # an unknown department is the form's problem too
    if isinstance(outcome, Problem):
        return _board(request, session, user, paging, "", "new", values, outcome)
    flash(request, _("Your request is on the board; the department is told."))
    return see_other(f"/data/requests?sort=new#wish-{outcome.id}")


@router.post("/data/requests/{wish_id}/vote", dependencies=[CsrfChecked])
def vote_for_data(
    request: Request,
    user: SignedIn,
    session: DbSession,
    wish_id: int,
    withdraw: Annotated[str, Form(max_length=3)] = "",
) -> Response:
    """Vote, or take the vote back (``withdraw=yes``); with htmx, the wish's vote box is swapped."""
    change = wishes.unvote if withdraw == "yes" else wishes.vote
    outcome = _attempt(session, lambda: change(session, user, wish_id))
    refusal = detail_of(outcome) if isinstance(outcome, Problem) else None
    if request.headers.get("HX-Request"):
        found = wishes.shape(session, user, [wishes.get(session, wish_id)])[0]
        context = {"wish": found, "signed_in": True, "refusal": refusal}
        return render(request, "exchange/_wish_votes.html", context)
    if refusal:
        flash(request, refusal)
    return see_other(f"/data/requests#wish-{wish_id}")


@router.post("/data/{code}/applications", dependencies=[CsrfChecked])
def apply_for_data(
    request: Request,
    user: SignedIn,
    session: DbSession,
    settings: AppSettings,
    code: str,
    purpose: LongText = "",
    organisation: Annotated[str, Form(max_length=400)] = "",
    days: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The dataset page's application form (a resource open on application)."""
    values = {"purpose": purpose, "organisation": organisation, "days": days}

    def apply() -> object:
        data = schemas.ApplicationIn.model_validate({**values, **_days(values)})
        working_days = exchange_settings().answer_working_days
        return applications.apply(session, user, code, data, utcnow(), settings.timezone, working_days)

    outcome = _attempt(session, apply)
    if isinstance(outcome, Problem):
        return _dataset(request, session, code, user, values, outcome)
    flash(request, _("Your application is sent; the department answers it within a few working days."))
    return see_other(MY_APPLICATIONS)


@router.get(MY_APPLICATIONS)
def my_applications(request: Request, user: SignedIn, session: DbSession) -> Response:
    """The person's applications to use data, with their state and, while approved, the download."""
    found = applications.shape(session, applications.of_side(session, user, "mine", None), utcnow())
    context = {"applications": found, "application_states": APPLICATION_STATES, "mine": MY_APPLICATIONS}
    return render(request, "exchange/my_applications.html", context)


@router.get(f"{MY_APPLICATIONS}/{{application_id}}.csv")
def my_application_csv(user: SignedIn, session: DbWriteSession, application_id: int) -> Response:
    """The applicant's download for the page user (audited: the write session of a GET)."""
    return applicant_file(session, user, application_id)


def _applying(
    session: Session,
    resource: Resource,
    visitor: Principal | None,
    values: dict[str, str] | None,
    problem: Problem | None,
) -> dict[str, Any]:
    """What the dataset page of a resource open on application shows: the visitor's approval in force (with
    its download), else the form (``values`` and ``problem``: the refused one)."""
    approved = (
        applications.in_force(session, visitor, resource, utcnow())
        if visitor is not None and resource.open_class == "conditional"
        else None
    )
    return {
        "approved": approved,
        "application_values": values or {"days": "90"},
        "application_problem": detail_of(problem) if problem else None,
        "max_days": schemas.APPLICATION_MAX_DAYS,
        "mine": MY_APPLICATIONS,
    }


@router.get("/data/{code}.{file_format}", dependencies=[PublicRateLimited])
def download(
    request: Request,
    session: DbWriteSession,  # counts the download
    code: str,
    file_format: Annotated[str, Path(pattern="^(csv|json)$")],
) -> Response:
    """The current data of an open resource as the public gets it (de-identified), as CSV (UTF-8 with a BOM)
    or JSON, streamed."""
    resource, version = opening.open_resource(session, code)
    public = opening.opening_of(resource)
    as_csv = file_format == "csv"
    body = (opening.public_csv if as_csv else opening.public_json)(get_database(request), version.id, public)
    opening.count_read(session, resource.id, "csv" if as_csv else "json", version.row_count)
    media = "text/csv; charset=utf-8" if file_format == "csv" else "application/json"
    headers = {"Content-Disposition": f'attachment; filename="{code}.{file_format}"'}
    return StreamingResponse(body, media_type=media, headers=headers)


@router.get("/data/{code}")
def dataset(request: Request, session: DbWriteSession, code: str, visitor: Visitor) -> Response:
    """One open resource: its catalogue entry, its data items and the first rows of its current data; one
    open on application: its entry, and the visitor's application form or approved download."""
    return _dataset(request, session, code, visitor)


def _dataset(
    request: Request,
    session: Session,
    code: str,
    visitor: Principal | None,
    values: dict[str, str] | None = None,
    problem: Problem | None = None,
) -> Response:
    resource = applications.on_portal(session, code)
    entry = opening.public_entry(resource, catalogue.shape(session, [resource])[0])
    preview: list[dict[str, object]] = []
    if resource.current_version_id is not None and resource.open_class == "open":
        preview = opening.preview(session, resource, PREVIEW_ROWS)
        opening.count_read(session, resource.id, "preview", len(preview))
    context = {
        "resource": entry,
        "preview": preview,
        "generalised": opening.descriptions(resource),
        "signed_in": visitor is not None,
        **_applying(session, resource, visitor, values, problem),
    }
    return render(request, "exchange/dataset.html", context, problem.status if problem else 200)


# --- the department console -------------------------------------------------------------------------------
# Department staff manage their departments' resources (load data, answer requests, revoke grants) and ask
# for other departments' data (the catalogue, the request form, their grants with a CSV download). Every
# change is one form: done in a savepoint, then a redirect with a flash; a refusal is shown on the page.

CONSOLE = "/console/exchange"
LISTED = 200  # resources listed per department (the API pages through more)
LISTED_VERSIONS = 20  # the newest loads of a resource, with their reports
MIB = 1024 * 1024
RESOURCE_STATES = {"draft": _l("Draft"), "published": _l("Published"), "retired": _l("Retired")}
SHARING_CLASSES = {
    "unconditional": _l("Shared on request"),
    "conditional": _l("Shared on approval"),
    "none": _l("Not shared"),
}
REQUEST_STATES = {  # not "Approved"/"Rejected": those words are translated for service applications
    "pending": _l("Waiting for an answer"),
    "approved": _l("Granted"),
    "rejected": _l("Refused"),
    "withdrawn": _l("Cancelled"),
}
GRANT_STATES = {"active": _l("In force"), "expired": _l("Expired"), "revoked": _l("Revoked")}
ANSWERED = {
    "approve": _l("The request is approved: its grant is in force."),
    "reject": _l("The request is rejected; the department is told why."),
}
ResultT = TypeVar("ResultT")
Failed = tuple[str, int, str]  # (what: "request" or "grant", its id, why it was refused)


def _staff(user: SignedIn) -> Principal:
    """Department staff: those who manage their departments' resources or ask for others' data."""
    if not user.has(MANAGE):
        require(user, REQUEST)
    return user


Staff = Annotated[Principal, Depends(_staff)]


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    shared = {
        "console": CONSOLE,
        "resource_states": RESOURCE_STATES,
        "sharing_classes": SHARING_CLASSES,
        "request_states": REQUEST_STATES,
        "grant_states": GRANT_STATES,
    }
    return render(request, f"exchange/{name}", {**shared, **context}, status_code)


def _attempt(session: Session, action: Callable[[], ResultT]) -> ResultT | Problem:
    """``kernel.web.attempt``; but who may not act, or on what does not exist, is not a form's problem: that
    answers 403/404 as a page."""
    outcome = attempt(session, action)
    if isinstance(outcome, Forbidden | NotFound):
        raise outcome
    return outcome


async def _posted(request: Request) -> dict[str, list[str]]:
    fields, _files = await read_form(request, max_files=0)
    return fields


async def _posted_file(request: Request) -> tuple[dict[str, list[str]], dict[str, list[Upload]]]:
    return await read_form(request, max_files=1)


Posted = Annotated[dict[str, list[str]], Depends(_posted)]
PostedFile = Annotated[tuple[dict[str, list[str]], dict[str, list[Upload]]], Depends(_posted_file)]


def _days(values: dict[str, str]) -> dict[str, int]:
    """The form's days, when given, as the field of a request or an answer."""
    text = values.get("days", "").strip()
    if not text:
        return {}
    if not text.isdigit():
        raise ValidationProblem(_("Give the days as a whole number."), field="days")
    return {"days": int(text)}


def _entries(session: Session, codes: Iterable[str]) -> dict[str, schemas.ResourceOut]:
    """Catalogue entries by code, for the names and data items' titles the lists show."""
    found = [resource_by_code(session, code) for code in sorted(set(codes))]
    return {entry.code: entry for entry in catalogue.shape(session, found)}


def _department_names(session: Session, codes: Iterable[str]) -> dict[str, str]:
    return {code: get_organization_by_code(session, code).name for code in set(codes)}


def _departments(session: Session, ids: Iterable[int]) -> list[Any]:
    return sorted((get_organization(session, id_) for id_ in ids), key=lambda department: department.code)


def _my_resources(session: Session, user: Principal) -> list[schemas.ResourceOut]:
    """Every resource of the departments the user manages, drafts and retired ones too."""
    found: list[Resource] = []
    for department in sorted(user.organizations(MANAGE)):
        found += session.scalars(catalogue.search(user, provider_org_id=department).limit(LISTED))
    return catalogue.shape(session, found)


# The console: my resources, requests to answer and grants given; my requests and my grants.


def _requests(
    session: Session, user: Principal, side: str, status: str | None, now: datetime
) -> list[schemas.RequestOut]:
    return [
        grants.shape_request(session, found, now) for found in grants.requests_of(session, user, side, status)
    ]


def _grants(session: Session, user: Principal, side: str, now: datetime) -> list[schemas.GrantOut]:
    return [grants.shape_grant(session, found, now) for found in grants.grants_of(session, user, side)]


def _console(
    request: Request,
    session: Session,
    user: Principal,
    failed: Failed | None = None,
    status_code: int = 200,
    issued: schemas.GrantKeyIssued | None = None,
) -> Response:
    """``failed``: a refused answer or revocation, shown next to its form; or on top when its form is gone
    (a colleague answered the request, or revoked the grant, meanwhile). ``issued``: a key just issued, its
    secret shown in this page only."""
    now = utcnow()
    manages, asks = user.has(MANAGE), user.has(REQUEST)
    to_answer = _requests(session, user, "owner", "pending", now) if manages else []
    given = _grants(session, user, "owner", now) if manages else []
    asked = _requests(session, user, "consumer", None, now) if asks else []
    held = _grants(session, user, "consumer", now) if asks else []
    objections = _objections(session, user, manages, asks)
    to_decide = _to_decide(session, user, manages, now)
    forms = {("request", r.id) for r in to_answer} | {("grant", g.id) for g in given if g.state == "active"}
    forms |= {("objection", objection.id) for objection in objections["to_correct"]}
    forms |= {("application", a.id) for a in to_decide["applications_to_answer"]}
    forms |= {("wish", w.id) for w in to_decide["wishes_to_answer"]}
    forms |= {("grant-key", g.id) for g in held}
    placed = failed is not None and failed[:2] in forms
    listed: list[schemas.RequestOut | schemas.GrantOut] = [*to_answer, *given, *asked, *held]
    context = {
        "manages": manages,
        "asks": asks,
        "resources": _my_resources(session, user) if manages else [],
        "to_answer": to_answer,
        "given": given,
        "asked": asked,
        "held": held,
        "grant_keys": {grant.id: keys.listed(session, user, grant.id) for grant in held},
        "issued": issued,
        "failed": failed if placed else None,
        "unplaced": failed[2] if failed is not None and not placed else None,
        "entries": _entries(session, (item.resource for item in listed)),
        "departments": _department_names(session, (item.consumer for item in listed)),
        **objections,
        **to_decide,
    }
    return _page(request, "console.html", context, status_code)


@router.post(f"{CONSOLE}/grants/{{grant_id}}/keys", dependencies=[CsrfChecked])
def issue_key(request: Request, user: Staff, session: DbSession, grant_id: int) -> Response:
    """A key for one grant: the page answers with its secret (never put in a redirect or the session)."""
    outcome = _attempt(session, lambda: keys.issue(session, user, grant_id, utcnow()))
    if isinstance(outcome, Problem):
        return _console(request, session, user, ("grant-key", grant_id, detail_of(outcome)), outcome.status)
    assert isinstance(outcome, schemas.GrantKeyIssued)
    return _console(request, session, user, issued=outcome)


@router.get(CONSOLE)
def console_page(request: Request, user: Staff, session: DbSession) -> Response:
    """The department's data exchange: its resources, the requests to answer and the grants it gave; the
    requests it made and the grants it holds, each in force with its download."""
    return _console(request, session, user)


def _console_step(
    request: Request,
    session: Session,
    user: Principal,
    form: tuple[str, int],
    action: Callable[[], object],
    done: str,
    section: str,
) -> Response:
    """One answer or revocation: back to its section of the console, or the console with the refusal next
    to its form."""
    outcome = _attempt(session, action)
    if isinstance(outcome, Problem):
        return _console(request, session, user, (*form, detail_of(outcome)), outcome.status)
    flash(request, done)
    return see_other(f"{CONSOLE}#{section}")


@router.post(f"{CONSOLE}/requests/{{request_id}}/answer", dependencies=[CsrfChecked])
def answer_request(
    request: Request, user: Staff, session: DbSession, request_id: int, fields: Posted
) -> Response:
    """Approve (the fields left ticked, for at most the days given) or reject with a reason."""
    values = single_values(fields)
    decision = values.get("decision", "")
    approval = {"fields": fields.get("fields", []), **_days(values)} if decision == "approve" else {}

    def decide() -> object:
        reason = values.get("reason", "").strip() or None
        data = schemas.AnswerIn.model_validate({"decision": decision, "reason": reason, **approval})
        return grants.answer(session, user, request_id, data, utcnow())

    done = str(ANSWERED.get(decision, ""))
    return _console_step(request, session, user, ("request", request_id), decide, done, "to-answer")


@router.post(f"{CONSOLE}/grants/{{grant_id}}/revoke", dependencies=[CsrfChecked])
def revoke_grant(
    request: Request,
    user: Staff,
    session: DbSession,
    grant_id: int,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    def revoke() -> object:
        given = schemas.RevokeIn(reason=reason.strip())
        return grants.revoke(session, user, grant_id, given.reason, utcnow())

    done = _("The grant is revoked; the department can no longer read through it.")
    return _console_step(request, session, user, ("grant", grant_id), revoke, done, "given")


@router.get(f"{CONSOLE}/grants/{{grant_id}}.csv")
def grant_csv(request: Request, user: SignedIn, session: DbWriteSession, grant_id: int) -> Response:
    """Everything a grant lets through as one CSV file: the API's governed read, audited once (hence the
    write session of a GET)."""
    grant, resource = grants.record_csv_read(session, user, grant_id, utcnow())
    headers = {
        "Content-Disposition": f'attachment; filename="{resource.code}-grant-{grant.id}.csv"',
        "Cache-Control": "private, no-store",  # someone's data: no shared cache keeps it
    }
    body = grants.governed_csv(get_database(request), grant.id)
    return StreamingResponse(body, media_type="text/csv; charset=utf-8", headers=headers)


# A resource of mine: its entry, loading data as a new version, and the versions with their reports.


def _upload_limit() -> int:
    """The largest file the page takes: the exchange's limit, within what a page's form reads at all."""
    return min(MAX_FILE_BYTES, exchange_settings().max_upload_mb * MIB)


def _resource_page(
    request: Request,
    session: Session,
    user: Principal,
    code: str,
    problem: Problem | None = None,
    note: str = "",
    status_problem: Problem | None = None,
) -> Response:
    resource = owned_resource(session, user, code)
    history = session.scalars(
        select(Version)
        .where(Version.resource_id == resource.id)
        .order_by(Version.number.desc())
        .limit(LISTED_VERSIONS)
    )
    context = {
        "resource": catalogue.shape(session, [resource])[0],
        "versions": [loads.shape(version, resource.current_version_id) for version in history],
        "problem": detail_of(problem) if problem else None,
        "note": note,
        "max_mb": _upload_limit() // MIB,
        "status_problem": detail_of(status_problem) if status_problem else None,
    }
    failed = problem or status_problem
    return _page(request, "console_resource.html", context, failed.status if failed else 200)


@router.get(f"{CONSOLE}/resources/{{code}}")
def resource_page(request: Request, user: SignedIn, session: DbSession, code: str) -> Response:
    """A resource its department manages: the entry, a form to load data, the loads with their reports."""
    return _resource_page(request, session, user, code)


@router.post(f"{CONSOLE}/resources/{{code}}/versions", dependencies=[CsrfChecked])
def load_data(
    request: Request, user: SignedIn, session: DbSession, code: str, posted: PostedFile
) -> Response:
    """Load a CSV, JSON or Excel file as a new version: current when valid, else kept with its report."""
    note = single_values(posted[0]).get("note", "").strip()[:400]
    upload = single_files(posted[1]).get("file")

    def load() -> Version:
        if upload is None:
            raise ValidationProblem(_("Choose a CSV, JSON or Excel (.xlsx) file to load."), field="file")
        if len(upload.data) > _upload_limit():
            limit = _upload_limit() // MIB
            raise ValidationProblem(
                _("A file loaded here may be at most %(mb)s MB; load larger ones through the API.", mb=limit),
                status=413,
                field="file",
            )
        errors = exchange_settings().max_report_errors
        return loads.load(session, user, code, upload.filename, upload.data, note, errors)

    outcome = _attempt(session, load)
    if isinstance(outcome, Problem):
        return _resource_page(request, session, user, code, outcome, note)
    flash(request, _load_outcome(outcome))
    return see_other(f"{CONSOLE}/resources/{quote(code)}#version-{outcome.number}")


def _load_outcome(version: Version) -> str:
    if version.valid:
        return _(
            "Version %(n)s is loaded and current: %(rows)s rows.", n=version.number, rows=version.row_count
        )
    count = version.report.get("error_count", 0)
    return _("Version %(n)s has %(count)s errors and is not used.", n=version.number, count=count)


# Asking for data: the catalogue of what may be asked for, and the request form.


@router.get(f"{CONSOLE}/catalogue")
def catalogue_page(
    request: Request,
    user: SignedIn,
    session: DbSession,
    paging: Paging,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Published resources of every department (and the user's own), to ask for by words."""
    require(user, REQUEST)
    rows, total = fetch_page(session, catalogue.search(user, q or None), paging)
    page: Page[schemas.ResourceOut] = Page(
        items=catalogue.shape(session, rows), total=total, limit=paging.limit, offset=paging.offset
    )
    own = {department.code for department in _departments(session, user.organizations(MANAGE))}
    return _page(request, "console_catalogue.html", {"page": page, "q": q, "own": own})


def _request_form(
    request: Request,
    session: Session,
    user: Principal,
    code: str,
    values: dict[str, Any],
    problem: Problem | None = None,
) -> Response:
    """``values``: the form as it was sent, shown again with ``problem``."""
    require(user, REQUEST)
    resource = catalogue.visible(session, user, code)
    askable = resource.status == "published" and resource.sharing_class != "none"
    context = {
        "resource": catalogue.shape(session, [resource])[0],
        "askable": askable,
        "consumers": _departments(session, user.organizations(REQUEST) - {resource.provider_org_id}),
        "values": values,
        "problem": detail_of(problem) if problem else None,
    }
    return _page(request, "request.html", context, problem.status if problem else 200)


@router.get(f"{CONSOLE}/resources/{{code}}/request")
def request_page(request: Request, user: SignedIn, session: DbSession, code: str) -> Response:
    """Ask for a resource on behalf of one's department: the purpose, the fields, for how long."""
    return _request_form(request, session, user, code, {"fields": [], "days": "90"})


@router.post(f"{CONSOLE}/resources/{{code}}/request", dependencies=[CsrfChecked])
def ask_for_data(
    request: Request, user: SignedIn, session: DbSession, settings: AppSettings, code: str, fields: Posted
) -> Response:
    values = single_values(fields)
    chosen = fields.get("fields", [])

    def ask() -> Any:
        if not chosen:
            raise ValidationProblem(_("Tick the fields your department needs."), field="fields")
        data = schemas.RequestIn.model_validate(
            {
                "consumer": values.get("consumer", ""),
                "purpose": values.get("purpose", "").strip(),
                "fields": chosen,
                **_days(values),
            }
        )
        days = exchange_settings().answer_working_days
        return grants.ask(session, user, code, data, utcnow(), settings.timezone, days)

    outcome = _attempt(session, ask)
    if isinstance(outcome, Problem):
        return _request_form(request, session, user, code, {**values, "fields": chosen}, outcome)
    if outcome.status == "approved":
        flash(request, _("Granted at once: this resource is shared on request."))
    else:
        due = outcome.due_at.astimezone(ZoneInfo(settings.timezone)).strftime("%Y-%m-%d")
        flash(request, _("Your request is sent; the owner answers by %(due)s.", due=due))
    return see_other(f"{CONSOLE}#asked")


# --- decision support, corrections to handle, registering and publishing ---------------------------------
# The dashboard over the exchange's figures (service/insight.py) with ECharts and tables; the objections to
# a department's resources with accept/reject forms, and those it filed; a form to register a resource and
# buttons to publish or retire it; a resource's correction history and quality score.

PERIODS = (7, 30, 90, 180, 365)  # the dashboard's period choices, in days
FRESHNESS_STATES = {"fresh": _l("Fresh"), "due": _l("Update due"), "stale": _l("Stale")}
UPDATE_CYCLES = {
    "realtime": _l("Real time"),
    "daily": _l("Daily"),
    "weekly": _l("Weekly"),
    "monthly": _l("Monthly"),
    "quarterly": _l("Quarterly"),
    "yearly": _l("Yearly"),
    "irregular": _l("Irregular"),
}
CHANNELS = {
    "preview": _l("Portal preview"),
    "csv": _l("CSV download"),
    "json": _l("JSON download"),
    "api": _l("Open query API"),
    "ckan": _l("CKAN datastore"),
}
OBJECTION_STATES = {"open": _l("Unanswered"), "accepted": _l("Corrected"), "rejected": _l("Not corrected")}
OBJECTION_ANSWERED = {
    "accept": _l("The correction is accepted: a corrected version is current and the consumers are told."),
    "reject": _l("The correction is rejected; the department that reported it is told why."),
}
STATUS_CHANGED = {
    "published": _l("The resource is published."),
    "retired": _l("The resource is retired; it is no longer listed."),
}
OPEN_CLASSES = {
    "open": _l("Open to everyone"),
    "conditional": _l("Open on application"),
    "closed": _l("Not open"),
}
REQUIRED_WORDS = {"required", "yes", "true", "1", "是", "必填"}


@router.get(f"{CONSOLE}/insight")
def insight_page(
    request: Request, user: SignedIn, session: DbSession, days: InsightDays = insight.DEFAULT_DAYS
) -> Response:
    """Decision support: which resources are read, by whom, how fresh they are, how corrections are handled,
    how often open data is downloaded — the city for the operator, their departments for staff."""
    found = insight.figures(session, user, days, utcnow())
    labels = {
        "reads": _("Reads"),
        "rows": _("Rows read"),
        "filed": _("Filed"),
        "freshness": {code: str(label) for code, label in FRESHNESS_STATES.items()},
        "objections": {
            "accepted": str(OBJECTION_STATES["accepted"]),
            "rejected": str(OBJECTION_STATES["rejected"]),
            "open": str(OBJECTION_STATES["open"]),
            "late": _("Late"),
        },
        "channels": {code: str(label) for code, label in CHANNELS.items()},
    }
    names = _department_names(
        session,
        [
            *found.departments,
            *(row.provider for row in found.use.top_resources),
            *(row.provider for row in found.freshness.attention),
            *(row.provider for row in found.downloads.top_resources),
        ],
    )
    context = {
        "found": found,
        "chart": {"figures": found.model_dump(mode="json"), "labels": labels},
        "departments": names,
        "own": ", ".join(names[code] for code in found.departments),
        "days": days,
        "periods": sorted({*PERIODS, days}),
        "freshness_states": FRESHNESS_STATES,
        "update_cycles": UPDATE_CYCLES,
        "channels": CHANNELS,
    }
    return _page(request, "console_insight.html", context)


def _objections(session: Session, user: Principal, manages: bool, asks: bool) -> dict[str, Any]:
    """The console's corrections: open objections to the user's departments' resources, and those they
    filed, with the resources' entries and the filing departments' names."""
    to_correct = (
        [
            corrections.shape(session, found)
            for found in corrections.objections_of(session, user, "owner", "open")
        ]
        if manages
        else []
    )
    filed = (
        [corrections.shape(session, found) for found in corrections.objections_of(session, user, "filer")]
        if asks
        else []
    )
    return {
        "to_correct": to_correct,
        "filed_objections": filed,
        "objection_entries": _entries(session, (found.resource for found in [*to_correct, *filed])),
        "filers": _department_names(session, (found.filer for found in to_correct if found.filer)),
        "objection_states": OBJECTION_STATES,
        "overdue_objections": {found.id for found in to_correct if found.due_at < utcnow()},
    }


def _corrected_values(text: str) -> dict[str, dict[str, str]] | None:
    """The accepted values, one ``row,item,value`` a line; None when none are given (then the proposed)."""
    values: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split(",", 2)]
        if len(parts) != 3 or not parts[0].isdigit():
            raise ValidationProblem(
                _("Write each corrected value as row,item,value: %(line)s", line=line.strip()),
                field="corrections",
            )
        values.setdefault(parts[0], {})[parts[1]] = parts[2]
    return values or None


@router.post(f"{CONSOLE}/objections/{{objection_id}}/answer", dependencies=[CsrfChecked])
def answer_objection(
    request: Request, user: Staff, session: DbSession, objection_id: int, fields: Posted
) -> Response:
    """Accept (with the corrected values given, by default those proposed) or reject, with a reason."""
    values = single_values(fields)
    decision = values.get("decision", "")

    def decide() -> object:
        reason = values.get("reason", "").strip()
        if not reason:
            raise ValidationProblem(_("Give the reason (the department is told)."), field="reason")
        fixed = _corrected_values(values.get("corrections", "")) if decision == "accept" else None
        data = schemas.ObjectionAnswerIn.model_validate(
            {"decision": decision, "reason": reason, "corrections": fixed}
        )
        return corrections.answer(session, user, objection_id, data, utcnow())

    done = str(OBJECTION_ANSWERED.get(decision, ""))
    return _console_step(request, session, user, ("objection", objection_id), decide, done, "corrections")


@router.get(f"{CONSOLE}/resources/{{code}}/quality")
def quality_page(request: Request, user: SignedIn, session: DbSession, code: str) -> Response:
    """A resource's correction history and quality score, for those who see the resource."""
    resource = catalogue.visible(session, user, code)
    found = corrections.quality(session, user, code, utcnow())
    context = {
        "resource": catalogue.shape(session, [resource])[0],
        "quality": found,
        "filers": _department_names(
            session, (objection.filer for objection in found.history if objection.filer)
        ),
        "objection_states": OBJECTION_STATES,
        "manages": acts_for(user, MANAGE, resource.provider_org_id),
    }
    return _page(request, "console_quality.html", context)


# Registering a resource of one's department, and publishing or retiring it.

REGISTER = f"{CONSOLE}/register"


def _register_form(
    request: Request,
    session: Session,
    user: Principal,
    values: dict[str, str],
    problem: Problem | None = None,
) -> Response:
    """``values``: the form as it was sent, shown again with ``problem``."""
    require(user, MANAGE)
    context = {
        "values": values,
        "problem": detail_of(problem) if problem else None,
        "providers": _departments(session, user.organizations(MANAGE)),
        "update_cycles": UPDATE_CYCLES,
        "open_classes": OPEN_CLASSES,
        "formats": ("csv", "json", "api", "ngsi-ld"),
    }
    return _page(request, "console_register.html", context, problem.status if problem else 200)


def _split(text: str, separator: str) -> list[str]:
    return [part.strip() for part in text.split(separator) if part.strip()]


def _data_items(text: str) -> list[dict[str, Any]]:
    """Data items, one ``name,title,type,required`` a line (type defaults to string; required: yes/是/...)."""
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = [part.strip() for part in line.replace("，", ",").split(",")]
        if not 2 <= len(parts) <= 4:
            raise ValidationProblem(
                _("Data items, line %(n)s: write name,title,type,required.", n=number), field="data_items"
            )
        name, title, kind, required = (*parts, "", "")[:4]
        items.append(
            {
                "name": name,
                "title": title,
                "type": kind or "string",
                "required": required.lower() in REQUIRED_WORDS,
            }
        )
    return items


def _resource_fields(values: dict[str, str]) -> dict[str, Any]:
    """The register form as the catalogue's fields: classification levels split at "/", keywords at
    commas, data items one a line."""
    text = {name: value.strip() for name, value in values.items()}
    optional = ("name_en", "sharing_condition", "legal_basis", "licence")
    return {
        **{name: text.get(name, "") for name in ("code", "name", "provider", "summary", "sharing_class")},
        **{name: text.get(name) or None for name in optional},
        **{name: text[name] for name in ("format", "open_class", "update_cycle") if text.get(name)},
        "classification": _split(text.get("classification", ""), "/"),
        "keywords": _split(text.get("keywords", "").replace("，", ","), ","),
        "data_items": _data_items(values.get("data_items", "")),
    }


@router.get(REGISTER)
def register_page(request: Request, user: SignedIn, session: DbSession) -> Response:
    """Register a resource of one's department: the catalogue's core fields and its data items."""
    defaults = {"sharing_class": "unconditional", "open_class": "closed", "update_cycle": "irregular"}
    return _register_form(request, session, user, defaults)


@router.post(REGISTER, dependencies=[CsrfChecked])
def register_resource(request: Request, user: SignedIn, session: DbSession, fields: Posted) -> Response:
    values = single_values(fields)

    def register() -> Resource:
        return catalogue.register(session, user, schemas.ResourceIn.model_validate(_resource_fields(values)))

    outcome = _attempt(session, register)
    if isinstance(outcome, Problem):
        return _register_form(request, session, user, values, outcome)
    flash(request, _("%(code)s is registered as a draft: load its data, then publish it.", code=outcome.code))
    return see_other(f"{CONSOLE}/resources/{quote(outcome.code)}")


@router.post(f"{CONSOLE}/resources/{{code}}/status", dependencies=[CsrfChecked])
def resource_status(
    request: Request,
    user: SignedIn,
    session: DbSession,
    code: str,
    status: Annotated[str, Form(pattern="^(published|retired)$")],
) -> Response:
    """Publish a resource (it needs valid data) or retire it."""
    outcome = _attempt(session, lambda: catalogue.set_status(session, user, code, status))
    if isinstance(outcome, Problem):
        return _resource_page(request, session, user, code, status_problem=outcome)
    flash(request, str(STATUS_CHANGED[status]))
    return see_other(f"{CONSOLE}/resources/{quote(code)}")


# Applications to use the department's data open on application, and the data requests addressed to it
# (the console's partials console_applications.html and console_wishes.html).

APPLICATION_ANSWERED = {
    "approve": _l("The application is approved; the applicant may download the data."),
    "reject": _l("The application is rejected; the applicant is told why."),
}
WISH_ANSWERED = _l("The data request is answered; the resident who asked is told.")


def _to_decide(session: Session, user: Principal, manages: bool, now: datetime) -> dict[str, Any]:
    pending = applications.of_side(session, user, "owner", "pending") if manages else []
    addressed = wishes.to_answer(session, user) if manages else []
    return {
        "applications_to_answer": applications.shape(session, pending, now),
        "wishes_to_answer": wishes.shape(session, user, addressed),
        "wish_states": WISH_STATES,
    }


@router.post(f"{CONSOLE}/applications/{{application_id}}/answer", dependencies=[CsrfChecked])
def answer_application(
    request: Request,
    user: Staff,
    session: DbSession,
    application_id: int,
    decision: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=4000)] = "",
    days: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Approve (for the days asked, or fewer) or reject with a reason."""

    def decide() -> object:
        answer = {"decision": decision, "reason": reason, **_days({"days": days})}
        data = schemas.ApplicationAnswerIn.model_validate(answer)
        return applications.answer(session, user, application_id, data, utcnow())

    done = str(APPLICATION_ANSWERED.get(decision, ""))
    form = ("application", application_id)
    return _console_step(request, session, user, form, decide, done, "applications")


@router.post(f"{CONSOLE}/wishes/{{wish_id}}/answer", dependencies=[CsrfChecked])
def answer_wish(
    request: Request,
    user: Staff,
    session: DbSession,
    wish_id: int,
    decision: Annotated[str, Form(max_length=10)] = "",
    answer: Annotated[str, Form(max_length=8000)] = "",
    resource: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Planned (saying what), fulfilled by a published resource, or declined with the reason."""

    def decide() -> object:
        given = {"decision": decision, "answer": answer, "resource": resource.strip() or None}
        data = schemas.WishAnswerIn.model_validate(given)
        return wishes.answer(session, user, wish_id, data, utcnow())

    return _console_step(request, session, user, ("wish", wish_id), decide, str(WISH_ANSWERED), "wishes")
