"""The business-day calendar, pinned with exact dates worked out by hand from the Japanese calendar."""

from datetime import UTC, date, datetime, timedelta

import pytest

from support_portal.core.business_days import (
    JST,
    BusinessCalendar,
    CalendarRangeError,
    business_calendar,
    jst_date,
)
from support_portal.core.models import ClosedDay


@pytest.fixture(scope="module")
def calendar() -> BusinessCalendar:
    return BusinessCalendar(first_year=2020, last_year=2030)


def d(text: str) -> date:
    return date.fromisoformat(text)


# --- which days are business days ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "why"),
    [
        # Golden Week 2025: 4/29 Showa Day; 5/3 Sat, 5/4 Sun, 5/5 Mon, 5/6 Tue substitute for 5/4.
        ("2025-04-29", "昭和の日"),
        ("2025-05-05", "こどもの日"),
        ("2025-05-06", "振替休日 for みどりの日 on a Sunday"),
        # Golden Week 2026: 5/3 Sun, 5/4 Mon, 5/5 Tue, 5/6 Wed substitute for 5/3.
        ("2026-04-29", "昭和の日"),
        ("2026-05-04", "みどりの日"),
        ("2026-05-05", "こどもの日"),
        ("2026-05-06", "振替休日 for 憲法記念日 on a Sunday"),
        # Year-end bank closure around 2025/2026: 12/31 Wed, 1/1 Thu, 1/2 Fri.
        ("2025-12-31", "bank closure"),
        ("2026-01-01", "元日"),
        ("2026-01-02", "bank closure"),
        ("2026-12-31", "bank closure"),
        ("2029-01-03", "bank closure on a Wednesday"),
        # Citizens' holiday: a weekday squeezed between two holidays (敬老の日 9/21 and 秋分の日 9/23).
        ("2026-09-22", "国民の休日"),
        # Substitute holidays of 2024.
        ("2024-02-12", "振替休日 for 建国記念の日"),
        ("2024-05-06", "振替休日 for こどもの日"),
        ("2024-08-12", "振替休日 for 山の日"),
        ("2024-09-23", "振替休日 for 秋分の日"),
        ("2024-11-04", "振替休日 for 文化の日"),
        ("2025-02-24", "振替休日 for 天皇誕生日"),
        ("2025-11-24", "振替休日 for 勤労感謝の日"),
        # Olympic years moved holidays by special law.
        ("2020-07-23", "海の日 (moved, 2020)"),
        ("2020-07-24", "スポーツの日 (moved, 2020)"),
        ("2020-08-10", "山の日 (moved, 2020)"),
        ("2021-07-22", "海の日 (moved, 2021)"),
        ("2021-07-23", "スポーツの日 (moved, 2021)"),
        ("2021-08-09", "振替休日 for 山の日 (moved, 2021)"),
        ("2030-01-14", "成人の日 2030"),
        # Weekends.
        ("2026-05-02", "Saturday"),
        ("2026-05-03", "Sunday"),
    ],
)
def test_non_business_days(calendar: BusinessCalendar, day: str, why: str) -> None:
    assert not calendar.is_business_day(d(day)), why


@pytest.mark.parametrize(
    ("day", "why"),
    [
        ("2025-12-30", "last working day before the closure"),
        ("2026-01-05", "first working day after the closure (Monday)"),
        ("2025-05-02", "Friday inside Golden Week 2025"),
        ("2026-05-01", "Friday inside Golden Week 2026"),
        ("2026-05-07", "first working day after Golden Week 2026"),
        ("2020-10-12", "Sports Day's usual date, moved away in 2020"),
        ("2021-10-11", "Sports Day's usual date, moved away in 2021"),
        ("2021-08-11", "Mountain Day's usual date, moved away in 2021"),
        ("2026-09-24", "Thursday after the 2026 Silver Week"),
        ("2030-01-04", "Friday after the 2030 closure"),
    ],
)
def test_business_days(calendar: BusinessCalendar, day: str, why: str) -> None:
    assert calendar.is_business_day(d(day)), why


def test_every_year_2020_to_2030_has_the_closure_and_its_national_holidays(calendar: BusinessCalendar) -> None:
    for year in range(2020, 2031):
        for month, day in ((12, 31), (1, 1), (1, 2), (1, 3)):
            assert not calendar.is_business_day(date(year, month, day))
        # 建国記念の日 (2/11) and 文化の日 (11/3) are fixed-date holidays every year.
        assert not calendar.is_business_day(date(year, 2, 11))
        assert not calendar.is_business_day(date(year, 11, 3))


