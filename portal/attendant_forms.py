"""Forms of the Multiselection pages, and the writes behind them (SPEC E3, E4).

A menu's keys are a fixed table (1-9, *, 0, #, then the timeout and an invalid key), one small
`KeyForm` per row gathered in a `KeyTable`; `KeyTargets` says whether a key's number and menu
reach something that exists, both to refuse a save and to flag a stored key whose target was
deleted since. The week's schedule arrives as JSON (grid cells, or periods from an API client)
and is checked whole before `replace_schedule` swaps it in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from pbx.engine.schedule import (
    Period,
    ScheduleError,
    cells_to_periods,
    check_period,
    describe,
    find_overlap,
)
from pbx.models import (
    INVALID,
    KEYS,
    TIMEOUT,
    Company,
    ConfigStamp,
    Extension,
    Holiday,
    HuntGroup,
    KeyAction,
    Menu,
    MenuKey,
    Multiselection,
    SchedulePeriod,
)
from pbx.models.reception import outside_or_inside_validator

# --- Multiselection -------------------------------------------------------------------------


def internal_number_exists(company: Company, number: str) -> bool:
    """Whether a short number reaches something of the company (the operator included)."""
    if number == company.operator_number:
        return True
    return any(
        model.objects.filter(company=company, number=number).exists()
        for model in (Extension, HuntGroup, Multiselection)
    )


class MultiselectionForm(forms.ModelForm):
    class Meta:
        model = Multiselection
        fields = ["number", "name", "active", "forward_to", "default_menu"]
        help_texts = {
            "active": gettext_lazy("When it is not active, calls go to the number below."),
            "default_menu": gettext_lazy(
                "What callers hear outside the periods of the weekly schedule."
            ),
        }

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.company = company
        if self.instance.pk:
            self.fields["default_menu"].queryset = self.instance.menus.all()
            self.fields["default_menu"].empty_label = _("None: outside the schedule, no answer")
        else:  # a new Multiselection has no menus yet
            del self.fields["default_menu"]

    def clean_forward_to(self) -> str:
        number = self.cleaned_data["forward_to"]
        company = self.instance.company
        if number and not number.startswith("0") and not internal_number_exists(company, number):
            raise forms.ValidationError(
                _("No extension, hunt group or Multiselection has the number %s.") % number
            )
        return number


# --- menus and their keys -------------------------------------------------------------------


class MenuForm(forms.ModelForm):
    class Meta:
        model = Menu
        fields = ["name", "description", "announcement", "timeout", "retries"]

    def __init__(self, *args: Any, multiselection: Multiselection, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.multiselection = multiselection
        field = self.fields["announcement"]
        field.queryset = multiselection.company.announcements.all()
        field.empty_label = _("None: the menu waits for a key in silence")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        others = Menu.objects.filter(multiselection=self.instance.multiselection, name=name)
        if others.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("Another menu is already called “%s”.") % name)
        return name


KEY_ROWS: tuple[tuple[str, Any], ...] = (
    *((key, key) for key in KEYS),
    (TIMEOUT, gettext_lazy("Timeout (no key)")),
    (INVALID, gettext_lazy("Invalid key")),
)
NEEDS_NUMBER = {KeyAction.EXTENSION, KeyAction.HUNT_GROUP, KeyAction.OUTSIDE, KeyAction.VOICEMAIL}


@dataclass(frozen=True)
class KeyTargets:
    """What a menu key of one Multiselection may reach: the company's numbers, its menus."""

    extensions: frozenset[str]
    hunt_groups: frozenset[str]
    menus: frozenset[int]

    @classmethod
    def of(cls, multiselection: Multiselection) -> KeyTargets:
        company = multiselection.company
        return cls(
            frozenset(company.extensions.values_list("number", flat=True)),
            frozenset(company.hunt_groups.values_list("number", flat=True)),
            frozenset(multiselection.menus.values_list("pk", flat=True)),
        )

    def problem(self, action: str, number: str, menu_id: int | None) -> tuple[str, str] | None:
        """(field, message) when the key cannot work as given; None when it can."""
        if not action:
            if number or menu_id:
                return "action", _("Choose what the key does (or clear the row).")
            return None
        if action in (KeyAction.EXTENSION, KeyAction.VOICEMAIL) and number not in self.extensions:
            if not number:
                return "number", _("Give the number of an extension.")
            if action == KeyAction.VOICEMAIL:
                return "number", _("Voicemail needs an extension: %s is not one.") % number
            return "number", _("No extension of the company has the number %s.") % number
        if action == KeyAction.HUNT_GROUP and number not in self.hunt_groups:
            if not number:
                return "number", _("Give the number of a hunt group.")
            return "number", _("No hunt group has the number %s.") % number
        if action == KeyAction.OUTSIDE and not number.startswith("0"):
            return "number", _("An outside number starts with 0 (the line out).")
        if action == KeyAction.MENU and menu_id not in self.menus:
            if menu_id is None:
                return "target_menu", _("Choose the menu to go to.")
            return "target_menu", _("That menu belongs to another Multiselection.")
        return None


