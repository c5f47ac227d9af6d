"""The job queue: dedupe, claiming, retries with backoff, leases, periodic jobs, purging, wake-ups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cityhub.kernel import audit, jobs
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.domain import PeriodicJob
from cityhub.kernel.models import AuditRecord, Job
from cityhub.kernel.settings import Settings
from tests.kernel.kernel_testing import Calls, drain

T0 = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def enqueue(
    database: Database, name: str = "test.job", run_at: datetime | None = None, dedupe_key: str | None = None
) -> int | None:
    with database.unit_of_work() as session:
        return jobs.enqueue(session, name, {"x": 1}, run_at=run_at, dedupe_key=dedupe_key)


def the_job(database: Database, job_id: int | None = None) -> Job:
    with database.reading() as session:
        statement = select(Job) if job_id is None else select(Job).where(Job.id == job_id)
        return session.scalars(statement).one()


def claim(
    database: Database, worker: str, now: datetime, lease: timedelta = jobs.DEFAULT_LEASE
) -> jobs.ClaimedJob:
    with database.unit_of_work() as session:
        claimed = jobs.claim(session, worker, max_attempts=8, lease=lease, now=now)
    assert claimed is not None
    return claimed


def registry_for(name: str, handler: jobs.JobHandler) -> jobs.JobRegistry:
    registry = jobs.JobRegistry()
    registry.add(name, handler)
    return registry


def always_fails(_ctx: jobs.JobContext) -> None:
    raise ZeroDivisionError("broken job")


def test_a_dedupe_key_makes_enqueue_idempotent(database: Database) -> None:
    first = enqueue(database, dedupe_key="report:2025-06")
    assert first is not None
    assert enqueue(database, dedupe_key="report:2025-06") is None
    assert enqueue(database) != enqueue(database)  # no key, no dedupe
    with database.reading() as session:
        assert len(session.scalars(select(Job)).all()) == 3


def test_payloads_must_be_json(database: Database) -> None:
    with database.unit_of_work() as session, pytest.raises(TypeError):
        jobs.enqueue(session, "test.job", {"when": datetime.now(UTC)})


def test_handler_gets_its_context_and_the_job_is_done(database: Database, settings: Settings) -> None:
    seen: list[jobs.JobContext] = []
    job_id = enqueue(database)
    assert drain(database, registry_for("test.job", seen.append), settings) == 1
    [ctx] = seen
    assert (ctx.job_id, ctx.name, ctx.attempt, dict(ctx.payload)) == (job_id, "test.job", 1, {"x": 1})
    assert ctx.settings is settings
    job = the_job(database)
    assert (job.status, job.attempts, job.locked_until) == (jobs.DONE, 1, None)
    assert job.finished_at is not None


def test_future_jobs_wait_for_their_time(database: Database, settings: Settings) -> None:
    calls = Calls()
    enqueue(database, run_at=utcnow() + timedelta(hours=1))
    registry = registry_for("test.job", lambda _ctx: calls.add("ran"))
    assert drain(database, registry, settings) == 0
    assert drain(database, registry, settings, now=utcnow() + timedelta(hours=2)) == 1


def test_failures_back_off_then_fail_with_the_last_error(database: Database, settings: Settings) -> None:
    settings.jobs.max_attempts = 3

    def broken(ctx: jobs.JobContext) -> None:
        raise RuntimeError(f"attempt {ctx.attempt} failed")

    registry = registry_for("test.job", broken)
    enqueue(database)
    now = utcnow()
    assert drain(database, registry, settings, now=now) == 1
    job = the_job(database)
    assert (job.status, job.attempts, job.run_at) == (jobs.QUEUED, 1, now + jobs.retry_delay(1))
    assert drain(database, registry, settings, now=now + timedelta(seconds=4)) == 0  # still backing off
    for attempt in (2, 3):
        now += timedelta(hours=2)
        assert drain(database, registry, settings, now=now) == 1
        assert the_job(database).attempts == attempt
    job = the_job(database)
    assert (job.status, job.finished_at) == (jobs.FAILED, now)
    assert "RuntimeError: attempt 3 failed" in str(job.last_error)
    assert drain(database, registry, settings, now=now + timedelta(days=1)) == 0


def test_retry_delay_doubles_up_to_an_hour() -> None:
    assert [jobs.retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert jobs.retry_delay(30) == timedelta(hours=1)


def test_a_job_without_a_handler_is_retried_not_lost(database: Database, settings: Settings) -> None:
    enqueue(database, name="test.unknown")
    drain(database, jobs.JobRegistry(), settings)
    job = the_job(database)
    assert (job.status, job.attempts) == (jobs.QUEUED, 1)
    assert "no handler registered for job 'test.unknown'" in str(job.last_error)


def test_a_crashed_workers_job_is_claimed_again_after_its_lease(
    database: Database, settings: Settings
) -> None:
    calls = Calls()
    enqueue(database)
    t0 = utcnow()
    crashed = claim(database, "crashed-worker", now=t0, lease=timedelta(minutes=1))
    registry = registry_for("test.job", lambda ctx: calls.add(ctx.attempt))
    assert drain(database, registry, settings, now=t0 + timedelta(seconds=30)) == 0  # lease still held
    assert drain(database, registry, settings, now=t0 + timedelta(minutes=2)) == 1
    assert calls.counts == {2: 1}
    job = the_job(database)
    assert (job.status, job.attempts, job.locked_by) == (jobs.DONE, 2, "test-worker")
    with database.unit_of_work() as session, pytest.raises(jobs.LeaseLostError):
        jobs.complete(session, crashed)


def complete_with_effect(database: Database, job: jobs.ClaimedJob) -> None:
    with database.unit_of_work() as session:
        audit.record(session, actor="system", action="slow.effect", object_type="job", object_id=job.id)
        jobs.complete(session, job)


def test_a_worker_that_lost_its_lease_commits_nothing(database: Database) -> None:
    enqueue(database)
    t0 = utcnow()
    slow = claim(database, "slow-worker", now=t0, lease=timedelta(minutes=1))
    claim(database, "other-worker", now=t0 + timedelta(minutes=2))
    with pytest.raises(jobs.LeaseLostError):
        complete_with_effect(database, slow)
    with database.reading() as session:
        assert session.scalars(select(AuditRecord)).all() == []
    assert the_job(database).locked_by == "other-worker"


def test_a_job_that_keeps_crashing_its_worker_is_failed(database: Database, settings: Settings) -> None:
    settings.jobs.max_attempts = 2
    enqueue(database)
    t0 = utcnow()
    for minutes in (0, 10):
        with database.unit_of_work() as session:
            now = t0 + timedelta(minutes=minutes)
            jobs.claim(session, "doomed", max_attempts=2, lease=timedelta(minutes=1), now=now)
    registry = registry_for("test.job", lambda _ctx: None)
    assert drain(database, registry, settings, now=t0 + timedelta(hours=1)) == 0
    job = the_job(database)
    assert (job.status, job.attempts) == (jobs.FAILED, 2)
    assert "lease expired during attempt 2" in str(job.last_error)


def test_two_claims_never_take_the_same_job(database: Database) -> None:
    first, second = enqueue(database), enqueue(database)
    claimed = {claim(database, "a", now=utcnow()).id, claim(database, "b", now=utcnow()).id}
    assert claimed == {first, second}
    with database.unit_of_work() as session:
        assert jobs.claim(session, "c", max_attempts=8) is None


def test_periodic_jobs_are_enqueued_once_per_period(database: Database) -> None:
    nightly = PeriodicJob("test.nightly", timedelta(days=1), "tests:unused")
    quarter_hour = PeriodicJob("test.quarter", timedelta(minutes=15), "tests:unused")
    for worker_time in (
        T0,
        T0 + timedelta(minutes=3),
        T0 + timedelta(minutes=14),
    ):  # three workers, one period
        with database.unit_of_work() as session:
            jobs.schedule_periodic(session, [nightly, quarter_hour], now=worker_time)
    with database.unit_of_work() as session:
        assert jobs.schedule_periodic(session, [nightly, quarter_hour], now=T0 + timedelta(minutes=15)) == 1
    with database.reading() as session:
        rows = session.execute(select(Job.name, Job.dedupe_key, Job.payload).order_by(Job.id)).all()
    assert [(name, key) for name, key, _payload in rows] == [
        ("test.nightly", "periodic:test.nightly:2025-06-01T00:00:00+00:00"),
        ("test.quarter", "periodic:test.quarter:2025-06-01T08:00:00+00:00"),
        ("test.quarter", "periodic:test.quarter:2025-06-01T08:15:00+00:00"),
    ]
    assert rows[0].payload == {"period_start": "2025-06-01T00:00:00+00:00"}


def test_purge_keeps_failed_jobs_and_each_periodic_jobs_newest_row(
    database: Database, settings: Settings
) -> None:
    hourly = PeriodicJob("test.hourly", timedelta(hours=1), "tests:unused")
    registry = registry_for("test.job", lambda _ctx: None)
    registry.add_periodic(hourly, lambda _ctx: None)
    registry.add("test.broken", always_fails)
    settings.jobs.max_attempts = 1
    t0 = utcnow()
    for hours in (0, 1):
        with database.unit_of_work() as session:
            jobs.schedule_periodic(session, registry.periodic, now=t0 + timedelta(hours=hours))
    enqueue(database)
    enqueue(database, name="test.broken")
    drain(database, registry, settings, now=t0 + timedelta(hours=2))
    with database.unit_of_work() as session:
        assert jobs.purge_finished(session, before=t0 + timedelta(hours=3)) == 2
    with database.reading() as session:
        left = session.execute(select(Job.name, Job.status, Job.dedupe_key)).all()
    newest = jobs.period_start(t0 + timedelta(hours=1), hourly.every).isoformat()
    assert sorted(left) == [
        ("test.broken", jobs.FAILED, None),
        ("test.hourly", jobs.DONE, f"periodic:test.hourly:{newest}"),
    ]


def test_registry_refuses_two_handlers_for_one_job() -> None:
    registry = registry_for("test.job", always_fails)
    registry.add("test.job", always_fails)  # the same handler again is fine
    with pytest.raises(ValueError, match="two handlers"):
        registry.add("test.job", lambda _ctx: None)


def enqueue_then_fail(database: Database) -> None:
    with database.unit_of_work() as session:
        jobs.enqueue(session, "test.job", {})
        raise RuntimeError("rolled back")


def test_committed_work_wakes_this_process(database: Database) -> None:
    before = jobs.work_signal.generation
    with pytest.raises(RuntimeError, match="rolled back"):
        enqueue_then_fail(database)
    assert jobs.work_signal.generation == before
    enqueue(database)
    assert jobs.work_signal.generation == before + 1
    enqueue(database, dedupe_key="same")
    enqueue(database, dedupe_key="same")  # a duplicate is no new work
    assert jobs.work_signal.generation == before + 2
