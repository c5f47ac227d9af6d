"""The demo city's context data: Smart Data Models entities inside the city, valid stored documents, hourly
history up to the seeding hour, and a tenant tied to the first district."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, timedelta

from rich.progress import Progress
from sqlalchemy import func, select

from cityhub.cli.demo import seed_city
from cityhub.domains.context import demo as context_demo
from cityhub.domains.context.models import AttributeInstance, Entity, EntityType, Tenant
from cityhub.domains.context.store.document import LOCATION, parse_entity
from cityhub.domains.identity.models import OrgUnit
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.demo import DemoSize
from cityhub.kernel.settings import Settings

SDM = "https://smartdatamodels.org/"
PM25 = SDM + "dataModel.Environment/pm25"


def test_the_tiny_city_has_sensors_with_a_day_of_hourly_history(
    database: Database, settings: Settings
) -> None:
    seed_city(
        database,
        settings,
        DemoSize.TINY,
        7,
        reset=False,
        progress=Progress(disable=True),
        today=date(2026, 1, 1),
    )
    profile = context_demo.PROFILES[DemoSize.TINY]
    with database.reading() as session:
        communities = session.scalar(
            select(func.count()).select_from(OrgUnit).where(OrgUnit.kind == "community")
        )
        types = Counter(session.scalars(select(EntityType.type_iri)))
        tenants = {
            row.name: row.org_unit_id for row in session.execute(select(Tenant.name, Tenant.org_unit_id))
        }
        district = session.scalar(select(OrgUnit).where(OrgUnit.kind == "district"))
        city = session.scalar(select(OrgUnit).where(OrgUnit.kind == "city"))
        entities = list(session.scalars(select(Entity)))
        station = session.scalar(
            select(Entity).where(Entity.entity_id.like("urn:ngsi-ld:AirQualityObserved:%")).limit(1)
        )
        readings = session.execute(
            select(AttributeInstance.observed_at, AttributeInstance.value_num)
            .where(AttributeInstance.entity_id == station.entity_id, AttributeInstance.attr_iri == PM25)
            .order_by(AttributeInstance.observed_at)
        ).all()
    assert types[SDM + "dataModel.Parking/ParkingSpot"] == communities * profile.parking_spots_per_community
    assert (
        types[SDM + "dataModel.Streetlighting/Streetlight"]
        == communities * profile.streetlights_per_community
    )
    assert types[SDM + "dataModel.Environment/AirQualityObserved"] == profile.air_stations_per_district
    for model in ("Weather/WeatherObserved", "Parking/OffStreetParking", "Transportation/EVChargingStation"):
        assert types[f"{SDM}dataModel.{model}"] >= 1
    assert tenants == {"": None, context_demo.LIGHTING_TENANT: district.id}
    west, south, east, north = _bounds(city.boundary)
    for entity in entities:
        parse_entity(
            {"id": entity.entity_id, "type": entity.types, **entity.attrs}
        )  # a valid stored document
        assert LOCATION in entity.attrs
        assert west <= entity.geo_min_lon and entity.geo_max_lon <= east
        assert south <= entity.geo_min_lat and entity.geo_max_lat <= north
    assert len(readings) == profile.history_hours + 1
    assert all(
        later - earlier == timedelta(hours=1) for (earlier, _), (later, _) in itertools.pairwise(readings)
    )
    assert utcnow() - readings[-1][0] < timedelta(hours=1)
    assert all(value is not None and 0 < value < 300 for _moment, value in readings)
    assert station.attrs[PM25][0]["value"] == readings[-1][1]
    assert station.attrs[SDM + "address"][0]["value"]["addressLocality"] == "滨江市"


def _bounds(boundary: dict) -> tuple[float, float, float, float]:
    ring = boundary["coordinates"][0]
    return (
        min(point[0] for point in ring),
        min(point[1] for point in ring),
        max(point[0] for point in ring),
        max(point[1] for point in ring),
    )
