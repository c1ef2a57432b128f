"""/me/calls/: the user's call log (SPEC F1), newest first, searched by day range (in the
company's time zone) and by number or name, missed calls marked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _

from pbx.models import Extension
from selfcare.access import me_view, render_me
from selfcare.calllog import calls_of
from selfcare.forms import CallSearchForm
from stats.models import CallRecord, Disposition

PER_PAGE = 25
_PHONE_NUMBER = re.compile(r"^[0-9+\s]+$")


@dataclass(frozen=True, slots=True)
class CallRow:
    """One line of the log, worded from the user's side."""

    record: CallRecord
    outgoing: bool
    missed: bool
    other: str  # the number at the other end
    other_name: str
    via: str  # the number the caller dialled when not the extension's own
    outcome: str
    duration: str  # "m:ss" of conversation, "" when there was none


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def search(calls: QuerySet[CallRecord], filters: dict[str, Any]) -> QuerySet[CallRecord]:
    """Apply the search form's valid filters; days are whole days of the current time zone."""
    if filters.get("since"):
        calls = calls.filter(started_at__gte=_start_of(filters["since"]))
    if filters.get("until"):
        calls = calls.filter(started_at__lt=_start_of(filters["until"] + timedelta(days=1)))
    wanted = filters.get("number", "")
    if wanted:
        if _PHONE_NUMBER.match(wanted):
            wanted = "".join(wanted.split())
        calls = calls.filter(
            Q(outgoing=True, callee__icontains=wanted)
            | Q(outgoing=False, caller__icontains=wanted)
            | Q(outgoing=False, caller_name__icontains=wanted)
        )
    if filters.get("missed"):
        calls = calls.filter(missed=True)
    return calls


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _row(record: Any, mine: set[str], number: str) -> CallRow:
    if record.disposition == Disposition.IN_PROGRESS:
        outcome = _("In progress")
    elif record.outgoing:
        outcome = _("Answered") if record.answered_at else record.get_disposition_display()
    elif record.voicemail:
        outcome = _("Voice message")
    elif record.missed:
        outcome = _("Not answered")
    elif record.answered_by in mine:
        outcome = _("Answered")
    else:
        outcome = _("Answered by %(who)s") % {"who": record.answered_by}
    # A call that reached the extension through another number: a company number, a group.
    via = record.callee if not record.outgoing and record.callee != number else ""
    return CallRow(
        record=record,
        outgoing=record.outgoing,
        missed=record.missed,
        other=record.callee if record.outgoing else record.caller,
        other_name="" if record.outgoing else record.caller_name,
        via=via,
        outcome=outcome,
        duration=_minutes(None if record.missed else record.duration),
    )


@me_view
def call_log(request: HttpRequest) -> HttpResponse:
    extension: Extension = request.extension  # type: ignore[attr-defined]
    form = CallSearchForm(request.GET)
    form.is_valid()  # a bad field is reported; the valid ones still filter
    filters = getattr(form, "cleaned_data", {})
    calls = search(calls_of(extension, request.mailbox), filters)  # type: ignore[attr-defined]
    page = Paginator(calls, PER_PAGE).get_page(request.GET.get("page"))
    mine = {*extension.devices.values_list("username", flat=True), extension.number}
    context = {
        "form": form,
        "page": page,
        "rows": [_row(record, mine, extension.number) for record in page.object_list],
        "searching": any(filters.get(k) for k in ("since", "until", "number", "missed")),
    }
    return render_me(request, "me/calls.html", context)


urlpatterns = [path("calls/", call_log, name="calls")]
