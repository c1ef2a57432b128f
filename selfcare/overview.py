"""/me/: the user's own extension at a glance: do-not-disturb, forwarding, phones and their
registration, and the SIP settings for a new phone (SPEC F4, A4).

A phone's secret is shown once, on the page that made it (the "New secret" button): the
database keeps only its digest hashes.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from pbx.models import Device, Extension, Registration
from selfcare import actions
from selfcare.access import me_view, render_me
from selfcare.calllog import calls_of
from selfcare.forms import ForwardingForm

WILDCARDS = ("", "0.0.0.0", "::")


def sip_server(request: HttpRequest) -> str:
    """The address phones register to: the advertised one, else the bound one, else (listening
    on every interface) the name this browser reached the web with."""
    for address in (settings.CENTRALINO_ADVERTISE, settings.CENTRALINO_BIND):
        if address not in WILDCARDS:
            return str(address)
    host = request.get_host()
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host


def _phones(extension: Extension) -> list[dict[str, Any]]:
    """Each device with its live registrations (any node), newest first."""
    devices = list(extension.devices.all())
    live: dict[str, list[Registration]] = {}
    for registration in Registration.objects.filter(
        username__in=[d.username for d in devices], expires_at__gt=timezone.now()
    ).order_by("-expires_at"):
        live.setdefault(registration.username, []).append(registration)
    return [{"device": d, "registrations": live.get(d.username, [])} for d in devices]


def _overview_page(
    request: HttpRequest, forwarding: ForwardingForm | None = None, status: int = 200
) -> HttpResponse:
    extension: Extension = request.extension  # type: ignore[attr-defined]
    today = datetime.combine(timezone.localdate(), time.min, tzinfo=timezone.get_current_timezone())
    missed_today = (
        calls_of(extension, request.mailbox)  # type: ignore[attr-defined]
        .filter(missed=True, started_at__gte=today, started_at__lt=today + timedelta(days=1))
        .count()
    )
    context = {
        "forwarding": forwarding or ForwardingForm(instance=extension),
        "phones": _phones(extension),
        "sip": {
            "server": sip_server(request),
            "port": settings.CENTRALINO_SIP_PORT,
            "realm": settings.CENTRALINO_REALM,
        },
        "missed_today": missed_today,
    }
    return render_me(request, "me/overview.html", context, status=status)


@me_view
def overview(request: HttpRequest) -> HttpResponse:
    return _overview_page(request)


@me_view
@require_POST
def do_not_disturb(request: HttpRequest) -> HttpResponse:
    extension: Extension = request.extension  # type: ignore[attr-defined]
    on = request.POST.get("do_not_disturb") == "on"
    actions.set_do_not_disturb(extension, on)
    if on:
        messages.success(request, _("Do not disturb is on: your calls go to voicemail."))
    else:
        messages.success(request, _("Do not disturb is off: your phones ring again."))
    return redirect("me:overview")


@me_view
@require_POST
def forwarding(request: HttpRequest) -> HttpResponse:
    extension: Extension = request.extension  # type: ignore[attr-defined]
    # A copy: a refused form must not change what the rest of the page says.
    form = ForwardingForm(request.POST, instance=Extension.objects.get(pk=extension.pk))
    if not form.is_valid():
        return _overview_page(request, forwarding=form, status=400)
    actions.save_forwarding(form.instance)
    messages.success(request, _("Forwarding saved: it applies from the next call."))
    return redirect("me:overview")


@me_view
@require_POST
@never_cache
def new_secret(request: HttpRequest, pk: int) -> HttpResponse:
    device = get_object_or_404(Device, pk=pk, extension=request.extension)  # type: ignore[attr-defined]
    secret = device.rotate_secret()
    context = {
        "device": device,
        "secret": secret,
        "sip": {
            "server": sip_server(request),
            "port": settings.CENTRALINO_SIP_PORT,
            "realm": device.realm,
        },
    }
    return render_me(request, "me/secret.html", context)


urlpatterns = [
    path("", overview, name="overview"),
    path("do-not-disturb/", do_not_disturb, name="dnd"),
    path("forwarding/", forwarding, name="forwarding"),
    path("phones/<int:pk>/new-secret/", new_secret, name="new-secret"),
]
