"""Entity operations of the NGSI-LD API (clauses 5.6 and 5.7): create, replace, merge, attribute append,
update, partial update, replace and delete, entity delete and retrieve.

Inputs are already expanded and validated (``store.document``); every write locks the entity row, rewrites
its document in one UPDATE and announces the change (history and subscriptions) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cityhub.domains.context.errors import AlreadyExists, BadRequestData, ResourceNotFound
from cityhub.domains.context.models import Entity, EntityType
from cityhub.domains.context.query.geoquery import geometry_bounds
from cityhub.domains.context.service import bulk
from cityhub.domains.context.service.changes import EntityChange, EntitySnapshot, announce, announce_all
from cityhub.domains.context.service.tenants import TenantRef
from cityhub.domains.context.store.document import (
    LOCATION,
    NULL,
    AttributeChanges,
    Attributes,
    EntityInput,
    find_instance,
    fragment_of,
    merge_instance,
    parse_attribute,
    parse_attributes,
    parse_scopes,
    put_instances,
    stamped,
    timestamp,
)
from cityhub.kernel.db import is_postgres, utcnow
from cityhub.kernel.errors import Problem
from cityhub.kernel.geo import cell_for

NEAR_CELL_RESOLUTION = 9  # H3 res 9: cells of ~0.1 km², a 1 km `near` covers about a hundred of them


def snapshot(row: Entity) -> EntitySnapshot:
    return EntitySnapshot(
        row.entity_id,
        list(row.types),
        row.scopes,
        row.attrs,
        timestamp(row.created_at),
        timestamp(row.modified_at),
    )


def load(session: Session, tenant: TenantRef, entity_id: str, *, for_update: bool = False) -> Entity | None:
    statement = select(Entity).where(Entity.tenant_id == tenant.id, Entity.entity_id == entity_id)
    if for_update and is_postgres(session):
        statement = statement.with_for_update()
    return session.scalars(statement).first()


def require_entity(
    session: Session,
    tenant: TenantRef,
    entity_id: str,
    *,
    for_update: bool = False,
    types: list[str] | None = None,
) -> Entity:
    row = load(session, tenant, entity_id, for_update=for_update)
    if row is None or (types and not set(types) & set(row.types)):
        raise ResourceNotFound(f"entity {entity_id} does not exist")
    return row


def geo_columns(attrs: Attributes) -> dict[str, Any]:
    """The query accelerators of a document: bounding box and H3 cell of its default ``location``."""
    columns: dict[str, Any] = dict.fromkeys(
        ("geo_min_lon", "geo_min_lat", "geo_max_lon", "geo_max_lat", "geo_cell")
    )
    instances = attrs.get(LOCATION) or []
    index = find_instance(instances, None)
    instance = instances[index] if index is not None else (instances[0] if instances else None)
    bounds = geometry_bounds(instance["value"]) if instance else None
    if bounds is None:
        return columns
    columns.update(zip(("geo_min_lon", "geo_min_lat", "geo_max_lon", "geo_max_lat"), bounds, strict=True))
    geometry = instance["value"] if instance else {}
    if geometry.get("type") == "Point":
        columns["geo_cell"] = cell_for(bounds[0], bounds[1], NEAR_CELL_RESOLUTION)
    return columns


# -- create / replace / delete ----------------------------------------------------------------------------


def create_entity(session: Session, tenant: TenantRef, entity: EntityInput) -> EntitySnapshot:
    if not entity.types:
        raise BadRequestData(f"entity {entity.entity_id} has no type")
    if load(session, tenant, entity.entity_id) is not None:
        raise AlreadyExists(f"entity {entity.entity_id} already exists")
    now = utcnow()
    stamp = timestamp(now)
    attrs = {
        name: [stamped(instance, stamp) for instance in instances] for name, instances in entity.attrs.items()
    }
    row = Entity(
        tenant_id=tenant.id,
        entity_id=entity.entity_id,
        types=entity.types,
        scopes=entity.scopes,
        attrs=attrs,
        created_at=now,
        modified_at=now,
        **geo_columns(attrs),
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # a concurrent request created it since the check above
        raise AlreadyExists(f"entity {entity.entity_id} already exists") from None
    _write_types(session, tenant, row.pk, entity.types)
    after = snapshot(row)
    announce(
        session, EntityChange(tenant.id, "created", entity.entity_id, None, after, written=attrs, at=now)
    )
    return after


def _write_types(session: Session, tenant: TenantRef, pk: int, types: list[str]) -> None:
    session.execute(
        insert(EntityType), [{"entity_pk": pk, "type_iri": iri, "tenant_id": tenant.id} for iri in types]
    )


def replace_entity(session: Session, tenant: TenantRef, entity: EntityInput) -> EntitySnapshot:
    """PUT /entities/{id}: every attribute replaced (clause 5.6.18); the id and creation time stay."""
    row = require_entity(session, tenant, entity.entity_id, for_update=True)
    before = snapshot(row)
    now = utcnow()
    stamp = timestamp(now)
    attrs = {
        name: [stamped(instance, stamp) for instance in instances] for name, instances in entity.attrs.items()
    }
    deleted = {name: instances for name, instances in row.attrs.items() if name not in attrs}
    if entity.types and entity.types != row.types:
        session.execute(delete(EntityType).where(EntityType.entity_pk == row.pk))
        _write_types(session, tenant, row.pk, entity.types)
        row.types = entity.types
    row.scopes = entity.scopes
    return _save(session, tenant, row, before, attrs, now, AttributeChanges(attrs, deleted))


def delete_entity(
    session: Session, tenant: TenantRef, entity_id: str, types: list[str] | None = None
) -> None:
    row = require_entity(session, tenant, entity_id, for_update=True, types=types)
    before = snapshot(row)
    session.delete(row)
    session.flush()
    announce(
        session,
        EntityChange(tenant.id, "deleted", entity_id, before, None, deleted=dict(row.attrs), at=utcnow()),
    )


# -- attributes ----------------------------------------------------------------------------------------------


def append_attributes(
    session: Session, tenant: TenantRef, entity_id: str, attrs: Attributes, *, overwrite: bool
) -> AttributeChanges:
    """POST /entities/{id}/attrs: add attributes, replacing existing ones (unless noOverwrite)."""
    row = require_entity(session, tenant, entity_id, for_update=True)
    return _apply(session, tenant, row, attrs, overwrite=overwrite, only_existing=False)


def update_attributes(
    session: Session, tenant: TenantRef, entity_id: str, attrs: Attributes
) -> AttributeChanges:
    """PATCH /entities/{id}/attrs (clause 5.6.2): replace existing attributes only; others are refused."""
    row = require_entity(session, tenant, entity_id, for_update=True)
    return _apply(session, tenant, row, attrs, overwrite=True, only_existing=True)


def _apply(
    session: Session,
    tenant: TenantRef,
    row: Entity,
    attrs: Attributes,
    *,
    overwrite: bool,
    only_existing: bool,
) -> AttributeChanges:
    before = snapshot(row)
    now = utcnow()
    document = dict(row.attrs)
    changes = put_instances(document, attrs, timestamp(now), overwrite=overwrite, only_existing=only_existing)
    if changes:
        _save(session, tenant, row, before, document, now, changes)
    return changes


@dataclass(frozen=True)
class AttributePatch:
    """One partial attribute update (clause 5.6.4): merge ``fragment`` into attribute ``name``."""

    tenant: TenantRef
    entity_id: str
    name: str
    fragment: Mapping[str, Any]


def patch_attribute(
    session: Session, tenant: TenantRef, entity_id: str, name: str, fragment: Mapping[str, Any]
) -> None:
    """PATCH /entities/{id}/attrs/{attr} (clause 5.6.4): merge members into one existing instance."""
    refused = patch_attributes(session, [AttributePatch(tenant, entity_id, name, fragment)])[0]
    if refused is not None:
        raise refused


def patch_attributes(session: Session, patches: Sequence[AttributePatch]) -> list[Problem | None]:
    """Many partial attribute updates in one transaction, in order; each one's refusal (or None) in a list.

    Set at a time (``service.bulk``): the entities are locked with one query per tenant, in id order (so
    concurrent writers never deadlock), their documents change in memory, then one statement rewrites them
    and one appends the history. A refused update changes nothing, so the others go on.
    """
    entities = _locked_entities(session, patches)
    now = utcnow()
    stamp = timestamp(now)
    outcomes: list[Problem | None] = []
    changes: list[EntityChange] = []
    changed: dict[tuple[int, str], bulk.StoredEntity] = {}
    for patch in patches:
        key = (patch.tenant.id, patch.entity_id)
        entity = entities.get(key)
        try:
            if entity is None:
                raise ResourceNotFound(f"entity {patch.entity_id} does not exist")
            document, merged = _patched_document(
                entity.entity_id, entity.attrs, patch.name, patch.fragment, stamp
            )
        except Problem as refused:
            outcomes.append(refused)
            continue
        before = _snapshot_of(entity)
        entity.attrs, entity.modified_at = document, now
        if patch.name == LOCATION:
            entity.geo = geo_columns(document)
        changed[key] = entity
        written = {patch.name: [merged]}
        changes.append(
            EntityChange(
                patch.tenant.id, "updated", entity.entity_id, before, _snapshot_of(entity), written, at=now
            )
        )
        outcomes.append(None)
    writes = [bulk.DocumentWrite(e.pk, e.attrs, e.geo, e.scopes, e.types) for e in changed.values()]
    bulk.update_documents(session, writes, now)
    announce_all(session, changes)
    return outcomes


def _locked_entities(
    session: Session, patches: Sequence[AttributePatch]
) -> dict[tuple[int, str], bulk.StoredEntity]:
    tenants: dict[int, TenantRef] = {}
    wanted: dict[int, set[str]] = {}
    for patch in patches:
        tenants[patch.tenant.id] = patch.tenant
        wanted.setdefault(patch.tenant.id, set()).add(patch.entity_id)
    return {
        (tenant_id, entity_id): entity
        for tenant_id, entity_ids in wanted.items()
        for entity_id, entity in bulk.load_entities(session, tenants[tenant_id], entity_ids).items()
    }


def _snapshot_of(entity: bulk.StoredEntity) -> EntitySnapshot:
    return EntitySnapshot(
        entity.entity_id,
        entity.types,
        entity.scopes,
        entity.attrs,
        entity.created_stamp,
        timestamp(entity.modified_at),
    )


def _patched_document(
    entity_id: str, attrs: Attributes, name: str, fragment: Mapping[str, Any], stamp: str
) -> tuple[Attributes, dict[str, Any]]:
    fragment = fragment_of(fragment)
    instances = attrs.get(name)
    dataset_id = fragment.get("datasetId")
    index = find_instance(instances or [], dataset_id)
    if instances is None or index is None:
        raise ResourceNotFound(f"entity {entity_id} has no attribute {name}" + _dataset_suffix(dataset_id))
    merged = merge_instance(instances[index], fragment, name, stamp)
    document = dict(attrs)
    document[name] = [*instances[:index], merged, *instances[index + 1 :]]
    return document, merged


def replace_attribute(session: Session, tenant: TenantRef, entity_id: str, name: str, value: Any) -> None:
    """PUT /entities/{id}/attrs/{attr} (clause 5.6.19): the attribute must exist; it is replaced whole."""
    row = require_entity(session, tenant, entity_id, for_update=True)
    if name not in row.attrs:
        raise ResourceNotFound(f"entity {entity_id} has no attribute {name}")
    _apply(session, tenant, row, {name: parse_attribute(name, value)}, overwrite=True, only_existing=False)


def merge_entity(session: Session, tenant: TenantRef, entity_id: str, fragment: Mapping[str, Any]) -> None:
    """PATCH /entities/{id} (clause 5.6.17): new attributes added, existing merged, null ones deleted."""
    row = require_entity(session, tenant, entity_id, for_update=True)
    before = snapshot(row)
    now = utcnow()
    stamp = timestamp(now)
    document = dict(row.attrs)
    changes = AttributeChanges()
    for name, instances in parse_attributes(fragment, allow_null=True).items():
        if not instances:
            if name in document:
                changes.deleted[name] = document.pop(name)
            continue
        merged = list(document.get(name, []))
        for instance, raw in zip(instances, _raw_instances(fragment[name]), strict=True):
            index = find_instance(merged, instance.get("datasetId"))
            if index is None:
                merged.append(stamped(instance, stamp))
                changes.written.setdefault(name, []).append(merged[-1])
            else:
                merged[index] = merge_instance(merged[index], fragment_of(raw), name, stamp)
                changes.written.setdefault(name, []).append(merged[index])
        document[name] = merged
    scope = fragment.get("scope")
    if scope is not None:
        row.scopes = None if scope == NULL else parse_scopes(scope)
    _save(session, tenant, row, before, document, now, changes)


def _raw_instances(value: Any) -> list[Any]:
    if isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
        return list(value)
    return [value]


def delete_attribute(
    session: Session,
    tenant: TenantRef,
    entity_id: str,
    name: str,
    *,
    dataset_id: str | None = None,
    delete_all: bool = False,
) -> None:
    """DELETE /entities/{id}/attrs/{attr} (clause 5.6.5): the default instance, one datasetId, or all."""
    row = require_entity(session, tenant, entity_id, for_update=True)
    instances = row.attrs.get(name)
    if not instances:
        raise ResourceNotFound(f"entity {entity_id} has no attribute {name}")
    if delete_all:
        removed, kept = list(instances), []
    else:
        index = find_instance(instances, dataset_id)
        if index is None:
            raise ResourceNotFound(
                f"entity {entity_id} has no attribute {name}" + _dataset_suffix(dataset_id)
            )
        removed, kept = [instances[index]], [*instances[:index], *instances[index + 1 :]]
    before = snapshot(row)
    document = dict(row.attrs)
    if kept:
        document[name] = kept
    else:
        document.pop(name)
    _save(session, tenant, row, before, document, utcnow(), AttributeChanges(deleted={name: removed}))


def _dataset_suffix(dataset_id: str | None) -> str:
    return f" with datasetId {dataset_id}" if dataset_id else " (default instance)"


def _set_document(
    row: Entity, before: EntitySnapshot, document: Attributes, now: datetime, names: set[str]
) -> None:
    row.attrs = document
    row.modified_at = now
    if LOCATION in names or (LOCATION in before.attrs and LOCATION not in document):
        for column, value in geo_columns(document).items():
            setattr(row, column, value)


def _save(
    session: Session,
    tenant: TenantRef,
    row: Entity,
    before: EntitySnapshot,
    document: Attributes,
    now: datetime,
    changes: AttributeChanges,
) -> EntitySnapshot:
    _set_document(row, before, document, now, changes.names)
    session.flush()
    after = snapshot(row)
    announce(
        session,
        EntityChange(
            tenant.id, "updated", row.entity_id, before, after, changes.written, changes.deleted, at=now
        ),
    )
    return after
