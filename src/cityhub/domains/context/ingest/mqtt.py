"""The MQTT bridge: readings published to an external broker (Mosquitto) stored through the bulk path.

Topics (``<prefix>`` is ``CITYHUB_CONTEXT__MQTT_TOPIC_PREFIX``, ``_`` stands for the default tenant; names
are expanded with the core @context; an entity id must not contain ``/``):

- ``<prefix>/<tenant>/<type>/<entity id>/attrs``: an NGSI-LD attribute fragment,
  ``{"temperature": {"value": 21.5, "unitCode": "CEL", "observedAt": "..."}, "status": "ok"}``;
- ``<prefix>/<tenant>/<type>/<entity id>/telemetry``: compact values,
  ``{"temperature": 21.5, "humidity": 40, "observedAt": "...", "messageId": "optional"}``;
- ``<prefix>/<tenant>/bulk``: a gateway's bulk message, the body of ``POST /api/v1/context/telemetry``.

The entity type of the topic is used when the entity does not exist yet.

Authentication: the bridge cannot see which broker user published a message, so every message carries the
gateway's identity API key in the MQTT v5 user property ``api-key``; the bridge verifies it with identity's
API key service (a short in-process cache) and requires ``context.entities.write`` over the tenant. The broker
must let only the bridge subscribe to ``<prefix>/#`` (a Mosquitto ACL), so keys are seen by nobody else, and
use TLS (``mqtts://``) beyond localhost. Messages without a valid key are dropped and logged.

Delivery: QoS 1 with manual acknowledgement and a persistent session (clean start off, a long session expiry):
a message is acknowledged to the broker only after the transaction holding it committed, so a crash (even
``kill -9``) makes the broker deliver every unacknowledged message again. Redeliveries are recognised through
``context_ingest_receipt`` by gateway and message key: the payload's ``messageId``, else a hash of topic and
payload when the payload carries an ``observedAt`` (one observation is one message). Messages that carry
neither are stored each time they arrive. Messages are batched (``mqtt_batch_size``) into one transaction.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.orm import Session

from cityhub.domains.context.errors import BadRequestData
from cityhub.domains.context.ingest.telemetry import (
    Reading,
    claim_message,
    ingest,
    observation_stamp,
    parse_message,
)
from cityhub.domains.context.jsonld import JsonLdContextError, TermMapper
from cityhub.domains.context.ngsi.common import WRITE, resolver_for
from cityhub.domains.context.service.bulk import collector_paused
from cityhub.domains.context.service.tenants import (
    DEFAULT_TENANT,
    TenantRef,
    authorize,
    check_tenant_name,
    find_tenant,
)
from cityhub.domains.context.settings import ContextSettings
from cityhub.domains.context.store.document import timestamp
from cityhub.domains.identity import Principal, principal_from_api_key
from cityhub.kernel import jsontext
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.errors import Problem
from cityhub.kernel.settings import Settings

log = logging.getLogger("cityhub.context.mqtt")

API_KEY_PROPERTY = "api-key"
DEFAULT_TENANT_LEVEL = "_"
PRINCIPAL_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class Message:
    """One decoded MQTT message: whose, for which tenant, its readings and its redelivery key."""

    topic: str
    api_key: str
    tenant: str
    readings: list[Reading]
    key: str | None


class Rejected(Exception):
    """A message that can never be stored (malformed, unauthenticated): acknowledged and dropped."""


# -- decoding ---------------------------------------------------------------------------------------------


def decode(prefix: str, message: mqtt.MQTTMessage, mapper: TermMapper, received_at: datetime) -> Message:
    levels = message.topic.removeprefix(prefix.rstrip("/") + "/").split("/")
    api_key = _api_key(message)
    try:
        payload = jsontext.loads(message.payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(f"the payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise Rejected("the payload must be a JSON object")
    if len(levels) == 2 and levels[1] == "bulk":
        tenant, readings, message_id = _bulk(levels[0], payload, mapper, received_at)
    elif len(levels) == 4 and levels[3] in ("attrs", "telemetry"):
        tenant = _tenant(levels[0])
        message_id = payload.pop("messageId", None) if levels[3] == "telemetry" else None
        readings = [_single(levels, payload, mapper, received_at)]
    else:
        raise Rejected(f"unknown topic {message.topic}")
    return Message(message.topic, api_key, tenant, readings, _key(message, message_id))


def _api_key(message: mqtt.MQTTMessage) -> str:
    properties = getattr(message, "properties", None)
    for name, value in getattr(properties, "UserProperty", None) or []:
        if name == API_KEY_PROPERTY:
            return str(value)
    raise Rejected(f"no {API_KEY_PROPERTY} user property (MQTT v5) on {message.topic}")


def _tenant(level: str) -> str:
    try:
        return check_tenant_name(DEFAULT_TENANT if level == DEFAULT_TENANT_LEVEL else level)
    except BadRequestData as exc:
        raise Rejected(str(exc.detail)) from None


def _bulk(
    level: str, payload: dict[str, Any], mapper: TermMapper, received_at: datetime
) -> tuple[str, list[Reading], str | None]:
    tenant = _tenant(level)
    try:
        message = parse_message(payload, mapper, received_at)
    except Problem as exc:
        raise Rejected(f"invalid bulk message: {exc.detail} {exc.extensions.get('errors', '')}") from None
    if message.tenant not in ("", tenant):
        raise Rejected(f"the message names tenant {message.tenant!r}, the topic {tenant!r}")
    return tenant, message.readings, message.message_id


def _single(levels: list[str], payload: dict[str, Any], mapper: TermMapper, received_at: datetime) -> Reading:
    _tenant_level, entity_type, entity_id, kind = levels
    observed_at = timestamp(received_at)
    if kind == "telemetry" and "observedAt" in payload:
        try:
            observed_at = observation_stamp(payload.pop("observedAt"))
        except BadRequestData as exc:
            raise Rejected(str(exc.detail)) from None
    if not payload:
        raise Rejected("the message has no attribute")
    attrs = {mapper.expand_term(name): mapper.expand_attribute(value) for name, value in payload.items()}
    return Reading(entity_id, (mapper.expand_term(entity_type),), observed_at, attrs)


def _key(message: mqtt.MQTTMessage, message_id: Any) -> str | None:
    if message_id is not None:
        return str(message_id)
    if b"observedAt" in message.payload:
        digest = hashlib.sha256(message.topic.encode() + b"\x00" + message.payload).hexdigest()
        return f"sha256:{digest}"
    return None


# -- storing ----------------------------------------------------------------------------------------------


class Gateways:
    """API keys verified with identity, remembered for a short while (a key is checked once per batch)."""

    def __init__(self, ttl: float = PRINCIPAL_CACHE_SECONDS) -> None:
        self._ttl = ttl
        self._known: dict[str, tuple[float, Principal]] = {}

    def principal(self, session: Session, api_key: str) -> Principal:
        hit = self._known.get(api_key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        try:
            with session.begin_nested():
                principal = principal_from_api_key(session, api_key)
        except Problem as exc:
            raise Rejected(f"gateway refused: {exc.detail}") from None
        self._known[api_key] = (time.monotonic() + self._ttl, principal)
        return principal


def store(session: Session, messages: list[Message], gateways: Gateways) -> None:
    """Store a batch in the session's transaction; a message that cannot be stored is logged and skipped."""
    groups: dict[tuple[int, str], list[tuple[Message, str]]] = defaultdict(list)
    tenants: dict[int, TenantRef] = {}
    for message in messages:
        try:
            principal = gateways.principal(session, message.api_key)
            tenant = find_tenant(session, message.tenant, create=True)
            authorize(principal, WRITE, tenant)
        except (Rejected, Problem) as exc:
            log.warning("dropped MQTT message on %s: %s", message.topic, exc)
            continue
        tenants[tenant.id] = tenant
        groups[(tenant.id, principal.actor)].append((message, principal.actor))
    for (tenant_id, _gateway), group in groups.items():
        _store_group(session, tenants[tenant_id], group)


