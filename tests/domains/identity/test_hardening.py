"""Regression tests from the security review: no privilege escalation, no 500 for hostile input."""

from __future__ import annotations

import json

import pytest

from tests.factories import bearer, build_town, make_user

API = "/api/v1/identity"


@pytest.fixture
def town(database):
    return build_town(database)


def test_nobody_grants_what_they_do_not_hold_or_grants_themselves(client, database, town) -> None:
    operator_a, _ = make_user(database, "operator_a", [("operator", town.district_a)])
    target, _ = make_user(database, "target", [("resident", town.community_a)], name="李四")
    headers = bearer(client, "operator_a")
    inside = client.post(
        f"{API}/role-assignments",
        headers=headers,
        json={"account_id": target.id, "role": "community_worker", "org_unit_id": town.community_a.id},
    )
    assert inside.status_code == 201, inside.text
    above = client.post(
        f"{API}/role-assignments",
        headers=headers,
        json={"account_id": target.id, "role": "operator", "org_unit_id": town.city.id},
    )
    assert above.status_code == 403
    itself = client.post(
        f"{API}/role-assignments",
        headers=headers,
        json={"account_id": operator_a.id, "role": "carer", "org_unit_id": town.community_a.id},
    )
    assert itself.status_code == 403 and itself.json()["type"].endswith("/self-grant")


def test_keys_never_carry_the_power_to_mint_credentials_or_grant_roles(client, database, town) -> None:
    make_user(database, "operator1", [("operator", town.city)])
    headers = bearer(client, "operator1")
    for permission in ("identity.roles.manage", "identity.apikeys.manage"):
        refused = client.post(
            f"{API}/api-keys",
            headers=headers,
            json={"name": "x", "permissions": [permission], "org_unit_id": town.city.id},
        )
        assert refused.status_code == 422, permission


def test_grants_and_keys_cannot_name_an_organisation_outside_the_granters_subtree(
    client, database, town
) -> None:
    make_user(database, "operator1", [("operator", town.city)])
    merchant_b = client.post(
        f"{API}/organizations",
        headers=bearer(client, "operator1"),
        json={"kind": "merchant", "code": "SHOP-B", "name": "乙店", "org_unit_id": town.community_b.id},
    ).json()
    make_user(database, "operator_a", [("operator", town.district_a)])
    target, _ = make_user(database, "target", [("resident", town.community_a)], name="李四")
    headers = bearer(client, "operator_a")
    grant = client.post(
        f"{API}/role-assignments",
        headers=headers,
        json={
            "account_id": target.id,
            "role": "merchant_owner",
            "org_unit_id": town.community_a.id,
            "organization_id": merchant_b["id"],
        },
    )
    assert grant.status_code == 403
    key = client.post(
        f"{API}/api-keys",
        headers=headers,
        json={
            "name": "pos",
            "permissions": ["identity.card.verify"],
            "org_unit_id": town.community_a.id,
            "organization_id": merchant_b["id"],
        },
    )
    assert key.status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/org-units/99999999999999999999",
        "/people/99999999999999999999",
        "/org-units/3000000000",
        "/org-units?parent_id=99999999999999999999",
        "/role-assignments?account_id=99999999999999999999",
    ],
)
def test_huge_numbers_are_client_errors_not_500(client, database, town, path) -> None:
    make_user(database, "operator1", [("operator", town.city)])
    response = client.get(API + path, headers=bearer(client, "operator1"))
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_naive_expiry_and_exotic_digits_are_422(client, database, town) -> None:
    make_user(database, "operator1", [("operator", town.city)])
    headers = bearer(client, "operator1")
    naive = client.post(
        f"{API}/api-keys",
        headers=headers,
        json={
            "name": "x",
            "permissions": ["identity.orgs.read"],
            "org_unit_id": town.city.id,
            "expires_at": "2099-01-01T00:00:00",
        },
    )
    assert naive.status_code == 422
    superscript = client.post(
        f"{API}/people", headers=headers, json={"name": "x", "id_number": "11010519491231002²"}
    )
    assert superscript.status_code == 422


def test_person_without_a_household_belongs_to_the_root(client, database, town) -> None:
    make_user(database, "operator1", [("operator", town.city)])
    headers = bearer(client, "operator1")
    created = client.post(f"{API}/people", headers=headers, json={"name": "流动人口"})
    assert created.status_code == 201, created.text
    assert client.get(f"{API}/people/{created.json()['id']}", headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("units.csv", b"\xff\xfe\x00bad"),
        ("units.geojson", json.dumps({"type": "FeatureCollection", "features": [1, "x"]}).encode()),
        ("units.geojson", json.dumps({"type": "FeatureCollection", "features": {"a": 1}}).encode()),
        (
            "units.geojson",
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {
                                "kind": "building",
                                "code": "B1",
                                "name": "x",
                                "parent_code": ["Ma"],
                            },
                            "geometry": None,
                        }
                    ],
                }
            ).encode(),
        ),
        ("units.csv", ("kind,code,name,parent_code\nbuilding," + "X" * 80 + ",x,Ma\n").encode()),
    ],
)
def test_hostile_import_files_are_422_and_change_nothing(client, database, town, name, content) -> None:
    make_user(database, "operator1", [("operator", town.city)])
    response = client.post(
        f"{API}/org-units/import",
        headers=bearer(client, "operator1"),
        files={"file": (name, content, "application/octet-stream")},
    )
    assert response.status_code in (404, 422), response.text


def test_search_wildcards_are_literal(client, database, town) -> None:
    make_user(database, "operator1", [("operator", town.city)])
    found = client.get(f"{API}/org-units?q=%25", headers=bearer(client, "operator1")).json()
    assert found["total"] == 0
