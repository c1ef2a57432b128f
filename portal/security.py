"""The SIP sources the telephony engines blocked after failed authentications, and unblocking.

Each node keeps its own blocks in memory (pbx/engine/auth.FailureTracker); pbx/security.py asks
every node, so the page shows each node's list, or says that a node did not answer.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from pbx import security
from pbx.control import EngineUnavailable
from portal.access import admin_view


def time_left(seconds: float) -> str:
    """`seconds` as people read a short wait: "4 min 05 s", "12 s"."""
    whole = max(0, round(seconds))
    minutes, rest = divmod(whole, 60)
    if minutes:
        return _("%(minutes)d min %(seconds)02d s") % {"minutes": minutes, "seconds": rest}
    return _("%(seconds)d s") % {"seconds": rest}


@admin_view
def blocked_list(request: HttpRequest) -> HttpResponse:
    answers = security.blocked_sources()
    found = [
        {
            "answer": answer,
            "sources": [(s.ip, time_left(s.seconds_left), s.failures) for s in answer.sources],
        }
        for answer in answers
    ]
    return render(
        request, "manage/security/blocked.html", {"nodes": found, "several": len(found) > 1}
    )


@admin_view
@require_POST
def unblock(request: HttpRequest) -> HttpResponse:
    node, ip = request.POST.get("node", ""), request.POST.get("ip", "").strip()
    try:
        unblocked = security.unblock(node, ip, by=request.user.get_username())
    except ValueError:
        return HttpResponseBadRequest(_("Not an IP address of a known node."))
    except EngineUnavailable:
        messages.error(request, _("Node %(node)s did not answer: try again.") % {"node": node})
        return redirect("manage:security")
    if unblocked:
        messages.success(request, _("%(ip)s may register and call again.") % {"ip": ip})
    else:
        messages.warning(request, _("%(ip)s was not blocked any more.") % {"ip": ip})
    return redirect("manage:security")


urlpatterns = [
    path("security/", blocked_list, name="security"),
    path("security/unblock/", unblock, name="security_unblock"),
]
