"""Business time for SLA clocks: opening hours (JST) on the business-day calendar, pure functions.

An open day is:
- a business day of `support_portal.core.business_days` (weekday, not a Japanese holiday, not the bank
  year-end closure, not a company closed day), or
- a Saturday or Sunday when the queue has `open_weekends` (a weekday holiday stays closed), or
- any day inside one of the queue's surge periods (weekends and holidays included).

On an open day the queue works [opens, closes) JST. JST has no daylight saving time, so a day's window
is always exactly `closes - opens` long. Instants are aware datetimes; naive ones are refused.

    add_business_minutes(start, n, hours)      the instant n business minutes after `start`
    business_minutes_between(start, end, hours) business minutes in [start, end) (negative if end < start)

`add_business_minutes(start, 0)` is `start` itself. Adding that ends exactly at closing time returns the
closing instant (18:00), never the next morning.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence

from support_portal.core.business_days import JST, BusinessCalendar, CalendarRangeError, jst_date

SATURDAY = 5


@dataclasses.dataclass(frozen=True)
class OpeningHours:
    calendar: BusinessCalendar
    opens_at: dt.time = dt.time(10, 0)
    closes_at: dt.time = dt.time(18, 0)
    open_weekends: bool = False
    # Inclusive (first, last) JST date ranges on which every day is open.
    surges: Sequence[tuple[dt.date, dt.date]] = ()

    def __post_init__(self) -> None:
        if self.closes_at <= self.opens_at:
            raise ValueError(f"closes_at {self.closes_at} must be after opens_at {self.opens_at}")

    def is_open_day(self, day: dt.date) -> bool:
        if any(first <= day <= last for first, last in self.surges):
            return True
        if day.weekday() >= SATURDAY:
            # Raises CalendarRangeError outside the loaded years, like a weekday would.
            self.calendar.is_business_day(day)
            return self.open_weekends
        return self.calendar.is_business_day(day)

    def window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        return dt.datetime.combine(day, self.opens_at, tzinfo=JST), dt.datetime.combine(day, self.closes_at, tzinfo=JST)

    def open_windows(self, first_day: dt.date) -> Iterator[tuple[dt.datetime, dt.datetime]]:
        """Open windows from `first_day` on; stops with CalendarRangeError past the loaded calendar."""
        day = first_day
        while True:
            if day > self.calendar.last_day:
                raise CalendarRangeError(f"no open window before the loaded calendar ends ({self.calendar.last_day})")
            if self.is_open_day(day):
                yield self.window(day)
            day += dt.timedelta(days=1)


def _require_aware(instant: dt.datetime) -> None:
    jst_date(instant)  # raises ValueError on a naive datetime


def add_business_time(start: dt.datetime, duration: dt.timedelta, hours: OpeningHours) -> dt.datetime:
    """The instant `duration` of open time after `start` (aware, in JST)."""
    _require_aware(start)
    if duration < dt.timedelta(0):
        raise ValueError(f"duration must be >= 0, got {duration}")
    if duration == dt.timedelta(0):
        return start
    remaining = duration
    for window_start, window_end in hours.open_windows(jst_date(start)):
        if start >= window_end:
            continue
        begin = max(start, window_start)
        available = window_end - begin
        if remaining <= available:
            return (begin + remaining).astimezone(JST)
        remaining -= available
    raise AssertionError("unreachable: open_windows raises when it runs out")  # pragma: no cover


def add_business_minutes(start: dt.datetime, minutes: int, hours: OpeningHours) -> dt.datetime:
    if minutes < 0:
        raise ValueError(f"minutes must be >= 0, got {minutes}")
    return add_business_time(start, dt.timedelta(minutes=minutes), hours)


def business_time_between(start: dt.datetime, end: dt.datetime, hours: OpeningHours) -> dt.timedelta:
    """Open time within [start, end); negative when end is before start."""
    _require_aware(start)
    _require_aware(end)
    if end < start:
        return -business_time_between(end, start, hours)
    total = dt.timedelta(0)
    last_day = jst_date(end)
    day = jst_date(start)
    while day <= last_day:
        if hours.is_open_day(day):
            window_start, window_end = hours.window(day)
            overlap = min(end, window_end) - max(start, window_start)
            if overlap > dt.timedelta(0):
                total += overlap
        day += dt.timedelta(days=1)
    return total


def business_minutes_between(start: dt.datetime, end: dt.datetime, hours: OpeningHours) -> int:
    """Whole business minutes within [start, end) (truncated toward zero)."""
    seconds = business_time_between(start, end, hours).total_seconds()
    return int(seconds / 60)
