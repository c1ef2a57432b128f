"""The operator console's page ("Posto Operatore"); the live board is static/js/console.js.

The page carries what does not change while it is open (the operator's extension, the
monitored extensions, the labels in the user's language); everything live comes over the
socket (operator_panel/consumers.py), and today's counters from `counters`, which the page
reloads whenever a call ends.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from pbx import control
from pbx.models import Company, Did, DidTarget, Extension, Membership
from stats.models import CallRecord, Disposition


def _console_actor(request: HttpRequest) -> control.Actor:
    actor = control.actor_of(request.user)
    if actor is None or not actor.runs_the_console:
        raise PermissionDenied(_("Only the company's operators and administrators."))
    return actor


@login_required
def board(request: HttpRequest) -> HttpResponse:
    actor = _console_actor(request)
    company = Company.objects.get(pk=actor.company_id)
    extensions = list(
        Extension.objects.filter(company=company)
        .select_related("site")
        .order_by("number")[: settings.CENTRALINO_CONSOLE_MONITORED]
    )
    mine = next((e for e in extensions if e.number == actor.extension), None)
    membership = Membership.objects.get(user=request.user)
    unmonitored = set(membership.unmonitored.values_list("number", flat=True))
    config = {
        "extension": actor.extension,
        "can_command": bool(actor.extension),
        "operator_number": company.operator_number,
        "hold_alert_seconds": settings.CENTRALINO_HOLD_ALERT_SECONDS,
        "park_slots": 10,
        "extensions": [
            {
                "number": e.number,
                "name": e.display_name,
                "dnd": e.do_not_disturb,
                "site": e.site.name if e.site else "",
                "monitored": e.number not in unmonitored,
            }
            for e in extensions
        ],
        "labels": labels(),
        "csrf_token": get_token(request),
        "monitoring_url": reverse("console-monitoring", args=["NUMBER"]),
    }
    return render(
        request,
        "console/board.html",
        {
            "actor": actor,
            "company": company,
            "mine": mine,
            "config": config,
            "slots": range(1, 11),
        },
    )


@login_required
def counters(request: HttpRequest) -> HttpResponse:
    """Today's missed, incoming and outgoing calls of the console (SPEC B9), as a fragment."""
    actor = _console_actor(request)
    company = Company.objects.get(pk=actor.company_id)
    zone = ZoneInfo(company.time_zone)
    midnight = datetime.combine(datetime.now(zone).date(), time.min, tzinfo=zone)
    today = CallRecord.objects.filter(company=company, started_at__gte=midnight)
    queue_numbers = [company.operator_number] if company.operator_number else []
    queue_numbers += Did.objects.filter(
        trunk__company=company, target_kind=DidTarget.OPERATOR
    ).values_list("number", flat=True)
    incoming = today.filter(callee__in=queue_numbers).exclude(disposition=Disposition.IN_PROGRESS)
    missed = incoming.filter(~Q(disposition=Disposition.ANSWERED)).count()
    outgoing = today.filter(caller=actor.extension).count() if actor.extension else 0
    return render(
        request,
        "console/counters.html",
        {"missed": missed, "incoming": incoming.count(), "outgoing": outgoing},
    )


@login_required
@require_POST
def monitoring(request: HttpRequest, number: str) -> HttpResponse:
    """Switch the live presence of one extension off or on in this operator's console (B8)."""
    actor = _console_actor(request)
    extension = get_object_or_404(Extension, company_id=actor.company_id, number=number)
    membership = Membership.objects.get(user=request.user)
    if request.POST.get("monitored") == "off":
        membership.unmonitored.add(extension)
    elif request.POST.get("monitored") == "on":
        membership.unmonitored.remove(extension)
    else:
        return HttpResponseBadRequest(_("Say monitored=on or monitored=off."))
    return HttpResponse(status=204)


def labels() -> dict[str, Any]:
    """The words the live board shows, in the user's language."""
    return {
        "states": {
            "routing": _("Connecting"),
            "queued": _("Waiting for answer"),
            "ringing": _("Ringing"),
            "answered": _("In conversation"),
            "transferring": _("Being transferred"),
            "parked": _("Parked"),
            "held": _("On hold"),
        },
        "presence": {
            "idle": _("Available"),
            "ringing": _("Ringing"),
            "dialling": _("Calling"),
            "talking": _("Busy"),
            "held": _("On hold"),
            "dnd": _("Do not disturb"),
            "unregistered": _("No phone registered"),
            "failed": _("PBX unreachable"),
            "disabled": _("Monitoring off"),
        },
        "actions": {
            "answer": _("Answer"),
            "reject": _("Reject"),
            "hold": _("Hold"),
            "resume": _("Resume"),
            "hangup": _("Hang up"),
            "transfer": _("Transfer"),
            "blind": _("Transfer without announcement"),
            "announced": _("Transfer with announcement"),
            "complete": _("Complete transfer"),
            "cancel": _("Cancel transfer"),
            "park": _("Park"),
            "retrieve": _("Retrieve"),
            "call": _("Call"),
            "monitor_off": _("Switch monitoring off"),
            "monitor_on": _("Switch monitoring on"),
        },
        "errors": {
            "not_allowed": _("You may not do this."),
            "bad_request": _("The request was not understood."),
            "no_such_call": _("That call has ended."),
            "taken": _("Another operator answered that call first."),
            "phone_unreachable": _("Your phone did not answer: is it registered and on?"),
            "no_such_number": _("That number does not exist."),
            "target_busy": _("That extension is busy."),
            "target_unavailable": _("That extension cannot take calls now."),
            "slot_taken": _("That parking slot is taken."),
            "slot_empty": _("Nothing is parked there."),
            "parking_full": _("Every parking slot is taken."),
            "no_such_slot": _("There is no such parking slot."),
            "not_answered": _("The call is not answered yet."),
            "not_yours": _("Your phone is not in that call."),
            "engine_unavailable": _("The telephone exchange does not answer."),
            "unknown": _("That did not work."),
        },
        "slot": _("Parking slot %(slot)s"),
        "slot_empty": _("empty"),
        "waiting": _("waiting"),
        "held_alert": _("On hold"),
        "no_calls": _("No calls"),
        "transfer_of": _("Transfer %(who)s to:"),
        "phone_registered": _("Phone registered"),
        "phone_unregistered": _("Phone not registered"),
        "latency": _("Network latency: %(ms)s ms"),
        "connected": _("Connected"),
        "disconnected": _("Disconnected: reconnecting…"),
        "idle": _("No call"),
        "talking_to": _("In conversation with %(who)s"),
        "dropped_here": _("Drop here to transfer to %(who)s"),
    }
