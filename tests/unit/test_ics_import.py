"""Holidays from uploaded iCalendar files: all-day, multi-day, timed, recurring, and bad files."""

from __future__ import annotations

from datetime import date

import pytest

from pbx.ics_import import MAX_BYTES, IcsError, holidays_from_ics

START, END = date(2026, 1, 1), date(2028, 12, 31)


def _ics(*events: str, calendar: bool = True) -> bytes:
    """A calendar of the events, each given as its property lines (LF here, CRLF in the file)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//Holidays//EN"] if calendar else []
    for event in events:
        lines += ["BEGIN:VEVENT", *event.strip().splitlines(), "END:VEVENT"]
    if calendar:
        lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


D = date  # keeps the expected tables short


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            ["DTSTART;VALUE=DATE:20261225\nDTEND;VALUE=DATE:20261226\nSUMMARY:Natale"],
            [(D(2026, 12, 25), "Natale")],
            id="all-day",
        ),
        pytest.param(
            ["DTSTART;VALUE=DATE:20260602\nSUMMARY:Festa della Repubblica"],
            [(D(2026, 6, 2), "Festa della Repubblica")],
            id="all-day-without-dtend",
        ),
        pytest.param(
            ["DTSTART;VALUE=DATE:20260810\nDTEND;VALUE=DATE:20260815\nSUMMARY:Chiusura estiva"],
            [(D(2026, 8, day), "Chiusura estiva") for day in range(10, 15)],
            id="multi-day-dtend-exclusive",
        ),
        pytest.param(
            ["DTSTART;VALUE=DATE:20261228\nDURATION:P3D\nSUMMARY:Ponte"],
            [(D(2026, 12, 28), "Ponte"), (D(2026, 12, 29), "Ponte"), (D(2026, 12, 30), "Ponte")],
            id="multi-day-duration",
        ),
        pytest.param(
            ["DTSTART;VALUE=DATE:20251230\nDTEND;VALUE=DATE:20260103\nSUMMARY:Feste"],
            [(D(2026, 1, 1), "Feste"), (D(2026, 1, 2), "Feste")],
            id="multi-day-clipped-at-range-start",
        ),
        pytest.param(
            ["DTSTART;VALUE=DATE:20281230\nDTEND;VALUE=DATE:20290102\nSUMMARY:Feste"],
            [(D(2028, 12, 30), "Feste"), (D(2028, 12, 31), "Feste")],
            id="multi-day-clipped-at-range-end",
        ),
        pytest.param(
            [
                "DTSTART;TZID=Europe/Rome:20260415T090000\n"
                "DTEND;TZID=Europe/Rome:20260415T130000\nSUMMARY:Inventario"
            ],
            [(D(2026, 4, 15), "Inventario")],
            id="timed-with-tzid",
        ),
        pytest.param(
            ["DTSTART:20260415T233000Z\nDTEND:20260416T013000Z\nSUMMARY:Manutenzione"],
            [(D(2026, 4, 15), "Manutenzione")],
            id="timed-utc-gives-the-start-date",
        ),
        pytest.param(
            ["DTSTART:20260501T080000\nSUMMARY:Festa dei lavoratori"],
            [(D(2026, 5, 1), "Festa dei lavoratori")],
            id="timed-floating",
        ),
        pytest.param(
            [
                "DTSTART;VALUE=DATE:20200815\nRRULE:FREQ=YEARLY\n"
                "EXDATE;VALUE=DATE:20270815\nSUMMARY:Ferragosto"
            ],
            [(D(2026, 8, 15), "Ferragosto"), (D(2028, 8, 15), "Ferragosto")],
            id="yearly-across-the-range-with-exdate",
        ),
        pytest.param(
            [
                "DTSTART;VALUE=DATE:20201225\nDTEND;VALUE=DATE:20201227\nRRULE:FREQ=YEARLY\nSUMMARY:Natale"
            ],
            [(D(y, 12, d), "Natale") for y in (2026, 2027, 2028) for d in (25, 26)],
            id="yearly-multi-day",
        ),
        pytest.param(
            ["DTSTART;VALUE=DATE:20200101\nRRULE:FREQ=YEARLY;UNTIL=20270101\nSUMMARY:Capodanno"],
            [(D(2026, 1, 1), "Capodanno"), (D(2027, 1, 1), "Capodanno")],
            id="yearly-until-inclusive",
        ),
        pytest.param(
            ["DTSTART;VALUE=DATE:20250101\nRRULE:FREQ=YEARLY;COUNT=2\nSUMMARY:Capodanno"],
            [(D(2026, 1, 1), "Capodanno")],
            id="yearly-count",
        ),
        pytest.param(
            [
                "DTSTART;TZID=Europe/Rome:20261102T090000\n"
                "RRULE:FREQ=WEEKLY;COUNT=4\n"
                "EXDATE;TZID=Europe/Rome:20261109T090000\nSUMMARY:Chiuso"
            ],
            [(D(2026, 11, 2), "Chiuso"), (D(2026, 11, 16), "Chiuso"), (D(2026, 11, 23), "Chiuso")],
            id="weekly-timed-with-timed-exdate",
        ),
        pytest.param(
            [
                "DTSTART;TZID=Europe/Rome:20261102T090000\n"
                "RRULE:FREQ=WEEKLY;UNTIL=20261116T080000Z\nSUMMARY:Chiuso"
            ],
            [(D(2026, 11, 2), "Chiuso"), (D(2026, 11, 9), "Chiuso"), (D(2026, 11, 16), "Chiuso")],
            id="weekly-until-utc-is-the-last-occurrence",
        ),
        pytest.param(
            [
                "DTSTART;VALUE=DATE:20250101\nRRULE:FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1\n"
                "RRULE:FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=6\nSUMMARY:Feste"
            ],
            [(D(y, 1, d), "Feste") for y in (2026, 2027, 2028) for d in (1, 6)],
            id="two-rrules",
        ),
        pytest.param(
            ["DTSTART;VALUE=DATE:20260406\nRDATE;VALUE=DATE:20270329,20280417\nSUMMARY:Pasquetta"],
            [
                (D(2026, 4, 6), "Pasquetta"),
                (D(2027, 3, 29), "Pasquetta"),
                (D(2028, 4, 17), "Pasquetta"),
            ],
            id="rdate",
        ),
        pytest.param(
            ["DTSTART;VALUE=DATE:20260101\nDTEND;VALUE=DATE:20260102"],
            [(D(2026, 1, 1), "Holiday")],
            id="no-summary",
        ),
        pytest.param(
            [
                "DTSTART;VALUE=DATE:20251225\nSUMMARY:Last year",
                "DTSTART;VALUE=DATE:20290101\nSUMMARY:Later",
            ],
            [],
            id="outside-the-range",
        ),
        pytest.param(
            ["DTSTART;VALUE=DATE:20261225\nSUMMARY:Natale\nSTATUS:CANCELLED"],
            [],
            id="cancelled",
        ),
        pytest.param(
            [
                "DTSTART;VALUE=DATE:20261226\nSUMMARY:Santo Stefano",
                "DTSTART;VALUE=DATE:20260101\nSUMMARY:Capodanno",
                "DTSTART;VALUE=DATE:20261224\nDTEND;VALUE=DATE:20261227\nSUMMARY:Chiusura",
                "DTSTART;VALUE=DATE:20261225\nSUMMARY:Natale",
            ],
            [
                (D(2026, 1, 1), "Capodanno"),
                (D(2026, 12, 24), "Chiusura"),
                (D(2026, 12, 25), "Chiusura"),
                (D(2026, 12, 26), "Santo Stefano"),
            ],
            id="sorted-one-per-date-first-name-wins",
        ),
    ],
)
def test_holidays(events: list[str], expected: list[tuple[date, str]]) -> None:
    assert holidays_from_ics(_ics(*events), start=START, end=END) == expected


def test_the_range_is_inclusive_and_a_bom_is_fine() -> None:
    data = b"\xef\xbb\xbf" + _ics(
        "DTSTART;VALUE=DATE:20260301\nSUMMARY:First",
        "DTSTART;VALUE=DATE:20260331\nSUMMARY:Last",
        "DTSTART;VALUE=DATE:20260401\nSUMMARY:After",
    )
    assert holidays_from_ics(data, start=date(2026, 3, 1), end=date(2026, 3, 31)) == [
        (date(2026, 3, 1), "First"),
        (date(2026, 3, 31), "Last"),
    ]


def test_lf_line_endings_and_non_ascii_names() -> None:
    data = _ics("DTSTART;VALUE=DATE:20261208\nSUMMARY:Immacolata Concezione – festa").replace(
        b"\r\n", b"\n"
    )
    assert holidays_from_ics(data, start=START, end=END) == [
        (date(2026, 12, 8), "Immacolata Concezione – festa")
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not an iCalendar file", id="png"
        ),
        pytest.param(
            b"Dear all,\nthe office is closed at Christmas.\n", "not an iCalendar file", id="text"
        ),
        pytest.param(b"", "not an iCalendar file", id="empty"),
        pytest.param(b"BEGIN:\x00\x01\x02garbage\r\n", "no calendar", id="begin-garbage"),
        pytest.param(
            _ics("DTSTART;VALUE=DATE:20261225\nSUMMARY:Natale", calendar=False),
            "no calendar",
            id="event-without-vcalendar",
        ),
        pytest.param(
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261225\r\n",
            "no calendar",
            id="truncated",
        ),
        pytest.param(_ics(), "no events", id="calendar-without-events"),
        pytest.param(
            _ics("DTSTART;VALUE=DATE:20261225\nSUMMARY:" + "x" * 70) * (MAX_BYTES // 100),
            "too large",
            id="too-large",
        ),
        pytest.param(_ics("SUMMARY:Natale"), 'event "Natale" has no start', id="no-dtstart"),
        pytest.param(
            _ics("DTSTART:tomorrow\nSUMMARY:Natale"), "DTSTART that is not a date", id="bad-dtstart"
        ),
        pytest.param(
            _ics("DTSTART;VALUE=DATE:20261225\nRRULE:FREQ=YEARLY;BYFOO=1\nSUMMARY:Natale"),
            "rule that is not valid",
            id="bad-rrule",
        ),
        pytest.param(
            _ics("DTSTART;VALUE=DATE:20261225\nRRULE:whenever\nSUMMARY:Natale"),
            "rule that is not valid",
            id="rrule-without-freq",
        ),
        pytest.param(
            _ics("DTSTART;VALUE=DATE:20261225\nEXDATE:never\nSUMMARY:Natale"),
            'event "Natale" cannot be read',
            id="bad-exdate",
        ),
        pytest.param(
            _ics("DTSTART:20000101T000000Z\nRRULE:FREQ=MINUTELY\nSUMMARY:Tick"),
            "too often",
            id="too-many-occurrences",
        ),
    ],
)
def test_bad_files(data: bytes, message: str) -> None:
    with pytest.raises(IcsError, match=message):
        holidays_from_ics(data, start=START, end=END)


def test_a_file_just_under_the_limit_is_read() -> None:
    event = _ics("DTSTART;VALUE=DATE:20261225\nSUMMARY:Natale")
    padding = b"X-PAD:" + b"x" * (MAX_BYTES - len(event) - 100) + b"\r\n"
    data = event.replace(b"VERSION:2.0\r\n", b"VERSION:2.0\r\n" + padding)
    assert len(data) <= MAX_BYTES
    assert holidays_from_ics(data, start=START, end=END) == [(date(2026, 12, 25), "Natale")]
