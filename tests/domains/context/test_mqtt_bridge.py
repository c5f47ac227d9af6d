"""The MQTT bridge against the real Mosquitto on 127.0.0.1:1883, with a paho-mqtt publisher (both databases).

Includes the crash test: the bridge runs as a subprocess, is killed with SIGKILL mid-stream and restarted;
every published reading must then be stored exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import distinct, func, select

from cityhub.domains.context.ingest.mqtt import Bridge
from cityhub.domains.context.models import AttributeInstance, Entity
from cityhub.domains.context.settings import ContextSettings
from cityhub.kernel.db import Database
from cityhub.kernel.settings import Settings
from tests.domains.context.conftest import CONTEXT_PERMISSIONS, NgsiClient, api_key_for
from tests.factories import Town

BROKER = ("127.0.0.1", 1883)
IN_CI = os.environ.get("CI", "").lower() == "true"
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"


def _broker_up() -> bool:
    try:
        with socket.create_connection(BROKER, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def broker() -> None:
    if not _broker_up():
        message = f"Mosquitto is not running on {BROKER[0]}:{BROKER[1]} (make services starts it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def prefix() -> str:
    return f"cityhub-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def gateway_key(database: Database, town: Town) -> str:
    return api_key_for(database, town, CONTEXT_PERMISSIONS)


class Publisher:
    """A paho-mqtt gateway publishing with QoS 1 and its API key as an MQTT v5 user property."""

    def __init__(self, api_key: str) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.api_key = api_key
        self.client.connect(*BROKER)
        self.client.loop_start()

    def publish(self, topic: str, payload: Any, api_key: str | None = None) -> None:
        properties = Properties(PacketTypes.PUBLISH)
        properties.UserProperty = [("api-key", api_key or self.api_key)]
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, body, qos=1, properties=properties).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(gateway_key: str) -> Iterator[Publisher]:
    publisher = Publisher(gateway_key)
    yield publisher
    publisher.close()


def forget_session(client_id: str) -> None:
    """End the bridge's persistent session on the broker, so tests leave nothing queued behind."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(*BROKER, clean_start=True)
    client.loop_start()
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached in {seconds} s")
        time.sleep(0.1)


def history_count(database: Database) -> int:
    with database.reading() as session:
        return int(session.scalar(select(func.count()).select_from(AttributeInstance)) or 0)


@pytest.fixture
def bridge(settings: Settings, database: Database, prefix: str) -> Iterator[Bridge]:
    section = ContextSettings(mqtt_topic_prefix=prefix, mqtt_client_id=f"{prefix}-bridge")
    running = Bridge(database, settings, section)
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,), daemon=True)
    thread.start()
    assert running.subscribed.wait(10), "the bridge did not subscribe"
    yield running
    stop.set()
    thread.join(10)
    forget_session(section.mqtt_client_id)


def test_topics_store_readings(
    bridge: Bridge, publisher: Publisher, prefix: str, ngsi: NgsiClient, database: Database
) -> None:
    publisher.publish(
        f"{prefix}/_/Room/urn:ngsi-ld:Room:1/attrs",
        {"temperature": {"value": 21.5, "unitCode": "CEL", "observedAt": "2026-11-01T10:00:00Z"}},
    )
    publisher.publish(
        f"{prefix}/_/Room/urn:ngsi-ld:Room:1/telemetry",
        {"temperature": 22.5, "humidity": 40, "observedAt": "2026-11-01T10:01:00Z"},
    )
    publisher.publish(
        f"{prefix}/east/bulk",
        {
            "messageId": "bulk-1",
            "readings": [
                {"entity": "urn:ngsi-ld:Meter:1", "type": "Meter", "attrs": {"power": 1}},
                {"entity": "urn:ngsi-ld:Meter:2", "type": "Meter", "attrs": {"power": 2}},
            ],
        },
    )
    wait_for(lambda: history_count(database) == 5)
    room = ngsi.get("/entities/urn:ngsi-ld:Room:1").json()
    assert room["type"] == "Room"
    assert room["temperature"] == {
        "type": "Property",
        "value": 22.5,
        "unitCode": "CEL",
        "observedAt": "2026-11-01T10:01:00.000Z",
    }
    assert room["humidity"]["value"] == 40
    assert ngsi.get("/entities/urn:ngsi-ld:Meter:2", tenant="east").json()["power"]["value"] == 2


