"""What one entity change was, and who hears of it inside the change's transaction.

Every write of the store ends in ``announce``: the temporal history rows are appended, and each registered
listener (subscriptions queue their notifications here) runs in the same transaction, so a change and its
consequences commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert
from sqlalchemy.orm import Session

from cityhub.domains.context.models import AttributeInstance
from cityhub.domains.context.store.document import (
    Attributes,
    Instance,
    instance_value_number,
    parse_datetime,
)

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
    """The history of every change in one insert, then the listeners, change by change."""
    rows = [row for change in changes for row in _history_rows(change)]
    if rows:
        session.execute(insert(AttributeInstance), rows)
    for change in changes:
        inform_listeners(session, change)


def inform_listeners(session: Session, change: EntityChange) -> None:
    """Run the listeners only: for bulk writers that append the history themselves (``ingest``)."""
    for listener in _listeners:
        listener(session, change)


def record_history(session: Session, change: EntityChange) -> None:
    """Append every written and deleted instance to the temporal history (one executemany)."""
    rows = _history_rows(change)
    if rows:
        session.execute(insert(AttributeInstance), rows)


def _history_rows(change: EntityChange) -> list[dict[str, Any]]:
    assert change.at is not None
    rows: list[dict[str, Any]] = []
    for name, instances in change.written.items():
        rows.extend(_history_row(change, name, instance, deleted=False) for instance in instances)
    for name, instances in change.deleted.items():
        rows.extend(_history_row(change, name, instance, deleted=True) for instance in instances)
    return rows


_SYSTEM = ("createdAt", "modifiedAt")


def _history_row(change: EntityChange, name: str, instance: Instance, *, deleted: bool) -> dict[str, Any]:
    at = change.at
    assert at is not None
    observed = instance.get("observedAt")
    return {
        "tenant_id": change.tenant_id,
        "entity_id": change.entity_id,
        "attr_iri": name,
        "dataset_id": instance.get("datasetId"),
        "attr_type": instance.get("type", "Property"),
        "observed_at": at if deleted or observed is None else parse_datetime(observed, "observedAt"),
        "created_at": at,
        "value_num": None if deleted else instance_value_number(instance),
        "instance": None if deleted else {k: v for k, v in instance.items() if k not in _SYSTEM},
        "deleted": deleted,
    }
