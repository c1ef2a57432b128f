"""The week of an auto-attendant: periods, holidays, default, daylight saving, the cell grid."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from pbx.engine.schedule import (
    WEEKDAYS,
    Period,
    ScheduleError,
    cells_to_periods,
    check_period,
    describe,
    find_overlap,
    menu_at,
    periods_to_cells,
)

ROME = "Europe/Rome"
OFFICE, LUNCH, NIGHT, WEEKEND, HOLIDAY, DEFAULT = 1, 2, 3, 4, 5, 99

# Monday to Friday 08:30-12:30 and 14:00-18:00, lunch in between; Saturday morning; Sunday
# night (00:00-02:00 and 02:00-03:00, the hour that is skipped in March and repeated in
# October) and Sunday until midnight from 22:00.
WEEK = [
    *(Period(day, 510, 750, OFFICE) for day in range(5)),
    *(Period(day, 750, 840, LUNCH) for day in range(5)),
    *(Period(day, 840, 1080, OFFICE) for day in range(5)),
    Period(5, 540, 780, WEEKEND),
    Period(6, 0, 120, NIGHT),
    Period(6, 120, 180, LUNCH),
    Period(6, 180, 240, WEEKEND),
    Period(6, 1320, 1440, NIGHT),
]
HOLIDAYS = {date(2026, 12, 25): HOLIDAY, date(2026, 4, 6): HOLIDAY}  # Christmas, Easter Monday


def _rome(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Rome in winter (UTC+1) as the UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=timezone(timedelta(hours=1)))


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # 2026-01-05 is a Monday; 2026-01-09 a Friday.
        pytest.param(_rome(2026, 1, 5, 8, 29), DEFAULT, id="monday-before-opening"),
        pytest.param(_rome(2026, 1, 5, 8, 30), OFFICE, id="monday-start-inclusive"),
        pytest.param(_rome(2026, 1, 5, 12, 29), OFFICE, id="monday-last-minute"),
        pytest.param(_rome(2026, 1, 5, 12, 30), LUNCH, id="monday-end-exclusive"),
        pytest.param(_rome(2026, 1, 5, 13, 59), LUNCH, id="monday-lunch"),
        pytest.param(_rome(2026, 1, 5, 14, 0), OFFICE, id="monday-afternoon"),
        pytest.param(_rome(2026, 1, 5, 18, 0), DEFAULT, id="monday-after-closing"),
        pytest.param(_rome(2026, 1, 7, 10, 0), OFFICE, id="wednesday"),
        pytest.param(_rome(2026, 1, 9, 17, 59), OFFICE, id="friday-last-minute"),
        pytest.param(_rome(2026, 1, 10, 9, 0), WEEKEND, id="saturday-morning"),
        pytest.param(_rome(2026, 1, 10, 13, 0), DEFAULT, id="saturday-afternoon"),
        pytest.param(_rome(2026, 1, 11, 0, 0), NIGHT, id="sunday-midnight-start"),
        pytest.param(_rome(2026, 1, 11, 23, 59), NIGHT, id="sunday-up-to-midnight"),
        pytest.param(_rome(2026, 1, 12, 0, 0), DEFAULT, id="monday-after-sunday-midnight"),
        # The local date decides, not the UTC one: 23:30 UTC on Sunday is Monday 00:30 in Rome.
        pytest.param(datetime(2026, 1, 4, 23, 30, tzinfo=UTC), DEFAULT, id="utc-sunday-is-monday"),
        pytest.param(datetime(2026, 1, 5, 7, 30, tzinfo=UTC), OFFICE, id="utc-0730-is-0830"),
        # In summer Rome is UTC+2.
        pytest.param(datetime(2026, 7, 6, 6, 30, tzinfo=UTC), OFFICE, id="summer-0830"),
        pytest.param(datetime(2026, 7, 6, 6, 29, tzinfo=UTC), DEFAULT, id="summer-0829"),
        # Holidays win for the whole local day, over any period and the default.
        pytest.param(_rome(2026, 12, 25, 10, 0), HOLIDAY, id="christmas-office-hours"),
        pytest.param(_rome(2026, 12, 25, 0, 0), HOLIDAY, id="christmas-midnight"),
        pytest.param(_rome(2026, 12, 25, 23, 59), HOLIDAY, id="christmas-last-minute"),
        pytest.param(datetime(2026, 12, 24, 23, 0, tzinfo=UTC), HOLIDAY, id="christmas-in-utc"),
        pytest.param(datetime(2026, 12, 24, 22, 59, tzinfo=UTC), DEFAULT, id="christmas-eve"),
        pytest.param(datetime(2026, 4, 6, 8, 0, tzinfo=UTC), HOLIDAY, id="easter-monday"),
        pytest.param(_rome(2026, 12, 28, 10, 0), OFFICE, id="monday-after-christmas"),
    ],
)
def test_the_menu_at_an_instant(instant: datetime, expected: int) -> None:
    assert menu_at(instant, ROME, WEEK, HOLIDAYS, DEFAULT) == expected


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        # 2026-03-29, a Sunday: at 01:00 UTC Rome goes from 02:00 CET to 03:00 CEST.
        pytest.param((3, 29, 0, 59), NIGHT, id="spring-0159-winter-time"),
        pytest.param((3, 29, 1, 0), WEEKEND, id="spring-0300-summer-time"),
        pytest.param((3, 29, 1, 59), WEEKEND, id="spring-0359"),
        pytest.param((3, 29, 2, 0), DEFAULT, id="spring-0400"),
        # 2026-10-25, a Sunday: at 01:00 UTC Rome goes from 03:00 CEST back to 02:00 CET, so
        # 02:00-03:00 local happens twice; both resolve by the wall clock.
        pytest.param((10, 24, 23, 59), NIGHT, id="autumn-0159-summer-time"),
        pytest.param((10, 25, 0, 0), LUNCH, id="autumn-0200-first"),
        pytest.param((10, 25, 0, 59), LUNCH, id="autumn-0259-first"),
        pytest.param((10, 25, 1, 0), LUNCH, id="autumn-0200-again"),
        pytest.param((10, 25, 1, 59), LUNCH, id="autumn-0259-again"),
        pytest.param((10, 25, 2, 0), WEEKEND, id="autumn-0300-winter-time"),
        pytest.param((10, 25, 3, 0), DEFAULT, id="autumn-0400"),
    ],
)
def test_daylight_saving_changes_in_rome(utc: tuple[int, int, int, int], expected: int) -> None:
    month, day, hour, minute = utc
    instant = datetime(2026, month, day, hour, minute, tzinfo=UTC)
    assert menu_at(instant, ROME, WEEK, {}, DEFAULT) == expected


@pytest.mark.parametrize(
    ("periods", "holidays", "default", "expected"),
    [
        pytest.param([], {}, None, None, id="nothing-no-default"),
        pytest.param([], {}, 7, 7, id="nothing-default"),
        pytest.param([Period(0, 0, 1440, 8)], {}, None, 8, id="whole-day"),
        pytest.param([Period(1, 0, 1440, 8)], {}, 7, 7, id="other-weekday"),
        pytest.param([], {date(2026, 1, 5): 9}, None, 9, id="holiday-without-periods"),
        pytest.param([], {date(2026, 1, 6): 9}, 7, 7, id="holiday-another-day"),
    ],
)
def test_default_and_holidays(
    periods: list[Period], holidays: dict[date, int], default: int | None, expected: int | None
) -> None:
    monday_noon = datetime(2026, 1, 5, 11, 0, tzinfo=UTC)
    assert menu_at(monday_noon, ROME, periods, holidays, default) == expected


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        menu_at(datetime(2026, 1, 5, 10, 0), ROME, WEEK, {}, DEFAULT)


def test_other_time_zones() -> None:
    instant = datetime(2026, 1, 5, 13, 45, tzinfo=UTC)  # Monday 08:45 in New York
    assert menu_at(instant, "America/New_York", WEEK, {}, None) == OFFICE
    assert menu_at(instant, "Asia/Tokyo", WEEK, {}, None) is None  # Monday 22:45


@pytest.mark.parametrize(
    "period",
    [
        Period(0, 0, 15, 1),
        Period(6, 0, 1440, 1),
        Period(3, 1425, 1440, 1),
        Period(4, 510, 750, 1),
    ],
)
def test_valid_periods(period: Period) -> None:
    check_period(period)


@pytest.mark.parametrize(
    ("period", "message"),
    [
        pytest.param(Period(7, 0, 60, 1), "weekday must be 0 .Monday. to 6", id="weekday-7"),
        pytest.param(Period(-1, 0, 60, 1), "not -1", id="weekday-negative"),
        pytest.param(Period(0, 10, 60, 1), "start .* quarter hour, not 00:10", id="start-10"),
        pytest.param(Period(0, 0, 50, 1), "end .* quarter hour, not 00:50", id="end-50"),
        pytest.param(Period(0, -15, 60, 1), "start .* between 00:00 and 24:00", id="negative"),
        pytest.param(Period(0, 0, 1455, 1), "end .* between 00:00 and 24:00", id="after-24"),
        pytest.param(Period(0, 720, 720, 1), "end after it starts: Monday 12:00-12:00", id="empty"),
        pytest.param(Period(2, 720, 510, 1), "Wednesday 12:00-08:30", id="backwards"),
    ],
)
def test_invalid_periods(period: Period, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        check_period(period)


@pytest.mark.parametrize(
    ("period", "text"),
    [
        (Period(0, 510, 720, 1), "Monday 08:30-12:00"),
        (Period(6, 0, 1440, 1), "Sunday 00:00-24:00"),
        (Period(4, 1425, 1440, 1), "Friday 23:45-24:00"),
    ],
)
def test_describe(period: Period, text: str) -> None:
    assert describe(period) == text


def test_weekday_names() -> None:
    assert WEEKDAYS[0] == "Monday" and WEEKDAYS[6] == "Sunday" and len(WEEKDAYS) == 7


@pytest.mark.parametrize(
    ("periods", "expected"),
    [
        pytest.param([], None, id="empty"),
        pytest.param(WEEK, None, id="the-week"),
        pytest.param([Period(0, 0, 720, 1), Period(0, 720, 1440, 2)], None, id="touching"),
        pytest.param([Period(0, 0, 720, 1), Period(1, 0, 720, 2)], None, id="other-weekday"),
        pytest.param(
            [Period(0, 0, 735, 1), Period(0, 720, 1440, 2)], (0, 1), id="one-quarter-overlap"
        ),
        pytest.param([Period(0, 510, 720, 1), Period(0, 510, 720, 2)], (0, 1), id="same-interval"),
        pytest.param([Period(0, 0, 1440, 1), Period(0, 600, 660, 2)], (0, 1), id="contained"),
        pytest.param(
            # Sorted by start the middle period does not overlap its neighbour, but the first
            # still reaches over the third.
            [Period(2, 0, 900, 1), Period(2, 60, 120, 2), Period(2, 840, 960, 3)],
            (0, 1),
            id="long-period-reaches-further",
        ),
        pytest.param(
            [Period(2, 60, 120, 2), Period(2, 0, 900, 1), Period(2, 840, 960, 3)],
            (1, 0),
            id="reported-in-week-order",
        ),
        pytest.param(
            [Period(3, 0, 60, 1), Period(3, 30, 90, 2), Period(1, 0, 60, 3), Period(1, 45, 90, 4)],
            (2, 3),
            id="earliest-weekday-first",
        ),
        pytest.param(
            [
                Period(5, 0, 60, 1),
                Period(5, 120, 180, 2),
                Period(5, 60, 120, 3),
                Period(5, 150, 240, 4),
            ],
            (1, 3),
            id="later-in-the-day",
        ),
    ],
)
def test_find_overlap(periods: list[Period], expected: tuple[int, int] | None) -> None:
    found = find_overlap(periods)
    if expected is None:
        assert found is None
    else:
        assert found == (periods[expected[0]], periods[expected[1]])


@pytest.mark.parametrize(
    ("cells", "periods"),
    [
        pytest.param({}, [], id="empty"),
        pytest.param({(0, 0): 1}, [Period(0, 0, 15, 1)], id="one-cell"),
        pytest.param({(6, 95): 1}, [Period(6, 1425, 1440, 1)], id="last-cell-to-midnight"),
        pytest.param({(0, slot): 1 for slot in range(96)}, [Period(0, 0, 1440, 1)], id="whole-day"),
        pytest.param(
            {(0, 34): 1, (0, 35): 1, (0, 36): 2, (0, 37): 2},
            [Period(0, 510, 540, 1), Period(0, 540, 570, 2)],
            id="adjacent-different-menus",
        ),
        pytest.param(
            {(0, 34): 1, (0, 36): 1},
            [Period(0, 510, 525, 1), Period(0, 540, 555, 1)],
            id="gap-splits",
        ),
        pytest.param(
            {(1, 0): 1, (0, 95): 1},
            [Period(0, 1425, 1440, 1), Period(1, 0, 15, 1)],
            id="midnight-splits-weekdays",
        ),
        pytest.param(
            {(2, 5): 3, (1, 4): 3, (1, 3): 3, (2, 4): 3},
            [Period(1, 45, 75, 3), Period(2, 60, 90, 3)],
            id="sorted-by-weekday-then-start",
        ),
    ],
)
def test_cells_and_periods(cells: dict[tuple[int, int], int], periods: list[Period]) -> None:
    assert cells_to_periods(cells) == periods
    assert periods_to_cells(periods) == cells


def test_the_week_round_trips_through_cells() -> None:
    cells = periods_to_cells(WEEK)
    assert len(cells) == 5 * (16 + 6 + 16) + 16 + (8 + 4 + 4 + 8)
    assert cells_to_periods(cells) == sorted(WEEK, key=lambda p: (p.weekday, p.start))
    assert periods_to_cells(cells_to_periods(cells)) == cells


@pytest.mark.parametrize(
    "cell",
    [(7, 0), (-1, 0), (0, 96), (0, -1)],
    ids=["weekday-7", "weekday-neg", "slot-96", "slot-neg"],
)
def test_cells_out_of_the_grid(cell: tuple[int, int]) -> None:
    with pytest.raises(ScheduleError, match="A cell must be"):
        cells_to_periods({cell: 1})


@pytest.mark.parametrize(
    ("periods", "message"),
    [
        pytest.param(
            [Period(0, 0, 735, 1), Period(0, 720, 1440, 2)],
            "Monday 00:00-12:15 overlaps Monday 12:00-24:00",
            id="overlap",
        ),
        pytest.param([Period(0, 5, 60, 1)], "quarter hour", id="invalid-period"),
    ],
)
def test_periods_that_make_no_grid(periods: list[Period], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        periods_to_cells(periods)
