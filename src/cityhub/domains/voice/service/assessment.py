"""Department assessment (考核) of the 12345 workflow.

The cohort of a period is the tickets **received** in it: ``created_at`` within [first day 00:00, day after
the last day 00:00) in the city's time zone, merged duplicates left out. Each ticket counts for the
department it is with now (``organization_id``); tickets no department has yet count for the city only.
All figures are taken *now*: a ticket still within its time is not judged yet, so last month's figures
settle as its tickets fall due.

- **received**: tickets of the cohort.
- **response rate** (响应率): signed for in time / dispatched tickets whose signing is due. Denominator: the
  department's tickets that are signed (``signed_at`` set) or whose ``sign_due_at`` has passed; numerator:
  those with ``signed_at <= sign_due_at``. A consultation answered from the knowledge base at intake
  counts as signed at once.
- **on-time rate** (按时办结率): answered by the deadline / tickets that are answered or past their
  deadline. Numerator: ``replied_at <= deadline_at``; denominator: ``replied_at`` set, or
  ``deadline_at`` passed (an unanswered overdue ticket counts against the department).
- **resolution rate** (办结率): closed / tickets that have fallen due. Denominator: tickets closed (the
  reporter accepted the answer, or the knowledge base answered) or whose ``deadline_at`` has passed;
  numerator: ``status = closed``. A ticket closed before its deadline is resolved; one still open (or
  answered but not accepted) after its deadline is not.
- **satisfaction rate** (满意率): callbacks of 4 or 5 / callbacks given (``satisfaction`` set, 1-5).

A rate with nothing to divide by is ``None``, not zero; rates are rounded to 4 decimals.

Also: received and closed per local day, received per top-level category and per type, and a heat map
(received and closed per community, at its centre; tickets with a community only).

Everything is aggregated in the database and only groups come back. The closed tickets come from the
rollup kept in the transaction that closes each one (service/rollup.py: a closed ticket is final, so its
counts never change), the others from a live pass over them:

- per (department, category, type): the rollup's rows of the period's days (``voice_assessment_rollup``,
  keyed by day first), plus one ``GROUP BY`` over the tickets not closed received in the period, read
  from ``ix_voice_ticket_assessment_live`` (``status, created_at`` and every column counted) alone;
  departments, categories (top-level branches) and types are summed from these groups;
- per local day: the rollup's days, plus the live tickets' counted per day;
- per community: the community rollup's rows of the period (``voice_assessment_community_rollup``), plus,
  for the live tickets, a ``GROUP BY org_unit_id`` over each day's [midnight, midnight) range of the same
  index, the midnights computed in the city's zone, so the same SQL is exact on SQLite and PostgreSQL
  whatever the zone; a live day is the sum of its communities (the tickets with none as the NULL group).
  SQLite sorts to group: a day's tickets sorted at a time cost far less than a period's at once.

The rollup's days are the city's (``CITYHUB_TIMEZONE``), the zone every period is taken in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, literal, select, union_all
from sqlalchemy.orm import Session

from cityhub.domains.identity import Principal, get_organization_by_code, get_unit, organizations_by_id
from cityhub.domains.voice.models import Category, CommunityRollup, ScoreRollup, Ticket
from cityhub.domains.voice.service.rollup import LIVE_STATUSES, score_counts
from cityhub.domains.voice.service.tickets import is_operator
from cityhub.kernel.db import utcnow
from cityhub.kernel.errors import Forbidden, ValidationProblem
from cityhub.kernel.i18n import gettext as _
from cityhub.kernel.workdays import DaySpan

VIEW = "voice.assessment.view"
MAX_DAYS = 400
PRESETS = ("month", "last_month", "quarter", "custom")
RATE_GOOD, RATE_FAIR = 0.9, 0.75  # the dashboard's colours: good at or above, fair at or above, poor below


@dataclass(frozen=True)
class Period(DaySpan):
    """Whole local days from ``first`` to ``last``: [start, end), and the preset that named them."""

    preset: str = "custom"


def period_of(
    first: date | None, last: date | None, tz: str, preset: str | None = None, today: date | None = None
) -> Period:
    """The period asked for: a preset (this month, last month, this quarter: whole calendar periods) or
    custom days (``from`` defaults to the first of ``to``'s month, ``to`` to today); at most MAX_DAYS."""
    today = today or datetime.now(ZoneInfo(tz)).date()
    preset = preset or ("custom" if first or last else "month")
    if preset not in PRESETS:
        raise ValidationProblem(_("Unknown period %(preset)s.", preset=preset), field="period")
    if preset == "month":
        first, last = today.replace(day=1), _month_end(today)
    elif preset == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        first = last.replace(day=1)
    elif preset == "quarter":
        first = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        last = _month_end(date(first.year, first.month + 2, 1))
    else:
        last = last or today
        first = first or last.replace(day=1)
    if first > last:
        raise ValidationProblem(_("The period ends before it starts."), field="from")
    if (last - first).days >= MAX_DAYS:
        raise ValidationProblem(_("A period is at most %(days)s days.", days=MAX_DAYS), field="from")
    return Period(first, last, tz, preset)


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - timedelta(days=1)


@dataclass
class Scores:
    """The counts the rates are made of (see the module docstring)."""

    received: int = 0
    closed: int = 0
    sign_due: int = 0
    signed_in_time: int = 0
    judged: int = 0
    answered_in_time: int = 0
    due: int = 0
    callbacks: int = 0
    satisfied: int = 0

    def add(self, other: Scores) -> None:
        for name in SCORE_NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def rates(self) -> dict[str, float | None]:
        return {
            "response_rate": _share(self.signed_in_time, self.sign_due),
            "on_time_rate": _share(self.answered_in_time, self.judged),
            "resolution_rate": _share(self.closed, self.due),
            "satisfaction_rate": _share(self.satisfied, self.callbacks),
        }

    def as_json(self) -> dict[str, Any]:
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, **self.rates}


