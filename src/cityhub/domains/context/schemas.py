"""Shapes of the context hub's own API (``/api/v1/context``); the NGSI-LD API keeps the standard's shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str = Field(description="The NGSILD-Tenant value; empty for the default tenant.")
    org_unit_id: int | None
    created_at: datetime


class TenantTie(BaseModel):
    org_unit_id: int | None = Field(description="The org unit whose subtree may use the tenant; null unties.")
