"""Delivering queued notifications (clause 5.11): claim a batch, render, send concurrently, record.

At least once, never lost: a notification row stays until it was delivered. A drain claims due rows with a
lease (``locked_until``; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single writer on SQLite) in one short
transaction, so two workers never hold the same row and a worker that dies leaves rows that are claimed
again once the lease expires; sends happen outside any transaction, from a thread pool; one more transaction
marks the delivered rows done, reschedules the failed ones with exponential backoff, and adds the outcome to
the subscriptions' status (``timesSent``, ``timesFailed``, ``lastNotification``, ``lastSuccess``,
``lastFailure``).

``timeInterval`` subscriptions (periodic notifications) keep one pending row of trigger ``timeInterval``:
delivering it queries the matching entities as they are then and queues the next one, in the transaction
that records the send.

The loop runs as the kernel job ``context.notifications.deliver`` (see ``queue``), so it runs under
``cityhub worker`` on PostgreSQL and in the app's embedded runner on SQLite.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, and_, case, delete, or_, select, update
from sqlalchemy.orm import Session

from cityhub.domains.context.jsonld import (
    ContextResolver,
    JsonLdContextError,
    TermMapper,
    context_link_header,
)
from cityhub.domains.context.models import Notification, Subscription
from cityhub.domains.context.ngsi.common import resolver_for
from cityhub.domains.context.query.geoquery import from_geoq
from cityhub.domains.context.query.qlang import parse
from cityhub.domains.context.service.query import MAX_LIMIT, EntityQuery, EntitySelector, query_entities
from cityhub.domains.context.service.tenants import TenantRef
from cityhub.domains.context.store.document import RenderOptions, render, timestamp
from cityhub.domains.context.subscriptions.document import TERMS
from cityhub.domains.context.subscriptions.matching import stored_entity
from cityhub.domains.context.subscriptions.queue import (
    TIMER,
    continue_delivery,
    queue_timer,
    schedule_delivery,
)
from cityhub.domains.context.subscriptions.transport import DeliveryError, Message, send
from cityhub.kernel.db import Database, is_postgres, utcnow
from cityhub.kernel.jobs import JobContext
from cityhub.kernel.settings import Settings

log = logging.getLogger("cityhub.context.notifications")

BATCH_SIZE = 500
SENDERS = 48
LEASE = timedelta(minutes=5)
DRAIN_BUDGET_SECONDS = 20.0
RETRY_BASE = timedelta(seconds=2)
RETRY_CAP = timedelta(minutes=30)
KEEP_DELIVERED = timedelta(hours=1)


@dataclass(frozen=True)
class Claimed:
    id: int
    subscription_pk: int
    entities: list[dict[str, Any]]
    trigger: str
    created_at: datetime
    due_at: datetime
    attempts: int


@dataclass(frozen=True)
class Target:
    """A claimed row's subscription, as delivery needs it."""

    pk: int
    tenant_id: int
    subscription_id: str
    document: Mapping[str, Any]
    context: Any
    active: bool

    @property
    def notification(self) -> Mapping[str, Any]:
        return self.document["notification"]

    @property
    def periodic(self) -> bool:
        return "timeInterval" in self.document


@dataclass
class Outcome:
    row: Claimed
    error: str | None = None
    skipped: bool = False  # a timer of a subscription no longer active or periodic: nothing sent


@dataclass
class _Status:
    sent: int = 0
    failed: int = 0
    last_notification: datetime | None = None
    last_success: datetime | None = None
    last_failure: datetime | None = None
    reason: str | None = None
    next_timer: datetime | None = None


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _senders() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(SENDERS, thread_name_prefix="cityhub-notify")
    return _pool


# -- the loop ------------------------------------------------------------------------------------------------


def deliver_due(
    database: Database, settings: Settings, *, budget_seconds: float = DRAIN_BUDGET_SECONDS
) -> int:
    """Deliver due notifications batch by batch until none is due or the budget is spent; how many were
    attempted. Out of budget with work left, another delivery job is queued."""
    deadline = time.monotonic() + budget_seconds
    attempted = 0
    while True:
        batch = claim(database, BATCH_SIZE)
        if not batch:
            return attempted
        targets = _targets(database, {row.subscription_pk for row in batch})
        outcomes = _send_all(database, settings, batch, targets)
        with database.unit_of_work() as session:
            record(session, outcomes, targets)
        attempted += len(batch)
        if time.monotonic() >= deadline:
            with database.unit_of_work() as session:
                continue_delivery(session)
            return attempted


def claim(database: Database, limit: int, now: datetime | None = None) -> list[Claimed]:
    """Lease up to ``limit`` due notifications to this caller (one transaction)."""
    now = now or utcnow()
    with database.unit_of_work() as session:
        due = (
            select(Notification.id)
            .where(
                Notification.done.is_(False),
                Notification.due_at <= now,
                or_(Notification.locked_until.is_(None), Notification.locked_until <= now),
            )
            .order_by(Notification.due_at, Notification.id)
            .limit(limit)
        )
        if is_postgres(session):
            due = due.with_for_update(skip_locked=True)
        statement = (
            update(Notification)
            .where(Notification.id.in_(due.scalar_subquery()))
            .values(locked_until=now + LEASE, attempts=Notification.attempts + 1)
            .returning(
                Notification.id,
                Notification.subscription_pk,
                Notification.entities,
                Notification.trigger,
                Notification.created_at,
                Notification.due_at,
                Notification.attempts,
            )
            .execution_options(synchronize_session=False)
        )
        rows = [Claimed(*row) for row in session.execute(statement)]
    return sorted(rows, key=lambda row: (row.due_at, row.id))