SCORE_NAMES = tuple(f.name for f in fields(Scores))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def grade(rate: float | None) -> str:
    """good / fair / poor (or none) for the dashboard's colours."""
    if rate is None:
        return "none"
    return "good" if rate >= RATE_GOOD else "fair" if rate >= RATE_FAIR else "poor"


@dataclass
class Assessment:
    period: Period
    departments: list[dict[str, Any]] = field(default_factory=list)
    city: dict[str, Any] | None = None
    daily: list[dict[str, Any]] = field(default_factory=list)
    categories: list[dict[str, Any]] = field(default_factory=list)
    types: dict[str, int] = field(default_factory=dict)
    communities: list[dict[str, Any]] = field(default_factory=list)


def assess(
    session: Session, principal: Principal, period: Period, department: str | None = None
) -> Assessment:
    """The figures the caller may see: the operator every department and the city (or one department),
    a department's staff their own department(s)."""
    scope = _scope(session, principal, department)
    found = Assessment(period)
    by_department: dict[int | None, Scores] = {}
    by_category: dict[int, int] = {}
    by_type: dict[str, int] = {}
    for (organization_id, category_id, ticket_type), scores in _scores(session, period, scope).items():
        by_department.setdefault(organization_id, Scores()).add(scores)
        by_category[category_id] = by_category.get(category_id, 0) + scores.received
        by_type[ticket_type] = by_type.get(ticket_type, 0) + scores.received
    organizations = organizations_by_id(session, (key for key in by_department if key is not None))
    for organization_id, scores in sorted(
        by_department.items(), key=lambda pair: (-pair[1].received, pair[0] or 0)
    ):
        if organization_id is None:
            continue
        organization = organizations[organization_id]
        found.departments.append(
            {"department": organization.code, "name": organization.name, **scores.as_json()}
        )
    if scope is None:
        total = Scores()
        for scores in by_department.values():
            total.add(scores)
        waiting = by_department.get(None)
        found.city = {**total.as_json(), "undispatched": waiting.received if waiting else 0}
    found.daily, per_unit = _per_day_and_community(session, period, scope)
    found.categories = _branches(session, by_category)
    found.types = dict(sorted(by_type.items()))
    found.communities = _communities(session, per_unit)
    return found


