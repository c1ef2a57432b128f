"""The portal's Multiselection pages (SPEC E3, E4): settings, menus and keys, the weekly
schedule, holidays; only the company's administrators, only the company's rows."""

from __future__ import annotations

import json
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pbx.models import (
    Company,
    ConfigStamp,
    Extension,
    Holiday,
    HuntGroup,
    Menu,
    MenuKey,
    Multiselection,
    SchedulePeriod,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(carol: User) -> Client:
    client = Client(headers={"accept-language": "en"})
    client.force_login(carol)
    return client


@pytest.fixture
def reception(company: Company) -> Multiselection:
    """800 "Reception" with the menus Day and Night; extension 201 and hunt group 600 exist."""
    Extension.objects.create(company=company, number="201", display_name="Mario Rossi")
    HuntGroup.objects.create(company=company, number="600", name="Sales")
    multiselection = Multiselection.objects.create(company=company, number="800", name="Reception")
    Menu.objects.create(multiselection=multiselection, name="Day")
    Menu.objects.create(multiselection=multiselection, name="Night")
    return multiselection


def menu(multiselection: Multiselection, name: str) -> Menu:
    return multiselection.menus.get(name=name)


def key_rows(**rows: tuple[str, str, object]) -> dict[str, object]:
    """POST data of the key table: key slug -> (action, number, target menu id)."""
    data: dict[str, object] = {}
    for slug, (action, number, target) in rows.items():
        data[f"key-{slug}-action"] = action
        data[f"key-{slug}-number"] = number
        data[f"key-{slug}-target_menu"] = target or ""
    return data


def menu_post(name: str = "Main", **rows: tuple[str, str, object]) -> dict[str, object]:
    return {"name": name, "description": "", "timeout": 5, "retries": 2, **key_rows(**rows)}


def today_in_rome() -> date:
    return timezone.now().astimezone(ZoneInfo("Europe/Rome")).date()


URLS = [
    ("manage:multiselections", {}),
    ("manage:multiselection-add", {}),
    ("manage:multiselection", {"pk": 1}),
    ("manage:multiselection-edit", {"pk": 1}),
    ("manage:multiselection-delete", {"pk": 1}),
    ("manage:multiselection-active", {"pk": 1}),
    ("manage:menu-add", {"pk": 1}),
    ("manage:menu-edit", {"pk": 1, "menu_pk": 1}),
    ("manage:menu-delete", {"pk": 1, "menu_pk": 1}),
    ("manage:schedule", {"pk": 1}),
    ("manage:holiday-add", {"pk": 1}),
    ("manage:holiday-import", {"pk": 1}),
    ("manage:holiday-delete", {"pk": 1, "holiday_pk": 1}),
]


@pytest.mark.parametrize(("name", "kwargs"), URLS)
@pytest.mark.parametrize("who", ["alice", "bob"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_operators_and_end_users_get_403_everywhere(
    client: Client,
    request: pytest.FixtureRequest,
    reception: Multiselection,
    who: str,
    name: str,
    kwargs: dict,
    method: str,
) -> None:
    kwargs = {key: reception.pk if key == "pk" else value for key, value in kwargs.items()}
    client.force_login(request.getfixturevalue(who))

    response = getattr(client, method)(reverse(name, kwargs=kwargs))

    assert response.status_code == 403
    assert Multiselection.objects.filter(pk=reception.pk, active=True).exists()


@pytest.mark.parametrize(
    "name",
    ["multiselections", "multiselection-add", "multiselection", "multiselection-edit"]
    + ["multiselection-delete", "menu-add", "menu-edit", "menu-delete", "schedule"],
)
def test_every_page_renders_for_the_administrator(
    admin: Client, reception: Multiselection, name: str
) -> None:
    kwargs = {"pk": reception.pk, "menu_pk": menu(reception, "Day").pk}
    wanted = {"multiselections": [], "multiselection-add": [], "menu-add": ["pk"]}
    keys = wanted.get(name, ["pk", "menu_pk"] if name.startswith("menu") else ["pk"])

    response = admin.get(reverse(f"manage:{name}", kwargs={k: kwargs[k] for k in keys}))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("multiselection", "get"),
        ("multiselection-edit", "get"),
        ("multiselection-edit", "post"),
        ("multiselection-delete", "post"),
        ("multiselection-active", "post"),
        ("menu-add", "post"),
        ("schedule", "get"),
        ("schedule", "post"),
        ("holiday-add", "post"),
        ("holiday-import", "post"),
    ],
)
def test_another_companys_multiselection_is_not_found(
    admin: Client, name: str, method: str
) -> None:
    other = Company.objects.create(name="Other S.r.l.")
    theirs = Multiselection.objects.create(company=other, number="800", name="Theirs")

    response = getattr(admin, method)(reverse(f"manage:{name}", args=[theirs.pk]))

    assert response.status_code == 404
    assert Multiselection.objects.filter(pk=theirs.pk, name="Theirs", active=True).exists()


def test_another_companys_menu_is_not_found_through_our_multiselection(
    admin: Client, reception: Multiselection
) -> None:
    other = Company.objects.create(name="Other S.r.l.")
    theirs = Multiselection.objects.create(company=other, number="800", name="Theirs")
    their_menu = Menu.objects.create(multiselection=theirs, name="Secret")

    url = reverse("manage:menu-edit", args=[reception.pk, their_menu.pk])

    assert admin.get(url).status_code == 404


# --- the Multiselection itself --------------------------------------------------------------


def test_a_multiselection_is_created_and_listed(admin: Client, company: Company) -> None:
    response = admin.post(
        reverse("manage:multiselection-add"),
        {"number": "810", "name": "Support", "active": "on", "forward_to": ""},
    )

    created = Multiselection.objects.get(number="810")
    assert response.status_code == 302
    assert response.url == reverse("manage:multiselection", args=[created.pk]) + "#menus"
    assert "Support" in admin.get(reverse("manage:multiselections")).content.decode()


def test_a_number_taken_by_an_extension_is_refused(
    admin: Client, reception: Multiselection
) -> None:
    response = admin.post(
        reverse("manage:multiselection-add"), {"number": "201", "name": "X", "active": "on"}
    )

    assert response.status_code == 200
    assert "The number 201 is taken by an extension." in response.content.decode()
    assert not Multiselection.objects.filter(number="201").exists()


def test_not_active_needs_somewhere_to_send_calls(admin: Client, reception: Multiselection) -> None:
    url = reverse("manage:multiselection-edit", args=[reception.pk])
    fields = {"number": "800", "name": "Reception", "default_menu": ""}

    missing = admin.post(url, {**fields, "forward_to": ""})
    unknown = admin.post(url, {**fields, "forward_to": "555"})
    outside = admin.post(url, {**fields, "forward_to": "0212345678"})

    assert "When it is not active, calls need a number to go to." in missing.content.decode()
    assert "No extension, hunt group or Multiselection has the number 555." in (
        unknown.content.decode()
    )
    assert outside.status_code == 302
    reception.refresh_from_db()
    assert (reception.active, reception.forward_to) == (False, "0212345678")


def test_the_default_menu_is_one_of_its_own(admin: Client, reception: Multiselection) -> None:
    night = menu(reception, "Night")
    response = admin.post(
        reverse("manage:multiselection-edit", args=[reception.pk]),
        {"number": "800", "name": "Reception", "active": "on", "default_menu": night.pk},
    )

    assert response.status_code == 302
    reception.refresh_from_db()
    assert reception.default_menu == night


def test_the_active_toggle_switches_it_off_and_on(
    admin: Client, reception: Multiselection, django_capture_on_commit_callbacks: object
) -> None:
    url = reverse("manage:multiselection-active", args=[reception.pk])

    refused = admin.post(url, {"active": "0"})
    reception.refresh_from_db()
    assert refused.status_code == 302 and reception.active

    Multiselection.objects.filter(pk=reception.pk).update(forward_to="201")
    before = ConfigStamp.current()
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        admin.post(url, {"active": "0"})
    reception.refresh_from_db()
    assert not reception.active
    assert ConfigStamp.current() > before  # the engine reloads on the next call

    admin.post(url, {"active": "1"})
    reception.refresh_from_db()
    assert reception.active


def test_deleting_a_multiselection_asks_then_takes_its_menus(
    admin: Client, reception: Multiselection
) -> None:
    url = reverse("manage:multiselection-delete", args=[reception.pk])

    confirm = admin.get(url)
    deleted = admin.post(url)

    assert "Its menus, schedule and holidays are deleted with it." in confirm.content.decode()
    assert deleted.status_code == 302
    assert not Multiselection.objects.exists()
    assert not Menu.objects.exists()


# --- menus and keys -------------------------------------------------------------------------


def test_a_menu_is_saved_with_its_keys(admin: Client, reception: Multiselection) -> None:
    night = menu(reception, "Night")
    data = menu_post(
        "Main",
        **{
            "1": ("extension", "201", None),
            "2": ("hunt_group", "600", None),
            "3": ("menu", "", night.pk),
            "4": ("voicemail", "201", None),
            "5": ("outside", "0212345678", None),
            "0": ("operator", "999", night.pk),  # the number and menu are not kept
            "star": ("back", "", None),
            "timeout": ("hangup", "", None),
        },
    )

    response = admin.post(reverse("manage:menu-add", args=[reception.pk]), data)

    assert response.status_code == 302
    main = menu(reception, "Main")
    keys = {k.key: (k.action, k.number, k.target_menu_id) for k in main.keys.all()}
    assert keys == {
        "1": ("extension", "201", None),
        "2": ("hunt_group", "600", None),
        "3": ("menu", "", night.pk),
        "4": ("voicemail", "201", None),
        "5": ("outside", "0212345678", None),
        "0": ("operator", "", None),
        "*": ("back", "", None),
        "timeout": ("hangup", "", None),
    }


def test_clearing_a_row_removes_the_key(admin: Client, reception: Multiselection) -> None:
    day = menu(reception, "Day")
    MenuKey.objects.create(menu=day, key="1", action="extension", number="201")

    admin.post(reverse("manage:menu-edit", args=[reception.pk, day.pk]), menu_post("Day"))

    assert not day.keys.exists()


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (("extension", "555", None), "No extension of the company has the number 555."),
        (("extension", "600", None), "No extension of the company has the number 600."),
        (("hunt_group", "201", None), "No hunt group has the number 201."),
        (("voicemail", "600", None), "Voicemail needs an extension: 600 is not one."),
        (("voicemail", "", None), "Give the number of an extension."),
        (("menu", "", None), "Choose the menu to go to."),
        (("outside", "212345678", None), "An outside number starts with 0 (the line out)."),
        (("", "201", None), "Choose what the key does (or clear the row)."),
    ],
    ids=[
        "no-extension",
        "hunt-as-ext",
        "ext-as-hunt",
        "vm-hunt",
        "vm-empty",
        "menu",
        "outside",
        "no-action",
    ],
)
def test_a_key_that_cannot_work_is_refused_with_the_reason(
    admin: Client, reception: Multiselection, row: tuple[str, str, object], reason: str
) -> None:
    response = admin.post(
        reverse("manage:menu-add", args=[reception.pk]), menu_post("Main", **{"1": row})
    )

    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not Menu.objects.filter(name="Main").exists()
    assert not MenuKey.objects.exists()


