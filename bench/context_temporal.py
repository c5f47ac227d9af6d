"""Temporal API latency over a large history (issue #3), SQLite and PostgreSQL.

Fills ``context_attribute_instance`` with ``--rows`` rows (PostgreSQL COPY, SQLite executemany in large
transactions) spread over many entities and attributes, interleaved in time order like live telemetry; one
target series holds 30 days at one reading per minute. Then times, ``--runs`` times each, in process
(the service call, one read session each) and over HTTP (one app process, sequential requests):

- the last 24 h of the target attribute (1,440 instances, normalized representation);
- the hourly ``avg`` over the 30 days (720 periods).

Prints one JSON document.
Usage: .venv/bin/python bench/context_temporal.py [--rows 10000000] [--db sqlite,postgresql] [--runs 50]
Targets: last 24 h <= 20 ms, hourly avg over 30 days <= 100 ms (with 10M history rows).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Table, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import city_with_api_key, fresh_database, running_server, server_env
from cityhub.domains import manifests
from cityhub.domains.context.models import AttributeInstance
from cityhub.domains.context.service import temporal
from cityhub.domains.context.service.bulk import HISTORY_COLUMNS
from cityhub.domains.context.service.temporal import TemporalView, View
from cityhub.domains.context.service.temporal.window import Aggregation, TemporalQuery, TimeRel
from cityhub.domains.context.service.temporal.writes import mark_types
from cityhub.domains.context.service.tenants import find_tenant
from cityhub.kernel.db import Database

VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"
TARGET = "urn:ngsi-ld:Sensor:target"
TARGET_ATTR = VOCAB + "temperature"
OTHER_ATTRS = [VOCAB + name for name in ("temperature", "humidity", "pm25", "noise", "power")]
OTHER_ENTITIES = 5_000
END = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 30
MINUTES = DAYS * 24 * 60
COLUMNS = HISTORY_COLUMNS
BATCH = 200_000


def history_rows(total: int, tenant_id: int) -> Iterator[tuple[Any, ...]]:
    """``total`` rows in time order: each minute the target's reading and its share of the others."""
    others = total - MINUTES
    start = END - timedelta(minutes=MINUTES)
    emitted = 0
    for minute in range(MINUTES):
        moment = start + timedelta(minutes=minute)
        value = round(20 + 5 * ((minute % 1440) / 1440) + (minute % 7) * 0.1, 2)
        yield _row(tenant_id, TARGET, TARGET_ATTR, moment, value)
        due = others * (minute + 1) // MINUTES
        while emitted < due:
            entity = f"urn:ngsi-ld:Sensor:{emitted % OTHER_ENTITIES}"
            attr = OTHER_ATTRS[(emitted // OTHER_ENTITIES) % len(OTHER_ATTRS)]
            yield _row(
                tenant_id, entity, attr, moment + timedelta(milliseconds=emitted % 60_000), emitted % 97
            )
            emitted += 1


def _row(tenant_id: int, entity_id: str, attr: str, moment: datetime, value: float) -> tuple[Any, ...]:
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    instance = json.dumps({"type": "Property", "value": value, "observedAt": stamp, "unitCode": "CEL"})
    return (tenant_id, entity_id, attr, None, "Property", moment, moment, float(value), instance, False)


def fill_postgres(url: str, total: int, tenant_id: int) -> None:
    import psycopg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        with cursor.copy(f"COPY context_attribute_instance ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in history_rows(total, tenant_id):
                copy.write_row(row)
        connection.commit()


def fill_sqlite(url: str, total: int, tenant_id: int) -> None:
    connection = sqlite3.connect(make_url(url).database or "")
    # A bench fill, not the app's settings: no journal, no fsync, the index in memory while it grows.
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000"):
        connection.execute(f"PRAGMA {pragma}")
    placeholders = ", ".join("?" * len(COLUMNS))
    statement = f"INSERT INTO context_attribute_instance ({', '.join(COLUMNS)}) VALUES ({placeholders})"  # noqa: S608
    batch: list[tuple[Any, ...]] = []
    for row in history_rows(total, tenant_id):
        moment = row[5].strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite storage format
        batch.append((*row[:5], moment, moment, row[7], row[8], 0))
        if len(batch) >= BATCH:
            connection.executemany(statement, batch)
            connection.commit()
            batch.clear()
    connection.executemany(statement, batch)
    connection.commit()
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()


@contextmanager
def history_index_built_after(database: Database) -> Iterator[None]:
    """Bulk load, then index: the migration's series index is dropped for the fill and built again from its
    declaration in ``models.py`` (one sorted build instead of ten million random inserts)."""
    table = AttributeInstance.__table__
    assert isinstance(table, Table)
    indexes = table.indexes
    with database.engine.begin() as connection:
        for index in indexes:
            index.drop(connection)
    database.engine.dispose()  # the fill changes SQLite's journal mode: no other connection may be open
    yield
    with database.engine.begin() as connection:
        for index in indexes:
            index.create(connection)
    # The planner's statistics (PostgreSQL's VACUUM also sets the visibility map for index-only scans).
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        is_sqlite = connection.dialect.name == "sqlite"
        connection.execute(text("ANALYZE" if is_sqlite else "VACUUM ANALYZE context_attribute_instance"))


def seed(url: str, backend: str, total: int) -> tuple[str, float]:
    """The tenant, the target entity's type marker, an API key; the history. The key and fill seconds."""
    manifests()
    database = Database.from_url(url)
    with database.unit_of_work() as session:
        _city, secret = city_with_api_key(session, ["context.entities.read"])
        tenant = find_tenant(session, "", create=True)
        mark_types(session, tenant.id, TARGET, [VOCAB + "Sensor"])
    started = time.perf_counter()
    with history_index_built_after(database):
        (fill_postgres if backend == "postgresql" else fill_sqlite)(url, total, tenant.id)
    fill_seconds = time.perf_counter() - started
    with database.unit_of_work() as session:
        count = session.scalar(text("SELECT count(*) FROM context_attribute_instance"))
    assert count == total + 1, count
    database.dispose()
    return secret, fill_seconds


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
        "max_ms": round(ordered[-1], 2),
    }


def timed(call: Callable[[], Any], runs: int) -> dict[str, float]:
    call()  # warm caches and the connection pool
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


LAST_DAY = TemporalQuery(TimeRel.AFTER, END - timedelta(days=1))
MONTH = TemporalQuery(TimeRel.BETWEEN, END - timedelta(days=DAYS), END)
HOURLY_AVG = Aggregation(("avg",), timedelta(hours=1))


def service_timings(url: str, runs: int) -> dict[str, dict[str, float]]:
    database = Database.from_url(url)
    tenant_session = database.session()
    tenant = find_tenant(tenant_session, "", create=False)
    tenant_session.close()
    attrs = frozenset({TARGET_ATTR})

    def retrieve(view: TemporalView, expected: int) -> Callable[[], None]:
        def call() -> None:
            with database.reading() as session:
                result = temporal.retrieve_temporal(session, tenant, TARGET, view)
            shown = result.entities[0][TARGET_ATTR]
            found = len(shown["avg"]) if isinstance(shown, dict) else len(shown)
            assert found == expected, found

        return call

    last_day = TemporalView(query=LAST_DAY, attrs=attrs)
    hourly = TemporalView(query=MONTH, attrs=attrs, view=View.AGGREGATED, aggregation=HOURLY_AVG)
    result = {
        "last_24h": timed(retrieve(last_day, 24 * 60 - 1), runs),  # 'after' excludes the instant itself
        "hourly_avg_30_days": timed(retrieve(hourly, DAYS * 24), runs),
    }
    database.dispose()
    return result


def http_timings(base: str, key: str, runs: int) -> dict[str, dict[str, float]]:
    iso = "%Y-%m-%dT%H:%M:%SZ"
    path = f"{base}/ngsi-ld/v1/temporal/entities/{TARGET}"
    last_day = {"attrs": "temperature", "timerel": "after", "timeAt": (END - timedelta(days=1)).strftime(iso)}
    hourly = {
        "attrs": "temperature",
        "timerel": "between",
        "timeAt": (END - timedelta(days=DAYS)).strftime(iso),
        "endTimeAt": END.strftime(iso),
        "aggrMethods": "avg",
        "aggrPeriodDuration": "PT1H",
    }
    with httpx.Client(headers={"X-API-Key": key}, timeout=30) as client:

        def get(params: dict[str, str]) -> Callable[[], None]:
            def call() -> None:
                client.get(path, params=params).raise_for_status()

            return call

        return {"last_24h": timed(get(last_day), runs), "hourly_avg_30_days": timed(get(hourly), runs)}


def bench_backend(backend: str, rows: int, runs: int) -> dict[str, object]:
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as var_dir:
        key, fill_seconds = seed(url, backend, rows)
        service = service_timings(url, runs)
        with running_server(server_env(url, var_dir), workers=1) as base:
            over_http = http_timings(base, key, runs)
    return {
        "fill": {"rows": rows, "seconds": round(fill_seconds, 1), "rows_per_s": round(rows / fill_seconds)},
        "service": service,
        "http": over_http,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    if args.rows < MINUTES:
        parser.error(f"--rows must be at least {MINUTES} (the target series)")
    results = {
        "benchmark": "context_temporal",
        "history_rows": args.rows,
        "target_series": f"{MINUTES} readings (30 days, 1/minute) among {OTHER_ENTITIES} other entities",
        "runs": args.runs,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "targets": {"last_24h_ms": 20, "hourly_avg_30_days_ms": 100},
        "results": {backend: bench_backend(backend, args.rows, args.runs) for backend in args.db.split(",")},
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
