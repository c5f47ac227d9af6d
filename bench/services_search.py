"""Catalogue search latency (issue #4): the demo catalogue grown to ``--items`` service items, searched with
realistic Chinese and English queries, in the service and over HTTP, per database.

Each extra item is a copy of a demo item offered by one of the city's districts (its name and keywords carry
the district), so the index holds the real vocabulary at a larger size. Prints one JSON document.
Usage: .venv/bin/python bench/services_search.py [--items 5000] [--requests 400] [--backends sqlite]
Target (issue #4): catalogue search p95 <= 20 ms.
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
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import fresh_database, running_server, server_env
from cityhub.domains import manifests
from cityhub.domains.services.demo import demo_catalogue
from cityhub.domains.services.schemas import CatalogueIn, ItemIn, Name
from cityhub.domains.services.service import catalogue
from cityhub.kernel.db import Database
from cityhub.kernel.pagination import PageParams

DISTRICTS = [
    ("滨江区", "Binjiang District"), ("西湖区", "Xihu District"), ("上城区", "Shangcheng District"),
    ("拱墅区", "Gongshu District"), ("萧山区", "Xiaoshan District"), ("余杭区", "Yuhang District"),
]  # fmt: skip
QUERIES = [
    "公积金", "提取公积金", "护照", "港澳通行证", "违章", "社保", "养老金", "医保报销", "新生儿落户",
    "结婚登记", "水费", "电费", "身份证", "出生证明", "驾驶证", "怎么办理居住证", "provident fund",
    "passport", "pension", "traffic fine", "birth", "water bill", "pens", "id card", "marriage",
    "school enrolment",
]  # fmt: skip


def grown_catalogue(size: int) -> CatalogueIn:
    base = demo_catalogue()
    items: list[ItemIn] = list(base.items)
    copy_number = 0
    while len(items) < size:
        original = base.items[copy_number % len(base.items)]
        zh, en = DISTRICTS[(copy_number // len(base.items)) % len(DISTRICTS)]
        items.append(
            original.model_copy(
                update={
                    "code": f"{original.code[:40]}-x{copy_number}",
                    "name": Name(zh_CN=f"{original.name.zh_CN}（{zh}）", en=f"{original.name.en} ({en})"),
                }
            )
        )
        copy_number += 1
    # The bench database has no identity organisations: the departments stand alone.
    departments = [
        department.model_copy(update={"organization_code": None}) for department in base.departments
    ]
    return base.model_copy(update={"items": items, "departments": departments})


def load(url: str, size: int) -> None:
    """Import the grown catalogue, then give the planners what a running deployment has: statistics, and on
    PostgreSQL a vacuumed visibility map (autovacuum does both after a large import; the bench server runs
    with autovacuum off, and without it the covering indexes are not used for index-only scans)."""
    manifests()
    database = Database.from_url(url)
    with database.unit_of_work() as session:
        catalogue.import_catalogue(session, "system:bench", grown_catalogue(size))
    if database.dialect == "postgresql":
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    else:
        with database.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    database.dispose()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))], 2)

    return {"p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99), "requests": len(ordered)}


def measure_service(url: str, requests: int) -> dict[str, Any]:
    database = Database.from_url(url)
    rng = random.Random(5)
    samples, found = [], []
    for index in range(requests + 20):
        query = rng.choice(QUERIES)
        started = time.perf_counter()
        with database.request_session(write=False) as session:
            _page, total = catalogue.find_items(
                session, catalogue.ItemFilter(text=query), PageParams(limit=20, offset=0)
            )
        if index >= 20:  # the first searches load jieba's dictionary and warm the pool
            samples.append((time.perf_counter() - started) * 1000)
            found.append(total)
    database.dispose()
    return percentiles(samples) | {"mean_total_matches": round(sum(found) / len(found), 1)}


def measure_http(base: str, requests: int) -> dict[str, Any]:
    rng = random.Random(6)
    samples = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for index in range(requests + 20):
            started = time.perf_counter()
            response = client.get("/api/v1/services/items", params={"q": rng.choice(QUERIES), "limit": 20})
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if index >= 20:
                samples.append(elapsed)
    return percentiles(samples)


def bench_backend(backend: str, size: int, requests: int) -> dict[str, Any]:
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as var_dir:
        started = time.perf_counter()
        load(url, size)
        loaded_s = round(time.perf_counter() - started, 1)
        service = measure_service(url, requests)
        with running_server(server_env(url, var_dir), workers=1) as base:
            http = measure_http(base, requests)
    return {"items": size, "load_seconds": loaded_s, "service": service, "http": http}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {
        "benchmark": "services_search",
        "request": "GET /api/v1/services/items?q=<zh or en query>&limit=20 (anonymous), one connection",
        "queries": QUERIES,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "target_p95_ms": 20,
        "results": {b: bench_backend(b, args.items, args.requests) for b in args.backends.split(",")},
    }
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