def _scope(session: Session, principal: Principal, department: str | None) -> list[int] | None:
    """The organisation ids to assess (None: all, for the operator)."""
    if not principal.has(VIEW):
        raise Forbidden(_("Assessment figures are for departments and the operator."), slug="staff-only")
    if is_operator(principal):
        if department is None:
            return None
        return [get_organization_by_code(session, department).id]
    mine = sorted(principal.organizations(VIEW))
    if not mine:
        raise Forbidden(_("Assessment figures are for departments and the operator."), slug="staff-only")
    if department is not None:
        wanted = get_organization_by_code(session, department).id
        if wanted not in mine:
            raise Forbidden(_("You may only see your own department's figures."), slug="not-your-department")
        return [wanted]
    return mine


def _scores(
    session: Session, period: Period, scope: list[int] | None
) -> dict[tuple[int | None, int, str], Scores]:
    """The counts per (department, category, type): the rollup's closed tickets of the period's days plus
    one pass over the period's tickets not closed."""
    counts = score_counts(utcnow())
    rolled = select(
        ScoreRollup.organization_id,
        ScoreRollup.category_id,
        ScoreRollup.type,
        *(func.sum(getattr(ScoreRollup, name)) for name in counts),
    ).where(ScoreRollup.day >= period.first, ScoreRollup.day <= period.last)
    live = select(Ticket.organization_id, Ticket.category_id, Ticket.type, *counts.values()).where(
        *_live(scope), *_received(period.start, period.end)
    )
    if scope is not None:
        rolled = rolled.where(ScoreRollup.organization_id.in_(scope))
    totals: dict[tuple[int | None, int, str], list[int]] = {}
    nothing = [0] * len(counts)
    for statement in (
        rolled.group_by(ScoreRollup.organization_id, ScoreRollup.category_id, ScoreRollup.type),
        live.group_by(Ticket.organization_id, Ticket.category_id, Ticket.type),
    ):
        for organization_id, category_id, ticket_type, *values in session.execute(statement):
            key = (organization_id or None, category_id, ticket_type)  # the rollup's 0 is no department
            totals[key] = [int(a + b) for a, b in zip(totals.get(key, nothing), values, strict=True)]
    found = {key: Scores(**dict(zip(counts, values, strict=True))) for key, values in totals.items()}
    for (organization_id, _category, _type), scores in found.items():
        if organization_id is None:  # no department to respond: not in the response rate
            scores.sign_due = scores.signed_in_time = 0
    return found


def _live(scope: list[int] | None) -> list[ColumnElement[bool]]:
    """The tickets not closed (nor merged) of the scope; with a range of ``created_at``, ranges of
    ix_voice_ticket_assessment_live."""
    live: list[ColumnElement[bool]] = [Ticket.status.in_(LIVE_STATUSES)]
    return live if scope is None else [*live, Ticket.organization_id.in_(scope)]


def _received(start: datetime, end: datetime) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return Ticket.created_at >= start, Ticket.created_at < end


DAYS_PER_STATEMENT = 100


