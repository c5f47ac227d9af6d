"""POST /api/v1/context/telemetry: the gateways' bulk path (both databases)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from cityhub.domains.context import listen
from cityhub.domains.context.ingest.telemetry import Planned, Reading, ingest, observation_stamp, plan, prune
from cityhub.domains.context.manifest import MANIFEST
from cityhub.domains.context.models import AttributeInstance, Entity, IngestReceipt
from cityhub.domains.context.service import batch, changes
from cityhub.domains.context.service.batch import BatchItem, BatchOutcome
from cityhub.domains.context.service.tenants import TenantRef, find_tenant
from cityhub.domains.context.settings import ContextSettings
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.jobs import JobContext
from cityhub.kernel.settings import Settings
from tests.domains.context.conftest import NgsiClient, api_key_for
from tests.factories import Town

URL = "/api/v1/context/telemetry"
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
ENVIRONMENT_LINK = (
    "<https://smart-data-models.github.io/dataModel.Environment/context.jsonld>; "
    'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
)


def reading(number: int, at: str, **attrs: Any) -> dict[str, Any]:
    return {"entity": f"urn:ngsi-ld:Meter:{number}", "type": "Meter", "observedAt": at, "attrs": attrs}


def post(ngsi: NgsiClient, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return ngsi.client.post(URL, json=body, headers={**ngsi.headers, **(headers or {})})


def history(database: Database, entity_id: str | None = None) -> list[AttributeInstance]:
    with database.reading() as session:
        statement = select(AttributeInstance).order_by(AttributeInstance.observed_at)
        if entity_id:
            statement = statement.where(AttributeInstance.entity_id == entity_id)
        return list(session.scalars(statement))


def test_readings_create_and_update_entities_and_history(ngsi: NgsiClient, database: Database) -> None:
    body = {
        "readings": [
            reading(1, "2026-11-01T10:00:00Z", power=1.5, voltage={"value": 230, "unitCode": "VLT"}),
            reading(2, "2026-11-01T10:00:00Z", power=2.5),
            reading(1, "2026-11-01T10:01:00Z", power=1.7),
        ]
    }
    response = post(ngsi, body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "duplicate": False,
        "readings": 3,
        "instances": 4,
        "created": ["urn:ngsi-ld:Meter:1", "urn:ngsi-ld:Meter:2"],
        "updated": 0,
    }
    meter = ngsi.get("/entities/urn:ngsi-ld:Meter:1").json()
    assert meter["type"] == "Meter"
    assert meter["power"] == {"type": "Property", "value": 1.7, "observedAt": "2026-11-01T10:01:00.000Z"}
    assert meter["voltage"]["unitCode"] == "VLT"
    rows = history(database, "urn:ngsi-ld:Meter:1")
    assert [(row.attr_iri, row.value_num) for row in rows] == [
        (VOCAB + "power", 1.5),
        (VOCAB + "voltage", 230.0),
        (VOCAB + "power", 1.7),
    ]
    # an update keeps what the reading does not give (unitCode) and takes the newer observation only
    later = post(
        ngsi,
        {
            "readings": [
                {
                    "entity": "urn:ngsi-ld:Meter:1",
                    "observedAt": "2026-11-01T10:05:00Z",
                    "attrs": {"voltage": 231},
                },
                {
                    "entity": "urn:ngsi-ld:Meter:1",
                    "observedAt": "2026-11-01T09:00:00Z",
                    "attrs": {"power": 9.9},
                },
            ]
        },
    )
    assert later.json()["updated"] == 1 and later.json()["created"] == []
    meter = ngsi.get("/entities/urn:ngsi-ld:Meter:1").json()
    assert meter["voltage"] == {
        "type": "Property",
        "value": 231,
        "unitCode": "VLT",
        "observedAt": "2026-11-01T10:05:00.000Z",
    }
    assert meter["power"]["value"] == 1.7  # the late reading from 09:00 went to the history only
    assert len(history(database, "urn:ngsi-ld:Meter:1")) == 5


def test_duplicate_message_writes_nothing(ngsi: NgsiClient, database: Database) -> None:
    body = {"messageId": "gw-7/000123", "readings": [reading(1, "2026-11-01T10:00:00Z", power=1.0)]}
    assert post(ngsi, body).json()["duplicate"] is False
    again = post(ngsi, body)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["instances"] == 0
    assert len(history(database)) == 1
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(IngestReceipt)) == 1


def test_invalid_readings_reject_the_whole_message(ngsi: NgsiClient, database: Database) -> None:
    body = {
        "messageId": "bad-1",
        "readings": [
            reading(1, "2026-11-01T10:00:00Z", power=1.0),
            {"entity": "urn:ngsi-ld:Meter:404", "attrs": {"power": 1}},  # unknown, and no type to create it
            {"entity": "not a uri", "type": "Meter", "attrs": {"power": 1}},
            reading(3, "2026-11-01T10:00:00Z", location={"value": 5}),  # location must be geometry
        ],
    }
    response = post(ngsi, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [error["reading"] for error in response.json()["errors"]] == [1, 2, 3]
    assert history(database) == []
    with database.reading() as session:  # the receipt rolled back too: a corrected resend is accepted
        assert session.scalar(select(func.count()).select_from(IngestReceipt)) == 0


def test_a_reading_is_checked_entity_first(ngsi: NgsiClient) -> None:
    """A reading's entity is checked before its values (a bad id or a missing type is what is reported),
    and every invalid reading is listed, not only the first."""
    bad_unit = {"power": {"value": 1, "unitCode": 5}}
    body = {
        "readings": [
            {"entity": "not a uri", "type": "Meter", "attrs": bad_unit},
            {"entity": "urn:ngsi-ld:Meter:404", "attrs": bad_unit},
            reading(1, "2026-11-01T10:00:00Z", **bad_unit),
            reading(2, "2026-11-01T10:00:00Z", power=2.0),
        ]
    }
    response = post(ngsi, body)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [error["reading"] for error in errors] == [0, 1, 2]
    assert "must be a URI" in errors[0]["detail"]
    assert "does not exist" in errors[1]["detail"]
    assert "unitCode" in errors[2]["detail"]


@pytest.mark.parametrize(
    ("given", "stamp"),
    [
        ("2026-11-01T10:00:00Z", "2026-11-01T10:00:00.000Z"),
        ("2026-11-01T10:00:00.120Z", "2026-11-01T10:00:00.120Z"),
        ("2026-11-01T11:00:00.123456+01:00", "2026-11-01T10:00:00.123Z"),
        ("2026-11-01T10:00:00.000999", "2026-11-01T10:00:00.000Z"),
        ("2026-11-01T10:00:00.5-02:30", "2026-11-01T12:30:00.500Z"),
    ],
)
def test_observed_times_are_stamped_in_utc_milliseconds(given: str, stamp: str) -> None:
    assert observation_stamp(given) == stamp


@pytest.mark.parametrize(
    "body",
    [
        {"readings": []},
        {"readings": [{"entity": "urn:ngsi-ld:Meter:1", "attrs": {}}]},
        {"readings": [{"entity": "urn:ngsi-ld:Meter:1", "observedAt": "yesterday", "attrs": {"a": 1}}]},
        {"tenant": "bad tenant!", "readings": [reading(1, "2026-11-01T10:00:00Z", a=1)]},
    ],
)
def test_malformed_bodies_are_problems(ngsi: NgsiClient, body: dict[str, Any]) -> None:
    response = post(ngsi, body)
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_needs_write_permission(client: TestClient, database: Database, town: Town) -> None:
    reader = api_key_for(database, town, ("context.entities.read",))
    body = {"readings": [reading(1, "2026-11-01T10:00:00Z", power=1.0)]}
    assert client.post(URL, json=body).status_code == 401
    assert client.post(URL, json=body, headers={"X-API-Key": reader}).status_code == 403


def test_tenant_link_context_and_listeners(ngsi: NgsiClient, database: Database) -> None:
    heard: list[changes.EntityChange] = []

    def remember(_session: Any, change: changes.EntityChange) -> None:
        heard.append(change)

    listen(remember)
    try:
        body = {"tenant": "water", "readings": [reading(1, "2026-11-01T10:00:00Z", flow=3)]}
        response = post(ngsi, body, headers={"Link": ENVIRONMENT_LINK})
        assert response.status_code == 200, response.text
    finally:
        changes._listeners.remove(remember)
    assert [change.kind for change in heard] == ["created"]
    assert heard[0].after is not None and heard[0].after.types[0].startswith("http")
    assert heard[0].written and heard[0].before is None
    found = ngsi.get("/entities/urn:ngsi-ld:Meter:1", tenant="water", headers={"Link": ENVIRONMENT_LINK})
    assert found.status_code == 200 and found.json()["flow"]["value"] == 3
    assert ngsi.get("/entities/urn:ngsi-ld:Meter:1").status_code == 404


# -- two gateways creating the same entity at once (PostgreSQL: SQLite serialises writers) ----------------


def _blocked_on_a_lock(database: Database) -> bool:
    with database.reading() as session:
        waiting = session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


def _race(database: Database, first: Callable[[Session], Any], second: Callable[[Session], Any]) -> Any:
    """Run ``first`` in a transaction left open, ``second`` in another that blocks on it (the same new
    entity's unique key), then commit the first; ``second``'s result."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: creations cannot race")
    answers: list[Any] = []
    with ThreadPoolExecutor(1) as pool, database.unit_of_work() as session:
        first(session)

        def in_own_transaction() -> None:
            with database.unit_of_work() as other:
                answers.append(second(other))

        racing = pool.submit(in_own_transaction)
        deadline = time.monotonic() + 10
        while not _blocked_on_a_lock(database):
            assert time.monotonic() < deadline and not racing.done(), "the second writer never blocked"
            time.sleep(0.02)
    racing.result(timeout=30)
    return answers[0]


