"""Jobs: one queue in the database (``kernel_job``) shared by every worker process.

A domain enqueues work with :func:`enqueue` inside its own transaction (so a rolled-back change enqueues
nothing) and declares handlers and periodic jobs in its manifest. Workers (``cityhub worker`` or the
embedded runner) call :func:`run_next` in a loop.

Guarantees:

- a job is claimed by one worker at a time: ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
  serialised write transaction on SQLite;
- a claim is a lease (``locked_until``): a job whose worker died is claimed again once the lease expires;
- the handler runs in the transaction that marks the job done, and that mark only succeeds while the
  lease is still ours, so the handler's database effects commit at most once per job — but a handler may
  *run* more than once (crash, lease lost), so side effects outside the database must be idempotent;
- a failing job is retried with exponential backoff, then marked ``failed`` with its last error after
  ``jobs.max_attempts`` attempts;
- a ``dedupe_key`` makes enqueueing idempotent (``INSERT ... ON CONFLICT DO NOTHING`` on both databases);
  periodic jobs use it so that any number of workers enqueue each period once.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Select, and_, delete, event, func, insert, or_, select, text, update
from sqlalchemy.orm import Session, SessionTransaction

from cityhub.kernel.db import Database, is_postgres, upsert_into, utcnow
from cityhub.kernel.domain import PeriodicJob
from cityhub.kernel.models import JOB_STATUSES, Job
from cityhub.kernel.settings import Settings

log = logging.getLogger("cityhub.jobs")

QUEUED, RUNNING, DONE, FAILED = JOB_STATUSES
DEFAULT_LEASE = timedelta(minutes=5)
RETRY_BASE = timedelta(seconds=5)
RETRY_CAP = timedelta(hours=1)
NOTIFY_CHANNEL = "cityhub_jobs"
FINISHED_RETENTION = timedelta(days=7)
MAX_ERROR_CHARS = 4000
MAX_DEDUPE_KEY = 400  # the column's length; checked here because SQLite would not
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WAKE_FLAG = "cityhub.jobs.wake"


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: the session of the job's transaction and the job's identity and payload."""

    session: Session
    settings: Settings
    job_id: int
    name: str
    attempt: int
    payload: Mapping[str, Any]


JobHandler = Callable[[JobContext], None]


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    name: str
    payload: dict[str, Any]
    attempt: int
    worker: str


class LeaseLostError(Exception):
    """The job was claimed again (our lease expired) before we finished; our work is rolled back."""


@dataclass
class JobRegistry:
    """Job names to handlers, plus the periodic jobs; filled by the entry points from the manifests."""

    handlers: dict[str, JobHandler] = field(default_factory=dict)
    periodic: list[PeriodicJob] = field(default_factory=list)

    def add(self, name: str, handler: JobHandler) -> None:
        if name in self.handlers and self.handlers[name] != handler:
            raise ValueError(f"two handlers registered for job {name!r}")
        self.handlers[name] = handler

    def add_periodic(self, job: PeriodicJob, handler: JobHandler) -> None:
        self.add(job.name, handler)
        self.periodic.append(job)

    def handler(self, name: str) -> JobHandler:
        try:
            return self.handlers[name]
        except KeyError:
            raise LookupError(f"no handler registered for job {name!r}") from None


class WorkSignal:
    """Wakes idle runner threads of this process: work committed here, a NOTIFY from elsewhere, or stop.

    A generation counter instead of a plain ``threading.Event`` so that several waiting threads can all
    see one wake-up without any of them clearing it for the others.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        with self._condition:
            return self._generation

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait(self, seen: int, timeout: float) -> None:
        """Return when the generation moved past ``seen`` or after ``timeout`` seconds (polling fallback)."""
        with self._condition:
            self._condition.wait_for(lambda: self._generation != seen, timeout)


work_signal = WorkSignal()


@event.listens_for(Session, "before_commit")
def _notify_other_processes(session: Session) -> None:
    """NOTIFY once, in the outermost transaction: one sent inside a savepoint that later rolls back would
    be discarded with it and leave other processes asleep until their next poll."""
    if session.info.get(_WAKE_FLAG) and is_postgres(session):
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    if session.info.pop(_WAKE_FLAG, False):
        work_signal.notify()


@event.listens_for(Session, "after_transaction_end")
def _forget_when_transaction_ends(session: Session, transaction: SessionTransaction) -> None:
    """Rolled back or closed: nothing to wake for. (After a commit, _wake_after_commit ran first.)"""
    if transaction.parent is None:
        session.info.pop(_WAKE_FLAG, None)


def enqueue(
    session: Session,
    name: str,
    payload: Mapping[str, Any],
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> int | None:
    """Queue a job in the caller's transaction; its id, or None when ``dedupe_key`` was already used."""
    if dedupe_key is not None and len(dedupe_key) > MAX_DEDUPE_KEY:
        raise ValueError(f"dedupe_key longer than {MAX_DEDUPE_KEY} characters")
    now = utcnow()
    values = {
        "name": name,
        "payload": _json_object(payload),
        "status": QUEUED,
        "attempts": 0,
        "run_at": run_at or now,
        "dedupe_key": dedupe_key,
        "created_at": now,
    }
    job_id = _insert_unless_duplicate(session, values)
    if job_id is not None:
        _wake_workers(session)
    return job_id


