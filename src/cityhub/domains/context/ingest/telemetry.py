"""The bulk telemetry write path: many readings for many entities in one transaction, at bulk-insert speed.

Going through ``service.entities`` once per reading would cost a handful of statements per reading. Here a
whole message costs a fixed number of statements, whatever its size (``service.bulk`` does the writes):

1. the message is checked by hand (``parse_message``); each distinct observedAt string is parsed once;
2. the gateway's message id is claimed in ``context_ingest_receipt`` (a redelivery writes nothing);
3. the touched entities are loaded in one SELECT (``FOR UPDATE`` on PostgreSQL, in id order so concurrent
   gateways cannot deadlock; SQLite's write transaction already serialises writers);
4. the readings are applied to the documents in Python: an entity keeps the newest observation of each
   attribute instance (a late, older reading goes to the history only), members it does not give (such as
   ``unitCode``) are kept; each reading's history row is built right away, its instance as JSON text;
5. new entities are inserted with one INSERT (in a SAVEPOINT: when another gateway created one of them
   meanwhile, the insert is undone and steps 3-5 run again, now updating it); changed ones are written back
   with one UPDATE;
6. every reading is appended to the history with PostgreSQL ``COPY`` (one executemany on SQLite);
7. each changed entity is announced to the change listeners (subscriptions), as single writes are.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, delete
from sqlalchemy.orm import Session

from cityhub.domains.context.errors import BadRequestData
from cityhub.domains.context.jsonld import TermMapper
from cityhub.domains.context.models import IngestReceipt
from cityhub.domains.context.schemas import MAX_TELEMETRY_READINGS
from cityhub.domains.context.service.bulk import (
    DocumentWrite,
    HistoryRow,
    NewEntity,
    StoredEntity,
    append_history,
    encode_json,
    entity_versions,
    insert_entities,
    is_timestamp,
    load_entities,
    update_documents,
)
from cityhub.domains.context.service.changes import (
    ChangeKind,
    EntityChange,
    EntitySnapshot,
    inform_listeners,
)
from cityhub.domains.context.service.entities import geo_columns
from cityhub.domains.context.service.tenants import TenantRef
from cityhub.domains.context.settings import ContextSettings
from cityhub.domains.context.store.document import (
    GEO_ATTRIBUTES,
    LOCATION,
    PROPERTY,
    Attributes,
    Instance,
    check_entity_id,
    check_name,
    find_instance,
    instance_value_number,
    parse_attribute,
    parse_datetime,
    timestamp,
)
from cityhub.kernel.db import upsert_into, utcnow
from cityhub.kernel.errors import Conflict, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.jobs import JobContext
from cityhub.kernel.settings import domain_settings

log = logging.getLogger("cityhub.context.ingest")

MAX_MESSAGE_ID = 200
MAX_ID_LENGTH = 512
CREATE_ATTEMPTS = 3  # a new entity created concurrently by another gateway: load and apply again


class Reading(NamedTuple):
    """One reading: attribute values (plain, or objects with ``value``/``unitCode``/...) by expanded name,
    observed at ``observed_at`` (``timestamp`` form, see ``observation_stamp``). ``types`` (expanded) is
    needed only when the entity does not exist yet. A named tuple: a message holds thousands of readings,
    and a tuple is made twice as fast as a frozen dataclass."""

    entity_id: str
    types: tuple[str, ...]
    observed_at: str
    attrs: Mapping[str, Any]


@dataclass(frozen=True)
class TelemetryMessage:
    tenant: str
    message_id: str | None
    readings: list[Reading]


@dataclass(frozen=True)
class IngestResult:
    readings: int
    instances: int
    created: list[str] = field(default_factory=list)
    updated: int = 0
    duplicate: bool = False


class ReadingsRejected(ValidationProblem):
    """Some readings are invalid: nothing of the message is written; ``errors`` says which and why."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(
            _("%(count)s readings are invalid; nothing was stored.", count=len(errors)), errors=errors
        )