def test_a_menu_name_is_unique_in_its_multiselection(
    admin: Client, reception: Multiselection
) -> None:
    response = admin.post(reverse("manage:menu-add", args=[reception.pk]), menu_post("Day"))

    assert response.status_code == 400
    assert "Another menu is already called “Day”." in response.content.decode()


def test_another_companys_announcement_cannot_be_chosen(
    admin: Client, reception: Multiselection
) -> None:
    from pbx.models import Announcement

    other = Company.objects.create(name="Other S.r.l.")
    theirs = Announcement.objects.create(
        company=other, name="Theirs", source="upload", file_name="t.wav", encoding="pcm16k"
    )

    response = admin.post(
        reverse("manage:menu-add", args=[reception.pk]),
        {**menu_post("Main"), "announcement": theirs.pk},
    )

    assert response.status_code == 400
    assert not Menu.objects.filter(name="Main").exists()


def test_a_key_whose_menu_was_deleted_is_reported_and_must_be_fixed(
    admin: Client, reception: Multiselection
) -> None:
    day, night = menu(reception, "Day"), menu(reception, "Night")
    MenuKey.objects.create(menu=day, key="3", action="menu", target_menu=night)
    night.delete()  # SET_NULL leaves the key without its menu
    url = reverse("manage:menu-edit", args=[reception.pk, day.pk])

    page = admin.get(url).content.decode()
    detail = admin.get(reverse("manage:multiselection", args=[reception.pk])).content.decode()
    saved = admin.post(url, menu_post("Day", **{"3": ("menu", "", None)}))

    assert "Points at something deleted" in page
    assert "Points at something deleted" in detail
    assert saved.status_code == 400
    assert "Points at something deleted" in saved.content.decode()
    fixed = admin.post(url, menu_post("Day", **{"3": ("replay", "", None)}))
    assert fixed.status_code == 302
    assert day.keys.get().action == "replay"


