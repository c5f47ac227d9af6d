"""CKAN `package_search` over ``--datasets`` published open resources (issue #6): p50/p95 of searches by a
word, with an organization filter and facets, one connection against `cityhub serve`. Prints JSON.
Usage: .venv/bin/python bench/exchange_search.py [--datasets 10000] [--requests 300] [--backends ...]
Target (issue #6): package_search p95 <= 30 ms over 10,000 datasets.
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
from bench.services_search import percentiles
from cityhub.domains import manifests
from cityhub.domains.exchange.models import Resource, ResourceTerm
from cityhub.domains.exchange.service.catalogue import terms_of_resource
from cityhub.domains.identity.models import Organization
from cityhub.domains.identity.service import orgs
from cityhub.kernel.bulk import bulk_insert
from cityhub.kernel.db import Database, utcnow

TOPICS = ("人口", "养老", "交通", "教育", "医疗", "环境", "住房", "就业", "社保", "旅游", "文化", "农业")
DEPARTMENTS = 40
ITEMS = [{"name": "value", "title": "值", "type": "number", "required": True}]
FIXED = {
    "format": "csv",
    "data_items": ITEMS,
    "sharing_class": "unconditional",
    "open_class": "open",
    "update_cycle": "monthly",
    "related": [],
    "source": "upload",
    "status": "published",
    "created_by": "bench",
}


def fill(url: str, count: int) -> None:
    manifests()
    database = Database.from_url(url)
    rng = random.Random(3)
    now = utcnow()
    with database.unit_of_work() as session:
        city = orgs.create_unit(session, orgs.OrgUnitInput(kind="city", code="BENCH", name="基准市"))
        departments = []
        for n in range(DEPARTMENTS):
            department = Organization(
                kind="department", code=f"dept-{n}", name=f"第{n}局", org_unit_id=city.id
            )
            session.add(department)
            session.flush()
            departments.append(department.id)
        rows = []
        for n in range(count):
            topic, other = rng.choice(TOPICS), rng.choice(TOPICS)
            rows.append(
                {
                    "id": n + 1,
                    "code": f"ds-{n:05d}",
                    "name": f"{topic}{other}统计第{n}号",
                    "name_en": f"{topic} dataset {n}",
                    "provider_org_id": rng.choice(departments),
                    "classification": [topic],
                    "summary": f"{topic}与{other}的数据",
                    "keywords": [topic, other],
                    "created_at": now,
                    "modified_at": now,
                    **FIXED,
                }
            )
        bulk_insert(session, Resource, rows)
        terms = [
            {"term": term, "resource_id": row["id"]}
            for row in rows
            for term in terms_of_resource(Resource(**row))
        ]
        bulk_insert(session, ResourceTerm, terms)
    if database.dialect == "postgresql":
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    database.dispose()


def measure(base: str, requests: int) -> dict[str, Any]:
    rng = random.Random(5)
    samples = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for index in range(requests + 20):
            params = {
                "q": rng.choice(TOPICS),
                "rows": 10,
                "facet.field": json.dumps(["organization", "tags"]),
            }
            if index % 3 == 0:
                params["fq"] = f"organization:dept-{rng.randrange(DEPARTMENTS)}"
            started = time.perf_counter()
            answer = client.get("/api/3/action/package_search", params=params)
            elapsed = (time.perf_counter() - started) * 1000
            answer.raise_for_status()
            assert answer.json()["success"] is True
            if index >= 20:
                samples.append(elapsed)
    return percentiles(samples)


def bench_backend(backend: str, count: int, requests: int) -> dict[str, Any]:
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as var_dir:
        fill(url, count)
        env = server_env(url, var_dir, CITYHUB_RATE_LIMITS__PUBLIC="100000/minute")
        with running_server(env, workers=1) as base:
            return {"datasets": count, "package_search": measure(base, requests)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {
        "benchmark": "exchange_search",
        "request": "GET /api/3/action/package_search?q=<word>&rows=10&facet.field=[organization,tags] (+fq)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "target_p95_ms": 30,
        "results": {b: bench_backend(b, args.datasets, args.requests) for b in args.backends.split(",")},
    }
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
