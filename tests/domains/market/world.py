"""The market world the tests share: a town, an operator, an approved merchant (owner and clerk) with two
stores in community A, a till key, and residents; helpers to make batches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.factories import Town, bearer, build_town, make_user

API = "/api/v1/market"
# Community A's building is at (120.20, 30.25); the stores sit 300 m and 1.2 km from it, a third store of
# another merchant 2.5 km away, and one 6 km away (outside 3 km).
HOME = (120.20, 30.25)


@dataclass
class Market:
    town: Town
    operator: dict[str, str]
    owner: dict[str, str]
    clerk: dict[str, str]
    resident: dict[str, str]
    neighbour: dict[str, str]
    merchant_id: int
    stores: list[int]
    till: dict[str, str]


def store_body(name: str, lon: float, lat: float, **extra: Any) -> dict[str, Any]:
    every_day = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    return {
        "name": name,
        "category": "food",
        "address": f"{name}路1号",
        "lon": lon,
        "lat": lat,
        "opening_hours": every_day,
        **extra,
    }


def apply_and_approve(client, applicant: dict[str, str], operator: dict[str, str], name: str) -> int:  # type: ignore[no-untyped-def]
    body = {
        "name": name,
        "category": "food",
        "licence_number": "91330100MA2B3C4D5E",
        "contact_phone": "0571-88880000",
        "community": "Ma",
    }
    applied = client.post(f"{API}/merchants", json=body, headers=applicant)
    assert applied.status_code == 201, applied.text
    merchant_id = int(applied.json()["id"])
    decided = client.post(
        f"{API}/merchants/{merchant_id}/review", json={"decision": "approve"}, headers=operator
    )
    assert decided.status_code == 200, decided.text
    return merchant_id


def build_market(client, database) -> Market:  # type: ignore[no-untyped-def]
    town = build_town(database)
    make_user(database, "operator1", [("operator", town.city)])
    make_user(database, "owner1", [("resident", town.community_a)], name="王老板")
    make_user(database, "clerk1", [("resident", town.community_a)], name="赵店员")
    make_user(database, "resident", [("resident", town.community_a)], household=town.household_a)
    make_user(
        database, "neighbour", [("resident", town.community_b)], household=town.household_b, name="李四"
    )
    operator, owner_token = bearer(client, "operator1"), bearer(client, "owner1")
    merchant_id = apply_and_approve(client, owner_token, operator, "邻里面馆")
    owner = bearer(client, "owner1")  # a new token: the role came with approval
    stores = []
    for name, lon, lat in (("面馆一店", 120.203, 30.25), ("面馆二店", 120.2125, 30.25)):
        made = client.post(
            f"{API}/merchants/{merchant_id}/stores", json=store_body(name, lon, lat), headers=owner
        )
        assert made.status_code == 201, made.text
        stores.append(int(made.json()["id"]))
    added = client.post(f"{API}/merchants/{merchant_id}/staff", json={"username": "clerk1"}, headers=owner)
    assert added.status_code == 201, added.text
    key = client.post(f"{API}/merchants/{merchant_id}/pos-keys", json={"name": "till 1"}, headers=owner)
    assert key.status_code == 201, key.text
    return Market(
        town,
        operator,
        owner,
        bearer(client, "clerk1"),
        bearer(client, "resident"),
        bearer(client, "neighbour"),
        merchant_id,
        stores,
        {"X-API-Key": key.json()["secret"]},
    )


def batch_body(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "kind": "CASH",
        "title": "满30减5",
        "least_cost_cents": 3000,
        "reduce_cost_cents": 500,
        "valid_days": 30,
        "claim_until": (now + timedelta(days=10)).isoformat(),
        "stock": 100,
        "per_person_limit": 2,
    }
    return {**body, **overrides}


def make_batch(client, market: Market, **overrides: Any) -> int:  # type: ignore[no-untyped-def]
    made = client.post(
        f"{API}/merchants/{market.merchant_id}/batches", json=batch_body(**overrides), headers=market.owner
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])
