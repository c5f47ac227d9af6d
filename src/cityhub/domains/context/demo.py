"""Demo data of the context hub: Smart Data Models entities of the demo city 滨江市, with history.

Per district: air-quality stations (AirQualityObserved) and a weather station (WeatherObserved); per
subdistrict: an underground car park (OffStreetParking); per community: on-street parking spots
(ParkingSpot), EV charging stations (EVChargingStation), streetlights (Streetlight) and residential blocks
(Building), all placed inside the community's boundary. Sensors carry hourly readings up to the hour of
seeding (24 h for the tiny city, 7 days otherwise) that follow daily rhythms: traffic peaks in NO2, afternoon
ozone, car parks full at night in housing areas, streetlights on from dusk to dawn.

Each entity is written in the Smart Data Models vocabulary, expanded with its model's @context and
validated by ``store.document`` like an API request, then bulk-inserted in the stored form with the history
rows the service would have appended (a create at the start, then one update per reading).

The first district's streetlights live in the tenant ``district-lighting``, tied to that district: only
people with the permission over the district see them; everything else is in the default tenant.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from cityhub.domains.context.jsonld import ContextResolver, TermMapper
from cityhub.domains.context.models import AttributeInstance, Entity, EntityType
from cityhub.domains.context.service.entities import geo_columns
from cityhub.domains.context.service.tenants import TenantRef, find_tenant, tie_tenant
from cityhub.domains.context.settings import ContextSettings
from cityhub.domains.context.store.document import (
    EntityInput,
    Instance,
    instance_value_number,
    parse_entity,
    stamped,
    timestamp,
)
from cityhub.domains.identity import units_in_scope
from cityhub.kernel.bulk import bulk_insert
from cityhub.kernel.db import utcnow
from cityhub.kernel.demo import Box, DemoContext, DemoSize
from cityhub.kernel.settings import domain_settings

SDM = "https://raw.githubusercontent.com/smart-data-models/{}/master/context.jsonld"
ENVIRONMENT = SDM.format("dataModel.Environment")
WEATHER = SDM.format("dataModel.Weather")
PARKING = SDM.format("dataModel.Parking")
STREETLIGHTING = SDM.format("dataModel.Streetlighting")
BUILDING = SDM.format("dataModel.Building")
TRANSPORTATION = "https://smart-data-models.github.io/dataModel.Transportation/context.jsonld"
LIGHTING_TENANT = "district-lighting"
DATA_PROVIDER = "滨江市城市运营有限公司"


@dataclass(frozen=True)
class Profile:
    air_stations_per_district: int
    parking_spots_per_community: int
    chargers_per_community: int
    streetlights_per_community: int
    buildings_per_community: int
    history_hours: int


PROFILES: dict[DemoSize, Profile] = {
    DemoSize.TINY: Profile(1, 4, 1, 3, 1, 24),
    DemoSize.SMALL: Profile(2, 12, 2, 10, 3, 7 * 24),
    DemoSize.MEDIUM: Profile(2, 12, 2, 10, 3, 7 * 24),
    DemoSize.LARGE: Profile(2, 12, 2, 10, 3, 7 * 24),
}


@dataclass(frozen=True)
class _Place:
    """An org unit of the demo city, as far as placing entities needs it."""

    id: int
    code: str
    name: str
    path: str
    box: Box


Reading = Callable[[int], float]  # hour of the day (local time) -> value


@dataclass
class _Sensor:
    """A numeric attribute that is read every hour: its unit, its daily rhythm, its noise."""

    unit: str
    rhythm: Reading
    noise: float
    digits: int = 1


@dataclass
class _Draft:
    """One entity before storage: its compact SDM form and @context, and its hourly sensors."""

    tenant: TenantRef
    body: dict[str, Any]
    context: str
    sensors: dict[str, _Sensor] = field(default_factory=dict)


def seed(ctx: DemoContext) -> None:
    """Seed the context hub's share of the demo city (``Domain.demo_seeder``)."""
    _ContextSeeder(ctx, PROFILES[ctx.size]).run()


def _local_hour(moment: datetime) -> int:
    return (moment.hour + 8) % 24  # the demo city is in China (UTC+8)


def _lit(hour: int) -> float:
    """Streetlights burn from 18:00 to 06:00."""
    return 1.0 if hour >= 18 or hour < 6 else 0.0


def _bump(hour: int, peak: int, width: float) -> float:
    """1 at ``peak`` o'clock, falling off over ``width`` hours (wrapping round midnight)."""
    distance = min(abs(hour - peak), 24 - abs(hour - peak))
    return math.exp(-((distance / width) ** 2))


