"""Temporal writes (clauses 5.6.11–5.6.16): add, change and delete history instances.

They write the history only: the current entity (``/entities``) is neither created nor changed, and no
subscription is notified. Instances added here are recorded like those of ordinary changes
(``changes.record_history``): ``observedAt`` or the write time, the numeric value, the instance without
system members. Changing an instance keeps its creation time and records ``modifiedAt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from cityhub.domains.context.errors import BadRequestData, ResourceNotFound
from cityhub.domains.context.models import Entity
from cityhub.domains.context.service import changes
from cityhub.domains.context.service.changes import EntityChange
from cityhub.domains.context.service.temporal.history import (
    TYPES_MARKER,
    History,
    any_history,
    entity_types,
    marked_types,
    row_id_of,
    series,
)
from cityhub.domains.context.service.tenants import TenantRef
from cityhub.domains.context.store.document import (
    PROPERTY,
    RESERVED_NAMES,
    Attributes,
    Instance,
    check_entity_id,
    check_name,
    fragment_of,
    instance_value_number,
    merge_instance,
    parse_attribute,
    parse_datetime,
    parse_types,
    timestamp,
)
from cityhub.kernel.db import utcnow


def parse_temporal_attributes(expanded: Mapping[str, Any]) -> Attributes:
    """Attributes of a temporal fragment: each is one instance or a list of instances (any datasetIds)."""
    attrs: Attributes = {}
    for name, value in expanded.items():
        if name in RESERVED_NAMES:
            continue
        check_name(name)
        items = (
            value
            if isinstance(value, list) and value and all(isinstance(i, Mapping) for i in value)
            else [value]
        )
        attrs[name] = [instance for item in items for instance in parse_attribute(name, item)]
    return attrs


def upsert_temporal_entity(session: Session, tenant: TenantRef, expanded: Mapping[str, Any]) -> bool:
    """POST /temporal/entities: the instances are added; True when the entity had no history before."""
    entity_id = check_entity_id(expanded.get("id", expanded.get("@id")))
    raw_types = expanded.get("type", expanded.get("@type"))
    if raw_types is None:
        raise BadRequestData(f"temporal entity {entity_id} has no type")
    types = parse_types(raw_types)
    attrs = parse_temporal_attributes(expanded)
    created = not any_history(session, tenant.id, entity_id)
    if not _is_current(session, tenant, entity_id) and marked_types(session, tenant.id, entity_id) != types:
        mark_types(session, tenant.id, entity_id, types)
    _record(session, tenant, entity_id, attrs)
    return created


def append_temporal_attributes(
    session: Session, tenant: TenantRef, entity_id: str, expanded: Mapping[str, Any]
) -> None:
    """POST /temporal/entities/{id}/attrs: instances appended to an entity with history."""
    _require(session, tenant, entity_id)
    _record(session, tenant, entity_id, parse_temporal_attributes(expanded))


def delete_temporal_entity(session: Session, tenant: TenantRef, entity_id: str) -> None:
    """DELETE /temporal/entities/{id}: the whole history (the current entity, if any, stays)."""
    removed = session.execute(
        delete(History).where(History.tenant_id == tenant.id, History.entity_id == entity_id)
    )
    if not removed.rowcount:  # type: ignore[attr-defined]
        raise ResourceNotFound(f"entity {entity_id} has no temporal history")


def delete_temporal_attribute(
    session: Session,
    tenant: TenantRef,
    entity_id: str,
    attr_iri: str,
    *,
    dataset_id: str | None = None,
    delete_all: bool = False,
) -> None:
    """DELETE /temporal/entities/{id}/attrs/{attr}: the default instance's history, a datasetId's, or all."""
    _require(session, tenant, entity_id)
    statement = delete(History).where(*series(tenant.id, entity_id, attr_iri))
    if not delete_all:
        statement = statement.where(
            History.dataset_id == dataset_id if dataset_id else History.dataset_id.is_(None)
        )
    if not session.execute(statement).rowcount:  # type: ignore[attr-defined]
        raise ResourceNotFound(f"entity {entity_id} has no history of attribute {attr_iri}")


def modify_instance(
    session: Session,
    tenant: TenantRef,
    entity_id: str,
    attr_iri: str,
    instance_id: str,
    fragment: Mapping[str, Any],
) -> None:
    """PATCH /temporal/entities/{id}/attrs/{attr}/{instanceId}: the given members replace the old ones."""
    row = _instance_row(session, tenant, entity_id, attr_iri, instance_id)
    if row.deleted or row.instance is None:
        raise BadRequestData("a deletion record cannot be modified")
    if not isinstance(fragment, Mapping):
        raise BadRequestData("the body must be an attribute instance (a JSON object)")
    now = utcnow()
    current: Instance = {"type": row.attr_type, **row.instance}
    merged = merge_instance(current, fragment_of(fragment), attr_iri, timestamp(now))
    merged.pop("createdAt", None)
    observed = merged.get("observedAt")
    row.instance = merged
    row.observed_at = parse_datetime(observed, "observedAt") if observed else row.observed_at
    row.value_num = instance_value_number(merged)


def delete_instance(
    session: Session, tenant: TenantRef, entity_id: str, attr_iri: str, instance_id: str
) -> None:
    """DELETE /temporal/entities/{id}/attrs/{attr}/{instanceId}."""
    session.delete(_instance_row(session, tenant, entity_id, attr_iri, instance_id))


def mark_types(session: Session, tenant_id: int, entity_id: str, types: list[str]) -> None:
    """Keep the entity's types in its history (see ``history``: the type marker)."""
    now = utcnow()
    session.execute(
        insert(History),
        [
            {
                "tenant_id": tenant_id,
                "entity_id": entity_id,
                "attr_iri": TYPES_MARKER,
                "dataset_id": None,
                "attr_type": PROPERTY,
                "observed_at": now,
                "created_at": now,
                "value_num": None,
                "instance": {"type": PROPERTY, "value": types},
                "deleted": False,
            }
        ],
    )


@changes.listen
def remember_types_of_deleted(session: Session, change: EntityChange) -> None:
    """A deleted entity's history keeps its types (they are gone with the entity row)."""
    if change.kind == "deleted" and change.before is not None:
        mark_types(session, change.tenant_id, change.entity_id, change.before.types)


def _record(session: Session, tenant: TenantRef, entity_id: str, attrs: Attributes) -> None:
    if not attrs:
        return
    change = EntityChange(tenant.id, "updated", entity_id, None, None, written=attrs, at=utcnow())
    changes.record_history(session, change)


def _require(session: Session, tenant: TenantRef, entity_id: str) -> None:
    check_entity_id(entity_id)
    if entity_types(session, tenant.id, entity_id) is None and not any_history(session, tenant.id, entity_id):
        raise ResourceNotFound(f"entity {entity_id} has no temporal history")


def _is_current(session: Session, tenant: TenantRef, entity_id: str) -> bool:
    statement = select(Entity.pk).where(Entity.tenant_id == tenant.id, Entity.entity_id == entity_id)
    return session.scalar(statement) is not None


def _instance_row(
    session: Session, tenant: TenantRef, entity_id: str, attr_iri: str, instance_id: str
) -> History:
    row = session.get(History, row_id_of(instance_id))
    if row is None or row.tenant_id != tenant.id or row.entity_id != entity_id or row.attr_iri != attr_iri:
        raise ResourceNotFound(f"entity {entity_id} has no instance {instance_id} of attribute {attr_iri}")
    return row
