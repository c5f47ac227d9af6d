"""Requests, grants and governed reads: unconditional resources are granted on request, conditional ones
wait for the owner's answer (which may narrow them); a grant never lets through a field or row outside it
(a property test over random restrictions); no grant, an expired or a revoked one is 403; every read is in
the audit chain, whose tampering `cityhub audit verify` finds (both databases)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from cityhub.cli.main import app as cli_app
from cityhub.domains.exchange.models import Grant
from cityhub.kernel.models import AuditRecord
from tests.domains.exchange.world import API, Exchange, build_exchange, published, registered
from tests.factories import api_key_for

DISTRICTS = ("西湖区", "滨江区", "上城区", "拱墅区")
FIELDS = ("district", "year", "population", "elderly_share", "surveyed_on")


def _ask(client, world: Exchange, code: str, **overrides: Any):  # type: ignore[no-untyped-def]
    body = {"consumer": "civil", "purpose": "养老服务规划", "fields": ["district", "population"], **overrides}
    return client.post(f"{API}/resources/{code}/requests", json=body, headers=world.consumer)


def _reader(database, world: Exchange, department: str = "civil") -> dict[str, str]:  # type: ignore[no-untyped-def]
    secret = api_key_for(
        database, world.town, ("exchange.data.read",), organization_id=world.departments[department]
    )
    return {"X-API-Key": secret}


def test_a_conditional_request_is_answered_narrower_and_read_through_its_grant(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world)
    asked = _ask(client, world, code, fields=["district", "population", "elderly_share"], days=30)
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert (
        request["status"] == "pending"
        and request["grant"] is None
        and request["due_at"] > request["purpose"][:0]
    )
    queue = client.get(f"{API}/requests", params={"status": "pending"}, headers=world.owner).json()
    assert [r["id"] for r in queue] == [request["id"]]
    answer = {
        "decision": "approve",
        "fields": ["district", "population"],
        "row_filter": [{"field": "population", "op": "gt", "value": 1_000_000}],
        "days": 10,
    }
    assert (
        client.post(f"{API}/requests/{request['id']}/answer", json=answer, headers=world.consumer).status_code
        == 403
    )
    answered = client.post(f"{API}/requests/{request['id']}/answer", json=answer, headers=world.owner)
    assert answered.status_code == 200, answered.text
    grant = answered.json()["grant"]
    assert grant["fields"] == ["district", "population"] and grant["state"] == "active"
    again = client.post(f"{API}/requests/{request['id']}/answer", json=answer, headers=world.owner)
    assert again.status_code == 409

    rows = client.get(f"{API}/grants/{grant['id']}/rows", headers=_reader(database, world)).json()
    assert rows["rows"] == [
        {"district": "西湖区", "population": 1187000},
        {"district": "上城区", "population": 1326000},
    ]
    usage = client.get(f"{API}/grants/{grant['id']}/usage", headers=world.owner).json()
    assert [(u["reads"], u["rows"]) for u in usage] == [(1, 2)]
    with database.reading() as session:
        evidence = session.scalars(
            select(AuditRecord).where(AuditRecord.action == "exchange.grant.read")
        ).all()
    assert (
        len(evidence) == 1
        and evidence[0].details["rows"] == 2
        and len(evidence[0].details["request_sha256"]) == 64
    )


def test_widening_and_unknown_fields_are_refused(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world)
    assert _ask(client, world, code, fields=["income"]).status_code == 422
    assert (
        _ask(client, world, code, row_filter=[{"field": "year", "op": "eq", "value": "x"}]).status_code == 422
    )
    assert (
        _ask(client, world, code, row_filter=[{"field": "year", "op": "in", "value": 2025}]).status_code
        == 422
    )
    assert _ask(client, world, code, consumer="health").status_code == 403  # not the caller's department
    request = _ask(client, world, code).json()
    wider = {"decision": "approve", "fields": ["district", "population", "year"]}
    assert (
        client.post(f"{API}/requests/{request['id']}/answer", json=wider, headers=world.owner).status_code
        == 422
    )
    bare = client.post(
        f"{API}/requests/{request['id']}/answer", json={"decision": "reject"}, headers=world.owner
    )
    assert bare.status_code == 422  # a rejection needs its reason
    rejected = client.post(
        f"{API}/requests/{request['id']}/answer",
        json={"decision": "reject", "reason": "用途不符"},
        headers=world.owner,
    )
    assert rejected.json()["status"] == "rejected" and rejected.json()["grant"] is None
    own = client.post(
        f"{API}/resources/{code}/requests",
        json={"consumer": "stats", "purpose": "x", "fields": ["district"]},
        headers=world.owner,
    )
    assert own.status_code in (403, 409)


def test_the_grant_matrix_denies_by_default(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world, sharing_class="unconditional", sharing_condition=None)
    granted = _ask(client, world, code).json()
    assert granted["status"] == "approved" and granted["grant"]["state"] == "active"  # unconditional: at once
    grant_id = granted["grant"]["id"]
    civil, health = _reader(database, world), _reader(database, world, "health")
    assert client.get(f"{API}/grants/{grant_id}/rows", headers=civil).status_code == 200
    assert client.get(f"{API}/grants/{grant_id}/rows", headers=health).status_code == 403  # not its grant
    assert client.get(f"{API}/grants/{grant_id}/rows", headers=world.resident).status_code == 403
    assert client.get(f"{API}/grants/999999/rows", headers=civil).status_code == 403  # no grant at all
    assert client.get(f"{API}/grants/{grant_id}/rows").status_code == 401
    with database.unit_of_work() as session:
        session.execute(update(Grant).values(valid_until=datetime.now(UTC) - timedelta(seconds=1)))
    expired = client.get(f"{API}/grants/{grant_id}/rows", headers=civil)
    assert expired.status_code == 403 and expired.json()["type"].endswith("grant-expired")
    with database.unit_of_work() as session:
        session.execute(update(Grant).values(valid_until=datetime.now(UTC) + timedelta(days=1)))
    assert (
        client.post(
            f"{API}/grants/{grant_id}/revoke", json={"reason": "x"}, headers=world.consumer
        ).status_code
        == 403
    )
    revoked = client.post(f"{API}/grants/{grant_id}/revoke", json={"reason": "业务结束"}, headers=world.owner)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    denied = client.get(f"{API}/grants/{grant_id}/rows", headers=civil)
    assert denied.status_code == 403 and denied.json()["type"].endswith("grant-revoked")
    assert (
        client.post(
            f"{API}/grants/{grant_id}/revoke", json={"reason": "again"}, headers=world.owner
        ).status_code
        == 409
    )
    closed = published(client, world, "stats-secret", sharing_class="none", legal_basis="《统计法》第九条")
    assert _ask(client, world, closed).status_code == 409


def test_tampering_with_an_access_record_is_detected(client, database, settings) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world, sharing_class="unconditional", sharing_condition=None)
    grant_id = _ask(client, world, code).json()["grant"]["id"]
    reader = _reader(database, world)
    for _ in range(2):
        assert client.get(f"{API}/grants/{grant_id}/rows", headers=reader).status_code == 200
    assert CliRunner().invoke(cli_app, ["audit", "verify"]).exit_code == 0
    with database.reading() as session:
        first_read = session.scalars(
            select(AuditRecord.id).where(AuditRecord.action == "exchange.grant.read").order_by(AuditRecord.id)
        ).first()
    with database.engine.begin() as connection:  # someone hides how many rows were read
        connection.execute(
            text("UPDATE kernel_audit_record SET details = :d WHERE id = :id"),
            {"d": '{"rows": 0, "request_sha256": "0"}', "id": first_read},
        )
    verified = CliRunner().invoke(cli_app, ["audit", "verify"])
    assert verified.exit_code == 1 and f"#{first_read}" in verified.output


ROWS = [
    {
        "district": DISTRICTS[n % 4],
        "year": 2020 + n % 5,
        "population": 1000 * (n + 1),
        "elderly_share": round(0.05 * (n % 7), 2),
        "surveyed_on": f"2025-{n % 12 + 1:02d}-01",
    }
    for n in range(40)
]
CONDITIONS = st.one_of(
    st.builds(lambda d: {"field": "district", "op": "eq", "value": d}, st.sampled_from(DISTRICTS)),
    st.builds(
        lambda d: {"field": "district", "op": "in", "value": d},
        st.lists(st.sampled_from(DISTRICTS), min_size=1),
    ),
    st.builds(
        lambda op, v: {"field": "year", "op": op, "value": v},
        st.sampled_from(("eq", "ne", "lt", "le", "gt", "ge")),
        st.integers(2019, 2025),
    ),
    st.builds(
        lambda op, v: {"field": "elderly_share", "op": op, "value": v},
        st.sampled_from(("lt", "ge")),
        st.floats(0, 0.3),
    ),
    st.builds(
        lambda v: {"field": "surveyed_on", "op": "ge", "value": v},
        st.sampled_from(("2025-03-01", "2025-10-01")),
    ),
)
TESTS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "in": lambda a, b: a in b,
}


def _meets(row: dict[str, Any], conditions: list[dict[str, Any]]) -> bool:
    return all(TESTS[c["op"]](row[c["field"]], c["value"]) for c in conditions)


def test_a_grant_never_leaks_a_field_or_a_row(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world, sharing_class="unconditional", sharing_condition=None)
    loaded = client.post(f"{API}/resources/{code}/versions", json=ROWS, headers=world.owner)
    assert loaded.status_code == 201 and loaded.json()["valid"], loaded.text
    reader = _reader(database, world)

    @hypothesis_settings(
        max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        fields=st.lists(st.sampled_from(FIELDS), min_size=1, unique=True),
        conditions=st.lists(CONDITIONS, max_size=3),
        page=st.integers(1, 15),
    )
    def read_through(fields: list[str], conditions: list[dict[str, Any]], page: int) -> None:
        with database.unit_of_work() as session:
            session.execute(update(Grant).values(revoked_at=datetime.now(UTC)))  # one grant at a time
        made = _ask(client, world, code, fields=fields, row_filter=conditions)
        assert made.status_code == 201, made.text
        grant_id = made.json()["grant"]["id"]
        seen: list[dict[str, Any]] = []
        after = 0
        while True:
            answer = client.get(
                f"{API}/grants/{grant_id}/rows", params={"after": after, "limit": page}, headers=reader
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            seen += body["rows"]
            if body["next_after"] is None:
                break
            after = body["next_after"]
        expected = [{name: row[name] for name in fields} for row in ROWS if _meets(row, conditions)]
        assert all(set(row) == set(fields) for row in seen)  # no column beyond the grant
        assert seen == expected  # every row the grant allows, and no other

    read_through()


def test_a_grant_exports_its_rows_as_csv(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    code = published(client, world, sharing_class="unconditional", sharing_condition=None)
    made = _ask(client, world, code, row_filter=[{"field": "district", "op": "ne", "value": "滨江区"}]).json()
    grant_id = made["grant"]["id"]
    reader = _reader(database, world)
    exported = client.get(f"{API}/grants/{grant_id}/rows.csv", headers=reader)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert lines == ["district,population", "西湖区,1187000", "上城区,1326000"]
    assert (
        client.get(
            f"{API}/grants/{grant_id}/rows.csv", headers=_reader(database, world, "health")
        ).status_code
        == 403
    )
    usage = client.get(f"{API}/grants/{grant_id}/usage", headers=world.consumer).json()
    assert [(u["reads"], u["rows"]) for u in usage] == [(1, 2)]


def test_a_csv_export_quotes_and_writes_values_alike_on_either_database(client, database) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL writes the file with COPY, SQLite with the csv module: the same bytes either way."""
    world = build_exchange(client, database)
    items = [
        {"name": "name", "title": "名称", "type": "string", "required": True},
        {"name": "active", "title": "在用", "type": "boolean"},
        {"name": "amount", "title": "金额", "type": "number"},
        {"name": "note", "title": "备注", "type": "string"},
    ]
    code = registered(
        client, world, "stats-tricky", data_items=items, sharing_class="unconditional", sharing_condition=None
    )
    rows = [
        {"name": "甲, 乙", "active": True, "amount": 0.25, "note": 'say "hi"'},
        {"name": "两行\n文字", "active": False, "amount": 12, "note": None},
        {"name": "plain", "active": None, "amount": -3.5, "note": "末尾"},
    ]
    loaded_version = client.post(
        f"{API}/resources/{code}/versions",
        content=json.dumps(rows).encode(),
        headers={**world.owner, "Content-Type": "application/json"},
    )
    assert loaded_version.status_code == 201 and loaded_version.json()["valid"], loaded_version.text
    client.post(f"{API}/resources/{code}/status", json={"status": "published"}, headers=world.owner)
    grant_id = _ask(client, world, code, fields=["name", "active", "amount", "note"]).json()["grant"]["id"]
    exported = client.get(f"{API}/grants/{grant_id}/rows.csv", headers=_reader(database, world))
    assert exported.status_code == 200, exported.text
    assert exported.content.decode("utf-8") == (
        "\ufeffname,active,amount,note\n"
        '"甲, 乙",true,0.25,"say ""hi"""\n'
        '"两行\n文字",false,12,\n'
        "plain,,-3.5,末尾\n"
    )
    assert list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig")))) == [
        ["name", "active", "amount", "note"],
        ["甲, 乙", "true", "0.25", 'say "hi"'],
        ["两行\n文字", "false", "12", ""],
        ["plain", "", "-3.5", "末尾"],
    ]