class MessageRejected(ValidationProblem):
    """The message itself is not a telemetry message (not an object, no readings, a bad member)."""

    def __init__(self, detail: str) -> None:
        super().__init__(_("The telemetry message is invalid: %(detail)s", detail=detail))


# -- reading a message ---------------------------------------------------------------------------------------


def parse_message(payload: Any, mapper: TermMapper, received_at: datetime) -> TelemetryMessage:
    """Check a decoded telemetry message by hand (a model per reading costs more than the rest of the
    write) and expand its names with ``mapper``. Readings without ``observedAt`` get ``received_at``."""
    if not isinstance(payload, dict):
        raise MessageRejected("the body must be a JSON object")
    tenant = payload.get("tenant", "")
    if not isinstance(tenant, str):
        raise MessageRejected("tenant must be a string")
    message_id = payload.get("messageId")
    if message_id is not None and not (isinstance(message_id, str) and 0 < len(message_id) <= MAX_MESSAGE_ID):
        raise MessageRejected(f"messageId must be a string of 1 to {MAX_MESSAGE_ID} characters")
    items = payload.get("readings")
    if not isinstance(items, list) or not 0 < len(items) <= MAX_TELEMETRY_READINGS:
        raise MessageRejected(f"readings must be an array of 1 to {MAX_TELEMETRY_READINGS} readings")
    received = timestamp(received_at)
    readings: list[Reading] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            readings.append(_reading(item, mapper, received))
        except BadRequestData as exc:
            entity = item.get("entity") if isinstance(item, dict) else None
            entity = entity if isinstance(entity, str) else None  # echo ids only, never arbitrary JSON
            errors.append({"reading": index, "entity": entity, "detail": str(exc.detail)})
    if errors:
        raise ReadingsRejected(errors)
    return TelemetryMessage(tenant, message_id, readings)


def _reading(item: Any, mapper: TermMapper, received: str) -> Reading:
    if not isinstance(item, dict):
        raise BadRequestData("a reading must be a JSON object")
    entity_id = item.get("entity")
    if not isinstance(entity_id, str) or not entity_id:
        raise BadRequestData("a reading needs its entity id in 'entity'")
    entity_type = item.get("type")
    if entity_type is not None and not (
        isinstance(entity_type, str) and 0 < len(entity_type) <= MAX_ID_LENGTH
    ):
        raise BadRequestData("type must be an entity type name")
    observed = item.get("observedAt")
    attrs = item.get("attrs")
    if not isinstance(attrs, dict) or not attrs:
        raise BadRequestData("a reading needs at least one attribute in 'attrs'")
    expand, expand_attribute = mapper.expand_term, mapper.expand_attribute
    return Reading(
        entity_id,
        (expand(entity_type),) if entity_type else (),
        received if observed is None else observation_stamp(observed),
        {  # plain values and plain Property objects have no names to expand
            expand(name): value
            if not isinstance(value, dict | list) or _is_plain_property(value)
            else expand_attribute(value)
            for name, value in attrs.items()
        },
    )


def observation_stamp(value: Any) -> str:
    """An observedAt in ``timestamp`` form (``2026-01-01T00:00:00.000Z``), or BadRequestData."""
    if not isinstance(value, str):
        raise BadRequestData("observedAt must be an ISO 8601 date-time string")
    return _stamp_of(value)


@lru_cache(maxsize=16_384)
def _stamp_of(value: str) -> str:
    """Cached: the readings of a message often share times; ``timestamp`` forms are only checked. The plain
    ``isoformat()`` is cut to milliseconds by hand: with ``timespec`` it costs three times as much, and a
    message can hold 50,000 distinct times."""
    parsed = parse_datetime(value, "observedAt")  # in UTC: the text ends in +00:00
    if is_timestamp(value):
        return value
    text = parsed.isoformat()  # the fraction, when there is one, has six digits
    return (text[:23] if parsed.microsecond else text[:19] + ".000") + "Z"


