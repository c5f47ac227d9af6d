"""Clause 5.7.2: entity query (GET /entities, POST /entityOperations/query): q, geo, paging (both DBs)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.domains.context.conftest import NgsiClient


def sensor(number: int, **attrs: Any) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Sensor:{number}", "type": "Sensor", **attrs}


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


@pytest.fixture
def sensors(ngsi: NgsiClient) -> None:
    ngsi.create(
        sensor(
            1,
            temperature={"type": "Property", "value": 12, "observedAt": "2026-11-01T10:00:00Z"},
            status={"type": "Property", "value": "ok"},
            name={"type": "Property", "value": "north gate"},
            tags={"type": "Property", "value": ["red", "blue"]},
            address={"type": "Property", "value": {"city": "Hangzhou", "zip": "310000"}},
            controlledBy={"type": "Relationship", "object": "urn:ngsi-ld:Device:1"},
            location=point(120.10, 30.20),
        )
    )
    ngsi.create(
        sensor(
            2,
            temperature={
                "type": "Property",
                "value": 25.5,
                "unitCode": "CEL",
                "accuracy": {"type": "Property", "value": 0.5},
            },
            status={"type": "Property", "value": "faulty"},
            name={"type": "Property", "value": "south gate"},
            controlledBy={"type": "Relationship", "object": "urn:ngsi-ld:Device:2"},
            location=point(120.11, 30.20),
        )
    )
    ngsi.create(
        sensor(
            3,
            temperature=[
                {"type": "Property", "value": 5},
                {"type": "Property", "value": 40, "datasetId": "urn:ngsi-ld:Dataset:hot"},
            ],
            status={"type": "Property", "value": "ok"},
            location={
                "type": "GeoProperty",
                "value": {"type": "LineString", "coordinates": [[120.3, 30.3], [120.4, 30.3]]},
            },
        )
    )
    ngsi.create(
        {
            "id": "urn:ngsi-ld:Building:A",
            "type": "Building",
            "status": {"type": "Property", "value": "ok"},
            "location": {
                "type": "GeoProperty",
                "value": {
                    "type": "Polygon",
                    "coordinates": [
                        [[120.0, 30.0], [120.5, 30.0], [120.5, 30.5], [120.0, 30.5], [120.0, 30.0]]
                    ],
                },
            },
        }
    )


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(item["id"] for item in response.json())


def q(ngsi: NgsiClient, expression: str, **params: str) -> list[str]:
    return ids(ngsi.get("/entities", params={"type": "Sensor", "q": expression, **params}))


S1, S2, S3 = (f"urn:ngsi-ld:Sensor:{n}" for n in (1, 2, 3))


@pytest.mark.usefixtures("sensors")
def test_type_lists_ids_and_patterns(ngsi: NgsiClient) -> None:
    assert ids(ngsi.get("/entities", params={"type": "Building"})) == ["urn:ngsi-ld:Building:A"]
    assert len(ids(ngsi.get("/entities", params={"type": "Sensor,Building"}))) == 4
    assert ids(ngsi.get("/entities", params={"id": f"{S1},{S3}"})) == [S1, S3]
    assert ids(ngsi.get("/entities", params={"idPattern": "Sensor:[12]$"})) == [S1, S2]
    assert ids(ngsi.get("/entities", params={"type": "Sensor", "idPattern": ":3$"})) == [S3]
    assert ids(ngsi.get("/entities", params={"type": "Nothing"})) == []


@pytest.mark.usefixtures("sensors")
def test_attrs_projection_selects_and_trims(ngsi: NgsiClient) -> None:
    found = ngsi.get("/entities", params={"attrs": "controlledBy"}).json()
    assert sorted(item["id"] for item in found) == [S1, S2]
    assert all(set(item) == {"id", "type", "controlledBy"} for item in found)


@pytest.mark.usefixtures("sensors")
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("temperature>20", [S2, S3]),  # S3 through its second instance (multi-attribute: any instance)
        ("temperature<=12", [S1, S3]),
        ("temperature==12", [S1]),
        ("temperature!=12", [S2, S3]),
        ("temperature==10..30", [S1, S2]),
        ("temperature==5,25.5", [S2, S3]),
        ('status=="ok"', [S1, S3]),
        ("status==ok", [S1, S3]),
        ('status!="ok"', [S2]),
        ('name~="^north"', [S1]),
        ('name!~="gate$"', []),
        ('tags=="blue"', [S1]),
        ('tags!="green"', [S1]),  # every element differs; entities without tags never match
        ('status=="ok";temperature>10', [S1, S3]),
        ('status=="faulty"|temperature<6', [S2, S3]),
        ('(status=="ok"|status=="faulty");temperature>=25', [S2, S3]),
        ("temperature.accuracy<1", [S2]),
        ('temperature.unitCode=="CEL"', [S2]),
        ("temperature.observedAt>2026-10-01T00:00:00Z", [S1]),
        ('address[city]=="Hangzhou"', [S1]),
        ('controlledBy=="urn:ngsi-ld:Device:2"', [S2]),
        ("name", [S1, S2]),
        ("!name", [S3]),
        ("temperature>100", []),
        ('temperature=="12"', []),  # a string is not the number 12
    ],
)
def test_q_operators(ngsi: NgsiClient, expression: str, expected: list[str]) -> None:
    assert q(ngsi, expression) == expected


@pytest.mark.usefixtures("sensors")
@pytest.mark.parametrize(
    ("georel", "geometry", "coordinates", "expected"),
    [
        ("near;maxDistance==1500", "Point", "[120.10,30.20]", [S1, S2]),
        ("near;maxDistance==100", "Point", "[120.10,30.20]", [S1]),
        ("near;minDistance==500", "Point", "[120.10,30.20]", [S2, S3]),
        (
            "within",
            "Polygon",
            "[[[120.05,30.15],[120.105,30.15],[120.105,30.25],[120.05,30.25],[120.05,30.15]]]",
            [S1],
        ),
        ("intersects", "LineString", "[[120.35,30.0],[120.35,31.0]]", [S3]),
        (
            "disjoint",
            "Polygon",
            "[[[120.05,30.15],[120.105,30.15],[120.105,30.25],[120.05,30.25],[120.05,30.15]]]",
            [S2, S3],
        ),
        ("equals", "Point", "[120.11,30.20]", [S2]),
        ("overlaps", "LineString", "[[120.35,30.3],[120.45,30.3]]", [S3]),
    ],
)
def test_geo_relations(
    ngsi: NgsiClient, georel: str, geometry: str, coordinates: str, expected: list[str]
) -> None:
    params = {"type": "Sensor", "georel": georel, "geometry": geometry, "coordinates": coordinates}
    assert ids(ngsi.get("/entities", params=params)) == expected


@pytest.mark.usefixtures("sensors")
def test_contains_finds_the_polygon_around_a_point(ngsi: NgsiClient) -> None:
    params = {"georel": "contains", "geometry": "Point", "coordinates": "[120.2,30.2]"}
    assert ids(ngsi.get("/entities", params=params)) == ["urn:ngsi-ld:Building:A"]


@pytest.mark.usefixtures("sensors")
def test_limit_offset_and_count(ngsi: NgsiClient) -> None:
    first = ngsi.get("/entities", params={"type": "Sensor", "limit": 2, "count": "true"})
    assert first.headers["NGSILD-Results-Count"] == "3" and ids(first) == [S1, S2]
    assert ids(ngsi.get("/entities", params={"type": "Sensor", "limit": 2, "offset": 2})) == [S3]
    only_count = ngsi.get("/entities", params={"type": "Sensor", "limit": 0, "count": "true"})
    assert only_count.json() == [] and only_count.headers["NGSILD-Results-Count"] == "3"
    filtered = ngsi.get("/entities", params={"type": "Sensor", "q": 'status=="ok"', "count": "true"})
    assert filtered.headers["NGSILD-Results-Count"] == "2"


@pytest.mark.usefixtures("sensors")
def test_key_values_and_concise(ngsi: NgsiClient) -> None:
    params = {"id": S2, "options": "keyValues"}
    simple = ngsi.get("/entities", params=params).json()[0]
    assert simple["temperature"] == 25.5 and simple["controlledBy"] == "urn:ngsi-ld:Device:2"
    concise = ngsi.get("/entities", params={"id": S2, "options": "concise"}).json()[0]
    assert concise["status"] == "faulty" and concise["controlledBy"] == {"object": "urn:ngsi-ld:Device:2"}


def test_scope_query(ngsi: NgsiClient) -> None:
    ngsi.create(sensor(7, scope="/Hangzhou/Binjiang", status={"type": "Property", "value": "ok"}))
    ngsi.create(sensor(8, scope="/Hangzhou/Xihu/Lake", status={"type": "Property", "value": "ok"}))
    ngsi.create(sensor(9, status={"type": "Property", "value": "ok"}))
    assert ids(ngsi.get("/entities", params={"type": "Sensor", "scopeQ": "/Hangzhou/#"})) == [
        "urn:ngsi-ld:Sensor:7",
        "urn:ngsi-ld:Sensor:8",
    ]
    assert ids(ngsi.get("/entities", params={"type": "Sensor", "scopeQ": "/Hangzhou/+"})) == [
        "urn:ngsi-ld:Sensor:7"
    ]


@pytest.mark.usefixtures("sensors")
def test_post_query(ngsi: NgsiClient) -> None:
    body = {
        "type": "Query",
        "entities": [{"type": "Sensor"}],
        "attrs": ["temperature", "status"],
        "q": 'status=="ok"',
        "geoQ": {"geometry": "Point", "coordinates": [120.10, 30.20], "georel": "near;maxDistance==2000"},
    }
    found = ngsi.post("/entityOperations/query", json=body, params={"count": "true"})
    assert ids(found) == [S1] and found.headers["NGSILD-Results-Count"] == "1"
    assert set(found.json()[0]) == {"id", "type", "temperature", "status"}
    by_pattern = ngsi.post(
        "/entityOperations/query",
        json={"type": "Query", "entities": [{"idPattern": "Sensor:[23]", "type": "Sensor"}]},
        params={"limit": 1, "options": "keyValues"},
    )
    assert ids(by_pattern) == [S2] and by_pattern.json()[0]["status"] == "faulty"
    assert ngsi.post("/entityOperations/query", json={"type": "Query"}).status_code == 400
    assert ngsi.post("/entityOperations/query", json={"type": "Nope", "q": "a"}).status_code == 400


@pytest.mark.usefixtures("sensors")
@pytest.mark.parametrize(
    "params",
    [
        {"type": "Sensor", "q": "temperature>"},
        {"type": "Sensor", "q": "temperature=5"},
        {"type": "Sensor", "q": "(status==ok"},
        {"type": "Sensor", "georel": "near;maxDistance==10", "geometry": "Point", "coordinates": "[1]"},
        {"type": "Sensor", "georel": "around", "geometry": "Point", "coordinates": "[1,2]"},
        {"type": "Sensor", "georel": "near;maxDistance==10"},
        {"type": "Sensor", "limit": "0"},
        {"type": "Sensor", "limit": "5000"},
        {"type": "Sensor", "offset": "-1"},
        {"idPattern": "(["},
    ],
)
def test_bad_queries_are_bad_request_data(ngsi: NgsiClient, params: dict[str, str]) -> None:
    response = ngsi.get("/entities", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


def test_post_query_on_an_unknown_tenant_creates_nothing(ngsi: NgsiClient) -> None:
    answer = ngsi.post(
        "/entityOperations/query", json={"type": "Query", "entities": [{"type": "Sensor"}]}, tenant="ghost"
    )
    assert answer.status_code == 404
    assert answer.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/NonexistentTenant"
    assert ngsi.get("/entities", params={"type": "Sensor"}, tenant="ghost").status_code == 404