def test_a_menu_in_use_is_not_deleted_and_its_users_are_named(
    admin: Client, reception: Multiselection
) -> None:
    day, night = menu(reception, "Day"), menu(reception, "Night")
    Multiselection.objects.filter(pk=reception.pk).update(default_menu=night)
    SchedulePeriod.objects.create(
        multiselection=reception, weekday=0, start=18 * 60, end=24 * 60, menu=night
    )
    Holiday.objects.create(
        multiselection=reception, date=date(2030, 12, 25), name="Natale", menu=night
    )
    MenuKey.objects.create(menu=day, key="9", action="menu", target_menu=night)
    url = reverse("manage:menu-delete", args=[reception.pk, night.pk])

    confirm = admin.get(url).content.decode()
    refused = admin.post(url, follow=True).content.decode()

    for page in (confirm, refused):
        assert "The menu “Night” cannot be deleted: it is used by" in page
        assert "the Multiselection, as its menu outside the programmed hours" in page
        assert "the weekly schedule (Monday 18:00-24:00)" in page
        assert "the holidays 2030-12-25 Natale" in page
        assert "key 9 of the menu “Day”" in page
    assert Menu.objects.filter(pk=night.pk).exists()


def test_an_unused_menu_is_deleted(admin: Client, reception: Multiselection) -> None:
    night = menu(reception, "Night")

    response = admin.post(reverse("manage:menu-delete", args=[reception.pk, night.pk]))

    assert response.status_code == 302
    assert not Menu.objects.filter(pk=night.pk).exists()


