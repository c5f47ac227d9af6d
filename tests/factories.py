"""Test data built through the real identity services (no raw inserts, no mocks)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from cityhub.domains import manifests
from cityhub.domains.identity import Grant, Principal
from cityhub.domains.identity.models import Account, Organization, OrgUnit, Person
from cityhub.domains.identity.service import accounts, apikeys, orgs, people
from cityhub.kernel.db import Database
from cityhub.kernel.geo import has_postgis_index
from cityhub.kernel.security import hash_password

PASSWORD = "correct-horse-42"
_PASSWORD_HASH = hash_password(PASSWORD)


@dataclass
class Town:
    """A tiny territory: a city with two districts, each with a community, a building and a household."""

    city: OrgUnit
    district_a: OrgUnit
    district_b: OrgUnit
    community_a: OrgUnit
    community_b: OrgUnit
    household_a: OrgUnit
    household_b: OrgUnit


def _unit(
    session: Session, kind: str, code: str, name: str, parent: OrgUnit | None, **extra: object
) -> OrgUnit:
    data = orgs.OrgUnitInput(kind=kind, code=code, name=name, parent_code=parent.code if parent else None)
    for key, value in extra.items():
        setattr(data, key, value)
    return orgs.create_unit(session, data)


def square(lon: float, lat: float, half: float = 0.005) -> dict[str, object]:
    ring = [
        [lon - half, lat - half],
        [lon + half, lat - half],
        [lon + half, lat + half],
        [lon - half, lat + half],
        [lon - half, lat - half],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def build_town(database: Database) -> Town:
    manifests()  # fills the role/permission catalogue
    with database.unit_of_work() as session:
        city = _unit(session, "city", "C1", "滨江市", None)
        built = {"city": city}
        for suffix, lon in (("a", 120.20), ("b", 120.30)):
            district = _unit(session, "district", f"D{suffix}", f"区{suffix}", city)
            sub = _unit(session, "subdistrict", f"S{suffix}", f"街道{suffix}", district)
            community = _unit(
                session, "community", f"M{suffix}", f"社区{suffix}", sub, boundary=square(lon, 30.25)
            )
            building = _unit(session, "building", f"B{suffix}", f"楼{suffix}", community, lon=lon, lat=30.25)
            household = _unit(session, "household", f"H{suffix}", f"户{suffix}", building)
            built |= {
                f"district_{suffix}": district,
                f"community_{suffix}": community,
                f"household_{suffix}": household,
            }
        return Town(**built)  # type: ignore[arg-type]


def make_user(
    database: Database,
    username: str,
    roles: list[tuple[str, OrgUnit]],
    *,
    household: OrgUnit | None = None,
    name: str = "张三",
    organization_id: int | None = None,
) -> tuple[Account, Person]:
    with database.unit_of_work() as session:
        person = people.create_person(session, people.PersonInput(name=name, verification_level=2), "salt")
        if household is not None:
            people.add_to_household(session, session.merge(household), person, "head")
        account = accounts.create_account(session, person, username, PASSWORD, password_hash=_PASSWORD_HASH)
        for role, unit in roles:
            accounts.grant_role(session, None, account, role, session.merge(unit), organization_id)
        return account, person


def bearer(client, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/identity/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def make_department(database: Database, town: Town, code: str) -> int:
    """A department organisation at home in the city; its id."""
    with database.unit_of_work() as session:
        organization = Organization(kind="department", code=code, name=code, org_unit_id=town.city.id)
        session.add(organization)
        session.flush()
        return organization.id


def api_key_for(
    database: Database,
    town: Town,
    permissions: tuple[str, ...],
    unit: Any = None,
    organization_id: int | None = None,
) -> str:
    """A real API key (through the identity service) holding ``permissions`` over ``unit`` (the city), on
    behalf of ``organization_id`` when given (a department's system)."""
    unit = unit or town.city
    creator = Principal(
        "system",
        0,
        "tests",
        None,
        (Grant("operator", unit.id, unit.path, None, frozenset({*permissions, "identity.apikeys.manage"})),),
    )
    with database.unit_of_work() as session:
        _key, secret = apikeys.create_key(
            session,
            creator,
            name="test gateway",
            permissions=list(permissions),
            org_unit=session.merge(unit),
            organization_id=organization_id,
        )
    return secret


def require_postgis_index(database: Database, index: str) -> None:
    """Skip a test of a PostGIS path where the database does not have that accelerator index."""
    if database.dialect != "postgresql":
        pytest.skip("PostGIS is a PostgreSQL accelerator (the portable path is tested on both databases)")
    with database.reading() as session:
        if not has_postgis_index(session.connection(), index):
            pytest.skip("PostGIS is not installed on this server (the portable path is tested everywhere)")
