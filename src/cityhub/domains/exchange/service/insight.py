"""Decision support over the data exchange: how shared data is used, how fresh the published resources are,
how departments handle corrections, and how often open data is downloaded — for a period of whole UTC days
ending today (the days the usage counters are kept by).

- **use**: reads and rows read through grants (``exchange_grant_usage``) per resource, per consumer department
  and per day;
- **freshness**: each published resource's last load (its newest valid version that is not a correction)
  against its update cycle: *fresh* within one cycle, *due* within two, *stale* after that or never loaded;
  irregular resources are fresh once loaded. Counted per provider department, with the resources to look at;
- **corrections**: objections filed in the period, per owner department: accepted, rejected, still open, and
  late (answered after their deadline, or still open past it);
- **downloads**: public reads of open data (``exchange_open_download``) per day and channel, and per resource.

Everything is grouped in the database; only the groups come back. Scope: the operator (administering the
city) sees every department; a department's staff see their department's resources as provider (their use
by anyone, freshness, corrections, downloads) and its own reads as consumer; anyone else is refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, distinct, func, literal, or_, select, true
from sqlalchemy.orm import Session

from cityhub.domains.exchange import schemas
from cityhub.domains.exchange.models import Grant, GrantUsage, Objection, OpenDownload, Resource, Version
from cityhub.domains.exchange.service.access import ADMINISTER, MANAGE, READ, REQUEST
from cityhub.domains.exchange.service.opening import downloads_by_day
from cityhub.domains.identity import Principal, can_citywide, organizations_by_id
from cityhub.kernel.errors import Forbidden
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.workdays import DaySpan

DEFAULT_DAYS = 90
MAX_DAYS = 731
TOP = 10  # resources and consumers ranked
ATTENTION = 50  # resources listed as due or stale
CYCLES = {
    "realtime": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=31),
    "quarterly": timedelta(days=92),
    "yearly": timedelta(days=366),
}  # "irregular" has none
FRESHNESS = ("fresh", "due", "stale")


@dataclass(frozen=True)
class Scope:
    """What the caller sees: the whole city, or as provider and consumer of some departments."""

    city: bool
    providers: frozenset[int]
    consumers: frozenset[int]

    def provided(self, provider: Any) -> ColumnElement[bool]:
        return true() if self.city else provider.in_(sorted(self.providers))

    def used(self, provider: Any, consumer: Any) -> ColumnElement[bool]:
        if self.city:
            return true()
        return or_(provider.in_(sorted(self.providers)), consumer.in_(sorted(self.consumers)))


def scope_of(principal: Principal) -> Scope:
    if can_citywide(principal, ADMINISTER):
        return Scope(True, frozenset(), frozenset())
    providers = principal.organizations(MANAGE)
    consumers = principal.organizations(REQUEST) | principal.organizations(READ)
    if not providers and not consumers:
        raise Forbidden(_("The data exchange's figures are for its departments and the operator."))
    return Scope(False, frozenset(providers), frozenset(consumers))


def period_of(days: int, now: datetime) -> DaySpan:
    """The ``days`` days ending today."""
    today = now.astimezone(UTC).date()
    return DaySpan(today - timedelta(days=days - 1), today)


def figures(session: Session, principal: Principal, days: int, now: datetime) -> schemas.InsightOut:
    scope = scope_of(principal)
    period = period_of(days, now)
    names = _Names(session)
    return schemas.InsightOut(
        period=schemas.PeriodOut(first=period.first, last=period.last, days=days),
        scope="city" if scope.city else "departments",
        departments=names.codes(scope.providers | scope.consumers),
        use=_use(session, scope, period, names),
        freshness=_freshness(session, scope, now, names),
        corrections=_corrections(session, scope, period, now, names),
        downloads=_downloads(session, scope, period, names),
    )


class _Names:
    """Departments' codes and names, each read once."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.known: dict[int, Any] = {}

    def load(self, ids: set[int]) -> None:
        self.known.update(organizations_by_id(self.session, ids - self.known.keys()))

    def codes(self, ids: frozenset[int]) -> list[str]:
        self.load(set(ids))
        return sorted(self.known[id_].code for id_ in ids if id_ in self.known)

    def department(self, id_: int) -> dict[str, str]:
        self.load({id_})
        found = self.known.get(id_)
        return {"department": found.code, "name": found.name} if found else {"department": "", "name": ""}


def _int(value: Any) -> int:
    """A SUM or COUNT as an int (PostgreSQL sums bigints as numerics; SQL sums nothing as NULL)."""
    return int(value or 0)


