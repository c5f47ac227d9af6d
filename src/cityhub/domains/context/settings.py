"""Settings of the context hub (``CITYHUB_CONTEXT__*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from cityhub.kernel.settings import DomainSettings, Settings, domain_config

CoreContextVersion = Literal["1.3", "1.4", "1.6", "1.7", "1.8", "1.9"]


class ContextSettings(DomainSettings):
    model_config = domain_config("context")

    core_context_version: CoreContextVersion = Field(
        "1.8",
        description="Version of the NGSI-LD core @context applied to every request (shipped with cityhub, "
        "never fetched): 1.3, 1.4, 1.6, 1.7, 1.8 or 1.9.",
    )
    context_map: dict[str, Path] = Field(
        default_factory=dict,
        description="JSON object mapping @context URLs to local files, e.g. "
        '{"https://example.org/ctx.jsonld": "/etc/cityhub/ctx.jsonld"}. These URLs are never fetched; an '
        "entry overrides a shipped context.",
    )
    remote_fetch: bool = Field(
        True,
        description="Download @context URLs that are neither shipped, mapped nor stored. Off: such a request "
        "fails with LdContextNotAvailable (air-gapped deployments).",
    )
    fetch_timeout_seconds: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Longest wait for connecting to a context server, for each read, and for a whole "
        "download; the request then fails with LdContextNotAvailable instead of hanging.",
    )
    max_context_bytes: int = Field(
        2_000_000,
        ge=1024,
        le=100_000_000,
        description="Largest @context document accepted from the network (bytes after decompression).",
    )
    cache_ttl_seconds: float = Field(
        3600.0,
        ge=0,
        description="How long a downloaded @context is used before it is downloaded again. When the new "
        "download fails the old copy keeps being used.",
    )
    cache_max_entries: int = Field(
        512,
        ge=1,
        le=100_000,
        description="Downloaded contexts, failures and term mappers kept in memory per process (least "
        "recently used are dropped first).",
    )
    failure_ttl_seconds: float = Field(
        60.0,
        ge=0,
        description="How long a failed download is remembered: requests naming that URL fail at once "
        "instead of waiting for the timeout again.",
    )
    disk_cache: bool = Field(
        True,
        description="Keep downloaded contexts on disk too, so a restart without network still has them.",
    )
    cache_dir: Path | None = Field(
        None, description="Directory of the on-disk context cache. Default: <var_dir>/context/jsonld-cache."
    )
    max_nesting_depth: int = Field(
        8,
        ge=1,
        le=64,
        description="How many levels of contexts that reference other context URLs are followed before the "
        "@context is refused as invalid.",
    )
    map_tile_url: str = Field(
        "",
        max_length=500,
        description="Tile URL template of the operator page's map, e.g. "
        "https://tiles.example.city/{z}/{x}/{y}.png (the city's own tile server). Empty: the map shows the "
        "entities without a base map, so the page works offline.",
    )
    map_tile_attribution: str = Field(
        "", max_length=500, description="Attribution text shown on the map for the tiles of map_tile_url."
    )

    mqtt_url: str = Field(
        "mqtt://127.0.0.1:1883",
        pattern=r"^mqtts?://[^/:]+(:\d+)?/?$",
        description="The MQTT broker the bridge (`cityhub context mqtt-bridge`) subscribes to: "
        "mqtt://host:port, or mqtts://host:port for TLS.",
    )
    mqtt_topic_prefix: str = Field(
        "cityhub",
        pattern=r"^[^#+]+$",
        description="First level(s) of every ingest topic: <prefix>/<tenant or _>/<type>/<entity id>/attrs "
        "or .../telemetry, and <prefix>/<tenant or _>/bulk.",
    )
    mqtt_client_id: str = Field(
        "cityhub-context-bridge",
        min_length=1,
        description="MQTT client id of the bridge. Its persistent session keeps unacknowledged readings "
        "while the bridge is down, so keep it stable; two bridges need two ids (and shared subscriptions).",
    )
    mqtt_username: str | None = Field(None, description="User name the bridge logs in to the broker with.")
    mqtt_password: str | None = Field(None, description="Password the bridge logs in to the broker with.")
    mqtt_session_expiry_seconds: int = Field(
        7 * 24 * 3600,
        ge=60,
        description="How long the broker keeps the bridge's session (and queues its readings) while the "
        "bridge is disconnected.",
    )
    mqtt_batch_size: int = Field(
        500,
        ge=1,
        le=65_535,
        description="Most MQTT messages stored in one transaction; each is acknowledged after the commit.",
    )
    mqtt_batch_wait_seconds: float = Field(
        0.05,
        ge=0,
        le=10,
        description="Longest wait for more messages before a partial batch is committed.",
    )

    ingest_receipt_days: int = Field(
        7,
        ge=1,
        le=3650,
        description="How long the message ids of telemetry messages (HTTP and MQTT) are remembered to "
        "recognise redeliveries; a message sent again later than that is stored again.",
    )

    def cache_directory(self, settings: Settings) -> Path | None:
        """Where downloaded contexts are kept on disk, or None when the disk cache is off."""
        if not self.disk_cache:
            return None
        return self.cache_dir or settings.var_dir / "context" / "jsonld-cache"

    def check_environment(self, settings: Settings) -> None:
        missing = {url: str(path) for url, path in self.context_map.items() if not path.is_file()}
        if missing:
            raise ValueError(f"CITYHUB_CONTEXT__CONTEXT_MAP names files that do not exist: {missing}")
