"""The first login of every user asks for a new password (SPEC E1).

Whoever set the first password (an administrator, the demo's printout) knows it, so until the
user chooses their own, every page sends them to the change form and every API call is refused;
only the login, the logout, the change form itself and the language switch stay open.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from pbx.models import Membership

OPEN_PATHS = ("/login/", "/logout/", "/password/", "/i18n/", "/static/", "/healthz")


def must_change(request: HttpRequest) -> bool:
    user = request.user
    if not user.is_authenticated:
        return False
    return Membership.objects.filter(user=user, must_change_password=True).exists()


class PasswordGate:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(OPEN_PATHS) and must_change(request):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"detail": _("Choose a new password first, at /password/.")}, status=403
                )
            return redirect(f"/password/?next={request.get_full_path()}")
        return self.get_response(request)


@login_required
def change_password(request: HttpRequest) -> HttpResponse:
    first = must_change(request)
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)  # stay logged in with the new password
        Membership.objects.filter(user=user).update(must_change_password=False)
        messages.success(request, _("Your password has been changed."))
        next_url = request.GET.get("next", "")
        return redirect(
            next_url if next_url.startswith("/") and not next_url.startswith("//") else "landing"
        )
    return render(request, "registration/change_password.html", {"form": form, "first": first})
