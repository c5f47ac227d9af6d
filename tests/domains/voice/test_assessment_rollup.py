"""The assessment read from the rollup of closed tickets plus a live pass over the rest gives exactly the
figures computed from the tickets themselves, on both databases: tickets at every step over several local
days (midnight edges included), signed and answered late or in time, rated, reopened then closed, merged,
closed by the knowledge base without a department, with and without a community, one whose extension was
approved after it closed; for the city, one department and a department's own staff, over several periods.
The rollup kept by the closing transactions equals the one rebuilt from scratch, also when closings of one
group race each other."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from datetime import UTC, date, datetime, time, timedelta
from threading import Barrier
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from cityhub.domains.identity import Principal, get_unit
from cityhub.domains.identity.models import Organization
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import Category, CommunityRollup, ScoreRollup, Ticket
from cityhub.domains.voice.service import assessment, rollup, tickets
from cityhub.domains.voice.settings import VoiceSettings
from cityhub.kernel.db import Database, utcnow
from tests.domains.voice.hotline import API, Hotline, report
from tests.domains.voice.test_cli import cli
from tests.factories import bearer, make_user

TZ = "Asia/Shanghai"
SCORES = [f.name for f in fields(assessment.Scores)]


def _midnight(days_ago: int) -> datetime:
    """Local midnight ``days_ago`` days before today, in UTC."""
    today = datetime.now(ZoneInfo(TZ)).date()
    return datetime.combine(today - timedelta(days=days_ago), time(), ZoneInfo(TZ)).astimezone(UTC)


def _set(database: Database, number: str, **values: object) -> None:
    """Move an *open* ticket back in time: nothing the rollup counts yet."""
    with database.unit_of_work() as session:
        session.execute(update(Ticket).where(Ticket.number == number).values(**values))


def _step(client: TestClient, headers: dict[str, str], number: str, step: str, **body: Any) -> None:
    answer = client.post(f"{API}/tickets/{number}/{step}", json=body, headers=headers)
    assert answer.status_code == 200, answer.text


def _world(client: TestClient, database: Database, hotline: Hotline) -> None:
    """About thirty tickets over the last six local days, taken through the workflow by the API."""
    hour = timedelta(hours=1)
    operator, resident, housing, police = hotline.operator, hotline.resident, hotline.housing, hotline.police
    kinds = [  # (category, type, department's headers, lon or None: no community)
        ("01.01", "complaint", housing, 120.2001),
        ("01.01", "help", housing, 120.3001),
        ("05.01", "help", police, 120.3001),
        ("05.01", "report", police, None),
    ]
    numbers = []
    for n in range(24):
        category, kind, department, lon = kinds[n % len(kinds)]
        place = {"lon": lon, "lat": 30.2502} if lon is not None else {"lon": None, "lat": None}
        number = report(client, resident, category=category, type=kind, **place).json()["number"]
        numbers.append(number)
        day = n % 6
        # the first ticket of each day a minute after local midnight, the others through the day; every
        # third one signed late, every fourth answered late
        created = _midnight(day) + (timedelta(minutes=1) if n < 6 else timedelta(hours=n % 23))
        _set(
            database,
            number,
            created_at=created,
            sign_due_at=created + (timedelta(seconds=1) if n % 3 == 0 else 30 * hour),
            deadline_at=created + (timedelta(seconds=2) if n % 4 == 0 else 400 * hour),
        )
        stage = n % 6  # 0 dispatched, 1 handling, 2 replied, 3 closed, 4 reopened then closed, 5 reopened
        if stage >= 1:
            _step(client, department, number, "sign")
        if stage >= 2:
            _step(client, department, number, "reply", text="已处理。")
        if stage == 3:
            _step(client, resident, number, "callback", level=3 + n % 3)
        if stage >= 4:
            _step(client, resident, number, "callback", level=1 + n % 2)
            _step(client, department, number, "reply", text="已再次处理。")
        if stage == 4:
            _step(client, operator, number, "callback", level=4)
    # a duplicate merged while open, another after being handled: neither counts
    duplicate = report(client, hotline.neighbour).json()["number"]
    _step(client, operator, duplicate, "merge", into=numbers[1])
    _step(client, operator, numbers[7], "merge", into=numbers[1])
    # answered late, closed, and only then given more time: now answered in time
    extended = report(client, resident).json()["number"]
    _set(database, extended, deadline_at=utcnow() - hour)
    _step(client, housing, extended, "sign")
    _step(client, housing, extended, "extension", days=5, reason="需协调多个部门")
    _step(client, housing, extended, "reply", text="已处理。")
    _step(client, resident, extended, "callback", level=5)
    _step(client, operator, extended, "extension/decision", approve=True)
    # closed at intake by the knowledge base, in a category no department handles
    article = client.post(
        f"{API}/articles", json={"title": "办事指南", "body": "请携带身份证办理。"}, headers=operator
    ).json()["id"]
    answered = report(client, resident, category="99", type="consultation", answered_by_article=article)
    assert answered.json()["status"] == "closed" and answered.json()["department"] is None
    report(client, resident, category="99", type="help")  # waits for the operator


def _expected(database: Database, now: datetime, first: date, last: date, scope: set[int] | None) -> dict:
    """The figures computed in Python from the tickets, by the rules of service/assessment.py."""
    start = datetime.combine(first, time(), ZoneInfo(TZ))
    end = datetime.combine(last + timedelta(days=1), time(), ZoneInfo(TZ))
    with database.reading() as session:
        rows = session.scalars(
            select(Ticket).where(
                Ticket.created_at >= start, Ticket.created_at < end, Ticket.status != "merged"
            )
        ).all()
        codes = {o.id: o.code for o in session.scalars(select(Organization))}
        branches = {c.id: c.code.split(".")[0] for c in session.scalars(select(Category))}
    departments: dict[int | None, dict[str, int]] = {}
    daily = {first + timedelta(days=n): [0, 0] for n in range((last - first).days + 1)}
    per_branch: dict[str, int] = {}
    per_type: dict[str, int] = {}
    per_unit: dict[int, list[int]] = {}
    for t in rows:
        if scope is not None and t.organization_id not in scope:
            continue
        closed = t.status == "closed"
        staffed = t.organization_id is not None
        counts = {
            "received": 1,
            "closed": closed,
            "sign_due": staffed
            and (t.signed_at is not None or (t.sign_due_at is not None and t.sign_due_at < now)),
            "signed_in_time": staffed and t.signed_at is not None and t.signed_at <= t.sign_due_at,
            "judged": t.replied_at is not None or t.deadline_at < now,
            "answered_in_time": t.replied_at is not None and t.replied_at <= t.deadline_at,
            "due": closed or t.deadline_at < now,
            "callbacks": t.satisfaction is not None,
            "satisfied": (t.satisfaction or 0) >= 4,
        }
        scores = departments.setdefault(t.organization_id, dict.fromkeys(SCORES, 0))
        for name, counted in counts.items():
            scores[name] += int(counted)
        day = daily[t.created_at.astimezone(ZoneInfo(TZ)).date()]
        day[0], day[1] = day[0] + 1, day[1] + closed
        per_branch[branches[t.category_id]] = per_branch.get(branches[t.category_id], 0) + 1
        per_type[t.type] = per_type.get(t.type, 0) + 1
        if t.org_unit_id is not None:
            unit = per_unit.setdefault(t.org_unit_id, [0, 0])
            unit[0], unit[1] = unit[0] + 1, unit[1] + closed
    city = dict.fromkeys(SCORES, 0)
    for scores in departments.values():
        for name in SCORES:
            city[name] += scores[name]
    return {
        "departments": {codes[o]: s for o, s in departments.items() if o is not None},
        "city": city if scope is None else None,
        "daily": [(day.isoformat(), *counts) for day, counts in daily.items()],
        "categories": per_branch,
        "types": per_type,
        "communities": per_unit,
    }


def _found(body: dict[str, Any], unit_ids: dict[str, int]) -> dict:
    """The same projection of the API's answer."""
    return {
        "departments": {row["department"]: {n: row[n] for n in SCORES} for row in body["departments"]},
        "city": {n: body["city"][n] for n in SCORES} if body["city"] is not None else None,
        "daily": [(d["day"], d["received"], d["closed"]) for d in body["daily"]],
        "categories": {c["code"]: c["received"] for c in body["categories"]},
        "types": body["types"],
        "communities": {unit_ids[c["community"]]: [c["received"], c["closed"]] for c in body["communities"]},
    }


