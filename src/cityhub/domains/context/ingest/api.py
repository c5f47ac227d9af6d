"""``POST /api/v1/context/telemetry``: a gateway's bulk readings, stored through the bulk path.

The body is read and checked by ``telemetry.parse_message`` rather than by a request model: validating
thousands of readings through models cost more than storing them. ``TelemetryBatch`` still documents the
body in the OpenAPI description.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from cityhub.domains.context.errors import NonexistentTenant, from_context_error
from cityhub.domains.context.ingest.telemetry import (
    MessageRejected,
    Planned,
    ReadingsRejected,
    TelemetryMessage,
    ingest,
    parse_message,
    plan,
)
from cityhub.domains.context.jsonld import JsonLdContextError, TermMapper, context_url_from_link
from cityhub.domains.context.ngsi.common import WRITE, resolver_for
from cityhub.domains.context.schemas import TelemetryBatch, TelemetryResult
from cityhub.domains.context.service.bulk import collector_paused
from cityhub.domains.context.service.tenants import authorize, check_tenant_name, find_tenant
from cityhub.domains.identity import CurrentPrincipal, Principal, require
from cityhub.kernel import jsontext
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.web import DbSession, get_database

router = APIRouter()


def _mapper(request: Request) -> TermMapper:
    try:
        link = context_url_from_link(request.headers.get("link"))
        return resolver_for(request.app.state.settings).mapper(link)
    except JsonLdContextError as exc:
        raise from_context_error(exc) from None


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` references replaced by the definitions: the schema sits
    inside the OpenAPI document, where ``#/$defs/...`` would point to the document's root."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref", "")
            if reference.startswith("#/$defs/"):
                return resolve(definitions[reference.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


MAX_TELEMETRY_BYTES = 64_000_000  # far above 50,000 readings of a gateway's usual size


async def _body(request: Request, principal: CurrentPrincipal) -> bytes:
    """Read asynchronously, so the synchronous endpoint gets the bytes without blocking the event loop.

    Only callers who may write context somewhere get this far: the body may name an @context to fetch.
    """
    require(principal, WRITE)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_TELEMETRY_BYTES:
        raise MessageRejected(f"the body is larger than {MAX_TELEMETRY_BYTES} bytes")
    return await request.body()


def _planned_ahead(database: Database, principal: Principal, message: TelemetryMessage) -> Planned | None:
    """The readings applied in a read of their own (``telemetry.plan``), before the write transaction takes
    SQLite's one write lock: the writers of other requests wait only for the writes. None when the tenant
    does not exist yet or a reading is refused: the write path then decides, as it would anyway."""
    with database.request_session(write=False) as reading:
        try:
            tenant = find_tenant(reading, check_tenant_name(message.tenant), create=False)
        except NonexistentTenant:
            return None
        authorize(principal, WRITE, tenant)
        try:
            return plan(reading, tenant, message.readings)
        except ReadingsRejected:
            return None


@router.post(
    "/telemetry",
    response_model=TelemetryResult,
    summary="Store many readings for many entities (gateways)",
    description="All readings are stored in one transaction, or none when one is invalid (422 lists them). "
    "A message id already stored for this caller answers duplicate=true and writes nothing.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _inlined(TelemetryBatch.model_json_schema(by_alias=True))}
            },
        }
    },
)
def post_telemetry(
    body: Annotated[bytes, Depends(_body)], request: Request, session: DbSession, principal: CurrentPrincipal
) -> TelemetryResult:
    with collector_paused():
        try:
            payload = jsontext.loads(body)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError too
            raise MessageRejected(f"the body is not JSON: {exc}") from None
        message = parse_message(payload, _mapper(request), utcnow())
        database = get_database(request)
        planned = _planned_ahead(database, principal, message) if database.dialect == "sqlite" else None
        tenant = find_tenant(session, check_tenant_name(message.tenant), create=True)
        authorize(principal, WRITE, tenant)
        result = ingest(
            session,
            tenant,
            message.readings,
            gateway=principal.actor,
            message_id=message.message_id,
            planned=planned if planned is not None and planned.batch.tenant.id == tenant.id else None,
        )
    return TelemetryResult(
        duplicate=result.duplicate,
        readings=result.readings,
        instances=result.instances,
        created=result.created,
        updated=result.updated,
    )
