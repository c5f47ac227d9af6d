"""Notification throughput: N entity changes matching one subscription, then delivery to a local receiver.

The changes go through the store's service layer (each its own transaction, queuing its notification in it);
delivery is the same drain the ``context.notifications.deliver`` job runs, with ``--drainers`` of them at
once (as several worker threads or processes would). The receiver is a separate process counting what it
got; the run checks that every notification arrived exactly once.

Prints one JSON document.
Usage: .venv/bin/python bench/context_notify.py [--changes 20000] [--drainers 2] [--backends sqlite]
Target (issue #3): notifications delivered >= 2,000/s to a local receiver, none lost.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import free_port, fresh_database
from cityhub.domains import manifests
from cityhub.domains.context.jsonld import ContextResolver
from cityhub.domains.context.service import entities as store
from cityhub.domains.context.service.tenants import find_tenant
from cityhub.domains.context.store.document import parse_attributes, parse_entity
from cityhub.domains.context.subscriptions import store as subscriptions
from cityhub.domains.context.subscriptions.delivery import deliver_due
from cityhub.domains.context.subscriptions.document import parse_subscription
from cityhub.kernel.db import Database
from cityhub.kernel.settings import Settings

CORE = "https://uri.etsi.org/ngsi-ld/"
TEMPERATURE = CORE + "default-context/temperature"
ENTITY_COUNT = 100


def running_receiver() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(Path(__file__).parent / "_receiver.py"), str(port)])
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{base}/count", timeout=1)
            return process, base
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the receiver did not start")


def seed(database: Database, settings: Settings, receiver: str) -> None:
    mapper = ContextResolver.from_settings(settings).mapper(None)
    body = {
        "type": "Subscription",
        "entities": [{"type": "Sensor"}],
        "watchedAttributes": ["temperature"],
        "notification": {"endpoint": {"uri": f"{receiver}/notify", "accept": "application/json"}},
    }
    with database.unit_of_work() as session:
        tenant = find_tenant(session, "", create=True)
        for number in range(ENTITY_COUNT):
            entity = {
                "id": f"urn:ngsi-ld:Sensor:{number}",
                "type": CORE + "default-context/Sensor",
                TEMPERATURE: {"type": "Property", "value": 0},
            }
            store.create_entity(session, tenant, parse_entity(entity))
    with database.unit_of_work() as session:
        tenant = find_tenant(session, "", create=False)
        subscriptions.create_subscription(session, tenant, parse_subscription(body, mapper), None, "bench")


def make_changes(database: Database, count: int) -> float:
    """``count`` single-attribute updates, one transaction each; changes/s."""
    started = time.perf_counter()
    for index in range(count):
        attrs = parse_attributes({TEMPERATURE: {"type": "Property", "value": index}})
        with database.unit_of_work() as session:
            tenant = find_tenant(session, "", create=False)
            store.update_attributes(session, tenant, f"urn:ngsi-ld:Sensor:{index % ENTITY_COUNT}", attrs)
    return count / (time.perf_counter() - started)


def drain(database: Database, settings: Settings, drainers: int) -> float:
    """Every drainer delivers until nothing is due; seconds taken."""
    started = time.perf_counter()
    threads = [
        threading.Thread(target=deliver_due, args=(database, settings), kwargs={"budget_seconds": 3600})
        for _ in range(drainers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def bench_backend(backend: str, changes: int, drainers: int) -> dict[str, object]:
    receiver, base = running_receiver()
    try:
        with fresh_database(backend) as url, tempfile.TemporaryDirectory() as var_dir:
            settings = Settings(env="test", database_url=url, var_dir=Path(var_dir))
            database = Database.from_url(url, pool_size=20)
            seed(database, settings, base)
            changes_per_s = make_changes(database, changes)
            seconds = drain(database, settings, drainers)
            counted = httpx.get(f"{base}/count").json()
            database.dispose()
    finally:
        receiver.terminate()
        receiver.wait()
    return {
        "changes": changes,
        "changes_queued_per_s": round(changes_per_s, 1),
        "drainers": drainers,
        "delivery_seconds": round(seconds, 2),
        "notifications_delivered_per_s": round(counted["received"] / seconds, 1),
        "received": counted["received"],
        "distinct_received": counted["distinct"],
        "none_lost_none_doubled": counted["received"] == counted["distinct"] == changes,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=20_000)
    parser.add_argument("--drainers", type=int, default=2)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    manifests()
    results = {
        backend: bench_backend(backend, args.changes, args.drainers) for backend in args.backends.split(",")
    }
    report = {
        "benchmark": "context_notify",
        "machine": {"cpus": platform.os.cpu_count(), "python": platform.python_version()},  # type: ignore[attr-defined]
        "target_notifications_per_s": 2000,
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
