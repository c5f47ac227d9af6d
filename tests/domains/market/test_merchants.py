"""Merchant onboarding and staff: apply, documents, review, roles that come with approval, clerks, till keys;
who may do what (deny by default)."""

from __future__ import annotations

from sqlalchemy import func, select

from cityhub.domains.identity.models import Organization, RoleAssignment
from cityhub.kernel.models import AuditRecord
from tests.domains.market.world import API, build_market, store_body
from tests.factories import bearer, make_user

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"


def _application(**overrides: object) -> dict[str, object]:
    body = {
        "name": "街角花店",
        "category": "other",
        "licence_number": "91330100MA2B3C4D5X",
        "contact_phone": "13800000000",
        "community": "Mb",
    }
    return {**body, **overrides}


def test_approval_opens_the_organisation_and_makes_the_applicant_owner(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    applicant = bearer(client, "neighbour")
    applied = client.post(f"{API}/merchants", json=_application(), headers=applicant)
    assert applied.status_code == 201
    merchant = applied.json()
    assert merchant["status"] == "pending" and merchant["code"].startswith("M")
    document = client.post(
        f"{API}/merchants/{merchant['id']}/documents", files={"file": ("licence.pdf", PDF)}, headers=applicant
    )
    assert document.status_code == 200, document.text
    assert document.json()["documents"][0]["content_type"] == "application/pdf"
    not_yet = client.post(
        f"{API}/merchants/{merchant['id']}/stores", json=store_body("花店", 120.3, 30.25), headers=applicant
    )
    assert not_yet.status_code == 403
    pending = client.get(f"{API}/merchants", params={"status": "pending"}, headers=market.operator).json()
    assert [m["id"] for m in pending["items"]] == [merchant["id"]]
    approved = client.post(
        f"{API}/merchants/{merchant['id']}/review", json={"decision": "approve"}, headers=market.operator
    )
    assert approved.json()["status"] == "approved"
    with database.reading() as session:
        organization = session.scalar(select(Organization).where(Organization.code == merchant["code"]))
        assert organization is not None and organization.kind == "merchant"
        roles = session.scalars(
            select(RoleAssignment.role).where(RoleAssignment.organization_id == organization.id)
        )
        assert list(roles) == ["merchant_owner"]
        actions = set(session.scalars(select(AuditRecord.action)))
    assert {"market.merchant.approved", "identity.role.granted", "identity.delegated.role_given"} <= actions
    owner = bearer(client, "neighbour")
    opened = client.post(
        f"{API}/merchants/{merchant['id']}/stores", json=store_body("花店", 120.3, 30.25), headers=owner
    )
    assert opened.status_code == 201, opened.text
    inbox = client.get("/api/v1/identity/me/notifications", headers=owner)
    assert [item["topic"] for item in inbox.json()["items"]] == ["market.merchant.approved"]


def test_review_rules(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    applied = client.post(f"{API}/merchants", json=_application(), headers=market.neighbour).json()
    url = f"{API}/merchants/{applied['id']}/review"
    no_reason = client.post(url, json={"decision": "reject"}, headers=market.operator)
    assert no_reason.status_code == 422
    assert client.post(url, json={"decision": "approve"}, headers=market.owner).status_code == 403
    rejected = client.post(url, json={"decision": "reject", "reason": "执照不清晰"}, headers=market.operator)
    assert rejected.json()["status"] == "rejected" and rejected.json()["review_reason"] == "执照不清晰"
    again = client.post(url, json={"decision": "approve"}, headers=market.operator)
    assert again.status_code == 409


def test_bad_applications_are_refused_with_the_field(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    bad_licence = client.post(
        f"{API}/merchants", json=_application(licence_number="no!"), headers=market.neighbour
    )
    assert bad_licence.status_code == 422
    not_community = client.post(
        f"{API}/merchants", json=_application(community="Da"), headers=market.neighbour
    )
    assert not_community.status_code == 422 and not_community.json()["field"] == "community"
    unknown = client.post(
        f"{API}/merchants", json=_application(community="nowhere"), headers=market.neighbour
    )
    assert unknown.status_code == 404
    text = client.post(f"{API}/merchants", json=_application(), headers=market.neighbour).json()
    fake_pdf = client.post(
        f"{API}/merchants/{text['id']}/documents",
        files={"file": ("x.pdf", b"hello")},
        headers=market.neighbour,
    )
    assert fake_pdf.status_code == 422


def test_suspension_unlists_the_stores_and_stops_the_till(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    url = f"{API}/merchants/{market.merchant_id}/review"
    assert (
        client.post(
            url, json={"decision": "suspend", "reason": "食品安全检查"}, headers=market.operator
        ).status_code
        == 200
    )
    nearby = client.get(f"{API}/stores/nearby", params={"lon": 120.2, "lat": 30.25}).json()
    assert nearby["items"] == []
    assert client.get(f"{API}/stores/{market.stores[0]}").status_code == 404
    look = client.get(f"{API}/merchants/{market.merchant_id}/coupons/000000000000", headers=market.till)
    assert look.status_code == 403
    assert client.post(url, json={"decision": "approve"}, headers=market.operator).status_code == 200
    listed = client.get(f"{API}/stores/nearby", params={"lon": 120.2, "lat": 30.25}).json()
    assert [s["id"] for s in listed["items"]] == market.stores


def test_staff_and_till_keys(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    base = f"{API}/merchants/{market.merchant_id}"
    staff = client.get(f"{base}/staff", headers=market.owner).json()
    assert sorted((s["username"], s["role"]) for s in staff) == [
        ("clerk1", "merchant_clerk"),
        ("owner1", "merchant_owner"),
    ]
    # a clerk redeems but does not manage
    assert client.get(f"{base}/staff", headers=market.clerk).status_code == 403
    assert client.post(f"{base}/pos-keys", json={"name": "x"}, headers=market.clerk).status_code == 403
    assert client.post(f"{base}/staff", json={"username": "nobody"}, headers=market.owner).status_code == 422
    owner_row = next(s for s in staff if s["role"] == "merchant_owner")
    last_owner = client.delete(f"{base}/staff/{owner_row['assignment_id']}", headers=market.owner)
    assert last_owner.status_code == 409
    clerk_row = next(s for s in staff if s["role"] == "merchant_clerk")
    assert (
        client.delete(f"{base}/staff/{clerk_row['assignment_id']}", headers=market.owner).status_code == 204
    )
    assert client.get(f"{base}/coupons/000000000000", headers=bearer(client, "clerk1")).status_code == 403
    keys = client.get(f"{base}/pos-keys", headers=market.owner).json()
    assert [k["name"] for k in keys] == ["till 1"] and all(k["secret"] is None for k in keys)
    # the till key may look codes up, nothing else
    assert client.get(f"{base}/coupons/000000000000", headers=market.till).status_code == 404
    assert client.get(f"{base}/batches", headers=market.till).status_code == 403
    assert client.delete(f"{base}/pos-keys/{keys[0]['id']}", headers=market.owner).status_code == 204
    assert client.get(f"{base}/coupons/000000000000", headers=market.till).status_code == 401


def test_another_merchant_cannot_touch_this_one(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    make_user(database, "rival", [("resident", market.town.community_b)], name="钱老板")
    rival_token = bearer(client, "rival")
    applied = client.post(f"{API}/merchants", json=_application(), headers=rival_token).json()
    client.post(
        f"{API}/merchants/{applied['id']}/review", json={"decision": "approve"}, headers=market.operator
    )
    rival = bearer(client, "rival")
    base = f"{API}/merchants/{market.merchant_id}"
    for method, path, body in (
        ("get", f"{base}/stores", None),
        ("get", f"{base}/batches", None),
        ("post", f"{base}/stores", store_body("冒名店", 120.2, 30.25)),
        ("get", f"{base}/coupons/000000000000", None),
        ("get", f"{base}/staff", None),
    ):
        answer = client.request(method.upper(), path, json=body, headers=rival)
        assert answer.status_code == 403, (path, answer.text)
    assert client.get(f"{API}/merchants/{market.merchant_id}", headers=rival).status_code == 404


def test_an_existing_merchant_organisation_is_enrolled_without_a_second_one(client, database) -> None:  # type: ignore[no-untyped-def]
    market = build_market(client, database)
    with database.unit_of_work() as session:
        shop = Organization(
            kind="merchant", code="merchant-Mb-1", name="快客便利店", org_unit_id=market.town.community_b.id
        )
        session.add(shop)
        session.flush()
        shop_id = shop.id
    make_user(database, "kuaike", [("merchant_owner", market.town.community_b)], organization_id=shop_id)
    body = {
        **_application(name="快客便利店", category="grocery"),
        "organization": "merchant-Mb-1",
        "owner_username": "kuaike",
    }
    assert client.post(f"{API}/merchants/enrol", json=body, headers=market.owner).status_code == 403
    enrolled = client.post(f"{API}/merchants/enrol", json=body, headers=market.operator)
    assert enrolled.status_code == 201, enrolled.text
    assert (enrolled.json()["status"], enrolled.json()["code"]) == ("approved", "merchant-Mb-1")
    assert client.post(f"{API}/merchants/enrol", json=body, headers=market.operator).status_code == 409
    department = {**body, "organization": "nope"}
    assert client.post(f"{API}/merchants/enrol", json=department, headers=market.operator).status_code == 404
    owner = bearer(client, "kuaike")
    merchant_id = enrolled.json()["id"]
    opened = client.post(
        f"{API}/merchants/{merchant_id}/stores", json=store_body("快客", 120.3, 30.25), headers=owner
    )
    assert opened.status_code == 201, opened.text
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Organization)) == 2
