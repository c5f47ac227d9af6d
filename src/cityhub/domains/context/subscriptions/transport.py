"""Sending one notification: an HTTP POST on a kept-alive connection, or an MQTT publish (PUBACK awaited).

Both are blocking and thread-safe, so the delivery loop sends a batch from a thread pool. For MQTT the
NGSI-LD MQTT notification binding wraps the notification as ``{"metadata": {headers}, "body": notification}``;
``notifierInfo`` ``MQTT-QoS`` (0, 1, 2) and ``MQTT-Version`` (``mqtt3.1.1`` or
``mqtt5.0``) choose the publish. Brokers are reached with one client per (scheme, host, port, credentials)
and kept connected by paho's network thread.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cityhub.kernel.outbound import BlockedAddress, check_host
from cityhub.kernel.settings import get_settings

HTTP_TIMEOUT_SECONDS = 10.0
MQTT_TIMEOUT_SECONDS = 10.0
MQTT_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
MAX_REASON = 500


class DeliveryError(Exception):
    """The receiver did not take the notification; the message says why (kept as ``lastFailure`` reason)."""


@dataclass(frozen=True)
class Message:
    uri: str
    headers: dict[str, str]
    body: dict[str, Any]
    notifier_info: dict[str, str] = field(default_factory=dict)


def send(message: Message) -> None:
    """Deliver or raise DeliveryError."""
    if message.uri.startswith(("mqtt://", "mqtts://")):
        _mqtt.publish(message)
    else:
        _http.post(message)


class _Http:
    """Keep-alive connections per sending thread and (scheme, host, port).

    ``http.client`` rather than httpx: a notification is one small POST, and httpx's per-request machinery
    costs about three times as much CPU, which decides the delivery rate on a small machine.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._tls = ssl.create_default_context()

    def post(self, message: Message) -> None:
        parts = urlsplit(message.uri)
        _check_address(parts)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        content = json.dumps(message.body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {**message.headers, "Content-Length": str(len(content))}
        key = (parts.scheme, parts.hostname, parts.port)
        for attempt in (1, 2):
            connection, reused = self._connection(key)
            try:
                connection.request("POST", target, body=content, headers=headers)
                response = connection.getresponse()
                if response.will_close:
                    self._drop(key)
                else:
                    response.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                self._drop(key)
                if reused and attempt == 1:
                    continue  # the receiver closed an idle keep-alive connection: once more on a new one
                raise DeliveryError(f"{type(exc).__name__}: {exc}"[:MAX_REASON]) from None
        if not 200 <= response.status < 300:
            # The status only: the receiver's body would hand its content to whoever set the endpoint.
            raise DeliveryError(f"HTTP {response.status} {response.reason}"[:MAX_REASON])

    def _connection(self, key: tuple[Any, ...]) -> tuple[http.client.HTTPConnection, bool]:
        connections: dict[tuple[Any, ...], http.client.HTTPConnection] = self._local.__dict__.setdefault(
            "connections", {}
        )
        connection = connections.get(key)
        if connection is not None:
            return connection, True
        scheme, host, port = key
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=HTTP_TIMEOUT_SECONDS, context=self._tls
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=HTTP_TIMEOUT_SECONDS)
        connections[key] = connection
        return connection, False

    def _drop(self, key: tuple[Any, ...]) -> None:
        connection = self._local.__dict__.get("connections", {}).pop(key, None)
        if connection is not None:
            connection.close()


class _Mqtt:
    def __init__(self) -> None:
        self._clients: dict[tuple[Any, ...], mqtt.Client] = {}
        self._lock = threading.Lock()

    def publish(self, message: Message) -> None:
        parts = urlsplit(message.uri)
        version = message.notifier_info.get("MQTT-Version", "mqtt3.1.1")
        qos = int(message.notifier_info.get("MQTT-QoS", "1"))
        if qos not in (0, 1, 2) or version not in ("mqtt3.1.1", "mqtt5.0"):
            raise DeliveryError(
                "notifierInfo MQTT-QoS must be 0, 1 or 2 and MQTT-Version mqtt3.1.1 or mqtt5.0"
            )
        client = self._client(parts, version)
        payload = json.dumps({"metadata": message.headers, "body": message.body}, separators=(",", ":"))
        info = client.publish(unquote(parts.path.lstrip("/")), payload, qos=qos)
        try:
            info.wait_for_publish(MQTT_TIMEOUT_SECONDS)
        except (ValueError, RuntimeError) as exc:
            raise DeliveryError(f"MQTT publish failed: {exc}") from None
        if not info.is_published():
            raise DeliveryError(
                f"MQTT broker {parts.hostname} did not acknowledge within {MQTT_TIMEOUT_SECONDS} s"
            )

    def _client(self, parts: Any, version: str) -> mqtt.Client:
        # the password too: a subscription naming another's user name must not ride on its connection
        key = (parts.scheme, parts.hostname, parts.port, parts.username, parts.password, version)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._connect(parts, version)
                self._clients[key] = client
            return client

    @staticmethod
    def _connect(parts: Any, version: str) -> mqtt.Client:
        _check_address(parts)
        protocol = mqtt.MQTTv5 if version == "mqtt5.0" else mqtt.MQTTv311
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
        if parts.username:
            client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
        if parts.scheme == "mqtts":
            client.tls_set_context(ssl.create_default_context())
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(_client: Any, _userdata: Any, _flags: Any, reason: Any, _properties: Any) -> None:
            if reason.is_failure:
                refused.append(str(reason))
            connected.set()

        client.on_connect = on_connect
        try:
            client.connect(parts.hostname, parts.port or MQTT_DEFAULT_PORTS[parts.scheme])
        except OSError as exc:
            raise DeliveryError(f"MQTT broker {parts.hostname} unreachable: {exc}") from None
        client.loop_start()
        if not connected.wait(MQTT_TIMEOUT_SECONDS) or refused:
            client.loop_stop()
            reason = refused[0] if refused else "no answer"
            raise DeliveryError(f"MQTT broker {parts.hostname} did not accept the connection: {reason}")
        return client


_http = _Http()
_mqtt = _Mqtt()


def _check_address(parts: Any) -> None:
    """Refuse blocked networks at each connection (the name may resolve elsewhere than at creation)."""
    try:
        check_host(parts.hostname or "", parts.port, get_settings().outbound_blocked_networks)
    except BlockedAddress as exc:
        raise DeliveryError(str(exc)) from None
