"""The business-day calendar (営業日) behind every "within N business days" rule.

A business day is a Monday-Friday that is not:
- a Japanese national holiday, including substitute holidays (振替休日) and citizens' holidays
  (国民の休日) — taken from the maintained `holidays` package, never from a hand-kept list;
- a day of the bank year-end closure: 12/31, 1/1, 1/2, 1/3;
- one of the company's own closed days (`core.ClosedDay`).

Conventions, used the same way everywhere:
- Dates are JST calendar dates. An instant is converted to its JST date before anything is counted,
  so 2026-04-30T15:30Z counts as 2026-05-01. Naive datetimes are refused (ValueError).
- "Within N business days of X" = by the end of the N-th business day *after* the JST day of X. X's
  own day never counts, even when it is a business day.
- `add_business_days(d, 0)` is d when d is a business day, else the next business day ("on or after").
- The end of a due day is the inclusive instant 23:59:59.999999 JST (the SPEC's "until D 23:59:59
  JST"); work is on time when `done_at <= due_at`. PostgreSQL keeps microseconds, so this is exact.

A `BusinessCalendar` holds every business day of a year range in memory, so set-based jobs over
millions of rows answer each question with a set look-up or a binary search and never query per row.
Asking about a date outside the loaded range raises `CalendarRangeError`: the company's closed days
are unknown there, and a silent wrong answer would move a legal deadline.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
from django.utils import timezone

# The calendar is Japanese by definition, whatever TIME_ZONE a deployment displays in.
JST = ZoneInfo("Asia/Tokyo")
END_OF_DAY = time(23, 59, 59, 999999)

# Bank year-end closure as (month, day). 1/1 is also a national holiday; listing it keeps the rule whole.
YEAR_END_CLOSURE: tuple[tuple[int, int], ...] = ((12, 31), (1, 1), (1, 2), (1, 3))

# Compensation programs in the seeds start in 2023; 2020 leaves room for older disputes.
DEFAULT_FIRST_YEAR = 2020
# Deadlines are at most weeks away, but reports and payout expiry look a few years ahead.
DEFAULT_YEARS_AHEAD = 5

SATURDAY = 5


class CalendarRangeError(ValueError):
    """A date outside the years the calendar was loaded for."""


def _require_aware(instant: datetime) -> None:
    if timezone.is_naive(instant):
        raise ValueError(f"naive datetime {instant!r}: pass an aware datetime (instants are never naive)")


def jst_date(instant: datetime) -> date:
    """The JST calendar date of an aware instant."""
    _require_aware(instant)
    return instant.astimezone(JST).date()


def end_of_day_jst(day: date) -> datetime:
    """The last instant of a JST date, 23:59:59.999999 JST (aware)."""
    return datetime.combine(day, END_OF_DAY, tzinfo=JST)


@functools.lru_cache(maxsize=8)
def _national_closed_days(first_year: int, last_year: int) -> frozenset[date]:
    """National holidays and the year-end bank closure for the years; cached because it never changes."""
    years = range(first_year, last_year + 1)
    national_holidays = holidays.country_holidays("JP", years=years)
    closure = {date(year, month, day) for year in years for month, day in YEAR_END_CLOSURE}
    return frozenset(national_holidays) | closure


class BusinessCalendar:
    """Business days of the JST years `first_year`..`last_year`, with the company's closed days.

    Build it once per job (see `business_calendar()`), then ask it as often as needed.
    """

    def __init__(self, *, first_year: int, last_year: int, company_closed_days: Iterable[date] = ()) -> None:
        if first_year > last_year:
            raise ValueError(f"first_year {first_year} is after last_year {last_year}")
        self.first_day = date(first_year, 1, 1)
        self.last_day = date(last_year, 12, 31)
        closed_days = _national_closed_days(first_year, last_year) | frozenset(company_closed_days)
        self._business_days: list[date] = []
        day = self.first_day
        while day <= self.last_day:
            if day.weekday() < SATURDAY and day not in closed_days:
                self._business_days.append(day)
            day += timedelta(days=1)
        self._business_day_set = frozenset(self._business_days)

    @functools.cached_property
    def _revision(self) -> str:
        return hashlib.sha256(",".join(day.isoformat() for day in self._business_days).encode()).hexdigest()

    def revision(self) -> str:
        """A hash of the business days: two calendars with the same answers have the same revision."""
        return self._revision

    def __repr__(self) -> str:
        return f"<BusinessCalendar {self.first_day:%Y}-{self.last_day:%Y}>"

    def _check_in_range(self, day: date) -> None:
        if not self.first_day <= day <= self.last_day:
            raise CalendarRangeError(f"{day} is outside the loaded calendar {self.first_day}..{self.last_day}")

    def _business_day_at(self, index: int, *, asked: date) -> date:
        if index >= len(self._business_days):
            raise CalendarRangeError(f"the answer for {asked} falls after the loaded calendar ends ({self.last_day})")
        return self._business_days[index]

    def is_business_day(self, day: date) -> bool:
        self._check_in_range(day)
        return day in self._business_day_set

    def add_business_days(self, day: date, n: int) -> date:
        """The n-th business day after `day` (`day` itself never counts).

        n=0 returns `day` when it is a business day, else the next business day.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        self._check_in_range(day)
        if n == 0:
            return self._business_day_at(bisect.bisect_left(self._business_days, day), asked=day)
        # Index of the first business day strictly after `day`; the n-th one is n-1 further.
        first_after = bisect.bisect_right(self._business_days, day)
        return self._business_day_at(first_after + n - 1, asked=day)

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after `day`."""
        return self.add_business_days(day, 1)

    def business_days_between(self, start: date, end: date) -> int:
        """Business days d with start < d <= end (so `add_business_days(s, n) == e` gives n).

        Negative when end is before start: -(business days in (end, start]).
        """
        self._check_in_range(start)
        self._check_in_range(end)
        if end < start:
            return -self.business_days_between(end, start)
        return bisect.bisect_right(self._business_days, end) - bisect.bisect_right(self._business_days, start)

    def due_date(self, instant: datetime, n: int) -> date:
        """The JST date by whose end something asked for at `instant` is due, "within n business days"."""
        return self.add_business_days(jst_date(instant), n)

    def due_at(self, instant: datetime, n: int) -> datetime:
        """The aware deadline (23:59:59.999999 JST, inclusive) for "within n business days of `instant`"."""
        return end_of_day_jst(self.due_date(instant, n))

    @staticmethod
    def days_late(due: date, done: date) -> int:
        """Calendar days after the due date (0 when on time): the day count for delay interest."""
        return max(0, (done - due).days)


def business_calendar(*, first_year: int | None = None, last_year: int | None = None) -> BusinessCalendar:
    """A calendar with the company's closed days read from the database in one query.

    Defaults cover DEFAULT_FIRST_YEAR to DEFAULT_YEARS_AHEAD years after the current JST year. Build one
    per job or request: closed days edited in the admin show up in the next calendar built.
    """
    from support_portal.core.models import ClosedDay  # noqa: PLC0415 - keeps this module importable before apps load

    first = DEFAULT_FIRST_YEAR if first_year is None else first_year
    last = timezone.now().astimezone(JST).year + DEFAULT_YEARS_AHEAD if last_year is None else last_year
    calendar_range = (date(first, 1, 1), date(last, 12, 31))
    closed_days = ClosedDay.objects.filter(date__range=calendar_range).values_list("date", flat=True)
    return BusinessCalendar(first_year=first, last_year=last, company_closed_days=list(closed_days))
