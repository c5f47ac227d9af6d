"""Clauses 5.8 and 5.11: subscriptions and their notifications, delivered to a real HTTP receiver and a real
Mosquitto broker (both databases)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select, update

from cityhub.domains import manifests
from cityhub.domains.context.models import Notification, Subscription
from cityhub.domains.context.subscriptions import delivery
from cityhub.domains.context.subscriptions.delivery import deliver_due
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.settings import Settings
from cityhub.worker import Runner, build_registry
from tests.domains.context.conftest import LD, NgsiClient

BAD_REQUEST = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883


class Receiver:
    """A local HTTP endpoint recording every notification; ``status`` is what it answers."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the delivery loop opens dozens of connections at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [body for _headers, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


def deliver(database: Database, settings: Settings) -> int:
    return deliver_due(database, settings)


def room(number: int, temperature: float = 21.0, lon: float = 120.2) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Room:{number}",
        "type": "Room",
        "temperature": {"type": "Property", "value": temperature},
        "humidity": {"type": "Property", "value": 50},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, 30.25]}},
    }


def subscription(uri: str, **members: Any) -> dict[str, Any]:
    notification = {"endpoint": {"uri": uri, "accept": "application/json"}, **members.pop("notification", {})}
    return {"type": "Subscription", "entities": [{"type": "Room"}], "notification": notification, **members}


