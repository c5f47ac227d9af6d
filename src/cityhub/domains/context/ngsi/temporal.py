"""``/ngsi-ld/v1/temporal/entities``: temporal retrieve and query (also in POST form,
``/temporal/entityOperations/query``), and the history writes (clauses 5.6.11–5.6.16, 5.7.3–5.7.5).

Parameters: ``timerel`` (before/after/between) with ``timeAt``/``endTimeAt``, ``timeproperty``, ``lastN``,
``attrs``, ``options`` (``temporalValues``, ``aggregatedValues``, ``sysAttrs``) or ``format``, ``aggrMethods``
with ``aggrPeriodDuration`` (giving ``aggrMethods`` alone also asks for aggregated values). Entities are paged
with ``limit``/``offset`` and counted with ``count=true``. Instances are capped per attribute; a capped answer
is ``206 Partial Content`` with ``Content-Range: date-time <first>-<last>/*`` naming the instants covered, and
the rest is read by moving ``timeAt`` past ``<last>``. The writes change the history only (see
``service.temporal.writes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from cityhub.domains.context.errors import BadRequestData
from cityhub.domains.context.ngsi import query as query_body
from cityhub.domains.context.ngsi.common import (
    READ,
    Call,
    NgsiRoute,
    body_of,
    location,
    object_body,
    options_of,
    read_call,
    split_list,
    write_call,
)
from cityhub.domains.context.ngsi.entities import checked_names
from cityhub.domains.context.query.geoquery import parse_geoquery
from cityhub.domains.context.query.qlang import parse
from cityhub.domains.context.service import temporal
from cityhub.domains.context.service.query import EntitySelector
from cityhub.domains.context.service.temporal import TemporalResult, TemporalSelection, TemporalView, View
from cityhub.domains.context.store.document import check_entity_id, timestamp
from cityhub.kernel.web import DbSession

router = APIRouter(route_class=NgsiRoute)

TEMPORAL_OPTIONS = ("temporalValues", "aggregatedValues", "sysAttrs", "normalized")


@dataclass(frozen=True)
class TemporalParameters:
    """The query parameters shared by temporal retrieve and query, as given."""

    attrs: str | None = None
    options: str | None = None
    format: str | None = None
    timerel: str | None = None
    time_at: str | None = None
    end_time_at: str | None = None
    time_property: str | None = None
    last_n: int | None = None
    aggr_methods: str | None = None
    aggr_period: str | None = None


def temporal_parameters(
    attrs: str | None = None,
    options: str | None = None,
    format: str | None = None,
    timerel: str | None = None,
    timeAt: str | None = None,  # noqa: N803 - NGSI-LD parameter names
    endTimeAt: str | None = None,  # noqa: N803
    timeproperty: str | None = None,
    lastN: int | None = None,  # noqa: N803
    aggrMethods: str | None = None,  # noqa: N803
    aggrPeriodDuration: str | None = None,  # noqa: N803
) -> TemporalParameters:
    return TemporalParameters(
        attrs,
        options,
        format,
        timerel,
        timeAt,
        endTimeAt,
        timeproperty,
        lastN,
        aggrMethods,
        aggrPeriodDuration,
    )


Parameters = Annotated[TemporalParameters, Depends(temporal_parameters)]


def temporal_view(call: Call, given: TemporalParameters, attrs: frozenset[str] | None) -> TemporalView:
    chosen = options_of(given.options, TEMPORAL_OPTIONS)
    views = {View(item) for item in chosen if item != "sysAttrs"}
    if given.format is not None:
        if given.format not in (view.value for view in View):
            raise BadRequestData(f"unknown format {given.format!r}")
        views.add(View(given.format))
    if given.aggr_methods and not views:
        views.add(View.AGGREGATED)
    if len(views) > 1:
        raise BadRequestData("ask for one temporal representation only")
    view = views.pop() if views else View.NORMALIZED
    aggregation = None
    if view is View.AGGREGATED:
        aggregation = temporal.parse_aggregation(split_list(given.aggr_methods), given.aggr_period)
    elif given.aggr_methods or given.aggr_period:
        raise BadRequestData("aggrMethods and aggrPeriodDuration go with options=aggregatedValues")
    query = temporal.parse_temporal_query(
        given.timerel, given.time_at, given.end_time_at, given.time_property, given.last_n
    )
    return TemporalView(
        query=query,
        attrs=attrs,
        view=view,
        aggregation=aggregation,
        sys_attrs="sysAttrs" in chosen,
    )


def answer(call: Call, result: TemporalResult, view: TemporalView, *, single: bool) -> Response:
    key_values = view.view is not View.NORMALIZED  # no sub-attribute names inside the values
    entities = [call.mapper.compact_entity(entity, key_values=key_values) for entity in result.entities]
    headers: dict[str, str] = {}
    if result.count is not None:
        headers["NGSILD-Results-Count"] = str(result.count)
    status = 200
    if result.partial is not None:
        status = 206
        headers["Content-Range"] = f"date-time {_instant(result.partial[0])}-{_instant(result.partial[1])}/*"
    return call.respond(entities[0] if single else entities, status_code=status, headers=headers)


def _instant(moment: datetime | None) -> str:
    return timestamp(moment) if moment is not None else "*"


@router.get("/temporal/entities")
def query(
    session: DbSession,
    given: Parameters,
    call: Call = read_call(),
    id: str | None = None,
    type: str | None = None,
    idPattern: str | None = None,  # noqa: N803 - NGSI-LD parameter names
    q: str | None = None,
    georel: str | None = None,
    geometry: str | None = None,
    coordinates: str | None = None,
    geoproperty: str | None = None,
    limit: int = 20,
    offset: int = 0,
    count: bool = False,
) -> Response:
    geo = None
    if georel or geometry or coordinates:
        if not (georel and geometry and coordinates):
            raise BadRequestData("a geo-query needs georel, geometry and coordinates")
        geo = parse_geoquery(georel, geometry, coordinates, geoproperty)
    selection = TemporalSelection(
        selectors=_url_selectors(call, split_list(id), split_list(type), idPattern),
        q=parse(q) if q else None,
        geo=geo,
        geo_property=call.expand(geo.geoproperty if geo else "location"),
        attribute_resolver=call.expand,
    )
    view = temporal_view(call, given, _attrs(call, given))
    result = temporal.query_temporal(
        session, call.tenant, selection, view, limit=limit, offset=offset, count=count
    )
    return answer(call, result, view, single=False)


def _url_selectors(
    call: Call, ids: list[str], types: list[str], id_pattern: str | None
) -> tuple[EntitySelector, ...]:
    expanded_types = tuple(call.expand_all(types))
    if ids:
        return tuple(EntitySelector(check_entity_id(i), id_pattern, expanded_types) for i in ids)
    if expanded_types or id_pattern:
        return (EntitySelector(None, id_pattern, expanded_types),)
    return ()


def _attrs(call: Call, given: TemporalParameters) -> frozenset[str] | None:
    names = checked_names(call.expand_all(split_list(given.attrs)))
    return frozenset(names) if names else None


@router.post("/temporal/entityOperations/query")
def post_query(
    session: DbSession,
    given: Parameters,
    call: Call = write_call(READ),
    limit: int = 20,
    offset: int = 0,
    count: bool = False,
) -> Response:
    """Clause 5.7.5: the temporal query in a ``Query`` body (``entities``, ``attrs``, ``q``, ``geoQ``,
    ``temporalQ``); the representation, ``lastN``, the aggregation and the paging stay in the URL."""
    body = body_of(call)
    if not isinstance(body, Mapping) or body.get("type", "Query") != "Query":
        raise BadRequestData('the body must be a JSON object of type "Query"')
    if given.attrs or given.timerel or given.time_at or given.end_time_at or given.time_property:
        raise BadRequestData("attrs and the temporal query go in the body (attrs, temporalQ)")
    geo = query_body.geo_query(body.get("geoQ"))
    q = query_body.text_member(body.get("q"), "q")
    selection = TemporalSelection(
        selectors=tuple(query_body.entity_selectors(call, body.get("entities"))),
        q=parse(q) if q else None,
        geo=geo,
        geo_property=call.expand(geo.geoproperty if geo else "location"),
        attribute_resolver=call.expand,
    )
    if not selection.selectors and selection.q is None and geo is None and body.get("attrs") is None:
        raise BadRequestData("a temporal query needs entities, attrs, q or geoQ")
    given = _with_temporal_q(given, body.get("temporalQ"))
    view = temporal_view(call, given, query_body.name_list(call, body.get("attrs"), "attrs"))
    result = temporal.query_temporal(
        session, call.tenant, selection, view, limit=limit, offset=offset, count=count
    )
    return answer(call, result, view, single=False)


def _with_temporal_q(given: TemporalParameters, value: Any) -> TemporalParameters:
    """The parameters with the body's ``temporalQ`` (clause 5.2.21: timerel, timeAt, endTimeAt,
    timeproperty; a ``lastN`` there, as later versions allow, replaces the URL's)."""
    if value is None:
        return given
    if not isinstance(value, Mapping):
        raise BadRequestData("temporalQ must be an object with timerel, timeAt, endTimeAt, timeproperty")
    unknown = set(value) - {"timerel", "timeAt", "endTimeAt", "timeproperty", "lastN"}
    if unknown:
        raise BadRequestData(f"unknown temporalQ members: {', '.join(sorted(unknown))}")
    last_n = value.get("lastN", given.last_n)
    if last_n is not None and (not isinstance(last_n, int) or isinstance(last_n, bool)):
        raise BadRequestData("temporalQ lastN must be an integer")
    return replace(
        given,
        timerel=query_body.text_member(value.get("timerel"), "timerel"),
        time_at=query_body.text_member(value.get("timeAt"), "timeAt"),
        end_time_at=query_body.text_member(value.get("endTimeAt"), "endTimeAt"),
        time_property=query_body.text_member(value.get("timeproperty"), "timeproperty"),
        last_n=last_n,
    )