# -- storing -------------------------------------------------------------------------------------------------


def ingest(
    session: Session,
    tenant: TenantRef,
    readings: Sequence[Reading],
    *,
    gateway: str | None = None,
    message_id: str | None = None,
    planned: Planned | None = None,
) -> IngestResult:
    """Store ``readings`` in the session's transaction; a message id already seen from this gateway makes
    it a duplicate that writes nothing. ``planned`` (from ``plan``, for the same tenant and readings) is used
    when none of its entities changed since it was read; otherwise the readings are applied again here."""
    if message_id is not None and gateway is not None and not claim_message(session, gateway, message_id):
        return IngestResult(len(readings), 0, duplicate=True)
    batch = planned.batch if planned is not None and planned.still_current(session) else None
    for _attempt in range(CREATE_ATTEMPTS):
        if batch is None:
            batch = _applied(session, tenant, readings, lock=True)
        if batch.create_entities(session):
            break
        batch = None
    else:
        raise Conflict(_("The entities of this message keep being created concurrently; send it again."))
    batch.write(session)
    for change in batch.changes():
        inform_listeners(session, change)
    created = batch.created_ids
    return IngestResult(len(readings), len(batch.history), created, len(batch.plans) - len(created))


@dataclass(frozen=True)
class Planned:
    """Readings applied ahead of the write transaction to the entities as a read saw them (see ``plan``)."""

    batch: _Batch
    versions: dict[str, tuple[int, datetime]]

    def still_current(self, session: Session) -> bool:
        """Whether the entities are still as read: the same ones exist (a created one would be created
        twice), none modified since (``modifiedAt`` changes with every write) or replaced (a new pk). Locks
        them on PostgreSQL, as the write path's own load does."""
        tenant = self.batch.tenant
        return entity_versions(session, tenant, self.batch.plans.keys()) == self.versions


def plan(session: Session, tenant: TenantRef, readings: Sequence[Reading]) -> Planned:
    """Apply ``readings`` to their entities as ``session`` (a read, no write lock) sees them, so that the
    write transaction that follows (``ingest(..., planned=...)``) holds the database only for the writes —
    what SQLite, with one writer at a time, needs. Refused readings raise ``ReadingsRejected``, as
    ``ingest`` does."""
    batch = _applied(session, tenant, readings, lock=False)
    return Planned(
        batch, {entity_id: (entity.pk, entity.modified_at) for entity_id, entity in batch.stored.items()}
    )


def _applied(session: Session, tenant: TenantRef, readings: Sequence[Reading], lock: bool) -> _Batch:
    """The readings applied to their entities as loaded now (locked unless ``lock`` is False)."""
    stored = load_entities(session, tenant, {reading.entity_id for reading in readings}, lock=lock)
    batch = _Batch(tenant, utcnow(), stored)
    batch.apply_all(readings)
    return batch


def claim_message(session: Session, gateway: str, message_id: str) -> bool:
    """Record the message as received; False when this gateway sent it before (a redelivery)."""
    statement = (
        upsert_into(session, IngestReceipt)
        .values(gateway=gateway[:200], message_id=message_id[:200], received_at=utcnow())
        .on_conflict_do_nothing(index_elements=["gateway", "message_id"])
        .returning(IngestReceipt.message_id)
    )
    return session.execute(statement).first() is not None


def forget_receipts(session: Session, before: datetime) -> int:
    """Delete the receipts of messages received before ``before``; how many."""
    statement = delete(IngestReceipt).where(IngestReceipt.received_at < before)
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def prune(ctx: JobContext) -> None:
    """Periodic job ``context.ingest.prune_receipts``: receipts are kept ``ingest_receipt_days``."""
    days = domain_settings(ContextSettings).ingest_receipt_days
    forgotten = forget_receipts(ctx.session, utcnow() - timedelta(days=days))
    log.info("forgot %s telemetry message receipts older than %s days", forgotten, days)


