"""The temporal query of a request (GS CIM 009 clause 4.11): which instances, by which time property, and how
they are aggregated.

``timerel=before`` keeps instances strictly before ``timeAt``, ``after`` strictly after it, ``between`` from
``timeAt`` (included) to ``endTimeAt`` (excluded). Without ``timerel`` the whole history is meant.
``timeproperty=createdAt`` and ``modifiedAt`` both read the time the instance was recorded (a history row is
written when its attribute was created or modified, so both are that moment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from cityhub.domains.context.errors import BadRequestData
from cityhub.domains.context.store.document import parse_datetime


class TimeRel(StrEnum):
    BEFORE = "before"
    AFTER = "after"
    BETWEEN = "between"


class TimeProperty(StrEnum):
    OBSERVED_AT = "observedAt"
    CREATED_AT = "createdAt"
    MODIFIED_AT = "modifiedAt"


_E = TypeVar("_E", bound=StrEnum)

AGGREGATION_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")

# P[n]W, or P[n]Y[n]M[n]DT[n]H[n]M[n]S with at least one element (seconds may have a fraction).
_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W|(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?)$"
)


@dataclass(frozen=True)
class TemporalQuery:
    timerel: TimeRel | None = None
    time_at: datetime | None = None
    end_time_at: datetime | None = None
    time_property: TimeProperty = TimeProperty.OBSERVED_AT
    last_n: int | None = None

    @property
    def lower(self) -> datetime | None:
        """The exclusive (``after``) or inclusive (``between``) lower bound."""
        return self.time_at if self.timerel in (TimeRel.AFTER, TimeRel.BETWEEN) else None

    @property
    def upper(self) -> datetime | None:
        """The exclusive upper bound."""
        if self.timerel is TimeRel.BEFORE:
            return self.time_at
        return self.end_time_at if self.timerel is TimeRel.BETWEEN else None


@dataclass(frozen=True)
class Aggregation:
    """``aggrMethods`` and ``aggrPeriodDuration`` (None: one period spanning the whole range)."""

    methods: tuple[str, ...]
    period: timedelta | None


def parse_temporal_query(
    timerel: str | None,
    time_at: str | None,
    end_time_at: str | None,
    time_property: str | None,
    last_n: int | None,
) -> TemporalQuery:
    relation = _choice(TimeRel, timerel, "timerel") if timerel else None
    if relation is None and (time_at or end_time_at):
        raise BadRequestData("timeAt and endTimeAt need timerel (before, after or between)")
    start = parse_datetime(time_at, "timeAt") if time_at else None
    if relation is not None and start is None:
        raise BadRequestData(f"timerel={relation} needs timeAt")
    end = None
    if relation is TimeRel.BETWEEN:
        if not end_time_at:
            raise BadRequestData("timerel=between needs endTimeAt")
        end = parse_datetime(end_time_at, "endTimeAt")
        if start is not None and end <= start:
            raise BadRequestData("endTimeAt must be later than timeAt")
    elif end_time_at:
        raise BadRequestData("endTimeAt is only used with timerel=between")
    if last_n is not None and last_n < 1:
        raise BadRequestData("lastN must be a positive integer")
    prop = _choice(TimeProperty, time_property, "timeproperty") if time_property else TimeProperty.OBSERVED_AT
    return TemporalQuery(relation, start, end, prop, last_n)


def _choice(enum: type[_E], value: str, what: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(item.value for item in enum)
        raise BadRequestData(f"{what} must be one of {allowed}, not {value!r}") from None


def parse_aggregation(methods: list[str], period: str | None) -> Aggregation:
    if not methods:
        raise BadRequestData("aggregated values need aggrMethods (" + ", ".join(AGGREGATION_METHODS) + ")")
    unknown = [method for method in methods if method not in AGGREGATION_METHODS]
    if unknown:
        raise BadRequestData(f"unknown aggrMethods: {', '.join(unknown)}")
    duration = parse_duration(period) if period else None
    return Aggregation(tuple(dict.fromkeys(methods)), duration or None)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration of fixed length (weeks, days, hours, minutes, seconds); PT0S is zero.

    Calendar years and months have no fixed length and are refused rather than approximated.
    """
    match = _DURATION.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise BadRequestData(f"aggrPeriodDuration is not an ISO 8601 duration: {text!r}")
    parts = match.groupdict()
    if (parts["years"] and int(parts["years"])) or (parts["months"] and int(parts["months"])):
        raise BadRequestData("aggrPeriodDuration in years or months is not supported; use weeks or days")
    return timedelta(
        weeks=int(parts["weeks"] or 0),
        days=int(parts["days"] or 0),
        hours=int(parts["hours"] or 0),
        minutes=int(parts["minutes"] or 0),
        seconds=float(parts["seconds"] or 0),
    )
