"""Holidays from an iCalendar (.ics) file: the days its events fall on, with their names.

Django-free: `holidays_from_ics` takes the uploaded bytes and a date range and returns sorted
(date, name) pairs, one per date; anything unreadable raises `IcsError` with a message for the
user. All-day events give every day they cover (DTEND is exclusive), timed events the date of
their DTSTART as written (in its own time zone: UTC for a time ending in "Z"). RRULE and RDATE
are expanded within the range with `dateutil.rrule`, minus EXDATE. Cancelled events are
skipped. Not handled: RECURRENCE-ID overrides that move one occurrence of a series.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from itertools import takewhile
from typing import Any

import icalendar
from dateutil.rrule import rrule, rrulestr

MAX_BYTES = 1024 * 1024
# Occurrences of recurring events looked at per file, before or in the range: enough for
# yearly or daily holidays over centuries, not for an event repeating every minute since 1970.
MAX_OCCURRENCES = 100_000
DEFAULT_NAME = "Holiday"


class IcsError(ValueError):
    """The file cannot be read as a calendar of holidays; the message says why."""


def holidays_from_ics(data: bytes, *, start: date, end: date) -> list[tuple[date, str]]:
    """Every day in [start, end] an event of the calendar falls on, sorted, first name wins."""
    if len(data) > MAX_BYTES:
        raise IcsError(
            f"The file is too large ({len(data) / MAX_BYTES:.1f} MB): "
            "a calendar of holidays must be at most 1 MB."
        )
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:6].upper() != b"BEGIN:":
        raise IcsError("This is not an iCalendar file: it does not start with BEGIN:VCALENDAR.")
    try:
        components = icalendar.Calendar.from_ical(data, multiple=True)
    except Exception as exc:  # icalendar raises ValueError, KeyError, IndexError...
        raise IcsError(f"This is not an iCalendar file, or it is damaged: {exc}") from exc
    calendars = [c for c in components if c.name == "VCALENDAR"]
    if not calendars:
        raise IcsError(
            "The file holds no calendar: BEGIN:VCALENDAR ... END:VCALENDAR is missing or incomplete."
        )
    events = [e for c in calendars for e in c.walk("VEVENT")]
    if not events:
        raise IcsError("The calendar holds no events.")
    budget = [MAX_OCCURRENCES]  # one counter for the whole file, shared by its events
    names: dict[date, str] = {}
    for event in events:
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        name = str(event.get("SUMMARY", "")).strip() or DEFAULT_NAME
        try:
            days = list(_days(event, name, start, end, budget))
        except IcsError:
            raise
        except Exception as exc:  # a malformed property deep in icalendar or dateutil
            raise IcsError(f'The event "{name}" cannot be read: {exc}') from exc
        for day in days:
            names.setdefault(day, name)
    return sorted(names.items())


def _days(event: Any, name: str, start: date, end: date, budget: list[int]) -> Iterator[date]:
    """The days in [start, end] the event covers, in any order, possibly repeated."""
    first = _value(event, "DTSTART", name)
    if first is None:
        raise IcsError(f'The event "{name}" has no start (DTSTART).')
    all_day = not isinstance(first, datetime)
    span = _span(event, first, name) if all_day else 1
    begin = _wall_clock(first, first)
    occurrences: Iterator[datetime] = iter([begin])
    if event.get("RRULE") is not None:
        occurrences = _expand(event, begin, first, name, end)
    extra = [_wall_clock(v, first) for v in _values(event, "RDATE", name)]
    excluded = {_wall_clock(v, first) for v in _values(event, "EXDATE", name)}
    excluded_days = {v for v in _values(event, "EXDATE", name) if not isinstance(v, datetime)}
    for occurrence in _merge(occurrences, extra, end, budget):
        if occurrence in excluded or occurrence.date() in excluded_days:
            continue
        for offset in range(span):
            day = occurrence.date() + timedelta(days=offset)
            if start <= day <= end:
                yield day


def _expand(event: Any, begin: datetime, first: date, name: str, end: date) -> Iterator[datetime]:
    """The occurrences of each RRULE up to `end`, as naive datetimes on DTSTART's wall clock."""
    rules = event.get("RRULE")
    for recur in rules if isinstance(rules, list) else [rules]:
        text = recur.to_ical().decode()
        try:
            rule = rrulestr(text, dtstart=begin, ignoretz=True)
        except (ValueError, TypeError) as exc:
            rule_text = text or "no FREQ"
            raise IcsError(
                f'The event "{name}" repeats by a rule that is not valid: {rule_text}'
            ) from exc
        assert isinstance(rule, rrule)
        until = recur.get("UNTIL")
        if until:  # ignoretz dropped its zone: put UNTIL on the wall clock of DTSTART
            value = until[0]
            if not isinstance(value, datetime):
                value = datetime.combine(value, time.max)
            rule = rule.replace(until=_wall_clock(value, first))
        yield from takewhile(lambda occurrence: occurrence.date() <= end, rule)


def _merge(
    occurrences: Iterator[datetime], extra: list[datetime], end: date, budget: list[int]
) -> Iterator[datetime]:
    """The occurrences up to `end`, then the extra ones (RDATE), within the file's budget."""
    for occurrence in occurrences:
        if occurrence.date() > end:
            break
        budget[0] -= 1
        if budget[0] < 0:
            raise IcsError(
                f"The calendar repeats its events too often: more than {MAX_OCCURRENCES} "
                "occurrences up to the end of the range."
            )
        yield occurrence
    yield from extra


def _wall_clock(value: date, first: date) -> datetime:
    """A DTSTART, RDATE, EXDATE or UNTIL as a naive datetime on the wall clock of DTSTART."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time())
    if value.tzinfo is not None and isinstance(first, datetime) and first.tzinfo is not None:
        value = value.astimezone(first.tzinfo)
    return value.replace(tzinfo=None)


def _span(event: Any, first: date, name: str) -> int:
    """How many days an all-day event covers: to DTEND (exclusive), or its DURATION, or 1."""
    last = _value(event, "DTEND", name)
    if isinstance(last, date):
        return max(1, (_as_date(last) - first).days)
    duration = event.get("DURATION")
    if duration is not None and isinstance(duration.dt, timedelta):
        return max(1, duration.dt.days)
    return 1


def _as_date(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _value(event: Any, key: str, name: str) -> date | None:
    """The date or datetime of a single-valued property, None when missing."""
    prop = event.get(key)
    if prop is None:
        return None
    try:
        value = prop.dt
    except Exception:  # icalendar keeps a value it cannot parse as a vBroken with no .dt
        value = None
    if not isinstance(value, date):
        raise IcsError(f'The event "{name}" has a {key} that is not a date: {str(prop)!r}')
    return value


def _values(event: Any, key: str, name: str) -> list[date]:
    """The dates and datetimes of a list property (RDATE, EXDATE), possibly on several lines."""
    props = event.get(key)
    if props is None:
        return []
    values: list[date] = []
    for prop in props if isinstance(props, list) else [props]:
        for item in getattr(prop, "dts", []):
            if not isinstance(item.dt, date):  # RDATE may be a PERIOD: (start, end)
                item_dt = item.dt[0] if isinstance(item.dt, tuple) else None
                if not isinstance(item_dt, date):
                    raise IcsError(f'The event "{name}" has a {key} that is not a date.')
                values.append(item_dt)
            else:
                values.append(item.dt)
    return values