def test_duplicates_and_refused_messages_store_nothing(
    bridge: Bridge, publisher: Publisher, prefix: str, database: Database, gateway_key: str
) -> None:
    topic = f"{prefix}/_/Meter/urn:ngsi-ld:Meter:1/telemetry"
    reading = {"power": 1.5, "observedAt": "2026-11-01T10:00:00Z"}
    publisher.publish(topic, reading)
    publisher.publish(topic, reading)  # a redelivery: same observation
    publisher.publish(topic, {"power": 3, "messageId": "m-1"})
    publisher.publish(topic, {"power": 3, "messageId": "m-1"})
    publisher.publish(topic, {"power": 4}, api_key="chk_00000000_not-a-key")
    publisher.publish(topic, b"not json")
    publisher.publish(f"{prefix}/_/Meter/urn:ngsi-ld:Meter:2/telemetry", {"power": "x", "location": 1})
    publisher.publish(topic, {"power": 5, "observedAt": "2026-11-01T10:05:00Z"})  # the last one: a marker
    wait_for(lambda: history_count(database) >= 3)
    time.sleep(0.5)
    with database.reading() as session:
        values = session.scalars(select(AttributeInstance.value_num).order_by(AttributeInstance.id)).all()
        assert session.scalar(select(func.count()).select_from(Entity)) == 1
    assert values == [1.5, 3.0, 5.0]


@pytest.fixture
def crash_env(
    settings: Settings, database: Database, prefix: str, tmp_path: Path
) -> Iterator[dict[str, str]]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CITYHUB_")}
    env |= {
        "CITYHUB_ENV": "test",
        "CITYHUB_DATABASE_URL": database.engine.url.render_as_string(hide_password=False),
        "CITYHUB_VAR_DIR": str(tmp_path / "bridge-var"),
        "CITYHUB_JOBS__EMBEDDED_WORKER": "false",
        "CITYHUB_CONTEXT__MQTT_TOPIC_PREFIX": prefix,
        "CITYHUB_CONTEXT__MQTT_CLIENT_ID": f"{prefix}-bridge",
        "CITYHUB_CONTEXT__MQTT_BATCH_SIZE": "50",
    }
    yield env
    forget_session(f"{prefix}-bridge")


BRIDGE_LOGS: list[str] = []  # every bridge's stderr, shown when a test fails


def start_bridge(env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "cityhub.cli", "context", "mqtt-bridge"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    stderr = process.stderr
    for line in stderr:
        BRIDGE_LOGS.append(line)
        if "subscribed to" in line:
            # Keep reading, so the pipe never fills up, and keep the lines for a failure message.
            threading.Thread(target=lambda: BRIDGE_LOGS.extend(stderr), daemon=True).start()
            return process
        if time.monotonic() > deadline:
            break
    process.kill()
    raise AssertionError(f"the bridge did not start: {process.stderr.read()}")


def test_kill_9_mid_stream_loses_and_duplicates_nothing(
    crash_env: dict[str, str], publisher: Publisher, prefix: str, database: Database
) -> None:
    count = 400
    started = datetime(2026, 11, 1, tzinfo=UTC)
    bridge = start_bridge(crash_env)
    try:
        for sequence in range(count):
            observed = (started + timedelta(seconds=sequence)).isoformat().replace("+00:00", "Z")
            topic = f"{prefix}/_/Meter/urn:ngsi-ld:Meter:{sequence % 4}/telemetry"
            publisher.publish(topic, {"sequence": sequence, "observedAt": observed})
            if sequence == count // 3:
                wait_for(lambda: history_count(database) > 0, seconds=60)
                bridge.send_signal(signal.SIGKILL)
                bridge.wait(10)
            elif sequence == 2 * count // 3:
                bridge = start_bridge(crash_env)  # the rest arrive while it catches up
        try:
            wait_for(lambda: history_count(database) >= count, seconds=180)  # generous: CI machines are busy
        except AssertionError as late:
            log = "".join(BRIDGE_LOGS[-40:])
            raise AssertionError(f"{history_count(database)} of {count} stored; bridge log:\n{log}") from late
        time.sleep(1.0)  # late redeliveries, if any, would land now
    finally:
        bridge.send_signal(signal.SIGTERM)
        bridge.wait(20)
    with database.reading() as session:
        rows = session.execute(select(AttributeInstance.instance, AttributeInstance.entity_id)).all()
        distinct_observations = session.scalar(select(func.count(distinct(AttributeInstance.observed_at))))
    sequences = sorted(row.instance["value"] for row in rows)
    assert len(rows) == count, f"{len(rows)} history rows for {count} published readings"
    assert sequences == list(range(count))
    assert distinct_observations == count
    assert all(row.entity_id == f"urn:ngsi-ld:Meter:{row.instance['value'] % 4}" for row in rows)