def _store_group(session: Session, tenant: TenantRef, group: list[tuple[Message, str]]) -> None:
    """The whole group in one bulk write; when it fails, each message alone, so only bad ones are lost."""
    try:
        with session.begin_nested():
            fresh = [
                message
                for message, gateway in group
                if message.key is None or claim_message(session, gateway, message.key)
            ]
            if fresh:
                ingest(session, tenant, [reading for message in fresh for reading in message.readings])
        return
    except Problem:
        pass
    for message, gateway in group:
        try:
            with session.begin_nested():
                ingest(session, tenant, message.readings, gateway=gateway, message_id=message.key)
        except Problem as exc:
            log.warning("dropped MQTT message on %s: %s %s", message.topic, exc, exc.extensions)


# -- the bridge -------------------------------------------------------------------------------------------


class Bridge:
    """Subscribes with QoS 1 and a persistent session; stores batches and acknowledges after each commit."""

    def __init__(self, database: Database, settings: Settings, section: ContextSettings) -> None:
        self.database = database
        self.section = section
        self.mapper = resolver_for(settings).mapper(None)
        self.gateways = Gateways()
        self.received: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.subscribed = threading.Event()
        self.client = self._client()

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.section.mqtt_client_id, protocol=mqtt.MQTTv5
        )
        client.manual_ack_set(True)
        if self.section.mqtt_username is not None:
            client.username_pw_set(self.section.mqtt_username, self.section.mqtt_password)
        if urlsplit(self.section.mqtt_url).scheme == "mqtts":
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    @property
    def topic(self) -> str:
        return self.section.mqtt_topic_prefix.rstrip("/") + "/#"

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("the MQTT broker refused the bridge: %s", reason)
            return
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[Any], _props: Any
    ) -> None:
        # Only the SUBACK makes the subscription real: a message published before it reaches no session.
        if any(reason.is_failure for reason in reasons):
            log.error("the MQTT broker refused the subscription to %s: %s", self.topic, reasons)
            return
        self.subscribed.set()
        log.info("subscribed to %s", self.topic)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.received.put(message)

    def connect(self) -> None:
        url = urlsplit(self.section.mqtt_url)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.section.mqtt_session_expiry_seconds
        properties.ReceiveMaximum = min(self.section.mqtt_batch_size, 65_535)
        default_port = 8883 if url.scheme == "mqtts" else 1883
        self.client.connect(
            url.hostname or "127.0.0.1",
            url.port or default_port,
            keepalive=30,
            clean_start=False,
            properties=properties,
        )
        self.client.loop_start()

    def run(self, stop: threading.Event) -> None:
        """Store batches until ``stop`` is set; then disconnect (unacknowledged messages stay queued)."""
        self.connect()
        try:
            while not stop.is_set():
                batch = list(self._next_batch(stop))
                if batch:
                    self.process(batch)
        finally:
            self.client.disconnect()
            self.client.loop_stop()

    def _next_batch(self, stop: threading.Event) -> Iterator[mqtt.MQTTMessage]:
        try:
            yield self.received.get(timeout=0.5)
        except queue.Empty:
            return
        deadline = time.monotonic() + self.section.mqtt_batch_wait_seconds
        for _count in range(self.section.mqtt_batch_size - 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or stop.is_set():
                return
            try:
                yield self.received.get(timeout=remaining)
            except queue.Empty:
                return

    def process(self, batch: list[mqtt.MQTTMessage]) -> None:
        """Store one batch in one transaction, then acknowledge every message of it (dropped ones too)."""
        received_at = utcnow()
        decoded: list[Message] = []
        for message in batch:
            try:
                decoded.append(decode(self.section.mqtt_topic_prefix, message, self.mapper, received_at))
            except (Rejected, Problem, JsonLdContextError) as exc:
                log.warning("dropped MQTT message on %s: %s", message.topic, exc)
        if decoded:
            with collector_paused(), self.database.unit_of_work() as session:
                store(session, decoded, self.gateways)
        for message in batch:
            self.client.ack(message.mid, message.qos)


def run_bridge(settings: Settings, section: ContextSettings, stop: threading.Event) -> None:
    database = Database.from_settings(settings)
    try:
        Bridge(database, settings, section).run(stop)
    finally:
        database.dispose()
