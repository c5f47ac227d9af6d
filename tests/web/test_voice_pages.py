"""The hotline's resident pages: report a problem (with the map's coordinates), see it dispatched in the
timeline, and give the verdict once the department answered — in zh_CN and en."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from cityhub.domains.voice.models import Ticket
from cityhub.kernel.db import Database
from tests.domains.voice.test_tickets import API, TREE
from tests.factories import bearer, build_town, make_department, make_user
from tests.web.factories import HTML, login, post_form


def test_a_resident_reports_on_the_map_and_rates_the_answer(client: TestClient, database: Database) -> None:
    town = build_town(database)
    housing = make_department(database, town, "org-housing")
    make_department(database, town, "org-police")
    make_user(database, "operator1", [("operator", town.city)])
    make_user(database, "resident", [("resident", town.community_a)], household=town.household_a)
    make_user(database, "housing1", [("department_staff", town.city)], organization_id=housing)
    client.post(f"{API}/categories", json=TREE, headers=bearer(client, "operator1"))
    staff = bearer(client, "housing1")
    login(client, "resident")

    form = client.get("/voice/report", headers=HTML)
    assert form.status_code == 200 and "物业管理" in form.text and "社区a" in form.text
    too_short = post_form(
        client,
        "/voice/report",
        "/voice/report",
        {"type": "help", "category": "01.01", "description": "坏", "lon": "", "lat": ""},
    )
    assert too_short.status_code == 422 and "坏" in too_short.text
    sent = post_form(
        client,
        "/voice/report",
        "/voice/report",
        {
            "type": "help",
            "category": "01.01",
            "description": "电梯停运三天了",
            "address": "楼a",
            "lon": "120.2001",
            "lat": "30.2502",
        },
    )
    assert sent.status_code == 303
    number = sent.headers["location"].rsplit("/", 1)[1]
    page = client.get(f"/voice/tickets/{number}", headers=HTML)
    assert "已派单" in page.text and "电梯停运三天了" in page.text
    with database.reading() as session:
        assert session.scalar(select(Ticket.org_unit_id)) == town.community_a.id
    client.post(f"{API}/tickets/{number}/sign", headers=staff)
    client.post(f"{API}/tickets/{number}/reply", json={"text": "已联系物业，今天修复。"}, headers=staff)
    answered = client.get(f"/voice/tickets/{number}", headers=HTML)
    assert "今天修复" in answered.text and 'name="level"' in answered.text
    rated = post_form(client, f"/voice/tickets/{number}", f"/voice/tickets/{number}/callback", {"level": "5"})
    assert rated.status_code == 303
    assert "您的评价：5 分" in client.get(f"/voice/tickets/{number}", headers=HTML).text
    mine = client.get("/voice", headers={**HTML, "Accept-Language": "en"})
    assert number in mine.text and "Closed" in mine.text
    assert client.get("/voice/tickets/20260101000000", headers=HTML).status_code == 404
