"""The operator console's page ("Posto Operatore"); the live board is static/js/console.js.

The page carries what does not change while it is open (the operator's extension, the
monitored extensions, the labels in the user's language); everything live comes over the
socket (operator_panel/consumers.py); today's counters (`counters`) and the operator's
voicemail and missed calls (`voicemail`) are fragments the page reloads whenever a call ends
and every minute (the socket's stream carries no mailbox event).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from pbx import control
from pbx.models import Company, Did, DidTarget, Extension, Mailbox, Membership, Trunk, VoiceMessage
from selfcare import actions as selfcare_actions
from selfcare.access import membership_with_extension
from selfcare.calllog import VOICEMAIL, numbers_of
from stats.models import CallRecord, Direction, Disposition

PANEL_MESSAGES = 20  # the rest are on /me/voicemail/
PANEL_MISSED = 50


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


def _midnight(company: Company) -> datetime:
    """The start of today in the company's time zone."""
    zone = ZoneInfo(company.time_zone)
    return datetime.combine(timezone.now().astimezone(zone).date(), time.min, tzinfo=zone)


def _queue_numbers(company: Company) -> list[str]:
    """What reaches the operator queue: the operator number and the company numbers routed to it."""
    numbers = [company.operator_number] if company.operator_number else []
    numbers += Did.objects.filter(
        trunk__company=company, target_kind=DidTarget.OPERATOR
    ).values_list("number", flat=True)
    return numbers


@login_required
def counters(request: HttpRequest) -> HttpResponse:
    """Today's missed, incoming and outgoing calls of the console (SPEC B9), as a fragment:
    incoming and missed are those of the queue and of the operator's own extension, missed
    the very calls the voicemail panel lists."""
    actor = _console_actor(request)
    company = Company.objects.get(pk=actor.company_id)
    mailbox = _own_mailbox(request)
    today = CallRecord.objects.filter(company=company, started_at__gte=_midnight(company))
    outgoing = today.filter(caller=actor.extension).count() if actor.extension else 0
    return render(
        request,
        "console/counters.html",
        {
            "missed": _missed_today(company, mailbox, actor.extension).count(),
            "incoming": _incoming_today(company, mailbox, actor.extension).count(),
            "outgoing": outgoing,
        },
    )


@dataclass(frozen=True, slots=True)
class MissedCall:
    """A line of the panel's missed calls, with the number that rings the caller back."""

    record: CallRecord
    outcome: str
    call_back: str  # what the console dials ("" when the caller cannot be called back)


def _own_mailbox(request: HttpRequest) -> Mailbox | None:
    """The requesting user's own mailbox: the one of their extension (selfcare's rule)."""
    membership = membership_with_extension(request)
    if membership is None:
        return None
    return Mailbox.objects.filter(extension=membership.extension).first()


def _incoming_today(
    company: Company, mailbox: Mailbox | None, operator: str
) -> QuerySet[CallRecord]:
    """Today's ended calls for the operator queue or for the operator's own extension."""
    called = Q(callee__in=_queue_numbers(company))
    if mailbox is not None:
        called |= Q(callee__in=numbers_of(mailbox.extension))
    calls = CallRecord.objects.filter(
        called, company=company, started_at__gte=_midnight(company)
    ).exclude(disposition=Disposition.IN_PROGRESS)
    if operator:
        calls = calls.exclude(caller=operator)  # the operator's own calls out
    return calls


def _missed_today(company: Company, mailbox: Mailbox | None, operator: str) -> QuerySet[CallRecord]:
    """The incoming calls of today that no person answered: nobody did, or only the
    voicemail (as /me/calls/ decides, selfcare.calllog), newest first."""
    message = VoiceMessage.objects.filter(mailbox=mailbox, call_id=OuterRef("call_id"))
    nobody = Q(answered_at__isnull=True) & ~Q(disposition=Disposition.ANSWERED)
    return (
        _incoming_today(company, mailbox, operator)
        .annotate(voicemail=Exists(message))
        .filter(nobody | Q(answered_by=VOICEMAIL) | Q(voicemail=True))
        .order_by("-started_at", "-pk")
    )


def _missed_call(record: Any, outside_prefix: str | None, can_dial: bool) -> MissedCall:
    if record.voicemail:
        outcome = _("Voice message")
    elif record.answered_by == VOICEMAIL:
        outcome = _("Not answered")
    else:
        outcome = record.get_disposition_display()
    number = record.caller
    if record.direction == Direction.INBOUND:
        # Out through the trunk's prefix, which only takes digits after it (no "+39...").
        outside = outside_prefix is not None and number.isdigit()
        number = f"{outside_prefix}{number}" if outside else ""
    if not can_dial or not control.NUMBER.match(number):  # "anonymous", no phone to call from
        number = ""
    return MissedCall(record, outcome, number)


def _when(moment: datetime) -> str:
    """The time of day, with the date before it when that is not today (current time zone)."""
    local = timezone.localtime(moment)
    if local.date() == timezone.localdate():
        return f"{local:%H:%M}"
    return f"{formats.date_format(local, 'SHORT_DATE_FORMAT')} {local:%H:%M}"


def _voicemail_panel(request: HttpRequest, actor: control.Actor) -> HttpResponse:
    company = Company.objects.get(pk=actor.company_id)
    mailbox = _own_mailbox(request)
    with timezone.override(ZoneInfo(company.time_zone)):
        shown: list[VoiceMessage] = []
        new = 0
        if mailbox is not None:
            shown = list(mailbox.messages.all()[:PANEL_MESSAGES])  # new first (the model's order)
            new = mailbox.messages.filter(heard=False).count()
            for message in shown:
                message.when = _when(message.received_at)  # type: ignore[attr-defined]
        trunk = Trunk.objects.filter(company=company, enabled=True).order_by("id").first()
        prefix = trunk.outbound_prefix if trunk else None  # the engine's outbound trunk
        can_dial = bool(actor.extension)
        missed_calls = _missed_today(company, mailbox, actor.extension)
        missed = [_missed_call(record, prefix, can_dial) for record in missed_calls[:PANEL_MISSED]]
        missed_count = len(missed) if len(missed) < PANEL_MISSED else missed_calls.count()
        context = {
            "mailbox": mailbox,
            "voice_messages": shown,
            "more_messages": mailbox is not None and mailbox.messages.count() > len(shown),
            "new_count": new,
            "missed": missed,
            "missed_count": missed_count,  # what the status bar's counter says too
        }
        return render(request, "console/voicemail.html", context)


@login_required
def voicemail(request: HttpRequest) -> HttpResponse:
    """The operator's own voice messages and today's missed calls (SPEC B), as a fragment; it
    also brings the status bar's voicemail indicator (B9) as an out-of-band swap."""
    return _voicemail_panel(request, _console_actor(request))


@login_required
@require_POST
def message_heard(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one of the operator's own messages heard (or new again): the lamps follow."""
    actor = _console_actor(request)
    mailbox = _own_mailbox(request)
    if mailbox is None:
        raise Http404("No mailbox.")
    message = get_object_or_404(
        VoiceMessage.objects.select_related("mailbox__extension"), pk=pk, mailbox=mailbox
    )
    selfcare_actions.set_heard(message, request.POST.get("heard") != "0")
    if not request.headers.get("HX-Request"):
        return redirect("console")
    return _voicemail_panel(request, actor)


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
