"""Fixtures of the context hub tests: an NGSI-LD client holding an API key over the whole demo town."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cityhub.kernel.db import Database
from cityhub.kernel.domain import access_catalog
from tests.factories import Town, api_key_for, build_town

SHARED = Path(__file__).resolve().parents[3].parent / "shared"  # the steering data folder beside the repo
SMART_DATA_MODELS = SHARED / "data" / "smart-data-models"

CONTEXT_PERMISSIONS = (
    "context.entities.read",
    "context.entities.write",
    "context.subscriptions.manage",
    "context.contexts.manage",
    "context.tenants.manage",
)
LD = "application/ld+json"
CORE_LINK = (
    "<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; "
    'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
)


class NgsiClient:
    """A TestClient bound to /ngsi-ld/v1 with an API key; ``tenant`` sets NGSILD-Tenant."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client = client
        self.headers = {"X-API-Key": key}

    def request(self, method: str, path: str, *, tenant: str | None = None, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        if tenant is not None:
            headers["NGSILD-Tenant"] = tenant
        return self.client.request(method, "/ngsi-ld/v1" + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def create(self, entity: dict[str, Any], **kwargs: Any) -> Any:
        response = self.post("/entities", json=entity, **kwargs)
        assert response.status_code == 201, response.text
        return response


@pytest.fixture(scope="module")
def models() -> dict[str, dict[str, Any]]:
    """The normalized example of each Smart Data Model, keyed by model name, from the shared data folder."""
    if not SMART_DATA_MODELS.is_dir():
        pytest.skip(f"Smart Data Models examples are not at {SMART_DATA_MODELS} (shared data folder absent)")
    return {
        path.parents[1].name: json.loads(path.read_text(encoding="utf-8"))
        for path in SMART_DATA_MODELS.glob("*/examples/example-normalized.jsonld")
    }


@pytest.fixture
def town(database: Database) -> Town:
    return build_town(database)


@pytest.fixture
def ngsi(client: TestClient, database: Database, town: Town) -> NgsiClient:
    assert "context.entities.read" in access_catalog.permissions
    return NgsiClient(client, api_key_for(database, town, CONTEXT_PERMISSIONS))
