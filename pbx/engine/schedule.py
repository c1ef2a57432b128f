"""The week of an auto-attendant (Multiselection): which menu answers at a given instant.

A week is a list of `Period`s, each a weekday, a start and an end in minutes from local midnight
on quarter hours, and the menu it selects. Holidays (a date -> menu mapping) override the week
for the whole local day; outside every period the Multiselection's default menu answers (or
none). `cells_to_periods` and `periods_to_cells` convert to and from the 7 x 96 grid of
15-minute cells the schedule editor shows. Pure functions, no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SLOT_MINUTES = 15
SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES  # 96
DAY_MINUTES = 24 * 60


class ScheduleError(ValueError):
    """A period or a grid that cannot be part of a week, with a message for the user."""


@dataclass(frozen=True, slots=True)
class Period:
    """`menu` answers on `weekday` (0 = Monday) from minute `start` (inclusive) to `end`."""

    weekday: int
    start: int
    end: int
    menu: int


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def describe(period: Period) -> str:
    """The period as a user reads it, e.g. "Monday 08:30-12:00" (midnight ends as "24:00")."""
    day = WEEKDAYS[period.weekday] if 0 <= period.weekday < 7 else f"day {period.weekday}"
    return f"{day} {_clock(period.start)}-{_clock(period.end)}"


def check_period(period: Period) -> None:
    """Raise `ScheduleError` unless the period is a valid quarter-hour interval of one day."""
    if not 0 <= period.weekday < 7:
        raise ScheduleError(f"The weekday must be 0 (Monday) to 6 (Sunday), not {period.weekday}.")
    for name, minutes in (("start", period.start), ("end", period.end)):
        if not 0 <= minutes <= DAY_MINUTES:
            raise ScheduleError(
                f"The {name} of a period must be between 00:00 and 24:00, not {minutes} minutes."
            )
        if minutes % SLOT_MINUTES:
            raise ScheduleError(
                f"The {name} of a period must be on a quarter hour, not {_clock(minutes)}."
            )
    if period.start >= period.end:
        raise ScheduleError(f"A period must end after it starts: {describe(period)}.")


def find_overlap(periods: Iterable[Period]) -> tuple[Period, Period] | None:
    """The earliest pair in the week (by weekday, then start) of periods that overlap, or None.

    Intervals are half-open: a period ending at 12:00 and one starting at 12:00 do not overlap.
    """
    ordered = sorted(periods, key=lambda p: (p.weekday, p.start, p.end))
    reach: Period | None = None  # the period reaching furthest so far on the current weekday
    for period in ordered:
        if reach is not None and reach.weekday == period.weekday:
            if period.start < reach.end:
                return reach, period
            if period.end > reach.end:
                reach = period
        else:
            reach = period
    return None


def menu_at(
    instant: datetime,
    time_zone: str,
    periods: Iterable[Period],
    holidays: Mapping[date, int],
    default: int | None,
) -> int | None:
    """The menu answering at `instant` (aware), judged by the wall clock of `time_zone`.

    A holiday on the local date wins for the whole day; otherwise the period covering the local
    time; otherwise `default`. Across a daylight-saving change the local wall-clock time is what
    counts: in a repeated hour both instants resolve as that hour, a skipped hour never occurs.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("menu_at needs an aware datetime, not a naive one.")
    local = instant.astimezone(ZoneInfo(time_zone))
    day = local.date()
    if day in holidays:
        return holidays[day]
    weekday, minute = local.weekday(), local.hour * 60 + local.minute
    for period in periods:
        if period.weekday == weekday and period.start <= minute < period.end:
            return period.menu
    return default


def cells_to_periods(cells: Mapping[tuple[int, int], int]) -> list[Period]:
    """Merge the grid's (weekday, slot) -> menu cells into periods, by weekday then start.

    Runs of adjacent slots of one weekday with the same menu make one period.
    """
    periods: list[Period] = []
    for weekday, slot in sorted(cells):
        if not (0 <= weekday < 7 and 0 <= slot < SLOTS_PER_DAY):
            raise ScheduleError(
                f"A cell must be a weekday 0-6 and a slot 0-{SLOTS_PER_DAY - 1}, "
                f"not ({weekday}, {slot})."
            )
        menu, start = cells[(weekday, slot)], slot * SLOT_MINUTES
        last = periods[-1] if periods else None
        if last and (last.weekday, last.end, last.menu) == (weekday, start, menu):
            periods[-1] = Period(weekday, last.start, start + SLOT_MINUTES, menu)
        else:
            periods.append(Period(weekday, start, start + SLOT_MINUTES, menu))
    return periods


def periods_to_cells(periods: Iterable[Period]) -> dict[tuple[int, int], int]:
    """The grid's (weekday, slot) -> menu cells the periods cover; they must not overlap."""
    periods = list(periods)
    for period in periods:
        check_period(period)
    overlap = find_overlap(periods)
    if overlap:
        first, second = overlap
        raise ScheduleError(f"{describe(first)} overlaps {describe(second)}.")
    return {
        (p.weekday, slot): p.menu
        for p in periods
        for slot in range(p.start // SLOT_MINUTES, p.end // SLOT_MINUTES)
    }