# -- applying readings ---------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """One entity's new document and what was written to it."""

    entity_id: str
    stored: StoredEntity | None
    types: list[str]
    document: Attributes
    written: dict[str, list[Instance]] = field(default_factory=dict)

    def before(self) -> EntitySnapshot | None:
        stored = self.stored
        if stored is None:
            return None
        return EntitySnapshot(
            self.entity_id,
            stored.types,
            stored.scopes,
            stored.attrs,
            stored.created_stamp,
            stored.modified_stamp,
        )

    def geo(self) -> dict[str, Any]:
        if self.stored is not None and LOCATION not in self.written:
            return self.stored.geo
        return geo_columns(self.document)


class _Batch:
    def __init__(self, tenant: TenantRef, now: datetime, stored: dict[str, StoredEntity]) -> None:
        self.tenant = tenant
        self.now = now
        self.stamp = timestamp(now)
        self.stored = stored
        self.plans: dict[str, _Plan] = {}
        self.history: list[HistoryRow] = []
        self._checked_names: set[str] = set()

    @property
    def created_ids(self) -> list[str]:
        return [plan.entity_id for plan in self.plans.values() if plan.stored is None]

    def apply_all(self, readings: Sequence[Reading]) -> None:
        errors: list[dict[str, Any]] = []
        for index, reading in enumerate(readings):
            try:
                self.apply(reading)
            except BadRequestData as exc:
                errors.append({"reading": index, "entity": reading.entity_id, "detail": str(exc.detail)})
        if errors:
            raise ReadingsRejected(errors)

    def apply(self, reading: Reading) -> None:
        plan = self._plan(reading)
        instances = [
            (name, self._instance(name, value, reading.observed_at)) for name, value in reading.attrs.items()
        ]
        for name, instance in instances:
            self._put(plan, name, instance)

    def _plan(self, reading: Reading) -> _Plan:
        plan = self.plans.get(reading.entity_id)
        if plan is None:
            check_entity_id(reading.entity_id)
            stored = self.stored.get(reading.entity_id)
            if stored is None and not reading.types:
                raise BadRequestData(f"entity {reading.entity_id} does not exist: give its type to create it")
            types = stored.types if stored is not None else list(reading.types)
            document = dict(stored.attrs) if stored is not None else {}
            plan = self.plans[reading.entity_id] = _Plan(reading.entity_id, stored, types, document)
        return plan

    def _instance(self, name: str, value: Any, observed: str) -> Instance:
        if name not in self._checked_names:
            check_name(name)
            self._checked_names.add(name)
        if name not in GEO_ATTRIBUTES:
            if _is_number(value):
                return {"type": PROPERTY, "value": value, "observedAt": observed}
            if _is_plain_property(value):
                return _plain_property(name, value, observed)
        instances = parse_attribute(name, value)
        if len(instances) != 1:
            raise BadRequestData(f"a reading gives one instance of {name}, not {len(instances)}")
        instance = instances[0]
        given = instance.get("observedAt")
        instance["observedAt"] = observed if given is None else observation_stamp(given)
        return instance

    def _put(self, plan: _Plan, name: str, instance: Instance) -> None:
        """Merge into the current instance (its other members stay); only the newest observation is kept.

        Runs once per reading and attribute, so each dict is built once and the lists the document shares
        with the stored one are copied rather than changed."""
        document = plan.document
        current_list = document.get(name)
        index = find_instance(current_list, instance.get("datasetId")) if current_list else None
        if index is None:
            kept = instance
            merged = {**instance, "createdAt": self.stamp, "modifiedAt": self.stamp}
            document[name] = [*current_list, merged] if current_list else [merged]
        else:
            assert current_list is not None
            current = current_list[index]
            if current.get("type", PROPERTY) != instance["type"]:
                raise BadRequestData(f"attribute {name} is a {current.get('type')}, not a {instance['type']}")
            kept = {**current, **instance}
            merged = {**kept, "modifiedAt": self.stamp}
            kept.pop("createdAt", None)
            kept.pop("modifiedAt", None)
            if _is_newer(instance, current):
                replaced = current_list.copy()
                replaced[index] = merged
                document[name] = replaced
        written = plan.written.get(name)
        if written is None:
            plan.written[name] = [merged]
        else:
            written.append(merged)
        self.history.append(
            HistoryRow(
                plan.entity_id,
                name,
                kept.get("datasetId"),
                kept["type"],
                kept["observedAt"],
                instance_value_number(kept),
                encode_json(kept),
            )
        )

    # -- writing -------------------------------------------------------------------------------------------

    def create_entities(self, session: Session) -> bool:
        """Insert the new entities; False (and nothing written) when another transaction created one of
        them since they were loaded."""
        new = [
            NewEntity(plan.entity_id, plan.types, None, plan.document, plan.geo())
            for plan in self.plans.values()
            if plan.stored is None
        ]
        if not new:
            return True
        with session.begin_nested() as savepoint:
            if len(insert_entities(session, self.tenant, new, self.now)) == len(new):
                return True
            savepoint.rollback()
        return False

    def write(self, session: Session) -> None:
        """Write the changed documents and the history (the new entities are already inserted)."""
        writes = [
            DocumentWrite(plan.stored.pk, plan.document, plan.geo(), plan.stored.scopes, plan.types)
            for plan in self.plans.values()
            if plan.stored is not None
        ]
        update_documents(session, writes, self.now)
        append_history(session, self.tenant.id, self.now, self.history)

    def changes(self) -> list[EntityChange]:
        result = []
        for plan in self.plans.values():
            stored = plan.stored
            created = stored.created_stamp if stored is not None else self.stamp
            scopes = stored.scopes if stored is not None else None
            after = EntitySnapshot(plan.entity_id, plan.types, scopes, plan.document, created, self.stamp)
            kind: ChangeKind = "updated" if stored is not None else "created"
            result.append(
                EntityChange(
                    self.tenant.id, kind, plan.entity_id, plan.before(), after, plan.written, at=self.now
                )
            )
        return result


