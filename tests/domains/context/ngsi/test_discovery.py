"""Clauses 5.7.5-5.7.10: /types, /types/{type}, /attributes, /attributes/{attr} (both databases)."""

from __future__ import annotations

import pytest

from tests.domains.context.conftest import NgsiClient

DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"


@pytest.fixture
def stock(ngsi: NgsiClient) -> None:
    ngsi.create(
        {
            "id": "urn:ngsi-ld:Room:1",
            "type": "Room",
            "temperature": [
                {"type": "Property", "value": 20},
                {"type": "Property", "value": 21, "datasetId": "urn:ngsi-ld:Dataset:b"},
            ],
            "isPartOf": {"type": "Relationship", "object": "urn:ngsi-ld:Building:A"},
        }
    )
    ngsi.create(
        {"id": "urn:ngsi-ld:Room:2", "type": "Room", "temperature": {"type": "Property", "value": 19}}
    )
    ngsi.create(
        {
            "id": "urn:ngsi-ld:Building:A",
            "type": "Building",
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [120.2, 30.2]}},
        }
    )


@pytest.mark.usefixtures("stock")
def test_type_list_and_details(ngsi: NgsiClient) -> None:
    listed = ngsi.get("/types").json()
    assert listed["type"] == "EntityTypeList" and listed["id"].startswith("urn:ngsi-ld:EntityTypeList:")
    assert listed["typeList"] == ["Building", "Room"]
    details = {item["typeName"]: item for item in ngsi.get("/types", params={"details": "true"}).json()}
    assert details["Room"] == {
        "id": DEFAULT + "Room",
        "type": "EntityType",
        "typeName": "Room",
        "attributeNames": ["isPartOf", "temperature"],
    }
    assert details["Building"]["attributeNames"] == ["location"]


@pytest.mark.usefixtures("stock")
def test_type_info(ngsi: NgsiClient) -> None:
    info = ngsi.get("/types/Room").json()
    assert info["type"] == "EntityTypeInfo" and info["id"] == DEFAULT + "Room"
    assert info["typeName"] == "Room" and info["entityCount"] == 2
    assert sorted(info["attributeDetails"], key=lambda item: item["attributeName"]) == [
        {
            "id": DEFAULT + "isPartOf",
            "type": "Attribute",
            "attributeName": "isPartOf",
            "attributeTypes": ["Relationship"],
        },
        {
            "id": DEFAULT + "temperature",
            "type": "Attribute",
            "attributeName": "temperature",
            "attributeTypes": ["Property"],
        },
    ]
    missing = ngsi.get("/types/Nothing")
    assert missing.status_code == 404
    assert missing.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"


@pytest.mark.usefixtures("stock")
def test_attribute_list_and_details(ngsi: NgsiClient) -> None:
    listed = ngsi.get("/attributes").json()
    assert listed["type"] == "AttributeList" and listed["id"].startswith("urn:ngsi-ld:AttributeList:")
    assert listed["attributeList"] == ["isPartOf", "location", "temperature"]
    details = {
        item["attributeName"]: item for item in ngsi.get("/attributes", params={"details": "true"}).json()
    }
    assert details["temperature"] == {
        "id": DEFAULT + "temperature",
        "type": "Attribute",
        "attributeName": "temperature",
        "attributeCount": 3,  # instances: two in Room:1 (datasetIds), one in Room:2
        "attributeTypes": ["Property"],
        "typeNames": ["Room"],
    }
    assert details["location"]["attributeTypes"] == ["GeoProperty"]
    one = ngsi.get("/attributes/isPartOf").json()
    assert one["attributeCount"] == 1 and one["typeNames"] == ["Room"]
    assert ngsi.get("/attributes/nothing").status_code == 404


def test_discovery_compacts_with_the_requesters_context(ngsi: NgsiClient) -> None:
    context = {"@context": {"Salle": "https://example.org/Room", "chaleur": "https://example.org/heat"}}
    headers = {"Content-Type": "application/ld+json"}
    entity = {
        "id": "urn:ngsi-ld:Room:9",
        "type": "Salle",
        "chaleur": {"type": "Property", "value": 3},
        **context,
    }
    assert ngsi.post("/entities", json=entity, headers=headers).status_code == 201
    assert ngsi.get("/types").json()["typeList"] == ["https://example.org/Room"]
    link_context = ngsi.post("/jsonldContexts", json=context, headers=headers)
    link = (
        f'<http://testserver{link_context.headers["Location"]}>; rel="http://www.w3.org/ns/json-ld#context"'
    )
    assert ngsi.get("/types", headers={"Link": link}).json()["typeList"] == ["Salle"]
    assert ngsi.get("/attributes", headers={"Link": link}).json()["attributeList"] == ["chaleur"]
    assert ngsi.get("/types/Salle", headers={"Link": link}).json()["entityCount"] == 1


def test_unknown_tenant_is_404(ngsi: NgsiClient) -> None:
    response = ngsi.get("/types", tenant="nowhere")
    assert response.status_code == 404
    assert response.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/NonexistentTenant"
