"""Set-at-a-time writes for the bulk paths (telemetry ingest, batch entity operations).

The single-entity operations cost a few statements per entity; these cost a few statements per batch:

- history rows go in with PostgreSQL ``COPY`` (the text stream is built here, one string, instead of one
  driver call per row) or one SQLite ``executemany`` of ready tuples;
- changed documents are written with one ``UPDATE ... FROM jsonb_to_recordset(...)`` on PostgreSQL (one
  executemany on SQLite);
- new entities with one ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: an entity another transaction
  created meanwhile comes back missing, and the caller decides how to retry it.

The history rows mean exactly what ``changes.record_history`` writes: ``instance`` is the instance without
its system members, ``value_num`` its numeric value, ``observed_at`` its ``observedAt`` (else the change
time); deleted instances have neither instance nor value.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Table, insert, select, text
from sqlalchemy.orm import Session

from cityhub.domains.context.models import AttributeInstance, Entity, EntityType
from cityhub.domains.context.service.tenants import TenantRef
from cityhub.domains.context.store.document import (
    Attributes,
    Instance,
    instance_value_number,
    parse_datetime,
    timestamp,
)
from cityhub.kernel import jsontext
from cityhub.kernel.db import is_postgres, upsert_into

GEO_COLUMNS = ("geo_min_lon", "geo_min_lat", "geo_max_lon", "geo_max_lat", "geo_cell")
HISTORY_COLUMNS = (
    "tenant_id",
    "entity_id",
    "attr_iri",
    "dataset_id",
    "attr_type",
    "observed_at",
    "created_at",
    "value_num",
    "instance",
    "deleted",
)
SYSTEM_MEMBERS = ("createdAt", "modifiedAt")

encode_json = jsontext.dumps
_NULL = "\\N"  # COPY text format
_BACKSLASH, _ESCAPED_BACKSLASH = "\\", "\\\\"
_TIMESTAMP_LENGTH = len("2026-01-01T00:00:00.000Z")


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for one bulk request. Such a request allocates hundreds of
    thousands of small acyclic objects that stay alive until it ends, and every allocation burst makes the
    collector traverse all of them again (measured: a quarter of a telemetry message's Python time).
    Reference counting still frees everything; cycles made meanwhile are collected once it is back on."""
    if not gc.isenabled():  # another request paused it: it turns it back on
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class HistoryRow(NamedTuple):
    """One history row. ``observed_at`` is a ``timestamp()`` string (None: the change time); ``instance``
    the instance's JSON text without system members (None: a deletion). A named tuple: a telemetry message
    makes one per reading and attribute, and a tuple is made twice as fast as a frozen dataclass."""

    entity_id: str
    attr_iri: str
    dataset_id: str | None
    attr_type: str
    observed_at: str | None
    value_num: float | None
    instance: str | None


def written_row(entity_id: str, name: str, instance: Instance, observed_at: str | None) -> HistoryRow:
    """The history row of a written instance; ``observed_at`` its observedAt already in ``timestamp`` form
    (None: the change time)."""
    kept = {key: value for key, value in instance.items() if key not in SYSTEM_MEMBERS}
    return HistoryRow(
        entity_id,
        name,
        instance.get("datasetId"),
        instance.get("type", "Property"),
        observed_at,
        instance_value_number(instance),
        encode_json(kept),
    )


def deleted_row(entity_id: str, name: str, instance: Instance) -> HistoryRow:
    return HistoryRow(
        entity_id, name, instance.get("datasetId"), instance.get("type", "Property"), None, None, None
    )


def append_history(session: Session, tenant_id: int, at: datetime, rows: Sequence[HistoryRow]) -> None:
    """Append history rows written at ``at``: COPY on PostgreSQL, one executemany on SQLite."""
    if not rows:
        return
    raw = session.connection().connection.driver_connection
    assert raw is not None
    table = table_of(AttributeInstance).name
    names = ", ".join(HISTORY_COLUMNS)
    if is_postgres(session):
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            copy.write(_copy_text(tenant_id, at, rows))
        return
    created = _sqlite_created_at(session, at)
    placeholders = ", ".join("?" for _column in HISTORY_COLUMNS)
    raw.executemany(
        f"INSERT INTO {table} ({names}) VALUES ({placeholders})",  # noqa: S608 - fixed names
        [
            (
                tenant_id,
                entity_id,
                attr_iri,
                dataset_id,
                attr_type,
                created if observed_at is None else _sqlite_time(observed_at),
                created,
                value_num,
                instance,
                instance is None,
            )
            for entity_id, attr_iri, dataset_id, attr_type, observed_at, value_num, instance in rows
        ],
    )


def _sqlite_created_at(session: Session, at: datetime) -> Any:
    """``at`` as the SQLite driver stores it in ``created_at``: the column's bind processor gives an aware
    datetime, which sqlite3's default adapter turns into ``isoformat(" ")`` text. Adapted here once per
    message rather than by the driver once per row (measured: 2 ms of every 1,000 rows)."""
    processor = table_of(AttributeInstance).c.created_at.type.bind_processor(session.get_bind().dialect)
    assert processor is not None
    created = processor(at)
    return created.isoformat(" ") if isinstance(created, datetime) else created