def _readings(at: str, power: float) -> list[Reading]:
    return [Reading("urn:ngsi-ld:Meter:1", (VOCAB + "Meter",), at, {VOCAB + "power": power})]


def test_concurrent_creation_by_telemetry_is_retried(database: Database, town: Town) -> None:
    tenant = _tenant(database)
    result = _race(
        database,
        lambda session: ingest(session, tenant, _readings("2026-11-01T10:00:00.000Z", 1.0)),
        lambda session: ingest(session, tenant, _readings("2026-11-01T10:01:00.000Z", 2.0)),
    )
    assert result.created == [] and result.updated == 1  # the second gateway updated what the first created
    assert [row.value_num for row in history(database)] == [1.0, 2.0]
    with database.reading() as session:
        meter = session.scalars(select(Entity)).one()
        assert meter.attrs[VOCAB + "power"][0]["value"] == 2.0


def test_concurrent_creation_by_batch_upsert_is_retried(database: Database, town: Town) -> None:
    tenant = _tenant(database)

    def upsert(session: Session, value: float) -> BatchOutcome:
        entity: dict[str, Any] = {
            "id": "urn:ngsi-ld:Meter:1",
            "type": VOCAB + "Meter",
            VOCAB + "power": value,
        }
        return batch.upsert_entities(session, tenant, [BatchItem(entity["id"], entity)], replace=False)

    outcome = _race(database, lambda session: upsert(session, 1.0), lambda session: upsert(session, 2.0))
    assert outcome.succeeded == ["urn:ngsi-ld:Meter:1"] and outcome.created == [] and outcome.failed == []
    assert [row.value_num for row in history(database)] == [1.0, 2.0]
    with database.reading() as session:
        assert session.scalars(select(Entity)).one().attrs[VOCAB + "power"][0]["value"] == 2.0


