"""The hotline world the voice tests share: a town with a housing and a police department, an operator,
two residents and a member of each department's staff; the categories of TREE; helpers to report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from cityhub.domains.voice.service import tickets as ticket_service
from tests.factories import Town, bearer, build_town, make_department, make_user

API = "/api/v1/voice"
SEPT_29_10AM = datetime(2026, 9, 29, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, the day before the holiday
TREE = {
    "categories": [
        {"code": "01", "name_zh": "城乡建设", "name_en": "Construction"},
        {"code": "01.01", "name_zh": "物业管理", "name_en": "Property", "organization_code": "org-housing"},
        {"code": "05", "name_zh": "公共安全", "name_en": "Safety"},
        {"code": "05.01", "name_zh": "噪音扰民", "name_en": "Noise", "organization_code": "org-police"},
        {"code": "99", "name_zh": "其他", "name_en": "Other"},
    ]
}


@dataclass
class Hotline:
    town: Town
    operator: dict[str, str]
    resident: dict[str, str]
    neighbour: dict[str, str]
    housing: dict[str, str]
    police: dict[str, str]


def build_hotline(client, database) -> Hotline:  # type: ignore[no-untyped-def]
    town = build_town(database)
    housing, police = (
        make_department(database, town, "org-housing"),
        make_department(database, town, "org-police"),
    )
    make_user(database, "operator1", [("operator", town.city)])
    make_user(database, "resident", [("resident", town.community_a)], household=town.household_a)
    make_user(
        database, "neighbour", [("resident", town.community_b)], household=town.household_b, name="李四"
    )
    make_user(database, "housing1", [("department_staff", town.city)], organization_id=housing)
    make_user(database, "police1", [("department_staff", town.city)], organization_id=police)
    operator = bearer(client, "operator1")
    assert client.post(f"{API}/categories", json=TREE, headers=operator).status_code == 200
    return Hotline(
        town,
        operator,
        bearer(client, "resident"),
        bearer(client, "neighbour"),
        bearer(client, "housing1"),
        bearer(client, "police1"),
    )


@pytest.fixture
def at_sept_29(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ticket_service, "utcnow", lambda: SEPT_29_10AM)


def report(client, headers, **fields):  # type: ignore[no-untyped-def]
    body = {
        "type": "complaint",
        "category": "01.01",
        "description": "电梯停运三天了，请尽快维修。",
        "lon": 120.2001,
        "lat": 30.2502,
        **fields,
    }
    return client.post(f"{API}/tickets", json=body, headers=headers)
