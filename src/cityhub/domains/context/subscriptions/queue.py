"""Waking the delivery loop through the kernel job queue, and the rows of periodic notifications.

A transaction that queues notifications also enqueues the ``context.notifications.deliver`` job, deduplicated
per half-second bucket so that thousands of changes a second cost a few job rows, and due just after the
bucket closes: by then every transaction that enqueued into the bucket has (almost always) committed, so
the job's drain sees their notifications. The rare transaction that commits later, and notifications of a
worker that died holding them, are picked up by the ``context.notifications.sweep`` periodic job.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from cityhub.domains.context.models import Notification
from cityhub.kernel.jobs import enqueue

DELIVER_JOB = "context.notifications.deliver"
SWEEP_JOB = "context.notifications.sweep"
SWEEP_EVERY = timedelta(seconds=15)
BUCKET_SECONDS = 0.5
GRACE = timedelta(seconds=0.25)
_MEMO = "cityhub.context.notifications.buckets"
TIMER = "timeInterval"  # the trigger of a periodic notification's row


def schedule_delivery(session: Session, due_at: datetime) -> None:
    """Make sure a delivery job runs soon after ``due_at``.

    The job row is written once per bucket and transaction, and not at all once this process has
    committed the bucket's job: then it is known to exist, and it cannot have run yet.
    """
    bucket = math.floor(due_at.timestamp() / BUCKET_SECONDS)
    if bucket in _committed_buckets(session):
        return
    transaction = session.get_transaction()
    memo = session.info.get(_MEMO)
    if memo is None or memo[0] is not transaction:
        memo = (transaction, set[int]())
        session.info[_MEMO] = memo
    buckets: set[int] = memo[1]
    if bucket in buckets:
        return
    buckets.add(bucket)
    run_at = datetime.fromtimestamp((bucket + 1) * BUCKET_SECONDS, UTC) + GRACE
    enqueue(session, DELIVER_JOB, {}, run_at=run_at, dedupe_key=f"{DELIVER_JOB}:{bucket}")


_committed: weakref.WeakKeyDictionary[Any, deque[int]] = weakref.WeakKeyDictionary()
_committed_lock = threading.Lock()
REMEMBERED_BUCKETS = 64


def _committed_buckets(session: Session) -> deque[int]:
    engine = session.get_bind()
    buckets = _committed.get(engine)
    if buckets is None:
        with _committed_lock:
            buckets = _committed.setdefault(engine, deque(maxlen=REMEMBERED_BUCKETS))
    return buckets


@event.listens_for(Session, "after_commit")
def _remember_committed_buckets(session: Session) -> None:
    memo = session.info.pop(_MEMO, None)
    if memo is not None:
        _committed_buckets(session).extend(memo[1])


def continue_delivery(session: Session) -> None:
    """A drain stopped at its time budget with work left: run another job right away."""
    enqueue(session, DELIVER_JOB, {"continued": True})


def queue_timer(session: Session, subscription_pk: int, due_at: datetime) -> None:
    """The next periodic notification of a timeInterval subscription."""
    session.execute(
        insert(Notification).values(
            subscription_pk=subscription_pk,
            entities=[],
            trigger=TIMER,
            created_at=due_at,
            due_at=due_at,
            attempts=0,
            done=False,
        )
    )
    schedule_delivery(session, due_at)


def has_pending_timer(session: Session, subscription_pk: int) -> bool:
    pending = select(Notification.id).where(
        Notification.subscription_pk == subscription_pk,
        Notification.trigger == TIMER,
        Notification.done.is_(False),
    )
    return session.execute(pending.limit(1)).first() is not None
