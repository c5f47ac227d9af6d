"""De-identification before opening, the open query API and the count of public reads.

A resource's ``open_rules`` (``schemas.OpenRules``) decide what the public gets of its rows — the portal's
preview and downloads, CKAN's ``datastore_search``, the open query API (and, for an approved applicant, a
conditionally open resource's data: ``public_page``, ``public_csv``, ``public_json``):

- ``suppress``: items in no public output, nor in the public listing of the data items;
- ``generalise``: items coarsened, by a method that fits the item's type. Dates and times are cut to the year
  or month (``2025-11-01`` -> ``2025``, ``2025-11``); whole numbers and numbers become the range of ``width``
  they fall in (``37`` -> ``"30-39"``, both bounds in the range; ``0.21`` -> ``"0.2-0.3"``, from the lower
  bound, below the upper; computed in double precision, the same in Python, SQLite and PostgreSQL); text is
  masked after its first N characters (``张三丰`` -> ``张**``) or cut to them (``prefix``). A generalised
  item is text for the public. It is never filtered or searched on (its raw values could be probed by
  narrowing filters): that is a 422 (a CKAN Validation Error). Aggregates group, and CKAN sorts, by its
  generalised value (computed in SQL), never by the raw one;
- ``min_group``: an aggregate shows no group of fewer rows (default ``CITYHUB_EXCHANGE__OPEN_MIN_GROUP``) and
  says how many groups and rows it left out.

The rules are compiled once per request (``opening_of``) into one function per generalised column; a row
is then a dictionary comprehension (``Opening.row``, ``Opening.values``). A rule that no longer fits its item
(the data items may change before the first load) hides that item: de-identification fails closed.

Every public read is counted per resource, UTC day and channel in ``exchange_open_download`` (``count_read``:
an INSERT ... ON CONFLICT DO UPDATE, safe under concurrency on both databases); a download counts the rows
of the version it serves when it is answered (the file always holds all of them), so an interrupted
download still counts as one.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, Float, cast, func, select
from sqlalchemy.orm import Session

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import DOWNLOAD_CHANNELS, Grant, OpenDownload, Resource, Row, Version
from cityhub.domains.exchange.service import catalogue, grants, reads
from cityhub.domains.exchange.service.access import MANAGE, REQUEST, acts_for, owned_resource
from cityhub.domains.exchange.settings import ExchangeSettings
from cityhub.domains.identity import Principal
from cityhub.kernel import audit, jsondoc, jsontext
from cityhub.kernel.db import Database, upsert_into, utcnow
from cityhub.kernel.errors import NotFound, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.settings import domain_settings

Transform = Callable[[Any], Any]
Channel = Literal["preview", "csv", "json", "api", "ckan"]
FITTING = {  # which methods generalise which item types
    "truncate": ("date", "datetime"),
    "bucket": ("integer", "number"),
    "mask": ("string",),
    "prefix": ("string",),
}
TRUNCATED = {"year": 4, "month": 7}  # characters of an ISO date kept
MAX_GROUP_BY = 3
MAX_GROUPS = 10_000
CSV_CHUNK = 256 * 1024


# -- the rules ---------------------------------------------------------------------------------------------


def set_rules(session: Session, principal: Principal, code: str, rules: schemas.OpenRules) -> Resource:
    """New open rules for a resource its department manages (or the operator), checked against its data
    items: a 422 names an unknown item, a method that does not fit an item's type, or rules that leave no
    item public. Audited."""
    resource = owned_resource(session, principal, code)
    types = {item["name"]: item["type"] for item in resource.data_items}
    for parameter, names in (("suppress", rules.suppress), ("generalise", list(rules.generalise))):
        unknown = sorted(set(names) - types.keys())
        if unknown:
            raise ValidationProblem(
                _("Not data items of this resource: %(names)s", names=", ".join(unknown)), field=parameter
            )
    for name, rule in rules.generalise.items():
        if not _fits(rule, types[name]):
            raise ValidationProblem(
                _(
                    "%(item)s is of type %(type)s: %(method)s does not apply to it.",
                    item=name,
                    type=types[name],
                    method=rule.method,
                ),
                field="generalise",
            )
    if not types.keys() - set(rules.suppress):
        raise ValidationProblem(_("At least one data item must stay public."), field="suppress")
    resource.open_rules = rules.model_dump(mode="json")
    resource.modified_at = utcnow()
    audit.record(
        session,
        actor=principal.actor,
        action="exchange.resource.open_rules",
        object_type="exchange_resource",
        object_id=resource.code,
        details=resource.open_rules,
    )
    return resource


def _fits(rule: schemas.Generalisation, item_type: str) -> bool:
    if item_type not in FITTING[rule.method]:
        return False
    return not (
        isinstance(rule, schemas.Bucket) and item_type == "integer" and not float(rule.width).is_integer()
    )


def _rules_of(resource: Resource) -> schemas.OpenRules:
    return schemas.OpenRules.model_validate(resource.open_rules or {})


# -- compiled ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opening:
    """A resource's open rules compiled against its data items: what the public gets of each row."""

    items: tuple[schemas.OpenItemOut, ...]  # the public items, in column order, typed as the public gets them
    types: Mapping[str, str]  # each public item's declared type
    generalised: Mapping[str, schemas.Generalisation]
    min_group: int
    columns: tuple[tuple[str, Transform | None], ...]
    cells: tuple[tuple[str, Transform | None], ...]  # the same, yes/no values as JSON writes them (files)

    @property
    def names(self) -> list[str]:
        return [name for name, _transform in self.columns]

    @property
    def plain(self) -> list[str]:
        """The public items shown as they are: those one may filter and search on."""
        return [name for name, transform in self.columns if transform is None]

    def row(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A stored row as the public gets it."""
        return {
            name: data.get(name) if transform is None else transform(data.get(name))
            for name, transform in self.columns
        }

    def values(self, data: Mapping[str, Any]) -> list[Any]:
        """A stored row's public values in column order as a CSV line holds them (``true``/``false``; the
        csv module writes None as an empty field)."""
        return [
            data.get(name) if transform is None else transform(data.get(name))
            for name, transform in self.cells
        ]

    def sql_keys(self, name: str, dialect: str) -> list[ColumnElement[Any]]:
        """The public item ``name`` of a row in SQL, as the value(s) its public value is made from
        (``label``): to group and sort by a generalised item without reading its raw values."""
        item_type = self.types[name]
        member = jsondoc.typed_member(Row.data, name, grants.JSON_KINDS[item_type], dialect)
        rule = self.generalised.get(name)
        if rule is None:
            return [member]
        if isinstance(rule, schemas.Truncate):
            return [func.substr(member, 1, TRUNCATED[rule.to])]
        if isinstance(rule, schemas.Bucket):
            return [func.floor(cast(member, Float) / float(rule.width))]
        if isinstance(rule, schemas.Mask):
            return [func.substr(member, 1, rule.keep), func.length(member)]
        return [func.substr(member, 1, rule.keep)]

    def label(self, name: str, parts: Sequence[Any]) -> Any:
        """The public value made from what ``sql_keys`` read."""
        value = parts[0]
        if value is None:
            return None
        rule = self.generalised.get(name)
        if rule is None:
            return _json_value(self.types[name], value)
        if isinstance(rule, schemas.Bucket):
            return bucket_label(int(value), rule.width, self.types[name])
        if isinstance(rule, schemas.Mask):
            return value + "*" * (int(parts[1]) - len(value))
        return value


def opening_of(resource: Resource) -> Opening:
    """The resource's rules compiled: its public items and a function for each generalised one."""
    rules = _rules_of(resource)
    suppressed = set(rules.suppress)
    items: list[schemas.OpenItemOut] = []
    types: dict[str, str] = {}
    generalised: dict[str, schemas.Generalisation] = {}
    columns: list[tuple[str, Transform | None]] = []
    cells: list[tuple[str, Transform | None]] = []
    for item in resource.data_items:
        name, item_type = item["name"], item["type"]
        rule = rules.generalise.get(name)
        if name in suppressed or (rule is not None and not _fits(rule, item_type)):
            continue  # a rule that no longer fits hides its item
        public_type = item_type if rule is None else "string"
        items.append(schemas.OpenItemOut(name=name, title=item["title"], type=public_type, generalised=rule))
        types[name] = item_type
        if rule is not None:
            generalised[name] = rule
        transform = None if rule is None else _transform(rule, item_type)
        columns.append((name, transform))
        cells.append((name, BOOLEAN_CELLS.get if item_type == "boolean" else transform))
    min_group = rules.min_group or domain_settings(ExchangeSettings).open_min_group
    return Opening(tuple(items), types, generalised, min_group, tuple(columns), tuple(cells))