_PLAIN_MEMBERS = frozenset({"type", "value", "unitCode", "observedAt"})


def _is_number(value: Any) -> bool:
    """A JSON number (not a bool); NaN and infinities (which JSON cannot carry) are refused."""
    kind = type(value)
    if kind is int:
        return True
    if kind is float:
        if not math.isfinite(value):
            raise BadRequestData("a reading has a non-finite number")
        return True
    return False


def _is_plain_property(value: Any) -> bool:
    if (
        type(value) is not dict
        or not value.keys() <= _PLAIN_MEMBERS
        or value.get("type", PROPERTY) != PROPERTY
    ):
        return False
    member = value.get("value")
    return member is not None and (_is_number(member) or type(member) in (str, bool))


def _plain_property(name: str, value: dict[str, Any], observed: str) -> Instance:
    """``{"value": <number, text or bool>, "unitCode"?, "observedAt"?, "type"?: "Property"}``: the commonest
    reading, built without the general attribute parser (which gives the same instance for it)."""
    instance: Instance = {"type": PROPERTY, "value": value["value"]}
    unit = value.get("unitCode")
    if unit is not None:
        if not isinstance(unit, str) or not unit:
            raise BadRequestData(f"unitCode of {name} must be a string")
        instance["unitCode"] = unit
    given = value.get("observedAt")
    instance["observedAt"] = observed if given is None else observation_stamp(given)
    return instance


def _is_newer(instance: Instance, current: Instance) -> bool:
    previous = current.get("observedAt")
    if previous is None:
        return True
    observed = instance["observedAt"]
    if isinstance(previous, str) and is_timestamp(previous):
        return bool(observed >= previous)  # both in ``timestamp`` form: text order is time order
    try:
        return parse_datetime(observed, "observedAt") >= parse_datetime(previous, "observedAt")
    except BadRequestData:  # a stored observedAt that does not parse: the reading wins
        return True