class _ContextSeeder:
    def __init__(self, ctx: DemoContext, profile: Profile) -> None:
        self.ctx = ctx
        self.rng: random.Random = ctx.rng
        self.profile = profile
        self.resolver = ContextResolver(domain_settings(ContextSettings))
        self.mappers: dict[str, TermMapper] = {}
        self.now = utcnow().replace(minute=0, second=0, microsecond=0)
        self.start = self.now - timedelta(hours=profile.history_hours)

    def run(self) -> None:
        session = self.ctx.session
        districts = _places(session, "district")
        if not districts:
            return
        task = self.ctx.progress.add_task("context: sensors and their history", total=3)
        default = find_tenant(session, "", create=True)
        lighting = tie_tenant(session, LIGHTING_TENANT, districts[0].id)
        subdistricts = _places(session, "subdistrict")
        communities = _places(session, "community")
        drafts: list[_Draft] = []
        for district in districts:
            drafts += self._district(default, district)
        for subdistrict in subdistricts:
            drafts.append(self._car_park(default, subdistrict))
        for community in communities:
            in_first = community.path.startswith(districts[0].path)
            drafts += self._community(default, lighting if in_first else default, community)
        self.ctx.progress.advance(task)
        self._store(session, drafts)
        self.ctx.progress.advance(task, 2)

    # -- entities by place

    def _district(self, tenant: TenantRef, district: _Place) -> list[_Draft]:
        spots = district.box.inset(200).split(self.profile.air_stations_per_district + 1)
        drafts = [
            self._air_station(tenant, district, number, box) for number, box in enumerate(spots[:-1], start=1)
        ]
        drafts.append(self._weather_station(tenant, district, spots[-1]))
        return drafts

    def _community(self, tenant: TenantRef, lighting: TenantRef, community: _Place) -> list[_Draft]:
        profile = self.profile
        drafts = [
            self._parking_spot(tenant, community, n)
            for n in range(1, profile.parking_spots_per_community + 1)
        ]
        drafts += [self._charger(tenant, community, n) for n in range(1, profile.chargers_per_community + 1)]
        drafts += [
            self._streetlight(lighting, community, n)
            for n in range(1, profile.streetlights_per_community + 1)
        ]
        drafts += [
            self._building(tenant, community, n) for n in range(1, profile.buildings_per_community + 1)
        ]
        return drafts

    def _point(self, box: Box) -> dict[str, Any]:
        lon, lat = box.inset(20).point(self.rng)
        return {"type": "Point", "coordinates": [lon, lat]}

    def _address(self, place: _Place) -> dict[str, Any]:
        """A PostalAddress value (written out as a Property: its keys are data, not attribute names)."""
        return {
            "type": "Property",
            "value": {"addressCountry": "CN", "addressLocality": "滨江市", "addressRegion": place.name},
        }

    def _air_station(self, tenant: TenantRef, district: _Place, number: int, box: Box) -> _Draft:
        rng = self.rng
        smog = rng.uniform(0.8, 1.3)
        sensors = {
            "pm25": _Sensor(
                "GQ", lambda h: 32 * smog * (1 + 0.3 * _bump(h, 8, 3) + 0.25 * _bump(h, 20, 4)), 4
            ),
            "pm10": _Sensor(
                "GQ", lambda h: 58 * smog * (1 + 0.3 * _bump(h, 8, 3) + 0.2 * _bump(h, 19, 4)), 6
            ),
            "no2": _Sensor("GQ", lambda h: 22 + 26 * _bump(h, 8, 2) + 22 * _bump(h, 18, 2.5), 3),
            "o3": _Sensor("GQ", lambda h: 35 + 75 * _bump(h, 15, 3.5), 5),
            "so2": _Sensor("GQ", lambda h: 7 + 2 * _bump(h, 9, 4), 0.8),
            "co": _Sensor("GP", lambda h: 0.6 + 0.35 * _bump(h, 8, 2.5) + 0.3 * _bump(h, 19, 3), 0.05, 2),
            "temperature": _Sensor("CEL", lambda h: 14 + 6 * _bump(h, 14, 5), 0.4),
            "relativeHumidity": _Sensor("", lambda h: 0.78 - 0.22 * _bump(h, 14, 5), 0.02, 2),
        }
        body = {
            "id": f"urn:ngsi-ld:AirQualityObserved:{district.code}-{number:02d}",
            "type": "AirQualityObserved",
            "name": f"{district.name}空气质量监测站{number}号",
            "address": self._address(district),
            "location": self._point(box),
            "typeOfLocation": "outdoor",
            "dataProvider": DATA_PROVIDER,
        }
        return _Draft(tenant, body, ENVIRONMENT, sensors)

    def _weather_station(self, tenant: TenantRef, district: _Place, box: Box) -> _Draft:
        sensors = {
            "temperature": _Sensor("CEL", lambda h: 13 + 7 * _bump(h, 14, 5), 0.3),
            "relativeHumidity": _Sensor("", lambda h: 0.8 - 0.25 * _bump(h, 14, 5), 0.02, 2),
            "atmosphericPressure": _Sensor("A97", lambda h: 1016 - 3 * _bump(h, 16, 4), 0.4),
            "windSpeed": _Sensor("MTS", lambda h: 2 + 2.5 * _bump(h, 15, 4), 0.6),
            "precipitation": _Sensor("MMT", lambda h: 0.0, 0.0),
        }
        body = {
            "id": f"urn:ngsi-ld:WeatherObserved:{district.code}",
            "type": "WeatherObserved",
            "name": f"{district.name}气象观测站",
            "address": self._address(district),
            "location": self._point(box),
            "dataProvider": DATA_PROVIDER,
        }
        return _Draft(tenant, body, WEATHER, sensors)

    def _car_park(self, tenant: TenantRef, subdistrict: _Place) -> _Draft:
        total = self.rng.choice((120, 180, 240, 300))
        sensors = {
            "availableSpotNumber": _Sensor(
                "",
                lambda h: total * (0.15 + 0.6 * _bump(h, 13, 4.5)),
                total * 0.04,
                0,
            ),
        }
        body = {
            "id": f"urn:ngsi-ld:OffStreetParking:{subdistrict.code}",
            "type": "OffStreetParking",
            "name": f"{subdistrict.name.removesuffix('街道')}地下停车场",
            "address": self._address(subdistrict),
            "location": self._point(subdistrict.box),
            "category": ["underground", "public", "feeCharged"],
            "totalSpotNumber": total,
            "dataProvider": DATA_PROVIDER,
        }
        return _Draft(tenant, body, PARKING, sensors)

    def _parking_spot(self, tenant: TenantRef, community: _Place, number: int) -> _Draft:
        body = {
            "id": f"urn:ngsi-ld:ParkingSpot:{community.code}-{number:03d}",
            "type": "ParkingSpot",
            "name": f"{community.name.removesuffix('社区')}路边车位{number:03d}",
            "location": self._point(community.box),
            "status": self.rng.choices(("free", "occupied"), weights=(35, 65))[0],
            "category": ["onStreet", "feeCharged"],
        }
        return _Draft(tenant, body, PARKING)

    def _charger(self, tenant: TenantRef, community: _Place, number: int) -> _Draft:
        capacity = self.rng.choice((4, 6, 8))
        sensors = {
            "availableCapacity": _Sensor(
                "", lambda h: capacity * (0.8 - 0.6 * _bump(h, 21, 3) - 0.3 * _bump(h, 12, 2)), 0.8, 0
            ),
        }
        body = {
            "id": f"urn:ngsi-ld:EVChargingStation:{community.code}-{number:02d}",
            "type": "EVChargingStation",
            "name": f"{community.name.removesuffix('社区')}充电站{number}号",
            "location": self._point(community.box),
            "capacity": capacity,
            "allowedVehicleType": ["car"],
            "chargeType": ["flat"],
            "operator": "滨江能源",
            "status": ["working"],
        }
        return _Draft(tenant, body, TRANSPORTATION, sensors)

    def _streetlight(self, tenant: TenantRef, community: _Place, number: int) -> _Draft:
        sensors = {
            "powerConsumption": _Sensor("KWT", lambda h: 0.12 * _lit(h), 0.004, 3),
            "illuminanceLevel": _Sensor("", lambda h: (1.0 if h < 1 or h >= 18 else 0.6) * _lit(h), 0, 2),
        }
        body = {
            "id": f"urn:ngsi-ld:Streetlight:{community.code}-{number:03d}",
            "type": "Streetlight",
            "name": f"{community.name.removesuffix('社区')}路灯{number:03d}",
            "location": self._point(community.box),
            "status": "ok" if self.rng.random() > 0.05 else "defectiveLamp",
            "powerState": "on" if _lit(_local_hour(self.now)) else "off",
            "lanternHeight": self.rng.choice((8, 10, 12)),
            "areaServed": community.name,
        }
        return _Draft(tenant, body, STREETLIGHTING, sensors)

    def _building(self, tenant: TenantRef, community: _Place, number: int) -> _Draft:
        lon, lat = community.box.inset(60).point(self.rng)
        footprint = Box.around(lon, lat, 60, 16).polygon()
        floors = self.rng.choice((6, 11, 18, 26))
        body = {
            "id": f"urn:ngsi-ld:Building:{community.code}-{number:02d}",
            "type": "Building",
            "name": f"{community.name.removesuffix('社区')}{number}幢",
            "address": self._address(community),
            "location": footprint,
            "category": ["residential"],
            "floorsAboveGround": floors,
            "floorsBelowGround": 1 if floors > 6 else 0,
        }
        return _Draft(tenant, body, BUILDING)

    # -- storage

    def _mapper(self, context: str) -> TermMapper:
        mapper = self.mappers.get(context)
        if mapper is None:
            mapper = self.mappers[context] = self.resolver.mapper(context)
        return mapper

    def _store(self, session: Session, drafts: list[_Draft]) -> None:
        entity_rows: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        types: dict[tuple[int, str], list[str]] = {}
        for draft in drafts:
            mapper = self._mapper(draft.context)
            sensors = {mapper.expand_term(name): sensor for name, sensor in draft.sensors.items()}
            entity = parse_entity(mapper.expand_entity(self._with_readings(draft)))
            attrs = self._stamped(entity, sensors)
            entity_rows.append(
                {
                    "tenant_id": draft.tenant.id,
                    "entity_id": entity.entity_id,
                    "types": entity.types,
                    "scopes": entity.scopes,
                    "attrs": attrs,
                    "created_at": self.start,
                    "modified_at": self.now if sensors else self.start,
                    **geo_columns(attrs),
                }
            )
            types[(draft.tenant.id, entity.entity_id)] = entity.types
            history += self._history(draft.tenant, entity, attrs, sensors)
        inserted = session.execute(
            insert(Entity).returning(Entity.pk, Entity.tenant_id, Entity.entity_id), entity_rows
        ).all()
        type_rows = [
            {"entity_pk": pk, "type_iri": iri, "tenant_id": tenant_id}
            for pk, tenant_id, entity_id in inserted
            for iri in types[(tenant_id, entity_id)]
        ]
        bulk_insert(session, EntityType, type_rows)
        bulk_insert(session, AttributeInstance, history)

    def _with_readings(self, draft: _Draft) -> dict[str, Any]:
        """The body with each sensor's latest reading as a Property with unit and observedAt."""
        body = dict(draft.body)
        observed = timestamp(self.now)
        for name, sensor in draft.sensors.items():
            reading: dict[str, Any] = {
                "type": "Property",
                "value": self._reading(sensor, self.now),
                "observedAt": observed,
            }
            if sensor.unit:
                reading["unitCode"] = sensor.unit
            body[name] = reading
        return body

    def _reading(self, sensor: _Sensor, moment: datetime) -> float:
        value = max(0.0, sensor.rhythm(_local_hour(moment)) + self.rng.gauss(0, sensor.noise))
        return round(value, sensor.digits) if sensor.digits else float(round(value))

    def _stamped(self, entity: EntityInput, sensors: dict[str, _Sensor]) -> dict[str, list[Instance]]:
        created, modified = timestamp(self.start), timestamp(self.now)
        return {
            name: [
                stamped(instance, modified if name in sensors else created, created) for instance in instances
            ]
            for name, instances in entity.attrs.items()
        }

    def _history(
        self,
        tenant: TenantRef,
        entity: EntityInput,
        attrs: dict[str, list[Instance]],
        sensors: dict[str, _Sensor],
    ) -> list[dict[str, Any]]:
        """The rows ``changes.record_history`` appends: every attribute at creation, then each reading."""
        rows = [
            _history_row(tenant, entity.entity_id, name, self.start, instance)
            for name, instances in attrs.items()
            if name not in sensors
            for instance in instances
        ]
        for name, sensor in sensors.items():
            latest = attrs[name][0]
            for hour in range(self.profile.history_hours):
                moment = self.start + timedelta(hours=hour)
                instance = {**latest, "value": self._reading(sensor, moment), "observedAt": timestamp(moment)}
                rows.append(_history_row(tenant, entity.entity_id, name, moment, instance))
            rows.append(_history_row(tenant, entity.entity_id, name, self.now, latest))
        return rows


def _history_row(
    tenant: TenantRef, entity_id: str, name: str, moment: datetime, instance: Instance
) -> dict[str, Any]:
    return {
        "tenant_id": tenant.id,
        "entity_id": entity_id,
        "attr_iri": name,
        "dataset_id": instance.get("datasetId"),
        "attr_type": instance.get("type", "Property"),
        "observed_at": moment,
        "created_at": moment,
        "value_num": instance_value_number(instance),
        "instance": {key: value for key, value in instance.items() if key not in ("createdAt", "modifiedAt")},
        "deleted": False,
    }


def _places(session: Session, kind: str) -> list[_Place]:
    """The org units of one kind with a boundary, in tree order."""
    units = session.scalars(units_in_scope(["/"]).filter_by(kind=kind)).all()
    places = [
        _Place(unit.id, unit.code, unit.name, unit.path, _bounds(unit.boundary))
        for unit in units
        if unit.boundary
    ]
    return sorted(places, key=lambda place: place.path)


def _bounds(boundary: dict[str, Any]) -> Box:
    ring = boundary["coordinates"][0]
    lons = [point[0] for point in ring]
    lats = [point[1] for point in ring]
    return Box(min(lons), min(lats), max(lons), max(lats))