def _per_day_and_community(
    session: Session, period: Period, scope: list[int] | None
) -> tuple[list[dict[str, Any]], dict[int, list[int]]]:
    """Received and closed per local day, and per community (``[received, closed]`` by unit id). The closed
    tickets from the rollups; the others by an aggregate per community over each day's range, as one
    UNION ALL, each day summed from its communities (the tickets with none included, as the NULL group).
    Each member sorts only its day's tickets: one GROUP BY org_unit_id over the whole period would sort
    them all at once, several times slower on SQLite."""
    zone = ZoneInfo(period.tz)
    days = period.days()
    daily = {day: [0, 0] for day in days}
    per_unit: dict[int, list[int]] = {}
    rolled_days = select(ScoreRollup.day, func.sum(ScoreRollup.received), func.sum(ScoreRollup.closed)).where(
        ScoreRollup.day >= period.first, ScoreRollup.day <= period.last
    )
    # grouped in the key's order (day first), the units summed here: no sort of the period's rows
    rolled_units = select(CommunityRollup.org_unit_id, func.sum(CommunityRollup.closed)).where(
        CommunityRollup.day >= period.first, CommunityRollup.day <= period.last
    )
    if scope is not None:
        rolled_days = rolled_days.where(ScoreRollup.organization_id.in_(scope))
        rolled_units = rolled_units.where(CommunityRollup.organization_id.in_(scope))
    for day, received, closed in session.execute(rolled_days.group_by(ScoreRollup.day)):
        daily[day] = [int(received), int(closed)]
    for community, closed in session.execute(
        rolled_units.group_by(CommunityRollup.day, CommunityRollup.org_unit_id)
    ):
        unit = per_unit.setdefault(community, [0, 0])
        unit[0] += int(closed)  # received, and closed: the rollup holds closed tickets only
        unit[1] += int(closed)
    live = _live(scope)  # built once: dozens of days would build it again each
    for first in range(0, len(days), DAYS_PER_STATEMENT):
        parts = []
        for index in range(first, min(first + DAYS_PER_STATEMENT, len(days))):
            start = datetime.combine(days[index], time(), zone)
            end = datetime.combine(days[index] + timedelta(days=1), time(), zone)
            parts.append(
                select(literal(index), Ticket.org_unit_id, func.count())
                .where(*live, *_received(start, end))
                .group_by(Ticket.org_unit_id)
            )
        for day_index, unit_id, received in session.execute(union_all(*parts)):
            daily[days[int(day_index)]][0] += int(received)
            if unit_id is not None:
                per_unit.setdefault(int(unit_id), [0, 0])[0] += int(received)
    series = [
        {"day": day.isoformat(), "received": received, "closed": closed}
        for day, (received, closed) in daily.items()
    ]
    return series, per_unit


def _branches(session: Session, by_category: dict[int, int]) -> list[dict[str, Any]]:
    """Received per top-level branch of the category tree, most first."""
    tree = {row.id: row for row in session.scalars(select(Category))}
    by_code = {row.code: row for row in tree.values()}
    branches: dict[str, int] = {}
    for category_id, count in by_category.items():
        top = tree[category_id].code.split(".")[0]
        branches[top] = branches.get(top, 0) + count
    ordered = sorted(branches.items(), key=lambda pair: (-pair[1], pair[0]))
    return [
        {
            "code": code,
            "name": by_code[code].name_zh if code in by_code else code,
            "name_en": by_code[code].name_en if code in by_code else code,
            "received": count,
        }
        for code, count in ordered
    ]


def _communities(session: Session, per_unit: dict[int, list[int]]) -> list[dict[str, Any]]:
    """Received and closed per community, at the community's centre, most first."""
    places = []
    for unit_id, (received, closed) in per_unit.items():
        unit = get_unit(session, unit_id)
        centre = _centre(unit.lon, unit.lat, unit.boundary)
        if centre is None:
            continue
        places.append(
            {
                "community": unit.code,
                "name": unit.name,
                "lon": centre[0],
                "lat": centre[1],
                "received": int(received),
                "closed": int(closed or 0),
            }
        )
    return sorted(places, key=lambda place: (-place["received"], place["community"]))


def _centre(
    lon: float | None, lat: float | None, boundary: dict[str, Any] | None
) -> tuple[float, float] | None:
    """The unit's own point, else the middle of its outline's bounding box."""
    if lon is not None and lat is not None:
        return lon, lat
    if not boundary:
        return None
    points: list[list[float]] = []
    rings = boundary.get("coordinates", [])
    polygons = rings if boundary.get("type") == "MultiPolygon" else [rings]
    for polygon in polygons:
        for ring in polygon:
            points.extend(ring)
    if not points:
        return None
    lons, lats = [point[0] for point in points], [point[1] for point in points]
    return round((min(lons) + max(lons)) / 2, 6), round((min(lats) + max(lats)) / 2, 6)


def as_json(found: Assessment) -> dict[str, Any]:
    return {
        "from": found.period.first.isoformat(),
        "to": found.period.last.isoformat(),
        "period": found.period.preset,
        "timezone": found.period.tz,
        "departments": found.departments,
        "city": found.city,
        "daily": found.daily,
        "categories": found.categories,
        "types": found.types,
        "communities": found.communities,
    }
