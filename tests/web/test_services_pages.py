"""City services pages: the public services grid, search, lists by department/category/life event, one item,
favourites and recently used for a signed-in resident, in zh_CN and en."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cityhub.domains.services.schemas import CatalogueIn
from cityhub.domains.services.service import catalogue
from cityhub.kernel.db import Database
from tests.domains.services.catalogue_data import CATALOGUE
from tests.web.factories import HTML, Family, post_form


@pytest.fixture
def loaded(database: Database) -> None:
    with database.unit_of_work() as session:
        catalogue.import_catalogue(session, "system:test", CatalogueIn.model_validate(CATALOGUE))


def test_the_services_grid_is_public_and_bilingual(client: TestClient, loaded: None) -> None:
    page = client.get("/services", headers=HTML)
    assert page.status_code == 200
    assert "住房公积金管理中心" in page.text and "/services/life-events/buying-a-home" in page.text
    assert "灵活就业" not in page.text
    english = client.get("/services", headers={**HTML, "Accept-Language": "en"})
    assert "Housing Provident Fund Centre" in english.text and "City services" in english.text


def test_search_and_lists(client: TestClient, loaded: None) -> None:
    found = client.get("/services/search", params={"q": "护照"}, headers=HTML)
    assert found.status_code == 200 and "普通护照办理预约" in found.text and "港澳通行证" not in found.text
    nothing = client.get("/services/search", params={"q": "火星"}, headers=HTML)
    assert "没有找到相关服务" in nothing.text
    department = client.get("/services/departments/crj", headers=HTML)
    assert "出入境管理局" in department.text and "港澳通行证办理指南" in department.text
    event = client.get("/services/life-events/retiring", headers=HTML)
    assert "养老保险缴费记录" in event.text and "退休前后要办的事" in event.text
    for missing in ("/services/departments/none", "/services/planets/crj", "/services/items/rsj-hidden"):
        assert client.get(missing, headers=HTML).status_code == 404, missing


def test_an_item_page_invites_anonymous_visitors_to_log_in(client: TestClient, loaded: None) -> None:
    page = client.get("/services/items/gjj-balance", headers=HTML)
    assert page.status_code == 200 and "公积金账户余额查询" in page.text and "12329" in page.text
    assert "/login?next=/services/items/gjj-balance" in page.text


def test_a_resident_keeps_favourites_and_sees_recently_used(
    resident_client: TestClient, family: Family, loaded: None
) -> None:
    item = resident_client.get("/services/items/crj-passport", headers=HTML)
    assert item.status_code == 200 and 'value="add"' in item.text
    added = post_form(
        resident_client,
        "/services/items/crj-passport",
        "/services/items/crj-passport/favourite",
        {"action": "add"},
    )
    assert added.status_code == 303
    assert 'value="remove"' in resident_client.get("/services/items/crj-passport", headers=HTML).text
    home = resident_client.get("/services", headers=HTML).text
    favourites, recent = (
        home.index("My favourites" if "My favourites" in home else "我的收藏"),
        home.index("Recently used" if "Recently used" in home else "最近使用"),
    )
    assert "普通护照办理预约" in home[favourites:recent] and "普通护照办理预约" in home[recent:]


def test_the_favourite_toggle_needs_a_login_and_a_csrf_token(client: TestClient, loaded: None) -> None:
    response = client.post(
        "/services/items/crj-passport/favourite", data={"action": "add"}, headers=HTML, follow_redirects=False
    )
    assert response.status_code == 403, "refused for the missing CSRF token before anything else"
