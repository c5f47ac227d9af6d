"""``/ngsi-ld/v1/entityOperations/{create,upsert,update,delete,merge}`` (clauses 5.6.7–5.6.10, 5.6.20).

Answers: 201 with the created ids (create; upsert when it created any), 204 when every entity succeeded
otherwise, and 207 with ``{"success": [ids], "errors": [{"entityId", "error": ProblemDetails}]}`` as soon as
one entity failed. Bodies are arrays of entities (of ids for delete); with ``application/ld+json`` each
entity carries its own ``@context`` and is expanded with it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from cityhub.domains.context.errors import BadRequestData, NgsiError, from_context_error
from cityhub.domains.context.jsonld import JsonLdContextError, request_context
from cityhub.domains.context.jsonld.errors import NGSI_LD_ERRORS
from cityhub.domains.context.ngsi.common import Call, NgsiRoute, body_of, options_of, write_call
from cityhub.domains.context.service import batch
from cityhub.domains.context.service.batch import MAX_BATCH_SIZE, BatchItem, BatchOutcome
from cityhub.kernel.web import DbSession

router = APIRouter(prefix="/entityOperations", route_class=NgsiRoute)


def _entries(call: Call) -> list[Any]:
    body = body_of(call)
    if not isinstance(body, list) or not body:
        raise BadRequestData("a batch operation needs a non-empty JSON array")
    if len(body) > MAX_BATCH_SIZE:
        raise BadRequestData(f"a batch holds at most {MAX_BATCH_SIZE} entities, not {len(body)}")
    return body


def _given_id(entry: Any) -> str:
    entity_id = entry.get("id", entry.get("@id")) if isinstance(entry, dict) else entry
    return entity_id if isinstance(entity_id, str) else ""


def _entity_items(call: Call) -> list[BatchItem]:
    """Each entry expanded with its own @context (JSON-LD) or the request's; failures stay per entity."""
    entries = _entries(call)
    headers = call.request.headers
    contexts = request_context(headers.get("content-type"), headers.get("link"), entries).item_contexts
    items: list[BatchItem] = []
    for index, entry in enumerate(entries):
        entity_id = _given_id(entry)
        try:
            if not isinstance(entry, dict):
                raise BadRequestData("each entity of a batch must be a JSON object")
            mapper = call.resolver.mapper(contexts[index]) if contexts else call.mapper
            items.append(BatchItem(entity_id, mapper.expand_entity(entry)))
        except JsonLdContextError as error:
            items.append(BatchItem(entity_id, problem=from_context_error(error)))
        except NgsiError as problem:
            items.append(BatchItem(entity_id, problem=problem))
    return items


def _problem_details(problem: NgsiError) -> dict[str, Any]:
    details: dict[str, Any] = {
        "type": NGSI_LD_ERRORS + problem.error_type,
        "title": problem.error_type,
        "status": problem.status,
    }
    if problem.detail:
        details["detail"] = str(problem.detail)
    return details


def _answer(outcome: BatchOutcome, success_status: int, ids: list[str] | None = None) -> Response:
    if outcome.failed:
        body = {
            "success": outcome.succeeded,
            "errors": [
                {"entityId": failure.entity_id, "error": _problem_details(failure.problem)}
                for failure in outcome.failed
            ],
        }
        return JSONResponse(body, status_code=207)
    if success_status == 201:
        return JSONResponse(ids if ids is not None else outcome.succeeded, status_code=201)
    return Response(status_code=204)


@router.post("/create", status_code=201)
def create(session: DbSession, call: Call = write_call()) -> Response:
    return _answer(batch.create_entities(session, call.tenant, _entity_items(call)), 201)


@router.post("/upsert", status_code=201)
def upsert(session: DbSession, call: Call = write_call(), options: str | None = None) -> Response:
    chosen = options_of(options, ("replace", "update"))
    if len(chosen) > 1:
        raise BadRequestData("options=replace and options=update exclude each other")
    outcome = batch.upsert_entities(session, call.tenant, _entity_items(call), replace="update" not in chosen)
    return _answer(outcome, 201 if outcome.created else 204, outcome.created)


@router.post("/update", status_code=204)
def update(session: DbSession, call: Call = write_call(), options: str | None = None) -> Response:
    overwrite = "noOverwrite" not in options_of(options, ("noOverwrite",))
    return _answer(batch.update_entities(session, call.tenant, _entity_items(call), overwrite=overwrite), 204)


@router.post("/merge", status_code=204)
def merge(session: DbSession, call: Call = write_call()) -> Response:
    return _answer(batch.merge_entities(session, call.tenant, _entity_items(call)), 204)


@router.post("/delete", status_code=204)
def delete(session: DbSession, call: Call = write_call()) -> Response:
    items = [
        BatchItem(_given_id(entry), {"id": entry})
        if isinstance(entry, str)
        else BatchItem(_given_id(entry), problem=BadRequestData("a batch delete lists entity ids (strings)"))
        for entry in _entries(call)
    ]
    return _answer(batch.delete_entities(session, call.tenant, items), 204)
