"""The open-data portal: published open resources to browse and search by anyone, each with its data items,
a preview of its current version and a CSV or JSON download."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import Resource
from cityhub.domains.exchange.service import catalogue, reads
from cityhub.domains.identity import Principal, get_organization_by_code, page_principal
from cityhub.kernel.db import Database
from cityhub.kernel.errors import NotFound
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.pagination import Page, Paging, fetch_page
from cityhub.kernel.web import DbSession, PublicRateLimited, get_database, render

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
