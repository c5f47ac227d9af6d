"""The resident's pages: home tiles, citizen card, household and consents."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityhub.domains.identity.models import Consent, Person
from cityhub.kernel.db import Database
from cityhub.kernel.models import AuditRecord
from tests.web.factories import HTML, Family, masked_id_number, post_form

QR_SVG = re.compile(r'<div class="qr"[^>]*><svg[^>]*>.*?</svg></div>', re.DOTALL)


def test_home_shows_the_tiles_the_resident_may_use(resident_client: TestClient) -> None:
    page = resident_client.get("/", headers=HTML)
    assert page.status_code == 200
    assert "张三，您好" in page.text
    tiles = re.findall(r'<li class="tile"><a href="([^"]+)"', page.text)
    assert tiles == [
        "/me/card",
        "/me/household",
        "/services",
        "/me/inbox",
        "/market",
        "/market/deals",
        "/voice",
        "/voice/participate",
        "/data",
        "/me/consents",
    ]
    assert "工作台" not in page.text.split("<main")[1]
    assert 'href="/admin"' not in page.text


def test_home_shows_console_tiles_to_staff(operator_client: TestClient) -> None:
    page = operator_client.get("/", headers=HTML).text
    assert '<ul class="tiles console"' in page
    assert '<a href="/admin"><span class="tile-icon">' in page
    assert "管理后台" in page


def test_card_page_shows_the_holder_and_a_fresh_qr_code_with_a_countdown(resident_client: TestClient) -> None:
    page = resident_client.get("/me/card", headers=HTML)
    assert page.status_code == 200
    assert "张三" in page.text and masked_id_number() in page.text and "已实名认证" in page.text
    assert QR_SVG.search(page.text)
    assert 'data-countdown="120"' in page.text and ">2:00<" in page.text
    assert 'hx-get="/me/card/code"' in page.text and "load delay:60s" in page.text


def test_card_code_fragment_is_a_new_code_each_time(resident_client: TestClient) -> None:
    first = resident_client.get("/me/card/code", headers={"HX-Request": "true"})
    second = resident_client.get("/me/card/code", headers={"HX-Request": "true"})
    assert first.status_code == second.status_code == 200
    assert first.text.lstrip().startswith('<div id="card-code"') and "<html" not in first.text
    assert QR_SVG.search(first.text) and first.text != second.text


def test_card_code_fragment_sends_an_expired_session_to_login(client: TestClient, family: Family) -> None:
    answer = client.get("/me/card/code", headers={"HX-Request": "true", "HX-Current-URL": "http://x/me/card"})
    assert answer.status_code == 401
    assert answer.headers["HX-Redirect"] == "/login?next=%2Fme%2Fcard"


def test_revoking_my_codes_is_recorded(
    resident_client: TestClient, database: Database, family: Family
) -> None:
    answer = post_form(resident_client, "/me/card", "/me/card/revoke", {})
    assert answer.status_code == 303
    assert "之前的所有市民码均已作废" in resident_client.get("/me/card", headers=HTML).text
    with database.reading() as session:
        person = session.get(Person, family.resident.id)
        assert person is not None and person.card_valid_after is not None
        actions = session.scalars(select(AuditRecord.action).where(AuditRecord.object_id == str(person.id)))
        assert "identity.card.revoked" in list(actions)


def test_household_page_lists_members_and_family_links(resident_client: TestClient) -> None:
    page = resident_client.get("/me/household", headers=HTML).text
    assert "户a" in page and "滨江市" in page and "社区a" in page
    assert "张三" in page and "户主" in page and "本人" in page
    assert "李四" in page and "配偶" in page
    assert "王秀英" in page and "监护人" in page


def test_consents_can_be_given_and_withdrawn(
    resident_client: TestClient, database: Database, family: Family
) -> None:
    page = resident_client.get("/me/consents", headers=HTML).text
    assert "接收附近商户的优惠和折扣券" in page and "未授权" in page

    assert (
        post_form(resident_client, "/me/consents", "/me/consents", {"purpose": "marketing"}).status_code
        == 303
    )
    assert "谢谢，您的授权已记录。" in resident_client.get("/me/consents", headers=HTML).text
    answer = post_form(resident_client, "/me/consents", "/me/consents/withdraw", {"purpose": "marketing"})
    assert answer.status_code == 303

    with database.reading() as session:
        records = session.scalars(select(Consent).where(Consent.person_id == family.resident.id)).all()
    assert [(record.purpose, record.channel, record.withdrawn_at is not None) for record in records] == [
        ("marketing", "web", True)
    ]


def test_a_bad_consent_purpose_gets_an_error_page(resident_client: TestClient) -> None:
    answer = post_form(resident_client, "/me/consents", "/me/consents", {"purpose": "Not A Code"})
    assert answer.status_code == 422
    assert "用途须为小写代码" in answer.text
