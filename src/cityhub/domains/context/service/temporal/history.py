"""Reading the attribute history (``AttributeInstance``): series, windows, types, instance ids.

Every read is a range scan of the series index (tenant, entity, attribute, observedAt). The history
outlives its entity, so an entity's types come from the entity when it exists and otherwise from a
*type marker*: a history row under the reserved name ``@type`` (no attribute can have it) written when an
entity is deleted or created through the temporal API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, String, Text, case, cast, func, select, type_coerce
from sqlalchemy.orm import InstrumentedAttribute, Session

from cityhub.domains.context.errors import ResourceNotFound
from cityhub.domains.context.models import AttributeInstance, Entity
from cityhub.domains.context.service.temporal.window import TemporalQuery, TimeProperty
from cityhub.domains.context.store.document import VALUE_MEMBER, parse_datetime
from cityhub.kernel.db import is_postgres

History = AttributeInstance
TYPES_MARKER = "@type"
INSTANCE_ID_PREFIX = "urn:ngsi-ld:attribute:instance:"
MAX_INSTANCES = 10_000
"""Instances of one attribute in one answer; beyond it the answer is partial (206 with Content-Range)."""
Selectable = ColumnElement[Any] | InstrumentedAttribute[Any]


def row_id_of(instance_id_text: str) -> int:
    digits = instance_id_text.removeprefix(INSTANCE_ID_PREFIX)
    if instance_id_text == digits or not digits.isdigit():
        raise ResourceNotFound(f"no attribute instance {instance_id_text}")
    return int(digits)


def time_column(prop: TimeProperty) -> InstrumentedAttribute[datetime]:
    return History.observed_at if prop is TimeProperty.OBSERVED_AT else History.created_at


def series(tenant_id: int, entity_id: str, attr_iri: str | None = None) -> list[ColumnElement[bool]]:
    conditions = [History.tenant_id == tenant_id, History.entity_id == entity_id]
    if attr_iri is None:
        conditions.append(History.attr_iri != TYPES_MARKER)
    else:
        conditions.append(History.attr_iri == attr_iri)
    return conditions


def in_window(query: TemporalQuery) -> list[ColumnElement[bool]]:
    column = time_column(query.time_property)
    conditions: list[ColumnElement[bool]] = []
    if query.lower is not None:
        inclusive = query.timerel is not None and query.timerel.value == "between"
        conditions.append(column >= query.lower if inclusive else column > query.lower)
    if query.upper is not None:
        conditions.append(column < query.upper)
    return conditions


@dataclass
class AttributeHistory:
    """The instances of one attribute in the window, oldest first; ``truncated`` when some were left out.

    Rows carry ``instant``, the ISO text of the query's time property (see ``read_attribute``).
    """

    rows: Sequence[Row[Any]]
    truncated: bool
    newest_first: bool = False  # lastN reads from the newest end: the left-out instances are older

    @property
    def first_read(self) -> datetime | None:
        return _moment(self.rows[-1 if self.newest_first else 0]) if self.rows else None

    @property
    def continue_from(self) -> datetime | None:
        """Where a next page starts (the time of the last instance in reading order)."""
        if not self.truncated or not self.rows:
            return None
        return _moment(self.rows[0 if self.newest_first else -1])


def _moment(row: Row[Any]) -> datetime:
    return parse_datetime(row.instant, "instant")


def attribute_names(session: Session, tenant_id: int, entity_id: str) -> list[str]:
    """The attributes an entity's history holds, by skipping along the index (one seek per name)."""
    names: list[str] = []
    previous = ""
    while True:
        name = session.scalar(
            select(func.min(History.attr_iri)).where(
                History.tenant_id == tenant_id, History.entity_id == entity_id, History.attr_iri > previous
            )
        )
        if name is None:
            return names
        if name != TYPES_MARKER:
            names.append(name)
        previous = name


