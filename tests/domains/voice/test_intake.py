"""What intake adds to a bare report, on both databases: the category's questions, knowledge-base answers
that close a consultation at once, reports of the same problem nearby that a resident can follow instead,
photos checked by their bytes, and batches handed over by another platform."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from cityhub.domains.identity.models import Notification
from cityhub.domains.voice.models import Ticket
from cityhub.domains.voice.service import tickets as ticket_service
from cityhub.kernel.db import utcnow
from tests.domains.voice.hotline import API, report
from tests.domains.voice.test_open311 import STREETLIGHT
from tests.factories import api_key_for

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
ARTICLE = {
    "title": "居住证怎么办理？",
    "body": "持身份证、租房合同到社区服务中心办理居住证，材料齐全的当场受理，十五个工作日内领证。",
    "category": "01",
}


def test_the_category_questions_are_asked_and_checked(client, hotline) -> None:
    client.post(f"{API}/categories", json=STREETLIGHT, headers=hotline.operator)
    light = {"category": "01.02", "type": "help"}
    answered = report(client, hotline.resident, **light, attributes={"pole": "P-7", "hazards": ["wire"]})
    assert answered.status_code == 201, answered.text
    assert answered.json()["attributes"] == {"pole": "P-7", "hazards": ["wire"]}
    wrong = report(
        client, hotline.resident, **light, attributes={"state": ["dark", "blink"], "height": "1e999"}
    )
    assert wrong.status_code == 422
    assert {error["field"] for error in wrong.json()["errors"]} == {
        "attribute[pole]",
        "attribute[state]",
        "attribute[height]",
    }
    listed = {c["code"]: c for c in client.get(f"{API}/categories").json()}
    assert [a["code"] for a in listed["01.02"]["attributes"]] == ["pole", "state", "hazards", "height"]
    listless = {"code": "x", "datatype": "multivaluelist", "description": "?"}
    broken_tree = {"categories": [{**STREETLIGHT["categories"][1], "attributes": [listless]}]}
    assert client.post(f"{API}/categories", json=broken_tree, headers=hotline.operator).status_code == 422


def test_the_knowledge_base_answers_a_consultation_at_intake(client, hotline) -> None:
    assert client.post(f"{API}/articles", json=ARTICLE, headers=hotline.housing).status_code == 403
    article = client.post(f"{API}/articles", json=ARTICLE, headers=hotline.operator)
    assert article.status_code == 201, article.text
    draft = client.post(
        f"{API}/articles",
        json={**ARTICLE, "title": "居住证草稿", "published": False},
        headers=hotline.operator,
    ).json()
    found = client.get(f"{API}/suggestions", params={"text": "我想办理居住证，需要什么材料"}).json()
    assert [a["id"] for a in found["articles"]] == [article.json()["id"]]  # drafts are not offered
    assert client.get(f"{API}/suggestions", params={"text": "residence"}).json()["articles"] == []
    assert client.get(f"{API}/articles/{draft['id']}").status_code == 404
    assert client.get(f"{API}/articles").json()["total"] == 1
    assert client.get(f"{API}/articles", headers=hotline.operator).json()["total"] == 2

    closed = report(
        client, hotline.resident, type="consultation", answered_by_article=article.json()["id"]
    ).json()
    assert closed["status"] == "closed" and closed["reply"].startswith("居住证怎么办理")
    assert closed["timeline"][-1]["action"] == "answered_from_knowledge_base"
    assert report(client, hotline.resident, answered_by_article=article.json()["id"]).status_code == 422
    assert (
        report(client, hotline.resident, type="consultation", answered_by_article=draft["id"]).status_code
        == 422
    )

    renamed = {**ARTICLE, "title": "Residence permit: how to apply"}
    url = f"{API}/articles/{article.json()['id']}"
    assert client.put(url, json=renamed, headers=hotline.operator).status_code == 200
    english = client.get(f"{API}/suggestions", params={"text": "residence permit"}).json()["articles"]
    assert [a["title"] for a in english] == ["Residence permit: how to apply"]
    assert client.delete(url, headers=hotline.operator).status_code == 204
    assert client.get(f"{API}/suggestions", params={"text": "residence permit"}).json()["articles"] == []


def test_reports_of_the_same_problem_nearby_are_offered_and_can_be_followed(
    client, database, hotline, monkeypatch
) -> None:
    long_ago = utcnow() - timedelta(days=30)
    monkeypatch.setattr(ticket_service, "utcnow", lambda: long_ago)
    report(client, hotline.neighbour, lon=120.2003, lat=30.2503)  # outside the 14-day window
    monkeypatch.undo()
    first = report(client, hotline.neighbour, lon=120.2003, lat=30.2503).json()  # ~30 m away
    report(client, hotline.neighbour, lon=120.2003, lat=30.2603)  # ~1.1 km away
    report(client, hotline.neighbour, category="05.01", lon=120.2001, lat=30.2502)  # another category
    report(client, hotline.neighbour, type="report", lon=120.2001, lat=30.2502)  # 举报: never shown
    here = {"category": "01.01", "lon": 120.2001, "lat": 30.2502}
    near = client.get(f"{API}/suggestions", params=here).json()["nearby"]
    assert [(n["number"], n["distance_m"]) for n in near] == [(first["number"], 22)]
    assert "李四" not in str(near)

    followed = client.post(f"{API}/tickets/{first['number']}/follow", headers=hotline.resident)
    assert followed.status_code == 200 and followed.json()["followers"] == 1
    assert followed.json()["reporter"] is None
    again = client.post(f"{API}/tickets/{first['number']}/follow", headers=hotline.resident)
    assert again.status_code == 409
    own = client.post(f"{API}/tickets/{first['number']}/follow", headers=hotline.neighbour)
    assert own.status_code == 409
    client.post(f"{API}/tickets/{first['number']}/sign", headers=hotline.housing)
    with database.reading() as session:
        told = session.scalars(
            select(Notification.account_id).where(Notification.topic == "voice.ticket.changed")
        )
        assert len(set(told)) == 2  # the reporter and the follower
    mine = client.get(f"{API}/tickets/{first['number']}", headers=hotline.resident)
    assert mine.status_code == 200 and mine.json()["status"] == "handling"
    assert client.post(f"{API}/tickets/20990101999/follow", headers=hotline.resident).status_code == 404


def test_photos_are_pictures_of_ones_own_open_report(client, hotline, settings) -> None:
    number = report(client, hotline.resident).json()["number"]
    url = f"{API}/tickets/{number}/photos"
    files = [("photos", ("a.png", PNG, "image/png")), ("photos", ("b.jpg", JPEG, "image/jpeg"))]
    added = client.post(url, files=files, headers=hotline.resident)
    assert added.status_code == 200, added.text
    photo_ids = added.json()["photos"]
    assert len(photo_ids) == 2
    assert (settings.var_dir / "uploads" / "voice").is_dir()
    fake = client.post(
        url, files=[("photos", ("x.png", b"%PDF-1.4 not a picture", "image/png"))], headers=hotline.resident
    )
    assert fake.status_code == 422 and "x.png" in fake.json()["errors"][0]["detail"]
    too_many = [("photos", (f"{n}.png", PNG, "image/png")) for n in range(4)]
    assert client.post(url, files=too_many, headers=hotline.resident).status_code == 422
    assert client.post(url, files=files, headers=hotline.neighbour).status_code == 404
    assert client.post(url, files=files, headers=hotline.housing).status_code == 403

    picture = client.get(f"{url}/{photo_ids[0]}", headers=hotline.housing)
    assert picture.status_code == 200 and picture.content == PNG
    assert picture.headers["content-type"] == "image/png"
    assert client.get(f"{url}/{photo_ids[1]}", headers=hotline.resident).content == JPEG
    assert client.get(f"{url}/{photo_ids[0]}", headers=hotline.police).status_code == 404
    assert client.get(f"{url}/99999", headers=hotline.resident).status_code == 404


def test_another_platform_hands_over_tickets_in_batches_once(client, database, hotline) -> None:
    key = {"X-API-Key": api_key_for(database, hotline.town, ("voice.tickets.transfer",))}
    sent = [
        {
            "external_ref": f"ZJ-12345-{n}",
            "type": "complaint",
            "category": "01.01" if n % 2 else "05.01",
            "description": f"省平台转办工单 {n}：楼下噪音扰民。",
            "lon": 120.2001,
            "lat": 30.2502,
            "reporter_name": "王五",
            "reporter_phone": "13900000000",
        }
        for n in range(4)
    ]
    first = client.post(f"{API}/tickets/batch", json={"tickets": sent}, headers=key)
    assert first.status_code == 200, first.text
    assert [t["created"] for t in first.json()] == [True] * 4
    again = client.post(
        f"{API}/tickets/batch", json={"tickets": [*sent, {**sent[0], "external_ref": "ZJ-new"}]}, headers=key
    )
    assert [t["created"] for t in again.json()] == [False, False, False, False, True]
    assert [t["number"] for t in again.json()[:4]] == [t["number"] for t in first.json()]
    police = client.get(f"{API}/tickets", headers=hotline.police).json()
    assert police["total"] == 3 and police["items"][0]["channel"] == "transfer"
    assert police["items"][0]["reporter"] == "王五 13900000000"

    broken = [{**sent[0], "external_ref": "X-1", "category": "42"}, {**sent[1], "external_ref": "X-2"}]
    broken.append({**sent[2], "external_ref": "X-3", "category": "01.01", "attributes": {"nope": "1"}})
    refused = client.post(f"{API}/tickets/batch", json={"tickets": broken}, headers=key)
    assert refused.status_code == 422
    assert [error["field"] for error in refused.json()["errors"]] == ["tickets[0]", "tickets[2]"]
    twice = client.post(f"{API}/tickets/batch", json={"tickets": [sent[0], sent[0]]}, headers=key)
    assert twice.status_code == 422
    assert (
        client.post(f"{API}/tickets/batch", json={"tickets": sent}, headers=hotline.housing).status_code
        == 403
    )
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 5  # nothing of the refused batch
