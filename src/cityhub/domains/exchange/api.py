"""Exchange JSON API under /api/v1/exchange: the catalogue (departments register, change, publish and retire
their resources; everyone finds what they may see) and loads of a resource's data as versions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import Version
from cityhub.domains.exchange.service import catalogue, corrections, grants, loads, reads
from cityhub.domains.exchange.service.access import owned_resource
from cityhub.domains.exchange.settings import ExchangeSettings
from cityhub.domains.identity import CurrentPrincipal, Principal, get_organization_by_code, optional_principal
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.errors import NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.jsontext import FastJSONResponse
from cityhub.kernel.pagination import Page, Paging, fetch_page
from cityhub.kernel.settings import domain_settings
from cityhub.kernel.web import AppSettings, DbSession, DbWriteSession, get_database

router = APIRouter()
Visitor = Annotated[Principal | None, Depends(optional_principal)]
FILE_TYPES = {"text/csv": "csv", "application/json": "json"}


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
    return Page(items=catalogue.shape(session, rows), total=total, limit=paging.limit, offset=paging.offset)


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
    return catalogue.shape(session, [catalogue.visible(session, visitor, code)])[0]


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


# -- loads -------------------------------------------------------------------------------------------------


@router.post(
    "/resources/{code}/versions",
    response_model=schemas.VersionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Load data as a new version: the body is the CSV or JSON file (valid: it becomes current; "
    "invalid: kept with its report, valid=false)",
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}, "application/json": {}}}
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
        raise ValidationProblem(_("Send the file as text/csv or application/json."), field="content-type")
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
