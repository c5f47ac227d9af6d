"""The 12345 workflow over the API, on both databases: intake and automatic dispatch by category and
location, deadlines in working days across National Day, sign, extension, reply, callback (reopen or close),
manual dispatch, merge, the permission matrix, and warnings and escalation before and after a deadline."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from cityhub.domains.identity.models import Notification
from cityhub.domains.voice.service import tickets as ticket_service
from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel.models import AuditRecord
from cityhub.kernel.settings import domain_settings
from tests.domains.voice.hotline import API, SEPT_29_10AM, TREE, Hotline, report

__all__ = ["API", "SEPT_29_10AM", "TREE", "Hotline", "report"]


def test_a_report_is_dispatched_by_category_and_place_with_a_working_day_deadline(
    client, hotline, at_sept_29
) -> None:
    created = report(client, hotline.resident)
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert ticket["status"] == "dispatched" and ticket["department"] == "org-housing"
    assert ticket["community"] == "Ma"
    # 15 working days from 29 September: the National Day week is skipped and Saturday 10 October is worked,
    # so the last day is Monday 26 October; the deadline is midnight after it in Shanghai.
    assert ticket["deadline_at"] == "2026-10-26T16:00:00Z"
    assert ticket["sign_due_at"] == "2026-09-30T16:00:00Z"
    assert ticket["reporter"] is None  # the reporter is not shown their own contact details back
    consultation = report(client, hotline.resident, type="consultation").json()
    assert consultation["deadline_at"] == "2026-10-08T16:00:00Z"  # two working days: 30 Sept, 8 Oct
    assert [e["action"] for e in ticket["timeline"]] == ["received", "dispatched"]
    assert ticket["timeline"][0]["actor"] is None


def test_the_workflow_reply_callback_reopen_and_close(client, database, hotline) -> None:
    number = report(client, hotline.resident).json()["number"]
    url = f"{API}/tickets/{number}"
    assert client.post(f"{url}/sign", headers=hotline.police).status_code == 404
    assert client.post(f"{url}/reply", json={"text": "已处理"}, headers=hotline.housing).status_code == 409
    signed = client.post(f"{url}/sign", headers=hotline.housing)
    assert signed.status_code == 200 and signed.json()["status"] == "handling"
    assert signed.json()["reporter"] == "张三"  # the department sees who reported
    assert client.post(f"{url}/sign", headers=hotline.housing).status_code == 409
    client.post(f"{url}/reply", json={"text": "已联系物业维修。"}, headers=hotline.housing)
    assert client.post(f"{url}/callback", json={"level": 2}, headers=hotline.neighbour).status_code == 404
    reopened = client.post(
        f"{url}/callback", json={"level": 2, "comment": "还是坏的"}, headers=hotline.resident
    )
    assert reopened.json()["status"] == "handling" and reopened.json()["reopened"] == 1
    client.post(f"{url}/reply", json={"text": "已更换主板，恢复运行。"}, headers=hotline.housing)
    closed = client.post(f"{url}/callback", json={"level": 5}, headers=hotline.resident).json()
    assert closed["status"] == "closed" and closed["satisfaction"] == 5 and closed["due"] == "done"
    assert [e["action"] for e in closed["timeline"]] == [
        "received",
        "dispatched",
        "signed",
        "replied",
        "callback",
        "replied",
        "callback",
    ]
    with database.reading() as session:
        actions = session.scalars(select(AuditRecord.action).where(AuditRecord.object_id == number)).all()
        told = session.scalars(
            select(Notification.topic).where(Notification.topic == "voice.ticket.changed")
        ).all()
    assert actions.count("voice.ticket.callback") == 2 and "voice.ticket.signed" in actions
    assert len(told) == 3  # signed, replied twice


def test_extensions_move_the_deadline_by_working_days(client, hotline, at_sept_29) -> None:
    number = report(client, hotline.resident).json()["number"]
    url = f"{API}/tickets/{number}"
    client.post(f"{url}/sign", headers=hotline.housing)
    assert (
        client.post(f"{url}/extension", json={"days": 99, "reason": "x"}, headers=hotline.housing).status_code
        == 422
    )
    asked = client.post(f"{url}/extension", json={"days": 3, "reason": "需要等配件"}, headers=hotline.housing)
    assert asked.status_code == 200
    again = client.post(f"{url}/extension", json={"days": 3, "reason": "再等等"}, headers=hotline.housing)
    assert again.status_code == 409
    decision = f"{url}/extension/decision"
    assert client.post(decision, json={"approve": True}, headers=hotline.housing).status_code == 403
    approved = client.post(decision, json={"approve": True}, headers=hotline.operator).json()
    assert approved["deadline_at"] == "2026-10-29T16:00:00Z"  # 26 October + 3 working days
    assert client.post(decision, json={"approve": True}, headers=hotline.operator).status_code == 409
    own = client.get(url, headers=hotline.resident).json()
    assert "extension_requested" not in [e["action"] for e in own["timeline"]]  # internal steps stay internal


def test_the_operator_types_in_calls_dispatches_by_hand_and_merges_duplicates(
    client, database, hotline
) -> None:
    call = {
        "type": "help",
        "category": "99",
        "description": "小区门口流浪狗很多，孩子害怕。",
        "reporter_name": "王大妈",
        "reporter_phone": "13800000000",
    }
    assert client.post(f"{API}/tickets/phone", json=call, headers=hotline.resident).status_code == 403
    phoned = client.post(f"{API}/tickets/phone", json=call, headers=hotline.operator).json()
    assert phoned["status"] == "received" and phoned["department"] is None and phoned["channel"] == "phone"
    url = f"{API}/tickets/{phoned['number']}"
    assert (
        client.post(
            f"{url}/dispatch", json={"department": "org-nowhere"}, headers=hotline.operator
        ).status_code
        == 404
    )
    sent = client.post(f"{url}/dispatch", json={"department": "org-police"}, headers=hotline.operator).json()
    assert sent["status"] == "dispatched" and sent["department"] == "org-police"
    assert client.get(url, headers=hotline.police).json()["reporter"] == "王大妈 13800000000"
    first = report(
        client, hotline.resident, category="05.01", description="楼下商铺每晚放音乐到深夜。"
    ).json()
    second = report(
        client, hotline.neighbour, category="05.01", description="楼下商铺晚上音乐声太大了。"
    ).json()
    merged = client.post(
        f"{API}/tickets/{second['number']}/merge", json={"into": first["number"]}, headers=hotline.operator
    )
    assert merged.json()["status"] == "merged" and merged.json()["merged_into"] == first["number"]
    again = client.post(
        f"{API}/tickets/{first['number']}/merge", json={"into": first["number"]}, headers=hotline.operator
    )
    assert again.status_code == 409


def test_each_party_sees_only_its_tickets(client, hotline) -> None:
    mine = report(client, hotline.resident).json()["number"]
    theirs = report(client, hotline.neighbour, category="05.01").json()["number"]
    assert [t["number"] for t in client.get(f"{API}/tickets", headers=hotline.resident).json()["items"]] == [
        mine
    ]
    assert client.get(f"{API}/tickets/{theirs}", headers=hotline.resident).status_code == 404
    assert [t["number"] for t in client.get(f"{API}/tickets", headers=hotline.housing).json()["items"]] == [
        mine
    ]
    assert [t["number"] for t in client.get(f"{API}/tickets", headers=hotline.police).json()["items"]] == [
        theirs
    ]
    assert client.get(f"{API}/tickets", headers=hotline.operator).json()["total"] == 2
    assert client.get(f"{API}/tickets").status_code == 401
    assert report(client, hotline.resident, category="42").status_code == 422
    assert report(client, hotline.resident, description="短").status_code == 422
    assert report(client, hotline.resident, lon=None).status_code == 422
    assert report(client, hotline.resident, type="praise").status_code == 422


def test_departments_are_warned_before_a_deadline_and_escalated_after_it(
    client, database, hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ticket_service, "utcnow", lambda: SEPT_29_10AM)
    number = report(client, hotline.resident, type="consultation").json()["number"]  # due end of 8 October
    clock = ticket_service.Clock(domain_settings(VoiceSettings), "Asia/Shanghai")
    moments = {
        "2026-09-30T02:00:00+00:00": (0, 0),  # the next working day is the last one: not yet
        "2026-10-08T02:00:00+00:00": (1, 0),  # the due day itself: warn once
        "2026-10-08T03:00:00+00:00": (0, 0),
        "2026-10-09T02:00:00+00:00": (0, 1),  # overdue: escalate once
        "2026-10-09T03:00:00+00:00": (0, 0),
    }
    for moment, expected in moments.items():
        monkeypatch.setattr(ticket_service, "utcnow", lambda moment=moment: datetime.fromisoformat(moment))
        with database.unit_of_work() as session:
            assert ticket_service.watch_deadlines(session, clock) == expected, moment
    with database.reading() as session:
        topics = session.execute(select(Notification.topic, Notification.account_id)).all()
    by_topic: dict[str, int] = {}
    for topic, _account in topics:
        by_topic[topic] = by_topic.get(topic, 0) + 1
    assert by_topic == {"voice.ticket.due_soon": 1, "voice.ticket.overdue": 2}  # housing staff; + operator
    assert number


def test_category_imports_are_checked_and_for_the_operator_only(client, hotline) -> None:
    orphan = {"categories": [{"code": "07.01", "name_zh": "x", "name_en": "x"}]}
    assert client.post(f"{API}/categories", json=orphan, headers=hotline.operator).status_code == 422
    assert client.post(f"{API}/categories", json=TREE, headers=hotline.housing).status_code == 403
    assert client.post(f"{API}/categories", json=TREE, headers=hotline.operator).json() == {
        "created": 0,
        "updated": 5,
    }
    assert [c["code"] for c in client.get(f"{API}/categories").json()] == ["01", "01.01", "05", "05.01", "99"]
    unknown = {"categories": [{"code": "08", "name_zh": "x", "name_en": "x", "organization_code": "nope"}]}
    assert client.post(f"{API}/categories", json=unknown, headers=hotline.operator).status_code == 404


def test_the_escalation_reaches_the_operator_when_no_department_is_set(
    client, database, hotline, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(ticket_service, "utcnow", lambda: SEPT_29_10AM)
    report(client, hotline.resident, category="99", type="consultation")
    monkeypatch.setattr(ticket_service, "utcnow", lambda: SEPT_29_10AM + timedelta(days=12))
    clock = ticket_service.Clock(domain_settings(VoiceSettings), "Asia/Shanghai")
    with database.unit_of_work() as session:
        assert ticket_service.watch_deadlines(session, clock) == (0, 1)
    with database.reading() as session:
        assert session.scalars(select(Notification.topic)).all() == ["voice.ticket.overdue"]
