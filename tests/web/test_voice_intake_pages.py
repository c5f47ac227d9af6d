"""The report page's extras and the staff's emergency board: the category's questions and photos sent with
the form, knowledge-base answers and nearby reports offered while typing, following instead of reporting,
the public knowledge base, and acknowledging an emergency on the board."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cityhub.kernel.db import Database
from tests.domains.voice.hotline import API, Hotline, build_hotline, report
from tests.domains.voice.test_emergencies import GAS
from tests.domains.voice.test_intake import ARTICLE, PNG
from tests.domains.voice.test_open311 import STREETLIGHT
from tests.web.factories import HTML, csrf_token, login, post_form


@pytest.fixture
def hotline(client: TestClient, database: Database) -> Hotline:
    return build_hotline(client, database)


def test_a_report_with_answers_and_photos_and_the_suggestions_on_the_way(
    client: TestClient, database: Database, hotline: Hotline
) -> None:
    client.post(f"{API}/categories", json=STREETLIGHT, headers=hotline.operator)
    client.post(f"{API}/articles", json=ARTICLE, headers=hotline.operator)
    earlier = report(client, hotline.neighbour, lon=120.2002, lat=30.2502).json()["number"]
    login(client, "resident")

    questions = client.get("/voice/report/questions", params={"category": "01.02"}, headers=HTML)
    assert 'name="attribute[pole]"' in questions.text and 'name="attribute[hazards][]"' in questions.text
    hints = client.get(
        "/voice/report/suggestions",
        params={"description": "居住证怎么办", "category": "01.01", "lon": "120.2001", "lat": "30.2502"},
        headers=HTML,
    )
    assert "居住证怎么办理" in hints.text and "/voice/tickets/" + earlier + "/follow" in hints.text
    assert "李四" not in hints.text

    token = csrf_token(client.get("/voice/report", headers=HTML).text)
    fields = {
        "csrf_token": token,
        "type": "help",
        "category": "01.02",
        "description": "路灯不亮已经一周了。",
        "lon": "120.2001",
        "lat": "30.2502",
        "attribute[pole]": "HZ-9",
        "attribute[hazards][]": ["wire", "traffic"],
    }
    sent = client.post(
        "/voice/report",
        data=fields,
        files=[("photos", ("lamp.png", PNG, "image/png"))],
        headers=HTML,
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    number = sent.headers["location"].rsplit("/", 1)[1]
    page = client.get(f"/voice/tickets/{number}", headers=HTML).text
    assert "HZ-9" in page and "wire, traffic" in page
    photo_url = f"/voice/tickets/{number}/photos/"
    assert photo_url in page
    photo_id = page.split(photo_url, 1)[1].split('"', 1)[0]
    assert client.get(photo_url + photo_id, headers=HTML).content == PNG

    missing = client.post("/voice/report", data={**fields, "attribute[pole]": ""}, headers=HTML)
    assert missing.status_code == 422 and "HZ-9" not in missing.text and "wire" in missing.text

    article_id = client.get(f"{API}/articles").json()["items"][0]["id"]
    answered = post_form(
        client,
        "/voice/report",
        "/voice/report",
        {
            "type": "consultation",
            "category": "01.01",
            "description": "居住证怎么办理？",
            "answered_by_article": str(article_id),
        },
    )
    assert answered.status_code == 303
    assert "十五个工作日" in client.get(answered.headers["location"], headers=HTML).text

    followed = post_form(client, "/voice/report", f"/voice/tickets/{earlier}/follow", {})
    assert followed.status_code == 303
    assert earlier in client.get(followed.headers["location"], headers=HTML).text

    public = client.get("/voice/knowledge", params={"q": "居住证"}, headers=HTML)
    assert public.status_code == 200 and "居住证怎么办理" in public.text


def test_the_emergency_board_shows_and_takes_an_alarm(
    client: TestClient, database: Database, hotline: Hotline
) -> None:
    client.post(f"{API}/categories", json=GAS, headers=hotline.operator)
    number = report(
        client, hotline.resident, type="help", category="05.09", description="楼道里有很浓的煤气味！"
    ).json()["number"]
    login(client, "resident")
    assert client.get("/console/voice/emergencies", headers=HTML).status_code == 403
    client.cookies.clear()
    login(client, "police1")
    board = client.get("/console/voice/emergencies", headers=HTML)
    assert board.status_code == 200 and number in board.text and "煤气味" in board.text
    assert 'hx-trigger="every 5s"' in board.text
    taken = post_form(
        client, "/console/voice/emergencies", f"/console/voice/emergencies/{number}/acknowledge", {}
    )
    assert taken.status_code == 303
    rows = client.get("/console/voice/emergencies/board", headers=HTML).text
    assert "police1" in rows and "/acknowledge" not in rows
