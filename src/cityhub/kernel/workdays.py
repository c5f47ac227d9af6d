"""Working-day arithmetic on the Chinese statutory calendar (``chinese_calendar``), for deadlines.

Holidays and adjusted working days (调休, e.g. a Sunday worked before National Day) follow the State
Council's yearly notice as packaged by ``chinesecalendar``; a year the package does not know yet raises
:class:`CalendarNotCoveredError` instead of silently treating it as a plain Monday-to-Friday year.

Conventions: ``add_workdays(start, n)`` counts working days *after* the start day (a request received on
a Friday evening with a 1-working-day limit is due the next working day), and
``workdays_between(a, b)`` is its inverse: ``workdays_between(a, add_workdays(a, n)) == n``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from cityhub.kernel.errors import Problem
from cityhub.kernel.i18n import gettext as _

DEFAULT_TZ = "Asia/Shanghai"
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class DaySpan:
    """Whole days from ``first`` to ``last`` in the zone ``tz``: the instants [start, end)."""

    first: date
    last: date
    tz: str = "UTC"

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), ZoneInfo(self.tz))

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + ONE_DAY, time(), ZoneInfo(self.tz))

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


class CalendarNotCoveredError(Problem, ValueError):
    """The holiday calendar has no data for the year asked about (upgrade ``chinesecalendar``)."""

    status = 422
    slug = "calendar-not-covered"


def is_workday(day: date | datetime, tz: str = DEFAULT_TZ) -> bool:
    """Whether ``day`` (an aware datetime is taken in ``tz``) is a working day in mainland China."""
    return _is_workday(_local_date(day, tz))


@functools.lru_cache(maxsize=8192)  # the calendar is fixed data; deadlines walk the same days again and again
def _is_workday(local: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(local))
    except NotImplementedError:
        raise CalendarNotCoveredError(
            _("No holiday calendar for %(year)s; working days cannot be computed.", year=local.year)
        ) from None


def add_workdays(start: date | datetime, n: int, tz: str = DEFAULT_TZ) -> date:
    """The day that is the ``n``-th working day after ``start``'s day (before it when ``n`` < 0)."""
    day = _local_date(start, tz)
    step = ONE_DAY if n >= 0 else -ONE_DAY
    remaining = abs(n)
    while remaining:
        day += step
        if is_workday(day):
            remaining -= 1
    return day


def workday_deadline(start: date | datetime, n: int, tz: str = DEFAULT_TZ) -> datetime:
    """The instant a deadline of ``n`` working days passes: midnight after the due day, in ``tz``.

    Aware, so it can be stored in a ``UTCDateTime`` column and compared with ``utcnow()``.
    """
    due = add_workdays(start, n, tz)
    return datetime.combine(due + ONE_DAY, time.min, tzinfo=ZoneInfo(tz))


def workdays_between(a: date | datetime, b: date | datetime, tz: str = DEFAULT_TZ) -> int:
    """Working days after ``a``'s day up to and including ``b``'s day; negative when ``b`` is earlier."""
    first, last = _local_date(a, tz), _local_date(b, tz)
    if last < first:
        return -workdays_between(b, a, tz)
    count = 0
    day = first
    while day < last:
        day += ONE_DAY
        count += is_workday(day)
    return count


def _local_date(value: date | datetime, tz: str) -> date:
    """The calendar day of ``value`` where the deadline applies; naive datetimes are refused."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: give an aware datetime or a date")
        return value.astimezone(ZoneInfo(tz)).date()
    return value
