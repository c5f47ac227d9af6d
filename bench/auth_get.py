"""Login + authenticated GET throughput and latency, 2 app processes, on SQLite and PostgreSQL.

Prints one JSON document.
Usage: .venv/bin/python bench/auth_get.py [--seconds 15] [--backends sqlite,postgresql]
Target (issue #2): authenticated GET of a small resource >= 1,500 requests/s with p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import fresh_database, run_wrk, running_server, server_env
from cityhub.domains import manifests
from cityhub.domains.identity.service import accounts, orgs, people
from cityhub.kernel.db import Database

USERNAME, PASSWORD = "bench_resident", "bench-password-1"


def seed(url: str) -> None:
    manifests()
    database = Database.from_url(url)
    with database.unit_of_work() as session:
        city = orgs.create_unit(session, orgs.OrgUnitInput(kind="city", code="BENCH", name="基准市"))
        person = people.create_person(session, people.PersonInput(name="测试居民"), "bench")
        account = accounts.create_account(session, person, USERNAME, PASSWORD)
        accounts.grant_role(session, None, account, "resident", city)
    database.dispose()


def measure_logins(base: str, count: int, concurrency: int) -> dict[str, float]:
    """Password logins per second (argon2 is deliberately slow: this is the cost of a login)."""

    def login(_: int) -> float:
        started = time.perf_counter()
        response = httpx.post(
            f"{base}/api/v1/identity/token", data={"username": USERNAME, "password": PASSWORD}, timeout=30
        )
        response.raise_for_status()
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = sorted(pool.map(login, range(count)))
    elapsed = time.perf_counter() - started
    return {
        "logins_per_s": round(count / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2], 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
    }


def bench_backend(backend: str, seconds: int, connections: list[int], workers: int) -> dict[str, object]:
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as var_dir:
        seed(url)
        env = server_env(url, var_dir, CITYHUB_RATE_LIMITS__LOGIN="1000000/minute")
        with running_server(env, workers) as base:
            logins = measure_logins(base, count=40, concurrency=4)
            token = httpx.post(
                f"{base}/api/v1/identity/token", data={"username": USERNAME, "password": PASSWORD}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            httpx.get(f"{base}/api/v1/identity/me", headers=headers).raise_for_status()
            run_wrk(f"{base}/api/v1/identity/me", headers, seconds=3, connections=connections[0])  # warm-up
            authenticated_get = {
                f"{count}_connections": run_wrk(
                    f"{base}/api/v1/identity/me", headers, seconds=seconds, connections=count
                )
                for count in connections
            }
    return {"login": logins, "authenticated_get": authenticated_get}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", default="16,64", help="comma-separated concurrency levels")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {
        "benchmark": "auth_get",
        "resource": "GET /api/v1/identity/me (bearer JWT; principal cached <= 2 s; person read each time)",
        "app_processes": args.workers,
        "connections": args.connections,
        "load_generator": "wrk, 1 thread, on the same 2-core machine",
        "seconds": args.seconds,
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "targets": {"authenticated_get_rps": 1500, "authenticated_get_p99_ms": 50},
        "results": {
            backend: bench_backend(
                backend, args.seconds, [int(n) for n in args.connections.split(",")], args.workers
            )
            for backend in args.backends.split(",")
        },
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