# --- the weekly schedule --------------------------------------------------------------------


def test_the_schedule_grid_round_trips(
    admin: Client, reception: Multiselection, django_capture_on_commit_callbacks: object
) -> None:
    day, night = menu(reception, "Day"), menu(reception, "Night")
    cells = [[0, slot, day.pk] for slot in range(32, 48)]  # Monday 08:00-12:00
    cells += [[0, slot, night.pk] for slot in range(72, 96)]  # Monday 18:00-24:00
    cells += [[4, slot, day.pk] for slot in range(36, 40)]  # Friday 09:00-10:00
    before = ConfigStamp.current()

    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        response = admin.post(
            reverse("manage:schedule", args=[reception.pk]),
            {"schedule": json.dumps({"cells": cells})},
        )

    assert response.status_code == 302
    stored = {(p.weekday, p.start, p.end, p.menu_id) for p in reception.periods.all()}
    assert stored == {
        (0, 480, 720, day.pk),
        (0, 1080, 1440, night.pk),
        (4, 540, 600, day.pk),
    }
    assert ConfigStamp.current() > before
    page = admin.get(reverse("manage:multiselection", args=[reception.pk])).content.decode()
    assert 'role="grid"' in page
    assert page.count(f'data-menu="{day.pk}"') == 20
    assert page.count(f'data-menu="{night.pk}"') == 24
    assert 'aria-label="Monday 08:15: Day"' in page
    assert 'aria-label="Tuesday 08:15: no menu"' in page
    as_json = admin.get(reverse("manage:schedule", args=[reception.pk])).json()
    assert {(p["weekday"], p["start"], p["end"]) for p in as_json["periods"]} == {
        (0, 480, 720),
        (0, 1080, 1440),
        (4, 540, 600),
    }


