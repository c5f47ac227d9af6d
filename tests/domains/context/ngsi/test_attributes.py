"""Clause 5.6.2–5.6.5, 5.6.17–5.6.19: append, update, partial update, merge, replace; multi-attributes."""

from __future__ import annotations

from tests.domains.context.conftest import NgsiClient

SENSOR = "urn:ngsi-ld:Sensor:7"


def _sensor(ngsi: NgsiClient) -> None:
    ngsi.create(
        {
            "id": SENSOR,
            "type": "Sensor",
            "temperature": [
                {"type": "Property", "value": 20, "datasetId": "urn:ngsi-ld:dataset:a"},
                {"type": "Property", "value": 21, "datasetId": "urn:ngsi-ld:dataset:b"},
            ],
            "name": {"type": "Property", "value": "north", "reliability": {"type": "Property", "value": 0.9}},
        }
    )


def test_multi_attribute_instances_by_dataset_id(ngsi: NgsiClient) -> None:
    _sensor(ngsi)
    temperature = ngsi.get(f"/entities/{SENSOR}").json()["temperature"]
    assert sorted(item["datasetId"] for item in temperature) == [
        "urn:ngsi-ld:dataset:a",
        "urn:ngsi-ld:dataset:b",
    ]
    patched = ngsi.patch(
        f"/entities/{SENSOR}/attrs/temperature", json={"value": 30, "datasetId": "urn:ngsi-ld:dataset:b"}
    )
    assert patched.status_code == 204, patched.text
    values = {
        item["datasetId"]: item["value"] for item in ngsi.get(f"/entities/{SENSOR}").json()["temperature"]
    }
    assert values == {"urn:ngsi-ld:dataset:a": 20, "urn:ngsi-ld:dataset:b": 30}
    gone = ngsi.delete(f"/entities/{SENSOR}/attrs/temperature", params={"datasetId": "urn:ngsi-ld:dataset:a"})
    assert gone.status_code == 204
    left = ngsi.get(f"/entities/{SENSOR}").json()["temperature"]
    assert left["datasetId"] == "urn:ngsi-ld:dataset:b"
    assert (
        ngsi.delete(f"/entities/{SENSOR}/attrs/temperature", params={"deleteAll": "true"}).status_code == 204
    )
    assert "temperature" not in ngsi.get(f"/entities/{SENSOR}").json()


def test_duplicate_dataset_ids_are_refused(ngsi: NgsiClient) -> None:
    response = ngsi.post(
        "/entities",
        json={
            "id": "urn:ngsi-ld:Sensor:9",
            "type": "Sensor",
            "temperature": [{"type": "Property", "value": 1}, {"type": "Property", "value": 2}],
        },
    )
    assert response.status_code == 400 and response.json()["title"] == "BadRequestData"


def test_append_with_no_overwrite_reports_what_was_kept(ngsi: NgsiClient) -> None:
    _sensor(ngsi)
    response = ngsi.post(
        f"/entities/{SENSOR}/attrs",
        params={"options": "noOverwrite"},
        json={"name": {"type": "Property", "value": "south"}, "humidity": {"type": "Property", "value": 40}},
    )
    assert response.status_code == 207, response.text
    assert response.json()["updated"] == ["humidity"]
    assert response.json()["notUpdated"][0]["attributeName"] == "name"
    entity = ngsi.get(f"/entities/{SENSOR}").json()
    assert entity["name"]["value"] == "north" and entity["humidity"]["value"] == 40
    overwritten = ngsi.post(
        f"/entities/{SENSOR}/attrs", json={"name": {"type": "Property", "value": "south"}}
    )
    assert overwritten.status_code == 204
    assert "reliability" not in ngsi.get(f"/entities/{SENSOR}").json()["name"]  # replaced whole


