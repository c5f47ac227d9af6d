"""The department console on both databases: the queue with its deadline colours, filters, counts and keyset
pages; each workflow step taken through the console's forms; the assessment dashboard; and who may open
which page."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import update

from cityhub.domains.voice.models import Ticket
from cityhub.kernel.db import Database, utcnow
from tests.domains.voice.hotline import API, Hotline, report
from tests.factories import api_key_for
from tests.web.factories import HTML, login, post_form


def _due(database: Database, number: str, deadline: datetime) -> None:
    with database.unit_of_work() as session:
        session.execute(update(Ticket).where(Ticket.number == number).values(deadline_at=deadline))


def _end_of_today() -> datetime:
    shanghai = ZoneInfo("Asia/Shanghai")
    return datetime.combine(utcnow().astimezone(shanghai).date() + timedelta(days=1), time(), shanghai)


def test_the_queue_colours_filters_and_pages(
    client: TestClient, database: Database, hotline: Hotline
) -> None:
    overdue, soon, later = (report(client, hotline.resident).json()["number"] for _ in range(3))
    _due(database, overdue, utcnow() - timedelta(hours=2))
    _due(database, soon, _end_of_today())  # due today: always in its warning day
    _due(database, later, utcnow() + timedelta(days=20))
    key = {"X-API-Key": api_key_for(database, hotline.town, ("voice.tickets.transfer",))}
    batch = [
        {"external_ref": f"B{n}", "type": "help", "category": "01.01", "description": f"批量工单第 {n} 件。"}
        for n in range(55)
    ]
    assert client.post(f"{API}/tickets/batch", json={"tickets": batch}, headers=key).status_code == 200

    login(client, "housing1")
    page = client.get("/console/voice", headers=HTML)
    assert page.status_code == 200
    assert 'class="due-overdue"' in page.text and 'class="due-warning"' in page.text
    assert page.text.index(overdue) < page.text.index(soon)  # nearest deadline first
    assert ": 58</a>" in page.text  # open tickets counted
    first = page.text.count('<tr class="due-')
    assert first == 50 and "/console/voice?status=open&amp;after=" in page.text  # a "next page" link
    next_link = re.search(r'href="/console/voice\?([^"]*after=[^"]*)"', page.text)
    assert next_link is not None
    rest = client.get(f"/console/voice?{next_link.group(1).replace('&amp;', '&')}", headers=HTML)
    assert rest.text.count('<tr class="due-') == 8 and later in rest.text
    only_overdue = client.get("/console/voice", params={"due": "overdue"}, headers=HTML).text
    assert overdue in only_overdue and soon not in only_overdue
    warning = client.get("/console/voice", params={"due": "warning"}, headers=HTML).text
    assert soon in warning and overdue not in warning and later not in warning
    helps = client.get("/console/voice", params={"type": "help"}, headers=HTML).text
    assert overdue not in helps
    assert client.get("/console/voice", params={"status": "lost"}, headers=HTML).status_code == 422
    assert client.get("/console/voice", params={"after": "yesterday"}, headers=HTML).status_code == 422

    client.cookies.clear()
    login(client, "police1")
    assert overdue not in client.get("/console/voice", headers=HTML).text
    client.cookies.clear()
    login(client, "resident")
    assert client.get("/console/voice", headers=HTML).status_code == 403
    assert client.get("/console/voice/assessment", headers=HTML).status_code == 403


def test_each_step_through_the_console(client: TestClient, database: Database, hotline: Hotline) -> None:
    number = report(client, hotline.resident).json()["number"]
    waiting = report(client, hotline.resident, category="99").json()["number"]
    duplicate = report(client, hotline.neighbour).json()["number"]
    login(client, "housing1")
    page = f"/console/voice/tickets/{number}"
    detail = client.get(page, headers=HTML)
    assert detail.status_code == 200 and "张三" in detail.text and "/sign" in detail.text
    assert post_form(client, page, f"{page}/sign", {}).status_code == 303
    assert (
        post_form(client, page, f"{page}/extension", {"days": "3", "reason": "需要协调物业"}).status_code
        == 303
    )
    assert "需要协调物业" in client.get(page, headers=HTML).text
    assert post_form(client, page, f"{page}/reply", {"text": "已联系物业维修电梯。"}).status_code == 303
    assert client.get(f"{API}/tickets/{number}", headers=hotline.resident).json()["status"] == "replied"
    assert client.get(f"/console/voice/tickets/{waiting}", headers=HTML).status_code == 404
    assert post_form(client, page, f"{page}/dispatch", {"department": "org-police"}).status_code == 403

    client.cookies.clear()
    login(client, "operator1")
    sent = post_form(
        client, f"/console/voice/tickets/{waiting}", f"/console/voice/tickets/{waiting}/dispatch",
        {"department": "org-police", "note": "噪音归公安"},
    )  # fmt: skip
    assert sent.status_code == 303
    assert client.get(f"{API}/tickets/{waiting}", headers=hotline.police).json()["status"] == "dispatched"
    merged = post_form(
        client,
        f"/console/voice/tickets/{duplicate}",
        f"/console/voice/tickets/{duplicate}/merge",
        {"into": number},
    )
    assert merged.status_code == 303
    assert client.get(f"{API}/tickets/{duplicate}", headers=hotline.neighbour).json()["merged_into"] == number
    assert post_form(client, page, f"{page}/teleport", {}).status_code == 404
    assert post_form(client, page, f"{page}/extension", {"days": "x", "reason": ""}).status_code == 422

    dashboard = client.get("/console/voice/assessment", headers=HTML)
    assert dashboard.status_code == 200 and "voice-assessment-data" in dashboard.text
    assert "echarts.min.js" in dashboard.text and "org-housing" in dashboard.text


def test_who_sees_what(client: TestClient, database: Database, hotline: Hotline) -> None:
    housing = report(client, hotline.resident).json()["number"]
    police = report(client, hotline.resident, category="05.01").json()["number"]
    waiting = report(client, hotline.resident, category="99").json()["number"]
    done = report(client, hotline.resident).json()["number"]
    with database.unit_of_work() as session:
        session.execute(update(Ticket).where(Ticket.number == done).values(status="closed"))
    anonymous = client.get("/console/voice", headers=HTML, follow_redirects=False)
    assert anonymous.status_code == 303 and "/login" in anonymous.headers["location"]

    login(client, "housing1")
    queue = client.get("/console/voice", headers=HTML).text
    assert housing in queue and police not in queue and waiting not in queue
    assert 'class="due-on_time"' in queue and done not in queue
    closed = client.get("/console/voice", params={"status": "closed"}, headers=HTML).text
    assert done in closed and 'class="due-done"' in closed
    assert client.get(f"/console/voice/tickets/{police}", headers=HTML).status_code == 404
    mine = client.get("/console/voice/assessment", headers=HTML)
    assert mine.status_code == 200 and "org-housing" in mine.text and "org-police" not in mine.text
    assert 'data-testid="city"' not in mine.text
    other = client.get("/console/voice/assessment", params={"department": "org-police"}, headers=HTML)
    assert other.status_code == 403

    client.cookies.clear()
    login(client, "resident")
    assert client.get(f"/console/voice/tickets/{housing}", headers=HTML).status_code == 403

    client.cookies.clear()
    login(client, "operator1")
    everything = client.get("/console/voice", headers=HTML).text
    assert all(number in everything for number in (housing, police, waiting))
    city = client.get("/console/voice/assessment", params={"period": "quarter"}, headers=HTML)
    assert city.status_code == 200 and 'data-testid="city"' in city.text
    assert "org-housing" in city.text and "org-police" in city.text
    assert '<option value="quarter" selected>' in city.text
    assert "/static/vendor/leaflet/leaflet.js" in city.text and "/static/js/voice-dashboard.js" in city.text
    assert "cdn" not in city.text.lower()
    assert client.get(f"/console/voice/tickets/{waiting}", headers=HTML).status_code == 200
