"""A merchant's 62-day coupon report (issue #5) with ``--events`` coupon events in the store (default ten
million): a year of events of ``--merchants`` merchants whose sizes follow a long tail (the largest has about
5 % of all events), then the 62-day daily report of the largest and of a median merchant, per database, in
the service and over HTTP, after the daily rollup has counted the days before today (as its hourly job
does). Prints one JSON document.
Usage: .venv/bin/python bench/market_report.py [--events 10000000] [--requests 60] [--backends sqlite]
Target (issue #5): a merchant's 62-day report <= 50 ms with 10M coupon events in the store.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import copy_into, fresh_database, running_server, server_env
from bench.services_search import percentiles
from cityhub.domains import manifests
from cityhub.domains.identity import Grant, Principal
from cityhub.domains.identity.models import Organization
from cityhub.domains.identity.service import orgs
from cityhub.domains.market.models import Merchant
from cityhub.domains.market.service import reports
from cityhub.kernel.db import Database
from cityhub.kernel.security import issue_jwt

KINDS = np.array(["view", "claim", "redeem", "expire", "transfer"])
KIND_SHARE = [0.45, 0.30, 0.18, 0.05, 0.02]
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
CHUNK = 500_000


def fill(url: str, events: int, merchants: int) -> tuple[list[int], int, int]:
    """Merchants (each with an organisation) and a year of events ending today; (merchant ids by size,
    the largest's organisation id, the city unit id)."""
    manifests()
    database = Database.from_url(url)
    with database.unit_of_work() as session:
        city = orgs.create_unit(session, orgs.OrgUnitInput(kind="city", code="BENCH", name="基准市"))
        ids, organization_ids = [], []
        for n in range(merchants):
            organization = Organization(kind="merchant", code=f"m{n}", name=f"商户{n}", org_unit_id=city.id)
            session.add(organization)
            session.flush()
            merchant = Merchant(
                code=f"m{n}", name=f"商户{n}", category="food", licence_number="BENCH0001",
                contact_phone="0571", status="approved", applicant_account_id=1, home_unit_id=city.id,
                organization_id=organization.id, documents=[],
            )  # fmt: skip
            session.add(merchant)
            session.flush()
            ids.append(merchant.id)
            organization_ids.append(organization.id)
        city_id = city.id
    rng = np.random.default_rng(3)
    weights = 1.0 / np.arange(1, merchants + 1) ** 0.9  # a long tail: the first is the largest
    weights /= weights.sum()
    today = datetime.now(UTC).date()
    written = 0
    while written < events:
        size = min(CHUNK, events - written)
        owners = rng.choice(merchants, size=size, p=weights)
        rows = zip(
            (np.asarray(ids)[owners]).tolist(),
            (owners * 20 + rng.integers(0, 20, size)).tolist(),  # 20 batches a merchant
            KINDS[rng.choice(len(KINDS), size=size, p=KIND_SHARE)].tolist(),
            rng.integers(1, 2_000_000, size).tolist(),  # people
            rng.integers(0, 3000, size).tolist(),
            rng.integers(0, 365, size).tolist(),
            strict=True,
        )
        _write(database, today, rows)
        written += size
    _analyze(database)
    database.dispose()
    return ids, organization_ids[0], city_id


def roll_up(url: str) -> None:
    database = Database.from_url(url)
    with database.unit_of_work() as session:
        reports.roll_up(session, datetime.now(UTC).date() - timedelta(days=1))
    database.dispose()


def _write(database: Database, today: date, rows: Any) -> None:
    columns = "merchant_id, batch_id, kind, person_id, value_cents, day, occurred_at"
    if database.dialect == "postgresql":
        buffer = io.StringIO()
        for merchant_id, batch_id, kind, person, value, back in rows:
            day = today - timedelta(days=back)
            buffer.write(f"{merchant_id}\t{batch_id}\t{kind}\t{person}\t{value if kind == 'redeem' else 0}\t")
            buffer.write(f"{day}\t{day} 12:00:00+00\n")
        copy_into(database, "market_coupon_event", columns, buffer.getvalue())
        return
    prepared = [
        (
            m,
            b,
            k,
            p,
            v if k == "redeem" else 0,
            (d := today - timedelta(days=back)).isoformat(),
            f"{d} 12:00:00.000000",
        )
        for m, b, k, p, v, back in rows
    ]
    with database.engine.begin() as connection:
        connection.exec_driver_sql(
            f"INSERT INTO market_coupon_event ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - constants
            prepared,
        )


def _analyze(database: Database) -> None:
    if database.dialect == "postgresql":
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE market_coupon_event")
    else:
        with database.engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")


def owner(organization_id: int, city_id: int) -> Principal:
    grant = Grant(
        "merchant_owner", city_id, f"/{city_id}/", organization_id, frozenset({"market.merchant.manage"})
    )
    return Principal("account", 1, "bench", None, (grant,))


def measure_service(url: str, merchant_id: int, principal: Principal, requests: int) -> dict[str, Any]:
    database = Database.from_url(url)
    last = datetime.now(UTC).date()
    query = reports.ReportQuery(last - timedelta(days=61), last)
    samples, events = [], 0
    for index in range(requests + 5):
        started = time.perf_counter()
        with database.request_session(write=False) as session:
            rows = reports.report(session, principal, merchant_id, query)
        if index >= 5:
            samples.append((time.perf_counter() - started) * 1000)
            events = sum(sum(row.counts.values()) for row in rows)
    database.dispose()
    return percentiles(samples) | {"events_in_range": events}


def measure_http(base: str, merchant_id: int, token: str, requests: int) -> dict[str, Any]:
    last = datetime.now(UTC).date()
    params = {"from": (last - timedelta(days=61)).isoformat(), "to": last.isoformat()}
    samples = []
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        for index in range(requests + 5):
            started = time.perf_counter()
            response = client.get(f"/api/v1/market/merchants/{merchant_id}/reports", params=params)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if index >= 5:
                samples.append(elapsed)
    return percentiles(samples)


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as var_dir:
        started = time.perf_counter()
        ids, organization_id, city_id = fill(url, args.events, args.merchants)
        loaded_s = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        roll_up(url)  # what the hourly job has done by then: every day before today counted once
        rolled_s = round(time.perf_counter() - started, 1)
        largest = measure_service(url, ids[0], owner(organization_id, city_id), args.requests)
        median_id = ids[len(ids) // 2]
        with Database.from_url(url).reading() as session:
            median_org = session.get(Merchant, median_id).organization_id  # type: ignore[union-attr]
        median = measure_service(url, median_id, owner(int(median_org or 0), city_id), args.requests)
        result: dict[str, Any] = {"events": args.events, "load_seconds": loaded_s, "rollup_seconds": rolled_s}
        result["service_largest"] = largest
        result["service_median"] = median
        account = _owner_account(url, organization_id, city_id)
        token = issue_jwt(SECRET, {"sub": str(account), "typ": "access"}, timedelta(hours=1))
        with running_server(server_env(url, var_dir, CITYHUB_SECRET_KEY=SECRET), workers=1) as base:
            result["http_largest"] = measure_http(base, ids[0], token, args.requests)
    return result


def _owner_account(url: str, organization_id: int, city_id: int) -> int:
    from cityhub.domains.identity.service import accounts, people

    database = Database.from_url(url)
    with database.unit_of_work() as session:
        person = people.create_person(session, people.PersonInput(name="店主"), "salt")
        account = accounts.create_account(session, person, "owner", "correct-horse-42", password_hash="x")
        accounts.grant_role(
            session, None, account, "merchant_owner", orgs.get_unit(session, city_id), organization_id
        )
        account_id = account.id
    database.dispose()
    return account_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--merchants", type=int, default=500)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {
        "benchmark": "market_report",
        "request": "GET /api/v1/market/merchants/{id}/reports?from=<61 days ago>&to=<today> (daily rows)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "target_ms": 50,
        "results": {b: bench_backend(b, args) for b in args.backends.split(",")},
    }
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
