"""The open-data portal: published open resources to browse and search by anyone, each with its data items,
a preview of its current version and a CSV or JSON download. The department console of the data exchange:
a department's resources (loading their data), the requests to answer and the grants given, the catalogue to
ask from, the requests made and the grants held (with their downloads)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.api import exchange_settings
from cityhub.domains.exchange.models import Resource, Version
from cityhub.domains.exchange.service import catalogue, grants, loads, reads
from cityhub.domains.exchange.service.access import MANAGE, REQUEST, owned_resource, resource_by_code
from cityhub.domains.identity import (
    Principal,
    SignedIn,
    get_organization,
    get_organization_by_code,
    page_principal,
    require,
)
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.errors import Forbidden, NotFound, Problem, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.i18n import lazy_gettext as _l
from cityhub.kernel.pagination import Page, Paging, fetch_page
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
    rows, total = fetch_page(session, catalogue.search(None, q or None, provider_id), paging)
    page: Page[schemas.ResourceOut] = Page(
        items=catalogue.shape(session, rows), total=total, limit=paging.limit, offset=paging.offset
    )
    return render(request, "exchange/portal.html", {"page": page, "q": q, "provider": provider})


def _open_resource(session: DbSession, code: str) -> Resource:
    resource = catalogue.visible(session, None, code)
    if resource.current_version_id is None:
        raise NotFound(_("Resource %(code)s has no data yet.", code=code))
    return resource


@router.get("/data/{code}.{file_format}", dependencies=[PublicRateLimited])
def download(
    request: Request,
    session: DbSession,
    code: str,
    file_format: Annotated[str, Path(pattern="^(csv|json)$")],
) -> Response:
    """The current data of an open resource as CSV (UTF-8 with a BOM) or JSON, streamed."""
    resource = _open_resource(session, code)
    names = [item["name"] for item in resource.data_items]
    version_id = resource.current_version_id
    assert version_id is not None
    lines = _csv_lines(get_database(request), version_id, names) if file_format == "csv" else None
    body = lines or _json_chunks(get_database(request), version_id)
    media = "text/csv; charset=utf-8" if file_format == "csv" else "application/json"
    headers = {"Content-Disposition": f'attachment; filename="{code}.{file_format}"'}
    return StreamingResponse(body, media_type=media, headers=headers)


@router.get("/data/{code}")
def dataset(request: Request, session: DbSession, code: str, visitor: Visitor) -> Response:
    """One open resource: its catalogue entry, its data items and the first rows of its current data."""
    resource = catalogue.visible(session, None, code)
    entry = catalogue.shape(session, [resource])[0]
    preview: list[dict[str, object]] = []
    if resource.current_version_id is not None:
        preview, _next = reads.page(session, resource.current_version_id, 0, PREVIEW_ROWS)
    context = {"resource": entry, "preview": preview, "signed_in": visitor is not None}
    return render(request, "exchange/dataset.html", context)


def _csv_lines(database: Database, version_id: int, names: list[str]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(names)
    yield "\ufeff" + _drain(buffer)
    with database.reading() as session:
        for row in reads.every_row(session, version_id):
            writer.writerow(["" if row.get(name) is None else row[name] for name in names])
            if buffer.tell() > 64_000:
                yield _drain(buffer)
    yield _drain(buffer)


def _json_chunks(database: Database, version_id: int) -> Iterator[str]:
    yield "["
    first = True
    with database.reading() as session:
        for row in reads.every_row(session, version_id):
            yield ("" if first else ",") + json.dumps(row, ensure_ascii=False)
            first = False
    yield "]"


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


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
) -> Response:
    """``failed``: a refused answer or revocation, shown next to its form; or on top when its form is gone
    (a colleague answered the request, or revoked the grant, meanwhile)."""
    now = utcnow()
    manages, asks = user.has(MANAGE), user.has(REQUEST)
    to_answer = _requests(session, user, "owner", "pending", now) if manages else []
    given = _grants(session, user, "owner", now) if manages else []
    asked = _requests(session, user, "consumer", None, now) if asks else []
    held = _grants(session, user, "consumer", now) if asks else []
    forms = {("request", r.id) for r in to_answer} | {("grant", g.id) for g in given if g.state == "active"}
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
        "failed": failed if placed else None,
        "unplaced": failed[2] if failed is not None and not placed else None,
        "entries": _entries(session, (item.resource for item in listed)),
        "departments": _department_names(session, (item.consumer for item in listed)),
    }
    return _page(request, "console.html", context, status_code)


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
    }
    return _page(request, "console_resource.html", context, problem.status if problem else 200)


@router.get(f"{CONSOLE}/resources/{{code}}")
def resource_page(request: Request, user: SignedIn, session: DbSession, code: str) -> Response:
    """A resource its department manages: the entry, a form to load data, the loads with their reports."""
    return _resource_page(request, session, user, code)


@router.post(f"{CONSOLE}/resources/{{code}}/versions", dependencies=[CsrfChecked])
def load_data(
    request: Request, user: SignedIn, session: DbSession, code: str, posted: PostedFile
) -> Response:
    """Load a CSV or JSON file as a new version: current when valid, else kept with its report."""
    note = single_values(posted[0]).get("note", "").strip()[:400]
    upload = single_files(posted[1]).get("file")

    def load() -> Version:
        if upload is None:
            raise ValidationProblem(_("Choose a CSV or JSON file to load."), field="file")
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
