"""NGSI-LD entity queries over 100k entities: type + q, and geo ``near`` 1 km, on SQLite and PostgreSQL.

Loads the entities straight into the tables (one INSERT per chunk, rows in exactly the stored form the
service writes: documents from ``store.document``, timestamps by ``stamped``, geo columns by
``geo_columns``), then measures p50/p95/p99 of
  (a) ``type=AirQualityObserved&q=...`` (three q shapes with random thresholds, ~2-25 % selective),
  (b) ``georel=near;maxDistance==1000`` around random points of the 30 x 30 km city,
with limit=20, server-side (the service call) and over HTTP (one connection, a sequential httpx loop against a
real ``cityhub serve``), and the same with ``count=true``.

Prints one JSON document.
Usage: .venv/bin/python bench/context_query.py [--entities 100000] [--requests 300]
       [--backends sqlite,postgresql]
Targets (issue #3): type + q p95 <= 20 ms; near 1 km p95 <= 10 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import city_with_api_key, fresh_database, running_server, server_env
from cityhub.domains import manifests
from cityhub.domains.context.jsonld import ContextResolver
from cityhub.domains.context.models import Entity, EntityType
from cityhub.domains.context.query.geoquery import parse_geoquery
from cityhub.domains.context.query.qlang import parse
from cityhub.domains.context.service.entities import geo_columns
from cityhub.domains.context.service.query import EntityQuery, EntitySelector, query_entities
from cityhub.domains.context.service.tenants import find_tenant
from cityhub.domains.context.store.document import parse_entity, stamped, timestamp
from cityhub.kernel.db import Database, utcnow

TYPES = ("AirQualityObserved", "ParkingSpot", "WeatherObserved", "Streetlight")
CENTRE = (120.15, 30.28)  # Hangzhou
SPAN_DEGREES = (30_000 / (111_320 * 0.8638), 30_000 / 111_320)  # 30 km east-west (cos 30.28°), north-south
CHUNK = 2_000
STATUSES = ("ok", "ok", "ok", "warning", "faulty")


def point(rng: random.Random) -> list[float]:
    return [
        round(CENTRE[0] + (rng.random() - 0.5) * SPAN_DEGREES[0], 6),
        round(CENTRE[1] + (rng.random() - 0.5) * SPAN_DEGREES[1], 6),
    ]


def entity_body(number: int, rng: random.Random) -> dict[str, Any]:
    kind = TYPES[number % len(TYPES)]
    body: dict[str, Any] = {
        "id": f"urn:ngsi-ld:{kind}:{number}",
        "type": kind,
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": point(rng)}},
        "status": {"type": "Property", "value": rng.choice(STATUSES)},
        "name": {"type": "Property", "value": f"{kind} {number}"},
        "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:{number}"},
    }
    if kind == "AirQualityObserved":
        body["temperature"] = {
            "type": "Property",
            "value": round(rng.gauss(18, 8), 1),
            "unitCode": "CEL",
            "observedAt": "2026-11-20T10:00:00Z",
        }
        body["pm10"] = {"type": "Property", "value": rng.randint(0, 120), "unitCode": "GQ"}
        body["no2"] = {"type": "Property", "value": round(rng.uniform(0, 200), 2), "unitCode": "GQ"}
    else:
        body["occupancy"] = {"type": "Property", "value": rng.randint(0, 100)}
    return body


def load(url: str, count: int) -> None:
    """``count`` entities in the default tenant, in the service's stored form, inserted in chunks."""
    manifests()
    mapper = ContextResolver().mapper(None)
    rng = random.Random(7)
    database = Database.from_url(url)
    with database.unit_of_work() as session:
        tenant = find_tenant(session, "", create=True)
        first_pk = int(session.scalar(select(func.coalesce(func.max(Entity.pk), 0))) or 0) + 1
    for start in range(0, count, CHUNK):
        entities, types = [], []
        for number in range(start, min(start + CHUNK, count)):
            parsed = parse_entity(mapper.expand_entity(entity_body(number, rng)))
            now = utcnow()
            stamp = timestamp(now)
            attrs = {name: [stamped(i, stamp) for i in instances] for name, instances in parsed.attrs.items()}
            pk = first_pk + number
            entities.append(
                {
                    "pk": pk,
                    "tenant_id": tenant.id,
                    "entity_id": parsed.entity_id,
                    "types": parsed.types,
                    "scopes": None,
                    "attrs": attrs,
                    "created_at": now,
                    "modified_at": now,
                    **geo_columns(attrs),
                }
            )
            types += [{"entity_pk": pk, "type_iri": iri, "tenant_id": tenant.id} for iri in parsed.types]
        with database.unit_of_work() as session:
            session.execute(insert(Entity), entities)
            session.execute(insert(EntityType), types)
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if database.engine.dialect.name == "postgresql":
            connection.exec_driver_sql("VACUUM ANALYZE context_entity")
            connection.exec_driver_sql("VACUUM ANALYZE context_entity_type")
        else:
            connection.exec_driver_sql("ANALYZE")
    database.dispose()