def _targets(database: Database, pks: Iterable[int]) -> dict[int, Target]:
    with database.reading() as session:
        rows = session.execute(
            select(
                Subscription.pk,
                Subscription.tenant_id,
                Subscription.subscription_id,
                Subscription.document,
                Subscription.context,
                Subscription.is_active,
                Subscription.expires_at,
            ).where(Subscription.pk.in_(list(pks)))
        )
        now = utcnow()
        return {
            row.pk: Target(
                row.pk,
                row.tenant_id,
                row.subscription_id,
                row.document,
                row.context,
                row.is_active and (row.expires_at is None or row.expires_at > now),
            )
            for row in rows
        }


def _send_all(
    database: Database, settings: Settings, batch: Sequence[Claimed], targets: Mapping[int, Target]
) -> list[Outcome]:
    """Render every claimed row, send the messages concurrently, and say how each went (in batch order)."""
    mappers = _Mappers(resolver_for(settings))
    prepared = [(row, _prepare(database, row, targets.get(row.subscription_pk), mappers)) for row in batch]
    sending = {row.id: _senders().submit(send, item) for row, item in prepared if isinstance(item, Message)}
    return [item if isinstance(item, Outcome) else _outcome(row, sending[row.id]) for row, item in prepared]


def _prepare(database: Database, row: Claimed, target: Target | None, mappers: _Mappers) -> Message | Outcome:
    """The message to send, or the outcome already known (nothing to send, or no @context to render with)."""
    if target is None or (row.trigger == TIMER and not (target.active and target.periodic)):
        return Outcome(row, skipped=True)
    mapper = mappers.get(target)
    if isinstance(mapper, str):
        return Outcome(row, error=mapper)
    entities = _current_entities(database, target) if row.trigger == TIMER else row.entities
    return message_for(row, target, mapper, entities)


def _outcome(row: Claimed, sending: Future[None]) -> Outcome:
    try:
        sending.result()
    except DeliveryError as exc:
        return Outcome(row, error=str(exc))
    return Outcome(row)


class _Mappers:
    """Each subscription's @context resolved once per batch; a failure is kept as the reason to report."""

    def __init__(self, resolver: ContextResolver) -> None:
        self.resolver = resolver
        self.found: dict[int, TermMapper | str] = {}

    def get(self, target: Target) -> TermMapper | str:
        if target.pk not in self.found:
            try:
                self.found[target.pk] = self.resolver.mapper(target.context)
            except JsonLdContextError as exc:
                self.found[target.pk] = f"@context unavailable: {exc}"
        return self.found[target.pk]


# -- rendering -----------------------------------------------------------------------------------------------


def message_for(
    row: Claimed, target: Target, mapper: TermMapper, entities: Iterable[Mapping[str, Any]]
) -> Message:
    """The Notification (clause 5.2.15) in the subscription's format, compacted with its @context."""
    notification = target.notification
    options = RenderOptions(
        notification["format"], bool(notification.get("sysAttrs")), None, target.document.get("lang")
    )
    body: dict[str, Any] = {
        "id": f"urn:ngsi-ld:Notification:{row.id}",
        "type": "Notification",
        "subscriptionId": target.subscription_id,
        "notifiedAt": timestamp(utcnow()),
        "data": [_shown(entity, options, mapper) for entity in entities],
    }
    endpoint = notification["endpoint"]
    headers = {item["key"]: item["value"] for item in endpoint.get("receiverInfo", ())}
    context = mapper.context
    if endpoint["accept"] == "application/ld+json":
        headers["Content-Type"] = "application/ld+json"
        body = {"@context": context.body_context, **body}
    else:
        headers["Content-Type"] = "application/json"
        headers["Link"] = context_link_header(context.link_url or context.core_url)
    notifier = {item["key"]: item["value"] for item in endpoint.get("notifierInfo", ())}
    return Message(endpoint["uri"], headers, body, notifier)


def _shown(entity: Mapping[str, Any], options: RenderOptions, mapper: TermMapper) -> dict[str, Any]:
    key_values = options.format == "keyValues"
    types = entity["type"]
    if "deletedAt" in entity:
        shown_type = types[0] if len(types) == 1 else types
        return mapper.compact_entity(
            {"id": entity["id"], "type": shown_type, "deletedAt": entity["deletedAt"]}
        )
    attrs = {key: value for key, value in entity.items() if key not in _ENTITY_KEYS}
    document = render(
        entity["id"],
        types,
        entity.get("scope"),
        attrs,
        entity.get("createdAt"),
        entity.get("modifiedAt"),
        options,
    )
    return mapper.compact_entity(document, key_values=key_values)


