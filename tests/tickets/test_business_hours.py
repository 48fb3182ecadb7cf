"""Business minutes on the Japanese calendar with opening hours, pinned with dates worked out by hand.

2026: 1/12 (Mon) 成人の日; Golden Week 5/2 Sat, 5/3 Sun 憲法記念日, 5/4 みどりの日, 5/5 こどもの日,
5/6 振替休日; bank closure 12/31–1/3. Queue hours 10:00–18:00 JST (480 minutes a day).
"""

import datetime as dt

import pytest

from support_portal.core.business_days import BusinessCalendar, CalendarRangeError
from support_portal.tickets.business_hours import (
    OpeningHours,
    add_business_minutes,
    business_minutes_between,
    business_time_between,
)
from tests.tickets.factories import JST, jst


@pytest.fixture(scope="module")
def calendar() -> BusinessCalendar:
    return BusinessCalendar(first_year=2025, last_year=2027)


@pytest.fixture(scope="module")
def weekdays(calendar: BusinessCalendar) -> OpeningHours:
    return OpeningHours(calendar=calendar)


@pytest.mark.parametrize(
    ("start", "minutes", "expected", "why"),
    [
        (jst(2026, 1, 15, 10), 60, jst(2026, 1, 15, 11), "inside the day"),
        (jst(2026, 1, 15, 17), 60, jst(2026, 1, 15, 18), "ends exactly at closing: 18:00, not next morning"),
        (jst(2026, 1, 15, 17), 61, jst(2026, 1, 16, 10, 1), "one minute past closing rolls to next morning"),
        (jst(2026, 1, 14, 20), 60, jst(2026, 1, 15, 11), "evening: the clock starts at next opening"),
        (jst(2026, 1, 15, 8), 30, jst(2026, 1, 15, 10, 30), "early morning: starts at 10:00"),
        (jst(2026, 1, 9, 17), 120, jst(2026, 1, 13, 11), "Fri evening over the weekend and 成人の日 Monday"),
        (jst(2026, 1, 10, 12), 60, jst(2026, 1, 13, 11), "asked on Saturday"),
        (jst(2026, 4, 30, 17), 120, jst(2026, 5, 1, 11), "5/1 is a business day"),
        (jst(2026, 5, 1, 17), 120, jst(2026, 5, 7, 11), "Golden Week: 5/2–5/6 closed"),
        (jst(2026, 12, 30, 17), 120, jst(2027, 1, 4, 11), "bank closure 12/31–1/3"),
        (jst(2026, 1, 19, 10), 1440, jst(2026, 1, 21, 18), "three full days of 480 minutes"),
        (jst(2026, 1, 15, 13, 7), 0, jst(2026, 1, 15, 13, 7), "adding zero is the start itself"),
        (jst(2026, 1, 15, 20), 0, jst(2026, 1, 15, 20), "adding zero outside hours too"),
    ],
)
def test_add_business_minutes_weekdays(
    weekdays: OpeningHours, start: dt.datetime, minutes: int, expected: dt.datetime, why: str
) -> None:
    assert add_business_minutes(start, minutes, weekdays) == expected, why


def test_utc_input_is_reasoned_in_jst(weekdays: OpeningHours) -> None:
    # 2026-01-15T00:30Z is 09:30 JST (before opening); 2026-01-15T09:30Z is 18:30 JST (after closing).
    assert add_business_minutes(dt.datetime(2026, 1, 15, 0, 30, tzinfo=dt.UTC), 30, weekdays) == jst(
        2026, 1, 15, 10, 30
    )
    assert add_business_minutes(dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC), 30, weekdays) == jst(
        2026, 1, 16, 10, 30
    )
    # The result is expressed in JST.
    assert add_business_minutes(jst(2026, 1, 15, 10), 1, weekdays).tzinfo == JST


def test_a_company_closed_day_is_skipped() -> None:
    hours = OpeningHours(
        calendar=BusinessCalendar(first_year=2026, last_year=2026, company_closed_days=[dt.date(2026, 1, 16)])
    )
    assert add_business_minutes(jst(2026, 1, 15, 17), 120, hours) == jst(2026, 1, 19, 11)


def test_open_weekends_opens_saturday_and_sunday_but_not_a_weekday_holiday(calendar: BusinessCalendar) -> None:
    hours = OpeningHours(calendar=calendar, open_weekends=True)
    assert add_business_minutes(jst(2026, 1, 9, 17), 120, hours) == jst(2026, 1, 10, 11)
    assert add_business_minutes(jst(2026, 1, 11, 17), 120, hours) == jst(2026, 1, 13, 11)  # Mon 1/12 holiday


