"""Bulk ingest throughput: telemetry endpoint and batch upsert against the raw bulk-insert rate, per database.

The raw rate is the database's own bulk path into a scratch table shaped like the history table (same columns,
same series index): PostgreSQL COPY, SQLite one executemany, rows prepared in memory beforehand, timed to the
commit. The endpoints are timed over HTTP against `cityhub serve` (2 app processes), each client thread a
gateway owning its meters; "rows" are history rows (attribute instances) committed.

Prints one JSON document.
Usage: .venv/bin/python bench/context_ingest.py [--backends sqlite,postgresql] [--seconds 10]
Target (issue #3): telemetry and batch upsert >= 60% of the raw rate of the same database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Column, Index, MetaData, Table, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import city_with_api_key, fresh_database, running_server, server_env
from cityhub.domains import manifests
from cityhub.domains.context.models import AttributeInstance
from cityhub.domains.context.service.bulk import HISTORY_COLUMNS
from cityhub.kernel.db import Database, utcnow

RAW_ROWS = 200_000
METERS_PER_GATEWAY = 500
READINGS_PER_REQUEST = 2_500  # 5 readings of each meter, two attributes each: 5,000 rows per request
UPSERT_ENTITIES_PER_REQUEST = 1_000  # two attributes each: 2,000 rows per request
GATEWAYS = 2
WORKERS = 2
START = datetime(2026, 1, 1, tzinfo=UTC)


def seed(url: str) -> str:
    """A city and a gateway API key allowed to write context entities; the key."""
    manifests()
    database = Database.from_url(url)
    with database.unit_of_work() as session:
        _city, secret = city_with_api_key(session, ["context.entities.write"])
    database.dispose()
    return secret


# -- raw bulk insert -----------------------------------------------------------------------------------------


def raw_rate(url: str) -> float:
    """Rows/s of the database's own bulk insert into a scratch copy of the history table."""
    database = Database.from_url(url)
    source = AttributeInstance.__table__
    scratch = Table(
        "bench_raw_instance",
        MetaData(),
        *(Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in source.columns),
        *(Index(f"bench_{index.name}", *(c.name for c in index.columns)) for index in source.indexes),
    )
    scratch.create(database.engine)
    now = utcnow()
    instance = json.dumps({"type": "Property", "value": 1.5, "observedAt": "2026-01-01T00:00:00.000Z"})
    rows = [
        (
            1,
            f"urn:ngsi-ld:Meter:{n % 1000}",
            "https://example.org/power",
            None,
            "Property",
            START + timedelta(seconds=n),
            now,
            float(n),
            instance,
            False,
        )
        for n in range(RAW_ROWS)
    ]
    names = ", ".join(HISTORY_COLUMNS)
    with database.engine.connect() as connection:
        raw = connection.connection.driver_connection
        if database.dialect == "postgresql":
            started = time.perf_counter()
            with raw.cursor() as cursor, cursor.copy(f"COPY bench_raw_instance ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            raw.commit()
        else:
            when = source.c.observed_at.type.bind_processor(database.engine.dialect)
            prepared = [(*row[:5], when(row[5]), when(row[6]), *row[7:]) for row in rows]
            started = time.perf_counter()
            raw.execute("BEGIN")
            raw.executemany(
                f"INSERT INTO bench_raw_instance ({names}) VALUES (?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
                prepared,
            )
            raw.execute("COMMIT")
        elapsed = time.perf_counter() - started
    with database.engine.begin() as connection:
        connection.execute(text("DROP TABLE bench_raw_instance"))
    database.dispose()
    return RAW_ROWS / elapsed


# -- endpoints ---------------------------------------------------------------------------------------------


def telemetry_body(gateway: int, request_number: int) -> bytes:
    readings = []
    for n in range(READINGS_PER_REQUEST):
        meter = n % METERS_PER_GATEWAY
        observed = START + timedelta(seconds=request_number * READINGS_PER_REQUEST + n)
        readings.append(
            {
                "entity": f"urn:ngsi-ld:Meter:g{gateway}-{meter}",
                "type": "Meter",
                "observedAt": observed.isoformat(),
                "attrs": {"power": 1.5 + n % 7, "voltage": {"value": 230 + n % 3, "unitCode": "VLT"}},
            }
        )
    return json.dumps({"messageId": f"g{gateway}-{request_number}", "readings": readings}).encode()


def upsert_body(gateway: int, request_number: int) -> bytes:
    observed = (START + timedelta(minutes=request_number)).isoformat()
    entities = [
        {
            "id": f"urn:ngsi-ld:Sensor:g{gateway}-{n}",
            "type": "Sensor",
            "temperature": {"type": "Property", "value": 20 + n % 5, "observedAt": observed},
            "humidity": {"type": "Property", "value": 40 + n % 9, "observedAt": observed},
        }
        for n in range(UPSERT_ENTITIES_PER_REQUEST)
    ]
    return json.dumps(entities).encode()


def drive(
    url: str, headers: dict[str, str], body_for: Any, rows_per_request: int, seconds: float
) -> dict[str, float]:
    """Each gateway thread posts its own bodies back to back for ``seconds``; committed rows per second."""
    bodies = {gateway: [body_for(gateway, n) for n in range(1, 40)] for gateway in range(GATEWAYS)}
    for gateway in range(GATEWAYS):  # warm-up: creates the entities, so the timed part updates them
        httpx.post(url, content=body_for(gateway, 0), headers=headers, timeout=120).raise_for_status()

    def gateway_loop(gateway: int) -> tuple[int, list[float]]:
        sent, latencies = 0, []
        deadline = time.perf_counter() + seconds
        with httpx.Client(timeout=120) as client:
            while time.perf_counter() < deadline and sent < len(bodies[gateway]):
                began = time.perf_counter()
                client.post(url, content=bodies[gateway][sent], headers=headers).raise_for_status()
                latencies.append((time.perf_counter() - began) * 1000)
                sent += 1
        return sent, latencies

    started = time.perf_counter()
    with ThreadPoolExecutor(GATEWAYS) as pool:
        results = list(pool.map(gateway_loop, range(GATEWAYS)))
    elapsed = time.perf_counter() - started
    requests = sum(sent for sent, _ in results)
    latencies = sorted(latency for _, values in results for latency in values)
    return {
        "rows_per_s": round(requests * rows_per_request / elapsed),
        "requests": requests,
        "rows_per_request": rows_per_request,
        "p50_request_ms": round(latencies[len(latencies) // 2], 1),
    }


def bench_backend(backend: str, seconds: float) -> dict[str, Any]:
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as var_dir:
        key = seed(url)
        raw = raw_rate(url)
        with running_server(server_env(url, var_dir), WORKERS) as base:
            headers = {"X-API-Key": key, "Content-Type": "application/json"}
            telemetry = drive(
                f"{base}/api/v1/context/telemetry", headers, telemetry_body, READINGS_PER_REQUEST * 2, seconds
            )
            upsert = drive(
                f"{base}/ngsi-ld/v1/entityOperations/upsert?options=update",
                headers,
                upsert_body,
                UPSERT_ENTITIES_PER_REQUEST * 2,
                seconds,
            )
    return {
        "raw_bulk_insert_rows_per_s": round(raw),
        "raw_method": "COPY" if backend == "postgresql" else "executemany",
        "telemetry": {**telemetry, "ratio_to_raw": round(telemetry["rows_per_s"] / raw, 3)},
        "batch_upsert": {**upsert, "ratio_to_raw": round(upsert["rows_per_s"] / raw, 3)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    results = {
        "benchmark": "context_ingest",
        "rows": "history rows (attribute instances) committed; raw: the database's bulk insert, same shape",
        "app_processes": WORKERS,
        "gateways": GATEWAYS,
        "telemetry_request": f"{READINGS_PER_REQUEST} readings x 2 attributes, {METERS_PER_GATEWAY} meters",
        "upsert_request": f"{UPSERT_ENTITIES_PER_REQUEST} entities x 2 attributes, options=update",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "target_ratio": 0.6,
        "results": {backend: bench_backend(backend, args.seconds) for backend in args.backends.split(",")},
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