def test_update_attributes_touches_existing_ones_only(ngsi: NgsiClient) -> None:
    _sensor(ngsi)
    response = ngsi.patch(
        f"/entities/{SENSOR}/attrs",
        json={"name": {"type": "Property", "value": "east"}, "speed": {"type": "Property", "value": 3}},
    )
    assert response.status_code == 207
    assert response.json()["updated"] == ["name"]
    assert [item["attributeName"] for item in response.json()["notUpdated"]] == ["speed"]
    assert "speed" not in ngsi.get(f"/entities/{SENSOR}").json()


def test_partial_update_keeps_sub_attributes_and_checks_the_type(ngsi: NgsiClient) -> None:
    _sensor(ngsi)
    assert ngsi.patch(f"/entities/{SENSOR}/attrs/name", json={"value": "west"}).status_code == 204
    name = ngsi.get(f"/entities/{SENSOR}").json()["name"]
    assert name["value"] == "west" and name["reliability"]["value"] == 0.9
    wrong = ngsi.patch(f"/entities/{SENSOR}/attrs/name", json={"type": "Relationship", "object": "urn:x:1"})
    assert wrong.status_code == 400
    missing = ngsi.patch(f"/entities/{SENSOR}/attrs/colour", json={"value": "red"})
    assert missing.status_code == 404


def test_merge_adds_merges_and_deletes_with_null(ngsi: NgsiClient) -> None:
    _sensor(ngsi)
    response = ngsi.patch(
        f"/entities/{SENSOR}",
        json={"name": {"value": "merged"}, "colour": "red", "temperature": "urn:ngsi-ld:null"},
    )
    assert response.status_code == 204, response.text
    entity = ngsi.get(f"/entities/{SENSOR}").json()
    assert entity["name"]["value"] == "merged" and entity["name"]["reliability"]["value"] == 0.9
    assert entity["colour"] == {"type": "Property", "value": "red"}
    assert "temperature" not in entity


def test_replace_entity_and_attribute(ngsi: NgsiClient) -> None:
    _sensor(ngsi)
    created = ngsi.get(f"/entities/{SENSOR}", params={"options": "sysAttrs"}).json()["createdAt"]
    replaced = ngsi.put(
        f"/entities/{SENSOR}", json={"type": "Sensor", "speed": {"type": "Property", "value": 5}}
    )
    assert replaced.status_code == 204, replaced.text
    entity = ngsi.get(f"/entities/{SENSOR}", params={"options": "sysAttrs"}).json()
    assert set(entity) == {"id", "type", "speed", "createdAt", "modifiedAt"}
    assert entity["createdAt"] == created
    assert (
        ngsi.put(f"/entities/{SENSOR}/attrs/speed", json={"type": "Property", "value": 6}).status_code == 204
    )
    assert ngsi.get(f"/entities/{SENSOR}").json()["speed"]["value"] == 6
    assert ngsi.put(f"/entities/{SENSOR}/attrs/nothing", json={"value": 1}).status_code == 404


def test_concise_input_and_language_properties(ngsi: NgsiClient) -> None:
    ngsi.create(
        {
            "id": "urn:ngsi-ld:Street:1",
            "type": "Street",
            "width": 12,
            "name": {"languageMap": {"zh": "解放路", "en": "Jiefang Road"}},
            "connectsTo": {"object": "urn:ngsi-ld:Street:2"},
            "location": {"type": "LineString", "coordinates": [[120.1, 30.2], [120.2, 30.3]]},
        }
    )
    entity = ngsi.get("/entities/urn:ngsi-ld:Street:1").json()
    assert entity["width"] == {"type": "Property", "value": 12}
    assert entity["name"]["type"] == "LanguageProperty"
    assert entity["connectsTo"]["type"] == "Relationship"
    assert entity["location"]["type"] == "GeoProperty"
    english = ngsi.get("/entities/urn:ngsi-ld:Street:1", params={"lang": "en"}).json()["name"]
    assert english["value"] == "Jiefang Road" and english["lang"] == "en"
    key_values = ngsi.get(
        "/entities/urn:ngsi-ld:Street:1", params={"options": "keyValues", "lang": "zh"}
    ).json()
    assert key_values["name"] == "解放路"
