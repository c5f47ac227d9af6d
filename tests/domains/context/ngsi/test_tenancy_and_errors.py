"""Tenancy (clause 4.14), content negotiation (6.3) and error types (5.5.2), on both databases."""

from __future__ import annotations

import pytest

from cityhub.kernel.db import Database
from tests.domains.context.conftest import LD, NgsiClient, api_key_for
from tests.factories import Town

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
BUILDING_CONTEXT = "https://smart-data-models.github.io/dataModel.Building/context.jsonld"
BUILDING_LINK = (
    f'<{BUILDING_CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
)


def _entity(number: int = 1) -> dict[str, object]:
    return {"id": f"urn:ngsi-ld:Building:{number}", "type": "Building", "floorsAboveGround": 5}


def test_tenants_are_created_on_first_write_and_isolated(ngsi: NgsiClient) -> None:
    unknown = ngsi.get("/entities", params={"type": "Building"}, tenant="harbour")
    assert unknown.status_code == 404 and unknown.json()["type"] == ERRORS + "NonexistentTenant"
    ngsi.create(_entity(), tenant="harbour")
    assert len(ngsi.get("/entities", params={"type": "Building"}, tenant="harbour").json()) == 1
    assert ngsi.get("/entities", params={"type": "Building"}).json() == []
    assert ngsi.get("/entities/urn:ngsi-ld:Building:1").status_code == 404
    bad = ngsi.get("/entities", params={"type": "Building"}, tenant="no/slashes")
    assert bad.status_code == 400


def test_a_tenant_tied_to_an_org_unit_admits_callers_scoped_there(
    ngsi: NgsiClient, database: Database, town: Town
) -> None:
    tie = ngsi.client.put(
        "/api/v1/context/tenants/district-a",
        json={"org_unit_id": town.district_a.id},
        headers=ngsi.headers,
    )
    assert tie.status_code == 200, tie.text
    inside = NgsiClient(
        ngsi.client, api_key_for(database, town, ("context.entities.write",), town.district_a)
    )
    outside = NgsiClient(
        ngsi.client, api_key_for(database, town, ("context.entities.write",), town.district_b)
    )
    assert inside.post("/entities", json=_entity(), tenant="district-a").status_code == 201
    refused = outside.post("/entities", json=_entity(2), tenant="district-a")
    assert refused.status_code == 403
    # A key scoped to one district cannot use the untied default tenant, which spans the whole tree.
    assert inside.post("/entities", json=_entity(3)).status_code == 403


def test_anonymous_and_unprivileged_callers_are_refused(
    ngsi: NgsiClient, database: Database, town: Town
) -> None:
    anonymous = ngsi.client.get("/ngsi-ld/v1/entities", params={"type": "Building"})
    assert anonymous.status_code == 401
    reader = NgsiClient(ngsi.client, api_key_for(database, town, ("context.entities.read",)))
    assert reader.post("/entities", json=_entity()).status_code == 403
    assert reader.get("/entities", params={"type": "Building"}).status_code == 200


def test_link_header_context_expands_and_compacts(ngsi: NgsiClient) -> None:
    ngsi.create(_entity(), headers={"Link": BUILDING_LINK})
    with_context = ngsi.get("/entities/urn:ngsi-ld:Building:1", headers={"Link": BUILDING_LINK})
    assert "floorsAboveGround" in with_context.json()
    assert BUILDING_CONTEXT in with_context.headers["Link"]
    core_only = ngsi.get("/entities/urn:ngsi-ld:Building:1").json()
    assert "https://smartdatamodels.org/dataModel.Building/floorsAboveGround" in core_only