def test_may_2026_has_18_business_days(calendar: BusinessCalendar) -> None:
    # 21 weekdays minus 5/4, 5/5, 5/6.
    assert calendar.business_days_between(d("2026-04-30"), d("2026-05-31")) == 18


# --- counting forward -----------------------------------------------------------------------------


def test_within_3_business_days_across_golden_week_2026(calendar: BusinessCalendar) -> None:
    # Friday 5/1: 5/2-5/6 are weekend and holidays, so 5/7 (1), 5/8 (2), 5/11 (3).
    assert calendar.add_business_days(d("2026-05-01"), 3) == d("2026-05-11")


def test_within_3_business_days_across_golden_week_2025(calendar: BusinessCalendar) -> None:
    # Wednesday 4/30: 5/1 (1), 5/2 (2), then 5/3-5/6 closed, 5/7 (3).
    assert calendar.add_business_days(d("2025-04-30"), 3) == d("2025-05-07")


def test_the_request_day_never_counts_even_when_it_is_a_business_day(calendar: BusinessCalendar) -> None:
    # Monday 2026-05-11: Tuesday (1), Wednesday (2), Thursday (3).
    assert calendar.add_business_days(d("2026-05-11"), 3) == d("2026-05-14")
    assert calendar.add_business_days(d("2026-05-11"), 1) == d("2026-05-12")


def test_within_3_business_days_across_the_year_end_closure(calendar: BusinessCalendar) -> None:
    # Friday 2025-12-26: 12/29 Mon (1), 12/30 Tue (2), then 12/31-1/4 closed, 2026-01-05 Mon (3).
    assert calendar.add_business_days(d("2025-12-26"), 3) == d("2026-01-05")


def test_a_request_on_a_holiday_counts_from_the_next_business_day(calendar: BusinessCalendar) -> None:
    # Sunday 2026-05-03 (holiday on a weekend): 5/7 (1), 5/8 (2), 5/11 (3) - same as from Friday 5/1.
    assert calendar.add_business_days(d("2026-05-03"), 3) == d("2026-05-11")


def test_zero_business_days_means_that_day_or_the_next_business_day(calendar: BusinessCalendar) -> None:
    assert calendar.add_business_days(d("2026-05-01"), 0) == d("2026-05-01")
    assert calendar.add_business_days(d("2026-05-02"), 0) == d("2026-05-07")


def test_next_business_day(calendar: BusinessCalendar) -> None:
    assert calendar.next_business_day(d("2025-12-30")) == d("2026-01-05")
    assert calendar.next_business_day(d("2026-09-18")) == d("2026-09-24")  # Silver Week 9/19-9/23
    assert calendar.next_business_day(d("2024-02-09")) == d("2024-02-13")  # 2/12 substitute holiday
    assert calendar.next_business_day(d("2026-05-07")) == d("2026-05-08")


def test_negative_counts_are_refused(calendar: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match="n must be >= 0"):
        calendar.add_business_days(d("2026-05-01"), -1)


def test_add_business_days_agrees_with_stepping_day_by_day(calendar: BusinessCalendar) -> None:
    # The binary-search implementation against the obvious loop, for every day of 2025-2026.
    day = d("2025-01-01")
    while day <= d("2026-12-31"):
        for n in range(6):
            expected = day
            if n == 0:
                while not calendar.is_business_day(expected):
                    expected += timedelta(days=1)
            for _ in range(n):
                expected += timedelta(days=1)
                while not calendar.is_business_day(expected):
                    expected += timedelta(days=1)
            assert calendar.add_business_days(day, n) == expected, (day, n)
            if n:
                assert calendar.business_days_between(day, expected) == n, (day, n)
        day += timedelta(days=1)


def test_business_days_between(calendar: BusinessCalendar) -> None:
    assert calendar.business_days_between(d("2026-05-01"), d("2026-05-11")) == 3
    assert calendar.business_days_between(d("2026-05-11"), d("2026-05-01")) == -3
    assert calendar.business_days_between(d("2026-05-01"), d("2026-05-01")) == 0
    # Only closed days in between.
    assert calendar.business_days_between(d("2026-05-01"), d("2026-05-06")) == 0
    assert calendar.business_days_between(d("2025-12-30"), d("2026-01-05")) == 1


# --- instants and deadlines ----------------------------------------------------------------------


