"""Who may use the administrator portal: administrators of a company, checked on every view.

`admin_view` is the only door: it sends an anonymous visitor to the login page, refuses
operators and end users with 403 (whatever the page would have shown), and gives the view the
administrator's company as `request.company`; every query of a portal view starts from it, so
that an administrator never reaches another company's rows by changing a number in a URL.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from pbx.models import Company, Membership, Role

View = Callable[..., HttpResponse]


class AdminRequest(HttpRequest):
    company: Company
    membership: Membership


def administrator_of(request: HttpRequest) -> Membership | None:
    """The membership of a logged-in administrator, or None."""
    if not request.user.is_authenticated:
        return None
    membership = Membership.objects.select_related("company").filter(user=request.user).first()
    if membership is None or membership.role != Role.ADMINISTRATOR:
        return None
    return membership


def admin_view(view: View) -> View:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        membership = administrator_of(request)
        if membership is None:
            return render(request, "manage/forbidden.html", status=403)
        request.membership = membership  # type: ignore[attr-defined]
        request.company = membership.company  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapped
