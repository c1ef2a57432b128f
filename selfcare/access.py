"""Who may use the end-user portal (/me/): any member of a company who has an extension.

`me_view` is the only door: an anonymous visitor goes to the login page, a user without an
extension gets 403, and the view gets the user's own extension as `request.extension` (with
`request.mailbox` and `request.company`). Every query of a /me/ view starts from it, so that no
id typed into a URL reaches another extension's calls, messages or phones. Pages are rendered
in the company's time zone.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from pbx.models import Company, Extension, Mailbox, Membership, Role

View = Callable[..., HttpResponse]


class MeRequest(HttpRequest):
    membership: Membership
    company: Company
    extension: Extension
    mailbox: Mailbox


def membership_with_extension(request: HttpRequest) -> Membership | None:
    """The logged-in user's membership if it has an extension, or None."""
    if not request.user.is_authenticated:
        return None
    membership = (
        Membership.objects.select_related("company", "extension")
        .filter(user=request.user, extension__isnull=False)
        .first()
    )
    if membership is None or membership.extension.company_id != membership.company_id:
        return None
    return membership


def me_view(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = membership_with_extension(request)
        if membership is None:
            return _refused(request)
        extension = membership.extension
        assert extension is not None
        request.membership = membership  # type: ignore[attr-defined]
        request.company = membership.company  # type: ignore[attr-defined]
        request.extension = extension  # type: ignore[attr-defined]
        # Every extension gets one with it (pbx/signals.py); an older row may still lack it.
        request.mailbox = Mailbox.objects.get_or_create(extension=extension)[0]  # type: ignore[attr-defined]
        with timezone.override(ZoneInfo(membership.company.time_zone)):
            return view(request, *args, **kwargs)

    return wrapped


def _refused(request: HttpRequest) -> HttpResponse:
    role = Membership.objects.filter(user=request.user).values_list("role", flat=True).first()
    # An end user's landing is /me/ itself: no link back to it.
    elsewhere = (role is not None and role != Role.END_USER) or request.user.is_staff
    return render(request, "me/forbidden.html", {"elsewhere": elsewhere}, status=403)


def render_me(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """Render a /me/ page with what every one of them shows: the menu's counts, the lock banner."""
    mailbox: Mailbox = request.mailbox  # type: ignore[attr-defined]
    membership: Membership = request.membership  # type: ignore[attr-defined]
    shared = {
        "extension": request.extension,  # type: ignore[attr-defined]
        "mailbox": mailbox,
        "new_messages": mailbox.messages.filter(heard=False).count(),
        "runs_the_console": membership.runs_the_console,
        "administrator": membership.role == Role.ADMINISTRATOR,
    }
    return render(request, template, {**shared, **context}, status=status)
