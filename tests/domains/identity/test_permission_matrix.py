"""Every protected identity route refuses callers without credentials (401) and roles without the permission
(403). The matrix is built from the app's routes, so a new route is covered as soon as it exists."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from cityhub.kernel.domain import access_catalog
from tests.factories import bearer, build_town, make_user

PUBLIC = {
    ("POST", "/api/v1/identity/token"),
    ("POST", "/api/v1/identity/token/revoke"),
    ("GET", "/api/v1/identity/card/public-key"),
}
SELF_SERVICE_PREFIXES = ("/api/v1/identity/me", "/api/v1/identity/card")


def _required_permission(route: APIRoute) -> str | None:
    for dependency in route.dependant.dependencies:
        name = getattr(dependency.call, "__name__", "")
        if name.startswith("require_identity_"):
            code = name.removeprefix("require_")
            return next(p for p in access_catalog.permissions if p.replace(".", "_") == code)
    return None


def _identity_routes(app) -> list[tuple[str, str, str | None]]:
    found = []
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/api/v1/identity"):
            for method in sorted(route.methods):
                found.append((method, route.path, _required_permission(route)))
    return found


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_identity_route_is_public_self_service_or_permission_checked(app) -> None:
    for method, path, permission in _identity_routes(app):
        if (method, path) in PUBLIC or path.startswith(SELF_SERVICE_PREFIXES):
            continue
        assert permission is not None, f"{method} {path} has no permission check"


def test_anonymous_callers_get_401_on_every_non_public_route(client, app, database) -> None:
    build_town(database)
    for method, path, _permission in _identity_routes(app):
        if (method, path) in PUBLIC:
            continue
        response = client.request(method, _concrete(path))
        assert response.status_code == 401, f"{method} {path} -> {response.status_code}"
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "role",
    [
        "resident",
        "community_worker",
        "department_staff",
        "merchant_owner",
        "merchant_clerk",
        "clinic_staff",
        "carer",
        "operator",
    ],
)
def test_each_role_is_refused_exactly_where_it_lacks_the_permission(client, app, database, role) -> None:
    town = build_town(database)
    make_user(database, f"user_{role}", [(role, town.community_a)])
    headers = bearer(client, f"user_{role}")
    for method, path, permission in _identity_routes(app):
        if permission is None or permission in access_catalog.permissions_of(role):
            continue
        response = client.request(method, _concrete(path), headers=headers, json={})
        assert response.status_code == 403, f"{role}: {method} {path} -> {response.status_code}"
        assert response.json()["permission"] == permission


def test_scope_a_community_worker_sees_only_their_community(client, database) -> None:
    town = build_town(database)
    make_user(database, "worker_a", [("community_worker", town.community_a)])
    make_user(
        database, "neighbour", [("resident", town.community_a)], household=town.household_a, name="李四"
    )
    make_user(database, "stranger", [("resident", town.community_b)], household=town.household_b, name="王五")
    headers = bearer(client, "worker_a")
    names = {p["name"] for p in client.get("/api/v1/identity/people", headers=headers).json()["items"]}
    assert names == {"李四"}
    units = client.get("/api/v1/identity/org-units", headers=headers).json()["items"]
    assert {u["code"] for u in units} == {"Ma", "Ba", "Ha"}
    other = client.get(f"/api/v1/identity/org-units/{town.community_b.id}", headers=headers)
    assert other.status_code == 403


def test_operator_scoped_to_a_district_cannot_create_units_elsewhere(client, database) -> None:
    town = build_town(database)
    make_user(database, "district_op", [("operator", town.district_a)])
    headers = bearer(client, "district_op")
    inside = client.post(
        "/api/v1/identity/org-units",
        headers=headers,
        json={"kind": "building", "code": "B-new", "name": "新楼", "parent_code": "Ma"},
    )
    assert inside.status_code == 201, inside.text
    outside = client.post(
        "/api/v1/identity/org-units",
        headers=headers,
        json={"kind": "building", "code": "B-x", "name": "外楼", "parent_code": "Mb"},
    )
    assert outside.status_code == 403
