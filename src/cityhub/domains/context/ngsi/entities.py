"""``/ngsi-ld/v1/entities``: create, query, retrieve, replace, merge, delete, and the attribute operations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from cityhub.domains.context.errors import BadRequestData
from cityhub.domains.context.ngsi import common
from cityhub.domains.context.ngsi.common import (
    Call,
    NgsiRoute,
    body_call,
    body_of,
    location,
    object_body,
    options_of,
    read_call,
    split_list,
    without_context,
    write_call,
)
from cityhub.domains.context.query.geoquery import parse_geoquery
from cityhub.domains.context.query.qlang import parse
from cityhub.domains.context.service import entities as store
from cityhub.domains.context.service.changes import EntitySnapshot
from cityhub.domains.context.service.query import EntityQuery, EntitySelector, query_entities
from cityhub.domains.context.store.document import (
    AttributeChanges,
    RenderOptions,
    check_entity_id,
    check_name,
    parse_attributes,
    parse_entity,
    render,
)
from cityhub.kernel.web import DbSession

router = APIRouter(route_class=NgsiRoute)

ENTITY_OPTIONS = ("keyValues", "simplified", "concise", "normalized", "sysAttrs")
FORMATS = ("keyValues", "simplified", "concise", "normalized")


def render_options(
    call: Call, options: str | None, format_: str | None, attrs: str | None, lang: str | None
) -> RenderOptions:
    chosen = options_of(options, ENTITY_OPTIONS)
    formats = [item for item in chosen if item in FORMATS]
    if format_ is not None:
        if format_ not in FORMATS:
            raise BadRequestData(f"unknown format {format_!r}")
        formats.append(format_)
    if len(set(formats)) > 1:
        raise BadRequestData("ask for one representation only (keyValues, concise or normalized)")
    fmt = formats[0] if formats else "normalized"
    projection = _projection(call, attrs)
    return RenderOptions("keyValues" if fmt == "simplified" else fmt, "sysAttrs" in chosen, projection, lang)


def _projection(call: Call, attrs: str | None) -> frozenset[str] | None:
    """The attribute IRIs asked for; None when none is named (``attrs=,`` names none: no projection)."""
    names = split_list(attrs)
    return checked_names(call.expand_all(names)) if names else None


def checked_names(iris: list[str]) -> frozenset[str]:
    """Attribute IRIs that can be stored, hence spelled in a SQL JSON path (no quotes, controls, ...)."""
    for iri in iris:
        check_name(iri)
    return frozenset(iris)


def shown(call: Call, entity: EntitySnapshot, options: RenderOptions) -> dict[str, Any]:
    document = render(
        entity.entity_id,
        entity.types,
        entity.scopes,
        entity.attrs,
        entity.created_at,
        entity.modified_at,
        options,
    )
    return call.mapper.compact_entity(document, key_values=options.format == "keyValues")


@router.post("/entities", status_code=201)
@router.post("/entities/", status_code=201, include_in_schema=False)  # ngsildclient adds a slash
def create_entity(session: DbSession, call: Call = write_call()) -> Response:
    body = body_of(call)
    if not isinstance(body, dict):
        raise BadRequestData("an entity must be a JSON object")
    entity = parse_entity(call.mapper.expand_entity(body))
    store.create_entity(session, call.tenant, entity)
    return Response(status_code=201, headers=location("entities", entity.entity_id))


@router.get("/entities")
def query(
    session: DbSession,
    call: Call = read_call(),
    id: str | None = None,
    type: str | None = None,
    idPattern: str | None = None,  # noqa: N803 - NGSI-LD parameter names
    attrs: str | None = None,
    pick: str | None = None,
    q: str | None = None,
    georel: str | None = None,
    geometry: str | None = None,
    coordinates: str | None = None,
    geoproperty: str | None = None,
    scopeQ: str | None = None,  # noqa: N803
    options: str | None = None,
    format: str | None = None,
    lang: str | None = None,
    limit: Annotated[int, Query()] = 20,
    offset: Annotated[int, Query()] = 0,
    count: bool = False,
) -> Response:
    types = call.expand_all(split_list(type))
    ids = split_list(id)
    for entity_id in ids:
        check_entity_id(entity_id)
    selectors = [EntitySelector(id=entity_id, types=tuple(types)) for entity_id in ids] or (
        [EntitySelector(id_pattern=idPattern, types=tuple(types))] if types or idPattern else []
    )
    if ids and idPattern:
        selectors = [EntitySelector(id=i, id_pattern=idPattern, types=tuple(types)) for i in ids]
    geo = None
    if georel or geometry or coordinates:
        if not (georel and geometry and coordinates):
            raise BadRequestData("a geo-query needs georel, geometry and coordinates")
        geo = parse_geoquery(georel, geometry, coordinates, geoproperty)
    projection = _projection(call, attrs or pick)
    entity_query = EntityQuery(
        selectors=selectors,
        attrs=projection,
        q=parse(q) if q else None,
        geo=geo,
        geo_property=call.expand(geo.geoproperty) if geo else call.expand("location"),
        scopes=split_list(scopeQ) or None,
        limit=limit,
        offset=offset,
        count=count,
        attribute_resolver=call.expand,
    )
    result = query_entities(session, call.tenant, entity_query)
    render_with = render_options(call, options, format, None, lang)
    render_with = RenderOptions(render_with.format, render_with.sys_attrs, projection, lang)
    headers = {"NGSILD-Results-Count": str(result.count)} if result.count is not None else {}
    return call.respond([shown(call, entity, render_with) for entity in result.entities], headers=headers)


@router.get("/entities/{entity_id}")
def retrieve(
    entity_id: str,
    session: DbSession,
    call: Call = read_call(),
    attrs: str | None = None,
    pick: str | None = None,
    type: str | None = None,
    options: str | None = None,
    format: str | None = None,
    lang: str | None = None,
) -> Response:
    check_entity_id(entity_id)
    types = call.expand_all(split_list(type)) or None
    row = store.require_entity(session, call.tenant, entity_id, types=types)
    render_with = render_options(call, options, format, attrs or pick, lang)
    return call.respond(shown(call, store.snapshot(row), render_with))


@router.delete("/entities/{entity_id}", status_code=204)
def delete(
    entity_id: str, session: DbSession, call: Call = write_call(with_body=False), type: str | None = None
) -> Response:
    check_entity_id(entity_id)
    store.delete_entity(session, call.tenant, entity_id, call.expand_all(split_list(type)) or None)
    return Response(status_code=204)


@router.put("/entities/{entity_id}", status_code=204)
def replace(entity_id: str, session: DbSession, call: Call = write_call()) -> Response:
    body = object_body(call)
    body.setdefault("id", entity_id)
    if body["id"] != entity_id:
        raise BadRequestData("the body's id differs from the entity id in the path")
    entity = parse_entity(call.mapper.expand_entity(body), require_type=False)
    store.replace_entity(session, call.tenant, entity)
    return Response(status_code=204)


@router.patch("/entities/{entity_id}", status_code=204)
def merge(entity_id: str, session: DbSession, call: Call = write_call()) -> Response:
    check_entity_id(entity_id)
    body = object_body(call)
    if body.get("id", entity_id) != entity_id:
        raise BadRequestData("the body's id differs from the entity id in the path")
    store.merge_entity(session, call.tenant, entity_id, call.mapper.expand_entity(body))
    return Response(status_code=204)


@router.post("/entities/{entity_id}/attrs", status_code=204)
def append(
    entity_id: str, session: DbSession, call: Call = write_call(), options: str | None = None
) -> Response:
    check_entity_id(entity_id)
    overwrite = "noOverwrite" not in options_of(options, ("noOverwrite",))
    attrs = parse_attributes(call.mapper.expand_entity(object_body(call)))
    changes = store.append_attributes(session, call.tenant, entity_id, attrs, overwrite=overwrite)
    return _partial(call, changes)


@router.patch("/entities/{entity_id}/attrs", status_code=204)
def update(entity_id: str, session: DbSession, call: Call = write_call()) -> Response:
    check_entity_id(entity_id)
    attrs = parse_attributes(call.mapper.expand_entity(object_body(call)))
    changes = store.update_attributes(session, call.tenant, entity_id, attrs)
    return _partial(call, changes)


@router.patch("/entities/{entity_id}/attrs/{attr}", status_code=204)
async def patch_attribute(entity_id: str, attr: str, call: Call = body_call()) -> Response:
    return await common.patch_attribute(call, entity_id, attr)


@router.put("/entities/{entity_id}/attrs/{attr}", status_code=204)
def replace_attribute(entity_id: str, attr: str, session: DbSession, call: Call = write_call()) -> Response:
    check_entity_id(entity_id)
    value = call.mapper.expand_attribute(without_context(body_of(call)))
    store.replace_attribute(session, call.tenant, entity_id, call.expand(attr), value)
    return Response(status_code=204)


@router.delete("/entities/{entity_id}/attrs/{attr}", status_code=204)
def delete_attribute(
    entity_id: str,
    attr: str,
    session: DbSession,
    call: Call = write_call(with_body=False),
    datasetId: str | None = None,  # noqa: N803
    deleteAll: bool = False,  # noqa: N803
) -> Response:
    check_entity_id(entity_id)
    store.delete_attribute(
        session, call.tenant, entity_id, call.expand(attr), dataset_id=datasetId, delete_all=deleteAll
    )
    return Response(status_code=204)


def _partial(call: Call, changes: AttributeChanges) -> Response:
    """204 when every attribute was taken, else 207 with ``updated`` and ``notUpdated`` (clause 5.2.18)."""
    if not changes.refused:
        return Response(status_code=204)
    body = {
        "updated": sorted(call.mapper.compact_iri(name) for name in changes.written),
        "notUpdated": [
            {"attributeName": call.mapper.compact_iri(name), "reason": reason}
            for name, reason in sorted(changes.refused.items())
        ],
    }
    return call.respond(body, status_code=207)
