"""Exchange JSON API under /api/v1/exchange: the catalogue (departments register, change, publish and retire
their resources; everyone finds what they may see) and loads of a resource's data as versions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import Version
from cityhub.domains.exchange.service import (
    applications,
    catalogue,
    corrections,
    grants,
    insight,
    keys,
    loads,
    opening,
    reads,
    sources,
    wishes,
)
from cityhub.domains.exchange.service.access import owned_resource
from cityhub.domains.exchange.settings import ExchangeSettings
from cityhub.domains.identity import CurrentPrincipal, Principal, get_organization_by_code, optional_principal
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.errors import NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.jsontext import FastJSONResponse
from cityhub.kernel.pagination import Page, Paging, fetch_page
from cityhub.kernel.settings import domain_settings
from cityhub.kernel.web import AppSettings, DbSession, DbWriteSession, PublicRateLimited, get_database

router = APIRouter()
Visitor = Annotated[Principal | None, Depends(optional_principal)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FILE_TYPES = {"text/csv": "csv", "application/json": "json", XLSX: "xlsx"}


def exchange_settings() -> ExchangeSettings:
    return domain_settings(ExchangeSettings)


# -- the catalogue -----------------------------------------------------------------------------------------


@router.get("/resources", response_model=Page[schemas.ResourceOut], summary="Find resources one may see")
def find_resources(
    session: DbSession,
    visitor: Visitor,
    paging: Paging,
    q: Annotated[
        str | None, Query(max_length=200, description="Words in name, summary, code, keywords.")
    ] = None,
    provider: Annotated[str | None, Query(max_length=64, description="A department's code.")] = None,
    sharing_class: schemas.SharingClass | None = None,
    open_class: schemas.OpenClass | None = None,
) -> Page[schemas.ResourceOut]:
    provider_id = get_organization_by_code(session, provider).id if provider else None
    statement = catalogue.search(visitor, q, provider_id, sharing_class, open_class)
    rows, total = fetch_page(session, statement, paging)
    shaped = zip(rows, catalogue.shape(session, rows), strict=True)
    entries = [opening.entry_for(visitor, resource, entry) for resource, entry in shaped]
    return Page(items=entries, total=total, limit=paging.limit, offset=paging.offset)


@router.post(
    "/resources",
    response_model=schemas.ResourceOut,
    status_code=status.HTTP_201_CREATED,
    summary="Register a resource of one's department (a draft until published)",
)
def register(
    body: schemas.ResourceIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.ResourceOut:
    return catalogue.shape(session, [catalogue.register(session, principal, body)])[0]


@router.get("/resources/{code}", response_model=schemas.ResourceOut, summary="One resource")
def resource(code: str, session: DbSession, visitor: Visitor) -> schemas.ResourceOut:
    found = catalogue.visible(session, visitor, code)
    return opening.entry_for(visitor, found, catalogue.shape(session, [found])[0])


@router.put("/resources/{code}", response_model=schemas.ResourceOut, summary="Change a resource's entry")
def change(
    code: str, body: schemas.ResourceIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.ResourceOut:
    return catalogue.shape(session, [catalogue.change(session, principal, code, body)])[0]


class StatusIn(BaseModel):
    status: Literal["draft", "published", "retired"]


@router.post("/resources/{code}/status", response_model=schemas.ResourceOut, summary="Publish or retire")
def set_status(
    code: str, body: StatusIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.ResourceOut:
    return catalogue.shape(session, [catalogue.set_status(session, principal, code, body.status)])[0]


@router.put(
    "/resources/{code}/open-rules",
    response_model=schemas.ResourceOut,
    summary="De-identification before opening: items suppressed, items generalised, the smallest group",
)
def set_open_rules(
    code: str, body: schemas.OpenRules, principal: CurrentPrincipal, session: DbSession
) -> schemas.ResourceOut:
    return catalogue.shape(session, [opening.set_rules(session, principal, code, body)])[0]


# -- loads -------------------------------------------------------------------------------------------------


@router.post(
    "/resources/{code}/versions",
    response_model=schemas.VersionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Load data as a new version: the body is the CSV, JSON or Excel (.xlsx) file (valid: it becomes "
    "current; invalid: kept with its report, valid=false)",
    openapi_extra={
        "requestBody": {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {},
                XLSX: {"schema": {"type": "string", "format": "binary"}},
            }
        }
    },
)
async def load(
    code: str,
    request: Request,
    principal: CurrentPrincipal,
    note: Annotated[str, Query(max_length=400)] = "",
) -> schemas.VersionOut:
    settings = exchange_settings()
    kind = FILE_TYPES.get(request.headers.get("content-type", "").split(";")[0].strip().lower())
    if kind is None:
        raise ValidationProblem(
            _("Send the file as text/csv, application/json or %(xlsx)s.", xlsx=XLSX), field="content-type"
        )
    content = await _body(request, settings.max_upload_mb * 1024 * 1024)
    # The load runs in one pool thread with its own unit of work: it may take seconds for a large file.
    return await run_in_threadpool(
        _load, get_database(request), principal, code, f"{code}.{kind}", content, note, settings
    )


def _load(
    database: Database,
    principal: Principal,
    code: str,
    file_name: str,
    content: bytes,
    note: str,
    settings: ExchangeSettings,
) -> schemas.VersionOut:
    with database.unit_of_work() as session:
        version = loads.load(session, principal, code, file_name, content, note, settings.max_report_errors)
        return loads.shape(version, owned_resource(session, principal, code).current_version_id)


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused once it passes ``limit`` bytes (without reading the rest)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ValidationProblem(
                _("The file is larger than %(mb)s MB.", mb=limit // (1024 * 1024)), status=413, field="body"
            )
        chunks.append(chunk)
    if not size:
        raise ValidationProblem(_("The request has no file in its body."), field="body")
    return b"".join(chunks)


@router.get(
    "/resources/{code}/versions", response_model=list[schemas.VersionOut], summary="Loads, newest first"
)
def versions(code: str, principal: CurrentPrincipal, session: DbSession) -> list[schemas.VersionOut]:
    resource = owned_resource(session, principal, code)
    rows = session.scalars(
        select(Version).where(Version.resource_id == resource.id).order_by(Version.number.desc()).limit(200)
    )
    return [loads.shape(version, resource.current_version_id) for version in rows]


@router.get(
    "/resources/{code}/rows",
    response_model=schemas.RowsPageOut,
    summary="The current version's rows for its provider, a keyset page at a time",
)
def provider_rows(
    code: str,
    principal: CurrentPrincipal,
    session: DbSession,
    after: Annotated[int, Query(ge=0, description="The next_after of the previous page.")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> schemas.RowsPageOut:
    resource = owned_resource(session, principal, code)
    version = session.get(Version, resource.current_version_id) if resource.current_version_id else None
    if version is None:
        raise NotFound(_("Resource %(code)s has no data yet.", code=code))
    rows, next_after = reads.page(session, version.id, after, limit)
    fields = [item["name"] for item in resource.data_items]
    return schemas.RowsPageOut(
        resource=code, version=version.number, fields=fields, rows=rows, next_after=next_after
    )


# -- sources -----------------------------------------------------------------------------------------------


@router.get("/resources/{code}/source", response_model=schemas.SourceOut, summary="Where the data comes from")
def source(code: str, principal: CurrentPrincipal, session: DbSession) -> schemas.SourceOut:
    return sources.shape(owned_resource(session, principal, code))


@router.put(
    "/resources/{code}/source",
    response_model=schemas.SourceOut,
    summary="Set where the data comes from: uploaded files, an API or an entity type of the context hub",
)
def set_source(
    code: str,
    body: Annotated[schemas.SourceIn, Body()],
    principal: CurrentPrincipal,
    session: DbSession,
) -> schemas.SourceOut:
    return sources.shape(sources.configure(session, principal, code, body))


@router.post(
    "/resources/{code}/poll",
    response_model=schemas.PollOut,
    summary="Poll the resource's API or context-hub source now (a new version unless nothing changed)",
)
async def poll(code: str, request: Request, principal: CurrentPrincipal) -> schemas.PollOut:
    # Fetching may take up to source_timeout_seconds: in a pool thread, outside any transaction.
    polled = await run_in_threadpool(
        sources.poll, get_database(request), principal, code, exchange_settings()
    )
    version = polled.version
    return schemas.PollOut(
        resource=polled.code,
        outcome=polled.outcome,
        error=polled.error,
        version=loads.shape(version, polled.current_version_id) if version is not None else None,
        polled_at=polled.polled_at,
    )


# -- requests and grants -----------------------------------------------------------------------------------

Side = Annotated[Literal["owner", "consumer"], Query(description="Answering as the data's owner, or asking.")]


@router.post(
    "/resources/{code}/requests",
    response_model=schemas.RequestOut,
    status_code=status.HTTP_201_CREATED,
    summary="Ask for a resource's data on behalf of one's department (granted at once when unconditional)",
)
def ask(
    code: str, body: schemas.RequestIn, principal: CurrentPrincipal, session: DbSession, settings: AppSettings
) -> schemas.RequestOut:
    now = utcnow()
    days = exchange_settings().answer_working_days
    request = grants.ask(session, principal, code, body, now, settings.timezone, days)
    return grants.shape_request(session, request, now)


@router.get("/requests", response_model=list[schemas.RequestOut], summary="Requests to answer, or made")
def requests(
    principal: CurrentPrincipal,
    session: DbSession,
    side: Side = "owner",
    request_status: Annotated[
        Literal["pending", "approved", "rejected", "withdrawn"] | None, Query(alias="status")
    ] = None,
) -> list[schemas.RequestOut]:
    now = utcnow()
    found = grants.requests_of(session, principal, side, request_status)
    return [grants.shape_request(session, request, now) for request in found]


@router.post("/requests/{request_id}/answer", response_model=schemas.RequestOut, summary="Approve or reject")
def answer(
    request_id: int, body: schemas.AnswerIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.RequestOut:
    now = utcnow()
    return grants.shape_request(session, grants.answer(session, principal, request_id, body, now), now)


@router.get("/grants", response_model=list[schemas.GrantOut], summary="Grants one's departments hold or gave")
def grant_list(
    principal: CurrentPrincipal, session: DbSession, side: Side = "consumer"
) -> list[schemas.GrantOut]:
    now = utcnow()
    return [grants.shape_grant(session, grant, now) for grant in grants.grants_of(session, principal, side)]


@router.post("/grants/{grant_id}/revoke", response_model=schemas.GrantOut, summary="End a grant now")
def revoke(
    grant_id: int, body: schemas.RevokeIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.GrantOut:
    now = utcnow()
    return grants.shape_grant(session, grants.revoke(session, principal, grant_id, body.reason, now), now)


@router.post(
    "/grants/{grant_id}/keys",
    response_model=schemas.GrantKeyIssued,
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API key that reads this grant only (the consumer's staff; the secret is shown once)",
)
def issue_grant_key(grant_id: int, principal: CurrentPrincipal, session: DbSession) -> schemas.GrantKeyIssued:
    return keys.issue(session, principal, grant_id, utcnow())


@router.get("/grants/{grant_id}/keys", response_model=list[schemas.GrantKeyOut], summary="The grant's keys")
def grant_keys(grant_id: int, principal: CurrentPrincipal, session: DbSession) -> list[schemas.GrantKeyOut]:
    return keys.listed(session, principal, grant_id)


@router.delete("/grants/{grant_id}/keys/{key_id}", response_model=schemas.GrantKeyOut, summary="Revoke a key")
def revoke_grant_key(
    grant_id: int, key_id: int, principal: CurrentPrincipal, session: DbSession
) -> schemas.GrantKeyOut:
    return keys.revoke(session, principal, grant_id, key_id)


@router.get("/grants/{grant_id}/usage", response_model=list[schemas.UsageOut], summary="Reads per day")
def grant_usage(grant_id: int, principal: CurrentPrincipal, session: DbSession) -> list[schemas.UsageOut]:
    return grants.usage(session, principal, grant_id)


@router.get(
    "/grants/{grant_id}/rows",
    response_model=schemas.RowsPageOut,
    summary="Read shared data through a grant: only its fields and rows, a keyset page at a time (audited)",
)
def governed_rows(
    grant_id: int,
    principal: CurrentPrincipal,
    session: DbWriteSession,  # a read that leaves its audit record
    after: Annotated[int, Query(ge=0, description="The next_after of the previous page.")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> Response:
    now = utcnow()
    grant, resource = grants.usable_grant(session, principal, grant_id, now)
    rows, next_after = grants.governed_rows(session, grant, resource, after, limit)
    request = {"grant": grant_id, "after": after, "limit": limit, "version": resource.current_version_id}
    grants.record_read(session, principal, grant, request, len(rows), now)
    version = session.get_one(Version, resource.current_version_id)
    # Encoded by orjson straight from the rows: validating 10,000 rows into the model would cost more than
    # reading them (the model documents the shape).
    page = {
        "resource": resource.code,
        "version": version.number,
        "fields": grant.fields,
        "rows": rows,
        "next_after": next_after,
    }
    return FastJSONResponse(page)


@router.get(
    "/grants/{grant_id}/rows.csv",
    summary="Everything a grant lets through as one CSV file (UTF-8 with a BOM), streamed; audited once",
    responses={200: {"content": {"text/csv": {}}}},
)
def governed_csv(
    grant_id: int, request: Request, principal: CurrentPrincipal, session: DbWriteSession
) -> Response:
    grant, resource = grants.record_csv_read(session, principal, grant_id, utcnow())
    body = grants.governed_csv(get_database(request), grant.id)
    headers = {"Content-Disposition": f'attachment; filename="{resource.code}-grant-{grant.id}.csv"'}
    return StreamingResponse(body, media_type="text/csv; charset=utf-8", headers=headers)


# -- corrections -------------------------------------------------------------------------------------------


@router.post(
    "/resources/{code}/objections",
    response_model=schemas.ObjectionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Report wrong rows with evidence and the right values (a department; anyone on open data)",
)
def object_to(
    code: str,
    body: schemas.ObjectionIn,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: AppSettings,
) -> schemas.ObjectionOut:
    days = exchange_settings().correction_working_days
    objection = corrections.file(session, principal, code, body, utcnow(), settings.timezone, days)
    return corrections.shape(session, objection)


@router.post(
    "/objections/{objection_id}/answer",
    response_model=schemas.ObjectionOut,
    summary="Accept (a corrected version follows, consumers are told) or reject with a reason",
)
def answer_objection(
    objection_id: int, body: schemas.ObjectionAnswerIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.ObjectionOut:
    return corrections.shape(session, corrections.answer(session, principal, objection_id, body, utcnow()))


@router.get(
    "/resources/{code}/quality",
    response_model=schemas.QualityOut,
    summary="The resource's correction history and quality score",
)
def quality(code: str, session: DbSession, visitor: Visitor) -> schemas.QualityOut:
    return corrections.quality(session, visitor, code, utcnow())


# -- insight -----------------------------------------------------------------------------------------------

InsightDays = Annotated[
    int, Query(ge=1, le=insight.MAX_DAYS, description="The period: this many days, ending today (UTC).")
]


@router.get(
    "/insight",
    response_model=schemas.InsightOut,
    summary="Decision support: use of shared data, freshness, corrections, open-data downloads",
)
def insight_figures(
    principal: CurrentPrincipal, session: DbSession, days: InsightDays = insight.DEFAULT_DAYS
) -> schemas.InsightOut:
    return insight.figures(session, principal, days, utcnow())


# -- applications ------------------------------------------------------------------------------------------
# A person's application to use conditionally open data (有条件开放), the owner's answer, the download.

ApplicationSide = Annotated[
    Literal["mine", "owner"], Query(description="One's own applications, or those to one's resources.")
]


@router.post(
    "/resources/{code}/applications",
    response_model=schemas.ApplicationOut,
    status_code=status.HTTP_201_CREATED,
    summary="Apply to use a conditionally open resource (the owner answers within working days)",
)
def apply_for_data(
    code: str,
    body: schemas.ApplicationIn,
    principal: CurrentPrincipal,
    session: DbSession,
    settings: AppSettings,
) -> schemas.ApplicationOut:
    now = utcnow()
    days = exchange_settings().answer_working_days
    made = applications.apply(session, principal, code, body, now, settings.timezone, days)
    return applications.shape(session, [made], now)[0]


@router.get(
    "/applications", response_model=list[schemas.ApplicationOut], summary="Applications made, or to answer"
)
def application_list(
    principal: CurrentPrincipal,
    session: DbSession,
    side: ApplicationSide = "mine",
    application_status: Annotated[
        Literal["pending", "approved", "rejected"] | None, Query(alias="status")
    ] = None,
) -> list[schemas.ApplicationOut]:
    found = applications.of_side(session, principal, side, application_status)
    return applications.shape(session, found, utcnow())


@router.post(
    "/applications/{application_id}/answer",
    response_model=schemas.ApplicationOut,
    summary="Approve (for the days asked or fewer) or reject with a reason",
)
def answer_application(
    application_id: int, body: schemas.ApplicationAnswerIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.ApplicationOut:
    now = utcnow()
    answered = applications.answer(session, principal, application_id, body, now)
    return applications.shape(session, [answered], now)[0]


@router.get(
    "/applications/{application_id}/rows.csv",
    summary="The applicant's download of the public data while the approval is in force (audited)",
    responses={200: {"content": {"text/csv": {}}}},
)
def application_csv(application_id: int, principal: CurrentPrincipal, session: DbWriteSession) -> Response:
    return applicant_file(session, principal, application_id)


def applicant_file(session: Session, principal: Principal, application_id: int) -> Response:
    """The applicant's file (audited as it is made), private to them; the API's route and the page's."""
    resource, spool = applications.applicant_csv(session, principal, application_id, utcnow())
    headers = {
        "Content-Disposition": f'attachment; filename="{resource.code}-application-{application_id}.csv"',
        "Cache-Control": "private, no-store",
    }
    body = applications.chunks(spool)
    return StreamingResponse(body, media_type="text/csv; charset=utf-8", headers=headers)