BOOLEAN_CELLS = {True: "true", False: "false"}


def _transform(rule: schemas.Generalisation, item_type: str) -> Transform:
    if isinstance(rule, schemas.Truncate):
        length = TRUNCATED[rule.to]
        return lambda value: None if value is None else value[:length]
    if isinstance(rule, schemas.Bucket):
        return _bucket(rule.width, item_type)
    keep = rule.keep
    if isinstance(rule, schemas.Mask):
        return lambda value: None if value is None else value[:keep] + "*" * max(0, len(value) - keep)
    return lambda value: None if value is None else value[:keep]


def _bucket(width: float, item_type: str) -> Transform:
    """Values to their ranges' labels, each label made once (a file has far fewer ranges than rows)."""
    divisor = float(width)
    labels: dict[int, str] = {}

    def bucket(value: Any) -> str | None:
        if value is None:
            return None
        index = math.floor(float(value) / divisor)
        label = labels.get(index)
        if label is None:
            label = labels[index] = bucket_label(index, width, item_type)
        return label

    return bucket


def bucket_label(index: int, width: float, item_type: str) -> str:
    """The range a value fell in, from its bucket number: ``30-39`` for whole numbers (both bounds in it),
    ``0.2-0.3`` for numbers (from the lower bound, below the upper)."""
    if item_type == "integer":
        first = index * int(width)
        return f"{first}-{first + int(width) - 1}"
    step = Decimal(str(width))
    low = Decimal(index) * step
    return f"{_decimal_text(low)}-{_decimal_text(low + step)}"