def _resource(row: Any, names: _Names) -> dict[str, Any]:
    return {
        "resource": row.code,
        "name": row.name,
        "name_en": row.name_en,
        "provider": names.department(row.provider_org_id)["department"],
    }


# -- use through grants ------------------------------------------------------------------------------------


def _use(session: Session, scope: Scope, period: DaySpan, names: _Names) -> schemas.UseOut:
    reads = func.sum(GrantUsage.reads).label("reads")
    rows = func.sum(GrantUsage.rows).label("rows")

    def used(*columns: Any) -> Select[Any]:
        return (
            select(*columns)
            .select_from(GrantUsage)
            .join(Grant, Grant.id == GrantUsage.grant_id)
            .join(Resource, Resource.id == Grant.resource_id)
            .where(
                GrantUsage.day >= period.first,
                GrantUsage.day <= period.last,
                scope.used(Resource.provider_org_id, Grant.consumer_org_id),
            )
        )

    totals = session.execute(
        used(
            reads, rows, func.count(distinct(Grant.resource_id)), func.count(distinct(Grant.consumer_org_id))
        )
    ).one()
    resource_columns = (Resource.id, Resource.code, Resource.name, Resource.name_en, Resource.provider_org_id)
    by_resource = session.execute(
        used(*resource_columns, reads, rows, func.count(distinct(Grant.consumer_org_id)).label("consumers"))
        .group_by(*resource_columns)
        .order_by(reads.desc(), Resource.code)
        .limit(TOP)
    ).all()
    by_consumer = session.execute(
        used(Grant.consumer_org_id, reads, rows, func.count(distinct(Grant.resource_id)).label("resources"))
        .group_by(Grant.consumer_org_id)
        .order_by(reads.desc(), Grant.consumer_org_id)
        .limit(TOP)
    ).all()
    daily = {
        day: (_int(day_reads), _int(day_rows))
        for day, day_reads, day_rows in session.execute(
            used(GrantUsage.day, reads, rows).group_by(GrantUsage.day)
        )
    }
    return schemas.UseOut(
        reads=_int(totals[0]),
        rows=_int(totals[1]),
        resources=_int(totals[2]),
        consumers=_int(totals[3]),
        top_resources=[
            schemas.ResourceUseOut(
                **_resource(row, names), reads=_int(row.reads), rows=_int(row.rows), consumers=row.consumers
            )
            for row in by_resource
        ],
        top_consumers=[
            schemas.ConsumerUseOut(
                **names.department(row.consumer_org_id),
                reads=_int(row.reads),
                rows=_int(row.rows),
                resources=row.resources,
            )
            for row in by_consumer
        ],
        daily=[
            schemas.DayUseOut(day=day, reads=daily.get(day, (0, 0))[0], rows=daily.get(day, (0, 0))[1])
            for day in period.days()
        ],
    )


# -- freshness ---------------------------------------------------------------------------------------------


def _freshness(session: Session, scope: Scope, now: datetime, names: _Names) -> schemas.FreshnessOut:
    loaded = (
        select(Version.resource_id, func.max(Version.loaded_at).label("last"))
        .where(Version.valid.is_(True), Version.source != "correction")
        .group_by(Version.resource_id)
        .subquery()
    )
    due_before = case(
        {cycle: literal(now - every) for cycle, every in CYCLES.items()}, value=Resource.update_cycle
    )
    stale_before = case(
        {cycle: literal(now - 2 * every) for cycle, every in CYCLES.items()}, value=Resource.update_cycle
    )
    state = case(
        (loaded.c.last.is_(None), "stale"),
        (loaded.c.last < stale_before, "stale"),
        (loaded.c.last < due_before, "due"),
        else_="fresh",
    )
    published = (
        select(
            Resource.code,
            Resource.name,
            Resource.name_en,
            Resource.provider_org_id,
            Resource.update_cycle,
            loaded.c.last,
            state.label("state"),
        )
        .outerjoin(loaded, loaded.c.resource_id == Resource.id)
        .where(Resource.status == "published", scope.provided(Resource.provider_org_id))
        .subquery()
    )
    counts: dict[int, dict[str, int]] = {}
    for provider, found_state, count in session.execute(
        select(published.c.provider_org_id, published.c.state, func.count()).group_by(
            published.c.provider_org_id, published.c.state
        )
    ):
        counts.setdefault(provider, dict.fromkeys(FRESHNESS, 0))[found_state] = count
    attention = session.execute(
        select(published)
        .where(published.c.state != "fresh")
        .order_by(published.c.last.is_(None).desc(), published.c.last, published.c.code)
        .limit(ATTENTION)
    ).all()
    departments = sorted(
        (
            schemas.FreshnessCountOut(**names.department(provider), **found)
            for provider, found in counts.items()
        ),
        key=lambda row: row.department,
    )
    return schemas.FreshnessOut(
        **{name: sum(found[name] for found in counts.values()) for name in FRESHNESS},
        departments=departments,
        attention=[
            schemas.FreshnessResourceOut(
                **_resource(row, names),
                update_cycle=row.update_cycle,
                last_loaded_at=row.last,
                state=row.state,
            )
            for row in attention
        ],
    )