def test_a_yes_no_item_filters_by_equality_and_refuses_an_order(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    items = [
        {"name": "name", "title": "名称", "type": "string", "required": True},
        {"name": "active", "title": "在用", "type": "boolean"},
    ]
    code = registered(
        client, world, "stats-flags", data_items=items, sharing_class="unconditional", sharing_condition=None
    )
    client.post(
        f"{API}/resources/{code}/versions",
        content=b"name,active\nA,yes\nB,no\nC,\n",
        headers={**world.owner, "Content-Type": "text/csv"},
    )
    client.post(f"{API}/resources/{code}/status", json={"status": "published"}, headers=world.owner)
    ordered = _ask(
        client, world, code, fields=["name"], row_filter=[{"field": "active", "op": "lt", "value": True}]
    )
    assert ordered.status_code == 422, ordered.text
    assert ordered.json().get("field") == "active"
    made = _ask(
        client, world, code, fields=["name"], row_filter=[{"field": "active", "op": "eq", "value": True}]
    )
    assert made.status_code == 201, made.text
    rows = client.get(f"{API}/grants/{made.json()['grant']['id']}/rows", headers=_reader(database, world))
    assert rows.json()["rows"] == [{"name": "A"}]


def test_a_key_issued_for_a_grant_reads_that_grant_only_and_ends_with_it(client, database) -> None:  # type: ignore[no-untyped-def]
    world = build_exchange(client, database)
    first = published(client, world, sharing_class="unconditional", sharing_condition=None)
    second = published(client, world, "stats-second", sharing_class="unconditional", sharing_condition=None)
    grant_id = _ask(client, world, first).json()["grant"]["id"]
    other_grant = _ask(client, world, second).json()["grant"]["id"]
    for stranger in (world.owner, world.other, world.resident):  # not the consumer's staff
        assert client.post(f"{API}/grants/{grant_id}/keys", headers=stranger).status_code in (403, 404)
    issued = client.post(f"{API}/grants/{grant_id}/keys", headers=world.consumer)
    assert issued.status_code == 201, issued.text
    key = issued.json()
    assert key["key"] and key["prefix"] and key["revoked_at"] is None
    listed = client.get(f"{API}/grants/{grant_id}/keys", headers=world.consumer).json()
    assert [k["id"] for k in listed] == [key["id"]] and "key" not in listed[0]  # the secret is shown once
    system = {"X-API-Key": key["key"]}
    assert client.get(f"{API}/grants/{grant_id}/rows", headers=system).status_code == 200
    refused = client.get(f"{API}/grants/{other_grant}/rows", headers=system)
    assert refused.status_code == 403 and refused.json()["type"].endswith("key-not-for-grant")
    department_key = _reader(database, world)  # a department key bound to no grant reads all of them
    assert client.get(f"{API}/grants/{other_grant}/rows", headers=department_key).status_code == 200

    revoked = client.post(f"{API}/grants/{grant_id}/revoke", json={"reason": "停止合作"}, headers=world.owner)
    assert revoked.status_code == 200, revoked.text
    assert (
        client.get(f"{API}/grants/{grant_id}/keys", headers=world.consumer).json()[0]["revoked_at"]
        is not None
    )
    assert client.get(f"{API}/grants/{grant_id}/rows", headers=system).status_code == 401
    assert client.post(f"{API}/grants/{grant_id}/keys", headers=world.consumer).status_code == 409

    another = client.post(f"{API}/grants/{other_grant}/keys", headers=world.consumer).json()
    assert (
        client.delete(f"{API}/grants/{other_grant}/keys/{another['id']}", headers=world.consumer).status_code
        == 200
    )
    assert (
        client.get(f"{API}/grants/{other_grant}/rows", headers={"X-API-Key": another["key"]}).status_code
        == 401
    )
