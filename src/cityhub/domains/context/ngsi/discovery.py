"""Discovery (clauses 5.7.5-5.7.10): ``/types``, ``/types/{type}``, ``/attributes``, ``/attributes/{attr}``.

Answers in the data types of clauses 5.2.24-5.2.28 (EntityTypeList, EntityType, EntityTypeInfo,
AttributeList, Attribute); ids are the expanded IRIs, names are compacted with the requester's @context.
The aggregation runs in SQL (``service.query.type_counts``/``attribute_facts``).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response

from cityhub.domains.context.errors import ResourceNotFound
from cityhub.domains.context.ngsi.common import Call, NgsiRoute, read_call
from cityhub.domains.context.service.query import AttributeFacts, attribute_facts, type_counts
from cityhub.kernel.web import DbSession

router = APIRouter(route_class=NgsiRoute)


def _list_id(kind: str) -> str:
    return f"urn:ngsi-ld:{kind}:{uuid.uuid4().hex}"


@router.get("/types")
def list_types(session: DbSession, call: Call = read_call(), details: bool = False) -> Response:
    names = call.mapper.compact_iri
    counts = type_counts(session, call.tenant)
    if not details:
        type_list = sorted(names(iri) for iri in counts)
        return call.respond(
            {"id": _list_id("EntityTypeList"), "type": "EntityTypeList", "typeList": type_list}
        )
    attributes_by_type: dict[str, set[str]] = {iri: set() for iri in counts}
    for attribute, facts in attribute_facts(session, call.tenant).items():
        for entity_type in facts.entity_types:
            attributes_by_type.setdefault(entity_type, set()).add(attribute)
    return call.respond(
        [
            {
                "id": iri,
                "type": "EntityType",
                "typeName": names(iri),
                "attributeNames": sorted(names(attribute) for attribute in attributes_by_type[iri]),
            }
            for iri in counts
        ]
    )


@router.get("/types/{type_name}")
def type_info(type_name: str, session: DbSession, call: Call = read_call()) -> Response:
    iri = call.expand(type_name)
    count = type_counts(session, call.tenant, iri).get(iri)
    if not count:
        raise ResourceNotFound(f"no entity of type {type_name}")
    details = [
        {
            "id": attribute,
            "type": "Attribute",
            "attributeName": call.mapper.compact_iri(attribute),
            "attributeTypes": sorted(facts.kinds),
        }
        for attribute, facts in attribute_facts(session, call.tenant, type_iri=iri).items()
    ]
    return call.respond(
        {
            "id": iri,
            "type": "EntityTypeInfo",
            "typeName": call.mapper.compact_iri(iri),
            "entityCount": count,
            "attributeDetails": details,
        }
    )


@router.get("/attributes")
def list_attributes(session: DbSession, call: Call = read_call(), details: bool = False) -> Response:
    facts = attribute_facts(session, call.tenant)
    if not details:
        names = sorted(call.mapper.compact_iri(iri) for iri in facts)
        return call.respond(
            {"id": _list_id("AttributeList"), "type": "AttributeList", "attributeList": names}
        )
    return call.respond([_attribute(call, iri, fact) for iri, fact in facts.items()])


@router.get("/attributes/{attr_name}")
def attribute_info(attr_name: str, session: DbSession, call: Call = read_call()) -> Response:
    iri = call.expand(attr_name)
    facts = attribute_facts(session, call.tenant, attr_iri=iri).get(iri)
    if facts is None:
        raise ResourceNotFound(f"no entity has the attribute {attr_name}")
    return call.respond(_attribute(call, iri, facts))


def _attribute(call: Call, iri: str, facts: AttributeFacts) -> dict[str, Any]:
    """Clause 5.2.28 Attribute: ``attributeCount`` counts attribute instances (one per datasetId)."""
    return {
        "id": iri,
        "type": "Attribute",
        "attributeName": call.mapper.compact_iri(iri),
        "attributeCount": facts.instances,
        "attributeTypes": sorted(facts.kinds),
        "typeNames": sorted(call.mapper.compact_iri(name) for name in facts.entity_types),
    }
