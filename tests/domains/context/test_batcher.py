"""Group commit of partial attribute updates: concurrent requests, one transaction, each answered right."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select

from cityhub.domains.context.models import AttributeInstance
from cityhub.kernel.db import Database
from tests.domains.context.conftest import CONTEXT_PERMISSIONS, api_key_for
from tests.factories import build_town

TEMPERATURE = "https://uri.etsi.org/ngsi-ld/default-context/temperature"


async def _burst(app: Any, key: str, bodies: list[tuple[str, str, dict[str, Any]]]) -> list[int]:
    transport = httpx.ASGITransport(app=app)
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        created = await client.post(
            "/ngsi-ld/v1/entities",
            json={"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor", "temperature": {"value": 0}},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        answers = await asyncio.gather(
            *(
                client.patch(f"/ngsi-ld/v1/entities/{entity}/attrs/{attr}", json=body, headers=headers)
                for entity, attr, body in bodies
            )
        )
        final = await client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:1", headers=headers)
    # Concurrent requests have no order of their own: the last one committed wins.
    assert final.json()["temperature"]["value"] in {body.get("value") for _e, _a, body in bodies}
    return [answer.status_code for answer in answers]


def test_concurrent_updates_commit_together_and_failures_stay_alone(app: Any, database: Database) -> None:
    key = api_key_for(database, build_town(database), CONTEXT_PERMISSIONS)
    bodies = [("urn:ngsi-ld:Sensor:1", "temperature", {"value": n}) for n in range(1, 61)]
    bodies.insert(10, ("urn:ngsi-ld:Sensor:1", "humidity", {"value": 5}))  # no such attribute
    bodies.insert(20, ("urn:ngsi-ld:Sensor:404", "temperature", {"value": 5}))  # no such entity
    bodies.insert(30, ("urn:ngsi-ld:Sensor:1", "temperature", {"type": "Relationship", "object": "urn:x:1"}))
    statuses = asyncio.run(_burst(app, key, bodies))
    assert statuses.count(204) == 60
    assert [statuses[10], statuses[20], statuses[30]] == [404, 404, 400]
    with database.reading() as session:
        history = session.scalar(
            select(func.count())
            .select_from(AttributeInstance)
            .where(AttributeInstance.attr_iri == TEMPERATURE)
        )
    assert history == 61  # the creation and every accepted update, each once


def test_the_fast_path_answers_exactly_like_the_route(ngsi: Any, database: Database, town: Any) -> None:
    """The first request of a caller goes through the route (and fills the caches), the next ones through
    the ASGI fast path: both must give the same answers."""
    ngsi.create({"id": "urn:ngsi-ld:Sensor:1", "type": "Sensor", "temperature": {"value": 0}})
    reader = api_key_for(database, town, ("context.entities.read",))
    cases = [
        ({"value": 3}, {}, 204),
        (b"{broken", {"Content-Type": "application/json"}, 400),
        ({"type": "Relationship", "object": "urn:x:1"}, {}, 400),
        ({"value": 4}, {"X-API-Key": reader}, 403),
    ]
    for _attempt in range(2):
        for body, headers, status in cases:
            send = {"content": body} if isinstance(body, bytes) else {"json": body}
            answer = ngsi.patch("/entities/urn:ngsi-ld:Sensor:1/attrs/temperature", headers=headers, **send)
            assert answer.status_code == status, answer.text
            if status != 204:
                assert answer.headers["content-type"].startswith("application/json")
                assert answer.json()["status"] == status
        missing = ngsi.patch("/entities/urn:ngsi-ld:Sensor:2/attrs/temperature", json={"value": 1})
        assert missing.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
        assert "x-request-id" in missing.headers