@router.get("/temporal/entities/{entity_id}")
def retrieve(entity_id: str, session: DbSession, given: Parameters, call: Call = read_call()) -> Response:
    check_entity_id(entity_id)
    view = temporal_view(call, given, _attrs(call, given))
    return answer(call, temporal.retrieve_temporal(session, call.tenant, entity_id, view), view, single=True)


@router.post("/temporal/entities", status_code=201)
def create_or_update(session: DbSession, call: Call = write_call()) -> Response:
    body = object_body(call)
    created = temporal.upsert_temporal_entity(session, call.tenant, call.mapper.expand_entity(body))
    if not created:
        return Response(status_code=204)
    return Response(status_code=201, headers=location("temporal/entities", str(body.get("id"))))


@router.delete("/temporal/entities/{entity_id}", status_code=204)
def delete(entity_id: str, session: DbSession, call: Call = write_call(with_body=False)) -> Response:
    check_entity_id(entity_id)
    temporal.delete_temporal_entity(session, call.tenant, entity_id)
    return Response(status_code=204)


@router.post("/temporal/entities/{entity_id}/attrs", status_code=204)
def append(entity_id: str, session: DbSession, call: Call = write_call()) -> Response:
    check_entity_id(entity_id)
    expanded = call.mapper.expand_entity(object_body(call))
    temporal.append_temporal_attributes(session, call.tenant, entity_id, expanded)
    return Response(status_code=204)


