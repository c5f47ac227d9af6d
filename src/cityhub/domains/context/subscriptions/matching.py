"""Which subscriptions an entity change triggers, decided inside the change's transaction (clause 5.11.2).

Each process keeps the active subscriptions of every tenant compiled (selectors, ``q``, ``geoQ`` parsed once),
keyed by ``Tenant.subscriptions_version``, which every subscription change bumps. A transaction reads that
version once, by primary key, and only reloads the subscriptions when it moved. A matching change inserts one
``Notification`` per subscription in the same transaction, so the change and its notifications commit or
roll back together; a throttled subscription takes its turn with a conditional UPDATE of its
``last_notification``, which serialises concurrent writers on any number of processes.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Table, insert, or_, select, update
from sqlalchemy.orm import Session

from cityhub.domains.context.models import Notification, Subscription, Tenant
from cityhub.domains.context.query.geoquery import GeoQuery, from_geoq, matches_entity
from cityhub.domains.context.query.qlang import Expr, evaluate, parse
from cityhub.domains.context.service.changes import EntityChange, EntitySnapshot, listen
from cityhub.domains.context.store.document import timestamp
from cityhub.domains.context.subscriptions.document import DEFAULT_TRIGGERS, TERMS
from cityhub.domains.context.subscriptions.queue import schedule_delivery
from cityhub.kernel.db import utcnow

_VERSION_MEMO = "cityhub.context.subscriptions.version"
_NOTIFICATIONS = cast(Table, Notification.__table__)  # inserted with Core: no ORM bookkeeping per change


@dataclass(frozen=True)
class Selector:
    entity_id: str | None
    pattern: re.Pattern[str] | None
    type_iri: str

    def selects(self, entity: EntitySnapshot) -> bool:
        if self.type_iri not in entity.types:
            return False
        if self.entity_id is not None and entity.entity_id != self.entity_id:
            return False
        return self.pattern is None or self.pattern.search(entity.entity_id) is not None


@dataclass(frozen=True)
class Watcher:
    """One active subscription, compiled for matching."""

    pk: int
    selectors: tuple[Selector, ...]
    watched: frozenset[str] | None
    triggers: frozenset[str]
    q: Expr | None
    geo: GeoQuery | None
    terms: Mapping[str, str]
    attributes: frozenset[str] | None
    throttling: float | None
    expires_at: datetime | None

    def triggered_by(self, change: EntityChange) -> bool:
        """Triggers, selectors, watched attributes, then ``q``/``geoQ`` on the entity as it now is (as it
        was, for a deletion)."""
        entity = change.after or change.before
        assert entity is not None
        if self.selectors and not any(selector.selects(entity) for selector in self.selectors):
            return False
        changed = change.attribute_names
        if self.watched is not None:
            changed &= self.watched
            if not changed:
                return False
        if not self._fires(change, changed):
            return False
        if self.q is None and self.geo is None:
            return True
        document = entity_document(entity)
        resolve = self._resolve
        if self.q is not None and not evaluate(self.q, document, attribute_resolver=resolve):
            return False
        return self.geo is None or matches_entity(self.geo, document, resolve)

    def _resolve(self, name: str) -> str:
        return self.terms.get(name, name)

    def _fires(self, change: EntityChange, changed: set[str]) -> bool:
        if change.kind == "created":
            return bool({"entityCreated", "attributeCreated"} & self.triggers)
        if change.kind == "deleted":
            return "entityDeleted" in self.triggers
        if changed and "entityUpdated" in self.triggers:
            return True
        before = change.before.attrs if change.before else {}
        events = {
            "attributeUpdated" if name in before else "attributeCreated"
            for name in changed & set(change.written)
        }
        if changed & set(change.deleted):
            events.add("attributeDeleted")
        return bool(events & self.triggers)


def entity_document(entity: EntitySnapshot) -> dict[str, Any]:
    """The snapshot as ``q``/``geoQ`` evaluate it: normalized, a single instance not wrapped in a list."""
    document: dict[str, Any] = {"id": entity.entity_id, "type": entity.types}
    for name, instances in entity.attrs.items():
        document[name] = instances[0] if len(instances) == 1 else instances
    return document


def notified_entity(change: EntityChange, attributes: frozenset[str] | None) -> dict[str, Any]:
    """What a notification carries: the entity in stored form (expanded names, instance lists, system
    timestamps), projected on ``notification.attributes``; a deleted entity by id, type and ``deletedAt``."""
    if change.after is None:
        assert change.before is not None and change.at is not None
        return {"id": change.entity_id, "type": change.before.types, "deletedAt": timestamp(change.at)}
    return stored_entity(change.after, attributes)


def stored_entity(entity: EntitySnapshot, attributes: frozenset[str] | None) -> dict[str, Any]:
    stored: dict[str, Any] = {"id": entity.entity_id, "type": entity.types}
    if entity.scopes:
        stored["scope"] = entity.scopes
    stored["createdAt"] = entity.created_at
    stored["modifiedAt"] = entity.modified_at
    for name, instances in entity.attrs.items():
        if attributes is None or name in attributes:
            stored[name] = instances
    return stored


# -- the per-process cache ---------------------------------------------------------------------------------

_cache: weakref.WeakKeyDictionary[Any, dict[int, tuple[int, tuple[Watcher, ...]]]] = (
    weakref.WeakKeyDictionary()
)
_cache_lock = threading.Lock()


def _engine_cache(session: Session) -> dict[int, tuple[int, tuple[Watcher, ...]]]:
    engine = session.get_bind()
    cached = _cache.get(engine)
    if cached is None:
        with _cache_lock:
            cached = _cache.setdefault(engine, {})
    return cached


def forget_version(session: Session) -> None:
    """The transaction changed a subscription: its next change reads the version again."""
    session.info.pop(_VERSION_MEMO, None)


def _version(session: Session, tenant_id: int) -> int:
    """The tenant's subscriptions version, read once per transaction."""
    transaction = session.get_transaction()
    memo = session.info.get(_VERSION_MEMO)
    if memo is None or memo[0] is not transaction:
        memo = (transaction, {})
        session.info[_VERSION_MEMO] = memo
    versions: dict[int, int] = memo[1]
    if tenant_id not in versions:
        found = session.scalar(select(Tenant.subscriptions_version).where(Tenant.id == tenant_id))
        versions[tenant_id] = int(found or 0)
    return versions[tenant_id]


