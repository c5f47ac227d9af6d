"""The Runner: concurrent runners and processes deliver each event once; wake-ups; registries."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.kernel import audit, events, jobs
from cityhub.kernel.db import Database
from cityhub.kernel.domain import Domain, PeriodicJob
from cityhub.kernel.models import Job
from cityhub.kernel.settings import Settings
from cityhub.worker import Runner, build_registry, start_embedded_runner
from cityhub.worker.listener import NotifyListener
from tests.kernel.kernel_testing import (
    RECORD_DELIVERY,
    Calls,
    Ping,
    delivered_ids,
    job_attempts,
    record_delivery,
    registry_with,
)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 200
WAIT_SECONDS = 30  # an upper bound for liveness, never a speed assertion


def publish_pings(database: Database, count: int = EVENTS) -> None:
    with database.unit_of_work() as session:
        for n in range(count):
            events.publish(session, Ping(n=n))


def assert_each_delivered_once(database: Database, count: int = EVENTS) -> None:
    with database.reading() as session:
        assert delivered_ids(session) == {str(n): 1 for n in range(count)}
        assert job_attempts(session) == {
            (events.DISPATCH_JOB, "done", 1): count,
            (events.DELIVER_JOB, "done", 1): count,
        }
        assert audit.verify(session).ok


def test_two_runners_deliver_every_event_exactly_once(database: Database, settings: Settings) -> None:
    calls = Calls()

    def counted(session: Session, event: Ping) -> None:
        calls.add(event.n)
        record_delivery(session, event)

    handlers = events.EventHandlers()
    handlers.add(Ping.event_type, counted, RECORD_DELIVERY)
    publish_pings(database)
    runners = [Runner(database, settings, registry_with(handlers), concurrency=3) for _ in range(2)]
    totals: list[int] = []
    threads = [
        threading.Thread(target=lambda r=runner: totals.append(r.run_until_idle())) for runner in runners
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(totals) == 2 * EVENTS
    assert calls.counts == dict.fromkeys(range(EVENTS), 1)
    assert_each_delivered_once(database)


def test_two_worker_processes_deliver_every_event_exactly_once(database: Database) -> None:
    publish_pings(database)
    url = database.engine.url.render_as_string(hide_password=False)
    command = [sys.executable, "-m", "tests.kernel.kernel_testing", url, "3"]
    processes = [subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for process in processes:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors
    assert_each_delivered_once(database)


def test_a_started_runner_picks_up_new_work_and_stops_cleanly(database: Database, settings: Settings) -> None:
    delivered = threading.Event()
    handlers = events.EventHandlers()
    handlers.add(Ping.event_type, lambda _session, _event: delivered.set(), "t:flag")
    runner = Runner(database, settings, registry_with(handlers), concurrency=2).start()
    try:
        publish_pings(database, 1)
        assert delivered.wait(WAIT_SECONDS)
    finally:
        runner.stop()
    assert not any(thread.is_alive() for thread in runner._threads)


def test_a_runner_enqueues_its_periodic_jobs(database: Database, settings: Settings) -> None:
    ran = Calls()
    registry = jobs.JobRegistry()
    registry.add_periodic(
        PeriodicJob("test.tick", timedelta(hours=1), "unused"), lambda ctx: ran.add(ctx.name)
    )
    assert Runner(database, settings, registry).run_until_idle() == 1
    assert Runner(database, settings, registry).run_until_idle() == 0  # same period: already done
    assert ran.counts == {"test.tick": 1}


def test_notify_wakes_listeners_in_other_processes(database: Database) -> None:
    if database.dialect != "postgresql":
        return  # SQLite has no cross-process notifications; the after-commit signal covers one process
    woken = threading.Event()
    listener = NotifyListener(database, jobs.NOTIFY_CHANNEL, woken.set)
    listener.start()
    try:
        assert listener.listening.wait(WAIT_SECONDS)
        with database.unit_of_work() as session:
            jobs.enqueue(session, "test.job", {})
        assert woken.wait(WAIT_SECONDS)
    finally:
        listener.stop()


def test_build_registry_reads_every_manifest_declaration() -> None:
    domain = Domain(
        name="sample",
        title="Sample",
        periodic_jobs=(
            PeriodicJob("sample.nightly", timedelta(days=1), "tests.kernel.kernel_testing:drain"),
        ),
        job_handlers={"sample.export": "tests.kernel.kernel_testing:registry_with"},
        event_handlers={Ping.event_type: (RECORD_DELIVERY,)},
    )
    registry = build_registry([domain])
    assert set(registry.handlers) == {
        "kernel.jobs.purge",
        "sample.nightly",
        "sample.export",
        events.DISPATCH_JOB,
        events.DELIVER_JOB,
    }
    assert [job.name for job in registry.periodic] == ["kernel.jobs.purge", "sample.nightly"]


def test_the_embedded_runner_runs_kernel_jobs(database: Database, settings: Settings) -> None:
    runner = start_embedded_runner(settings, database)
    try:
        with database.unit_of_work() as session:
            job_id = jobs.enqueue(session, "kernel.jobs.purge", {})
        assert _wait_until_done(database, job_id)
    finally:
        runner.stop()


def _wait_until_done(database: Database, job_id: int | None) -> bool:
    done = threading.Event()
    for _ in range(WAIT_SECONDS * 10):
        with database.reading() as session:
            if session.scalar(select(Job.status).where(Job.id == job_id)) == jobs.DONE:
                return True
        done.wait(0.1)
    return False