# -- corrections -------------------------------------------------------------------------------------------


def _corrections(
    session: Session, scope: Scope, period: DaySpan, now: datetime, names: _Names
) -> schemas.CorrectionsOut:
    def counted(condition: ColumnElement[bool]) -> Any:
        return func.sum(case((condition, 1), else_=0))

    late = or_(
        and_(Objection.answered_at.is_not(None), Objection.answered_at > Objection.due_at),
        and_(Objection.status == "open", Objection.due_at < now),
    )
    columns = (
        func.count().label("filed"),
        counted(Objection.status == "accepted").label("accepted"),
        counted(Objection.status == "rejected").label("rejected"),
        counted(Objection.status == "open").label("open"),
        counted(late).label("late"),
    )
    rows = session.execute(
        select(Resource.provider_org_id, *columns)
        .select_from(Objection)
        .join(Resource, Resource.id == Objection.resource_id)
        .where(
            Objection.created_at >= period.start,
            Objection.created_at < period.end,
            scope.provided(Resource.provider_org_id),
        )
        .group_by(Resource.provider_org_id)
    ).all()
    fields = [column.name for column in columns]
    departments = sorted(
        (
            schemas.CorrectionCountOut(
                **names.department(row.provider_org_id), **{name: _int(getattr(row, name)) for name in fields}
            )
            for row in rows
        ),
        key=lambda row: row.department,
    )
    return schemas.CorrectionsOut(
        **{name: sum(getattr(row, name) for row in departments) for name in fields}, departments=departments
    )


# -- open-data downloads -----------------------------------------------------------------------------------


def _downloads(session: Session, scope: Scope, period: DaySpan, names: _Names) -> schemas.DownloadsOut:
    """Reads per day and channel through the open-data counters' reader (``opening.downloads_by_day``), the
    channels summed from those groups; the most read resources."""
    mine = None
    if not scope.city:
        mine = list(session.scalars(select(Resource.id).where(scope.provided(Resource.provider_org_id))))
    counts = downloads_by_day(session, period.first, period.last, mine)
    daily = {day: schemas.DownloadDayOut(day=day, reads=0, rows=0, channels={}) for day in period.days()}
    per_channel: dict[str, schemas.ChannelOut] = {}
    for count in counts:
        day = daily[count.day]
        day.reads += count.reads
        day.rows += count.rows
        day.channels[count.channel] = count.reads
        channel = per_channel.setdefault(
            count.channel, schemas.ChannelOut(channel=count.channel, reads=0, rows=0)
        )
        channel.reads += count.reads
        channel.rows += count.rows
    reads = func.sum(OpenDownload.reads).label("reads")
    resource_columns = (Resource.id, Resource.code, Resource.name, Resource.name_en, Resource.provider_org_id)
    by_resource = session.execute(
        select(*resource_columns, reads, func.sum(OpenDownload.rows).label("rows"))
        .select_from(OpenDownload)
        .join(Resource, Resource.id == OpenDownload.resource_id)
        .where(
            OpenDownload.day >= period.first,
            OpenDownload.day <= period.last,
            scope.provided(Resource.provider_org_id),
        )
        .group_by(*resource_columns)
        .order_by(reads.desc(), Resource.code)
        .limit(TOP)
    ).all()
    return schemas.DownloadsOut(
        reads=sum(channel.reads for channel in per_channel.values()),
        rows=sum(channel.rows for channel in per_channel.values()),
        channels=sorted(per_channel.values(), key=lambda channel: (-channel.reads, channel.channel)),
        daily=list(daily.values()),
        top_resources=[
            schemas.DownloadResourceOut(**_resource(row, names), reads=_int(row.reads), rows=_int(row.rows))
            for row in by_resource
        ],
    )
