"""The context hub's operator pages: refused without login or permission, tenants scoped by org unit, the
entity list with paging, the map's GeoJSON, one entity with its history charts, subscriptions' deliveries."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from cityhub.domains.context.jsonld import ContextResolver
from cityhub.domains.context.models import Subscription
from cityhub.domains.context.service import console
from cityhub.domains.context.service.entities import create_entity, patch_attribute
from cityhub.domains.context.service.tenants import find_tenant, tie_tenant
from cityhub.domains.context.settings import ContextSettings
from cityhub.domains.context.store.document import parse_entity, timestamp
from cityhub.kernel.db import Database, utcnow
from tests.factories import Town, make_user
from tests.web.factories import HTML, login

ENVIRONMENT = (
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
)
PARKING = "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld"
AIR = "https://smartdatamodels.org/dataModel.Environment/AirQualityObserved"
SPOT = "https://smartdatamodels.org/dataModel.Parking/ParkingSpot"
STATION = "urn:ngsi-ld:AirQualityObserved:station-1"


def _create(database: Database, entity: dict[str, Any], context: str, tenant: str = "") -> None:
    mapper = ContextResolver(ContextSettings()).mapper(context)
    with database.unit_of_work() as session:
        create_entity(
            session, find_tenant(session, tenant, create=True), parse_entity(mapper.expand_entity(entity))
        )


def _station(database: Database) -> None:
    """An air-quality station with two readings of pm25 (an hour apart) and one of no2."""
    earlier = timestamp(utcnow() - timedelta(hours=1))
    station = {
        "id": STATION,
        "type": "AirQualityObserved",
        "name": {"type": "Property", "value": "江南空气质量监测站"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [120.2, 30.25]}},
        "pm25": {"type": "Property", "value": 31.5, "unitCode": "GQ", "observedAt": earlier},
        "no2": {"type": "Property", "value": 18, "unitCode": "GQ", "observedAt": earlier},
        "typeOfLocation": {"type": "Property", "value": "outdoor"},
    }
    _create(database, station, ENVIRONMENT)
    pm25 = ContextResolver(ContextSettings()).mapper(ENVIRONMENT).expand_term("pm25")
    with database.unit_of_work() as session:
        tenant = find_tenant(session, "", create=False)
        patch_attribute(session, tenant, STATION, pm25, {"value": 42.0, "observedAt": timestamp(utcnow())})


def _spots(database: Database, count: int, tenant: str = "", lon: float = 120.3) -> None:
    for number in range(count):
        spot = {
            "id": f"urn:ngsi-ld:ParkingSpot:{tenant or 'city'}-{number:03d}",
            "type": "ParkingSpot",
            "status": {"type": "Property", "value": "free"},
            "location": {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [lon + number * 0.001, 30.25]},
            },
        }
        _create(database, spot, PARKING, tenant)


@pytest.fixture
def city(database: Database, town: Town) -> None:
    _station(database)
    _spots(database, 25)


def test_anonymous_visitors_are_sent_to_the_login_page(client: TestClient, city: None) -> None:
    answer = client.get("/console/context", headers=HTML, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fconsole%2Fcontext"
    assert client.get("/console/context/features", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "path",
    [
        "/console/context",
        "/console/context/features",
        f"/console/context/entities/{STATION}",
        f"/console/context/entities/{STATION}/series",
        "/console/context/subscriptions",
    ],
)
def test_a_resident_is_refused(resident_client: TestClient, city: None, path: str) -> None:
    answer = resident_client.get(path, headers=HTML)
    assert answer.status_code == 403


def test_the_console_lists_types_with_counts_and_pages_the_entities(
    operator_client: TestClient, city: None
) -> None:
    page = operator_client.get("/console/context", headers=HTML)
    assert page.status_code == 200
    assert 'AirQualityObserved <span class="count">1</span>' in page.text
    assert 'ParkingSpot <span class="count">25</span>' in page.text
    assert 'id="context-map"' in page.text and "/static/vendor/leaflet/leaflet.js" in page.text
    spots = operator_client.get("/console/context", params={"type": SPOT}, headers=HTML).text
    assert "urn:ngsi-ld:ParkingSpot:city-000" in spots and STATION not in spots
    assert re.search(r"1–20\D+25", spots)
    second = operator_client.get(
        "/console/context/entities",
        params={"type": SPOT, "offset": 20},
        headers={**HTML, "HX-Request": "true"},
    )
    assert second.status_code == 200
    assert second.text.lstrip().startswith('<div id="entity-list">')
    assert "urn:ngsi-ld:ParkingSpot:city-024" in second.text and "city-000" not in second.text


def test_the_map_gets_geojson_of_the_visible_area_capped(operator_client: TestClient, city: None) -> None:
    everything = operator_client.get("/console/context/features").json()
    assert everything["type"] == "FeatureCollection" and not everything["truncated"]
    assert len(everything["features"]) == 26
    station = next(item for item in everything["features"] if item["properties"]["id"] == STATION)
    assert station["geometry"] == {"type": "Point", "coordinates": [120.2, 30.25]}
    assert station["properties"]["name"] == "江南空气质量监测站"
    assert station["properties"]["type"] == "AirQualityObserved"
    west = operator_client.get("/console/context/features", params={"bbox": "120.1,30.2,120.25,30.3"}).json()
    assert [item["properties"]["id"] for item in west["features"]] == [STATION]
    spots = operator_client.get("/console/context/features", params={"type": SPOT}).json()
    assert len(spots["features"]) == 25
    bad = operator_client.get("/console/context/features", params={"bbox": "west,south"})
    assert bad.status_code == 400


def test_the_map_is_capped(operator_client: TestClient, city: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "MAP_FEATURE_LIMIT", 10)
    capped = operator_client.get("/console/context/features").json()
    assert len(capped["features"]) == 10 and capped["truncated"]


def test_an_entity_page_shows_readable_attributes_and_its_history(
    operator_client: TestClient, city: None
) -> None:
    page = operator_client.get(f"/console/context/entities/{quote(STATION, safe='')}", headers=HTML)
    assert page.status_code == 200
    assert "<h1>江南空气质量监测站</h1>" in page.text
    assert 'title="https://smartdatamodels.org/dataModel.Environment/pm25">pm25</span>' in page.text
    assert "42.0" in page.text and "GQ" in page.text and "outdoor" in page.text
    assert 'id="context-charts"' in page.text and "/static/vendor/echarts/echarts.min.js" in page.text
    series = operator_client.get(f"/console/context/entities/{STATION}/series").json()
    assert series["window"] == "24h"
    by_name = {item["name"]: item for item in series["series"]}
    assert set(by_name) == {"pm25", "no2"}
    assert [value for _moment, value in by_name["pm25"]["points"]] == [31.5, 42.0]
    assert by_name["pm25"]["unit"] == "GQ"
    missing = operator_client.get("/console/context/entities/urn:ngsi-ld:Thing:none", headers=HTML)
    assert missing.status_code == 404
    assert operator_client.get(f"/console/context/entities/{STATION}/series?window=1y").status_code == 422


def test_subscriptions_show_their_delivery_status(
    operator_client: TestClient, database: Database, city: None
) -> None:
    with database.unit_of_work() as session:
        tenant = find_tenant(session, "", create=False)
        session.add(
            Subscription(
                tenant_id=tenant.id,
                subscription_id="urn:ngsi-ld:Subscription:air",
                document={
                    "subscriptionName": "空气质量告警",
                    "notification": {"endpoint": {"uri": "http://alerts.example/notify"}},
                },
                context=None,
                times_sent=12,
                times_failed=3,
                last_success=utcnow(),
                last_failure=utcnow(),
                last_failure_reason="HTTP 503",
            )
        )
    page = operator_client.get("/console/context/subscriptions", headers=HTML)
    assert page.status_code == 200
    assert "空气质量告警" in page.text and "http://alerts.example/notify" in page.text
    assert "<dd>12</dd>" in page.text and '<dd class="failed">3</dd>' in page.text and "HTTP 503" in page.text


def test_a_tied_tenant_is_open_only_over_its_org_unit(
    client: TestClient, database: Database, town: Town, city: None
) -> None:
    with database.unit_of_work() as session:
        tie_tenant(session, "lighting-a", town.district_a.id)
    _spots(database, 2, tenant="lighting-a")
    make_user(database, "staff_a", [("department_staff", town.district_a)])
    make_user(database, "staff_b", [("department_staff", town.district_b)])
    assert login(client, "staff_a").status_code == 303
    page = client.get("/console/context", params={"tenant": "lighting-a"}, headers=HTML)
    assert page.status_code == 200 and "urn:ngsi-ld:ParkingSpot:lighting-a-000" in page.text
    refused = client.get("/console/context", headers=HTML)  # the untied default tenant needs the whole city
    assert refused.status_code == 403
    assert client.get("/console/context", params={"tenant": "nowhere"}, headers=HTML).status_code == 404
    client.post("/logout", headers={"X-CSRF-Token": "x"})
    client.cookies.clear()
    assert login(client, "staff_b").status_code == 303
    other = client.get("/console/context", params={"tenant": "lighting-a"}, headers=HTML)
    assert other.status_code == 403
