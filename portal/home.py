"""The portal's first page: what the company has, and where to change it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from portal.access import admin_view


@admin_view
def overview(request: HttpRequest) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    counts = {
        "extensions": company.extensions.count(),
        "sites": company.sites.count(),
        "hunt_groups": company.hunt_groups.count(),
        "multiselections": company.multiselections.count(),
        "announcements": company.announcements.count(),
    }
    return render(request, "manage/overview.html", {"company": company, "counts": counts})


urlpatterns = [path("", overview, name="overview")]
