"""What one entity change was, and who hears of it inside the change's transaction.

Every write of the store ends in ``announce``: the temporal history rows are appended, and each registered
listener (subscriptions queue their notifications here) runs in the same transaction, so a change and its
consequences commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from cityhub.domains.context.service import bulk
from cityhub.domains.context.store.document import Attributes, Instance

ChangeKind = Literal["created", "updated", "deleted"]
Listener = Callable[[Session, "EntityChange"], None]


@dataclass(frozen=True)
class EntitySnapshot:
    """An entity as stored (expanded names, instance lists, system timestamps as ISO strings)."""

    entity_id: str
    types: list[str]
    scopes: list[str] | None
    attrs: Attributes
    created_at: str
    modified_at: str


@dataclass(frozen=True)
class EntityChange:
    tenant_id: int
    kind: ChangeKind
    entity_id: str
    before: EntitySnapshot | None
    after: EntitySnapshot | None
    written: dict[str, list[Instance]] = field(default_factory=dict)
    deleted: dict[str, list[Instance]] = field(default_factory=dict)
    at: datetime | None = None

    @property
    def attribute_names(self) -> set[str]:
        return set(self.written) | set(self.deleted)


_listeners: list[Listener] = []


def listen(listener: Listener) -> Listener:
    """Register a listener (idempotent); used as a decorator at import time."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def announce(session: Session, change: EntityChange) -> None:
    announce_all(session, [change])


def announce_all(session: Session, changes: Sequence[EntityChange]) -> None:
    """The history of every change (one COPY or executemany per tenant and time), then the listeners."""
    batches: dict[tuple[int, datetime], list[bulk.HistoryRow]] = {}
    for change in changes:
        assert change.at is not None
        batches.setdefault((change.tenant_id, change.at), []).extend(history_rows(change))
    for (tenant_id, at), rows in batches.items():
        bulk.append_history(session, tenant_id, at, rows)
    for change in changes:
        inform_listeners(session, change)


def inform_listeners(session: Session, change: EntityChange) -> None:
    """Run the listeners only: for bulk writers that append the history themselves (``ingest``)."""
    for listener in _listeners:
        listener(session, change)


def record_history(session: Session, change: EntityChange) -> None:
    """Append every written and deleted instance of one change to the temporal history."""
    assert change.at is not None
    bulk.append_history(session, change.tenant_id, change.at, history_rows(change))


def history_rows(change: EntityChange) -> list[bulk.HistoryRow]:
    rows = [
        bulk.written_row(change.entity_id, name, instance, _observed(instance))
        for name, instances in change.written.items()
        for instance in instances
    ]
    rows += [
        bulk.deleted_row(change.entity_id, name, instance)
        for name, instances in change.deleted.items()
        for instance in instances
    ]
    return rows


def _observed(instance: Instance) -> str | None:
    observed = instance.get("observedAt")
    return None if observed is None else bulk.history_time(observed)