def test_json_ld_bodies_carry_their_context(ngsi: NgsiClient) -> None:
    body = {**_entity(), "@context": BUILDING_CONTEXT}
    assert ngsi.post("/entities", json=body, headers={"Content-Type": LD}).status_code == 201
    answer = ngsi.get("/entities/urn:ngsi-ld:Building:1", headers={"Accept": LD, "Link": BUILDING_LINK})
    assert answer.headers["content-type"].startswith(LD)
    assert answer.json()["@context"] == BUILDING_CONTEXT
    assert "Link" not in answer.headers
    without = ngsi.post("/entities", json=_entity(2), headers={"Content-Type": LD})
    assert without.status_code == 400 and without.json()["type"] == ERRORS + "BadRequestData"
    both = ngsi.post("/entities", json=body, headers={"Content-Type": LD, "Link": BUILDING_LINK})
    assert both.status_code == 400


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"{not json", "application/json", 400, "InvalidRequest"),
        (b"[]", "application/json", 400, "BadRequestData"),
        (b'{"id": "not a uri", "type": "T"}', "application/json", 400, "BadRequestData"),
        (b'{"id": "urn:x:1"}', "application/json", 400, "BadRequestData"),
        (
            b'{"id": "urn:x:1", "type": "T", "location": {"type": "Property", "value": 1}}',
            "application/json",
            400,
            "BadRequestData",
        ),
        (
            b'{"id": "urn:x:1", "type": "T", "a": {"type": "Relationship", "object": "nope"}}',
            "application/json",
            400,
            "BadRequestData",
        ),
        (
            b'{"id": "urn:x:1", "type": "T", "a": {"type": "Property"}}',
            "application/json",
            400,
            "BadRequestData",
        ),
        (
            b'{"id": "urn:x:1", "type": "T", "a": {"type": "GeoProperty", "value": {"type": "Point"}}}',
            "application/json",
            400,
            "BadRequestData",
        ),
        (
            b'{"id": "urn:x:1", "type": "T", "a": {"value": 1, "observedAt": "yesterday"}}',
            "application/json",
            400,
            "BadRequestData",
        ),
        (b'{"id": "urn:x:1", "type": "T"}', "text/plain", 415, "InvalidRequest"),
    ],
)
def test_malformed_entities_get_ngsi_ld_errors(
    ngsi: NgsiClient, body: bytes, content_type: str, status: int, error: str
) -> None:
    response = ngsi.post("/entities", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    assert response.json()["type"] == ERRORS + error
    assert response.headers["content-type"].startswith("application/json")


def test_unreachable_context_is_ld_context_not_available(ngsi: NgsiClient) -> None:
    link = BUILDING_LINK.replace(BUILDING_CONTEXT, "http://127.0.0.1:9/none.jsonld")
    response = ngsi.post("/entities", json=_entity(), headers={"Link": link})
    assert response.status_code == 503
    assert response.json()["type"] == ERRORS + "LdContextNotAvailable"


def test_not_acceptable_and_unknown_options(ngsi: NgsiClient) -> None:
    ngsi.create(_entity())
    assert ngsi.get("/entities/urn:ngsi-ld:Building:1", headers={"Accept": "text/csv"}).status_code == 406
    wrong = ngsi.get("/entities/urn:ngsi-ld:Building:1", params={"options": "keyValues,concise"})
    assert wrong.status_code == 400
    assert ngsi.get("/entities/urn:ngsi-ld:Building:1", params={"options": "bogus"}).status_code == 400
    assert ngsi.get("/entities/not-a-uri").status_code == 400
    assert ngsi.get("/entities", params={"type": "Building", "limit": "5000"}).status_code == 400


def test_blocked_networks_are_never_called(ngsi: NgsiClient) -> None:
    metadata = BUILDING_LINK.replace(BUILDING_CONTEXT, "http://169.254.169.254/latest/ctx.jsonld")
    refused = ngsi.post("/entities", json=_entity(), headers={"Link": metadata})
    assert refused.status_code == 503
    assert "169.254.169.254" in refused.json()["detail"]
    subscription = {
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": "http://169.254.169.254/hook"}},
    }
    assert ngsi.post("/subscriptions", json=subscription).status_code == 400


def test_tenant_managers_see_only_the_tenants_they_manage(
    ngsi: NgsiClient, database: Database, town: Town
) -> None:
    for name, unit in (("district-a", town.district_a), ("district-b", town.district_b)):
        tied = ngsi.client.put(
            f"/api/v1/context/tenants/{name}", json={"org_unit_id": unit.id}, headers=ngsi.headers
        )
        assert tied.status_code == 200, tied.text
    manager = api_key_for(database, town, ("context.tenants.manage",), town.district_a)
    seen = ngsi.client.get("/api/v1/context/tenants", headers={"X-API-Key": manager})
    assert [tenant["name"] for tenant in seen.json()] == ["district-a"]
    everything = ngsi.client.get("/api/v1/context/tenants", headers=ngsi.headers).json()
    assert {tenant["name"] for tenant in everything} >= {"district-a", "district-b"}