def _tenant(database: Database) -> TenantRef:
    with database.unit_of_work() as session:
        return find_tenant(session, "", create=True)


# -- readings applied ahead of the write transaction (telemetry.plan) ---------------------------------------


def _meter(database: Database) -> dict[str, Any]:
    with database.reading() as session:
        return dict(session.scalars(select(Entity)).one().attrs)


def _planned(database: Database, tenant: TenantRef, readings: list[Reading]) -> Planned:
    with database.reading() as session:
        return plan(session, tenant, readings)


def test_readings_planned_ahead_are_stored_as_the_write_path_stores_them(
    database: Database, town: Town
) -> None:
    tenant = _tenant(database)
    with database.unit_of_work() as session:
        ingest(session, tenant, _readings("2026-11-01T10:00:00.000Z", 1.0))
    later = _readings("2026-11-01T10:01:00.000Z", 2.0)
    planned = _planned(database, tenant, later)
    with database.unit_of_work() as session:
        assert planned.still_current(session)
        result = ingest(session, tenant, later, planned=planned)
    assert result.updated == 1 and result.instances == 1
    assert _meter(database)[VOCAB + "power"][0]["value"] == 2.0
    assert [row.value_num for row in history(database)] == [1.0, 2.0]


def test_a_change_between_planning_and_writing_is_not_lost(database: Database, town: Town) -> None:
    """Another writer changed the entity after the plan was made: the plan's document would undo that
    change, so the readings are applied again to the entity as it now is."""
    tenant = _tenant(database)
    with database.unit_of_work() as session:
        ingest(session, tenant, _readings("2026-11-01T10:00:00.000Z", 1.0))
    later = _readings("2026-11-01T10:01:00.000Z", 2.0)
    planned = _planned(database, tenant, later)
    voltage = [Reading("urn:ngsi-ld:Meter:1", (), "2026-11-01T10:00:30.000Z", {VOCAB + "voltage": 230})]
    with database.unit_of_work() as session:
        ingest(session, tenant, voltage)
    with database.unit_of_work() as session:
        assert not planned.still_current(session)
        ingest(session, tenant, later, planned=planned)
    meter = _meter(database)
    assert meter[VOCAB + "power"][0]["value"] == 2.0
    assert meter[VOCAB + "voltage"][0]["value"] == 230  # kept: the plan alone had no voltage