def test_an_empty_grid_clears_the_week(admin: Client, reception: Multiselection) -> None:
    SchedulePeriod.objects.create(
        multiselection=reception, weekday=1, start=0, end=60, menu=menu(reception, "Day")
    )

    admin.post(reverse("manage:schedule", args=[reception.pk]), {"schedule": '{"cells": []}'})

    assert not reception.periods.exists()


def test_overlapping_periods_are_refused_naming_both(
    admin: Client, reception: Multiselection
) -> None:
    day, night = menu(reception, "Day"), menu(reception, "Night")
    kept = SchedulePeriod.objects.create(
        multiselection=reception, weekday=2, start=0, end=60, menu=day
    )
    periods = [
        {"weekday": 0, "start": 480, "end": 720, "menu": day.pk},
        {"weekday": 0, "start": 600, "end": 780, "menu": night.pk},
    ]

    response = admin.post(
        reverse("manage:schedule", args=[reception.pk]),
        json.dumps({"periods": periods}),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "Monday 08:00-12:00 overlaps Monday 10:00-13:00" in response.json()["error"]
    assert list(reception.periods.all()) == [kept]


def test_periods_that_do_not_overlap_are_stored_from_json(
    admin: Client, reception: Multiselection
) -> None:
    day = menu(reception, "Day")
    periods = [
        {"weekday": 0, "start": 480, "end": 720, "menu": day.pk},
        {"weekday": 0, "start": 720, "end": 780, "menu": day.pk},
    ]

    response = admin.post(
        reverse("manage:schedule", args=[reception.pk]),
        json.dumps({"periods": periods}),
        content_type="application/json",
    )

    assert response.json() == {"periods": 2}
    assert reception.periods.count() == 2


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("not json", "The schedule is not valid JSON."),
        ('{"cells": [[0, 96, MENU]]}', "a slot 0-95"),
        ('{"cells": [[0, 1, MENU], [0, 1, MENU]]}', "is given twice"),
        ('{"cells": [[0, 1, 999999]]}', "The menu 999999 is not a menu of this Multiselection."),
        ('{"periods": [{"weekday": 0, "start": 10, "end": 60, "menu": MENU}]}', "quarter hour"),
        ('{"periods": [{"weekday": 0, "start": 60, "end": 60, "menu": MENU}]}', "must end after"),
        ('{"periods": [{"weekday": 0, "start": true, "end": 60, "menu": MENU}]}', "whole number"),
        ("[]", "Post {“cells”: [...]} or {“periods”: [...]}."),
    ],
)
def test_a_malformed_schedule_is_refused_and_nothing_changes(
    admin: Client, reception: Multiselection, payload: str, reason: str
) -> None:
    day = menu(reception, "Day")
    SchedulePeriod.objects.create(multiselection=reception, weekday=2, start=0, end=60, menu=day)

    response = admin.post(
        reverse("manage:schedule", args=[reception.pk]),
        {"schedule": payload.replace("MENU", str(day.pk))},
        follow=True,
    )

    assert reason in response.content.decode()
    assert "The schedule was not saved" in response.content.decode()
    assert reception.periods.count() == 1