def watchers(session: Session, tenant_id: int) -> tuple[Watcher, ...]:
    """The tenant's active change-triggered subscriptions (expiry is checked per change)."""
    version = _version(session, tenant_id)
    cache = _engine_cache(session)
    cached = cache.get(tenant_id)
    if cached is not None and cached[0] == version:
        return cached[1]
    rows = session.execute(
        select(Subscription.pk, Subscription.document, Subscription.expires_at).where(
            Subscription.tenant_id == tenant_id, Subscription.is_active.is_(True)
        )
    )
    compiled = tuple(
        _compile(row.pk, row.document, row.expires_at) for row in rows if "timeInterval" not in row.document
    )
    cache[tenant_id] = (version, compiled)
    return compiled


def _compile(pk: int, document: Mapping[str, Any], expires_at: datetime | None) -> Watcher:
    notification = document["notification"]
    return Watcher(
        pk=pk,
        selectors=tuple(
            Selector(
                item.get("id"),
                re.compile(item["idPattern"]) if "idPattern" in item else None,
                item["type"],
            )
            for item in document.get("entities", ())
        ),
        watched=frozenset(document["watchedAttributes"]) if "watchedAttributes" in document else None,
        triggers=frozenset(document.get("notificationTrigger", DEFAULT_TRIGGERS)),
        q=parse(document["q"]) if "q" in document else None,
        geo=from_geoq(document["geoQ"]) if "geoQ" in document else None,
        terms=document.get(TERMS, {}),
        attributes=frozenset(notification["attributes"]) if "attributes" in notification else None,
        throttling=document.get("throttling"),
        expires_at=expires_at,
    )


# -- the listener ------------------------------------------------------------------------------------------


@listen
def queue_notifications(session: Session, change: EntityChange) -> None:
    """Insert a Notification for every subscription the change triggers (one executemany)."""
    candidates = watchers(session, change.tenant_id)
    if not candidates:
        return
    now = change.at or utcnow()
    rows = [
        {
            "subscription_pk": watcher.pk,
            "entities": [notified_entity(change, watcher.attributes)],
            "trigger": change.kind,
            "created_at": now,
            "due_at": now,
            "attempts": 0,
            "done": False,
        }
        for watcher in candidates
        if (watcher.expires_at is None or watcher.expires_at > now)
        and watcher.triggered_by(change)
        and (watcher.throttling is None or _take_turn(session, watcher.pk, watcher.throttling, now))
    ]
    if rows:
        session.connection().execute(insert(_NOTIFICATIONS), rows)
        schedule_delivery(session, now)


def _take_turn(session: Session, pk: int, throttling: float, now: datetime) -> bool:
    """Whether the throttled subscription may notify now; if so its ``last_notification`` becomes now.

    The UPDATE locks the subscription row until commit, so a concurrent change elsewhere waits and then sees
    the new time (PostgreSQL re-checks the condition on the updated row; SQLite has one writer).
    """
    last = Subscription.last_notification
    statement = (
        update(Subscription)
        .where(Subscription.pk == pk, or_(last.is_(None), last <= now - timedelta(seconds=throttling)))
        .values(last_notification=now)
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], session.execute(statement)).rowcount > 0
