"""One login for every web face: the operator console, the end-user portal and the admin.

After logging in, the user's role (pbx.models.Membership) decides where they land.
"""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from pbx.models import Membership, Role

# Named URLs once the console and the end-user portal exist; literal paths until then.
CONSOLE_PATH = "/console/"
PORTAL_PATH = "/me/"
MANAGE_PATH = "/manage/"


# A safe `next` wins (LoginView checks its host and scheme); otherwise LOGIN_REDIRECT_URL, the
# landing below. Logout is POST only (Django 5) and returns to the login page.
login = auth_views.LoginView.as_view(template_name="registration/login.html")
logout = auth_views.LogoutView.as_view()


@login_required
def landing(request: HttpRequest) -> HttpResponse:
    """Send a logged-in user where their role works: console, own portal or admin."""
    membership = Membership.objects.filter(user=request.user).first()
    if membership is not None:
        if membership.role == Role.ADMINISTRATOR:
            return redirect(MANAGE_PATH)
        if membership.runs_the_console:
            return redirect(CONSOLE_PATH)
        if membership.role == Role.END_USER:
            return redirect(PORTAL_PATH)
    elif request.user.is_staff or request.user.is_superuser:
        return redirect("admin:index")
    return render(request, "registration/no_role.html", status=403)