def _decimal_text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _json_value(item_type: str, value: Any) -> Any:
    """A value SQL read from a row as the row's JSON holds it (PostgreSQL's numbers are decimals, SQLite's
    booleans 0 and 1)."""
    if item_type == "boolean":
        return bool(value)
    if item_type == "integer":
        return int(value)
    if item_type == "number":
        return int(value) if isinstance(value, int) else float(value)
    return value


# -- what the public sees of the catalogue entry -----------------------------------------------------------


def entry_for(
    principal: Principal | None, resource: Resource, entry: schemas.ResourceOut
) -> schemas.ResourceOut:
    """The catalogue entry as the viewer may see it: departments (who may ask for every field) and the
    resource's managers see every data item and the rules; everyone else the public entry."""
    if principal is not None and (
        principal.has(REQUEST) or acts_for(principal, MANAGE, resource.provider_org_id)
    ):
        return entry
    return public_entry(resource, entry)


def public_entry(resource: Resource, entry: schemas.ResourceOut) -> schemas.ResourceOut:
    """The entry without the suppressed data items, and its rules without their names."""
    public = set(opening_of(resource).names)
    return entry.model_copy(
        update={
            "data_items": [item for item in entry.data_items if item.name in public],
            "open_rules": entry.open_rules.model_copy(update={"suppress": []}),
        }
    )


def descriptions(resource: Resource) -> dict[str, str]:
    """How each generalised public item is generalised, for people (the portal's list of data items)."""
    return {name: described(rule) for name, rule in opening_of(resource).generalised.items()}


