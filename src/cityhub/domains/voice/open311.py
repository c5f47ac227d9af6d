"""The Open311 GeoReport v2 server at /open311/v2: every resource in XML (the spec's required format) and
JSON, chosen by the path's suffix; errors in the spec's shape (a list of code + description) and format."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from cityhub.domains.identity import Principal, api_key_principal
from cityhub.domains.voice.api import Deadlines
from cityhub.domains.voice.service import open311
from cityhub.domains.voice.service.categories import split_answers
from cityhub.domains.voice.service.tickets import Clock
from cityhub.kernel.db import Database
from cityhub.kernel.errors import NotFound, Problem, Unauthorized, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.uploads import read_form
from cityhub.kernel.web import AppSettings, DbSession, get_database

PREFIX = "/open311/v2"
router = APIRouter(prefix=PREFIX, tags=["open311"])
FORMATS = {"json": "application/json", "xml": "text/xml"}
ITEM_NAMES = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "notes": "note",
    "endpoints": "endpoint",
    "formats": "format",
    "errors": "error",
}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _format(response_format: str) -> str:
    if response_format not in FORMATS:
        raise NotFound(_("Formats are json and xml."))
    return response_format


Format = Annotated[str, Depends(_format)]


def _jurisdiction(clock: Deadlines, jurisdiction_id: str | None = None) -> None:
    ours = clock.settings.open311_jurisdiction
    if jurisdiction_id and ours and jurisdiction_id != ours:
        raise NotFound(_("Jurisdiction %(id)s is not served here.", id=jurisdiction_id))


Jurisdiction = Depends(_jurisdiction)


# -- rendering -----------------------------------------------------------------------------------------------


def render(data: Any, root: str, response_format: str, status: int = 200) -> Response:
    if response_format == "json":
        return JSONResponse(data, status_code=status)
    element = _element(root, data)
    body = ET.tostring(element, encoding="utf-8", xml_declaration=True)
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


def _element(name: str, value: Any) -> ET.Element:
    element = ET.Element(name)
    if isinstance(value, list):
        child = ITEM_NAMES.get(name, "item")
        element.extend(_element(child, item) for item in value)
    elif isinstance(value, dict):
        element.extend(_element(key, item) for key, item in value.items())
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = _NOT_XML.sub("", str(value))
    return element


def render_error(request: Request, problem: Problem) -> Response:
    """The error renderer for /open311/: the format the failed path asked for, JSON otherwise."""
    status, errors = open311.refused(problem)
    response_format = "xml" if request.url.path.endswith(".xml") else "json"
    response = render(errors, "errors", response_format, status)
    response.headers.update({k: v for k, v in problem.headers.items() if k.lower() != "www-authenticate"})
    return response


# -- resources -----------------------------------------------------------------------------------------------


@router.get("/discovery.{response_format}", summary="Where and what this Open311 server is")
def discovery(response_format: Format, settings: AppSettings) -> Response:
    url = settings.base_url.rstrip("/") + PREFIX
    data = {
        "changeset": "2026-11-23T00:00:00Z",
        "contact": _("The city's 12345 hotline"),
        "key_service": _("API keys are issued by the platform operator."),
        "endpoints": [
            {
                "specification": "http://wiki.open311.org/GeoReport_v2",
                "url": url,
                "changeset": "2026-11-23T00:00:00Z",
                "type": "production",
                "formats": list(FORMATS.values()),
            }
        ],
    }
    return render(data, "discovery", response_format)


@router.get("/services.{response_format}", dependencies=[Jurisdiction], summary="Service list")
def services(response_format: Format, session: DbSession) -> Response:
    return render(open311.services(session), "services", response_format)


@router.get(
    "/services/{service_code}.{response_format}", dependencies=[Jurisdiction], summary="Service definition"
)
def service_definition(service_code: str, response_format: Format, session: DbSession) -> Response:
    return render(open311.definition(session, service_code), "service_definition", response_format)


@router.post("/requests.{response_format}", summary="Create a service request (form-encoded, api_key)")
async def create_request(request: Request, response_format: Format, clock: Deadlines) -> Response:
    fields, attributes = await _posted(request)
    _jurisdiction(clock, fields.get("jurisdiction_id"))
    key = fields.get("api_key") or request.query_params.get("api_key")
    if not key:
        raise Unauthorized(_("api_key is required."), slug="invalid-api-key")
    principal = await api_key_principal(request, key)
    form = open311.RequestForm(
        **{name: fields.get(name, "").strip() for name in _FORM_FIELDS}, attributes=attributes
    )
    created = await run_in_threadpool(_submit, get_database(request), principal, form, clock)
    return render(created, "service_requests", response_format, status=201)


_FORM_FIELDS = (
    "service_code",
    "lat",
    "long",
    "address_string",
    "address_id",
    "description",
    "first_name",
    "last_name",
    "phone",
    "email",
    "media_url",
)


async def _posted(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    fields, _files = await read_form(request, max_files=0, max_fields=300)
    return split_answers(fields)


def _submit(
    database: Database, principal: Principal, form: open311.RequestForm, clock: Clock
) -> list[dict[str, Any]]:
    with database.unit_of_work() as session:
        return open311.submit(session, principal, form, clock)


@router.get("/tokens/{token}.{response_format}", dependencies=[Jurisdiction], summary="Request id of a token")
def token(token: str, response_format: Format, session: DbSession) -> Response:
    return render(open311.by_token(session, token), "service_requests", response_format)


@router.get("/requests.{response_format}", dependencies=[Jurisdiction], summary="Service requests")
def requests(
    response_format: Format,
    session: DbSession,
    clock: Deadlines,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=open311.MAX_PAGE_SIZE)] = open311.MAX_PAGE_SIZE,
    extensions: bool = False,
) -> Response:
    statuses = _list(status)
    if set(statuses) - {"open", "closed"}:
        raise ValidationProblem(_("status is open, closed or both."), field="status")
    query = open311.RequestsQuery(
        service_request_ids=_list(service_request_id),
        service_codes=_list(service_code),
        start=_moment(start_date, "start_date"),
        end=_moment(end_date, "end_date"),
        statuses=statuses,
        page=page,
        page_size=page_size,
        with_notes=extensions,
    )
    return render(open311.find(session, query, clock), "service_requests", response_format)


@router.get(
    "/requests/{service_request_id}.{response_format}", dependencies=[Jurisdiction], summary="One request"
)
def one_request(
    service_request_id: str, response_format: Format, session: DbSession, clock: Deadlines
) -> Response:
    return render(open311.one(session, service_request_id, clock), "service_requests", response_format)


def _list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _moment(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationProblem(
            _("%(name)s must be a W3C date-time such as 2026-10-01T00:00:00Z.", name=name)
        ) from exc
    if moment.tzinfo is None:
        raise ValidationProblem(_("%(name)s needs a time zone, such as Z or +08:00.", name=name))
    return moment
