"""Working days across the 2025 National Day holiday (Oct 1-8 off; Sun Sep 28 and Sat Oct 11 worked)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from cityhub.kernel.errors import Problem
from cityhub.kernel.workdays import (
    CalendarNotCoveredError,
    add_workdays,
    is_workday,
    workday_deadline,
    workdays_between,
)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 9, 26), True),  # Friday
        (date(2025, 9, 27), False),  # Saturday
        (date(2025, 9, 28), True),  # Sunday, adjusted working day
        (date(2025, 10, 1), False),
        (date(2025, 10, 8), False),  # Wednesday, still holiday
        (date(2025, 10, 9), True),
        (date(2025, 10, 11), True),  # Saturday, adjusted working day
        (date(2025, 10, 12), False),
    ],
)
def test_is_workday_follows_the_adjusted_calendar(day: date, working: bool) -> None:
    assert is_workday(day) is working


@pytest.mark.parametrize(
    ("start", "n", "due"),
    [
        (date(2025, 9, 26), 1, date(2025, 9, 28)),  # Friday + 1 lands on the worked Sunday
        (date(2025, 9, 28), 1, date(2025, 9, 29)),
        (date(2025, 9, 30), 1, date(2025, 10, 9)),  # the whole holiday is skipped
        (date(2025, 10, 3), 1, date(2025, 10, 9)),  # a request made during the holiday
        (date(2025, 9, 30), 3, date(2025, 10, 11)),  # 9th, 10th, and the worked Saturday
        (date(2025, 9, 25), 5, date(2025, 10, 9)),  # 26, 28, 29, 30, 9
        (date(2025, 9, 30), 0, date(2025, 9, 30)),
        (date(2025, 10, 9), -1, date(2025, 9, 30)),
    ],
)
def test_add_workdays_counts_after_the_start_day(start: date, n: int, due: date) -> None:
    assert add_workdays(start, n) == due
    assert workdays_between(start, due) == n


def test_datetimes_are_taken_in_the_zone_of_the_deadline() -> None:
    evening_utc = datetime(2025, 9, 30, 17, 0, tzinfo=UTC)  # already Oct 1 in Shanghai
    assert add_workdays(evening_utc, 1) == date(2025, 10, 9)
    assert add_workdays(evening_utc, 1, tz="UTC") == date(2025, 10, 9)
    assert add_workdays(datetime(2025, 9, 26, 9, 0, tzinfo=UTC), 1, tz="UTC") == date(2025, 9, 28)
    saturday_evening_in_seattle = datetime(2025, 9, 27, 20, 0, tzinfo=timezone(timedelta(hours=-8)))
    assert is_workday(saturday_evening_in_seattle) is True  # already the worked Sunday in Shanghai
    with pytest.raises(ValueError, match="naive"):
        add_workdays(datetime(2025, 9, 30, 9, 0), 1)


def test_workday_deadline_is_midnight_after_the_due_day() -> None:
    deadline = workday_deadline(datetime(2025, 9, 30, 10, 0, tzinfo=UTC), 1)
    assert deadline.astimezone(UTC) == datetime(2025, 10, 9, 16, 0, tzinfo=UTC)  # Oct 10 00:00 +08


def test_workdays_between_is_antisymmetric_and_counts_the_holiday_out() -> None:
    assert workdays_between(date(2025, 9, 26), date(2025, 10, 12)) == 6  # 28, 29, 30, 9, 10, 11
    assert workdays_between(date(2025, 10, 12), date(2025, 9, 26)) == -6
    assert workdays_between(date(2025, 10, 1), date(2025, 10, 8)) == 0


def test_years_without_calendar_data_are_refused_clearly() -> None:
    with pytest.raises(CalendarNotCoveredError) as raised:
        add_workdays(date(2099, 1, 1), 1)
    assert isinstance(raised.value, Problem)
    assert isinstance(raised.value, ValueError)
    assert raised.value.status == 422
    assert "2099" in str(raised.value)