def read_attribute(
    session: Session,
    tenant_id: int,
    entity_id: str,
    attr_iri: str,
    query: TemporalQuery,
    *,
    values_only: bool,
) -> AttributeHistory:
    """The instances in the window: whole (``values_only=False``, deletion records included) or only their
    value member (``value``: its JSON text), always with ``instant``, ``dataset_id`` and ``attr_type``."""
    column = time_column(query.time_property)
    columns = _value_columns() if values_only else _instance_columns(session)
    statement: Select[Any] = select(*columns, iso_text(session, column).label("instant")).where(
        *series(tenant_id, entity_id, attr_iri), *in_window(query)
    )
    if values_only:
        statement = statement.where(History.deleted.is_(False))
    if query.last_n is not None:
        wanted = min(query.last_n, MAX_INSTANCES)
        newest = list(session.execute(statement.order_by(column.desc(), History.id.desc()).limit(wanted)))
        newest.reverse()
        truncated = query.last_n > MAX_INSTANCES and len(newest) == MAX_INSTANCES
        return AttributeHistory(newest, truncated, newest_first=True)
    rows = list(session.execute(statement.order_by(column, History.id).limit(MAX_INSTANCES + 1)))
    return AttributeHistory(rows[:MAX_INSTANCES], len(rows) > MAX_INSTANCES)


def _instance_columns(session: Session) -> list[Selectable]:
    """Instances as stored (JSON text: parsing it is the caller's one pass), times already as text."""
    return [
        History.id,
        History.dataset_id,
        History.attr_type,
        History.deleted,
        iso_text(session, History.observed_at).label("observed"),
        iso_text(session, History.created_at).label("created"),
        cast(History.instance, Text).label("instance"),
    ]


def _value_columns() -> list[Selectable]:
    """The JSON text of the value member (``value``, ``object``, ``languageMap``...) of each instance type."""
    by_type = [
        (History.attr_type == attr_type, History.instance[member])
        for attr_type, member in VALUE_MEMBER.items()
        if member != "value"
    ]
    value = case(*by_type, else_=History.instance["value"])
    return [History.dataset_id, History.attr_type, cast(value, Text).label("value")]


def iso_text(session: Session, column: InstrumentedAttribute[datetime]) -> ColumnElement[str]:
    """The column in ``document.timestamp``'s form, formatted by the database (no datetime per row)."""
    if is_postgres(session):
        return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"', type_=String)
    # SQLite holds SQLAlchemy's 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC: the milliseconds are its first 3 digits.
    stored = type_coerce(column, String)
    date, time_of_day = func.substr(stored, 1, 10, type_=String), func.substr(stored, 12, 12, type_=String)
    return date + "T" + time_of_day + "Z"


def has_history(
    session: Session, tenant_id: int, entity_id: str, attrs: Sequence[str] | None, query: TemporalQuery
) -> bool:
    """Whether the entity has an instance in the window (of one of ``attrs`` when given)."""
    conditions = series(tenant_id, entity_id)
    if attrs is not None:
        conditions.append(History.attr_iri.in_(attrs))
    statement = select(History.id).where(*conditions, *in_window(query)).limit(1)
    return session.scalar(statement) is not None


def entity_types(session: Session, tenant_id: int, entity_id: str) -> list[str] | None:
    """The entity's types: the live entity's, else the latest type marker's; None when neither exists."""
    current = session.scalar(
        select(Entity.types).where(Entity.tenant_id == tenant_id, Entity.entity_id == entity_id)
    )
    if current is not None:
        return list(current)
    return marked_types(session, tenant_id, entity_id)


def marked_types(session: Session, tenant_id: int, entity_id: str) -> list[str] | None:
    marker = session.scalar(
        select(History.instance)
        .where(*series(tenant_id, entity_id, TYPES_MARKER))
        .order_by(History.observed_at.desc(), History.id.desc())
        .limit(1)
    )
    return list(marker["value"]) if marker else None


def any_history(session: Session, tenant_id: int, entity_id: str) -> bool:
    statement = select(History.id).where(History.tenant_id == tenant_id, History.entity_id == entity_id)
    return session.scalar(statement.limit(1)) is not None
