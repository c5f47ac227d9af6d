"""Applications to use conditionally open data (有条件开放): a person applies, the owner's staff are told and
answer within working days (approve, perhaps for fewer days, or reject with a reason), the applicant is
told and, while the approval is in force, downloads the data — audited with its row count; one pending
application per person and resource; who may do what (both databases, API and pages)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.api import exchange_settings
from cityhub.domains.exchange.models import OpenApplication, Resource
from cityhub.domains.exchange.service import applications
from cityhub.domains.identity import account_id_of
from cityhub.domains.identity.service.accounts import principal_for_account
from cityhub.kernel.models import AuditRecord
from cityhub.kernel.workdays import workday_deadline
from tests.domains.exchange.world import API, Exchange, account, build_exchange, notices, published
from tests.factories import api_key_for
from tests.web.factories import HTML, as_user, page_of, post_form

CONDITIONAL = {"open_class": "conditional"}


def _apply(client, world: Exchange, code: str, headers: dict[str, str] | None = None, **overrides: Any):  # type: ignore[no-untyped-def]
    body = {"purpose": "研究养老服务布局", "organisation": "某大学", "days": 30, **overrides}
    return client.post(f"{API}/resources/{code}/applications", json=body, headers=headers or world.resident)


def _answer(client, application_id: int, headers: dict[str, str], **body: Any):  # type: ignore[no-untyped-def]
    return client.post(f"{API}/applications/{application_id}/answer", json=body, headers=headers)


def test_an_application_is_approved_and_its_applicant_downloads_the_data(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world, **CONDITIONAL)
    made = _apply(client, world, code)
    assert made.status_code == 201, made.text
    application = made.json()
    assert (application["status"], application["state"], application["applicant"]) == (
        "pending",
        "pending",
        "resident",
    )
    assert application["valid_until"] is None and application["in_force"] is False
    assert notices(database, "exchange.application") == [account(database, "stats1")]  # the owner's staff
    again = _apply(client, world, code)
    assert again.status_code == 409 and again.json()["type"].endswith("pending")

    url = f"{API}/applications/{application['id']}/rows.csv"
    refused = client.get(url, headers=world.resident)
    assert refused.status_code == 403 and refused.json()["type"].endswith("application-not-approved")
    for stranger in (world.consumer, world.resident):  # another department's staff; the applicant itself
        assert _answer(client, application["id"], stranger, decision="approve").status_code == 403
    assert _answer(client, application["id"], world.owner, decision="approve", days=31).status_code == 422
    queue = client.get(
        f"{API}/applications", params={"side": "owner", "status": "pending"}, headers=world.owner
    )
    assert [found["id"] for found in queue.json()] == [application["id"]]
    assert client.get(f"{API}/applications", params={"side": "owner"}, headers=world.other).json() == []

    before = datetime.now(UTC)
    approved = _answer(client, application["id"], world.owner, decision="approve", days=10)
    assert approved.status_code == 200, approved.text
    answer = approved.json()
    valid_until = datetime.fromisoformat(answer["valid_until"])
    assert answer["state"] == "approved" and answer["in_force"] is True
    assert before + timedelta(days=10) <= valid_until <= datetime.now(UTC) + timedelta(days=10)
    assert _answer(client, application["id"], world.owner, decision="reject", reason="x").status_code == 409
    assert notices(database, "exchange.application.answered") == [account(database, "resident")]

    download = client.get(url, headers=world.resident)
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert download.headers["cache-control"] == "private, no-store"
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert [(row["district"], row["population"]) for row in rows] == [
        ("西湖区", "1187000"),
        ("滨江区", "541000"),
        ("上城区", "1326000"),
    ]
    assert client.get(url, headers=world.consumer).json()["type"].endswith("no-application")  # someone else's
    assert client.get(url).status_code == 401
    with database.reading() as session:
        reads = session.scalars(
            select(AuditRecord).where(AuditRecord.action == "exchange.application.read")
        ).all()
        actions = set(
            session.scalars(
                select(AuditRecord.action).where(AuditRecord.object_type == "exchange_open_application")
            )
        )
    assert len(reads) == 1 and reads[0].details["rows"] == 3 and reads[0].object_id == str(application["id"])
    assert {"exchange.application.made", "exchange.application.approved"} <= actions

    with database.unit_of_work() as session:  # the owner's de-identification rules apply to applicants too
        rules = {"suppress": ["population", "surveyed_on"]}
        session.execute(update(Resource).where(Resource.code == code).values(open_rules=rules))
    opened = client.get(url, headers=world.resident).content.decode("utf-8-sig").splitlines()
    assert opened == [
        "district,year,elderly_share",
        "西湖区,2025,0.21",
        "滨江区,2025,0.12",
        "上城区,2025,0.24",
    ]
    mine = client.get(f"{API}/applications", headers=world.resident).json()
    assert [(found["id"], found["in_force"]) for found in mine] == [(application["id"], True)]
    with database.unit_of_work() as session:
        session.execute(update(OpenApplication).values(valid_until=datetime.now(UTC) - timedelta(seconds=1)))
    expired = client.get(url, headers=world.resident)
    assert expired.status_code == 403 and expired.json()["type"].endswith("application-expired")
    assert client.get(f"{API}/applications", headers=world.resident).json()[0]["state"] == "expired"


def test_applications_are_checked(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world, **CONDITIONAL)
    open_code = published(client, world, "stats-open")
    closed = published(client, world, "stats-closed", open_class="closed")
    assert _apply(client, world, open_code).json()["type"].endswith("open-data")  # no application needed
    assert _apply(client, world, closed).status_code == 404  # not on the portal
    assert _apply(client, world, "no-such-code").status_code == 404
    for bad in ({"purpose": "   "}, {"purpose": ""}, {"days": 0}, {"days": 366}, {"organisation": "x" * 201}):
        answer = _apply(client, world, code, **bad)
        assert answer.status_code == 422, (bad, answer.text)
    assert client.post(f"{API}/resources/{code}/applications", json={"purpose": "x"}).status_code == 401
    machine = {
        "X-API-Key": api_key_for(
            database, world.town, ("exchange.data.read",), organization_id=world.departments["civil"]
        )
    }
    assert _apply(client, world, code, headers=machine).json()["type"].endswith("person-only")

    made = _apply(client, world, code, days=365).json()
    assert _answer(client, made["id"], world.owner, decision="reject").status_code == 422  # needs its reason
    assert _answer(client, made["id"], world.owner, decision="reject", reason="  ").status_code == 422
    rejected = _answer(client, made["id"], world.owner, decision="reject", reason="用途不明确")
    assert rejected.json()["status"] == "rejected" and rejected.json()["reason"] == "用途不明确"
    url = f"{API}/applications/{made['id']}/rows.csv"
    assert client.get(url, headers=world.resident).json()["type"].endswith("application-not-approved")
    assert _apply(client, world, code).status_code == 201  # answered: a new application may follow
    operator_queue = client.get(
        f"{API}/applications", params={"side": "owner"}, headers=world.operator
    ).json()
    assert len(operator_queue) == 2  # the operator acts for every department
    assert _answer(client, 999_999, world.owner, decision="approve").status_code == 404


def test_the_answer_is_due_in_working_days(client, database, settings) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world, **CONDITIONAL)
    before_holiday = datetime(2026, 9, 29, 10, 0, tzinfo=UTC)  # Tuesday before the National Day holiday
    data = schemas.ApplicationIn(purpose="研究", days=30)
    with database.unit_of_work() as session:
        resident = principal_for_account(session, account_id_of(session, "resident"))
        made = applications.apply(session, resident, code, data, before_holiday, "Asia/Shanghai", 5)
        due = made.due_at
    assert due == workday_deadline(before_holiday, 5, "Asia/Shanghai")
    assert due.date() > datetime(2026, 10, 8).date()  # five working days reach past the holiday week
    listed = client.get(f"{API}/applications", headers=world.resident).json()
    assert datetime.fromisoformat(listed[0]["due_at"]) == due
    days = exchange_settings().answer_working_days
    now = datetime.now(UTC)
    fresh = _apply(client, world, published(client, world, "stats-other", **CONDITIONAL)).json()
    expected = workday_deadline(now, days, "Asia/Shanghai")
    assert abs(datetime.fromisoformat(fresh["due_at"]) - expected) < timedelta(minutes=1)


def test_the_portal_lists_conditional_data_and_takes_applications(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world, **CONDITIONAL)
    as_user(client, None)
    portal = page_of(client, "/data")
    assert (
        code in portal.text
        and "Open on application" in portal.text
        and 'href="/data/requests"' in portal.text
    )
    anonymous = page_of(client, f"/data/{code}")
    assert "Log in to apply" in anonymous.text
    assert "滨江区" not in anonymous.text and f"/data/{code}.csv" not in anonymous.text  # no preview, no file
    assert client.get(f"/data/{code}.csv").status_code == 404

    as_user(client, "resident")
    dataset = page_of(client, f"/data/{code}")
    assert 'id="application-form"' in dataset.text and "滨江区" not in dataset.text
    empty = post_form(client, f"/data/{code}", f"/data/{code}/applications", {"purpose": " ", "days": "30"})
    assert empty.status_code == 422 and 'role="alert"' in empty.text
    sent = post_form(
        client, f"/data/{code}", f"/data/{code}/applications", {"purpose": "课题研究", "days": "30"}
    )
    assert sent.status_code == 303 and sent.headers["location"] == "/data/me/applications"
    mine = page_of(client, "/data/me/applications")
    assert (
        "课题研究" in mine.text and "Waiting for an answer" in mine.text and "Download CSV" not in mine.text
    )
    with database.reading() as session:
        application_id = session.scalars(select(OpenApplication.id)).one()
    assert client.get(f"/data/me/applications/{application_id}.csv", headers=HTML).status_code == 403

    as_user(client, "stats1")
    console = page_of(client, "/console/exchange")
    assert 'id="applications"' in console.text and "课题研究" in console.text and "resident" in console.text
    action = f"/console/exchange/applications/{application_id}/answer"
    refused = post_form(client, "/console/exchange", action, {"decision": "approve", "days": "31"})
    assert refused.status_code == 422 and f'id="application-{application_id}"' in refused.text
    approved = post_form(client, "/console/exchange", action, {"decision": "approve", "days": "7"})
    assert approved.status_code == 303 and approved.headers["location"].endswith("#applications")
    assert "课题研究" not in page_of(client, "/console/exchange").text  # answered: off the queue

    as_user(client, "civil1")  # staff of another department: no such queue, no answer
    assert "课题研究" not in page_of(client, "/console/exchange").text
    assert (
        post_form(client, "/console/exchange", action, {"decision": "reject", "reason": "x"}).status_code
        == 403
    )

    as_user(client, "resident")
    mine = page_of(client, "/data/me/applications")
    assert "Approved" in mine.text and f"/data/me/applications/{application_id}.csv" in mine.text
    assert f"/data/me/applications/{application_id}.csv" in page_of(client, f"/data/{code}").text
    download = client.get(f"/data/me/applications/{application_id}.csv")
    assert download.status_code == 200
    assert (
        download.content.decode("utf-8-sig").splitlines()[0]
        == "district,year,population,elderly_share,surveyed_on"
    )
    as_user(client, "civil1")
    assert client.get(f"/data/me/applications/{application_id}.csv", headers=HTML).status_code == 403