def described(rule: schemas.Generalisation) -> str:
    """How an item is generalised, for people."""
    if isinstance(rule, schemas.Truncate):
        return _("to the year") if rule.to == "year" else _("to the month")
    if isinstance(rule, schemas.Bucket):
        return _("in ranges of %(width)s", width=rule.width)
    if isinstance(rule, schemas.Mask):
        return _("masked after %(keep)s characters", keep=rule.keep)
    return _("the first %(keep)s characters", keep=rule.keep)


# -- reading the public rows -------------------------------------------------------------------------------


def open_resource(session: Session, code: str) -> tuple[Resource, Version]:
    """A published resource open to everyone, with its current version; 404 for any other, or before data."""
    resource = catalogue.visible(session, None, code)
    version = session.get(Version, resource.current_version_id) if resource.current_version_id else None
    if version is None:
        raise NotFound(_("Resource %(code)s has no data yet.", code=code))
    return resource, version


def parse_filters(texts: Sequence[str]) -> dict[str, list[str]]:
    """``item:value`` texts as the values asked for each item."""
    filters: dict[str, list[str]] = {}
    for text in texts:
        name, colon, value = text.partition(":")
        if not colon or not name:
            raise ValidationProblem(_("Write each filter as item:value."), field="filter")
        filters.setdefault(name, []).append(value)
    return filters


def check_filterable(opening: Opening, names: Collection[str], parameter: str) -> None:
    """Filters and searches name public items shown as they are; a suppressed item is no item at all."""
    unknown = sorted(name for name in names if name not in opening.types)
    if unknown:
        raise ValidationProblem(
            _("Not data items of this resource: %(names)s", names=", ".join(unknown)), field=parameter
        )
    coarse = sorted(name for name in names if name in opening.generalised)
    if coarse:
        raise ValidationProblem(
            _(
                "Generalised for the public, so not to filter, search or measure by: %(names)s",
                names=", ".join(coarse),
            ),
            field=parameter,
        )


def conditions_of(
    resource: Resource, row_filter: list[dict[str, Any]], dialect: str
) -> list[ColumnElement[bool]]:
    """A row filter (``[{"field", "op", "value"}]``) as SQL, through the grants' compiler: everyone's grant on
    open data, never stored."""
    everyone = Grant(resource_id=resource.id, fields=[], row_filter=row_filter)
    return grants.row_conditions(resource, everyone, dialect)


def equal_conditions(
    resource: Resource, opening: Opening, filters: Mapping[str, Sequence[Any]], dialect: str
) -> list[ColumnElement[bool]]:
    """Each item equal to its value (several values of one item: any of them); all items must hold."""
    check_filterable(opening, filters.keys(), "filter")
    # "in" even for one value: the grants' compiler builds every comparison of an "eq", and SQLAlchemy
    # refuses ``<`` with a boolean.
    row_filter = [{"field": name, "op": "in", "value": list(values)} for name, values in filters.items()]
    return conditions_of(resource, row_filter, dialect)