# -- wishes ------------------------------------------------------------------------------------------------
# Citizens' data requests: filed by people, voted for, answered by the department asked.


@router.post(
    "/wishes",
    response_model=schemas.WishOut,
    status_code=status.HTTP_201_CREATED,
    summary="Ask for data the city does not open yet (optionally naming the department)",
)
def file_wish(body: schemas.WishIn, principal: CurrentPrincipal, session: DbSession) -> schemas.WishOut:
    return wishes.shape(session, principal, [wishes.file(session, principal, body, utcnow())])[0]


@router.get("/wishes", response_model=Page[schemas.WishOut], summary="The board of data requests")
def wish_board(
    session: DbSession,
    visitor: Visitor,
    paging: Paging,
    wish_status: Annotated[schemas.WishStatus | None, Query(alias="status")] = None,
    sort: Literal["votes", "new"] = "votes",
) -> Page[schemas.WishOut]:
    rows, total = fetch_page(session, wishes.board(wish_status, sort), paging)
    items = wishes.shape(session, visitor, rows)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.get("/wishes/{wish_id}", response_model=schemas.WishOut, summary="One data request")
def one_wish(wish_id: int, session: DbSession, visitor: Visitor) -> schemas.WishOut:
    return wishes.shape(session, visitor, [wishes.get(session, wish_id)])[0]