def test_another_multiselections_menu_cannot_be_painted(
    admin: Client, reception: Multiselection, company: Company
) -> None:
    other = Multiselection.objects.create(company=company, number="810", name="Support")
    foreign = Menu.objects.create(multiselection=other, name="Foreign")

    response = admin.post(
        reverse("manage:schedule", args=[reception.pk]),
        json.dumps({"cells": [[0, 0, foreign.pk]]}),
        content_type="application/json",
    )

    assert response.status_code == 400
    assert not SchedulePeriod.objects.exists()


# --- holidays -------------------------------------------------------------------------------


def test_a_holiday_is_added_and_deleted(admin: Client, reception: Multiselection) -> None:
    night = menu(reception, "Night")
    url = reverse("manage:holiday-add", args=[reception.pk])
    fields = {"holiday-date": "2030-12-25", "holiday-name": "Natale", "holiday-menu": night.pk}

    added = admin.post(url, fields)
    again = admin.post(url, fields)

    assert added.status_code == 302
    holiday = reception.holidays.get()
    assert (holiday.date, holiday.name, holiday.menu) == (date(2030, 12, 25), "Natale", night)
    assert again.status_code == 400
    assert "2030-12-25 is already a holiday (Natale)." in again.content.decode()
    page = admin.get(reverse("manage:multiselection", args=[reception.pk])).content.decode()
    assert "Natale" in page

    admin.post(reverse("manage:holiday-delete", args=[reception.pk, holiday.pk]))
    assert not reception.holidays.exists()


def ics(*events: tuple[date, str], extra: str = "") -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Test//EN"]
    for day, name in events:
        lines += [
            "BEGIN:VEVENT",
            f"DTSTART;VALUE=DATE:{day:%Y%m%d}",
            f"SUMMARY:{name}",
            "END:VEVENT",
        ]
    if extra:
        lines += extra.strip().splitlines()
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


def test_an_ics_file_brings_the_next_two_years_and_skips_known_dates(
    admin: Client, reception: Multiselection
) -> None:
    today = today_in_rome()
    night = menu(reception, "Night")
    soon, later = today + timedelta(days=10), today + timedelta(days=400)
    Holiday.objects.create(multiselection=reception, date=soon, name="Known", menu=night)
    data = ics(
        (today - timedelta(days=3), "Past"),
        (soon, "Soon"),
        (later, "Later"),
        (today + timedelta(days=800), "Too far"),
    )

    response = admin.post(
        reverse("manage:holiday-import", args=[reception.pk]),
        {"ics-file": SimpleUploadedFile("holidays.ics", data), "ics-menu": night.pk},
        follow=True,
    )

    assert "1 holidays imported, 1 dates skipped (already holidays)." in response.content.decode()
    assert {(h.date, h.name) for h in reception.holidays.all()} == {
        (soon, "Known"),
        (later, "Later"),
    }


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"this is not a calendar", "This is not an iCalendar file"),
        (ics(), "The calendar holds no events."),
        (ics((date(2001, 1, 1), "Long ago")), "The calendar has no day from"),
    ],
    ids=["text", "no-events", "out-of-range"],
)
def test_a_bad_ics_file_is_a_form_error_and_nothing_is_stored(
    admin: Client, reception: Multiselection, data: bytes, reason: str
) -> None:
    response = admin.post(
        reverse("manage:holiday-import", args=[reception.pk]),
        {"ics-file": SimpleUploadedFile("h.ics", data), "ics-menu": menu(reception, "Day").pk},
    )

    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not Holiday.objects.exists()
