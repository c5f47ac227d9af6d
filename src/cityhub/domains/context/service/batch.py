"""Batch entity operations (GS CIM 009 clauses 5.6.7–5.6.10 and 5.6.20): create, upsert, update, delete and
merge many entities in one request.

Each entity succeeds or fails on its own. Create, upsert and update take the bulk path: every entity is
validated first (a failing one is reported and skipped), the existing ones are loaded and locked in one
SELECT, the new documents are computed with the same document helpers the single-entity operations use,
and the batch is written set-at-a-time (``service.bulk``): one INSERT, one UPDATE, one history COPY, then
each change is announced to the listeners — history rows, answers and notifications are those of the
single-entity operations. An entity given twice in one batch, and a new entity another transaction created
meanwhile (the INSERT skips it), are then written one by one through ``service.entities``, each inside a
SAVEPOINT so that a failing one rolls back only itself. Merge and delete always go one by one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.orm import Session

from cityhub.domains.context.errors import AlreadyExists, BadRequestData, NgsiError, ResourceNotFound
from cityhub.domains.context.service import entities as store
from cityhub.domains.context.service.bulk import (
    DocumentWrite,
    HistoryRow,
    NewEntity,
    StoredEntity,
    append_history,
    deleted_row,
    history_time,
    insert_entities,
    load_entities,
    replace_types,
    update_documents,
    written_row,
)
from cityhub.domains.context.service.changes import EntityChange, EntitySnapshot, inform_listeners
from cityhub.domains.context.service.tenants import TenantRef
from cityhub.domains.context.store.document import (
    LOCATION,
    AttributeChanges,
    Attributes,
    EntityInput,
    check_entity_id,
    parse_attributes,
    parse_entity,
    put_instances,
    stamped,
    timestamp,
)
from cityhub.kernel.db import utcnow

MAX_BATCH_SIZE = 10_000


@dataclass(frozen=True)
class BatchItem:
    """One entity of a batch: its id as given (for the report) and its expanded body, or why it has none."""

    entity_id: str
    document: Mapping[str, Any] | None = None
    problem: NgsiError | None = None


@dataclass(frozen=True)
class BatchFailure:
    entity_id: str
    problem: NgsiError


@dataclass
class BatchOutcome:
    """Which entities succeeded (``created`` lists those an upsert created), which failed and why."""

    succeeded: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    failed: list[BatchFailure] = field(default_factory=list)


# An operation on one entity; True when it created the entity.
Operation = Callable[[Mapping[str, Any]], bool]
# One entity's result: (created, problem); None while it waits for the one-by-one path.
_Result = tuple[bool, NgsiError | None]


def _run(session: Session, items: Iterable[BatchItem], operation: Operation) -> BatchOutcome:
    outcome = BatchOutcome()
    for item in items:
        _record(outcome, item.entity_id, _run_one(session, item, operation))
    return outcome


def _run_one(session: Session, item: BatchItem, operation: Operation) -> _Result:
    try:
        if item.problem is not None:
            raise item.problem
        assert item.document is not None
        with session.begin_nested():
            return operation(item.document), None
    except NgsiError as problem:
        return False, problem


def _record(outcome: BatchOutcome, entity_id: str, result: _Result) -> None:
    created, problem = result
    if problem is not None:
        outcome.failed.append(BatchFailure(entity_id, problem))
        return
    outcome.succeeded.append(entity_id)
    if created:
        outcome.created.append(entity_id)


def create_entities(session: Session, tenant: TenantRef, items: Iterable[BatchItem]) -> BatchOutcome:
    """Clause 5.6.7: every entity is new; an existing one fails with AlreadyExists."""

    def create(document: Mapping[str, Any]) -> bool:
        store.create_entity(session, tenant, parse_entity(document))
        return True

    rule = _Rule(parse_entity, create=True, existing="refuse")
    return _BulkWrite(session, tenant, rule).run(list(items), create)


def upsert_entities(
    session: Session, tenant: TenantRef, items: Iterable[BatchItem], *, replace: bool
) -> BatchOutcome:
    """Clause 5.6.8: new entities are created; existing ones replaced whole (``replace``) or have the given
    attributes appended, overwriting existing ones (``update``)."""

    def upsert(document: Mapping[str, Any]) -> bool:
        entity = parse_entity(document, require_type=False)
        if store.load(session, tenant, entity.entity_id) is None:
            store.create_entity(session, tenant, entity)
            return True
        if replace:
            store.replace_entity(session, tenant, entity)
        else:
            store.append_attributes(session, tenant, entity.entity_id, entity.attrs, overwrite=True)
        return False

    rule = _Rule(_entity_without_type, create=True, existing="replace" if replace else "append")
    return _BulkWrite(session, tenant, rule).run(list(items), upsert)


def update_entities(
    session: Session, tenant: TenantRef, items: Iterable[BatchItem], *, overwrite: bool
) -> BatchOutcome:
    """Clause 5.6.9: attributes appended to existing entities (``noOverwrite`` keeps existing ones)."""

    def update(document: Mapping[str, Any]) -> bool:
        entity_id = check_entity_id(document.get("id", document.get("@id")))
        store.append_attributes(session, tenant, entity_id, parse_attributes(document), overwrite=overwrite)
        return False

    rule = _Rule(_fragment, create=False, existing="append", overwrite=overwrite)
    return _BulkWrite(session, tenant, rule).run(list(items), update)


def _entity_without_type(document: Mapping[str, Any]) -> EntityInput:
    return parse_entity(document, require_type=False)


def _fragment(document: Mapping[str, Any]) -> EntityInput:
    entity_id = check_entity_id(document.get("id", document.get("@id")))
    return EntityInput(entity_id, [], None, parse_attributes(document))


# -- the bulk path -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """What a batch operation does with one validated entity: whether a missing one is created, and
    whether an existing one is refused, replaced or has the attributes appended (``overwrite``)."""

    parse: Callable[[Mapping[str, Any]], EntityInput]
    create: bool
    existing: Literal["refuse", "replace", "append"]
    overwrite: bool = True


@dataclass
class _Planned:
    index: int
    entity: EntityInput
    stored: StoredEntity | None
    attrs: Attributes
    changes: AttributeChanges
    types: list[str]
    scopes: list[str] | None
    replaced: bool = False

    @property
    def writes(self) -> bool:
        """Whether the entity is written: an append that changed nothing leaves it alone (as ``_apply``)."""
        return self.stored is None or self.replaced or bool(self.changes)


class _BulkWrite:
    def __init__(self, session: Session, tenant: TenantRef, rule: _Rule) -> None:
        self.session = session
        self.tenant = tenant
        self.rule = rule
        self.now: datetime = utcnow()
        self.stamp = timestamp(self.now)

    def run(self, items: list[BatchItem], operation: Operation) -> BatchOutcome:
        results: dict[int, _Result] = {}
        parsed: dict[int, EntityInput] = {}
        for index, item in enumerate(items):
            try:
                if item.problem is not None:
                    raise item.problem
                assert item.document is not None
                parsed[index] = self.rule.parse(item.document)
            except NgsiError as problem:
                results[index] = (False, problem)
        repeated = Counter(entity.entity_id for entity in parsed.values())
        single = {index for index, entity in parsed.items() if repeated[entity.entity_id] > 1}
        bulk = {index: entity for index, entity in parsed.items() if index not in single}
        results.update(self._write(bulk, single))
        outcome = BatchOutcome()
        for index, item in enumerate(items):
            result = results.get(index)
            _record(outcome, item.entity_id, result or _run_one(self.session, item, operation))
        return outcome

    def _write(self, entities: dict[int, EntityInput], single: set[int]) -> dict[int, _Result]:
        """Write ``entities`` in bulk; their results, except those left for the one-by-one path (added to
        ``single``)."""
        stored = load_entities(self.session, self.tenant, (entity.entity_id for entity in entities.values()))
        results: dict[int, _Result] = {}
        plans: list[_Planned] = []
        for index, entity in entities.items():
            try:
                plans.append(self._plan(index, entity, stored.get(entity.entity_id)))
            except NgsiError as problem:
                results[index] = (False, problem)
        new = [plan for plan in plans if plan.stored is None]
        inserted = insert_entities(
            self.session,
            self.tenant,
            [
                NewEntity(p.entity.entity_id, p.types, p.scopes, p.attrs, store.geo_columns(p.attrs))
                for p in new
            ],
            self.now,
        )
        created_meanwhile = {plan.index for plan in new if plan.entity.entity_id not in inserted}
        single.update(created_meanwhile)
        written = [plan for plan in plans if plan.index not in created_meanwhile]
        self._update([plan for plan in written if plan.stored is not None and plan.writes])
        append_history(
            self.session, self.tenant.id, self.now, [row for plan in written for row in _history(plan)]
        )
        for plan in written:
            if plan.writes:
                inform_listeners(self.session, self._change(plan))
            results[plan.index] = (plan.stored is None, None)
        return results

    def _plan(self, index: int, entity: EntityInput, stored: StoredEntity | None) -> _Planned:
        """The entity's new document, as the single-entity operation would write it, or its NgsiError."""
        entity_id = entity.entity_id
        if stored is None:
            if not self.rule.create:
                raise ResourceNotFound(f"entity {entity_id} does not exist")
            if not entity.types:
                raise BadRequestData(f"entity {entity_id} has no type")
            attrs = self._stamped(entity.attrs)
            return _Planned(index, entity, None, attrs, AttributeChanges(attrs), entity.types, entity.scopes)
        if self.rule.existing == "refuse":
            raise AlreadyExists(f"entity {entity_id} already exists")
        if self.rule.existing == "replace":
            attrs = self._stamped(entity.attrs)
            deleted = {name: instances for name, instances in stored.attrs.items() if name not in attrs}
            types = entity.types or stored.types
            changes = AttributeChanges(attrs, deleted)
            return _Planned(index, entity, stored, attrs, changes, types, entity.scopes, replaced=True)
        document = dict(stored.attrs)
        changes = put_instances(document, entity.attrs, self.stamp, overwrite=self.rule.overwrite)
        return _Planned(index, entity, stored, document, changes, stored.types, stored.scopes)

    def _stamped(self, attrs: Attributes) -> Attributes:
        return {
            name: [stamped(instance, self.stamp) for instance in instances]
            for name, instances in attrs.items()
        }

    def _update(self, plans: list[_Planned]) -> None:
        writes = []
        for plan in plans:
            assert plan.stored is not None
            writes.append(DocumentWrite(plan.stored.pk, plan.attrs, _geo(plan), plan.scopes, plan.types))
        update_documents(self.session, writes, self.now)
        retyped = {
            plan.stored.pk: plan.types
            for plan in plans
            if plan.stored is not None and plan.types != plan.stored.types
        }
        replace_types(self.session, self.tenant, retyped)

    def _change(self, plan: _Planned) -> EntityChange:
        entity_id, stored = plan.entity.entity_id, plan.stored
        created = stored.created_stamp if stored is not None else self.stamp
        after = EntitySnapshot(entity_id, plan.types, plan.scopes, plan.attrs, created, self.stamp)
        if stored is None:
            return EntityChange(
                self.tenant.id, "created", entity_id, None, after, written=plan.attrs, at=self.now
            )
        before = EntitySnapshot(
            entity_id, stored.types, stored.scopes, stored.attrs, stored.created_stamp, stored.modified_stamp
        )
        written, deleted = plan.changes.written, plan.changes.deleted
        return EntityChange(
            self.tenant.id, "updated", entity_id, before, after, written, deleted, at=self.now
        )


