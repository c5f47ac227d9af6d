"""People and households, org-unit import, consent records — and the problem+json answers for bad input."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from cityhub.domains.identity import consenting_people, has_consent
from cityhub.domains.identity.models import OrgUnit
from cityhub.domains.identity.service.people import id_number_checksum_ok
from cityhub.kernel.models import AuditRecord, OutboxEvent
from tests.factories import bearer, build_town, make_user, square

VALID_ID = "11010519491231002X"


def test_id_number_check_digit() -> None:
    assert id_number_checksum_ok(VALID_ID)
    assert not id_number_checksum_ok("110105194912310021")
    assert not id_number_checksum_ok("11010519491231002")


def test_person_created_masked_audited_and_duplicate_identity_refused(client, database) -> None:
    town = build_town(database)
    make_user(database, "worker", [("community_worker", town.community_a)])
    headers = bearer(client, "worker")
    body = {
        "name": "赵六",
        "gender": "F",
        "id_number": VALID_ID,
        "household_id": town.household_a.id,
        "relation": "spouse",
        "verification_level": 2,
    }
    created = client.post("/api/v1/identity/people", headers=headers, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["id_number_masked"] == "1" + "*" * 16 + "X"
    assert VALID_ID not in created.text
    again = client.post("/api/v1/identity/people", headers=headers, json=body | {"name": "冒名"})
    assert again.status_code == 409
    bad = client.post(
        "/api/v1/identity/people", headers=headers, json=body | {"id_number": "110105194912310021"}
    )
    assert bad.status_code == 422 and bad.json()["field"] == "id_number"
    elsewhere = client.post(
        "/api/v1/identity/people",
        headers=headers,
        json=body | {"household_id": town.household_b.id, "id_number": None},
    )
    assert elsewhere.status_code == 403
    person_id = created.json()["id"]
    assert (
        client.get(f"/api/v1/identity/people/{person_id}?purpose=home-visit", headers=headers).status_code
        == 200
    )
    with database.reading() as session:
        reads = session.scalars(select(AuditRecord).where(AuditRecord.action == "identity.person.read")).all()
        assert [(r.object_id, r.purpose) for r in reads] == [(str(person_id), "home-visit")]


def test_my_household_lists_members(client, database) -> None:
    town = build_town(database)
    make_user(database, "head", [("resident", town.community_a)], household=town.household_a, name="钱七")
    headers = bearer(client, "head")
    household = client.get("/api/v1/identity/me/household", headers=headers).json()
    assert household["household"]["code"] == "Ha"
    assert [m["name"] for m in household["members"]] == ["钱七"]
    make_user(database, "loner", [("resident", town.community_b)])
    assert client.get("/api/v1/identity/me/household", headers=bearer(client, "loner")).status_code == 404


def test_consent_grant_withdraw_is_recorded_evented_and_queryable(client, database) -> None:
    town = build_town(database)
    _account, person = make_user(database, "resident1", [("resident", town.community_a)])
    headers = bearer(client, "resident1")
    assert (
        client.post(
            "/api/v1/identity/me/consents", headers=headers, json={"purpose": "marketing"}
        ).status_code
        == 201
    )
    with database.reading() as session:
        assert has_consent(session, person.id, "marketing")
        assert consenting_people(session, "marketing") == {person.id}
    assert client.delete("/api/v1/identity/me/consents/marketing", headers=headers).status_code == 204
    assert client.delete("/api/v1/identity/me/consents/marketing", headers=headers).status_code == 404
    history = client.get("/api/v1/identity/me/consents", headers=headers).json()
    assert len(history) == 1 and history[0]["withdrawn_at"] is not None
    with database.reading() as session:
        assert not has_consent(session, person.id, "marketing")
        types = session.scalars(select(OutboxEvent.type).order_by(OutboxEvent.id)).all()
        assert types == ["identity.consent_changed", "identity.consent_changed"]
    bad = client.post("/api/v1/identity/me/consents", headers=headers, json={"purpose": "Bad Purpose!"})
    assert bad.status_code == 422


def test_org_import_csv_is_all_or_nothing(client, database) -> None:
    town = build_town(database)
    make_user(database, "operator1", [("operator", town.city)])
    headers = bearer(client, "operator1")
    good = "kind,code,name,parent_code,lon,lat\nbuilding,B9,九号楼,Ma,120.2,30.25\nhousehold,H9,901室,B9,,\n"
    response = client.post(
        "/api/v1/identity/org-units/import",
        headers=headers,
        files={"file": ("units.csv", good.encode(), "text/csv")},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 2}
    broken = "kind,code,name,parent_code\nbuilding,B10,十号楼,Ma\nhousehold,H10,1001室,NOPE\n"
    refused = client.post(
        "/api/v1/identity/org-units/import",
        headers=headers,
        files={"file": ("units.csv", broken.encode(), "text/csv")},
    )
    assert refused.status_code == 422
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(OrgUnit).where(OrgUnit.code == "B10")) == 0


def test_org_import_geojson_with_boundaries(client, database) -> None:
    town = build_town(database)
    make_user(database, "operator1", [("operator", town.city)])
    feature = {
        "type": "Feature",
        "geometry": square(120.4, 30.3),
        "properties": {"kind": "community", "code": "M9", "name": "新社区", "parent_code": "Sa"},
    }
    upload = json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()
    response = client.post(
        "/api/v1/identity/org-units/import",
        headers=bearer(client, "operator1"),
        files={"file": ("units.geojson", upload, "application/geo+json")},
    )
    assert response.status_code == 200, response.text
    with database.reading() as session:
        unit = session.scalar(select(OrgUnit).where(OrgUnit.code == "M9"))
        assert unit is not None and unit.h3_cell and abs((unit.lon or 0) - 120.4) < 1e-6
        assert unit.path.startswith(town.district_a.path)


def test_bad_geometry_and_wrong_parent_kind_are_422(client, database) -> None:
    town = build_town(database)
    make_user(database, "operator1", [("operator", town.city)])
    headers = bearer(client, "operator1")
    open_ring = {"type": "Polygon", "coordinates": [[[120, 30], [121, 30], [121, 31]]]}
    bad_shape = client.post(
        "/api/v1/identity/org-units",
        headers=headers,
        json={"kind": "community", "code": "Mx", "name": "x", "parent_code": "Sa", "boundary": open_ring},
    )
    assert bad_shape.status_code == 422
    wrong_parent = client.post(
        "/api/v1/identity/org-units",
        headers=headers,
        json={"kind": "household", "code": "Hx", "name": "x", "parent_code": "Da"},
    )
    assert wrong_parent.status_code == 422 and wrong_parent.json()["field"] == "parent_code"
    duplicate = client.post(
        "/api/v1/identity/org-units",
        headers=headers,
        json={"kind": "building", "code": "Ba", "name": "x", "parent_code": "Ma"},
    )
    assert duplicate.status_code == 409


def test_generic_errors_are_problem_json_with_request_id(client, database) -> None:
    build_town(database)
    missing = client.get("/api/v1/identity/nowhere")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["request_id"] == missing.headers["X-Request-ID"]
    wrong_method = client.put("/api/v1/identity/token")
    assert wrong_method.status_code == 405 and wrong_method.json()["status"] == 405
    not_json = client.post(
        "/api/v1/identity/token/revoke", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422 and not_json.json()["errors"]
    paging = client.get("/api/v1/identity/org-units?limit=100000")
    assert paging.status_code in (401, 422)


def test_organizations_and_family_links(client, database) -> None:
    town = build_town(database)
    make_user(database, "operator1", [("operator", town.city)])
    headers = bearer(client, "operator1")
    created = client.post(
        "/api/v1/identity/organizations",
        headers=headers,
        json={"kind": "department", "code": "MZJ", "name": "民政局", "org_unit_id": town.city.id},
    )
    assert created.status_code == 201, created.text
    assert (
        client.post(
            "/api/v1/identity/organizations",
            headers=headers,
            json={"kind": "department", "code": "MZJ", "name": "again", "org_unit_id": town.city.id},
        ).status_code
        == 409
    )
    assert (
        client.post(
            "/api/v1/identity/organizations",
            headers=headers,
            json={"kind": "bank", "code": "B", "name": "x", "org_unit_id": town.city.id},
        ).status_code
        == 422
    )
    listed = client.get("/api/v1/identity/organizations?kind=department", headers=headers).json()
    assert [o["code"] for o in listed["items"]] == ["MZJ"]
    _a, elder = make_user(database, "elder", [("resident", town.community_a)], household=town.household_a)
    _b, daughter = make_user(
        database, "daughter", [("resident", town.community_b)], household=town.household_b
    )
    link = client.post(
        f"/api/v1/identity/people/{elder.id}/family-links",
        headers=headers,
        json={"guardian_id": daughter.id, "kind": "guardian"},
    )
    assert link.status_code == 201, link.text
    from cityhub.domains.identity import dependants_of, guardians_of

    with database.reading() as session:
        assert [p.id for p in guardians_of(session, elder.id)] == [daughter.id]
        assert [p.id for p in dependants_of(session, daughter.id, "guardian")] == [elder.id]
    again = client.post(
        f"/api/v1/identity/people/{elder.id}/family-links",
        headers=headers,
        json={"guardian_id": daughter.id, "kind": "guardian"},
    )
    assert again.status_code == 409


def test_cli_import_takes_children_before_parents_and_audits(database, settings, tmp_path) -> None:
    from typer.testing import CliRunner

    from cityhub.cli.main import app as cli

    build_town(database)
    units = tmp_path / "units.csv"
    units.write_text(
        "kind,code,name,parent_code\nhousehold,H-X,101室,B-X\nbuilding,B-X,新楼,Ma\n", encoding="utf-8"
    )
    result = CliRunner().invoke(cli, ["orgs", "import", str(units)])
    assert result.exit_code == 0, result.output
    with database.reading() as session:
        household = session.scalar(select(OrgUnit).where(OrgUnit.code == "H-X"))
        assert household is not None and household.depth == 5
        actions = session.scalars(select(AuditRecord.action)).all()
        assert "identity.org_unit.imported" in actions
    broken = tmp_path / "broken.csv"
    broken.write_text("kind,code,name,parent_code\nbuilding,B-Y,楼,NOPE\n", encoding="utf-8")
    refused = CliRunner().invoke(cli, ["orgs", "import", str(broken)])
    assert refused.exit_code == 1
