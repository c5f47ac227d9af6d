"""The correction loop: a consumer reports wrong rows; the owner accepts, a corrected version becomes
current and both consumers holding grants are told (notice and event); a rejection needs a reason; the
resource shows its history and quality score; an objection past its deadline — in working days, across
the National Day holiday — is escalated once (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from cityhub.domains.exchange.models import Objection
from cityhub.domains.exchange.service import corrections
from cityhub.kernel.models import OutboxEvent
from cityhub.kernel.workdays import workday_deadline
from tests.domains.exchange.world import API, Exchange, build_exchange, notices, published
from tests.factories import make_user


def _grant(client, world: Exchange, code: str, headers: dict[str, str], consumer: str) -> None:  # type: ignore[no-untyped-def]
    body = {"consumer": consumer, "purpose": "业务", "fields": ["district", "population"]}
    made = client.post(f"{API}/resources/{code}/requests", json=body, headers=headers)
    assert made.status_code == 201 and made.json()["status"] == "approved", made.text


def test_an_accepted_correction_makes_a_new_version_and_tells_every_consumer(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world, sharing_class="unconditional", sharing_condition=None)
    _grant(client, world, code, world.consumer, "civil")
    _grant(client, world, code, world.other, "health")
    report = {"filer": "civil", "rows": [2], "claim": "滨江区人口有误", "evidence": "2025年统计公报",
              "proposed": {"2": {"population": 552000}}}  # fmt: skip
    filed = client.post(f"{API}/resources/{code}/objections", json=report, headers=world.consumer)
    assert filed.status_code == 201, filed.text
    objection = filed.json()
    assert objection["status"] == "open" and objection["version"] == 1
    assert len(notices(database, "exchange.objection.filed")) == 1  # the owner's staff member
    refused = client.post(
        f"{API}/objections/{objection['id']}/answer",
        json={"decision": "accept", "reason": "x"},
        headers=world.consumer,
    )
    assert refused.status_code == 404  # only the owner answers
    accepted = client.post(
        f"{API}/objections/{objection['id']}/answer",
        json={"decision": "accept", "reason": "已核实，按公报更正"},
        headers=world.owner,
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["corrected_version"] == 2
    entry = client.get(f"{API}/resources/{code}", headers=world.owner).json()
    assert entry["current_version"] == 2 and entry["rows"] == 3
    rows = client.get(f"{API}/resources/{code}/rows", headers=world.owner).json()["rows"]
    assert [row["population"] for row in rows] == [1187000, 552000, 1326000]
    assert rows[1]["district"] == "滨江区"  # the other values of the row stay
    assert len(notices(database, "exchange.objection.corrected")) == 2  # civil and health staff
    assert notices(database, "exchange.objection.answered") != []  # the filer
    with database.reading() as session:
        event = session.scalars(
            select(OutboxEvent).where(OutboxEvent.type == "exchange.resource_corrected")
        ).one()
    assert event.payload == {"resource": code, "objection_id": objection["id"], "version": 2, "rows": [2]}
    quality = client.get(f"{API}/resources/{code}/quality").json()
    assert (quality["score"], quality["accepted"], quality["open"]) == (95, 1, 0)
    assert quality["history"][0]["status"] == "accepted"
    # The proposed values are rows' data: the owner and the filer see them, nobody else
    assert quality["history"][0]["proposed"] == {}
    for viewer in (world.owner, world.consumer):
        seen = client.get(f"{API}/resources/{code}/quality", headers=viewer).json()["history"][0]
        assert seen["proposed"] == {"2": {"population": 552000}}
    for viewer in (world.other, world.resident):
        assert (
            client.get(f"{API}/resources/{code}/quality", headers=viewer).json()["history"][0]["proposed"]
            == {}
        )
    again = client.post(
        f"{API}/objections/{objection['id']}/answer",
        json={"decision": "reject", "reason": "x"},
        headers=world.owner,
    )
    assert again.status_code == 409


def test_objections_are_checked_and_rejections_explained(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world)
    base = {"filer": "civil", "claim": "错误"}
    for body in (
        {**base, "rows": [9]},  # there are three rows
        {**base, "rows": [1], "proposed": {"2": {"population": 1}}},  # not a reported row
        {**base, "rows": [1], "proposed": {"1": {"income": 1}}},  # not a data item
        {**base, "rows": [1], "proposed": {"1": {"population": "many"}}},  # not a whole number
    ):
        answer = client.post(f"{API}/resources/{code}/objections", json=body, headers=world.consumer)
        assert answer.status_code in (403, 422), (body, answer.text)
    closed = published(client, world, "stats-closed", open_class="closed")
    anonymous_filer = {"rows": [1], "claim": "x"}  # a resource not open to all: only departments report
    assert (
        client.post(
            f"{API}/resources/{closed}/objections", json=anonymous_filer, headers=world.consumer
        ).status_code
        == 422
    )
    rules = {"suppress": ["surveyed_on"], "generalise": {"population": {"method": "bucket", "width": 100000}}}
    assert (
        client.put(f"{API}/resources/{code}/open-rules", json=rules, headers=world.owner).status_code == 200
    )
    # suppressed, generalised: the resident never saw them
    for hidden, value in (("surveyed_on", "2025-11-01"), ("population", 1187000)):
        probe = {"rows": [1], "claim": "x", "proposed": {"1": {hidden: value}}}
        answer = client.post(f"{API}/resources/{code}/objections", json=probe, headers=world.resident)
        assert answer.status_code == 422, answer.text
    as_resident = client.post(
        f"{API}/resources/{code}/objections",
        json={"rows": [1], "claim": "西湖区数据过时", "proposed": {"1": {"elderly_share": 0.22}}},
        headers=world.resident,
    )
    assert as_resident.status_code == 201, as_resident.text  # open data: residents may report
    objection_id = as_resident.json()["id"]
    bare = client.post(
        f"{API}/objections/{objection_id}/answer", json={"decision": "reject"}, headers=world.owner
    )
    assert bare.status_code == 422
    rejected = client.post(
        f"{API}/objections/{objection_id}/answer",
        json={"decision": "reject", "reason": "数据为最新"},
        headers=world.owner,
    )
    assert rejected.json()["status"] == "rejected" and rejected.json()["corrected_version"] is None
    nothing = client.post(
        f"{API}/resources/{code}/objections",
        json={"filer": "civil", "rows": [1], "claim": "x"},
        headers=world.consumer,
    ).json()
    no_values = client.post(
        f"{API}/objections/{nothing['id']}/answer",
        json={"decision": "accept", "reason": "对"},
        headers=world.owner,
    )
    assert no_values.status_code == 422  # accepting needs the corrected values


def test_an_overdue_objection_is_escalated_once_across_a_holiday(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    make_user(database, "operator2", [("operator", world.town.city)])
    code = published(client, world)
    report = {"filer": "civil", "rows": [1], "claim": "错误"}
    filed = client.post(f"{API}/resources/{code}/objections", json=report, headers=world.consumer).json()
    before_holiday = datetime(2026, 9, 29, 10, 0, tzinfo=UTC)  # Tuesday before the National Day holiday
    due = workday_deadline(before_holiday, 5, "Asia/Shanghai")
    assert due.date() > datetime(2026, 10, 8).date()  # five working days reach past the holiday week
    with database.unit_of_work() as session:
        objection = session.get_one(Objection, filed["id"])
        objection.created_at, objection.due_at = before_holiday, due
    holiday = datetime(2026, 10, 5, 10, 0, tzinfo=UTC)  # seven calendar days on, still within the deadline
    with database.unit_of_work() as session:
        assert corrections.escalate_overdue(session, holiday, "Asia/Shanghai") == 0
    late = due.replace(hour=23)
    with database.unit_of_work() as session:
        assert corrections.escalate_overdue(session, late, "Asia/Shanghai") == 1
    with database.unit_of_work() as session:
        assert corrections.escalate_overdue(session, late, "Asia/Shanghai") == 0  # once
    overdue = notices(database, "exchange.objection.overdue")
    assert len(overdue) == 3  # the owner's staff member, operator1 and operator2
    quality = client.get(f"{API}/resources/{code}/quality", headers=world.owner).json()
    assert quality["late"] == 1 and quality["history"][0]["escalated_at"] is not None