def public_page(
    session: Session,
    resource: Resource,
    version: Version,
    filters: Mapping[str, Sequence[Any]],
    limit: int,
    offset: int,
) -> schemas.OpenRowsOut:
    """A page of a version's rows as the public gets them, in file order, with the count of those meeting the
    equality ``filters`` (``{item: [values]}``). The caller decides who may read (``open_resource``, or an
    approved application)."""
    opening = opening_of(resource)
    conditions = equal_conditions(resource, opening, filters, session.get_bind().dialect.name)
    rows = session.scalars(
        select(Row.data)
        .where(Row.version_id == version.id, *conditions)
        .order_by(Row.row_no)
        .offset(offset)
        .limit(limit)
    ).all()
    total = version.row_count
    if conditions:
        statement = select(func.count()).select_from(Row).where(Row.version_id == version.id, *conditions)
        total = int(session.scalar(statement) or 0)
    return schemas.OpenRowsOut(
        resource=resource.code,
        version=version.number,
        fields=list(opening.items),
        items=[opening.row(data) for data in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


def preview(session: Session, resource: Resource, limit: int) -> list[dict[str, Any]]:
    """The first rows of the current version as the public gets them."""
    if resource.current_version_id is None:
        return []
    opening = opening_of(resource)
    rows, _next = reads.page(session, resource.current_version_id, 0, limit)
    return [opening.row(data) for data in rows]


def public_rows(session: Session, resource: Resource) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """The current version's rows as the public gets them, in file order, and their columns; for whoever the
    caller lets read them (an approved applicant of a conditionally open resource)."""
    assert resource.current_version_id is not None
    opening = opening_of(resource)
    row = opening.row
    return opening.names, (row(data) for data in reads.every_row(session, resource.current_version_id))


def public_csv(database: Database, version_id: int, opening: Opening) -> Iterator[str]:
    """A version's rows as the public gets them, as CSV (UTF-8 with a BOM, for spreadsheet programs),
    written in chunks from a read session of its own (a streamed answer outlives the request's session)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(opening.names)
    yield "\ufeff" + _drained(buffer)
    values = opening.values
    with database.reading() as session:
        for data in reads.every_row(session, version_id):
            writer.writerow(values(data))
            if buffer.tell() > CSV_CHUNK:
                yield _drained(buffer)
    yield _drained(buffer)


def public_json(database: Database, version_id: int, opening: Opening) -> Iterator[str]:
    """A version's rows as the public gets them, as one JSON array, in chunks."""
    yield "["
    separator = ""
    row = opening.row
    with database.reading() as session:
        for data in reads.every_row(session, version_id):
            yield separator + jsontext.dumps(row(data))
            separator = ","
    yield "]"


def _drained(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


# -- aggregates --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    kind: Literal["count", "sum", "avg"]
    item: str | None = None

    def __str__(self) -> str:
        return self.kind if self.item is None else f"{self.kind}:{self.item}"


def parse_group_by(opening: Opening, text: str) -> list[str]:
    """``item[,item]``: one to three public items (generalised ones group by their public value)."""
    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names or len(names) > MAX_GROUP_BY:
        raise ValidationProblem(
            _("Group by one to %(most)s data items, separated by commas.", most=MAX_GROUP_BY),
            field="group_by",
        )
    unknown = [name for name in names if name not in opening.types]
    if unknown:
        raise ValidationProblem(
            _("Not data items of this resource: %(names)s", names=", ".join(unknown)), field="group_by"
        )
    return names


def parse_measure(opening: Opening, text: str) -> Measure:
    """``count``, ``sum:item`` or ``avg:item`` of a public, not generalised, whole-number or number item."""
    kind, _colon, name = text.partition(":")
    if kind == "count" and not name:
        return Measure("count")
    if kind not in ("sum", "avg") or not name:
        raise ValidationProblem(_("Measure count, sum:item or avg:item."), field="measure")
    check_filterable(opening, [name], "measure")
    if opening.types[name] not in ("integer", "number"):
        raise ValidationProblem(_("%(item)s is not a number to add up.", item=name), field="measure")
    return Measure("sum" if kind == "sum" else "avg", name)


def aggregate(
    session: Session, resource: Resource, version: Version, group_by_text: str, measure_text: str
) -> schemas.OpenAggregateOut:
    """The version's rows grouped by public values (``item[,item]``), with the measure (``count``,
    ``sum:item``, ``avg:item``) of each group; groups of fewer than the minimum are left out and counted. In
    SQL over the JSON documents, on both databases."""
    opening = opening_of(resource)
    group_by = parse_group_by(opening, group_by_text)
    measure = parse_measure(opening, measure_text)
    dialect = session.get_bind().dialect.name
    keys = [(name, opening.sql_keys(name, dialect)) for name in group_by]
    columns = [key.label(f"k{n}") for n, key in enumerate(key for _name, parts in keys for key in parts)]
    measured = []
    if measure.item is not None:
        measured = [jsondoc.typed_member(Row.data, measure.item, "number", dialect).label("m")]
    # Keys are computed in a subquery and grouped by name: PostgreSQL would not match a GROUP BY expression
    # to the same expression in the select list once their parameters are bound separately.
    rows = select(*columns, *measured).where(Row.version_id == version.id).subquery()
    grouped = [rows.c[f"k{n}"] for n in range(len(columns))]
    size = func.count()
    value = size if measure.item is None else (func.sum if measure.kind == "sum" else func.avg)(rows.c.m)
    k = opening.min_group
    shown = session.execute(
        select(*grouped, size, value)
        .group_by(*grouped)
        .having(size >= k)
        .order_by(*(column.asc().nulls_last() for column in grouped))
        .limit(MAX_GROUPS + 1)
    ).all()
    if len(shown) > MAX_GROUPS:
        raise ValidationProblem(
            _("More than %(most)s groups: group by fewer or coarser items.", most=MAX_GROUPS),
            field="group_by",
        )
    small = select(size.label("n")).select_from(rows).group_by(*grouped).having(size < k).subquery()
    hidden_groups, hidden_rows = session.execute(
        select(func.count(), func.coalesce(func.sum(small.c.n), 0))
    ).one()
    groups = []
    for found in shown:
        key, at = {}, 0
        for name, parts in keys:
            key[name] = opening.label(name, found[at : at + len(parts)])
            at += len(parts)
        count, measured_value = int(found[at]), found[at + 1]
        groups.append(
            schemas.OpenGroupOut(key=key, count=count, value=_measured(measure, opening, measured_value))
        )
    return schemas.OpenAggregateOut(
        resource=resource.code,
        version=version.number,
        group_by=group_by,
        measure=str(measure),
        min_group=k,
        groups=groups,
        suppressed_groups=int(hidden_groups),
        suppressed_rows=int(hidden_rows),
    )


def _measured(measure: Measure, opening: Opening, value: Any) -> int | float | None:
    if value is None or measure.kind == "count":
        return value if value is None else int(value)
    if measure.kind == "sum" and measure.item is not None and opening.types[measure.item] == "integer":
        return int(value)
    return float(value)


# -- counting public reads ---------------------------------------------------------------------------------


def count_read(
    session: Session, resource_id: int, channel: Channel, rows: int, now: datetime | None = None
) -> None:
    """One public read of ``rows`` rows: the day's counters of the resource and channel, added to in one
    statement (INSERT ... ON CONFLICT DO UPDATE), so concurrent reads never lose a count."""
    assert channel in DOWNLOAD_CHANNELS
    day = (now or utcnow()).date()  # the UTC day
    session.execute(
        upsert_into(session, OpenDownload)
        .values(resource_id=resource_id, day=day, channel=channel, reads=1, rows=rows)
        .on_conflict_do_update(
            index_elements=["resource_id", "day", "channel"],
            set_={"reads": OpenDownload.reads + 1, "rows": OpenDownload.rows + rows},
        )
    )


@dataclass(frozen=True)
class DownloadCount:
    day: date
    channel: str
    reads: int
    rows: int


def downloads_by_day(
    session: Session, first: date, last: date, resource_ids: Collection[int] | None = None
) -> list[DownloadCount]:
    """Public reads per UTC day and channel from ``first`` to ``last`` (inclusive), of the given resources
    (None: all), oldest first; days without reads are absent."""
    statement = (
        select(
            OpenDownload.day, OpenDownload.channel, func.sum(OpenDownload.reads), func.sum(OpenDownload.rows)
        )
        .where(OpenDownload.day >= first, OpenDownload.day <= last)
        .group_by(OpenDownload.day, OpenDownload.channel)
        .order_by(OpenDownload.day, OpenDownload.channel)
    )
    if resource_ids is not None:
        statement = statement.where(OpenDownload.resource_id.in_(list(resource_ids)))
    return [
        DownloadCount(day, channel, int(n), int(rows)) for day, channel, n, rows in session.execute(statement)
    ]