def test_an_entity_created_between_planning_and_writing_is_updated(database: Database, town: Town) -> None:
    tenant = _tenant(database)
    planned = _planned(database, tenant, _readings("2026-11-01T10:01:00.000Z", 2.0))
    with database.unit_of_work() as session:
        ingest(session, tenant, _readings("2026-11-01T10:00:00.000Z", 1.0))
    with database.unit_of_work() as session:
        result = ingest(session, tenant, _readings("2026-11-01T10:01:00.000Z", 2.0), planned=planned)
    assert result.created == [] and result.updated == 1
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Entity)) == 1
    assert [row.value_num for row in history(database)] == [1.0, 2.0]


# -- receipts are forgotten after ingest_receipt_days --------------------------------------------------------


def test_old_receipts_are_pruned(database: Database, settings: Settings) -> None:
    now = utcnow()
    with database.unit_of_work() as session:
        session.add_all(
            [
                IngestReceipt(gateway="gw", message_id="old", received_at=now - timedelta(days=8)),
                IngestReceipt(gateway="gw", message_id="recent", received_at=now - timedelta(days=6)),
            ]
        )
    job = next(job for job in MANIFEST.periodic_jobs if job.name == "context.ingest.prune_receipts")
    assert job.handler == "cityhub.domains.context.ingest.telemetry:prune"
    assert ContextSettings().ingest_receipt_days == 7
    with database.unit_of_work() as session:
        prune(JobContext(session, settings, 1, job.name, 1, {}))
    with database.reading() as session:
        assert list(session.scalars(select(IngestReceipt.message_id))) == ["recent"]


def test_history_rows_keep_every_character_and_time(ngsi: NgsiClient, database: Database) -> None:
    """Backslashes, tabs and newlines survive the COPY text stream; any observedAt form lands in UTC."""
    odd_id = "urn:ngsi-ld:Meter:back\\slash"
    note = 'C:\\temp\tline one\nline "two" 北京'
    body = {
        "readings": [
            {
                "entity": odd_id,
                "type": "Meter",
                "observedAt": "2026-11-01T11:00:00.123456+01:00",
                "attrs": {
                    "note": {"value": note},
                    "power": {"type": "Property", "value": 7, "unitCode": "KWT"},
                    "ratio": {"value": 0.25, "observedAt": "2026-11-01T10:30:00Z"},
                    "flag": True,
                },
            }
        ]
    }
    response = post(ngsi, body)
    assert response.status_code == 200, response.text
    rows = {row.attr_iri.removeprefix(VOCAB): row for row in history(database, odd_id)}
    assert rows["note"].instance == {
        "type": "Property",
        "value": note,
        "observedAt": "2026-11-01T10:00:00.123Z",
    }
    assert rows["note"].value_num is None and rows["flag"].instance == {
        "type": "Property",
        "value": True,
        "observedAt": "2026-11-01T10:00:00.123Z",
    }
    assert rows["power"].instance == {
        "type": "Property",
        "value": 7,
        "unitCode": "KWT",
        "observedAt": "2026-11-01T10:00:00.123Z",
    }
    assert rows["power"].value_num == 7.0
    assert rows["power"].observed_at == datetime(2026, 11, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert rows["ratio"].observed_at == datetime(2026, 11, 1, 10, 30, tzinfo=UTC)
    shown = ngsi.get(f"/entities/{odd_id}").json()
    assert shown["note"]["value"] == note and shown["ratio"]["observedAt"] == "2026-11-01T10:30:00.000Z"


def test_openapi_documents_the_body(client: TestClient) -> None:
    operation = client.app.openapi()["paths"][URL]["post"]  # type: ignore[attr-defined]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    reading_schema = schema["properties"]["readings"]["items"]
    assert set(reading_schema["required"]) == {"entity", "attrs"}
    assert "observedAt" in reading_schema["properties"] and "$ref" not in str(schema)
