"""The auto-attendant ("Multiselection") pages: the list, and per Multiselection its menus and
their keys, the weekly schedule and the holidays (SPEC E3, E4).

The detail page holds the three sections; each form on it posts to its own small view, which on
an error shows the detail page again with that form's errors. The schedule grid is painted in
the browser (static/js/schedule.js) and posted whole as JSON. Every change takes effect on the
next call: saving moves the engine's configuration stamp (pbx/signals.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from pbx.engine.schedule import SLOT_MINUTES, SLOTS_PER_DAY, ScheduleError
from pbx.ics_import import MAX_BYTES as ICS_MAX_BYTES
from pbx.ics_import import IcsError, holidays_from_ics
from pbx.models import Holiday, Menu, Multiselection
from portal.access import admin_view
from portal.attendant_forms import (
    HolidayForm,
    IcsImportForm,
    KeyTable,
    KeyTargets,
    MenuForm,
    MultiselectionForm,
    import_holidays,
    import_range,
    key_warning,
    menu_users,
    parse_schedule,
    replace_schedule,
)

# Light fills that keep dark text readable, one per menu in the order of creation.
PALETTE = (
    "#9cd3ff",
    "#ffc98f",
    "#a8e6a1",
    "#f4b6e0",
    "#fff08a",
    "#cdb8ff",
    "#9fe8e0",
    "#ffb3b3",
    "#d9d2a6",
    "#c8ccd2",
)
FIRST_FOCUSED_SLOT = 8 * 60 // SLOT_MINUTES  # the grid's keyboard focus starts on Monday 08:00


def _multiselection_for(request: HttpRequest, pk: int) -> Multiselection:
    company = request.company  # type: ignore[attr-defined]
    return get_object_or_404(Multiselection, pk=pk, company=company)


def _detail_url(multiselection: Multiselection, section: str = "") -> str:
    url = reverse("manage:multiselection", args=[multiselection.pk])
    return f"{url}#{section}" if section else url


# --- list, create, edit, delete -------------------------------------------------------------


@admin_view
def multiselection_list(request: HttpRequest) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    items = company.multiselections.select_related("default_menu").annotate(
        menu_count=Count("menus")
    )
    return render(request, "manage/attendant/list.html", {"multiselections": items})


@admin_view
def multiselection_add(request: HttpRequest) -> HttpResponse:
    form = MultiselectionForm(request.POST or None, company=request.company)  # type: ignore[attr-defined]
    if request.method == "POST" and form.is_valid():
        multiselection = form.save()
        messages.success(
            request, _("Multiselection %s created: now add its menus.") % form.instance
        )
        return redirect(_detail_url(multiselection, "menus"))
    return render(request, "manage/attendant/form.html", {"form": form})


@admin_view
def multiselection_edit(request: HttpRequest, pk: int) -> HttpResponse:
    multiselection = _multiselection_for(request, pk)
    form = MultiselectionForm(
        request.POST or None,
        instance=multiselection,
        company=request.company,  # type: ignore[attr-defined]
    )
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Multiselection %s saved.") % multiselection)
        return redirect(_detail_url(multiselection))
    context = {"form": form, "multiselection": multiselection}
    return render(request, "manage/attendant/form.html", context)


@admin_view
def multiselection_delete(request: HttpRequest, pk: int) -> HttpResponse:
    multiselection = _multiselection_for(request, pk)
    if request.method == "POST":
        multiselection.delete()
        messages.success(request, _("Multiselection %s deleted.") % multiselection)
        return redirect("manage:multiselections")
    numbers = ", ".join(did.number for did in multiselection.dids.all())
    warnings = [_("Its menus, schedule and holidays are deleted with it.")]
    if numbers:
        warnings.append(_("The company numbers %s will no longer reach anything.") % numbers)
    context = {
        "thing": _("the Multiselection %s") % multiselection,
        "warnings": warnings,
        "cancel_url": _detail_url(multiselection),
    }
    return render(request, "manage/attendant/confirm_delete.html", context)


@admin_view
@require_POST
def multiselection_active(request: HttpRequest, pk: int) -> HttpResponse:
    """Switch the Multiselection on or off; the next call follows."""
    multiselection = _multiselection_for(request, pk)
    active = request.POST.get("active") == "1"
    if not active and not multiselection.forward_to:
        messages.error(
            request, _("Give the number calls go to when it is not active, then switch it off.")
        )
        return redirect("manage:multiselection-edit", pk=pk)
    multiselection.active = active
    multiselection.save(update_fields=["active"])
    if active:
        messages.success(request, _("Active: the next call hears the menus."))
    else:
        messages.success(
            request, _("Not active: the next call goes to %s.") % multiselection.forward_to
        )
    return redirect(_detail_url(multiselection))


# --- the detail page ------------------------------------------------------------------------


@dataclass(frozen=True)
class GridCell:
    weekday: int
    slot: int
    when: str  # "Monday 08:15"
    menu: Menu | None
    colour: str
    starts_run: bool  # the first cell of a stretch of one menu: it shows the menu's name
    focused: bool


def _colours(menus: list[Menu]) -> dict[int, str]:
    in_creation_order = sorted(menus, key=lambda menu: menu.pk)
    return {menu.pk: PALETTE[i % len(PALETTE)] for i, menu in enumerate(in_creation_order)}


def _schedule_rows(
    multiselection: Multiselection, menus: dict[int, Menu], colours: dict[int, str]
) -> list[tuple[str, bool, list[GridCell]]]:
    """The grid: one row per quarter hour, (time, full hour?, the seven days' cells)."""
    painted: dict[tuple[int, int], int] = {}
    for period in multiselection.periods.all():
        for slot in range(period.start // SLOT_MINUTES, period.end // SLOT_MINUTES):
            painted.setdefault((period.weekday, slot), period.menu_id)
    rows = []
    for slot in range(SLOTS_PER_DAY):
        minutes = slot * SLOT_MINUTES
        time = f"{minutes // 60:02d}:{minutes % 60:02d}"
        cells = []
        for weekday in range(7):
            menu_id = painted.get((weekday, slot))
            cells.append(
                GridCell(
                    weekday,
                    slot,
                    f"{WEEKDAYS[weekday]} {time}",
                    menus.get(menu_id) if menu_id else None,
                    colours.get(menu_id, "") if menu_id else "",
                    menu_id is not None and painted.get((weekday, slot - 1)) != menu_id,
                    weekday == 0 and slot == FIRST_FOCUSED_SLOT,
                )
            )
        rows.append((time, minutes % 60 == 0, cells))
    return rows


def _detail_page(
    request: HttpRequest,
    multiselection: Multiselection,
    *,
    holiday_form: HolidayForm | None = None,
    ics_form: IcsImportForm | None = None,
    status: int = 200,
) -> HttpResponse:
    menus = list(
        multiselection.menus.select_related("announcement")
        .prefetch_related("keys")
        .annotate(
            period_count=Count("periods", distinct=True),
            holiday_count=Count("holidays", distinct=True),
        )
    )
    colours = _colours(menus)
    targets = KeyTargets.of(multiselection)
    menu_rows = [(menu, colours[menu.pk], _stored_problems(menu, targets)) for menu in menus]
    context = {
        "multiselection": multiselection,
        "menu_rows": menu_rows,
        "grid": _schedule_rows(multiselection, {m.pk: m for m in menus}, colours),
        "weekdays": [WEEKDAYS[day] for day in range(7)],
        "schedule_config": {
            "menus": {str(m.pk): {"name": m.name, "colour": colours[m.pk]} for m in menus},
            "labels": {
                "none": _("no menu"),
                "unsaved": _("Changes not saved yet."),
                "saved": _("Weekly schedule saved: %d periods."),
                "failed": _("The schedule was not saved: %s"),
            },
        },
        "holidays": multiselection.holidays.select_related("menu"),
        "holiday_form": holiday_form or HolidayForm(multiselection=multiselection),
        "ics_form": ics_form or IcsImportForm(multiselection=multiselection),
        "dids": multiselection.dids.all(),
        "today": import_range(multiselection.company)[0],
    }
    return render(request, "manage/attendant/detail.html", context, status=status)


def _stored_problems(menu: Menu, targets: KeyTargets) -> list[str]:
    found = []
    for key in menu.keys.all():
        warning = key_warning(targets, key.action, key.number, key.target_menu_id)
        if warning:
            found.append(f"{key.get_key_display()}: {warning}")
    return found


@admin_view
def multiselection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail_page(request, _multiselection_for(request, pk))


# --- menus ----------------------------------------------------------------------------------


def _menu_page(request: HttpRequest, multiselection: Multiselection, menu: Menu) -> HttpResponse:
    is_new = menu.pk is None
    data = request.POST if request.method == "POST" else None
    form = MenuForm(data, instance=menu, multiselection=multiselection)
    keys = KeyTable(data, multiselection, None if is_new else menu)
    status = 200
    if data is not None:
        menu_valid, keys_valid = form.is_valid(), keys.is_valid()  # both, for every error
        if menu_valid and keys_valid:
            with transaction.atomic():
                saved = form.save()
                keys.save(saved)
            messages.success(request, _("Menu “%s” saved.") % saved.name)
            return redirect(_detail_url(multiselection, "menus"))
        status = 400
    company = multiselection.company
    context = {
        "multiselection": multiselection,
        "menu": None if is_new else menu,
        "form": form,
        "keys": keys,
        "warnings": [] if data is not None else keys.warnings(),
        "extensions": company.extensions.order_by("number"),
        "hunt_groups": company.hunt_groups.order_by("number"),
    }
    return render(request, "manage/attendant/menu_form.html", context, status=status)


@admin_view
def menu_add(request: HttpRequest, pk: int) -> HttpResponse:
    multiselection = _multiselection_for(request, pk)
    return _menu_page(request, multiselection, Menu(multiselection=multiselection))


@admin_view
def menu_edit(request: HttpRequest, pk: int, menu_pk: int) -> HttpResponse:
    multiselection = _multiselection_for(request, pk)
    menu = get_object_or_404(Menu, pk=menu_pk, multiselection=multiselection)
    return _menu_page(request, multiselection, menu)


@admin_view
def menu_delete(request: HttpRequest, pk: int, menu_pk: int) -> HttpResponse:
    multiselection = _multiselection_for(request, pk)
    menu = get_object_or_404(Menu, pk=menu_pk, multiselection=multiselection)
    users = menu_users(menu)
    refusal = _("The menu “%(name)s” cannot be deleted: it is used by %(users)s.") % {
        "name": menu.name,
        "users": "; ".join(users),
    }
    if request.method == "POST":
        if users:
            messages.error(request, refusal)
        else:
            menu.delete()
            messages.success(request, _("Menu “%s” deleted.") % menu.name)
        return redirect(_detail_url(multiselection, "menus"))
    context = {
        "thing": _("the menu “%s”") % menu.name,
        "blockers": [refusal] if users else [],
        "cancel_url": _detail_url(multiselection, "menus"),
    }
    return render(request, "manage/attendant/confirm_delete.html", context)


# --- the weekly schedule --------------------------------------------------------------------


@admin_view
def schedule(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the week as JSON periods. POST: replace it, from the grid's form (a "schedule"
    field, then back to the page) or from a JSON body (a JSON answer)."""
    multiselection = _multiselection_for(request, pk)
    if request.method == "GET":
        periods = multiselection.periods.values("weekday", "start", "end", "menu")
        return JsonResponse({"periods": list(periods)})
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    as_json = request.content_type == "application/json"
    posted = request.body if as_json else request.POST.get("schedule", "")
    menu_ids = set(multiselection.menus.values_list("pk", flat=True))
    try:
        periods = parse_schedule(posted, menu_ids)
    except ScheduleError as error:
        if as_json:
            return JsonResponse({"error": str(error)}, status=400)
        messages.error(request, _("The schedule was not saved: %s") % error)
        return redirect(_detail_url(multiselection, "schedule"))
    replace_schedule(multiselection, periods)
    if as_json:
        return JsonResponse({"periods": len(periods)})
    messages.success(request, _("Weekly schedule saved: %d periods.") % len(periods))
    return redirect(_detail_url(multiselection, "schedule"))


# --- holidays -------------------------------------------------------------------------------


@admin_view
@require_POST
def holiday_add(request: HttpRequest, pk: int) -> HttpResponse:
    multiselection = _multiselection_for(request, pk)
    form = HolidayForm(request.POST, multiselection=multiselection)
    if form.is_valid():
        holiday = form.save()
        messages.success(request, _("Holiday %s added.") % holiday.date.isoformat())
        return redirect(_detail_url(multiselection, "holidays"))
    return _detail_page(request, multiselection, holiday_form=form, status=400)


@admin_view
@require_POST
def holiday_delete(request: HttpRequest, pk: int, holiday_pk: int) -> HttpResponse:
    multiselection = _multiselection_for(request, pk)
    holiday = get_object_or_404(Holiday, pk=holiday_pk, multiselection=multiselection)
    holiday.delete()
    messages.success(request, _("Holiday %s deleted.") % holiday.date.isoformat())
    return redirect(_detail_url(multiselection, "holidays"))


@admin_view
@require_POST
def holiday_import(request: HttpRequest, pk: int) -> HttpResponse:
    multiselection = _multiselection_for(request, pk)
    form = IcsImportForm(request.POST, request.FILES, multiselection=multiselection)
    if form.is_valid():
        start, end = import_range(multiselection.company)
        data = form.cleaned_data["file"].read(ICS_MAX_BYTES + 1)
        try:
            days = holidays_from_ics(data, start=start, end=end)
        except IcsError as error:
            form.add_error("file", str(error))
        else:
            if days:
                return _imported(request, multiselection, days, form.cleaned_data["menu"])
            form.add_error(
                "file",
                _("The calendar has no day from %(start)s to %(end)s.")
                % {"start": start.isoformat(), "end": end.isoformat()},
            )
    return _detail_page(request, multiselection, ics_form=form, status=400)


def _imported(
    request: HttpRequest, multiselection: Multiselection, days: list[Any], menu: Menu
) -> HttpResponse:
    added, skipped = import_holidays(multiselection, days, menu)
    message = _("%(added)d holidays imported, %(skipped)d dates skipped (already holidays).")
    messages.success(request, message % {"added": added, "skipped": skipped})
    return redirect(_detail_url(multiselection, "holidays"))


_ONE = "multiselections/<int:pk>/"
urlpatterns = [
    path("multiselections/", multiselection_list, name="multiselections"),
    path("multiselections/add/", multiselection_add, name="multiselection-add"),
    path(_ONE, multiselection_detail, name="multiselection"),
    path(f"{_ONE}edit/", multiselection_edit, name="multiselection-edit"),
    path(f"{_ONE}delete/", multiselection_delete, name="multiselection-delete"),
    path(f"{_ONE}active/", multiselection_active, name="multiselection-active"),
    path(f"{_ONE}menus/add/", menu_add, name="menu-add"),
    path(f"{_ONE}menus/<int:menu_pk>/", menu_edit, name="menu-edit"),
    path(f"{_ONE}menus/<int:menu_pk>/delete/", menu_delete, name="menu-delete"),
    path(f"{_ONE}schedule/", schedule, name="schedule"),
    path(f"{_ONE}holidays/add/", holiday_add, name="holiday-add"),
    path(f"{_ONE}holidays/import/", holiday_import, name="holiday-import"),
    path(f"{_ONE}holidays/<int:holiday_pk>/delete/", holiday_delete, name="holiday-delete"),
]