def _json_object(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Fail at enqueue time, in the caller's code, if the payload would not survive the JSON column."""
    return cast(dict[str, Any], json.loads(json.dumps(dict(payload), allow_nan=False)))


def _insert_unless_duplicate(session: Session, values: dict[str, Any]) -> int | None:
    if values["dedupe_key"] is None:
        return session.execute(insert(Job).values(**values).returning(Job.id)).scalar_one()
    statement = (
        upsert_into(session, Job)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(Job.id)
    )
    return session.execute(statement).scalar_one_or_none()


def _wake_workers(session: Session) -> None:
    """Mark the transaction: at commit, NOTIFY other processes (PostgreSQL) and wake this process's runner.

    Once per transaction: the flag is cleared when the transaction ends.
    """
    session.info[_WAKE_FLAG] = True


def _is_due(now: datetime) -> Any:
    queued = and_(Job.status == QUEUED, Job.run_at <= now)
    abandoned = and_(Job.status == RUNNING, Job.locked_until <= now)
    return or_(queued, abandoned)


def _due(now: datetime) -> Select[Any]:
    return (
        select(Job.id, Job.name, Job.payload, Job.status, Job.attempts)
        .where(_is_due(now))
        .order_by(Job.run_at, Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def anything_due(session: Session, now: datetime | None = None) -> bool:
    """A cheap read, so that an idle worker does not take SQLite's write lock every poll."""
    return session.execute(select(Job.id).where(_is_due(now or utcnow())).limit(1)).first() is not None


def claim(
    session: Session,
    worker: str,
    *,
    max_attempts: int,
    lease: timedelta = DEFAULT_LEASE,
    now: datetime | None = None,
) -> ClaimedJob | None:
    """Take the next due job (or one whose lease expired) for ``worker``; None when nothing is due."""
    now = now or utcnow()
    while (row := session.execute(_due(now)).first()) is not None:
        if row.status == RUNNING and row.attempts >= max_attempts:
            error = f"lease expired during attempt {row.attempts} (worker crashed or handler too slow)"
            _set(
                session, Job.id == row.id, status=FAILED, finished_at=now, locked_until=None, last_error=error
            )
            continue
        attempt = row.attempts + 1
        _set(
            session,
            Job.id == row.id,
            status=RUNNING,
            attempts=attempt,
            locked_until=now + lease,
            locked_by=worker,
        )
        return ClaimedJob(row.id, row.name, row.payload, attempt, worker)
    return None


def complete(session: Session, job: ClaimedJob, now: datetime | None = None) -> None:
    """Mark the job done in the handler's transaction; raise LeaseLostError if someone else owns it now."""
    if not _set(session, _still_ours(job), status=DONE, finished_at=now or utcnow(), locked_until=None):
        raise LeaseLostError(f"job {job.id} ({job.name}) attempt {job.attempt} lost its lease")


def retry_or_fail(
    session: Session, job: ClaimedJob, error: str, *, max_attempts: int, now: datetime | None = None
) -> None:
    """Put a failed attempt back in the queue after a backoff, or mark the job failed for good."""
    now = now or utcnow()
    error = error[-MAX_ERROR_CHARS:]
    if job.attempt >= max_attempts:
        changes: dict[str, Any] = {"status": FAILED, "finished_at": now}
    else:
        changes = {"status": QUEUED, "run_at": now + retry_delay(job.attempt), "locked_by": None}
    if not _set(session, _still_ours(job), locked_until=None, last_error=error, **changes):
        log.warning("job %s attempt %s failed after losing its lease: %s", job.id, job.attempt, error)


def retry_delay(attempt: int) -> timedelta:
    """5 s, 10 s, 20 s ... capped at an hour: quick recovery from blips, no hammering of a dead service."""
    return min(RETRY_BASE * 2 ** (attempt - 1), RETRY_CAP)


def _still_ours(job: ClaimedJob) -> Any:
    return and_(
        Job.id == job.id, Job.status == RUNNING, Job.locked_by == job.worker, Job.attempts == job.attempt
    )


def _set(session: Session, where: Any, **values: Any) -> bool:
    """UPDATE kernel_job; whether a row matched."""
    statement = update(Job).where(where).values(**values).execution_options(synchronize_session=False)
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount > 0


def run_next(
    database: Database,
    registry: JobRegistry,
    settings: Settings,
    worker: str,
    *,
    lease: timedelta = DEFAULT_LEASE,
    now: datetime | None = None,
) -> bool:
    """Claim one due job and run it; whether there was one.

    After a read-only look for due work, three short transactions: the claim (so the lease is visible
    to other workers while the handler runs), the handler together with the done mark, and on failure
    the retry bookkeeping.
    """
    max_attempts = settings.jobs.max_attempts
    with database.reading() as session:
        if not anything_due(session, now):
            return False
    with database.unit_of_work() as session:
        job = claim(session, worker, max_attempts=max_attempts, lease=lease, now=now)
    if job is None:
        return False
    try:
        with database.unit_of_work() as session:
            handler = registry.handler(job.name)
            handler(JobContext(session, settings, job.id, job.name, job.attempt, job.payload))
            complete(session, job, now=now)
    except LeaseLostError as lost:
        log.warning("%s; its effects were rolled back", lost)
    except Exception as exc:
        log.warning("job %s (%s) attempt %s failed: %s", job.id, job.name, job.attempt, exc)
        with database.unit_of_work() as session:
            retry_or_fail(session, job, _describe(exc), max_attempts=max_attempts, now=now)
    return True


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def period_start(now: datetime, every: timedelta) -> datetime:
    """The start of the period containing ``now``; periods are aligned on the Unix epoch (UTC)."""
    return EPOCH + ((now - EPOCH) // every) * every


def next_period_start(jobs: Iterable[PeriodicJob], now: datetime) -> datetime:
    """When the earliest of these jobs enters a new period: the next moment scheduling has work to do."""
    return min(period_start(now, job.every) + job.every for job in jobs)


def schedule_periodic(session: Session, jobs: Iterable[PeriodicJob], now: datetime | None = None) -> int:
    """Enqueue the current period of each periodic job unless some worker already did; how many were new."""
    now = now or utcnow()
    enqueued = 0
    for job in jobs:
        start = period_start(now, job.every).isoformat()
        payload = {"period_start": start}
        if enqueue(session, job.name, payload, run_at=now, dedupe_key=f"periodic:{job.name}:{start}"):
            enqueued += 1
    return enqueued


def purge_finished(session: Session, *, before: datetime) -> int:
    """Delete jobs done before ``before``; how many.

    Failed jobs stay for an operator to look at. Of each periodic job the newest row is kept, because
    its dedupe key is what stops the current period from being enqueued again.
    """
    periodic = Job.dedupe_key.like("periodic:%")
    newest_periodic = select(func.max(Job.id)).where(periodic).group_by(Job.name)
    statement = (
        delete(Job)
        .where(Job.status == DONE, Job.finished_at < before)
        .where(or_(Job.dedupe_key.is_(None), ~periodic, Job.id.not_in(newest_periodic)))
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def purge_finished_jobs(ctx: JobContext) -> None:
    """Periodic kernel job: keep the queue table small."""
    purged = purge_finished(ctx.session, before=utcnow() - FINISHED_RETENTION)
    log.info("purged %s finished jobs", purged)


KERNEL_PERIODIC_JOBS = (
    PeriodicJob("kernel.jobs.purge", timedelta(hours=1), "cityhub.kernel.jobs:purge_finished_jobs"),
)
