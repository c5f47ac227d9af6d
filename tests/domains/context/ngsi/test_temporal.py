"""Clauses 5.6.11–5.6.16, 5.7.3, 5.7.4: the temporal API over the attribute history (both databases)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cityhub.domains.context.service.temporal import history
from tests.domains.context.conftest import NgsiClient

ROOM_ID = "urn:ngsi-ld:Room:t1"
SENSOR_ID = "urn:ngsi-ld:Sensor:s1"
START = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
BAD_REQUEST = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
NOT_FOUND = "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def reading(value: Any, moment: datetime) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": iso(moment)}


def post_series(ngsi: NgsiClient, values: list[float], step: timedelta, entity_id: str = SENSOR_ID) -> None:
    """A temporal entity whose ``temperature`` has ``values`` at START, START+step, ..."""
    body = {
        "id": entity_id,
        "type": "Sensor",
        "temperature": [reading(value, START + step * index) for index, value in enumerate(values)],
    }
    response = ngsi.post("/temporal/entities", json=body)
    assert response.status_code == 201, response.text


def values_of(response: Any, attr: str = "temperature") -> list[Any]:
    assert response.status_code == 200, response.text
    return [instance["value"] for instance in response.json()[attr]]


def test_history_follows_create_patch_and_delete(ngsi: NgsiClient) -> None:
    ngsi.create({"id": ROOM_ID, "type": "Room", "temperature": reading(20, START)})
    for minutes, value in ((10, 21), (20, 22.5)):
        patch = {"value": value, "observedAt": iso(START + timedelta(minutes=minutes))}
        assert ngsi.patch(f"/entities/{ROOM_ID}/attrs/temperature", json=patch).status_code == 204
    assert ngsi.delete(f"/entities/{ROOM_ID}/attrs/temperature").status_code == 204

    history = ngsi.get(f"/temporal/entities/{ROOM_ID}", params={"options": "sysAttrs"})
    assert history.status_code == 200, history.text
    body = history.json()
    assert body["id"] == ROOM_ID and body["type"] == "Room"
    instances = body["temperature"]
    assert [instance["value"] for instance in instances[:3]] == [20, 21, 22.5]
    assert instances[1]["observedAt"] == iso(START + timedelta(minutes=10))
    assert instances[3]["value"] == "urn:ngsi-ld:null" and "deletedAt" in instances[3]
    assert all(instance["instanceId"].startswith("urn:ngsi-ld:attribute:instance:") for instance in instances)
    assert all("createdAt" in instance for instance in instances)

    assert ngsi.delete(f"/entities/{ROOM_ID}").status_code == 204
    after_delete = ngsi.get(f"/temporal/entities/{ROOM_ID}", params={"options": "temporalValues"})
    assert after_delete.status_code == 200, after_delete.text
    assert after_delete.json()["type"] == "Room"
    assert [pair[0] for pair in after_delete.json()["temperature"]["values"]] == [20, 21, 22.5]


def test_timerel_before_after_between_and_last_n(ngsi: NgsiClient) -> None:
    post_series(ngsi, [float(n) for n in range(10)], timedelta(hours=1))
    path = f"/temporal/entities/{SENSOR_ID}"
    at_3h, at_6h = iso(START + timedelta(hours=3)), iso(START + timedelta(hours=6))
    assert values_of(ngsi.get(path, params={"timerel": "before", "timeAt": at_3h})) == [0, 1, 2]
    assert values_of(ngsi.get(path, params={"timerel": "after", "timeAt": at_6h})) == [7, 8, 9]
    between = {"timerel": "between", "timeAt": at_3h, "endTimeAt": at_6h}
    assert values_of(ngsi.get(path, params=between)) == [3, 4, 5]
    assert values_of(ngsi.get(path, params={"lastN": 4})) == [6, 7, 8, 9]
    assert values_of(ngsi.get(path, params={**between, "lastN": 2})) == [4, 5]
    recorded = ngsi.get(path, params={"timeproperty": "createdAt", "timerel": "before", "timeAt": at_3h})
    assert (
        recorded.status_code == 200 and "temperature" not in recorded.json()
    )  # recorded now, not in 2026-03


def test_temporal_values_representation(ngsi: NgsiClient) -> None:
    post_series(ngsi, [1.5, 2.5, 3.5], timedelta(minutes=5))
    response = ngsi.get(f"/temporal/entities/{SENSOR_ID}", params={"options": "temporalValues", "lastN": 2})
    assert response.status_code == 200, response.text
    assert response.json()["temperature"] == {
        "type": "Property",
        "values": [[2.5, iso(START + timedelta(minutes=5))], [3.5, iso(START + timedelta(minutes=10))]],
    }


def _expected(values: list[float], method: str) -> float:
    count = len(values)
    mean = sum(values) / count
    return {
        "totalCount": count,
        "distinctCount": len(set(values)),
        "sum": sum(values),
        "avg": mean,
        "min": min(values),
        "max": max(values),
        "stddev": math.sqrt(sum((value - mean) ** 2 for value in values) / count),
        "sumsq": sum(value * value for value in values),
    }[method]


@pytest.mark.parametrize(
    "method", ["totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq"]
)
def test_each_aggregation_method_per_hour(ngsi: NgsiClient, method: str) -> None:
    values = [1000.0 + (minute * 7 % 13) + (0.5 if minute % 4 == 0 else 0.0) for minute in range(180)]
    post_series(ngsi, values, timedelta(minutes=1))
    params = {
        "aggrMethods": method,
        "aggrPeriodDuration": "PT1H",
        "timerel": "between",
        "timeAt": iso(START),
        "endTimeAt": iso(START + timedelta(hours=3)),
    }
    response = ngsi.get(f"/temporal/entities/{SENSOR_ID}", params={**params, "options": "aggregatedValues"})
    assert response.status_code == 200, response.text
    periods = response.json()["temperature"][method]
    assert [period[1:] for period in periods] == [
        [iso(START + timedelta(hours=hour)), iso(START + timedelta(hours=hour + 1))] for hour in range(3)
    ]
    for hour, period in enumerate(periods):
        assert period[0] == pytest.approx(_expected(values[hour * 60 : hour * 60 + 60], method), rel=1e-9)


def test_aggregation_over_the_whole_range_by_default(ngsi: NgsiClient) -> None:
    values = [3.0, 5.0, 5.0, 11.0]
    post_series(ngsi, values, timedelta(minutes=30))
    response = ngsi.get(f"/temporal/entities/{SENSOR_ID}", params={"aggrMethods": "avg,distinctCount,max"})
    assert response.status_code == 200, response.text
    attribute = response.json()["temperature"]
    assert attribute["avg"] == [[6.0, iso(START), iso(START + timedelta(minutes=90))]]
    assert attribute["distinctCount"][0][0] == 3 and attribute["max"][0][0] == 11.0


@pytest.mark.parametrize(
    "params",
    [
        {"timerel": "during", "timeAt": "2026-03-01T00:00:00Z"},
        {"timerel": "before"},
        {"timerel": "before", "timeAt": "yesterday"},
        {"timerel": "between", "timeAt": "2026-03-01T00:00:00Z"},
        {"timerel": "between", "timeAt": "2026-03-02T00:00:00Z", "endTimeAt": "2026-03-01T00:00:00Z"},
        {"lastN": 0},
        {"timeproperty": "deletedAt"},
        {"aggrMethods": "median"},
        {"aggrMethods": "avg", "aggrPeriodDuration": "1 hour"},
        {"aggrMethods": "avg", "aggrPeriodDuration": "P1M"},
        {"options": "temporalValues", "aggrMethods": "avg"},
    ],
)
def test_bad_temporal_parameters_are_bad_request_data(ngsi: NgsiClient, params: dict[str, Any]) -> None:
    post_series(ngsi, [1.0], timedelta(minutes=1))
    response = ngsi.get(f"/temporal/entities/{SENSOR_ID}", params=params)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == BAD_REQUEST


def test_unknown_entity_is_not_found(ngsi: NgsiClient) -> None:
    for response in (
        ngsi.get("/temporal/entities/urn:ngsi-ld:Sensor:none"),
        ngsi.delete("/temporal/entities/urn:ngsi-ld:Sensor:none"),
        ngsi.post(
            "/temporal/entities/urn:ngsi-ld:Sensor:none/attrs", json={"temperature": reading(1, START)}
        ),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["type"] == NOT_FOUND


def test_query_many_by_type_q_and_count(ngsi: NgsiClient) -> None:
    for number, floor in enumerate((1, 2, 2)):
        ngsi.create(
            {
                "id": f"urn:ngsi-ld:Room:q{number}",
                "type": "Room",
                "floor": {"type": "Property", "value": floor},
                "temperature": reading(20 + number, START + timedelta(minutes=number)),
            }
        )
    found = ngsi.get(
        "/temporal/entities",
        params={"type": "Room", "q": "floor==2", "attrs": "temperature", "count": "true", "lastN": 1},
    )
    assert found.status_code == 200, found.text
    assert found.headers["NGSILD-Results-Count"] == "2"
    assert {entity["id"]: values_of_entity(entity) for entity in found.json()} == {
        "urn:ngsi-ld:Room:q1": [21],
        "urn:ngsi-ld:Room:q2": [22],
    }
    assert all(set(entity) == {"id", "type", "temperature"} for entity in found.json())
    paged = ngsi.get("/temporal/entities", params={"type": "Room", "limit": 1, "offset": 2})
    assert [entity["id"] for entity in paged.json()] == ["urn:ngsi-ld:Room:q2"]
    outside = ngsi.get(
        "/temporal/entities",
        params={
            "type": "Room",
            "attrs": "temperature",
            "timerel": "after",
            "timeAt": iso(START + timedelta(minutes=1)),
        },
    )
    assert [entity["id"] for entity in outside.json()] == ["urn:ngsi-ld:Room:q2"]


def values_of_entity(entity: dict[str, Any]) -> list[Any]:
    return [instance["value"] for instance in entity["temperature"]]


def test_temporal_writes_change_the_history_only(ngsi: NgsiClient) -> None:
    post_series(ngsi, [1.0, 2.0], timedelta(minutes=1))
    assert ngsi.get(f"/entities/{SENSOR_ID}").status_code == 404
    again = {"id": SENSOR_ID, "type": "Sensor", "temperature": reading(3.0, START + timedelta(minutes=2))}
    assert ngsi.post("/temporal/entities", json=again).status_code == 204
    appended = {
        "temperature": [reading(4.0, START + timedelta(minutes=3))],
        "humidity": [reading(40, START), reading(41, START + timedelta(minutes=1))],
    }
    assert ngsi.post(f"/temporal/entities/{SENSOR_ID}/attrs", json=appended).status_code == 204
    path = f"/temporal/entities/{SENSOR_ID}"
    assert values_of(ngsi.get(path)) == [1.0, 2.0, 3.0, 4.0]
    assert values_of(ngsi.get(path), "humidity") == [40, 41]

    first, second = ngsi.get(path).json()["temperature"][:2]
    instance_path = f"{path}/attrs/temperature/{first['instanceId']}"
    assert ngsi.patch(instance_path, json={"value": 1.25}).status_code == 204
    assert ngsi.delete(f"{path}/attrs/temperature/{second['instanceId']}").status_code == 204
    assert values_of(ngsi.get(path)) == [1.25, 3.0, 4.0]
    patched = ngsi.get(path, params={"options": "sysAttrs"}).json()["temperature"][0]
    assert patched["modifiedAt"] != patched["createdAt"] or patched["value"] == 1.25
    assert ngsi.delete(f"{path}/attrs/temperature/{second['instanceId']}").status_code == 404
    assert (
        ngsi.patch(
            f"{path}/attrs/temperature/urn:ngsi-ld:attribute:instance:x", json={"value": 1}
        ).status_code
        == 404
    )

    assert ngsi.delete(f"{path}/attrs/humidity").status_code == 204
    assert "humidity" not in ngsi.get(path).json()
    assert ngsi.delete(path).status_code == 204
    assert ngsi.get(path).status_code == 404


def test_temporal_delete_leaves_the_current_entity(ngsi: NgsiClient) -> None:
    ngsi.create({"id": ROOM_ID, "type": "Room", "temperature": reading(20, START)})
    assert ngsi.delete(f"/temporal/entities/{ROOM_ID}").status_code == 204
    assert ngsi.get(f"/entities/{ROOM_ID}").json()["temperature"]["value"] == 20
    assert "temperature" not in ngsi.get(f"/temporal/entities/{ROOM_ID}").json()


def test_multi_attribute_history_by_dataset_id(ngsi: NgsiClient) -> None:
    body = {
        "id": SENSOR_ID,
        "type": "Sensor",
        "temperature": [
            {**reading(1.0, START), "datasetId": "urn:ngsi-ld:Dataset:a"},
            {**reading(2.0, START), "datasetId": "urn:ngsi-ld:Dataset:b"},
            {**reading(3.0, START + timedelta(minutes=1)), "datasetId": "urn:ngsi-ld:Dataset:a"},
        ],
    }
    assert ngsi.post("/temporal/entities", json=body).status_code == 201
    response = ngsi.get(f"/temporal/entities/{SENSOR_ID}", params={"aggrMethods": "sum"})
    assert response.status_code == 200, response.text
    sums = {group["datasetId"]: group["sum"][0][0] for group in response.json()["temperature"]}
    assert sums == {"urn:ngsi-ld:Dataset:a": 4.0, "urn:ngsi-ld:Dataset:b": 2.0}
    deleted = ngsi.delete(
        f"/temporal/entities/{SENSOR_ID}/attrs/temperature", params={"datasetId": "urn:ngsi-ld:Dataset:a"}
    )
    assert deleted.status_code == 204
    assert values_of(ngsi.get(f"/temporal/entities/{SENSOR_ID}")) == [2.0]


def test_capped_instances_answer_partial_content(ngsi: NgsiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(history, "MAX_INSTANCES", 3)
    post_series(ngsi, [1.0, 2.0, 3.0, 4.0, 5.0], timedelta(minutes=1))
    path = f"/temporal/entities/{SENSOR_ID}"
    first = ngsi.get(path)
    assert first.status_code == 206, first.text
    third = iso(START + timedelta(minutes=2))
    assert first.headers["Content-Range"] == f"date-time {iso(START)}-{third}/*"
    assert values_of_partial(first) == [1.0, 2.0, 3.0]
    rest = ngsi.get(path, params={"timerel": "after", "timeAt": third})
    assert rest.status_code == 200 and values_of(rest) == [4.0, 5.0]
    newest = ngsi.get(path, params={"lastN": 4})
    assert newest.status_code == 206 and values_of_partial(newest) == [3.0, 4.0, 5.0]


def values_of_partial(response: Any) -> list[Any]:
    return [instance["value"] for instance in response.json()["temperature"]]


def _rooms_with_history(ngsi: NgsiClient) -> None:
    """Three rooms (floors 1, 2, 2; at longitude 0, 0.001, 1) with temperatures at START + 0..2 minutes."""
    for number, (floor, longitude) in enumerate(((1, 0.0), (2, 0.001), (2, 1.0))):
        room = {
            "id": f"urn:ngsi-ld:Room:p{number}",
            "type": "Room",
            "floor": {"type": "Property", "value": floor},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [longitude, 0.0]}},
            "temperature": reading(20 + number, START),
        }
        assert ngsi.create(room).status_code == 201
        patch = {"value": 30 + number, "observedAt": iso(START + timedelta(minutes=2))}
        assert ngsi.patch(f"/entities/{room['id']}/attrs/temperature", json=patch).status_code == 204


def test_post_query_with_q_temporal_q_and_url_options(ngsi: NgsiClient) -> None:
    _rooms_with_history(ngsi)
    body = {
        "type": "Query",
        "entities": [{"type": "Room"}],
        "attrs": ["temperature"],
        "q": "floor==2",
        "temporalQ": {"timerel": "before", "timeAt": iso(START + timedelta(minutes=1))},
    }
    found = ngsi.post("/temporal/entityOperations/query", json=body, params={"count": "true"})
    assert found.status_code == 200, found.text
    assert found.headers["NGSILD-Results-Count"] == "2"
    assert {entity["id"]: values_of_entity(entity) for entity in found.json()} == {
        "urn:ngsi-ld:Room:p1": [21],
        "urn:ngsi-ld:Room:p2": [22],
    }
    newest = ngsi.post(
        "/temporal/entityOperations/query",
        json={
            "type": "Query",
            "entities": [{"id": "urn:ngsi-ld:Room:p0", "type": "Room"}],
            "temporalQ": {"lastN": 1},
        },
        params={"lastN": 5, "options": "temporalValues"},
    )
    assert newest.status_code == 200, newest.text
    assert newest.json() == [
        {
            "id": "urn:ngsi-ld:Room:p0",
            "type": "Room",
            "floor": {"type": "Property", "values": [[1, newest.json()[0]["floor"]["values"][0][1]]]},
            "location": newest.json()[0]["location"],
            "temperature": {"type": "Property", "values": [[30, iso(START + timedelta(minutes=2))]]},
        }
    ]
    averaged = ngsi.post(
        "/temporal/entityOperations/query",
        json={
            "type": "Query",
            "entities": [{"idPattern": "p[12]$", "type": "Room"}],
            "attrs": ["temperature"],
        },
        params={"aggrMethods": "avg"},
    )
    assert averaged.status_code == 200, averaged.text
    assert sorted(entity["temperature"]["avg"][0][0] for entity in averaged.json()) == [26.0, 27.0]


def test_post_query_with_geo_q_and_deleted_entities_by_id(ngsi: NgsiClient) -> None:
    _rooms_with_history(ngsi)
    geo_q = {"georel": "near;maxDistance==1000", "geometry": "Point", "coordinates": [0.0, 0.0]}
    near = ngsi.post(
        "/temporal/entityOperations/query",
        json={"type": "Query", "entities": [{"type": "Room"}], "geoQ": geo_q, "attrs": ["temperature"]},
    )
    assert near.status_code == 200, near.text
    assert sorted(entity["id"] for entity in near.json()) == ["urn:ngsi-ld:Room:p0", "urn:ngsi-ld:Room:p1"]

    assert ngsi.delete("/entities/urn:ngsi-ld:Room:p2").status_code == 204
    by_id = ngsi.post(
        "/temporal/entityOperations/query",
        json={
            "type": "Query",
            "entities": [{"id": "urn:ngsi-ld:Room:p2"}, {"id": "urn:ngsi-ld:Room:p1", "type": "Sensor"}],
            "attrs": ["temperature"],
            "temporalQ": {"timerel": "after", "timeAt": iso(START)},
        },
    )
    assert by_id.status_code == 200, by_id.text
    assert [(entity["id"], entity["type"], values_of_entity(entity)) for entity in by_id.json()] == [
        ("urn:ngsi-ld:Room:p2", "Room", [32, "urn:ngsi-ld:null"])  # the deletion is an instance too
    ]


@pytest.mark.parametrize(
    ("body", "params"),
    [
        ([], {}),
        ({"type": "Subscription", "entities": [{"type": "Room"}]}, {}),
        ({"type": "Query"}, {}),
        ({"type": "Query", "entities": [{"type": "Room"}], "temporalQ": "before"}, {}),
        ({"type": "Query", "entities": [{"type": "Room"}], "temporalQ": {"timerel": "before"}}, {}),
        ({"type": "Query", "entities": [{"type": "Room"}], "temporalQ": {"lastN": 0}}, {}),
        ({"type": "Query", "entities": [{"type": "Room"}], "temporalQ": {"lastN": "3"}}, {}),
        ({"type": "Query", "entities": [{"type": "Room"}], "temporalQ": {"during": "P1D"}}, {}),
        ({"type": "Query", "entities": [{"type": "Room"}]}, {"timerel": "after", "timeAt": iso(START)}),
        ({"type": "Query", "entities": [{"type": "Room"}], "geoQ": {"georel": "near"}}, {}),
        ({"type": "Query", "entities": [{"type": "Room"}]}, {"aggrMethods": "median"}),
    ],
)
def test_post_query_bad_bodies_are_bad_request_data(
    ngsi: NgsiClient, body: Any, params: dict[str, str]
) -> None:
    response = ngsi.post("/temporal/entityOperations/query", json=body, params=params)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == BAD_REQUEST


def test_sys_attrs_and_time_property_read_the_recorded_times(ngsi: NgsiClient) -> None:
    post_series(ngsi, [1.0, 2.0], timedelta(minutes=1))
    path = f"/temporal/entities/{SENSOR_ID}"
    first = ngsi.get(path, params={"options": "sysAttrs"}).json()["temperature"][0]
    assert first["createdAt"] == first["modifiedAt"] and first["createdAt"] > iso(START + timedelta(days=1))
    assert (
        ngsi.patch(f"{path}/attrs/temperature/{first['instanceId']}", json={"value": 5.0}).status_code == 204
    )
    patched = ngsi.get(path, params={"options": "sysAttrs"}).json()["temperature"][0]
    assert patched["value"] == 5.0 and patched["modifiedAt"] >= patched["createdAt"]
    recorded = ngsi.get(
        path,
        params={
            "options": "temporalValues",
            "timeproperty": "createdAt",
            "timerel": "after",
            "timeAt": iso(START),
        },
    )
    assert [pair == [pair[0], first["createdAt"]] for pair in recorded.json()["temperature"]["values"]] == [
        True,
        True,
    ]


def test_aggregation_windows_exclude_after_instant_and_read_recorded_times(ngsi: NgsiClient) -> None:
    post_series(ngsi, [1.0, 2.0, 4.0, 8.0], timedelta(minutes=30))
    path = f"/temporal/entities/{SENSOR_ID}"
    after = {
        "aggrMethods": "sum,totalCount",
        "aggrPeriodDuration": "PT1H",
        "timerel": "after",
        "timeAt": iso(START),
    }
    attribute = ngsi.get(path, params=after).json()["temperature"]
    assert [period[0] for period in attribute["sum"]] == [2.0, 12.0]  # the instant of timeAt is not after it
    assert attribute["sum"][0][1:] == [iso(START), iso(START + timedelta(hours=1))]
    before = {
        "aggrMethods": "sum",
        "aggrPeriodDuration": "PT1H",
        "timerel": "before",
        "timeAt": iso(START + timedelta(minutes=90)),
    }
    assert [period[0] for period in ngsi.get(path, params=before).json()["temperature"]["sum"]] == [3.0, 4.0]
    recorded = ngsi.get(
        path, params={"aggrMethods": "sum", "aggrPeriodDuration": "P1D", "timeproperty": "createdAt"}
    )
    assert recorded.status_code == 200, recorded.text
    assert [period[0] for period in recorded.json()["temperature"]["sum"]] == [15.0]  # all written just now


def test_aggregation_refuses_too_many_periods(ngsi: NgsiClient) -> None:
    post_series(ngsi, [1.0, 2.0], timedelta(days=30))
    response = ngsi.get(
        f"/temporal/entities/{SENSOR_ID}", params={"aggrMethods": "avg", "aggrPeriodDuration": "PT1M"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["type"] == BAD_REQUEST


def test_temporal_values_of_structured_values_and_relationships(ngsi: NgsiClient) -> None:
    ngsi.create(
        {
            "id": ROOM_ID,
            "type": "Room",
            "status": {"type": "Property", "value": {"state": "open", "since": 3}, "observedAt": iso(START)},
            "inBuilding": {
                "type": "Relationship",
                "object": "urn:ngsi-ld:Building:b1",
                "observedAt": iso(START),
            },
            "label": {"type": "Property", "value": "east", "observedAt": iso(START)},
        }
    )
    response = ngsi.get(f"/temporal/entities/{ROOM_ID}", params={"options": "temporalValues"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == {"type": "Property", "values": [[{"state": "open", "since": 3}, iso(START)]]}
    assert body["inBuilding"] == {
        "type": "Relationship",
        "objects": [["urn:ngsi-ld:Building:b1", iso(START)]],
    }
    assert body["label"]["values"] == [["east", iso(START)]]
