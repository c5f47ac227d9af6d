"""The emergency fast path on both databases: the alarm reaches the staff on duty at intake (everyone when
nobody is on duty), the first acknowledgement wins, an unacknowledged alarm is escalated once to the
department head and the operator, the live board, and who may keep which duty roster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cityhub.domains.identity.models import Account, Notification, Organization
from cityhub.domains.voice.service import emergencies
from cityhub.domains.voice.service import tickets as ticket_service
from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel.settings import domain_settings
from tests.domains.voice.hotline import API, report
from tests.factories import bearer, make_user

GAS = {
    "categories": [
        {"code": "05", "name_zh": "公共安全", "name_en": "Safety"},
        {
            "code": "05.09",
            "name_zh": "燃气泄漏",
            "name_en": "Gas smell",
            "organization_code": "org-police",
            "emergency": True,
        },
    ]
}


def _told(database, topic: str) -> list[str]:  # type: ignore[no-untyped-def]
    with database.reading() as session:
        return sorted(
            session.scalars(
                select(Account.username)
                .join(Notification, Notification.account_id == Account.id)
                .where(Notification.topic == topic)
            )
        )


def _on_duty(client, headers, account: str, department: str | None):  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    body = {
        "account": account,
        "department": department,
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now + timedelta(hours=8)).isoformat(),
    }
    return client.post(f"{API}/duties", json=body, headers=headers)


def test_the_alarm_reaches_those_on_duty_and_the_first_acknowledgement_wins(
    client, database, hotline
) -> None:
    client.post(f"{API}/categories", json=GAS, headers=hotline.operator)
    make_user(
        database, "police2", [("department_staff", hotline.town.city)], organization_id=_police(database)
    )
    assert _on_duty(client, hotline.police, "police1", "org-police").status_code == 201
    assert _on_duty(client, hotline.operator, "operator1", None).status_code == 201
    assert _on_duty(client, hotline.housing, "housing1", "org-police").status_code == 403
    assert (
        _on_duty(client, hotline.police, "police1", None).status_code == 403
    )  # the hotline's is the operator's
    assert _on_duty(client, hotline.police, "nobody", "org-police").status_code == 404

    alarm = report(
        client, hotline.resident, type="help", category="05.09", description="楼道里有很浓的煤气味！"
    )
    assert alarm.status_code == 201 and alarm.json()["emergency"] is True
    number = alarm.json()["number"]
    assert _told(database, "voice.emergency") == ["operator1", "police1"]  # not police2: not on duty

    board = client.get(f"{API}/emergencies", headers=hotline.police).json()
    assert [(b["number"], b["acknowledged_at"]) for b in board] == [(number, None)]
    assert client.get(f"{API}/emergencies", headers=hotline.housing).json() == []
    assert client.get(f"{API}/emergencies", headers=hotline.resident).status_code == 403

    assert client.post(f"{API}/tickets/{number}/acknowledge", headers=hotline.housing).status_code == 404
    taken = client.post(f"{API}/tickets/{number}/acknowledge", headers=bearer(client, "police2"))
    assert taken.status_code == 200 and taken.json()["acknowledged_at"]
    assert client.post(f"{API}/tickets/{number}/acknowledge", headers=hotline.police).status_code == 409
    board = client.get(f"{API}/emergencies", headers=hotline.operator).json()
    assert board[0]["acknowledged_by"] == "police2" and board[0]["escalated"] is False

    ordinary = report(client, hotline.resident).json()["number"]
    assert client.post(f"{API}/tickets/{ordinary}/acknowledge", headers=hotline.housing).status_code == 403


def _police(database) -> int:  # type: ignore[no-untyped-def]
    with database.reading() as session:
        return session.scalars(select(Organization.id).where(Organization.code == "org-police")).one()


def test_nobody_on_duty_means_everyone_and_silence_escalates_once(
    client, database, hotline, monkeypatch
) -> None:
    client.post(f"{API}/categories", json=GAS, headers=hotline.operator)
    make_user(database, "chief", [("department_head", hotline.town.city)], organization_id=_police(database))
    number = report(
        client, hotline.resident, type="help", category="05.09", description="地下室进水，水位在涨。"
    ).json()["number"]
    assert _told(database, "voice.emergency") == ["chief", "operator1", "police1"]

    clock = ticket_service.Clock(domain_settings(VoiceSettings), "Asia/Shanghai")
    soon = datetime.now(UTC) + timedelta(minutes=3)
    late = datetime.now(UTC) + timedelta(minutes=6)
    monkeypatch.setattr(emergencies, "utcnow", lambda: soon)
    with database.unit_of_work() as session:
        assert emergencies.watch_alarms(session, clock) == 0
    monkeypatch.setattr(emergencies, "utcnow", lambda: late)
    with database.unit_of_work() as session:
        assert emergencies.watch_alarms(session, clock) == 1
    with database.unit_of_work() as session:
        assert emergencies.watch_alarms(session, clock) == 0
    assert _told(database, "voice.emergency.escalated") == ["chief", "operator1"]  # the head, not all staff
    board = client.get(f"{API}/emergencies", headers=hotline.operator).json()
    assert board[0]["number"] == number and board[0]["escalated"] is True


def test_the_roster_is_listed_and_kept_by_its_owners(client, hotline) -> None:
    client.post(f"{API}/categories", json=GAS, headers=hotline.operator)
    duty = _on_duty(client, hotline.police, "police1", "org-police").json()
    _on_duty(client, hotline.operator, "operator1", None)
    assert [d["account"] for d in client.get(f"{API}/duties", headers=hotline.operator).json()] == [
        "police1",
        "operator1",
    ]
    assert [d["account"] for d in client.get(f"{API}/duties", headers=hotline.police).json()] == ["police1"]
    assert client.get(f"{API}/duties", headers=hotline.housing).json() == []
    backwards = {
        "account": "police1",
        "department": "org-police",
        "starts_at": "2026-10-02T08:00:00+08:00",
        "ends_at": "2026-10-01T08:00:00+08:00",
    }
    assert client.post(f"{API}/duties", json=backwards, headers=hotline.police).status_code == 422
    assert client.delete(f"{API}/duties/{duty['id']}", headers=hotline.housing).status_code == 403
    assert client.delete(f"{API}/duties/{duty['id']}", headers=hotline.police).status_code == 204
    assert client.delete(f"{API}/duties/{duty['id']}", headers=hotline.police).status_code == 404