def _geo(plan: _Planned) -> dict[str, Any]:
    """As ``entities._save``: recomputed when the location was written, deleted or existed before."""
    stored = plan.stored
    assert stored is not None
    changes = plan.changes
    if changes.written.get(LOCATION) is not None or LOCATION in changes.deleted or LOCATION in stored.attrs:
        return store.geo_columns(plan.attrs)
    return stored.geo


def _history(plan: _Planned) -> list[HistoryRow]:
    """The rows ``changes.record_history`` appends for the plan's change: written, then deleted instances."""
    entity_id = plan.entity.entity_id
    rows = []
    for name, instances in plan.changes.written.items():
        for instance in instances:
            observed = instance.get("observedAt")
            rows.append(
                written_row(entity_id, name, instance, None if observed is None else history_time(observed))
            )
    for name, instances in plan.changes.deleted.items():
        rows.extend(deleted_row(entity_id, name, instance) for instance in instances)
    return rows


def merge_entities(session: Session, tenant: TenantRef, items: Iterable[BatchItem]) -> BatchOutcome:
    """Clause 5.6.20: each existing entity merged with its fragment (null values delete attributes)."""

    def merge(document: Mapping[str, Any]) -> bool:
        entity_id = check_entity_id(document.get("id", document.get("@id")))
        store.merge_entity(session, tenant, entity_id, document)
        return False

    return _run(session, items, merge)


def delete_entities(session: Session, tenant: TenantRef, items: Iterable[BatchItem]) -> BatchOutcome:
    """Clause 5.6.10: the listed entities are deleted; unknown ones fail with ResourceNotFound."""

    def remove(document: Mapping[str, Any]) -> bool:
        store.delete_entity(session, tenant, check_entity_id(document.get("id")))
        return False

    return _run(session, items, remove)