def test_a_surge_opens_every_day_of_its_range_including_holidays(calendar: BusinessCalendar) -> None:
    hours = OpeningHours(calendar=calendar, surges=[(dt.date(2026, 1, 10), dt.date(2026, 1, 12))])
    assert add_business_minutes(jst(2026, 1, 9, 17), 120, hours) == jst(2026, 1, 10, 11)
    assert add_business_minutes(jst(2026, 1, 11, 17), 120, hours) == jst(2026, 1, 12, 11)  # 成人の日 open
    # Outside the surge the next weekend is closed again.
    assert add_business_minutes(jst(2026, 1, 16, 17), 120, hours) == jst(2026, 1, 19, 11)
    assert business_minutes_between(jst(2026, 1, 9, 18), jst(2026, 1, 13, 10), hours) == 3 * 480


def test_other_opening_hours(calendar: BusinessCalendar) -> None:
    hours = OpeningHours(calendar=calendar, opens_at=dt.time(9, 0), closes_at=dt.time(17, 30))
    assert add_business_minutes(jst(2026, 1, 15, 17), 60, hours) == jst(2026, 1, 16, 9, 30)
    with pytest.raises(ValueError, match="after opens_at"):
        OpeningHours(calendar=calendar, opens_at=dt.time(18, 0), closes_at=dt.time(10, 0))


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (jst(2026, 1, 15, 10, 30), jst(2026, 1, 15, 12), 90),
        (jst(2026, 1, 14, 18), jst(2026, 1, 15, 10), 0),  # overnight
        (jst(2026, 1, 14, 17), jst(2026, 1, 15, 11), 120),
        (jst(2026, 1, 9, 17), jst(2026, 1, 13, 11), 120),  # weekend + holiday
        (jst(2026, 1, 10, 0), jst(2026, 1, 12, 23), 0),  # Sat–Mon holiday
        (jst(2026, 5, 1, 0), jst(2026, 5, 8, 0), 2 * 480),  # Golden Week: 5/1 and 5/7 only
        (jst(2026, 1, 13, 11), jst(2026, 1, 9, 17), -120),  # reversed is negative
        (jst(2026, 1, 15, 10), jst(2026, 1, 15, 10), 0),
    ],
)
def test_business_minutes_between(weekdays: OpeningHours, start: dt.datetime, end: dt.datetime, expected: int) -> None:
    assert business_minutes_between(start, end, weekdays) == expected


def test_seconds_are_kept_and_minutes_truncate(weekdays: OpeningHours) -> None:
    start, end = jst(2026, 1, 15, 10), jst(2026, 1, 15, 10, 1) + dt.timedelta(seconds=59)
    assert business_time_between(start, end, weekdays) == dt.timedelta(seconds=119)
    assert business_minutes_between(start, end, weekdays) == 1


@pytest.mark.parametrize("minutes", [1, 59, 480, 481, 2000, 10_000])
@pytest.mark.parametrize(
    "start",
    [jst(2026, 1, 9, 17, 45), jst(2026, 4, 28, 9), jst(2026, 5, 1, 12), jst(2026, 12, 29, 23), jst(2026, 1, 10, 12)],
)
def test_adding_then_counting_gives_the_minutes_back(weekdays: OpeningHours, start: dt.datetime, minutes: int) -> None:
    assert business_minutes_between(start, add_business_minutes(start, minutes, weekdays), weekdays) == minutes


def test_refusals(weekdays: OpeningHours) -> None:
    with pytest.raises(ValueError, match="naive"):
        add_business_minutes(dt.datetime(2026, 1, 15, 10), 1, weekdays)
    with pytest.raises(ValueError, match="naive"):
        business_minutes_between(jst(2026, 1, 15, 10), dt.datetime(2026, 1, 16), weekdays)
    with pytest.raises(ValueError, match=">= 0"):
        add_business_minutes(jst(2026, 1, 15, 10), -1, weekdays)
    with pytest.raises(CalendarRangeError):
        add_business_minutes(jst(2027, 12, 30, 10), 480 * 5, weekdays)
    with pytest.raises(CalendarRangeError):
        add_business_minutes(jst(2030, 1, 7, 10), 1, weekdays)
