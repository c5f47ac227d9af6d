"""Nearby store search (issue #5): ``--stores`` listed stores spread over a 100 km x 100 km metropolitan
area (about 100 per km², so a 3 km circle holds ~2,800), then the first page of 20 nearest within 3 km of
random points, in the service and over HTTP, per database. The portable path (H3 cells + exact distance)
on both; PostGIS is not used. Prints one JSON document.
Usage: .venv/bin/python bench/market_nearby.py [--stores 1000000] [--requests 400] [--backends sqlite]
Targets (issue #5): p95 <= 10 ms on SQLite; <= 5 ms on PostgreSQL+PostGIS.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import h3
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import copy_into, fresh_database, running_server, server_env
from bench.services_search import percentiles
from cityhub.domains import manifests
from cityhub.domains.market.models import STORE_CELL_RES, Merchant
from cityhub.domains.market.service import stores
from cityhub.kernel.db import Database

CENTRE = (120.20, 30.25)
HALF_LON, HALF_LAT = 0.52, 0.45  # ~100 km x 100 km at 30° N
CATEGORIES = ("food", "grocery", "pharmacy", "beauty", "education", "housekeeping", "repair", "fitness")
HOURS = '{"mon": [["08:00", "22:00"]], "tue": [["08:00", "22:00"]], "wed": [["08:00", "22:00"]]}'


def fill(url: str, count: int) -> None:
    manifests()
    database = Database.from_url(url)
    with database.unit_of_work() as session:
        merchant = Merchant(
            code="BENCH", name="连锁", category="food", licence_number="BENCH0001", contact_phone="0571",
            status="approved", applicant_account_id=1, home_unit_id=1, organization_id=None, documents=[],
        )  # fmt: skip
        session.add(merchant)
        session.flush()
        merchant_id = merchant.id
    rng = np.random.default_rng(11)
    lons = CENTRE[0] + rng.uniform(-HALF_LON, HALF_LON, count)
    lats = CENTRE[1] + rng.uniform(-HALF_LAT, HALF_LAT, count)
    cells = [h3.latlng_to_cell(lat, lon, STORE_CELL_RES) for lon, lat in zip(lons, lats, strict=True)]
    rows = [
        (
            merchant_id,
            f"店{n}",
            CATEGORIES[n % len(CATEGORIES)],
            f"路{n}号",
            float(lons[n]),
            float(lats[n]),
            cells[n],
        )
        for n in range(count)
    ]
    columns = "merchant_id, name, category, address, lon, lat, cell, opening_hours, photos, active, listed, "
    columns += "created_at"
    if database.dialect == "postgresql":
        buffer = io.StringIO()
        for row in rows:
            buffer.write("\t".join(map(str, row)) + f"\t{HOURS}\t[]\tt\tt\t2026-12-01 00:00:00+00\n")
        copy_into(database, "market_store", columns, buffer.getvalue())
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE market_store")
    else:
        with database.engine.begin() as connection:
            connection.exec_driver_sql(
                f"INSERT INTO market_store ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, '{HOURS}', '[]', 1, 1, "  # noqa: S608 - the script's own constants
                "'2026-12-01 00:00:00.000000')",
                rows,
            )
            connection.exec_driver_sql("ANALYZE")
    database.dispose()


def points(requests: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    return [
        (CENTRE[0] + rng.uniform(-0.8, 0.8) * HALF_LON, CENTRE[1] + rng.uniform(-0.8, 0.8) * HALF_LAT)
        for _ in range(requests + 20)
    ]


def measure_service(url: str, requests: int) -> dict[str, Any]:
    database = Database.from_url(url)
    samples, found = [], []
    for index, (lon, lat) in enumerate(points(requests, 5)):
        started = time.perf_counter()
        with database.request_session(write=False) as session:
            page = stores.nearby(session, stores.NearbyQuery(lon, lat, 3000.0), "Asia/Shanghai")
        if index >= 20:
            samples.append((time.perf_counter() - started) * 1000)
            found.append(len(page.items))
    database.dispose()
    return percentiles(samples) | {"mean_page": round(sum(found) / len(found), 1)}


def measure_http(base: str, requests: int) -> dict[str, Any]:
    samples = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for index, (lon, lat) in enumerate(points(requests, 6)):
            started = time.perf_counter()
            response = client.get("/api/v1/market/stores/nearby", params={"lon": lon, "lat": lat})
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if index >= 20:
                samples.append(elapsed)
    return percentiles(samples)


def bench_backend(backend: str, count: int, requests: int) -> dict[str, Any]:
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as var_dir:
        started = time.perf_counter()
        fill(url, count)
        loaded_s = round(time.perf_counter() - started, 1)
        service = measure_service(url, requests)
        env = server_env(url, var_dir, CITYHUB_RATE_LIMITS__PUBLIC="100000/minute")
        with running_server(env, workers=1) as base:
            http = measure_http(base, requests)
    return {"stores": count, "load_seconds": loaded_s, "service": service, "http": http}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stores", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {
        "benchmark": "market_nearby",
        "request": "GET /api/v1/market/stores/nearby?lon=&lat= (3 km, first 20), anonymous, one connection",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "targets_p95_ms": {"sqlite": 10, "postgresql_postgis": 5},
        "results": {b: bench_backend(b, args.stores, args.requests) for b in args.backends.split(",")},
    }
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
