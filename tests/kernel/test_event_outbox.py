"""Events: outbox in the caller's transaction, fan-out per handler, independent retries."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityhub.kernel import events, jobs
from cityhub.kernel.db import Database, utcnow
from cityhub.kernel.models import Job, OutboxEvent
from cityhub.kernel.settings import Settings
from tests.kernel.kernel_testing import (
    Calls,
    Ping,
    delivered_ids,
    drain,
    job_attempts,
    record_delivery,
    registry_with,
)


def publish(database: Database, *numbers: int) -> list[int]:
    with database.unit_of_work() as session:
        return [events.publish(session, Ping(n=n)) for n in numbers]


def publish_then_fail(database: Database) -> None:
    with database.unit_of_work() as session:
        events.publish(session, Ping(n=1))
        raise RuntimeError("the change failed")


def test_publish_writes_the_outbox_and_queues_one_dispatch(database: Database) -> None:
    [event_id] = publish(database, 7)
    with database.reading() as session:
        row = session.get(OutboxEvent, event_id)
        queued = session.scalars(select(Job)).all()
        assert events.load_event(session, event_id) == Ping(n=7)
    assert row is not None
    assert (row.type, row.payload) == ("kernel_test.ping", {"n": 7})
    assert [(job.name, job.payload) for job in queued] == [(events.DISPATCH_JOB, {"event_id": event_id})]


def test_each_handler_receives_each_event_once(database: Database, settings: Settings) -> None:
    calls = Calls()
    handlers = events.EventHandlers()
    handlers.add(Ping.event_type, lambda _session, event: calls.add(("a", event)), "t:a")
    handlers.add(Ping.event_type, lambda _session, event: calls.add(("b", event)), "t:b")
    publish(database, 1, 2)
    assert drain(database, registry_with(handlers), settings) == 2 + 4
    one, two = Ping(n=1), Ping(n=2)
    assert calls.counts == {("a", one): 1, ("b", one): 1, ("a", two): 1, ("b", two): 1}


def test_events_of_a_rolled_back_transaction_are_never_delivered(
    database: Database, settings: Settings
) -> None:
    calls = Calls()
    handlers = events.EventHandlers()
    handlers.add(Ping.event_type, lambda _session, event: calls.add(event.n), "t:calls")
    with pytest.raises(RuntimeError, match="the change failed"):
        publish_then_fail(database)
    assert drain(database, registry_with(handlers), settings) == 0
    with database.reading() as session:
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
    assert not calls.counts


def test_a_failing_handler_is_retried_without_repeating_the_others(
    database: Database, settings: Settings
) -> None:
    calls = Calls()

    def flaky(_session: Session, event: Ping) -> None:
        calls.add("flaky")
        if calls.counts["flaky"] == 1:
            raise ConnectionError("SMS gateway down")

    handlers = events.EventHandlers()
    handlers.add(Ping.event_type, flaky, "t:flaky")
    handlers.add(Ping.event_type, record_delivery, "t:record")
    registry = registry_with(handlers)
    publish(database, 5)
    drain(database, registry, settings)
    with database.reading() as session:
        retry = session.scalars(select(Job).where(Job.status == jobs.QUEUED)).one()
        assert delivered_ids(session) == {"5": 1}
    assert (retry.payload["handler"], retry.attempts) == ("t:flaky", 1)
    assert "SMS gateway down" in str(retry.last_error)

    assert drain(database, registry, settings, now=utcnow() + timedelta(minutes=1)) == 1
    with database.reading() as session:
        assert delivered_ids(session) == {"5": 1}
        assert job_attempts(session) == {
            (events.DISPATCH_JOB, "done", 1): 1,
            (events.DELIVER_JOB, "done", 1): 1,
            (events.DELIVER_JOB, "done", 2): 1,
        }
    assert calls.counts["flaky"] == 2


def test_a_failed_delivery_rolls_back_the_handlers_writes(database: Database, settings: Settings) -> None:
    def write_then_fail(session: Session, event: Ping) -> None:
        record_delivery(session, event)
        raise ValueError("half-way")

    handlers = events.EventHandlers()
    handlers.add(Ping.event_type, write_then_fail, "t:half")
    publish(database, 9)
    drain(database, registry_with(handlers), settings)
    with database.reading() as session:
        assert delivered_ids(session) == {}


def test_an_event_nobody_handles_is_dispatched_to_no_one(database: Database, settings: Settings) -> None:
    publish(database, 1)
    assert drain(database, registry_with(events.EventHandlers()), settings) == 1
    with database.reading() as session:
        assert job_attempts(session) == {(events.DISPATCH_JOB, "done", 1): 1}


def test_a_delivery_for_an_unregistered_handler_fails_clearly(database: Database, settings: Settings) -> None:
    with database.unit_of_work() as session:
        payload = {
            "event_id": events.publish(session, Ping(n=1)),
            "type": Ping.event_type,
            "handler": "t:gone",
        }
        jobs.enqueue(session, events.DELIVER_JOB, payload)
    settings.jobs.max_attempts = 1
    drain(database, registry_with(events.EventHandlers()), settings)
    with database.reading() as session:
        failed = session.scalars(select(Job).where(Job.status == jobs.FAILED)).one()
    assert "'t:gone' is not registered" in str(failed.last_error)


def test_event_types_are_unique_and_required(database: Database) -> None:
    with pytest.raises(TypeError, match="declared by both"):

        class Impostor(events.Event):
            event_type: ClassVar[str] = "kernel_test.ping"

    class Untyped(events.Event):
        value: int = 0

    with database.unit_of_work() as session, pytest.raises(TypeError, match="no event_type"):
        events.publish(session, Untyped())
    assert events.event_class("kernel_test.ping") is Ping
    with pytest.raises(LookupError):
        events.event_class("kernel_test.unknown")