def _rollup_rows(database: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Both rollups' rows (those counting nothing left out: taking a ticket out leaves its zeros)."""
    with database.reading() as session:
        scores = [
            tuple(row)
            for row in session.execute(
                select(ScoreRollup.__table__).order_by(*ScoreRollup.__table__.primary_key)
            )
            if row.received
        ]
        places = [
            tuple(row)
            for row in session.execute(
                select(CommunityRollup.__table__).order_by(*CommunityRollup.__table__.primary_key)
            )
            if row.closed
        ]
    return scores, places


def test_rollup_and_live_pass_give_the_tickets_figures(
    client: TestClient, database: Database, hotline: Hotline, monkeypatch: pytest.MonkeyPatch
) -> None:
    _world(client, database, hotline)
    kept = _rollup_rows(database)
    assert kept[0] and kept[1]
    with database.unit_of_work() as session:
        counted = rollup.rebuild(session, TZ)
    assert _rollup_rows(database) == kept  # what the closing transactions kept is what a rebuild counts
    with database.reading() as session:
        assert counted == session.scalar(select(func.count()).where(Ticket.status == "closed"))
    now = utcnow()
    monkeypatch.setattr(assessment, "utcnow", lambda: now)
    with database.reading() as session:
        codes = {o.code: o.id for o in session.scalars(select(Organization))}
        units = [unit for unit in session.scalars(select(Ticket.org_unit_id).distinct()) if unit is not None]
        unit_ids = {get_unit(session, unit).code: unit for unit in units}
    today = datetime.now(ZoneInfo(TZ)).date()
    periods = [
        (today - timedelta(days=7), today),  # every ticket
        (today - timedelta(days=4), today - timedelta(days=1)),  # a middle stretch
        (today - timedelta(days=2), today - timedelta(days=2)),  # one day
    ]
    police = codes["org-police"]
    for first, last in periods:
        window = {"from": first.isoformat(), "to": last.isoformat()}
        for headers, extra, scope in (
            (hotline.operator, {}, None),
            (hotline.operator, {"department": "org-police"}, {police}),
            (hotline.housing, {}, {codes["org-housing"]}),
        ):
            answer = client.get(f"{API}/assessment", params={**window, **extra}, headers=headers)
            assert answer.status_code == 200, answer.text
            assert _found(answer.json(), unit_ids) == _expected(database, now, first, last, scope), (
                window,
                extra,
            )


def test_closings_racing_in_one_group_all_count(
    database: Database, hotline: Hotline, client: TestClient
) -> None:
    """Six callbacks closing tickets of one department, category, type and day at once, each in its own
    transaction (two app processes would do the same): the group counts six, as a rebuild does."""
    account, person = make_user(database, "caller", [("resident", hotline.town.community_a)])
    caller = bearer(client, "caller")
    numbers = [report(client, caller).json()["number"] for _ in range(6)]
    for number in numbers:
        _step(client, hotline.housing, number, "sign")
        _step(client, hotline.housing, number, "reply", text="已处理。")
    clock = tickets.Clock(VoiceSettings(), TZ)
    reporter = Principal("account", account.id, "caller", person.id, ())
    start = Barrier(len(numbers))

    def close(number: str) -> None:
        start.wait()
        with database.unit_of_work() as session:
            tickets.callback(session, reporter, number, schemas.CallbackIn(level=5), clock)

    with ThreadPoolExecutor(max_workers=len(numbers)) as pool:
        list(pool.map(close, numbers))
    kept = _rollup_rows(database)
    assert [row[4:6] for row in kept[0]] == [(6, 6)]  # received, closed
    with database.unit_of_work() as session:
        rollup.rebuild(session, TZ)
    assert _rollup_rows(database) == kept


def test_the_cli_rebuilds_the_rollup(
    settings, database: Database, hotline: Hotline, client: TestClient
) -> None:
    number = report(client, hotline.resident).json()["number"]
    _set(database, number, status="closed", signed_at=utcnow(), replied_at=utcnow())  # a bulk import
    assert _rollup_rows(database) == ([], [])
    result = CliRunner().invoke(cli(), ["voice", "rollup-rebuild"])
    assert result.exit_code == 0 and "counted 1 closed tickets" in result.output, result.output
    scores, places = _rollup_rows(database)
    assert [row[4] for row in scores] == [1] and [row[3] for row in places] == [1]