def type_q_params(rng: random.Random) -> dict[str, str]:
    shapes = (
        lambda: f"temperature>{rng.uniform(24, 32):.1f}",
        lambda: f'pm10=={rng.randint(20, 60)}..{rng.randint(70, 90)};status=="ok"',
        lambda: f'status=="faulty"|no2>{rng.uniform(150, 190):.2f}',
    )
    return {"type": "AirQualityObserved", "q": rng.choice(shapes)(), "limit": "20"}


def near_params(rng: random.Random) -> dict[str, str]:
    lon, lat = point(rng)
    return {
        "georel": "near;maxDistance==1000",
        "geometry": "Point",
        "coordinates": json.dumps([lon, lat]),
        "limit": "20",
    }


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))], 2)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "requests": len(ordered)}


def service_query(params: dict[str, str], expand: Callable[[str], str]) -> EntityQuery:
    geo = None
    if "georel" in params:
        geo = parse_geoquery(params["georel"], params["geometry"], params["coordinates"], None)
    types = (expand(params["type"]),) if "type" in params else ()
    return EntityQuery(
        selectors=[EntitySelector(types=types)] if types else [],
        q=parse(params["q"]) if "q" in params else None,
        geo=geo,
        geo_property=expand("location"),
        limit=int(params["limit"]),
        count=params.get("count") == "true",
        attribute_resolver=expand,
    )


def measure_service(
    url: str, make: Callable[[random.Random], dict[str, str]], requests: int, count: bool
) -> dict[str, Any]:
    database = Database.from_url(url)
    expand = ContextResolver().mapper(None).expand_term
    rng = random.Random(11)
    samples, found = [], []
    for _ in range(requests):
        params = make(rng) | ({"count": "true"} if count else {})
        started = time.perf_counter()
        with database.session() as session:
            tenant = find_tenant(session, "", create=False)
            result = query_entities(session, tenant, service_query(params, expand))
        samples.append((time.perf_counter() - started) * 1000)
        found.append(result.count if count else len(result.entities))
    database.dispose()
    return percentiles(samples) | {"mean_results": round(sum(f or 0 for f in found) / len(found), 1)}


def measure_http(
    base: str,
    key: str,
    make: Callable[[random.Random], dict[str, str]],
    requests: int,
    count: bool,
) -> dict[str, Any]:
    rng = random.Random(13)
    samples = []
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
        for index in range(requests + 20):
            params = make(rng) | ({"count": "true"} if count else {})
            started = time.perf_counter()
            response = client.get("/ngsi-ld/v1/entities", params=params)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if index >= 20:  # the first requests warm the process (imports, context mapper, pools)
                samples.append(elapsed)
    return percentiles(samples)


def api_key(url: str) -> str:
    database = Database.from_url(url)
    with database.unit_of_work() as session:
        _city, secret = city_with_api_key(session, ["context.entities.read"])
    database.dispose()
    return secret


SCENARIOS: dict[str, Callable[[random.Random], dict[str, str]]] = {
    "type_q": type_q_params,
    "near_1km": near_params,
}


def scenarios(
    measure: Callable[[Callable[[random.Random], dict[str, str]], int, bool], dict[str, Any]],
    requests: int,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each query shape with limit=20, then with count=true (fewer requests: every match is evaluated)."""
    for name, make in SCENARIOS.items():
        yield name, measure(make, requests, False)
        yield f"{name}_count", measure(make, max(requests // 5, 10), True)


def bench_backend(backend: str, entities: int, requests: int) -> dict[str, Any]:
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as var_dir:
        started = time.perf_counter()
        load(url, entities)
        loaded_s = round(time.perf_counter() - started, 1)
        service = dict(scenarios(lambda make, n, count: measure_service(url, make, n, count), requests))
        key = api_key(url)
        with running_server(server_env(url, var_dir), workers=1) as base:
            http = dict(scenarios(lambda make, n, count: measure_http(base, key, make, n, count), requests))
    return {"entities": entities, "load_seconds": loaded_s, "service": service, "http": http}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {
        "benchmark": "context_query",
        "queries": {
            "type_q": "type=AirQualityObserved (25k of the entities) & q in three shapes, limit=20",
            "near_1km": "georel=near;maxDistance==1000 at random points, no type, limit=20",
            "*_count": "the same with count=true (every match evaluated and counted)",
        },
        "http": "one connection, sequential httpx requests, 1 app process (cityhub serve)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "targets": {"type_q_p95_ms": 20, "near_1km_p95_ms": 10},
        "results": {
            backend: bench_backend(backend, args.entities, args.requests)
            for backend in args.backends.split(",")
        },
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
