"""Typed events through a transactional outbox, delivered to handlers by the job queue.

A domain declares an event in its public face::

    class AccountCreated(Event):
        event_type: ClassVar[str] = "identity.account_created"
        account_id: int

publishes it with ``publish(session, AccountCreated(account_id=7))`` in the transaction of the change,
and other domains subscribe in their manifest: ``event_handlers={"identity.account_created":
("cityhub.domains.market.handlers:on_account_created",)}``. A handler is ``handler(session, event)``.

How it travels: ``publish`` writes the event to ``kernel_event`` and enqueues one *dispatch* job, both in
the caller's transaction (so a rolled-back change publishes nothing). A worker runs the dispatch job,
which enqueues one *delivery* job per handler registered for the type — using the worker's registry, so
publishers need no knowledge of subscribers — and each delivery is retried on its own. A handler runs in
the delivery job's transaction: its database effects commit together with the delivery being marked done.

Delivery is at-least-once: a handler's database effects commit exactly once with its delivery, but a
handler with effects outside the database (a message, a call) may run twice after a crash and must be
idempotent. Order between events is not guaranteed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cityhub.kernel.db import utcnow
from cityhub.kernel.jobs import JobContext, JobRegistry, enqueue
from cityhub.kernel.models import OutboxEvent

DISPATCH_JOB = "kernel.event.dispatch"
DELIVER_JOB = "kernel.event.deliver"

EventHandler = Callable[[Session, Any], None]

_event_classes: dict[str, type[Event]] = {}


class Event(BaseModel):
    """Base of every typed event; subclasses set ``event_type`` ("<domain>.<what_happened>").

    Frozen: an event is a fact about the past, shared by every handler, so none may change it.
    """

    model_config = ConfigDict(frozen=True)
    event_type: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "event_type" in cls.__dict__:
            _register_event_class(cls)


def _register_event_class(cls: type[Event]) -> None:
    """Remember which class rebuilds an event type's payload; two classes may not claim one type."""
    existing = _event_classes.get(cls.event_type)
    if existing and (existing.__module__, existing.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(
            f"event type {cls.event_type!r} is declared by both "
            f"{existing.__module__}.{existing.__qualname__} and {cls.__module__}.{cls.__qualname__}"
        )
    _event_classes[cls.event_type] = cls


def event_class(event_type: str) -> type[Event]:
    try:
        return _event_classes[event_type]
    except KeyError:
        raise LookupError(f"no Event class declares type {event_type!r} in this process") from None


def publish(session: Session, event: Event) -> int:
    """Write the event to the outbox and queue its dispatch, in the caller's transaction; the outbox id."""
    event_type = getattr(type(event), "event_type", None)
    if not event_type:
        raise TypeError(f"{type(event).__qualname__} has no event_type")
    statement = insert(OutboxEvent).values(
        type=event_type, payload=event.model_dump(mode="json"), created_at=utcnow()
    )
    event_id = session.execute(statement.returning(OutboxEvent.id)).scalar_one()
    enqueue(session, DISPATCH_JOB, {"event_id": event_id}, dedupe_key=f"event:{event_id}")
    return event_id


def load_event(session: Session, event_id: int) -> Event:
    """The typed event stored under ``event_id``."""
    row = session.execute(
        select(OutboxEvent.type, OutboxEvent.payload).where(OutboxEvent.id == event_id)
    ).one()
    return event_class(row.type).model_validate(row.payload)


class EventHandlers:
    """Event types to handlers, each under a stable reference (``"module:function"``).

    The reference, not the function, is what a delivery job stores, so a delivery survives restarts and
    is only run by a worker that still has that handler registered.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, dict[str, EventHandler]] = {}

    def add(self, event_type: str, handler: EventHandler, reference: str | None = None) -> None:
        reference = reference or f"{handler.__module__}:{handler.__qualname__}"
        self._handlers.setdefault(event_type, {})[reference] = handler

    def references(self, event_type: str) -> tuple[str, ...]:
        return tuple(self._handlers.get(event_type, {}))

    def handler(self, event_type: str, reference: str) -> EventHandler:
        try:
            return self._handlers[event_type][reference]
        except KeyError:
            raise LookupError(f"handler {reference!r} is not registered for {event_type!r}") from None

    def install(self, registry: JobRegistry) -> None:
        """Register the dispatch and delivery jobs that carry these handlers' events."""
        registry.add(DISPATCH_JOB, self.dispatch)
        registry.add(DELIVER_JOB, self.deliver)

    def dispatch(self, ctx: JobContext) -> None:
        """Job: fan one event out into a delivery job per handler (deduplicated if dispatch is retried)."""
        event_id = int(ctx.payload["event_id"])
        event_type = ctx.session.execute(
            select(OutboxEvent.type).where(OutboxEvent.id == event_id)
        ).scalar_one()
        for reference in self.references(event_type):
            payload = {"event_id": event_id, "type": event_type, "handler": reference}
            enqueue(ctx.session, DELIVER_JOB, payload, dedupe_key=f"event:{event_id}:{reference}")

    def deliver(self, ctx: JobContext) -> None:
        """Job: run one handler on one event, in this job's transaction."""
        handler = self.handler(ctx.payload["type"], ctx.payload["handler"])
        handler(ctx.session, load_event(ctx.session, int(ctx.payload["event_id"])))