def subscribe(ngsi: NgsiClient, body: dict[str, Any]) -> str:
    response = ngsi.post("/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return str(response.headers["Location"].rsplit("/", 1)[1])


def set_temperature(ngsi: NgsiClient, number: int, value: float) -> None:
    response = ngsi.patch(
        f"/entities/urn:ngsi-ld:Room:{number}/attrs", json={"temperature": {"value": value}}
    )
    assert response.status_code == 204, response.text


# -- CRUD and validation -------------------------------------------------------------------------------------


def test_create_retrieve_list_update_delete(ngsi: NgsiClient, receiver: Receiver) -> None:
    body = subscription(
        receiver.url,
        id="urn:ngsi-ld:Subscription:rooms",
        watchedAttributes=["temperature"],
        q="temperature>20",
        description="warm rooms",
    )
    created = ngsi.post("/subscriptions", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == "/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:rooms"
    assert ngsi.post("/subscriptions", json=body).status_code == 409
    shown = ngsi.get("/subscriptions/urn:ngsi-ld:Subscription:rooms").json()
    assert shown["entities"] == [{"type": "Room"}]
    assert shown["watchedAttributes"] == ["temperature"]
    assert shown["q"] == "temperature>20"
    assert shown["status"] == "active" and shown["isActive"] is True
    assert shown["notification"]["endpoint"]["uri"] == receiver.url
    assert shown["notification"]["format"] == "normalized"
    assert shown["notification"]["timesSent"] == 0
    generated = subscribe(ngsi, subscription(receiver.url))
    assert generated.startswith("urn:ngsi-ld:Subscription:")
    listed = ngsi.get("/subscriptions", params={"count": "true", "limit": 1})
    assert listed.headers["NGSILD-Results-Count"] == "2" and len(listed.json()) == 1
    patched = ngsi.patch(
        "/subscriptions/urn:ngsi-ld:Subscription:rooms",
        json={"q": "temperature>25", "isActive": False, "notification": {"format": "keyValues"}},
    )
    assert patched.status_code == 204, patched.text
    shown = ngsi.get("/subscriptions/urn:ngsi-ld:Subscription:rooms").json()
    assert shown["q"] == "temperature>25" and shown["status"] == "paused"
    assert shown["notification"]["format"] == "keyValues"
    assert shown["notification"]["endpoint"]["uri"] == receiver.url
    assert ngsi.delete("/subscriptions/urn:ngsi-ld:Subscription:rooms").status_code == 204
    assert ngsi.get("/subscriptions/urn:ngsi-ld:Subscription:rooms").status_code == 404
    assert ngsi.delete("/subscriptions/urn:ngsi-ld:Subscription:rooms").status_code == 404


@pytest.mark.parametrize(
    "change",
    [
        {"notification": None},
        {"notification": {"endpoint": {"uri": "ftp://example.org/x"}}},
        {"notification": {"endpoint": {"uri": "mqtt://127.0.0.1:1883"}}},
        {"notification": {"endpoint": {"uri": "http://x.org/", "accept": "text/plain"}}},
        {"notification": {"format": "compact", "endpoint": {"uri": "http://x.org/"}}},
        {"type": "Entity"},
        {"q": "temperature>"},
        {"geoQ": {"georel": "near;maxDistance==-1", "geometry": "Point", "coordinates": [1, 2]}},
        {"entities": [{"id": "urn:x:1"}]},
        {"entities": None, "watchedAttributes": None},
        {"timeInterval": 10, "watchedAttributes": ["temperature"]},
        {"throttling": -1},
        {"expiresAt": "2001-01-01T00:00:00Z"},
        {"notificationTrigger": ["somethingHappened"]},
        {"unexpected": 1},
    ],
)
def test_invalid_subscriptions_are_bad_request_data(ngsi: NgsiClient, change: dict[str, Any]) -> None:
    body = subscription("http://127.0.0.1:9/notify")
    for key, value in change.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    response = ngsi.post("/subscriptions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == BAD_REQUEST


def test_unknown_tenant_and_unknown_subscription(ngsi: NgsiClient) -> None:
    assert ngsi.get("/subscriptions", tenant="nowhere").status_code == 404
    assert ngsi.get("/subscriptions").json() == []
    assert ngsi.get("/subscriptions/urn:ngsi-ld:Subscription:none").status_code == 404


# -- matching ------------------------------------------------------------------------------------------------


def test_notifies_only_changes_of_watched_attributes_matching_q(
    ngsi: NgsiClient, receiver: Receiver, database: Database, settings: Settings
) -> None:
    sub_id = subscribe(
        ngsi, subscription(receiver.url, watchedAttributes=["temperature"], q="temperature>20")
    )
    ngsi.create(room(1, temperature=15))  # q does not hold
    ngsi.patch("/entities/urn:ngsi-ld:Room:1/attrs", json={"humidity": {"value": 60}})  # not watched
    set_temperature(ngsi, 1, 25)  # the one
    ngsi.create({"id": "urn:ngsi-ld:Car:1", "type": "Car", "temperature": {"type": "Property", "value": 30}})
    assert deliver(database, settings) == 1
    [(headers, body)] = receiver.received
    assert body["type"] == "Notification" and body["subscriptionId"] == sub_id
    assert body["id"].startswith("urn:ngsi-ld:Notification:") and body["notifiedAt"].endswith("Z")
    [entity] = body["data"]
    assert entity["id"] == "urn:ngsi-ld:Room:1" and entity["type"] == "Room"
    assert entity["temperature"] == {"type": "Property", "value": 25}
    assert headers["content-type"] == "application/json"
    assert "ngsi-ld-core-context" in headers["link"]
    status = ngsi.get(f"/subscriptions/{sub_id}").json()["notification"]
    assert status["timesSent"] == 1 and status["status"] == "ok" and "lastSuccess" in status
    assert deliver(database, settings) == 0  # nothing left: delivered exactly once


def test_entity_selectors_by_id_pattern_and_type(
    ngsi: NgsiClient, receiver: Receiver, database: Database, settings: Settings
) -> None:
    subscribe(
        ngsi,
        subscription(receiver.url, entities=[{"type": "Room", "idPattern": "^urn:ngsi-ld:Room:1[0-9]$"}]),
    )
    subscribe(ngsi, subscription(receiver.url, entities=[{"type": "Room", "id": "urn:ngsi-ld:Room:3"}]))
    for number in (1, 12, 3):
        ngsi.create(room(number))
    deliver(database, settings)
    assert sorted(body["data"][0]["id"] for body in receiver.bodies) == [
        "urn:ngsi-ld:Room:12",
        "urn:ngsi-ld:Room:3",
    ]


def test_geoq_near(ngsi: NgsiClient, receiver: Receiver, database: Database, settings: Settings) -> None:
    geoq = {"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": [120.2, 30.25]}
    sub_id = subscribe(ngsi, subscription(receiver.url, geoQ=geoq))
    assert ngsi.get(f"/subscriptions/{sub_id}").json()["geoQ"]["geoproperty"] == "location"
    ngsi.create(room(1, lon=120.201))  # ~100 m away
    ngsi.create(room(2, lon=121.0))  # ~80 km away
    deliver(database, settings)
    assert [body["data"][0]["id"] for body in receiver.bodies] == ["urn:ngsi-ld:Room:1"]


def test_triggers_and_entity_deletion(
    ngsi: NgsiClient, receiver: Receiver, database: Database, settings: Settings
) -> None:
    subscribe(ngsi, subscription(receiver.url, notificationTrigger=["entityDeleted", "attributeDeleted"]))
    ngsi.create(room(1))
    set_temperature(ngsi, 1, 30)
    assert ngsi.delete("/entities/urn:ngsi-ld:Room:1/attrs/humidity").status_code == 204
    assert ngsi.delete("/entities/urn:ngsi-ld:Room:1").status_code == 204
    deliver(database, settings)
    entities = sorted((body["data"][0] for body in receiver.bodies), key=lambda entity: "deletedAt" in entity)
    assert len(entities) == 2  # sent concurrently: in any order
    attribute_deleted, deleted = entities
    assert "humidity" not in attribute_deleted and attribute_deleted["temperature"]["value"] == 30
    assert deleted["id"] == "urn:ngsi-ld:Room:1" and deleted["type"] == "Room" and "deletedAt" in deleted


# -- formats -------------------------------------------------------------------------------------------------


def test_key_values_projection_and_receiver_info(
    ngsi: NgsiClient, receiver: Receiver, database: Database, settings: Settings
) -> None:
    notification = {
        "format": "keyValues",
        "attributes": ["temperature"],
        "endpoint": {
            "uri": receiver.url,
            "accept": "application/json",
            "receiverInfo": [{"key": "X-Auth-Token", "value": "secret-1"}],
        },
    }
    subscribe(ngsi, subscription(receiver.url, notification=notification))
    ngsi.create(room(1, temperature=22))
    deliver(database, settings)
    [(headers, body)] = receiver.received
    assert body["data"] == [{"id": "urn:ngsi-ld:Room:1", "type": "Room", "temperature": 22}]
    assert headers["x-auth-token"] == "secret-1"


def test_concise_in_json_ld_with_the_subscription_context(
    ngsi: NgsiClient, receiver: Receiver, database: Database, settings: Settings
) -> None:
    context = {"brightness": "https://example.org/terms/brightness", "Lamp": "https://example.org/terms/Lamp"}
    body = {
        "@context": [context, "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"],
        "type": "Subscription",
        "entities": [{"type": "Lamp"}],
        "notification": {"format": "concise", "endpoint": {"uri": receiver.url, "accept": LD}},
    }
    response = ngsi.post("/subscriptions", json=body, headers={"Content-Type": LD})
    assert response.status_code == 201, response.text
    lamp = {"id": "urn:ngsi-ld:Lamp:1", "type": "https://example.org/terms/Lamp"}
    lamp["https://example.org/terms/brightness"] = {"type": "Property", "value": 0.5}  # type: ignore[assignment]
    ngsi.create(lamp)
    deliver(database, settings)
    [(headers, notification)] = receiver.received
    assert headers["content-type"] == LD and "link" not in headers
    assert notification["@context"] == body["@context"]
    assert notification["data"] == [{"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp", "brightness": 0.5}]


# -- throttling, expiry, pause -------------------------------------------------------------------------------


def test_throttling_lets_one_notification_through_per_period(
    ngsi: NgsiClient, receiver: Receiver, database: Database, settings: Settings
) -> None:
    sub_id = subscribe(ngsi, subscription(receiver.url, throttling=60))
    ngsi.create(room(1))
    set_temperature(ngsi, 1, 30)
    set_temperature(ngsi, 1, 31)
    deliver(database, settings)
    assert len(receiver.bodies) == 1
    with database.unit_of_work() as session:  # the period is over
        session.execute(update(Subscription).values(last_notification=utcnow() - timedelta(seconds=61)))
    set_temperature(ngsi, 1, 32)
    deliver(database, settings)
    assert [body["data"][0]["temperature"]["value"] for body in receiver.bodies] == [21.0, 32]
    assert ngsi.get(f"/subscriptions/{sub_id}").json()["notification"]["timesSent"] == 2


def test_paused_and_expired_subscriptions_stay_silent(
    ngsi: NgsiClient, receiver: Receiver, database: Database, settings: Settings
) -> None:
    sub_id = subscribe(ngsi, subscription(receiver.url))
    assert ngsi.patch(f"/subscriptions/{sub_id}", json={"isActive": False}).status_code == 204
    ngsi.create(room(1))
    deliver(database, settings)
    assert receiver.bodies == []
    assert ngsi.patch(f"/subscriptions/{sub_id}", json={"isActive": True}).status_code == 204
    set_temperature(ngsi, 1, 30)
    deliver(database, settings)
    assert len(receiver.bodies) == 1
    past = (utcnow() - timedelta(seconds=1)).isoformat()
    assert ngsi.patch(f"/subscriptions/{sub_id}", json={"expiresAt": past}).status_code == 204
    assert ngsi.get(f"/subscriptions/{sub_id}").json()["status"] == "expired"
    set_temperature(ngsi, 1, 31)
    deliver(database, settings)
    assert len(receiver.bodies) == 1


# -- failures and retries ------------------------------------------------------------------------------------


def test_failed_delivery_is_retried_with_backoff_and_counted(
    ngsi: NgsiClient, receiver: Receiver, database: Database, settings: Settings
) -> None:
    sub_id = subscribe(ngsi, subscription(receiver.url))
    receiver.status = 503
    ngsi.create(room(1))
    assert deliver(database, settings) == 1
    status = ngsi.get(f"/subscriptions/{sub_id}").json()["notification"]
    assert status["timesFailed"] == 1 and status["status"] == "failed" and "lastFailure" in status
    assert "503" in status["lastFailureReason"]
    with database.reading() as session:
        [row] = session.scalars(select(Notification)).all()
    assert not row.done and row.attempts == 1 and row.due_at > utcnow() and "503" in (row.last_error or "")
    assert deliver(database, settings) == 0  # not due yet: backoff
    receiver.status = 200
    with database.unit_of_work() as session:
        session.execute(update(Notification).values(due_at=utcnow()))
    assert deliver(database, settings) == 1
    status = ngsi.get(f"/subscriptions/{sub_id}").json()["notification"]
    assert status["timesSent"] == 2 and status["timesFailed"] == 1 and status["status"] == "ok"
    assert len(receiver.bodies) == 2 and receiver.bodies[0]["id"] == receiver.bodies[1]["id"]


def test_unreachable_endpoint_keeps_the_notification(
    ngsi: NgsiClient, database: Database, settings: Settings
) -> None:
    sub_id = subscribe(ngsi, subscription("http://127.0.0.1:9/nothing-listens"))
    ngsi.create(room(1))
    deliver(database, settings)
    assert ngsi.get(f"/subscriptions/{sub_id}").json()["notification"]["timesFailed"] == 1
    with database.reading() as session:
        assert session.scalars(select(Notification.done)).all() == [False]


# -- delivery under the job runner, concurrency, periodic notifications --------------------------------------


def test_the_deliver_job_runs_under_the_worker(
    ngsi: NgsiClient, receiver: Receiver, database: Database, settings: Settings
) -> None:
    subscribe(ngsi, subscription(receiver.url))
    ngsi.create(room(1))
    time.sleep(0.8)  # the job is due just after its half-second bucket closes
    Runner(database, settings, build_registry(manifests())).run_until_idle()
    assert len(receiver.bodies) == 1


def test_two_drainers_deliver_each_notification_exactly_once(
    ngsi: NgsiClient,
    receiver: Receiver,
    database: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(delivery, "BATCH_SIZE", 20)  # many claims, so that the drainers interleave
    subscribe(ngsi, subscription(receiver.url))
    ngsi.create(room(1))
    for value in range(300):
        set_temperature(ngsi, 1, value)
    other = Database(database.engine.execution_options())  # a second "worker" with its own sessions
    totals: list[int] = []
    threads = [
        threading.Thread(target=lambda db=db: totals.append(deliver_due(db, settings)))
        for db in (database, other)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [body["id"] for body in receiver.bodies]
    assert sum(totals) == 301 and min(totals) > 0
    assert len(ids) == 301 and len(set(ids)) == 301


def test_time_interval_sends_the_current_entities_periodically(
    ngsi: NgsiClient, receiver: Receiver, database: Database, settings: Settings
) -> None:
    ngsi.create(room(1, temperature=18))
    ngsi.create(room(2, temperature=28))
    subscribe(ngsi, subscription(receiver.url, timeInterval=60, q="temperature>20"))
    set_temperature(ngsi, 1, 19)  # periodic subscriptions ignore changes
    assert deliver(database, settings) == 1
    [body] = receiver.bodies
    assert [entity["id"] for entity in body["data"]] == ["urn:ngsi-ld:Room:2"]
    with database.reading() as session:
        pending = session.scalars(select(Notification).where(Notification.done.is_(False))).all()
    assert len(pending) == 1 and pending[0].due_at > utcnow() + timedelta(seconds=50)


# -- MQTT ----------------------------------------------------------------------------------------------------


def test_mqtt_endpoint_publishes_to_the_topic(
    ngsi: NgsiClient, database: Database, settings: Settings
) -> None:
    topic = f"cityhub/test/{uuid.uuid4().hex}"
    received: list[dict[str, Any]] = []
    subscribed = threading.Event()
    listener = mqtt.Client(CallbackAPIVersion.VERSION2)
    listener.on_subscribe = lambda *_args: subscribed.set()
    listener.on_message = lambda _c, _u, message: received.append(json.loads(message.payload))
    listener.connect(MQTT_HOST, MQTT_PORT)
    listener.subscribe(topic, qos=1)
    listener.loop_start()
    try:
        assert subscribed.wait(5)
        sub_id = subscribe(ngsi, subscription(f"mqtt://{MQTT_HOST}:{MQTT_PORT}/{topic}"))
        ngsi.create(room(1))
        assert deliver(database, settings) == 1
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        listener.loop_stop()
        listener.disconnect()
    [message] = received
    assert message["metadata"]["Content-Type"] == "application/json"
    assert message["body"]["subscriptionId"] == sub_id
    assert message["body"]["data"][0]["id"] == "urn:ngsi-ld:Room:1"
    assert ngsi.get(f"/subscriptions/{sub_id}").json()["notification"]["timesSent"] == 1


def test_endpoint_passwords_are_not_shown_back(ngsi: NgsiClient) -> None:
    body = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "notification": {"endpoint": {"uri": "mqtt://gateway:s3cret@127.0.0.1:1883/alerts"}},
    }
    created = ngsi.post("/subscriptions", json=body)
    assert created.status_code == 201, created.text
    shown = ngsi.get(created.headers["Location"].removeprefix("/ngsi-ld/v1")).json()
    assert shown["notification"]["endpoint"]["uri"] == "mqtt://gateway:****@127.0.0.1:1883/alerts"
