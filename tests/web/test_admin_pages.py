"""The identity console: refused to residents, working for an operator, audited where it reads people."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cityhub.domains.identity.models import ApiKey, OrgUnit, RoleAssignment
from cityhub.kernel.db import Database
from cityhub.kernel.models import AuditRecord
from tests.factories import Town, make_user
from tests.web.factories import HTML, Family, csrf_token, login, masked_id_number, post_form

ADMIN_PAGES = ["/admin", "/admin/org-units", "/admin/people", "/admin/roles", "/admin/api-keys"]


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_console_pages_refuse_a_resident(resident_client: TestClient, path: str) -> None:
    answer = resident_client.get(path, headers=HTML)
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert "无权访问" in answer.text and "您在此范围内没有权限" in answer.text


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_console_pages_work_for_an_operator(operator_client: TestClient, family: Family, path: str) -> None:
    answer = operator_client.get(path, headers=HTML)
    assert answer.status_code == 200
    assert "<h1>" in answer.text


def test_console_index_links_the_sections_the_operator_may_use(operator_client: TestClient) -> None:
    page = operator_client.get("/admin", headers=HTML).text
    for href in ADMIN_PAGES[1:]:
        assert f'href="{href}"' in page


def test_org_unit_tree_is_browsed_by_parent_and_searched(operator_client: TestClient, town: Town) -> None:
    top = operator_client.get("/admin/org-units", headers=HTML).text
    assert f'href="/admin/org-units?parent_id={town.city.id}">滨江市</a>' in top
    inside = operator_client.get(f"/admin/org-units?parent_id={town.city.id}", headers=HTML).text
    assert "区a" in inside and "区b" in inside and "新增区" in inside
    found = operator_client.get("/admin/org-units?q=社区", headers=HTML).text
    assert "社区a" in found and "社区b" in found and ">区a<" not in found


def test_operator_creates_an_org_unit(operator_client: TestClient, database: Database, town: Town) -> None:
    page = f"/admin/org-units?parent_id={town.district_a.id}"
    form = {
        "kind": "subdistrict",
        "parent_code": "Da",
        "code": "S-new",
        "name": "新街道",
        "lon": "",
        "lat": "",
    }
    answer = post_form(operator_client, page, "/admin/org-units", form)
    assert answer.status_code == 303
    assert answer.headers["location"] == page
    assert "组织单元“新街道”已创建。" in operator_client.get(page, headers=HTML).text
    with database.reading() as session:
        unit = session.scalar(select(OrgUnit).where(OrgUnit.code == "S-new"))
        assert unit is not None and unit.parent_id == town.district_a.id


def test_a_refused_org_unit_is_explained_next_to_the_form_and_nothing_is_written(
    operator_client: TestClient, database: Database, town: Town
) -> None:
    page = f"/admin/org-units?parent_id={town.district_a.id}"
    with database.reading() as session:
        audit_before = session.scalar(select(func.count()).select_from(AuditRecord))
    form = {"kind": "subdistrict", "parent_code": "Da", "code": "Sb", "name": "重复编码"}
    answer = post_form(operator_client, page, "/admin/org-units", form)
    assert answer.status_code == 409
    assert "组织单元编码 Sb 已被使用。" in answer.text
    assert 'value="重复编码"' in answer.text
    with database.reading() as session:
        assert (
            session.scalar(select(func.count()).select_from(OrgUnit).where(OrgUnit.name == "重复编码")) == 0
        )
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == audit_before


def test_org_units_are_imported_from_csv_all_or_nothing(
    operator_client: TestClient, database: Database, town: Town
) -> None:
    good = "kind,code,name,parent_code\nbuilding,B-9,九号楼,Ma\nhousehold,H-901,901室,B-9\n"
    bad = "kind,code,name,parent_code\nbuilding,B-10,十号楼,Ma\nhousehold,H-1,1室,NOPE\n"
    token = csrf_token(operator_client.get("/admin/org-units", headers=HTML).text)
    for content, status in ((good, 303), (bad, 422)):
        answer = operator_client.post(
            "/admin/org-units/import",
            data={"csrf_token": token},
            files={"file": ("units.csv", content.encode(), "text/csv")},
            headers=HTML,
            follow_redirects=False,
        )
        assert answer.status_code == status
    assert "找不到上级编码：NOPE" in answer.text
    with database.reading() as session:
        codes = set(session.scalars(select(OrgUnit.code).where(OrgUnit.code.in_(["B-9", "H-901", "B-10"]))))
    assert codes == {"B-9", "H-901"}


def test_people_are_listed_and_a_record_read_is_audited(
    operator_client: TestClient, database: Database, family: Family
) -> None:
    listing = operator_client.get("/admin/people?q=张", headers=HTML).text
    assert f'href="/admin/people/{family.resident.id}">张三</a>' in listing
    detail = operator_client.get(f"/admin/people/{family.resident.id}?purpose=hotline", headers=HTML)
    assert detail.status_code == 200
    assert masked_id_number() in detail.text and "户a" in detail.text and "hotline" in detail.text
    with database.reading() as session:
        reads = session.execute(
            select(AuditRecord.actor, AuditRecord.purpose).where(
                AuditRecord.action == "identity.person.read", AuditRecord.object_id == str(family.resident.id)
            )
        ).all()
    assert [purpose for _actor, purpose in reads] == ["hotline"]
    assert reads[0][0].startswith("account:")


def test_operator_grants_and_withdraws_a_role(
    operator_client: TestClient, database: Database, family: Family
) -> None:
    page = "/admin/roles?username=resident"
    form = {"username": "resident", "role": "community_worker", "org_unit_code": "Ma"}
    assert post_form(operator_client, page, "/admin/roles", form).status_code == 303
    shown = operator_client.get(page, headers=HTML).text
    assert "角色已授予。" in shown and "社区工作者" in shown

    again = post_form(operator_client, page, "/admin/roles", form)
    assert again.status_code == 409 and "该账号在此范围内已拥有这个角色。" in again.text

    with database.reading() as session:
        assignment_id = session.scalar(
            select(RoleAssignment.id).where(RoleAssignment.role == "community_worker")
        )
    answer = post_form(
        operator_client, page, f"/admin/roles/{assignment_id}/withdraw", {"username": "resident"}
    )
    assert answer.status_code == 303
    with database.reading() as session:
        assert session.get(RoleAssignment, assignment_id) is None


def test_api_key_secret_is_shown_once_and_the_key_can_be_revoked(
    operator_client: TestClient, database: Database, town: Town
) -> None:
    form = {
        "name": "水表网关",
        "org_unit_code": "Ma",
        "permissions": "identity.orgs.read",
        "valid_days": "30",
    }
    created = post_form(operator_client, "/admin/api-keys", "/admin/api-keys", form)
    assert created.status_code == 201
    secret = re.search(r'<code class="secret">(chk_[^<]+)</code>', created.text)
    assert secret is not None
    listing = operator_client.get("/admin/api-keys", headers=HTML).text
    assert "水表网关" in listing and secret.group(1) not in listing

    units = operator_client.get("/api/v1/identity/org-units", headers={"X-API-Key": secret.group(1)})
    assert units.status_code == 200  # the key works for what it was given, inside its unit
    assert {unit["code"] for unit in units.json()["items"]} == {"Ma", "Ba", "Ha"}

    with database.reading() as session:
        key_id = session.scalar(select(ApiKey.id).where(ApiKey.name == "水表网关"))
    assert (
        post_form(operator_client, "/admin/api-keys", f"/admin/api-keys/{key_id}/revoke", {}).status_code
        == 303
    )
    assert "已吊销" in operator_client.get("/admin/api-keys", headers=HTML).text


def test_an_api_key_without_permissions_is_refused_next_to_the_form(
    operator_client: TestClient, town: Town
) -> None:
    answer = post_form(
        operator_client, "/admin/api-keys", "/admin/api-keys", {"name": "空", "org_unit_code": "Ma"}
    )
    assert answer.status_code == 422
    assert "请至少为密钥选择一项权限。" in answer.text


def test_a_community_worker_sees_only_their_community(
    client: TestClient, database: Database, town: Town
) -> None:
    make_user(database, "worker", [("community_worker", town.community_a)], name="社工")
    login(client, "worker")
    index = client.get("/admin", headers=HTML).text
    assert 'href="/admin/people"' in index and 'href="/admin/roles"' not in index
    top = client.get("/admin/org-units", headers=HTML).text
    assert "社区a" in top and "社区b" not in top and "新增" not in top
    assert client.get(f"/admin/org-units?parent_id={town.city.id}", headers=HTML).status_code == 403
    assert client.get("/admin/roles", headers=HTML).status_code == 403