@router.delete("/temporal/entities/{entity_id}/attrs/{attr}", status_code=204)
def delete_attribute(
    entity_id: str,
    attr: str,
    session: DbSession,
    call: Call = write_call(with_body=False),
    datasetId: str | None = None,  # noqa: N803
    deleteAll: bool = False,  # noqa: N803
) -> Response:
    check_entity_id(entity_id)
    temporal.delete_temporal_attribute(
        session, call.tenant, entity_id, call.expand(attr), dataset_id=datasetId, delete_all=deleteAll
    )
    return Response(status_code=204)


@router.patch("/temporal/entities/{entity_id}/attrs/{attr}/{instance_id}", status_code=204)
def modify_instance(
    entity_id: str, attr: str, instance_id: str, session: DbSession, call: Call = write_call()
) -> Response:
    check_entity_id(entity_id)
    fragment = call.mapper.expand_attribute(object_body(call))
    temporal.modify_instance(session, call.tenant, entity_id, call.expand(attr), instance_id, fragment)
    return Response(status_code=204)


@router.delete("/temporal/entities/{entity_id}/attrs/{attr}/{instance_id}", status_code=204)
def delete_instance(
    entity_id: str, attr: str, instance_id: str, session: DbSession, call: Call = write_call(with_body=False)
) -> Response:
    check_entity_id(entity_id)
    temporal.delete_instance(session, call.tenant, entity_id, call.expand(attr), instance_id)
    return Response(status_code=204)