DELETED_TARGET = gettext_lazy(
    "Points at something deleted: the menu this key went to no longer exists. "
    "Choose another menu or another action."
)


def key_warning(targets: KeyTargets, action: str, number: str, menu_id: int | None) -> str | None:
    """Why a stored key cannot work (its target deleted since, say), or None."""
    if action == KeyAction.MENU and menu_id is None:  # only a deletion leaves it so
        return str(DELETED_TARGET)
    found = targets.problem(action, number, menu_id)
    return found[1] if found else None


class KeyForm(forms.Form):
    """One row of the key table."""

    action = forms.ChoiceField(
        label=gettext_lazy("Action"),
        required=False,
        choices=[("", gettext_lazy("— nothing —")), *KeyAction.choices],
    )
    number = forms.CharField(
        label=gettext_lazy("Number"),
        required=False,
        max_length=24,
        validators=[outside_or_inside_validator],
    )
    target_menu = forms.ModelChoiceField(
        label=gettext_lazy("Menu"), required=False, queryset=Menu.objects.none()
    )

    def __init__(
        self,
        data: Any,
        *,
        key: str,
        label: Any,
        stored: MenuKey | None,
        targets: KeyTargets,
        menus: Any,
    ) -> None:
        slug = {"*": "star", "#": "hash"}.get(key, key)
        initial = {}
        if stored is not None:
            initial = {
                "action": stored.action,
                "number": stored.number,
                "target_menu": stored.target_menu_id,
            }
        super().__init__(data, initial=initial, prefix=f"key-{slug}")
        self.key, self.label, self.targets = key, label, targets
        # A "go to a menu" key without a menu was left so by the deletion of its target.
        self.dangling = (
            stored is not None and stored.action == KeyAction.MENU and not stored.target_menu_id
        )
        self.fields["target_menu"].queryset = menus
        self.fields["target_menu"].empty_label = "—"
        for name, text in (
            ("action", _("Action for key %s")),
            ("number", _("Number for key %s")),
            ("target_menu", _("Menu for key %s")),
        ):
            self.fields[name].widget.attrs["aria-label"] = text % label
        self.fields["number"].widget.attrs.update({"list": "key-numbers", "size": 12})

    @property
    def warning(self) -> str | None:
        """What is wrong with the stored key (shown before any save), or None."""
        initial = self.initial
        return key_warning(
            self.targets,
            initial.get("action", ""),
            initial.get("number", ""),
            initial.get("target_menu"),
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        action, number = data.get("action", ""), (data.get("number") or "").strip()
        menu = data.get("target_menu")
        found = self.targets.problem(action, number, menu.pk if menu else None)
        if found:
            field, message = found
            if self.dangling and field == "target_menu" and menu is None:
                message = str(DELETED_TARGET)
            self.add_error(field, message)
        data["number"] = number if action in NEEDS_NUMBER else ""
        data["target_menu"] = menu if action == KeyAction.MENU else None
        return data


class KeyTable:
    """The menu's key rows: validated together, saved together."""

    def __init__(self, data: Any, multiselection: Multiselection, menu: Menu | None) -> None:
        stored = {k.key: k for k in menu.keys.all()} if menu is not None else {}
        menus = multiselection.menus.all()
        if menu is not None:
            menus = menus.exclude(pk=menu.pk)
        targets = KeyTargets.of(multiselection)
        self.rows = [
            KeyForm(
                data, key=key, label=label, stored=stored.get(key), targets=targets, menus=menus
            )
            for key, label in KEY_ROWS
        ]

    def is_valid(self) -> bool:
        return all([row.is_valid() for row in self.rows])  # a list: every row gets its errors

    def warnings(self) -> list[tuple[Any, str]]:
        """(key label, problem) of the stored keys that cannot work as they are."""
        return [(row.label, row.warning) for row in self.rows if row.warning]

    def save(self, menu: Menu) -> None:
        for row in self.rows:
            data = row.cleaned_data
            if not data["action"]:
                MenuKey.objects.filter(menu=menu, key=row.key).delete()
                continue
            MenuKey.objects.update_or_create(
                menu=menu,
                key=row.key,
                defaults={
                    "action": data["action"],
                    "number": data["number"],
                    "target_menu": data["target_menu"],
                },
            )


def menu_users(menu: Menu) -> list[str]:
    """What would lose its menu if `menu` were deleted: periods, holidays, other menus' keys."""
    users: list[str] = []
    if menu.multiselection.default_menu_id == menu.pk:
        users.append(_("the Multiselection, as its menu outside the programmed hours"))
    periods = [Period(p.weekday, p.start, p.end, p.menu_id) for p in menu.periods.all()]
    if periods:
        shown = ", ".join(describe(p) for p in periods[:4])
        more = "…" if len(periods) > 4 else ""
        users.append(_("the weekly schedule (%s)") % f"{shown}{more}")
    holidays = list(menu.holidays.all())
    if holidays:
        days = ", ".join(f"{h.date:%Y-%m-%d}{' ' + h.name if h.name else ''}" for h in holidays[:4])
        more = "…" if len(holidays) > 4 else ""
        users.append(_("the holidays %s") % f"{days}{more}")
    keys = MenuKey.objects.filter(target_menu=menu).exclude(menu=menu).select_related("menu")
    for key in keys.order_by("menu__name", "key"):
        users.append(
            _("key %(key)s of the menu “%(menu)s”")
            % {"key": key.get_key_display(), "menu": key.menu.name}
        )
    return users


# --- the weekly schedule --------------------------------------------------------------------


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScheduleError(_("The schedule holds %r where a whole number belongs.") % (value,))
    return value


def _cells(items: Any) -> dict[tuple[int, int], int]:
    if not isinstance(items, list):
        raise ScheduleError(_("“cells” must be a list of [weekday, slot, menu]."))
    cells: dict[tuple[int, int], int] = {}
    for item in items:
        if not isinstance(item, list) or len(item) != 3:
            raise ScheduleError(_("Each cell must be [weekday, slot, menu], not %r.") % (item,))
        weekday, slot, menu = (_whole(v) for v in item)
        if (weekday, slot) in cells:
            raise ScheduleError(
                _("The cell (%(day)s, %(slot)s) is given twice.")
                % {
                    "day": weekday,
                    "slot": slot,
                }
            )
        cells[(weekday, slot)] = menu
    return cells


def _periods(items: Any) -> list[Period]:
    if not isinstance(items, list):
        raise ScheduleError(_("“periods” must be a list."))
    periods = []
    for item in items:
        if not isinstance(item, dict):
            raise ScheduleError(_("Each period must be an object, not %r.") % (item,))
        try:
            values = [_whole(item[name]) for name in ("weekday", "start", "end", "menu")]
        except KeyError as missing:
            raise ScheduleError(_("A period lacks its %s.") % missing) from None
        period = Period(*values)
        check_period(period)
        periods.append(period)
    overlap = find_overlap(periods)
    if overlap:
        first, second = overlap
        raise ScheduleError(
            _("%(first)s overlaps %(second)s: a moment of the week has one menu.")
            % {"first": describe(first), "second": describe(second)}
        )
    return periods


def parse_schedule(text: str | bytes, menu_ids: set[int]) -> list[Period]:
    """The week's periods from posted JSON: {"cells": [[weekday, slot, menu], ...]} as the
    grid sends it, or {"periods": [{"weekday", "start", "end", "menu"}, ...]}.

    Raises:
        ScheduleError: not JSON, a malformed entry, overlapping periods, or a menu that is not
            one of `menu_ids`; the message names the culprit.
    """
    try:
        payload = json.loads(text)
    except (ValueError, TypeError):
        raise ScheduleError(_("The schedule is not valid JSON.")) from None
    if isinstance(payload, dict) and "cells" in payload:
        periods = cells_to_periods(_cells(payload["cells"]))
    elif isinstance(payload, dict) and "periods" in payload:
        periods = _periods(payload["periods"])
    else:
        raise ScheduleError(_("Post {“cells”: [...]} or {“periods”: [...]}."))
    unknown = sorted({p.menu for p in periods} - menu_ids)
    if unknown:
        raise ScheduleError(_("The menu %s is not a menu of this Multiselection.") % unknown[0])
    return periods


@transaction.atomic
def replace_schedule(multiselection: Multiselection, periods: list[Period]) -> None:
    """The Multiselection's week becomes `periods` (already checked), all at once."""
    multiselection.periods.all().delete()
    SchedulePeriod.objects.bulk_create(
        SchedulePeriod(
            multiselection=multiselection,
            weekday=p.weekday,
            start=p.start,
            end=p.end,
            menu_id=p.menu,
        )
        for p in periods
    )
    transaction.on_commit(ConfigStamp.bump)  # bulk_create sends no signal


# --- holidays -------------------------------------------------------------------------------


class HolidayForm(forms.ModelForm):
    class Meta:
        model = Holiday
        fields = ["date", "name", "menu"]
        widgets = {"date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def __init__(self, *args: Any, multiselection: Multiselection, **kwargs: Any) -> None:
        super().__init__(*args, prefix="holiday", **kwargs)
        self.instance.multiselection = multiselection
        self.fields["menu"].queryset = multiselection.menus.all()

    def clean_date(self) -> date:
        day = self.cleaned_data["date"]
        taken = self.instance.multiselection.holidays.filter(date=day).first()
        if taken is not None:
            raise forms.ValidationError(
                _("%(date)s is already a holiday (%(name)s).")
                % {"date": day.isoformat(), "name": taken.name or taken.menu.name}
            )
        return day


class IcsImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Calendar file (.ics)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".ics,text/calendar"}),
        help_text=gettext_lazy("Its days of the next two years become holidays."),
    )
    menu = forms.ModelChoiceField(
        label=gettext_lazy("Menu of the imported days"), queryset=Menu.objects.none()
    )

    def __init__(self, *args: Any, multiselection: Multiselection, **kwargs: Any) -> None:
        super().__init__(*args, prefix="ics", **kwargs)
        self.fields["menu"].queryset = multiselection.menus.all()


def import_range(company: Company, now: datetime | None = None) -> tuple[date, date]:
    """Today in the company's time zone, and the same day two years on."""
    today = (now or timezone.now()).astimezone(ZoneInfo(company.time_zone)).date()
    try:
        return today, today.replace(year=today.year + 2)
    except ValueError:  # 29 February
        return today, today.replace(year=today.year + 2, day=28)


@transaction.atomic
def import_holidays(
    multiselection: Multiselection, days: list[tuple[date, str]], menu: Menu
) -> tuple[int, int]:
    """Add the days that are not holidays yet, all with `menu`: (added, skipped)."""
    existing = set(multiselection.holidays.values_list("date", flat=True))
    new = [
        Holiday(multiselection=multiselection, date=day, name=name[:120], menu=menu)
        for day, name in days
        if day not in existing
    ]
    Holiday.objects.bulk_create(new)
    transaction.on_commit(ConfigStamp.bump)  # bulk_create sends no signal
    return len(new), len(days) - len(new)