def _copy_text(tenant_id: int, at: datetime, rows: Sequence[HistoryRow]) -> str:
    """The rows in COPY text format. Ids, names and dataset ids are URIs without whitespace and JSON text
    escapes control characters, so a backslash is the only character needing an escape. The loop runs once
    per history row, hence the unpacking and the inlined escapes (no call per field)."""
    created = at.isoformat()
    lines = []
    for entity_id, attr_iri, dataset_id, attr_type, observed_at, value_num, instance in rows:
        dataset = _NULL if dataset_id is None else dataset_id.replace(_BACKSLASH, _ESCAPED_BACKSLASH)
        number = _NULL if value_num is None else repr(value_num)
        text = _NULL if instance is None else instance.replace(_BACKSLASH, _ESCAPED_BACKSLASH)
        lines.append(
            f"{tenant_id}\t{entity_id.replace(_BACKSLASH, _ESCAPED_BACKSLASH)}"
            f"\t{attr_iri.replace(_BACKSLASH, _ESCAPED_BACKSLASH)}\t{dataset}\t{attr_type}"
            f"\t{observed_at or created}\t{created}\t{number}\t{text}\t{'t' if instance is None else 'f'}\n"
        )
    return "".join(lines)


def _sqlite_time(moment: str) -> str:
    """A ``history_time`` string in SQLAlchemy's SQLite DATETIME storage (``2026-01-01 00:00:00.000000``)."""
    return f"{moment[:10]} {moment[11:-1]:0<15}"


@lru_cache(maxsize=16_384)
def history_time(observed_at: str) -> str:
    """An observedAt as UTC ISO 8601 ending in ``Z``, with 3 (``timestamp`` form, passed as is) or 6 fraction
    digits; BadRequestData when it is no date-time. Cached: a gateway's readings share few distinct times."""
    parsed = parse_datetime(observed_at, "observedAt")
    if is_timestamp(observed_at):
        return observed_at
    return parsed.isoformat(timespec="microseconds")[:26] + "Z"


def is_timestamp(value: str) -> bool:
    """Whether ``value`` has the ``timestamp()`` shape ``2026-01-01T00:00:00.000Z`` (it sorts as text)."""
    return len(value) == _TIMESTAMP_LENGTH and value[-1] == "Z" and value[10] == "T" and value[19] == "."


# -- entity rows -------------------------------------------------------------------------------------------


