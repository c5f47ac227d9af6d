"""Coupon claims and redemptions over HTTP (issue #5), per database: ``--residents`` residents with bearer
tokens claim from one batch (stock far above what the run can take, per-person limit high, rate limits
lifted) with wrk for ``--seconds``; then a till key redeems pre-claimed codes, one per request. The batch's
counters are checked against the coupon rows afterwards (zero oversell). PostgreSQL runs two app processes;
SQLite one (its single write lock makes a second only wait). Prints one JSON document.
Usage: .venv/bin/python bench/market_claims.py [--seconds 15] [--connections 32] [--backends postgresql]
Targets (issue #5): claims >= 2,000/s with zero oversell (PostgreSQL, 2 processes); redemptions >= 1,000/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import fresh_database, run_wrk, running_server, server_env
from cityhub.domains import manifests
from cityhub.domains.identity import Grant, Principal
from cityhub.domains.identity.models import Account, Organization, Person
from cityhub.domains.identity.service import apikeys, orgs
from cityhub.domains.market.models import Batch, BatchShard, ClaimTally, Coupon, Merchant, Store
from cityhub.domains.market.service.batches import MAX_SHARDS, split
from cityhub.kernel.db import Database
from cityhub.kernel.security import issue_jwt

LUA = Path(__file__).resolve().parent / "lua"
SECRET = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
REDEEMABLE = 200_000
STOCK = 10_000_000


def prepare(url: str, residents: int, folder: Path) -> dict[str, str]:
    """A city, a merchant with a store and a till key, residents with tokens, a batch and codes to redeem."""
    manifests()
    database = Database.from_url(url)
    now = datetime.now(UTC)
    with database.unit_of_work() as session:
        city = orgs.create_unit(session, orgs.OrgUnitInput(kind="city", code="BENCH", name="基准市"))
        organization = Organization(kind="merchant", code="bench-shop", name="基准店", org_unit_id=city.id)
        session.add(organization)
        session.flush()
        merchant = Merchant(
            code="bench-shop", name="基准店", category="food", licence_number="BENCH0001",
            contact_phone="0571", status="approved", applicant_account_id=1, home_unit_id=city.id,
            organization_id=organization.id, documents=[],
        )  # fmt: skip
        session.add(merchant)
        session.flush()
        store = Store(
            merchant_id=merchant.id, name="一店", category="food", address="路1号", lon=120.2, lat=30.25,
            cell="87309a2d1ffffff", opening_hours={}, photos=[], active=True, listed=True,
        )  # fmt: skip
        session.add(store)
        batch = Batch(
            merchant_id=merchant.id, kind="CASH", title="满30减5", least_cost_cents=3000,
            reduce_cost_cents=500, valid_days=30, claim_from=now - timedelta(hours=1),
            claim_until=now + timedelta(days=1),
            stock=STOCK, shards=MAX_SHARDS, per_person_limit=100, status="active", created_by="bench",
        )  # fmt: skip
        session.add(batch)
        session.flush()
        grant = Grant(
            "operator",
            city.id,
            city.path,
            organization.id,
            frozenset({"identity.apikeys.manage", "market.coupons.redeem"}),
        )
        creator = Principal("system", 0, "bench", None, (grant,))
        _key, till = apikeys.create_key(
            session,
            creator,
            name="till",
            permissions=["market.coupons.redeem"],
            org_unit=city,
            organization_id=organization.id,
        )
        people = (
            session.execute(
                insert(Person).returning(Person.id),
                [{"name": f"居民{n}", "gender": "U"} for n in range(residents)],
            )
            .scalars()
            .all()
        )
        accounts = (
            session.execute(
                insert(Account).returning(Account.id),
                [
                    {"person_id": p, "username": f"r{n}", "password_hash": "x", "is_active": True}
                    for n, p in enumerate(people)
                ],
            )
            .scalars()
            .all()
        )
        holder = people[0]
        codes = [f"{n:012d}" for n in range(10**11, 10**11 + REDEEMABLE)]
        session.execute(
            insert(Coupon),
            [
                {"batch_id": batch.id, "code": code, "person_id": holder, "status": "claimed",
                 "claimed_at": now, "valid_from": now - timedelta(hours=1),
                 "valid_until": now + timedelta(days=30)}
                for code in codes
            ],
        )  # fmt: skip
        session.execute(insert(ClaimTally).values(batch_id=batch.id, person_id=holder, claims=0))
        quotas, taken = split(STOCK, MAX_SHARDS), split(REDEEMABLE, MAX_SHARDS)
        session.execute(
            insert(BatchShard),
            [
                {"batch_id": batch.id, "shard": n, "quota": quotas[n], "claimed": taken[n], "redeemed": 0}
                for n in range(MAX_SHARDS)
            ],
        )
        ids = {"batch": str(batch.id), "merchant": str(merchant.id), "store": str(store.id)}
    tokens = [issue_jwt(SECRET, {"sub": str(a), "typ": "access"}, timedelta(hours=2)) for a in accounts]
    (folder / "tokens.txt").write_text("\n".join(tokens) + "\n")
    (folder / "codes.txt").write_text("\n".join(codes) + "\n")
    if database.dialect == "postgresql":
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    database.dispose()
    return ids | {"till": till}


def check(url: str, batch: int) -> dict[str, Any]:
    database = Database.from_url(url)
    with database.reading() as session:
        claimed = session.scalar(select(Batch.claimed).where(Batch.id == batch))
        rows = session.scalar(select(func.count()).select_from(Coupon).where(Coupon.batch_id == batch))
        redeemed = session.scalar(select(Batch.redeemed).where(Batch.id == batch))
        redeemed_rows = session.scalar(
            select(func.count()).select_from(Coupon).where(Coupon.status == "redeemed")
        )
    database.dispose()
    return {"batch_claimed": claimed, "coupon_rows": rows, "oversold": (rows or 0) - (claimed or 0),
            "batch_redeemed": redeemed, "redeemed_rows": redeemed_rows}  # fmt: skip


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    workers = 2 if backend == "postgresql" else 1
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as var_dir:
        folder = Path(var_dir)
        ids = prepare(url, args.residents, folder)
        env = server_env(
            url, var_dir, CITYHUB_SECRET_KEY=SECRET, CITYHUB_MARKET__CLAIM_RATE="1000000/minute",
            CITYHUB_MARKET__DEVICE_CLAIM_RATE="1000000/minute",
        )  # fmt: skip
        os.environ |= {
            "CITYHUB_BENCH_BATCH": ids["batch"], "CITYHUB_BENCH_TOKENS": str(folder / "tokens.txt"),
            "CITYHUB_BENCH_CODES": str(folder / "codes.txt"), "CITYHUB_BENCH_MERCHANT": ids["merchant"],
            "CITYHUB_BENCH_STORE": ids["store"], "CITYHUB_BENCH_KEY": ids["till"],
        }  # fmt: skip
        with running_server(env, workers=workers) as base:
            claims = run_wrk(base, {}, args.seconds, args.connections, script=LUA / "market_claim.lua")
            redemptions = run_wrk(base, {}, args.seconds, args.connections, script=LUA / "market_redeem.lua")
        counts = check(url, int(ids["batch"]))
    return {"app_processes": workers, "claims": claims, "redemptions": redemptions, "check": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--residents", type=int, default=2000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {
        "benchmark": "market_claims",
        "requests": [
            "POST /api/v1/market/batches/{id}/claim (bearer)",
            "POST /api/v1/market/merchants/{id}/redemptions (till key)",
        ],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "targets": {"claims_per_s": 2000, "redemptions_per_s": 1000},
        "results": {b: bench_backend(b, args) for b in args.backends.split(",")},
    }
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