_ENTITY_KEYS = frozenset({"id", "type", "scope", "createdAt", "modifiedAt"})


def _current_entities(database: Database, target: Target) -> list[dict[str, Any]]:
    """A periodic notification's data: every entity the subscription selects, as it is now."""
    document = target.document
    terms: Mapping[str, str] = document.get(TERMS, {})
    geo = from_geoq(document["geoQ"]) if "geoQ" in document else None
    query = EntityQuery(
        selectors=[
            EntitySelector(item.get("id"), item.get("idPattern"), (item["type"],))
            for item in document.get("entities", ())
        ],
        q=parse(document["q"]) if "q" in document else None,
        geo=geo,
        geo_property=terms.get(geo.geoproperty, geo.geoproperty) if geo else "",
        limit=MAX_LIMIT,
        attribute_resolver=lambda name: terms.get(name, name),
    )
    attributes = target.notification.get("attributes")
    projection = frozenset(attributes) if attributes else None
    tenant = TenantRef(target.tenant_id, "", None)
    found: list[dict[str, Any]] = []
    with database.reading() as session:
        while True:
            page = query_entities(session, tenant, query).entities
            found.extend(stored_entity(entity, projection) for entity in page)
            if len(page) < MAX_LIMIT:
                return found
            query.offset += MAX_LIMIT


# -- recording -----------------------------------------------------------------------------------------------


def record(session: Session, outcomes: Sequence[Outcome], targets: Mapping[int, Target]) -> None:
    """Mark delivered rows done, put failed ones back with a backoff, update the subscriptions' status."""
    now = utcnow()
    done: list[int] = []
    retries: list[dict[str, Any]] = []
    statuses: dict[int, _Status] = defaultdict(_Status)
    for outcome in outcomes:
        row = outcome.row
        if outcome.skipped:
            done.append(row.id)
            continue
        status = statuses[row.subscription_pk]
        status.sent += 1
        status.last_notification = _later(status.last_notification, row.created_at)
        if outcome.error is None:
            status.last_success = now
        else:
            status.failed += 1
            status.last_failure = now
            status.reason = outcome.error
        if row.trigger == TIMER:
            done.append(row.id)
            interval = timedelta(seconds=targets[row.subscription_pk].document["timeInterval"])
            status.next_timer = max(row.due_at + interval, now)
        elif outcome.error is None:
            done.append(row.id)
        else:
            retries.append(
                {
                    "id": row.id,
                    "due_at": now + retry_delay(row.attempts),
                    "locked_until": None,
                    "last_error": outcome.error,
                }
            )
    if done:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(done))
            .values(done=True, locked_until=None)
            .execution_options(synchronize_session=False)
        )
    if retries:
        session.execute(update(Notification), retries)
    for pk, status in statuses.items():
        _record_status(session, pk, status)
    if retries:
        schedule_delivery(session, min(retry["due_at"] for retry in retries))


def _record_status(session: Session, pk: int, status: _Status) -> None:
    values: dict[str, Any] = {
        "times_sent": Subscription.times_sent + status.sent,
        "times_failed": Subscription.times_failed + status.failed,
        "last_notification": _later_column(Subscription.last_notification, status.last_notification),
    }
    if status.last_success is not None:
        values["last_success"] = status.last_success
    if status.last_failure is not None:
        values["last_failure"] = status.last_failure
        values["last_failure_reason"] = status.reason
    session.execute(
        update(Subscription)
        .where(Subscription.pk == pk)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if status.next_timer is not None:
        queue_timer(session, pk, status.next_timer)


def retry_delay(attempt: int) -> timedelta:
    """2 s, 4 s, 8 s ... capped at 30 minutes; a notification is retried until delivered or its
    subscription deleted."""
    return min(RETRY_BASE * 2 ** min(attempt - 1, 20), RETRY_CAP)


def _later(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current


def _later_column(column: Any, value: datetime | None) -> Any:
    if value is None:
        return column
    return case((or_(column.is_(None), column < value), value), else_=column)


def purge_delivered(session: Session, before: datetime) -> None:
    session.execute(
        delete(Notification)
        .where(and_(Notification.done.is_(True), Notification.created_at < before))
        .execution_options(synchronize_session=False)
    )


# -- jobs ----------------------------------------------------------------------------------------------------


def _database_of(ctx: JobContext) -> Database:
    """The job's database; its session's engine is the write one, so reads are made plain again."""
    engine = cast(Engine, ctx.session.get_bind())
    return Database(engine.execution_options(cityhub_write=False))


def deliver(ctx: JobContext) -> None:
    """Job ``context.notifications.deliver``: drain what is due."""
    deliver_due(_database_of(ctx), ctx.settings)


def sweep(ctx: JobContext) -> None:
    """Periodic job ``context.notifications.sweep``: deliver stragglers, forget old delivered rows."""
    database = _database_of(ctx)
    deliver_due(database, ctx.settings)
    with database.unit_of_work() as session:
        purge_delivered(session, utcnow() - KEEP_DELIVERED)