def test_due_at_is_the_end_of_the_due_day_in_jst(calendar: BusinessCalendar) -> None:
    requested_at = datetime(2026, 5, 1, 10, 0, tzinfo=JST)
    due = calendar.due_at(requested_at, 3)
    assert due == datetime(2026, 5, 11, 23, 59, 59, 999999, tzinfo=JST)
    assert due == datetime(2026, 5, 11, 14, 59, 59, 999999, tzinfo=UTC)
    assert due.utcoffset() == timedelta(hours=9)


def test_the_day_of_an_instant_is_its_jst_day_not_its_utc_day(calendar: BusinessCalendar) -> None:
    # 2026-04-30T15:30Z is 2026-05-01 00:30 JST: a Friday request -> 5/7, 5/8, 5/11.
    just_after_midnight_jst = datetime(2026, 4, 30, 15, 30, tzinfo=UTC)
    assert jst_date(just_after_midnight_jst) == d("2026-05-01")
    assert calendar.due_at(just_after_midnight_jst, 3) == datetime(2026, 5, 11, 23, 59, 59, 999999, tzinfo=JST)
    # One hour earlier is Thursday 4/30 23:30 JST: 5/1 (1), 5/7 (2), 5/8 (3).
    late_thursday_jst = datetime(2026, 4, 30, 14, 30, tzinfo=UTC)
    assert calendar.due_date(late_thursday_jst, 3) == d("2026-05-08")
    assert calendar.due_at(late_thursday_jst, 3) == datetime(2026, 5, 8, 14, 59, 59, 999999, tzinfo=UTC)


def test_a_request_at_23_30_jst_still_belongs_to_that_day(calendar: BusinessCalendar) -> None:
    assert calendar.due_date(datetime(2026, 5, 1, 23, 30, tzinfo=JST), 3) == d("2026-05-11")


def test_naive_datetimes_are_refused(calendar: BusinessCalendar) -> None:
    # A naive datetime is ambiguous (UTC? JST?), so the calendar refuses to guess.
    with pytest.raises(ValueError, match="naive"):
        calendar.due_at(datetime(2026, 5, 1, 10, 0), 3)
    with pytest.raises(ValueError, match="naive"):
        jst_date(datetime(2026, 5, 1, 10, 0))


def test_days_late_counts_calendar_days_after_the_due_date() -> None:
    due = d("2026-05-11")
    assert BusinessCalendar.days_late(due, d("2026-05-08")) == 0
    assert BusinessCalendar.days_late(due, due) == 0
    assert BusinessCalendar.days_late(due, d("2026-05-12")) == 1
    # Weekends and holidays count: interest runs on calendar days.
    assert BusinessCalendar.days_late(due, d("2026-05-18")) == 7


# --- range ---------------------------------------------------------------------------------------


def test_dates_outside_the_loaded_years_are_refused(calendar: BusinessCalendar) -> None:
    with pytest.raises(CalendarRangeError):
        calendar.is_business_day(d("2019-12-31"))
    with pytest.raises(CalendarRangeError):
        calendar.is_business_day(d("2031-01-06"))
    # The question is inside the range but the answer would fall after it.
    with pytest.raises(CalendarRangeError):
        calendar.add_business_days(d("2030-12-27"), 3)


# --- the company's own closed days (database) ----------------------------------------------------


@pytest.mark.django_db
def test_a_company_closed_day_is_not_a_business_day(django_assert_num_queries) -> None:
    ClosedDay.objects.create(date=d("2026-05-07"), reason="社内システム移行")
    with django_assert_num_queries(1):
        loaded = business_calendar(first_year=2026, last_year=2026)
    assert not loaded.is_business_day(d("2026-05-07"))
    # Friday 5/1: 5/7 is now closed too, so 5/8 (1), 5/11 (2), 5/12 (3).
    assert loaded.add_business_days(d("2026-05-01"), 3) == d("2026-05-12")
    assert loaded.due_at(datetime(2026, 5, 1, 9, 0, tzinfo=JST), 3) == datetime(
        2026, 5, 12, 23, 59, 59, 999999, tzinfo=JST
    )


@pytest.mark.django_db
def test_the_default_calendar_covers_2020_to_five_years_ahead() -> None:
    loaded = business_calendar()
    assert loaded.first_day == d("2020-01-01")
    assert loaded.last_day >= d("2030-12-31")
    assert loaded.add_business_days(d("2026-05-01"), 3) == d("2026-05-11")
