"""``POST /ngsi-ld/v1/entityOperations/query`` (clause 5.7.2, POST form): the query in a ``Query`` body.

Body (clause 5.2.23): ``{"type": "Query", "entities": [{"id"|"idPattern"|"type"}...], "attrs": [...],
"q": "...", "geoQ": {"geometry", "coordinates", "georel", "geoproperty"}, "scopeQ": "...", "lang": "..."}``;
``limit``, ``offset``, ``count``, ``options`` and ``format`` stay in the URL. The answer is that of
``GET /entities`` with the same parameters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Response

from cityhub.domains.context.errors import BadRequestData
from cityhub.domains.context.jsonld.negotiation import GEO_JSON, JSON, JSON_LD
from cityhub.domains.context.ngsi.common import (
    READ,
    Call,
    NgsiRoute,
    body_call,
    body_of,
    read_session,
    split_list,
)
from cityhub.domains.context.ngsi.entities import checked_names, render_options, shown
from cityhub.domains.context.query.geoquery import GeoQuery, parse_geoquery
from cityhub.domains.context.query.qlang import parse
from cityhub.domains.context.service.query import EntityQuery, EntitySelector, query_entities
from cityhub.domains.context.store.document import RenderOptions, check_entity_id

router = APIRouter(route_class=NgsiRoute)
QUERY_OFFERS = (JSON, JSON_LD, GEO_JSON)


@router.post("/entityOperations/query")
def post_query(
    call: Call = body_call(READ, QUERY_OFFERS),
    limit: int = 20,
    offset: int = 0,
    count: bool = False,
    options: str | None = None,
    format: str | None = None,
) -> Response:
    body = body_of(call)
    if not isinstance(body, Mapping) or body.get("type", "Query") != "Query":
        raise BadRequestData('the body must be a JSON object of type "Query"')
    projection = name_list(call, body.get("attrs"), "attrs")
    if not body.get("entities") and projection is None and not body.get("q") and not body.get("geoQ"):
        raise BadRequestData("a query needs entities, attrs, q or geoQ")
    geo = geo_query(body.get("geoQ"))
    lang = text_member(body.get("lang"), "lang")
    scopes = text_member(body.get("scopeQ"), "scopeQ")
    q = text_member(body.get("q"), "q")
    entity_query = EntityQuery(
        selectors=entity_selectors(call, body.get("entities")),
        attrs=projection,
        q=parse(q) if q else None,
        geo=geo,
        geo_property=call.expand(geo.geoproperty if geo else "location"),
        scopes=split_list(scopes) or None,
        limit=limit,
        offset=offset,
        count=count,
        attribute_resolver=call.expand,
    )
    with read_session(call) as session:
        result = query_entities(session, call.tenant, entity_query)
    chosen = render_options(call, options, format, None, lang)
    render_with = RenderOptions(chosen.format, chosen.sys_attrs, projection, lang)
    headers = {"NGSILD-Results-Count": str(result.count)} if result.count is not None else {}
    return call.respond([shown(call, entity, render_with) for entity in result.entities], headers=headers)


def text_member(value: Any, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise BadRequestData(f"{what} must be a string")
    return value


def name_list(call: Call, value: Any, what: str) -> frozenset[str] | None:
    if value is None:
        return None
    names = split_list(value) if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise BadRequestData(f"{what} must be a non-empty list of names")
    return checked_names(call.expand_all(names))


def entity_selectors(call: Call, value: Any) -> list[EntitySelector]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise BadRequestData("entities must be a list of objects with id, idPattern and/or type")
    selectors = []
    for item in value:
        entity_id = item.get("id")
        if entity_id is not None:
            check_entity_id(entity_id)
        raw_types = item.get("type")
        types = raw_types if isinstance(raw_types, list) else split_list(raw_types)
        if not all(isinstance(name, str) for name in types):
            raise BadRequestData("an entity selector's type must be a name or a list of names")
        pattern = text_member(item.get("idPattern"), "idPattern")
        if entity_id is None and pattern is None and not types:
            raise BadRequestData("an entity selector needs an id, an idPattern or a type")
        selectors.append(EntitySelector(entity_id, pattern, tuple(call.expand_all(types))))
    return selectors


def geo_query(value: Any) -> GeoQuery | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequestData("geoQ must be an object with geometry, coordinates and georel")
    georel, geometry, coordinates = value.get("georel"), value.get("geometry"), value.get("coordinates")
    if not isinstance(georel, str) or not isinstance(geometry, str) or coordinates is None:
        raise BadRequestData("geoQ needs georel, geometry and coordinates")
    if not isinstance(coordinates, str):
        coordinates = json.dumps(coordinates)
    return parse_geoquery(georel, geometry, coordinates, text_member(value.get("geoproperty"), "geoproperty"))
