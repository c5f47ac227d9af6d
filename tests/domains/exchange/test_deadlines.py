"""Owners' answer deadlines (both databases): a pending request is reminded once a day before its deadline
and escalated once past it, to the owner's staff and then the operator too; an application found already
past its deadline is escalated without a reminder; answered cases are left alone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from cityhub.domains.exchange.models import OpenApplication, Request
from cityhub.domains.exchange.service import deadlines
from cityhub.kernel.models import AuditRecord
from tests.domains.exchange.world import API, account, build_exchange, notices, published

TZ = "Asia/Shanghai"


def _chase(database, at) -> int:  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        return deadlines.chase(session, at, TZ)


def test_a_pending_request_is_reminded_then_escalated_once(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world)  # conditionally shared: the owner must answer
    body = {"consumer": "civil", "purpose": "养老服务规划", "fields": ["district"]}
    made = client.post(f"{API}/resources/{code}/requests", json=body, headers=world.consumer)
    assert made.status_code == 201, made.text
    with database.reading() as session:
        due = session.scalars(select(Request.due_at)).one()
    owner, operator = account(database, "stats1"), account(database, "operator1")

    assert _chase(database, due - timedelta(days=2)) == 0  # not yet
    assert _chase(database, due - timedelta(hours=12)) == 1
    assert notices(database, "exchange.request.reminder") == [owner]
    assert _chase(database, due - timedelta(hours=1)) == 0  # reminded once
    assert _chase(database, due + timedelta(minutes=1)) == 1
    assert notices(database, "exchange.request.overdue") == sorted([owner, operator])
    assert _chase(database, due + timedelta(days=3)) == 0  # escalated once
    with database.reading() as session:
        escalations = session.scalars(
            select(AuditRecord.object_id).where(AuditRecord.action == "exchange.request.escalated")
        ).all()
    assert escalations == [str(made.json()["id"])]


def test_an_application_past_due_is_escalated_not_reminded_and_answered_ones_are_left(
    client, database
) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world, open_class="conditional")
    body = {"purpose": "研究养老服务布局", "days": 30}
    first = client.post(f"{API}/resources/{code}/applications", json=body, headers=world.resident)
    assert first.status_code == 201, first.text
    with database.reading() as session:
        due = session.scalars(select(OpenApplication.due_at)).one()
    assert _chase(database, due + timedelta(days=1)) == 1
    assert notices(database, "exchange.application.reminder") == []
    assert len(notices(database, "exchange.application.overdue")) == 2  # the owner's staff and the operator

    second = published(client, world, "stats-second", open_class="conditional")
    applied = client.post(f"{API}/resources/{second}/applications", json=body, headers=world.resident).json()
    answer = {"decision": "reject", "reason": "数据正在整理"}
    assert (
        client.post(
            f"{API}/applications/{applied['id']}/answer", json=answer, headers=world.owner
        ).status_code
        == 200
    )
    assert _chase(database, due + timedelta(days=30)) == 0  # answered: nothing to chase
