"""Department assessment on both databases: the four rates computed exactly on a crafted set of tickets
(signed late, answered late, overdue, not yet due, merged, undispatched), the daily series bucketed by the
city's local days, categories, types and the communities of the heat map, the period presets, and who may
see which department's figures."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from cityhub.domains.voice.models import Ticket
from cityhub.domains.voice.service import assessment, rollup
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.errors import ValidationProblem
from cityhub.kernel.settings import get_settings
from tests.domains.voice.hotline import API, Hotline, report


def _set(database: Database, number: str, **values: object) -> None:
    """Change a ticket behind the workflow's back, then rebuild the rollup of closed tickets as an operator
    does after a bulk import."""
    with database.unit_of_work() as session:
        session.execute(update(Ticket).where(Ticket.number == number).values(**values))
        rollup.rebuild(session, get_settings().timezone)


def _crafted(client: TestClient, database: Database, hotline: Hotline) -> None:
    now = utcnow()
    hour = timedelta(hours=1)
    housing = [report(client, hotline.resident).json()["number"] for _ in range(4)]
    police = report(client, hotline.resident, category="05.01", type="help", lon=120.3001).json()["number"]
    merged = report(client, hotline.resident).json()["number"]
    report(client, hotline.resident, category="99", type="help")  # no department: waits for the operator
    # 1: signed and answered in time, closed very satisfied
    _set(database, housing[0], status="closed", signed_at=now, sign_due_at=now + hour, replied_at=now,
         deadline_at=now + 10 * hour, satisfaction=5, closed_at=now)  # fmt: skip
    # 2: signed late and answered late, closed at "fair"
    _set(database, housing[1], status="closed", signed_at=now, sign_due_at=now - hour, replied_at=now,
         deadline_at=now - hour, satisfaction=3, closed_at=now)  # fmt: skip
    # 3: never signed, its signing time and its deadline passed
    _set(database, housing[2], sign_due_at=now - 2 * hour, deadline_at=now - hour)
    # 4: signed late, being handled, still within its deadline: judged for response only
    _set(database, housing[3], status="handling", signed_at=now + 2 * hour, sign_due_at=now + hour)
    _set(database, police, status="closed", signed_at=now, sign_due_at=now + hour, replied_at=now,
         deadline_at=now + hour, satisfaction=4, closed_at=now)  # fmt: skip
    _set(database, merged, status="merged")


def test_the_four_rates_per_department_and_for_the_city(
    client: TestClient, database: Database, hotline: Hotline
) -> None:
    _crafted(client, database, hotline)
    figures = client.get(f"{API}/assessment", headers=hotline.operator)
    assert figures.status_code == 200, figures.text
    body = figures.json()
    assert body["period"] == "month"
    by_department = {row["department"]: row for row in body["departments"]}
    assert list(by_department) == ["org-housing", "org-police"]  # most received first
    assert by_department["org-housing"] == {
        "department": "org-housing",
        "name": "org-housing",
        "received": 4,
        "closed": 2,
        "sign_due": 4,
        "signed_in_time": 1,
        "judged": 3,
        "answered_in_time": 1,
        "due": 3,
        "callbacks": 2,
        "satisfied": 1,
        "response_rate": 0.25,
        "on_time_rate": 0.3333,
        "resolution_rate": 0.6667,
        "satisfaction_rate": 0.5,
    }
    police = by_department["org-police"]
    assert [police[k] for k in ("received", "response_rate", "on_time_rate", "resolution_rate")] == [
        1,
        1,
        1,
        1,
    ]
    city = body["city"]
    assert (city["received"], city["undispatched"]) == (6, 1)
    assert [city[k] for k in ("response_rate", "on_time_rate", "resolution_rate", "satisfaction_rate")] == [
        0.4,
        0.5,
        0.75,
        0.6667,
    ]
    assert sum(day["received"] for day in body["daily"]) == 6
    assert sum(day["closed"] for day in body["daily"]) == 3
    assert {c["code"]: c["received"] for c in body["categories"]} == {"01": 4, "05": 1, "99": 1}
    assert body["categories"][0] == {
        "code": "01",
        "name": "城乡建设",
        "name_en": "Construction",
        "received": 4,
    }
    assert body["types"] == {"complaint": 4, "help": 2}
    assert [
        (c["community"], c["lon"], c["lat"], c["received"], c["closed"]) for c in body["communities"]
    ] == [
        ("Ma", 120.2, 30.25, 5, 2),
        ("Mb", 120.3, 30.25, 1, 1),
    ]


def test_days_are_the_city_s_local_days(client: TestClient, database: Database, hotline: Hotline) -> None:
    late, early = (report(client, hotline.resident).json()["number"] for _ in range(2))
    _set(database, late, created_at=datetime(2026, 3, 31, 15, 59, tzinfo=UTC))  # 23:59 in Shanghai
    _set(database, early, created_at=datetime(2026, 3, 31, 16, 0, tzinfo=UTC))  # 1 April, 00:00
    both = client.get(
        f"{API}/assessment", params={"from": "2026-03-31", "to": "2026-04-01"}, headers=hotline.operator
    ).json()
    assert both["period"] == "custom"
    assert [(d["day"], d["received"]) for d in both["daily"]] == [("2026-03-31", 1), ("2026-04-01", 1)]
    april = client.get(
        f"{API}/assessment", params={"from": "2026-04-01", "to": "2026-04-30"}, headers=hotline.operator
    ).json()
    assert april["city"]["received"] == 1 and len(april["daily"]) == 30


def test_days_and_communities_add_up_over_the_period(
    client: TestClient, database: Database, hotline: Hotline
) -> None:
    """A community's figures are its tickets of every day of the period; a ticket with no community counts
    for its day only, a merged one nowhere; a department's map shows its own tickets."""
    housing = [report(client, hotline.resident).json()["number"] for _ in range(4)]
    police = report(client, hotline.resident, category="05.01", type="help", lon=120.3001).json()["number"]
    _set(database, housing[0], created_at=datetime(2026, 3, 30, 2, 0, tzinfo=UTC), status="closed")
    _set(database, housing[1], created_at=datetime(2026, 3, 31, 15, 59, tzinfo=UTC))  # 23:59 in Shanghai
    _set(database, housing[2], created_at=datetime(2026, 3, 31, 16, 0, tzinfo=UTC), org_unit_id=None)
    _set(database, housing[3], created_at=datetime(2026, 3, 31, 17, 0, tzinfo=UTC), status="merged")
    _set(database, police, created_at=datetime(2026, 4, 1, 3, 0, tzinfo=UTC), status="closed")
    period = {"from": "2026-03-30", "to": "2026-04-01"}
    city = client.get(f"{API}/assessment", params=period, headers=hotline.operator).json()
    assert [(d["day"], d["received"], d["closed"]) for d in city["daily"]] == [
        ("2026-03-30", 1, 1),
        ("2026-03-31", 1, 0),
        ("2026-04-01", 2, 1),
    ]
    assert [(c["community"], c["received"], c["closed"]) for c in city["communities"]] == [
        ("Ma", 2, 1),
        ("Mb", 1, 1),
    ]
    assert city["city"]["received"] == 4
    mine = client.get(f"{API}/assessment", params=period, headers=hotline.housing).json()
    assert [(d["received"], d["closed"]) for d in mine["daily"]] == [(1, 1), (1, 0), (1, 0)]
    assert [(c["community"], c["received"], c["closed"]) for c in mine["communities"]] == [("Ma", 2, 1)]


