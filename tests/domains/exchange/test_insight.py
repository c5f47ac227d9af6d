"""Decision support and the console's corrections, register and publish forms (both databases).

A seeded scenario: the statistics bureau provides four published resources (yearly, daily, weekly, irregular)
and a draft, the health commission one; civil affairs and health read them through grants on chosen days;
objections are answered on time, late, or left open past their deadline; the open data is downloaded through
several channels. The figures — city-wide for the operator, per department for their staff — are checked
exactly, in the JSON API and on the dashboard page (its tables and its charts' data)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from cityhub.domains.exchange.models import GrantUsage, Objection, OpenDownload, Resource, Version
from cityhub.kernel.db import Database, utcnow
from tests.domains.exchange.world import (
    API,
    CSV,
    Exchange,
    build_exchange,
    loaded,
    published,
    registered,
    resource_body,
)
from tests.web.factories import HTML, as_user, page_of, post_form

CONSOLE = "/console/exchange"
INSIGHT = f"{CONSOLE}/insight"
UNCONDITIONAL = {"sharing_class": "unconditional", "sharing_condition": None}


def _grant(client: TestClient, world: Exchange, code: str, consumer: str) -> int:
    headers = world.consumer if consumer == "civil" else world.other
    body = {"consumer": consumer, "purpose": "业务", "fields": ["district", "population"]}
    made = client.post(f"{API}/resources/{code}/requests", json=body, headers=headers)
    assert made.status_code == 201 and made.json()["status"] == "approved", made.text
    return int(made.json()["grant"]["id"])


def _object(client: TestClient, world: Exchange, code: str, **extra: Any) -> int:
    body = {"filer": "civil", "rows": [2], "claim": "滨江区人口有误", **extra}
    filed = client.post(f"{API}/resources/{code}/objections", json=body, headers=world.consumer)
    assert filed.status_code == 201, filed.text
    return int(filed.json()["id"])


def _answer(client: TestClient, headers: dict[str, str], objection_id: int, decision: str) -> None:
    answered = client.post(
        f"{API}/objections/{objection_id}/answer",
        json={"decision": decision, "reason": "核实"},
        headers=headers,
    )
    assert answered.status_code == 200, answered.text


def _seed(client: TestClient, database: Database) -> tuple[Exchange, date]:
    """The scenario of the module's docstring; today's UTC date."""
    world = build_exchange(client, database)
    now = utcnow()
    today = now.date()
    population = published(client, world, "stats-population", **UNCONDITIONAL)  # yearly, open
    daily = published(client, world, "stats-daily", update_cycle="daily", **UNCONDITIONAL)
    weekly = published(client, world, "stats-weekly", update_cycle="weekly", **UNCONDITIONAL)
    published(client, world, "stats-irregular", update_cycle="irregular", **UNCONDITIONAL)
    registered(client, world, "stats-draft")
    health = "health-clinics"
    clinics = resource_body(health, provider="health", update_cycle="daily", **UNCONDITIONAL)
    assert client.post(f"{API}/resources", json=clinics, headers=world.other).status_code == 201
    load = {**world.other, "Content-Type": "text/csv"}
    assert client.post(f"{API}/resources/{health}/versions", content=CSV.encode(), headers=load).json()[
        "valid"
    ]
    opened = client.post(
        f"{API}/resources/{health}/status", json={"status": "published"}, headers=world.other
    )
    assert opened.status_code == 200, opened.text

    usage = {  # grant -> [(days ago, reads, rows)]
        _grant(client, world, population, "civil"): [(1, 3, 300), (10, 2, 50), (100, 7, 700)],
        _grant(client, world, population, "health"): [(0, 1, 10)],
        _grant(client, world, daily, "civil"): [(1, 4, 40)],
        _grant(client, world, health, "civil"): [(5, 5, 5)],
    }
    # an accepted correction makes a new version of the daily resource now: it does not make it fresh
    accepted = _object(client, world, daily, proposed={"2": {"population": 552000}})
    _answer(client, world.owner, accepted, "accept")
    rejected_late = _object(client, world, population)
    _answer(client, world.owner, rejected_late, "reject")
    open_late, open_in_time, old = (_object(client, world, population) for _n in range(3))
    clinic_objection = _object(client, world, health)
    _answer(client, world.other, clinic_objection, "reject")
    bad = loaded(client, world, weekly, data=CSV.replace("1187000", "很多"))  # newer, but invalid
    assert bad["valid"] is False

    with database.unit_of_work() as session:
        for grant_id, days in usage.items():
            for ago, reads, rows in days:
                session.add(
                    GrantUsage(grant_id=grant_id, day=today - timedelta(days=ago), reads=reads, rows=rows)
                )
        ids = dict(session.execute(select(Resource.code, Resource.id)).all())
        for code, age in ((daily, timedelta(hours=36)), (weekly, timedelta(days=20))):
            session.execute(
                update(Version)
                .where(Version.resource_id == ids[code], Version.number == 1)
                .values(loaded_at=now - age)
            )
        session.execute(
            update(Version)
            .where(Version.resource_id == ids["stats-irregular"])
            .values(loaded_at=now - timedelta(days=400))
        )
        for objection_id, values in (
            (rejected_late, {"due_at": now - timedelta(days=2)}),
            (open_late, {"due_at": now - timedelta(days=1)}),
            (old, {"created_at": now - timedelta(days=100), "due_at": now - timedelta(days=93)}),
        ):
            session.execute(update(Objection).where(Objection.id == objection_id).values(**values))
        for code, ago, channel, reads, rows in (
            (population, 0, "csv", 10, 30),
            (population, 0, "preview", 5, 100),
            (population, 2, "json", 2, 6),
            (population, 200, "csv", 99, 990),
            (health, 1, "ckan", 4, 40),
        ):
            day = today - timedelta(days=ago)
            session.add(OpenDownload(resource_id=ids[code], day=day, channel=channel, reads=reads, rows=rows))
    assert open_in_time
    return world, today


def _figures(client: TestClient, headers: dict[str, str], days: int = 90) -> dict[str, Any]:
    answer = client.get(f"{API}/insight", params={"days": days}, headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _nonzero(daily: list[dict[str, Any]], today: date) -> dict[int, tuple[int, int]]:
    """Days ago -> (reads, rows), for the days with reads."""
    return {(today - date.fromisoformat(d["day"])).days: (d["reads"], d["rows"]) for d in daily if d["reads"]}


def _ranked(rows: list[dict[str, Any]], key: str, *fields: str) -> list[tuple[Any, ...]]:
    return [(row[key], *(row[field] for field in fields)) for row in rows]


def test_the_operator_sees_the_citys_figures(client: TestClient, database: Database) -> None:
    world, today = _seed(client, database)
    city = _figures(client, world.operator)
    assert city["scope"] == "city" and city["departments"] == []
    assert city["period"] == {
        "first": (today - timedelta(days=89)).isoformat(),
        "last": today.isoformat(),
        "days": 90,
    }

    use = city["use"]
    assert (use["reads"], use["rows"], use["resources"], use["consumers"]) == (15, 405, 3, 2)
    assert _ranked(use["top_resources"], "resource", "provider", "reads", "rows", "consumers") == [
        ("stats-population", "stats", 6, 360, 2),
        ("health-clinics", "health", 5, 5, 1),
        ("stats-daily", "stats", 4, 40, 1),
    ]
    assert _ranked(use["top_consumers"], "department", "reads", "rows", "resources") == [
        ("civil", 14, 395, 3),
        ("health", 1, 10, 1),
    ]
    assert len(use["daily"]) == 90
    assert _nonzero(use["daily"], today) == {0: (1, 10), 1: (7, 340), 5: (5, 5), 10: (2, 50)}

    freshness = city["freshness"]
    assert (freshness["fresh"], freshness["due"], freshness["stale"]) == (3, 1, 1)
    assert _ranked(freshness["departments"], "department", "fresh", "due", "stale") == [
        ("health", 1, 0, 0),
        ("stats", 2, 1, 1),  # the draft is not counted
    ]
    attention = freshness["attention"]
    assert _ranked(attention, "resource", "update_cycle", "state") == [
        ("stats-weekly", "weekly", "stale"),  # its newer load is invalid
        ("stats-daily", "daily", "due"),  # its newer version is a correction
    ]
    loaded_at = datetime.fromisoformat(attention[0]["last_loaded_at"])
    assert timedelta(days=19) < datetime.now(UTC) - loaded_at < timedelta(days=21)

    corrections = city["corrections"]
    assert {name: corrections[name] for name in ("filed", "accepted", "rejected", "open", "late")} == {
        "filed": 5, "accepted": 1, "rejected": 2, "open": 2, "late": 2,
    }  # fmt: skip
    assert _ranked(
        corrections["departments"], "department", "filed", "accepted", "rejected", "open", "late"
    ) == [
        ("health", 1, 0, 1, 0, 0),
        ("stats", 4, 1, 1, 2, 2),  # the objection of 100 days ago is outside the period
    ]

    downloads = city["downloads"]
    assert (downloads["reads"], downloads["rows"]) == (21, 176)
    assert _ranked(downloads["channels"], "channel", "reads", "rows") == [
        ("csv", 10, 30),
        ("preview", 5, 100),
        ("ckan", 4, 40),
        ("json", 2, 6),
    ]
    assert _ranked(downloads["top_resources"], "resource", "reads", "rows") == [
        ("stats-population", 17, 136),
        ("health-clinics", 4, 40),
    ]
    by_day = {(today - date.fromisoformat(d["day"])).days: d for d in downloads["daily"] if d["reads"]}
    assert {ago: (d["reads"], d["rows"], d["channels"]) for ago, d in by_day.items()} == {
        0: (15, 130, {"csv": 10, "preview": 5}),
        1: (4, 40, {"ckan": 4}),
        2: (2, 6, {"json": 2}),
    }

    year = _figures(client, world.operator, days=365)
    assert (year["use"]["reads"], year["use"]["rows"]) == (22, 1105)
    assert (year["corrections"]["filed"], year["corrections"]["open"], year["corrections"]["late"]) == (
        6,
        3,
        3,
    )
    assert (year["downloads"]["reads"], year["downloads"]["rows"]) == (120, 1166)
    week = _figures(client, world.operator, days=1)
    assert (week["use"]["reads"], week["downloads"]["reads"], len(week["use"]["daily"])) == (1, 15, 1)


def test_department_staff_see_their_own_departments_only(client: TestClient, database: Database) -> None:
    world, _today = _seed(client, database)

    stats = _figures(client, world.owner)
    assert stats["scope"] == "departments" and stats["departments"] == ["stats"]
    assert (stats["use"]["reads"], stats["use"]["rows"], stats["use"]["resources"]) == (10, 400, 2)
    assert _ranked(stats["use"]["top_consumers"], "department", "reads", "rows", "resources") == [
        ("civil", 9, 390, 2),
        ("health", 1, 10, 1),
    ]
    assert [row["department"] for row in stats["freshness"]["departments"]] == ["stats"]
    assert [row["department"] for row in stats["corrections"]["departments"]] == ["stats"]
    assert (stats["downloads"]["reads"], stats["downloads"]["rows"]) == (17, 136)

    civil = _figures(client, world.consumer)  # provides nothing: only what it read
    assert (civil["use"]["reads"], civil["use"]["rows"]) == (14, 395)
    assert _ranked(civil["use"]["top_resources"], "resource", "reads", "consumers") == [
        ("health-clinics", 5, 1),
        ("stats-population", 5, 1),  # health's reads of it are not civil's business
        ("stats-daily", 4, 1),
    ]
    assert [row["department"] for row in civil["use"]["top_consumers"]] == ["civil"]
    assert (civil["freshness"]["fresh"], civil["freshness"]["stale"], civil["freshness"]["attention"]) == (
        0,
        0,
        [],
    )
    assert civil["corrections"]["filed"] == 0 and civil["downloads"]["reads"] == 0

    health = _figures(client, world.other)  # reads stats' data, provides the clinics read by civil affairs
    assert (health["use"]["reads"], health["use"]["rows"]) == (6, 15)
    assert _ranked(health["use"]["top_consumers"], "department", "reads") == [("civil", 5), ("health", 1)]
    assert (health["freshness"]["fresh"], health["corrections"]["filed"], health["downloads"]["reads"]) == (
        1,
        1,
        4,
    )

    assert client.get(f"{API}/insight", headers=world.resident).status_code == 403
    assert client.get(f"{API}/insight").status_code == 401
    assert client.get(f"{API}/insight", params={"days": 0}, headers=world.operator).status_code == 422


CHART_DATA = re.compile(r'<script type="application/json" id="exchange-insight-data">(.*?)</script>', re.S)


def _chart(page: str) -> dict[str, Any]:
    found = CHART_DATA.search(page)
    assert found, "the page has no chart data"
    return dict(json.loads(found.group(1)))


def test_the_dashboard_shows_the_figures_as_charts_and_tables(client: TestClient, database: Database) -> None:
    world, _today = _seed(client, database)

    as_user(client, "operator1")
    page = page_of(client, f"{INSIGHT}?days=365").text
    assert "/static/vendor/echarts/echarts.min.js" in page and "/static/js/exchange-insight.js" in page
    chart = _chart(page)
    assert chart["figures"] == _figures(client, world.operator, days=365)  # the API's figures, embedded
    assert chart["labels"]["channels"]["ckan"] == "CKAN datastore"
    for chart_id in ("insight-use-daily", "insight-use-resources", "insight-freshness", "insight-corrections",
                     "insight-downloads"):  # fmt: skip
        assert f'id="{chart_id}"' in page
    top = page[page.index('data-testid="top-resources"') :]
    assert "stats-population" in top and "<td>13</td><td>1060</td><td>2</td>" in top
    attention = page[page.index('data-testid="freshness-attention"') :]
    assert attention.index("stats-weekly") < attention.index("stats-daily") and "Stale" in attention
    corrections = page[page.index('data-testid="corrections"') :]
    assert '<td>5</td><td>1</td><td>1</td><td>3</td><td class="rate-poor">3</td>' in corrections  # the year
    assert 'value="365" selected' in page
    assert f'href="{INSIGHT}"' in page_of(client, "/").text  # the operator's tile

    as_user(client, "health1")
    mine = page_of(client, INSIGHT).text
    assert _chart(mine)["figures"]["departments"] == ["health"] and "stats-weekly" not in mine
    as_user(client, "stats1")
    assert f'href="{INSIGHT}"' in page_of(client, CONSOLE).text  # the console links to it
    as_user(client, "resident")
    assert client.get(INSIGHT, headers=HTML).status_code == 403
    as_user(client, None)
    anonymous = client.get(INSIGHT, headers=HTML, follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


def test_corrections_are_handled_in_the_console(client: TestClient, database: Database) -> None:
    world = build_exchange(client, database)
    code = published(client, world, **UNCONDITIONAL)
    proposed = _object(client, world, code, proposed={"2": {"population": 552000}}, evidence="2025年统计公报")
    bare = _object(client, world, code, rows=[1], claim="西湖区人口有误")
    overdue = _object(client, world, code, rows=[3], claim="上城区调查日期有误")
    with database.unit_of_work() as session:
        session.execute(
            update(Objection).where(Objection.id == overdue).values(due_at=utcnow() - timedelta(days=1))
        )
    answer = f"{CONSOLE}/objections/{{}}/answer"

    as_user(client, "stats1")
    console = page_of(client, CONSOLE).text
    assert "Corrections to handle" in console
    for objection_id in (proposed, bare, overdue):
        assert f'id="objection-{objection_id}"' in console
    first = console[console.index(f'id="objection-{proposed}"') : console.index(f'id="objection-{bare}"')]
    assert "滨江区人口有误" in first and "2025年统计公报" in first and "常住人口</span> = 552000" in first
    assert ">2,population,552000\n</textarea>" in first and "Overdue" not in first
    assert f'href="{CONSOLE}/resources/{code}/quality"' in first
    late = console[console.index(f'id="objection-{overdue}"') :]
    assert "Overdue" in late[: late.index("</dl>")]

    no_reason = post_form(client, CONSOLE, answer.format(proposed), {"decision": "accept", "reason": " "})
    assert no_reason.status_code == 422 and "Give the reason (the department is told)." in no_reason.text
    refused = no_reason.text
    assert refused.index('role="alert"') > refused.index(f'id="objection-{proposed}"')  # next to its form
    garbled = {"decision": "accept", "reason": "核实", "corrections": "2;population"}
    wrong = post_form(client, CONSOLE, answer.format(proposed), garbled)
    assert (
        wrong.status_code == 422
        and "Write each corrected value as row,item,value: 2;population" in wrong.text
    )
    accepted = post_form(
        client,
        CONSOLE,
        answer.format(proposed),
        {"decision": "accept", "reason": "已核实", "corrections": "2,population,552000\n"},
    )
    assert accepted.status_code == 303 and accepted.headers["location"] == f"{CONSOLE}#corrections"
    assert "The correction is accepted" in page_of(client, CONSOLE).text
    rows = client.get(f"{API}/resources/{code}/rows", headers=world.owner).json()
    assert rows["version"] == 2 and [row["population"] for row in rows["rows"]] == [1187000, 552000, 1326000]

    nothing = post_form(client, CONSOLE, answer.format(bare), {"decision": "accept", "reason": "对"})
    assert nothing.status_code == 422 and "Give the corrected values." in nothing.text
    not_a_number = {"decision": "accept", "reason": "对", "corrections": "1,population,很多"}
    assert post_form(client, CONSOLE, answer.format(bare), not_a_number).status_code == 422
    rejected = post_form(client, CONSOLE, answer.format(bare), {"decision": "reject", "reason": "数据为最新"})
    assert rejected.status_code == 303
    remaining = page_of(client, CONSOLE).text
    assert f'id="objection-{bare}"' not in remaining and f'id="objection-{overdue}"' in remaining
    again = post_form(client, CONSOLE, answer.format(bare), {"decision": "reject", "reason": "x"})
    assert again.status_code == 409 and "This objection has been answered." in again.text
    no_token = client.post(answer.format(overdue), data={"decision": "reject", "reason": "x"}, headers=HTML)
    assert no_token.status_code == 403

    as_user(client, "health1")  # manages its own resources, not these
    stranger = post_form(client, CONSOLE, answer.format(overdue), {"decision": "reject", "reason": "x"})
    assert stranger.status_code == 404

    as_user(client, "civil1")
    reported = page_of(client, CONSOLE).text
    table = reported[reported.index('data-testid="objections-filed"') :]
    for objection_id, state in ((proposed, "Corrected"), (bare, "Not corrected"), (overdue, "Unanswered")):
        row = table[table.index(f'id="filed-{objection_id}"') :]
        assert state in row[: row.index("</tr>")]
    assert "Corrected in version 2" in table and "数据为最新" in table
    quality = page_of(client, f"{CONSOLE}/resources/{code}/quality").text
    scores = quality[quality.index('data-testid="quality"') :]
    assert "<dd>85</dd>" in scores  # 100 - 5 (a correction) - 10 (one unanswered past its deadline)
    assert quality.count('<tr id="objection-') == 3


def test_a_resource_is_registered_and_published_through_the_console(
    client: TestClient, database: Database
) -> None:
    world = build_exchange(client, database)
    register = f"{CONSOLE}/register"
    items = "district,区县,string,required\nyear,年份,integer,是\npopulation,常住人口,integer,yes\n"
    items += "elderly_share,老年人口占比,number\nsurveyed_on,调查日期,date\n"
    form = {
        "provider": "stats",
        "code": "stats-new",
        "name": "各区常住人口",
        "classification": "人口 / 常住人口 / 区县",
        "summary": "年度数据",
        "format": "csv",
        "data_items": items,
        "sharing_class": "conditional",
        "sharing_condition": "",
        "open_class": "open",
        "update_cycle": "yearly",
        "keywords": "人口，老龄化, 区县",
    }

    as_user(client, "stats1")
    assert f'href="{register}"' in page_of(client, CONSOLE).text
    assert '<option value="stats"' in page_of(client, register).text
    garbled = post_form(client, register, register, {**form, "data_items": "population"})
    assert (
        garbled.status_code == 422 and "Data items, line 1: write name,title,type,required." in garbled.text
    )
    assert 'value="各区常住人口"' in garbled.text  # the form is kept
    wrong_type = post_form(client, register, register, {**form, "data_items": "district,区县,text"})
    assert wrong_type.status_code == 422 and "data_items.0.type" in wrong_type.text
    no_condition = post_form(client, register, register, form)
    assert no_condition.status_code == 422 and "needs its condition" in no_condition.text
    made = post_form(client, register, register, {**form, "sharing_condition": "用于养老服务规划"})
    page = f"{CONSOLE}/resources/stats-new"
    assert made.status_code == 303 and made.headers["location"] == page
    entry = client.get(f"{API}/resources/stats-new", headers=world.owner).json()
    assert entry["status"] == "draft" and entry["classification"] == ["人口", "常住人口", "区县"]
    assert entry["keywords"] == ["人口", "老龄化", "区县"] and entry["update_cycle"] == "yearly"
    assert [(item["name"], item["type"], item["required"]) for item in entry["data_items"]] == [
        ("district", "string", True),
        ("year", "integer", True),
        ("population", "integer", True),
        ("elderly_share", "number", False),
        ("surveyed_on", "date", False),
    ]
    taken = post_form(client, register, register, {**form, "sharing_condition": "x"})
    assert taken.status_code == 409 and "exists already" in taken.text

    status = f"{page}/status"
    too_early = post_form(client, page, status, {"status": "published"})
    assert (
        too_early.status_code == 409 and "Load valid data before publishing the resource." in too_early.text
    )
    assert loaded(client, world, "stats-new")["valid"]
    publish = post_form(client, page, status, {"status": "published"})
    assert publish.status_code == 303 and publish.headers["location"] == page
    shown = page_of(client, page).text
    assert "The resource is published." in shown and 'value="retired"' in shown
    assert client.get(f"{API}/resources/stats-new", headers=world.owner).json()["status"] == "published"
    assert post_form(client, page, status, {"status": "retired"}).status_code == 303
    assert client.get(f"{API}/resources/stats-new", headers=world.owner).json()["status"] == "retired"

    as_user(client, "civil1")  # staff of another department
    assert post_form(client, CONSOLE, status, {"status": "published"}).status_code == 403
    stranger = {**form, "code": "civil-x", "sharing_condition": "x"}  # for the statistics bureau
    assert post_form(client, register, register, stranger).status_code == 403
    as_user(client, "resident")
    assert client.get(register, headers=HTML).status_code == 403
