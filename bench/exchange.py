"""The data exchange's figures (issue #6), per database: load a ``--rows`` CSV with validation (the service,
as `cityhub exchange load` runs it), then over HTTP against `cityhub serve` read everything through a grant
as paged JSON (pages of 10,000 with a consumer system's API key) and as one CSV export. Prints one JSON
document.
Usage: .venv/bin/python bench/exchange.py [--rows 1000000] [--backends sqlite,postgresql]
Targets (issue #6): load 1M rows with validation <= 30 s; governed reads >= 50,000 rows/s (paged JSON,
PostgreSQL); CSV export >= 200,000 rows/s.
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

from sqlalchemy import select

from bench._harness import fresh_database, running_server, server_env
from cityhub.domains import manifests
from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import Grant as ExchangeGrant
from cityhub.domains.exchange.service import catalogue, grants, loads
from cityhub.domains.exchange.service.access import ADMINISTER
from cityhub.domains.identity import Grant, Principal, system_principal
from cityhub.domains.identity.models import Organization
from cityhub.domains.identity.service import apikeys, orgs
from cityhub.kernel.db import Database, utcnow

PAGE = 10_000
DISTRICTS = ("西湖区", "滨江区", "上城区", "拱墅区", "余杭区", "萧山区", "临平区", "钱塘区")
ITEMS = [
    {"name": "record_id", "title": "编号", "type": "integer", "required": True},
    {"name": "district", "title": "区县", "type": "string", "required": True},
    {"name": "street", "title": "街道", "type": "string", "required": True},
    {"name": "amount", "title": "金额", "type": "number", "required": True},
    {"name": "eligible", "title": "符合条件", "type": "boolean"},
    {"name": "decided_on", "title": "决定日期", "type": "date"},
]


def data_file(rows: int) -> bytes:
    rng = random.Random(7)
    lines = ["record_id,district,street,amount,eligible,decided_on"]
    lines += [
        f"{n},{DISTRICTS[n % 8]},第{n % 97}街道,{rng.randrange(100, 900_000) / 100},"
        f"{'true' if n % 3 else 'false'},2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}"
        for n in range(1, rows + 1)
    ]
    return ("\n".join(lines) + "\n").encode()


def prepare(url: str, content: bytes) -> dict[str, Any]:
    """Departments, a resource with ``content`` loaded (timed), an unconditional grant, a consumer's key."""
    manifests()
    database = Database.from_url(url)
    with database.unit_of_work() as session:
        city = orgs.create_unit(session, orgs.OrgUnitInput(kind="city", code="BENCH", name="基准市"))
        for code in ("civil", "stats"):
            session.add(Organization(kind="department", code=code, name=code, org_unit_id=city.id))
        session.flush()
        consumer = session.query(Organization).filter_by(code="civil").one().id
        platform_principal = system_principal(session, "bench", {ADMINISTER})
        body = {
            "code": "subsidies", "name": "补贴发放记录", "provider": "stats", "data_items": ITEMS,
            "sharing_class": "unconditional", "summary": "基准数据", "update_cycle": "monthly",
        }  # fmt: skip
        catalogue.register(session, platform_principal, schemas.ResourceIn.model_validate(body))
        powers = frozenset({"exchange.data.read", "identity.apikeys.manage"})
        creator = Principal(
            "system", 0, "bench", None, (Grant("operator", city.id, city.path, None, powers),)
        )
        _key, secret = apikeys.create_key(
            session, creator, name="consumer system", permissions=["exchange.data.read"], org_unit=city,
            organization_id=consumer,
        )  # fmt: skip
    started = time.perf_counter()
    with database.unit_of_work() as session:
        version = loads.load(
            session, system_principal(session, "bench", {ADMINISTER}), "subsidies", "s.csv", content
        )
        assert version.valid, version.report
    load_seconds = time.perf_counter() - started
    with database.unit_of_work() as session:
        principal = system_principal(session, "bench", {ADMINISTER})
        catalogue.set_status(session, principal, "subsidies", "published")
        request = schemas.RequestIn(consumer="civil", purpose="基准", fields=[i["name"] for i in ITEMS])
        asked = grants.ask(session, principal, "subsidies", request, utcnow(), "Asia/Shanghai", 5)
        grant_id = session.scalar(select(ExchangeGrant.id).where(ExchangeGrant.request_id == asked.id))
    if database.dialect == "postgresql":
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    database.dispose()
    return {"load_seconds": round(load_seconds, 2), "key": secret, "grant_id": grant_id}


def read_pages(base: str, key: str, grant_id: int) -> dict[str, Any]:
    rows, after, started = 0, 0, time.perf_counter()
    with httpx.Client(base_url=base, timeout=120, headers={"X-API-Key": key}) as client:
        while True:
            answer = client.get(
                f"/api/v1/exchange/grants/{grant_id}/rows", params={"after": after, "limit": PAGE}
            )
            answer.raise_for_status()
            body = answer.json()
            rows += len(body["rows"])
            if body["next_after"] is None:
                break
            after = body["next_after"]
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


def export_csv(base: str, key: str, grant_id: int) -> dict[str, Any]:
    started = time.perf_counter()
    lines = 0
    with (
        httpx.Client(base_url=base, timeout=300, headers={"X-API-Key": key}) as client,
        client.stream("GET", f"/api/v1/exchange/grants/{grant_id}/rows.csv") as answer,
    ):
        answer.raise_for_status()
        for chunk in answer.iter_bytes():
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    return {"rows": lines - 1, "seconds": round(seconds, 2), "rows_per_s": round((lines - 1) / seconds)}


def bench_backend(backend: str, rows: int, content: bytes) -> dict[str, Any]:
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as var_dir:
        prepared = prepare(url, content)
        grant_id = prepared["grant_id"]
        with running_server(server_env(url, var_dir), workers=1) as base:
            pages = read_pages(base, prepared["key"], grant_id)
            csv_export = export_csv(base, prepared["key"], grant_id)
    assert pages["rows"] == rows and csv_export["rows"] == rows
    return {
        "rows": rows,
        "load_seconds": prepared["load_seconds"],
        "json_pages": pages,
        "csv_export": csv_export,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    content = data_file(args.rows)
    results = {
        "benchmark": "exchange",
        "file_mb": round(len(content) / 1e6, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "targets": {"load_1m_rows_s": 30, "governed_rows_per_s": 50_000, "csv_rows_per_s": 200_000},
        "results": {b: bench_backend(b, args.rows, content) for b in args.backends.split(",")},
    }
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
