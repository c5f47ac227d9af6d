"""Shapes of the context hub's own API (``/api/v1/context``); the NGSI-LD API keeps the standard's shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str = Field(description="The NGSILD-Tenant value; empty for the default tenant.")
    org_unit_id: int | None
    created_at: datetime


class TenantTie(BaseModel):
    org_unit_id: int | None = Field(description="The org unit whose subtree may use the tenant; null unties.")


MAX_TELEMETRY_READINGS = 50_000


class TelemetryReading(BaseModel):
    """One reading of one entity: attribute values observed at one time."""

    model_config = ConfigDict(populate_by_name=True)

    entity: str = Field(max_length=512, description="The entity id, a URI such as urn:ngsi-ld:Meter:42.")
    type: str | None = Field(
        None, max_length=512, description="The entity type; needed only when the entity does not exist yet."
    )
    observed_at: datetime | None = Field(
        None,
        alias="observedAt",
        description="When the values were observed (ISO 8601; no zone means UTC). Default: when received.",
    )
    attrs: dict[str, Any] = Field(
        min_length=1,
        description="Attribute values by name: plain values (21.5) or NGSI-LD attribute objects such as "
        '{"value": 21.5, "unitCode": "CEL"} or {"object": "urn:..."}; names are expanded with the core '
        "@context or the one in the Link header.",
    )


class TelemetryBatch(BaseModel):
    """A gateway's message: many readings for many entities, stored in one transaction (all or nothing)."""

    model_config = ConfigDict(populate_by_name=True)

    tenant: str = Field("", max_length=128, description="The NGSI-LD tenant; empty for the default tenant.")
    message_id: str | None = Field(
        None,
        alias="messageId",
        min_length=1,
        max_length=200,
        description="The gateway's id of this message: a message sent again with the same id is recognised "
        "and stored only once.",
    )
    readings: list[TelemetryReading] = Field(min_length=1, max_length=MAX_TELEMETRY_READINGS)


class TelemetryResult(BaseModel):
    duplicate: bool = Field(description="True when the message id was seen before: nothing was written.")
    readings: int = Field(description="Readings in the message.")
    instances: int = Field(description="Attribute instances appended to the history.")
    created: list[str] = Field(description="Ids of the entities the message created.")
    updated: int = Field(description="How many existing entities the message changed.")
