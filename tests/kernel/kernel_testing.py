"""Shared pieces of the kernel tests: a test event, handlers that leave traces, queue draining.

Also runnable as a worker process (``python -m tests.kernel.kernel_testing <database-url> <threads>``) for the
two-process delivery test.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from datetime import datetime
from typing import ClassVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityhub.kernel import audit, jobs
from cityhub.kernel.db import Database
from cityhub.kernel.events import Event, EventHandlers
from cityhub.kernel.models import AuditRecord, Job
from cityhub.kernel.settings import Settings

RECORD_DELIVERY = "tests.kernel.kernel_testing:record_delivery"


class Ping(Event):
    event_type: ClassVar[str] = "kernel_test.ping"
    n: int


class Calls:
    """Thread-safe count of handler invocations by key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[object] = Counter()

    def add(self, key: object) -> None:
        with self._lock:
            self.counts[key] += 1


def record_delivery(session: Session, event: Ping) -> None:
    """A handler whose effect is an audit record, so every delivery is visible (and chained) in the DB."""
    audit.record(session, actor="system", action="delivered", object_type="ping", object_id=event.n)


def registry_with(handlers: EventHandlers) -> jobs.JobRegistry:
    registry = jobs.JobRegistry()
    handlers.install(registry)
    return registry


def drain(
    database: Database, registry: jobs.JobRegistry, settings: Settings, now: datetime | None = None
) -> int:
    """Run due jobs in this thread until none is left; how many ran."""
    ran = 0
    while jobs.run_next(database, registry, settings, "test-worker", now=now):
        ran += 1
    return ran


def delivered_ids(session: Session) -> Counter[str]:
    rows = session.execute(
        select(AuditRecord.object_id, func.count())
        .where(AuditRecord.action == "delivered")
        .group_by(AuditRecord.object_id)
    )
    return Counter(dict(rows.all()))


def job_attempts(session: Session) -> Counter[tuple[str, str, int]]:
    """(name, status, attempts) -> how many jobs."""
    rows = session.execute(
        select(Job.name, Job.status, Job.attempts, func.count()).group_by(Job.name, Job.status, Job.attempts)
    )
    return Counter({(name, status, attempts): count for name, status, attempts, count in rows})


def main(url: str, threads: int) -> None:
    """A worker process: deliver Ping events with record_delivery until no work is due."""
    from cityhub.worker import Runner

    handlers = EventHandlers()
    handlers.add(Ping.event_type, record_delivery, RECORD_DELIVERY)
    database = Database.from_url(url, pool_size=threads)
    settings = Settings(database_url=url)
    try:
        Runner(database, settings, registry_with(handlers), concurrency=threads).run_until_idle()
    finally:
        database.dispose()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
