"""Clauses 5.6.7–5.6.10 and 5.6.20: batch create, upsert, update, delete and merge (both databases)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from cityhub.domains.context import listen
from cityhub.domains.context.models import AttributeInstance, Entity, EntityType
from cityhub.domains.context.service import changes
from cityhub.kernel.db import Database
from tests.domains.context.conftest import LD, NgsiClient

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"


def sensor(number: int, temperature: float = 20.0, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Sensor:{number}",
        "type": "Sensor",
        "temperature": {"type": "Property", "value": temperature, "unitCode": "CEL"},
        **extra,
    }


def history_count(database: Database) -> int:
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(AttributeInstance)) or 0)


def test_create_all_succeed_answers_201_with_ids(ngsi: NgsiClient) -> None:
    response = ngsi.post("/entityOperations/create", json=[sensor(1), sensor(2)])
    assert response.status_code == 201, response.text
    assert response.json() == ["urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Sensor:2"]
    assert ngsi.get("/entities/urn:ngsi-ld:Sensor:2").json()["temperature"]["value"] == 20.0


def test_create_partial_failure_is_207_and_keeps_the_good_ones(ngsi: NgsiClient, database: Database) -> None:
    ngsi.create(sensor(1))
    before = history_count(database)
    body = [sensor(1), sensor(2), {"id": "not a uri", "type": "Sensor"}, {"id": "urn:ngsi-ld:Sensor:3"}, 7]
    response = ngsi.post("/entityOperations/create", json=body)
    assert response.status_code == 207, response.text
    result = response.json()
    assert result["success"] == ["urn:ngsi-ld:Sensor:2"]
    errors = {error["entityId"]: error["error"] for error in result["errors"]}
    assert errors["urn:ngsi-ld:Sensor:1"]["type"] == ERRORS + "AlreadyExists"
    assert errors["urn:ngsi-ld:Sensor:1"]["status"] == 409
    assert errors["not a uri"]["type"] == ERRORS + "BadRequestData"
    assert errors["urn:ngsi-ld:Sensor:3"]["status"] == 400  # no type
    assert errors[""]["title"] == "BadRequestData"  # not an object
    assert len(result["errors"]) == 4
    assert history_count(database) == before + 1  # the failed ones left no trace


def test_upsert_replace_creates_and_replaces(ngsi: NgsiClient) -> None:
    ngsi.create(sensor(1, humidity={"type": "Property", "value": 40}))
    response = ngsi.post("/entityOperations/upsert", json=[sensor(1, 25.0), sensor(2)])
    assert response.status_code == 201, response.text
    assert response.json() == ["urn:ngsi-ld:Sensor:2"]
    replaced = ngsi.get("/entities/urn:ngsi-ld:Sensor:1").json()
    assert replaced["temperature"]["value"] == 25.0
    assert "humidity" not in replaced  # replace drops what the new body does not have
    again = ngsi.post("/entityOperations/upsert", json=[sensor(1, 26.0), sensor(2, 27.0)])
    assert again.status_code == 204, again.text


def test_upsert_update_appends_and_keeps_other_attributes(ngsi: NgsiClient) -> None:
    ngsi.create(sensor(1, humidity={"type": "Property", "value": 40}))
    response = ngsi.post(
        "/entityOperations/upsert",
        params={"options": "update"},
        json=[{"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor", "temperature": {"value": 30}}],
    )
    assert response.status_code == 204, response.text
    entity = ngsi.get("/entities/urn:ngsi-ld:Sensor:1").json()
    assert entity["temperature"]["value"] == 30 and entity["humidity"]["value"] == 40


def test_upsert_partial_failure_and_bad_options(ngsi: NgsiClient) -> None:
    response = ngsi.post(
        "/entityOperations/upsert", json=[sensor(1), {"id": "urn:ngsi-ld:Sensor:2", "temperature": 1}]
    )
    assert response.status_code == 207, response.text
    assert response.json()["success"] == ["urn:ngsi-ld:Sensor:1"]
    assert response.json()["errors"][0]["entityId"] == "urn:ngsi-ld:Sensor:2"  # new entity without a type
    bad = ngsi.post("/entityOperations/upsert", params={"options": "replace,update"}, json=[sensor(3)])
    assert bad.status_code == 400
    assert bad.json()["type"] == ERRORS + "BadRequestData"


def test_update_with_and_without_no_overwrite(ngsi: NgsiClient) -> None:
    ngsi.create(sensor(1))
    fragment = {"id": "urn:ngsi-ld:Sensor:1", "temperature": {"value": 33}, "status": "ok"}
    kept = ngsi.post("/entityOperations/update", params={"options": "noOverwrite"}, json=[fragment])
    assert kept.status_code == 204, kept.text
    entity = ngsi.get("/entities/urn:ngsi-ld:Sensor:1").json()
    assert entity["temperature"]["value"] == 20.0 and entity["status"]["value"] == "ok"
    response = ngsi.post(
        "/entityOperations/update", json=[fragment, {"id": "urn:ngsi-ld:Sensor:404", "temperature": 1}]
    )
    assert response.status_code == 207, response.text
    assert response.json()["success"] == ["urn:ngsi-ld:Sensor:1"]
    assert response.json()["errors"][0]["error"]["type"] == ERRORS + "ResourceNotFound"
    assert ngsi.get("/entities/urn:ngsi-ld:Sensor:1").json()["temperature"]["value"] == 33


def test_merge_adds_merges_and_deletes_with_null(ngsi: NgsiClient) -> None:
    ngsi.create(sensor(1, status={"type": "Property", "value": "ok"}))
    ngsi.create(sensor(2))
    body = [
        {"id": "urn:ngsi-ld:Sensor:1", "temperature": {"value": 19}, "status": "urn:ngsi-ld:null"},
        {"id": "urn:ngsi-ld:Sensor:2", "battery": 0.8},
    ]
    assert ngsi.post("/entityOperations/merge", json=body).status_code == 204
    first = ngsi.get("/entities/urn:ngsi-ld:Sensor:1").json()
    assert first["temperature"] == {"type": "Property", "value": 19, "unitCode": "CEL"}
    assert "status" not in first
    assert ngsi.get("/entities/urn:ngsi-ld:Sensor:2").json()["battery"]["value"] == 0.8
    missing = ngsi.post("/entityOperations/merge", json=[{"id": "urn:ngsi-ld:Sensor:9", "battery": 1}])
    assert missing.status_code == 207
    assert missing.json() == {
        "success": [],
        "errors": [
            {
                "entityId": "urn:ngsi-ld:Sensor:9",
                "error": {
                    "type": ERRORS + "ResourceNotFound",
                    "title": "ResourceNotFound",
                    "status": 404,
                    "detail": "entity urn:ngsi-ld:Sensor:9 does not exist",
                },
            }
        ],
    }


def test_delete_all_then_partial(ngsi: NgsiClient) -> None:
    ngsi.create(sensor(1))
    ngsi.create(sensor(2))
    ngsi.create(sensor(3))
    both = ["urn:ngsi-ld:Sensor:1", "urn:ngsi-ld:Sensor:2"]
    assert ngsi.post("/entityOperations/delete", json=both).status_code == 204
    assert ngsi.get("/entities/urn:ngsi-ld:Sensor:1").status_code == 404
    response = ngsi.post("/entityOperations/delete", json=["urn:ngsi-ld:Sensor:3", "urn:ngsi-ld:Sensor:1", 5])
    assert response.status_code == 207
    assert response.json()["success"] == ["urn:ngsi-ld:Sensor:3"]
    statuses = sorted(error["error"]["status"] for error in response.json()["errors"])
    assert statuses == [400, 404]


def test_json_ld_bodies_expand_each_entity_with_its_own_context(ngsi: NgsiClient) -> None:
    own = {"temperature": "https://example.org/own#temperature"}
    body = [
        {**sensor(1), "@context": [own, CORE_CONTEXT]},
        {**sensor(2), "@context": CORE_CONTEXT},
    ]
    response = ngsi.post("/entityOperations/create", json=body, headers={"Content-Type": LD})
    assert response.status_code == 201, response.text
    first = ngsi.get("/entities/urn:ngsi-ld:Sensor:1").json()
    second = ngsi.get("/entities/urn:ngsi-ld:Sensor:2").json()
    assert "https://example.org/own#temperature" in first and "temperature" not in first
    assert "temperature" in second


def test_whole_request_errors(ngsi: NgsiClient) -> None:
    not_array = ngsi.post("/entityOperations/create", json=sensor(1))
    assert not_array.status_code == 400
    assert not_array.json()["type"] == ERRORS + "BadRequestData"
    assert ngsi.post("/entityOperations/create", json=[]).status_code == 400
    too_many = ngsi.post("/entityOperations/delete", json=[f"urn:ngsi-ld:S:{n}" for n in range(10_001)])
    assert too_many.status_code == 400
    assert "at most 10000" in too_many.json()["detail"]


# -- the bulk path writes what the single-entity operations write --------------------------------------------

SYSTEM = ("createdAt", "modifiedAt")


def rich(entity_id: str, **changes: Any) -> dict[str, Any]:
    """An entity using most attribute shapes: metadata, a non-UTC observedAt, datasets, sub-attributes."""
    return {
        "id": entity_id,
        "type": "Sensor",
        "temperature": [
            {"type": "Property", "value": 21.5, "unitCode": "CEL", "observedAt": "2026-03-01T10:00:00+01:00"},
            {"type": "Property", "value": 22, "datasetId": "urn:ngsi-ld:Dataset:raw"},
        ],
        "status": {"type": "Property", "value": "ok", "reliability": {"type": "Property", "value": 0.9}},
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [2.17, 41.38]}},
        "name": {"type": "LanguageProperty", "languageMap": {"en": "sensor", "zh": "传感器"}},
        **changes,
    }


def without_timestamps(value: Any) -> Any:
    """System timestamps replaced by a marker: their presence is compared, not their time."""
    if isinstance(value, dict):
        return {key: "t" if key in SYSTEM else without_timestamps(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_timestamps(item) for item in value]
    return value


def stored_state(ngsi: NgsiClient, database: Database, entity_id: str) -> dict[str, Any]:
    """What a reader sees of an entity: its rendering, its stored row and its history, timestamps aside."""
    shown = ngsi.get(f"/entities/{entity_id}", params={"options": "sysAttrs"}).json()
    with database.reading() as session:
        row = session.scalars(select(Entity).where(Entity.entity_id == entity_id)).one()
        types = sorted(session.scalars(select(EntityType.type_iri).where(EntityType.entity_pk == row.pk)))
        history = [
            (
                item.attr_iri,
                item.dataset_id,
                item.attr_type,
                # instances without observedAt, and deletions, are stamped with the change time
                item.observed_at if item.instance and "observedAt" in item.instance else "change time",
                item.value_num,
                item.instance,
                item.deleted,
            )
            for item in session.scalars(
                select(AttributeInstance)
                .where(AttributeInstance.entity_id == entity_id)
                .order_by(AttributeInstance.id)
            )
        ]
        geo = (row.geo_min_lon, row.geo_min_lat, row.geo_max_lon, row.geo_max_lat, row.geo_cell)
        return {
            "shown": without_timestamps({**shown, "id": "same"}),
            "row": (row.types, row.scopes, without_timestamps(row.attrs), geo, types),
            "history": history,
        }


def test_bulk_upsert_writes_what_single_operations_write(ngsi: NgsiClient, database: Database) -> None:
    heard: list[changes.EntityChange] = []

    def remember(_session: Any, change: changes.EntityChange) -> None:
        heard.append(change)

    single, bulk = "urn:ngsi-ld:Sensor:single", "urn:ngsi-ld:Sensor:bulk"
    listen(remember)
    try:
        # create: POST /entities against a batch upsert (with other entities in the batch)
        assert ngsi.create(rich(single, scope="/Barcelona")).status_code == 201
        response = ngsi.post("/entityOperations/upsert", json=[sensor(1), rich(bulk, scope="/Barcelona")])
        assert response.status_code == 201 and response.json() == ["urn:ngsi-ld:Sensor:1", bulk]
        assert stored_state(ngsi, database, single) == stored_state(ngsi, database, bulk)
        # append, overwriting: POST /entities/{id}/attrs against upsert?options=update
        fragment = {
            "temperature": {"type": "Property", "value": 23.5, "observedAt": "2026-03-01T11:00:00.250Z"},
            "battery": 0.7,
        }
        assert ngsi.post(f"/entities/{single}/attrs", json=fragment).status_code == 204
        updated = ngsi.post(
            "/entityOperations/upsert", params={"options": "update"}, json=[{"id": bulk, **fragment}]
        )
        assert updated.status_code == 204, updated.text
        assert stored_state(ngsi, database, single) == stored_state(ngsi, database, bulk)
        # replace: PUT /entities/{id} against upsert (replace): dropped attributes are history deletions
        replacement = {
            "type": "Building",
            "status": "closed",
            "location": {"type": "Point", "coordinates": [1, 2]},
        }
        assert ngsi.put(f"/entities/{single}", json=replacement).status_code == 204
        replaced = ngsi.post("/entityOperations/upsert", json=[{"id": bulk, **replacement}])
        assert replaced.status_code == 204, replaced.text
        assert stored_state(ngsi, database, single) == stored_state(ngsi, database, bulk)
        # update: POST /entities/{id}/attrs?options=noOverwrite against entityOperations/update
        kept = {"status": "open", "level": 3}
        refused = ngsi.post(f"/entities/{single}/attrs", params={"options": "noOverwrite"}, json=kept)
        assert refused.status_code == 207  # status exists: a single request reports it
        again = ngsi.post(
            "/entityOperations/update", params={"options": "noOverwrite"}, json=[{"id": bulk, **kept}]
        )
        assert again.status_code == 204, again.text
    finally:
        changes._listeners.remove(remember)
    final = stored_state(ngsi, database, bulk)
    assert final == stored_state(ngsi, database, single)
    assert final["shown"]["status"]["value"] == "closed" and final["shown"]["level"]["value"] == 3
    dropped = [entry[0].rsplit("/", 1)[-1] for entry in final["history"] if entry[6]]
    assert {"temperature", "owner", "name", "battery"} <= set(dropped) and dropped.count("temperature") == 2

    # the listeners heard the same changes, with the same written and deleted attributes
    def summary(entity_id: str) -> list[tuple[str, list[str], list[str]]]:
        return [
            (change.kind, sorted(change.written), sorted(change.deleted))
            for change in heard
            if change.entity_id == entity_id
        ]

    assert summary(bulk) == summary(single) and len(summary(bulk)) == 4


def test_an_entity_given_twice_is_written_in_order(ngsi: NgsiClient, database: Database) -> None:
    response = ngsi.post("/entityOperations/upsert", json=[sensor(5, 20.0), sensor(6), sensor(5, 21.0)])
    assert response.status_code == 201, response.text
    assert response.json() == ["urn:ngsi-ld:Sensor:5", "urn:ngsi-ld:Sensor:6"]
    assert ngsi.get("/entities/urn:ngsi-ld:Sensor:5").json()["temperature"]["value"] == 21.0
    assert history_count(database) == 3
    twice = ngsi.post("/entityOperations/create", json=[sensor(7), sensor(7)])
    assert twice.status_code == 207
    assert twice.json()["success"] == ["urn:ngsi-ld:Sensor:7"]
    assert twice.json()["errors"][0]["error"]["type"] == ERRORS + "AlreadyExists"


def test_update_that_changes_nothing_writes_nothing(ngsi: NgsiClient, database: Database) -> None:
    ngsi.create(sensor(1))
    before = history_count(database)
    fragment = {"id": "urn:ngsi-ld:Sensor:1", "temperature": 5}
    response = ngsi.post("/entityOperations/update", params={"options": "noOverwrite"}, json=[fragment])
    assert response.status_code == 204
    assert history_count(database) == before
    assert ngsi.get("/entities/urn:ngsi-ld:Sensor:1").json()["temperature"]["value"] == 20.0


def test_replace_without_attributes_still_changes_type_and_scope(
    ngsi: NgsiClient, database: Database
) -> None:
    assert (
        ngsi.post("/entityOperations/create", json=[{"id": "urn:ngsi-ld:Box:1", "type": "Box"}]).status_code
        == 201
    )
    body = [{"id": "urn:ngsi-ld:Box:1", "type": "Crate", "scope": "/Madrid"}]
    assert ngsi.post("/entityOperations/upsert", json=body).status_code == 204
    assert ngsi.get("/entities/urn:ngsi-ld:Box:1").json()["type"] == "Crate"
    with database.reading() as session:
        row = session.scalars(select(Entity).where(Entity.entity_id == "urn:ngsi-ld:Box:1")).one()
        assert list(session.scalars(select(EntityType.type_iri).where(EntityType.entity_pk == row.pk))) == [
            row.types[0]
        ]
        assert row.types[0].endswith("Crate") and row.modified_at > row.created_at