_UPDATE_FROM_JSON = text(
    "UPDATE context_entity AS e SET attrs = v.attrs, scopes = v.scopes, types = v.types, "
    "modified_at = :modified_at, geo_min_lon = v.geo_min_lon, geo_min_lat = v.geo_min_lat, "
    "geo_max_lon = v.geo_max_lon, geo_max_lat = v.geo_max_lat, geo_cell = v.geo_cell "
    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS v(pk bigint, attrs jsonb, scopes json, types json, "
    "geo_min_lon float8, geo_min_lat float8, geo_max_lon float8, geo_max_lat float8, geo_cell text) "
    "WHERE e.pk = v.pk"
)


@dataclass(frozen=True, slots=True)
class DocumentWrite:
    """A new document for an existing entity row (with its query columns)."""

    pk: int
    attrs: Attributes
    geo: dict[str, Any]
    scopes: list[str] | None
    types: list[str]


def update_documents(session: Session, writes: Sequence[DocumentWrite], modified_at: datetime) -> None:
    """Rewrite documents, scopes, types and geo columns of existing rows in one statement."""
    if not writes:
        return
    if is_postgres(session):
        # One JSON document for all rows: psycopg adapts one string in C, where Python lists would be
        # dumped element by element as arrays (measured: the larger part of this statement's time).
        rows = [
            {"pk": write.pk, "attrs": write.attrs, "scopes": write.scopes, "types": write.types, **write.geo}
            for write in writes
        ]
        session.execute(_UPDATE_FROM_JSON, {"rows": encode_json(rows), "modified_at": modified_at})
        return
    _update_documents_sqlite(session, writes, modified_at)


_DOCUMENT_COLUMNS = ("attrs", "scopes", "types", "modified_at", *GEO_COLUMNS)


def _update_documents_sqlite(session: Session, writes: Sequence[DocumentWrite], at: datetime) -> None:
    """One driver executemany, values converted by the columns' own bind processors, so they are stored
    exactly as through SQLAlchemy, whose executemany costs about 10 µs more per row (in the write lock)."""
    table = table_of(Entity)
    dialect = session.get_bind().dialect
    encode_attrs, encode_scopes, encode_types, encode_time = (
        _bind_processor(table, name, dialect) for name in ("attrs", "scopes", "types", "modified_at")
    )
    modified = encode_time(at)
    assignments = ", ".join(f"{name} = ?" for name in _DOCUMENT_COLUMNS)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    raw.executemany(
        f"UPDATE {table.name} SET {assignments} WHERE pk = ?",  # noqa: S608 - fixed names
        [
            (
                encode_attrs(write.attrs),
                encode_scopes(write.scopes),
                encode_types(write.types),
                modified,
                *(write.geo[name] for name in GEO_COLUMNS),
                write.pk,
            )
            for write in writes
        ],
    )


def _bind_processor(table: Table, column: str, dialect: Any) -> Any:
    processor = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None
    return processor


@dataclass(frozen=True, slots=True)
class NewEntity:
    entity_id: str
    types: list[str]
    scopes: list[str] | None
    attrs: Attributes
    geo: dict[str, Any]


def insert_entities(
    session: Session, tenant: TenantRef, entities: Sequence[NewEntity], created_at: datetime
) -> set[str]:
    """Insert new entities and their type rows; the ids inserted. An id missing from the answer exists
    already (another transaction created it since it was looked up)."""
    if not entities:
        return set()
    table = table_of(Entity)
    rows = [
        {
            "tenant_id": tenant.id,
            "entity_id": entity.entity_id,
            "types": entity.types,
            "scopes": entity.scopes,
            "attrs": entity.attrs,
            "created_at": created_at,
            "modified_at": created_at,
            **entity.geo,
        }
        for entity in entities
    ]
    statement = (
        upsert_into(session, table)
        .on_conflict_do_nothing(index_elements=["tenant_id", "entity_id"])
        .returning(table.c.pk, table.c.entity_id)
    )
    inserted = {entity_id: pk for pk, entity_id in session.connection().execute(statement, rows)}
    types = {entity.entity_id: entity.types for entity in entities}
    replace_types(session, tenant, {pk: types[entity_id] for entity_id, pk in inserted.items()})
    return set(inserted)


def replace_types(session: Session, tenant: TenantRef, types_by_pk: dict[int, list[str]]) -> None:
    """Write the type rows of entities (existing rows of those entities are removed first)."""
    if not types_by_pk:
        return
    table = table_of(EntityType)
    session.connection().execute(table.delete().where(table.c.entity_pk.in_(list(types_by_pk))))
    rows = [
        {"entity_pk": pk, "type_iri": iri, "tenant_id": tenant.id}
        for pk, types in types_by_pk.items()
        for iri in types
    ]
    session.connection().execute(insert(table), rows)


@dataclass
class StoredEntity:
    """An entity row as the bulk paths need it (the document is the stored one: copy before changing)."""

    pk: int
    entity_id: str
    types: list[str]
    scopes: list[str] | None
    attrs: Attributes
    created_at: datetime
    modified_at: datetime
    geo: dict[str, Any]

    @property
    def created_stamp(self) -> str:
        return _timestamp(self.created_at)

    @property
    def modified_stamp(self) -> str:
        return _timestamp(self.modified_at)


# The entities of a bulk write mostly share their creation and modification times (they were written
# together), and a message asks for both stamps of every entity it changes.
_timestamp = lru_cache(maxsize=1_024)(timestamp)


def load_entities(
    session: Session, tenant: TenantRef, entity_ids: Iterable[str], lock: bool = True
) -> dict[str, StoredEntity]:
    """The existing entities among ``entity_ids``, locked unless ``lock`` is False (see ``_touched``)."""
    table = table_of(Entity)
    columns = [table.c[name] for name in ("pk", "entity_id", "types", "scopes", "attrs")]
    columns += [table.c.created_at, table.c.modified_at, *(table.c[name] for name in GEO_COLUMNS)]
    rows = _touched(session, tenant, entity_ids, columns, lock)
    return {  # rows unpacked rather than read by name: this runs for every entity of a message
        entity_id: StoredEntity(
            pk,
            entity_id,
            list(types),
            scopes,
            attrs,
            created,
            modified,
            dict(zip(GEO_COLUMNS, geo, strict=True)),
        )
        for pk, entity_id, types, scopes, attrs, created, modified, *geo in rows
    }


def entity_versions(
    session: Session, tenant: TenantRef, entity_ids: Iterable[str]
) -> dict[str, tuple[int, datetime]]:
    """The pk and modification time of the existing entities among ``entity_ids``, locked as
    ``load_entities`` locks them: what tells whether they changed since they were loaded."""
    table = table_of(Entity)
    columns = [table.c.entity_id, table.c.pk, table.c.modified_at]
    return {
        entity_id: (pk, modified)
        for entity_id, pk, modified in _touched(session, tenant, entity_ids, columns)
    }


def _touched(
    session: Session, tenant: TenantRef, entity_ids: Iterable[str], columns: list[Any], lock: bool = True
) -> Sequence[Any]:
    """The rows (``columns``) of the existing entities among ``entity_ids``, in id order and, unless ``lock``
    is False, locked (``FOR UPDATE`` on PostgreSQL, so two bulk writers cannot deadlock; SQLite's write
    transaction already serialises writers)."""
    table = table_of(Entity)
    statement = (
        select(*columns)
        .where(table.c.tenant_id == tenant.id, table.c.entity_id.in_(sorted(set(entity_ids))))
        .order_by(table.c.entity_id)
    )
    if lock and is_postgres(session):
        statement = statement.with_for_update()
    return session.execute(statement).all()  # at once: iterating fetches row by row


def table_of(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table
