"""The portal's navigation, given to every /manage/ page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _

# (URL name, label), in the order of the menu. Sections not built yet are left out.
SECTIONS = (
    ("manage:extensions", _("Extensions")),
    ("manage:sites", _("Sites")),
    ("manage:numbers", _("Company numbers")),
    ("manage:hunt_groups", _("Hunt groups")),
    ("manage:multiselections", _("Multiselection")),
    ("manage:announcements", _("Announcements")),
    ("manage:security", _("Security")),
)


def sections(request: HttpRequest) -> dict[str, Any]:
    if not request.path.startswith("/manage/"):
        return {}
    found = []
    for name, label in SECTIONS:
        try:
            reverse(name)
        except NoReverseMatch:
            continue
        found.append((name, label))
    return {"manage_sections": found}
