"""Ticket intake rate (issue #4) into a city of 20 communities with five categories dispatched to a
department, two ways:

- one request per ticket: Open311 service requests posted by a partner app's API key, form-encoded, by many
  connections at once (wrk). Each is a whole intake: key check, category questions, community lookup (point
  in polygon), dispatch, deadline in working days, timeline, audit record and the Open311 answer. The
  tickets stored are counted afterwards and must equal the 2xx answers;
- batches: two upstream platforms handing over 200 tickets per request (POST /api/v1/voice/tickets/batch),
  each ticket still filed, routed and audited one by one.

Prints one JSON document.
Usage: .venv/bin/python bench/voice_intake.py [--seconds 15] [--connections 16] [--workers 2]
       [--backends sqlite,postgresql]
Target (issue #4): ticket intake >= 500/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import city_with_api_key, fresh_database, run_wrk, running_server, server_env
from cityhub.domains.identity import system_principal
from cityhub.domains.identity.models import Organization
from cityhub.domains.identity.service import orgs
from cityhub.domains.voice import schemas
from cityhub.domains.voice.models import Ticket
from cityhub.domains.voice.service import categories
from cityhub.kernel.db import Database

SCRIPT = Path(__file__).with_name("lua") / "open311_post.lua"
CODES = ("01.01", "01.02", "02.01", "02.02", "05.01")
WEST, SOUTH, CELL = 120.10, 30.20, 0.02  # a 5 x 4 grid of square communities


def load(url: str) -> str:
    """The bench city, its communities, a department, the categories; the partner app's key."""
    database = Database.from_url(url)
    with database.unit_of_work() as session:
        city, key = city_with_api_key(session, ["voice.open311.submit", "voice.tickets.transfer"])
        for kind, code, parent in (("district", "D1", city.code), ("subdistrict", "S1", "D1")):
            orgs.create_unit(session, orgs.OrgUnitInput(kind=kind, code=code, name=code, parent_code=parent))
        for n in range(20):
            west, south = WEST + (n % 5) * CELL, SOUTH + (n // 5) * CELL
            ring = [[west, south], [west + CELL, south], [west + CELL, south + CELL], [west, south + CELL]]
            boundary = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
            unit = orgs.OrgUnitInput(
                kind="community", code=f"C{n:02d}", name=f"社区{n}", parent_code="S1", boundary=boundary
            )
            orgs.create_unit(session, unit)
        session.add(Organization(kind="department", code="dept-bench", name="住建局", org_unit_id=city.id))
        session.flush()
        tree = [schemas.CategoryIn(code=code[:2], name_zh="大类", name_en="Branch") for code in CODES[::2]]
        tree += [
            schemas.CategoryIn(code=code, name_zh=f"类目{code}", name_en=code, organization_code="dept-bench")
            for code in CODES
        ]
        unique = list({category.code: category for category in tree}.values())
        unique.sort(key=lambda category: category.code)
        root = system_principal(session, "bench", [categories.MANAGE])
        categories.import_categories(session, root, schemas.CategoriesIn(categories=unique))
    database.dispose()
    return key


def count_tickets(url: str) -> int:
    database = Database.from_url(url)
    with database.reading() as session:
        counted = session.scalar(select(func.count()).select_from(Ticket)) or 0
    database.dispose()
    return counted


def transfer_batches(base: str, key: str, seconds: int, senders: int, size: int) -> dict[str, Any]:
    """Platforms posting batches of ``size`` tickets for ``seconds``; tickets filed per second."""
    rng = random.Random(9)
    deadline = time.monotonic() + seconds
    filed, batches, latencies = [0] * senders, [0] * senders, []

    def sender(number: int) -> None:
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as client:
            while time.monotonic() < deadline:
                tickets = [
                    {
                        "external_ref": f"S{number}-{batches[number]}-{n}",
                        "type": "complaint",
                        "category": rng.choice(CODES),
                        "description": "省平台转办：基准测试工单。",
                        "lon": WEST + rng.random() * 5 * CELL,
                        "lat": SOUTH + rng.random() * 4 * CELL,
                    }
                    for n in range(size)
                ]
                started = time.perf_counter()
                response = client.post("/api/v1/voice/tickets/batch", json={"tickets": tickets})
                response.raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
                filed[number] += sum(1 for ticket in response.json() if ticket["created"])
                batches[number] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=sender, args=(number,)) for number in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "tickets_per_s": round(sum(filed) / elapsed, 1),
        "batch_size": size,
        "senders": senders,
        "batches": sum(batches),
        "batch_p50_ms": round(ordered[len(ordered) // 2], 1),
        "batch_p95_ms": round(ordered[int(len(ordered) * 0.95)], 1),
    }


def bench_backend(backend: str, seconds: int, connections: int, workers: int) -> dict[str, Any]:
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as var_dir:
        key = load(url)
        env = server_env(url, var_dir)
        os.environ["CITYHUB_BENCH_API_KEY"] = key  # read by the wrk script
        os.environ["CITYHUB_BENCH_CODES"] = ",".join(CODES)
        with running_server(env, workers=workers) as base:
            run_wrk(f"{base}/open311/v2/requests.json", {}, 3, 4, script=SCRIPT)  # warm up
            warm = count_tickets(url)
            single = run_wrk(
                f"{base}/open311/v2/requests.json", {}, seconds, connections, threads=2, script=SCRIPT
            )
            stored = count_tickets(url) - warm
            batched = transfer_batches(base, key, seconds, senders=2, size=200)
    single |= {"tickets_stored": stored, "workers": workers, "connections": connections}
    return {"one_request_per_ticket": single, "batches": batched}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {
        "benchmark": "voice_intake",
        "request": "POST /open311/v2/requests.json (form-encoded, api_key, a point in one of 20 communities)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "target_per_s": 500,
        "results": {
            backend: bench_backend(backend, args.seconds, args.connections, args.workers)
            for backend in args.backends.split(",")
        },
    }
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