def test_period_presets() -> None:
    tz = "Asia/Shanghai"
    today = date(2026, 5, 20)
    month = assessment.period_of(None, None, tz, today=today)
    assert (month.preset, month.first, month.last) == ("month", date(2026, 5, 1), date(2026, 5, 31))
    last = assessment.period_of(None, None, tz, "last_month", today=date(2026, 1, 9))
    assert (last.first, last.last) == (date(2025, 12, 1), date(2025, 12, 31))
    quarter = assessment.period_of(None, None, tz, "quarter", today=today)
    assert (quarter.first, quarter.last) == (date(2026, 4, 1), date(2026, 6, 30))
    custom = assessment.period_of(date(2026, 2, 3), date(2026, 2, 9), tz, today=today)
    assert (custom.preset, custom.start.isoformat()) == ("custom", "2026-02-03T00:00:00+08:00")
    assert custom.end.isoformat() == "2026-02-10T00:00:00+08:00"
    with pytest.raises(ValidationProblem):
        assessment.period_of(None, None, tz, "decade", today=today)
    assert [assessment.grade(r) for r in (None, 0.95, 0.9, 0.8, 0.5)] == [
        "none",
        "good",
        "good",
        "fair",
        "poor",
    ]


def test_departments_see_their_own_figures_only(
    client: TestClient, database: Database, hotline: Hotline
) -> None:
    _crafted(client, database, hotline)
    mine = client.get(f"{API}/assessment", headers=hotline.housing).json()
    assert [row["department"] for row in mine["departments"]] == ["org-housing"] and mine["city"] is None
    assert sum(day["received"] for day in mine["daily"]) == 4 and mine["types"] == {"complaint": 4}
    assert (
        client.get(
            f"{API}/assessment", params={"department": "org-police"}, headers=hotline.housing
        ).status_code
        == 403
    )
    assert client.get(f"{API}/assessment", headers=hotline.resident).status_code == 403
    one = client.get(
        f"{API}/assessment", params={"department": "org-police"}, headers=hotline.operator
    ).json()
    assert [row["department"] for row in one["departments"]] == ["org-police"] and one["city"] is None
    today = utcnow().date()
    backwards = {"from": today.isoformat(), "to": (today - timedelta(days=3)).isoformat()}
    assert client.get(f"{API}/assessment", params=backwards, headers=hotline.operator).status_code == 422
    too_long = {"from": (today - timedelta(days=500)).isoformat(), "to": today.isoformat()}
    assert client.get(f"{API}/assessment", params=too_long, headers=hotline.operator).status_code == 422
    unknown = client.get(f"{API}/assessment", params={"period": "ever"}, headers=hotline.operator)
    assert unknown.status_code == 422
    earlier = {
        "from": (today - timedelta(days=40)).isoformat(),
        "to": (today - timedelta(days=35)).isoformat(),
    }
    empty = client.get(f"{API}/assessment", params=earlier, headers=hotline.operator).json()
    assert empty["departments"] == [] and empty["city"]["received"] == 0
    assert empty["city"]["response_rate"] is None and len(empty["daily"]) == 6 and empty["communities"] == []
