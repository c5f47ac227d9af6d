"""Single-attribute PATCH throughput of the NGSI-LD API (issue #3), 2 app processes, SQLite and PostgreSQL.

Each request is ``PATCH /ngsi-ld/v1/entities/{id}/attrs/temperature`` on a random entity out of
``--entities``: the entity document is rewritten, one history row is appended and subscriptions are matched,
in one transaction. Prints one JSON document.
Usage: .venv/bin/python bench/context_patch.py [--seconds 15] [--backends sqlite,postgresql]
Target: >= 5,000 PATCH/s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import city_with_api_key, fresh_database, run_wrk, running_server, server_env
from cityhub.domains import manifests
from cityhub.domains.context.service import entities
from cityhub.domains.context.service.tenants import find_tenant
from cityhub.domains.context.store.document import parse_entity
from cityhub.kernel.db import Database

LUA = Path(__file__).resolve().parent / "lua" / "ngsi_patch.lua"
CORE = "https://uri.etsi.org/ngsi-ld/default-context/"


def seed(url: str, count: int) -> str:
    """``count`` sensors and an API key that may write them; the key."""
    manifests()
    database = Database.from_url(url)
    with database.unit_of_work() as session:
        _city, secret = city_with_api_key(session, ["context.entities.write"])
        tenant = find_tenant(session, "", create=True)
        for number in range(1, count + 1):
            entity = parse_entity(
                {
                    "id": f"urn:ngsi-ld:Sensor:{number}",
                    "type": CORE + "Sensor",
                    CORE + "temperature": {"type": "Property", "value": 20.0, "unitCode": "CEL"},
                    "https://uri.etsi.org/ngsi-ld/location": {
                        "type": "GeoProperty",
                        "value": {"type": "Point", "coordinates": [120.2 + number * 1e-4, 30.25]},
                    },
                }
            )
            entities.create_entity(session, tenant, entity)
    database.dispose()
    return secret


def bench_backend(
    backend: str, seconds: int, connections: int, workers: int, count: int
) -> dict[str, object]:
    with fresh_database(backend) as url, tempfile.TemporaryDirectory() as var_dir:
        key = seed(url, count)
        os.environ["CITYHUB_BENCH_ENTITIES"] = str(count)
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        with running_server(server_env(url, var_dir), workers) as base:
            run_wrk(base, headers, seconds=3, connections=connections, script=LUA)  # warm-up
            result = run_wrk(base, headers, seconds=seconds, connections=connections, script=LUA)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {
        "benchmark": "context_patch",
        "request": "PATCH /ngsi-ld/v1/entities/{id}/attrs/temperature, random entity, API key",
        "app_processes": args.workers,
        "connections": args.connections,
        "entities": args.entities,
        "load_generator": "wrk, 1 thread, on the same 2-core machine",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "target_patch_per_s": 5000,
        "results": {
            backend: bench_backend(backend, args.seconds, args.connections, args.workers, args.entities)
            for backend in args.backends.split(",")
        },
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
