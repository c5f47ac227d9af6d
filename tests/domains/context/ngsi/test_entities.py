"""Clause 5.6/5.7: entity create, retrieve, attribute operations, delete (both databases)."""

from __future__ import annotations

from tests.domains.context.conftest import NgsiClient

ROOM = {
    "id": "urn:ngsi-ld:Room:1",
    "type": "Room",
    "temperature": {
        "type": "Property",
        "value": 21.5,
        "unitCode": "CEL",
        "observedAt": "2026-11-01T10:00:00Z",
    },
    "isPartOf": {"type": "Relationship", "object": "urn:ngsi-ld:Building:A"},
    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [120.2, 30.25]}},
}


def test_create_then_retrieve_in_every_format(ngsi: NgsiClient) -> None:
    created = ngsi.create(ROOM)
    assert created.headers["Location"] == "/ngsi-ld/v1/entities/urn:ngsi-ld:Room:1"
    normalized = ngsi.get("/entities/urn:ngsi-ld:Room:1").json()
    assert normalized["temperature"] == ROOM["temperature"]
    assert normalized["isPartOf"] == ROOM["isPartOf"]
    assert normalized["location"] == ROOM["location"]
    simple = ngsi.get("/entities/urn:ngsi-ld:Room:1", params={"options": "keyValues"}).json()
    assert simple == {
        "id": "urn:ngsi-ld:Room:1",
        "type": "Room",
        "temperature": 21.5,
        "isPartOf": "urn:ngsi-ld:Building:A",
        "location": {"type": "Point", "coordinates": [120.2, 30.25]},
    }
    concise = ngsi.get("/entities/urn:ngsi-ld:Room:1", params={"options": "concise"}).json()
    assert concise["isPartOf"] == {"object": "urn:ngsi-ld:Building:A"}
    assert concise["location"] == {"type": "Point", "coordinates": [120.2, 30.25]}
    with_sys = ngsi.get("/entities/urn:ngsi-ld:Room:1", params={"options": "sysAttrs"}).json()
    assert with_sys["createdAt"].endswith("Z") and "modifiedAt" in with_sys["temperature"]


def test_duplicate_create_is_already_exists(ngsi: NgsiClient) -> None:
    ngsi.create(ROOM)
    again = ngsi.post("/entities", json=ROOM)
    assert again.status_code == 409
    assert again.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists"


def test_partial_attribute_update_and_delete(ngsi: NgsiClient) -> None:
    ngsi.create(ROOM)
    response = ngsi.patch("/entities/urn:ngsi-ld:Room:1/attrs/temperature", json={"value": 23})
    assert response.status_code == 204, response.text
    entity = ngsi.get("/entities/urn:ngsi-ld:Room:1").json()
    assert entity["temperature"]["value"] == 23 and entity["temperature"]["unitCode"] == "CEL"
    assert ngsi.delete("/entities/urn:ngsi-ld:Room:1/attrs/temperature").status_code == 204
    assert "temperature" not in ngsi.get("/entities/urn:ngsi-ld:Room:1").json()
    assert ngsi.delete("/entities/urn:ngsi-ld:Room:1").status_code == 204
    missing = ngsi.get("/entities/urn:ngsi-ld:Room:1")
    assert missing.status_code == 404
    assert missing.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"


def test_query_by_type_and_q(ngsi: NgsiClient) -> None:
    for number, temperature in enumerate((18, 22, 26)):
        ngsi.create(
            {
                **ROOM,
                "id": f"urn:ngsi-ld:Room:{number}",
                "temperature": {"type": "Property", "value": temperature},
            }
        )
    found = ngsi.get("/entities", params={"type": "Room", "q": "temperature>20", "count": "true"})
    assert found.status_code == 200, found.text
    assert sorted(item["id"] for item in found.json()) == ["urn:ngsi-ld:Room:1", "urn:ngsi-ld:Room:2"]
    assert found.headers["NGSILD-Results-Count"] == "2"
    near = ngsi.get(
        "/entities",
        params={
            "type": "Room",
            "georel": "near;maxDistance==1000",
            "geometry": "Point",
            "coordinates": "[120.201,30.25]",
        },
    )
    assert len(near.json()) == 3
    bad = ngsi.get("/entities", params={"type": "Room", "q": "temperature>>"})
    assert bad.status_code == 400 and bad.json()["type"].endswith("BadRequestData")
