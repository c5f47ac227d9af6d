"""The exchange world the tests share: a town with three departments (statistics owns data, civil affairs and
health consume it), a staff member of each, an operator and a resident; resource bodies and data files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from cityhub.domains.identity import account_id_of
from cityhub.domains.identity.models import Notification
from tests.factories import Town, bearer, build_town, make_department, make_user

API = "/api/v1/exchange"
ITEMS = [
    {"name": "district", "title": "区县", "type": "string", "required": True},
    {"name": "year", "title": "年份", "type": "integer", "required": True},
    {"name": "population", "title": "常住人口", "type": "integer", "required": True},
    {"name": "elderly_share", "title": "老年人口占比", "type": "number"},
    {"name": "surveyed_on", "title": "调查日期", "type": "date"},
]
CSV = (
    "district,year,population,elderly_share,surveyed_on\n"
    "西湖区,2025,1187000,0.21,2025-11-01\n"
    "滨江区,2025,541000,0.12,2025-11-01\n"
    "上城区,2025,1326000,0.24,2025-11-02\n"
)


@dataclass
class Exchange:
    town: Town
    owner: dict[str, str]  # statistics bureau staff
    consumer: dict[str, str]  # civil affairs staff
    other: dict[str, str]  # health commission staff
    operator: dict[str, str]
    resident: dict[str, str]
    departments: dict[str, int]


def build_exchange(client, database) -> Exchange:  # type: ignore[no-untyped-def]
    town = build_town(database)
    departments = {code: make_department(database, town, code) for code in ("stats", "civil", "health")}
    staff = {"stats": "stats1", "civil": "civil1", "health": "health1"}
    for code, username in staff.items():
        make_user(database, username, [("department_staff", town.city)], organization_id=departments[code])
    make_user(database, "operator1", [("operator", town.city)])
    make_user(database, "resident", [("resident", town.community_a)], household=town.household_a)
    return Exchange(
        town,
        bearer(client, "stats1"),
        bearer(client, "civil1"),
        bearer(client, "health1"),
        bearer(client, "operator1"),
        bearer(client, "resident"),
        departments,
    )


def resource_body(code: str = "stats-population", **overrides: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": "各区常住人口",
        "name_en": "Resident population by district",
        "provider": "stats",
        "classification": ["人口", "常住人口", "区县"],
        "summary": "各区县年度常住人口与老年人口占比。",
        "format": "csv",
        "data_items": ITEMS,
        "sharing_class": "conditional",
        "sharing_condition": "用于养老服务规划",
        "open_class": "open",
        "update_cycle": "yearly",
        "keywords": ["人口", "老龄化"],
        **overrides,
    }


def registered(client, world: Exchange, code: str = "stats-population", **overrides: Any) -> str:  # type: ignore[no-untyped-def]
    made = client.post(f"{API}/resources", json=resource_body(code, **overrides), headers=world.owner)
    assert made.status_code == 201, made.text
    return code


def loaded(client, world: Exchange, code: str, data: str = CSV) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    answer = client.post(
        f"{API}/resources/{code}/versions",
        content=data.encode(),
        headers={**world.owner, "Content-Type": "text/csv"},
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def published(client, world: Exchange, code: str = "stats-population", **overrides: Any) -> str:  # type: ignore[no-untyped-def]
    registered(client, world, code, **overrides)
    assert loaded(client, world, code)["valid"] is True
    answer = client.post(f"{API}/resources/{code}/status", json={"status": "published"}, headers=world.owner)
    assert answer.status_code == 200, answer.text
    return code


def notices(database, topic: str) -> list[int]:  # type: ignore[no-untyped-def]
    """The accounts told about ``topic``, in order."""
    with database.reading() as session:
        return sorted(session.scalars(select(Notification.account_id).where(Notification.topic == topic)))


def account(database, username: str) -> int:  # type: ignore[no-untyped-def]
    with database.reading() as session:
        return account_id_of(session, username)