@router.post("/wishes/{wish_id}/vote", response_model=schemas.WishOut, summary="Vote for a data request")
def vote_for_wish(wish_id: int, principal: CurrentPrincipal, session: DbSession) -> schemas.WishOut:
    return wishes.shape(session, principal, [wishes.vote(session, principal, wish_id)])[0]


@router.delete("/wishes/{wish_id}/vote", response_model=schemas.WishOut, summary="Take one's vote back")
def take_vote_back(wish_id: int, principal: CurrentPrincipal, session: DbSession) -> schemas.WishOut:
    return wishes.shape(session, principal, [wishes.unvote(session, principal, wish_id)])[0]


@router.post(
    "/wishes/{wish_id}/answer",
    response_model=schemas.WishOut,
    summary="Answer a data request: planned, fulfilled by a resource, or declined with a reason",
)
def answer_wish(
    wish_id: int, body: schemas.WishAnswerIn, principal: CurrentPrincipal, session: DbSession
) -> schemas.WishOut:
    return wishes.shape(session, principal, [wishes.answer(session, principal, wish_id, body, utcnow())])[0]


# -- the open query API ------------------------------------------------------------------------------------

OpenFilters = Annotated[
    list[str] | None,
    Query(
        alias="filter",
        max_length=20,
        description="item:value, equal (public items shown as they are); several items: all hold, one item "
        "several times: any of its values.",
    ),
]


@router.get(
    "/open/{code}/rows",
    response_model=schemas.OpenRowsOut,
    summary="The rows of an open resource as the public gets them (de-identified), a page at a time",
    dependencies=[PublicRateLimited],
)
def open_rows(
    code: str, session: DbWriteSession, paging: Paging, filters: OpenFilters = None
) -> schemas.OpenRowsOut:
    resource, version = opening.open_resource(session, code)
    asked = opening.parse_filters(filters or [])
    found = opening.public_page(session, resource, version, asked, paging.limit, paging.offset)
    opening.count_read(session, resource.id, "api", len(found.items))
    return found


@router.get(
    "/open/{code}/aggregate",
    response_model=schemas.OpenAggregateOut,
    summary="Counts, sums or averages of an open resource's rows by group; small groups are left out",
    dependencies=[PublicRateLimited],
)
def open_aggregate(
    code: str,
    session: DbWriteSession,
    group_by: Annotated[str, Query(max_length=200, description="item[,item[,item]]")],
    measure: Annotated[str, Query(max_length=100, description="count, sum:item or avg:item")] = "count",
) -> schemas.OpenAggregateOut:
    resource, version = opening.open_resource(session, code)
    found = opening.aggregate(session, resource, version, group_by, measure)
    opening.count_read(session, resource.id, "api", len(found.groups))
    return found
