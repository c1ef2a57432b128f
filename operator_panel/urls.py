"""URL routes of the project."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from operator_panel import accounts, console, password_gate, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", accounts.login, name="login"),
    path("logout/", accounts.logout, name="logout"),
    path("start/", accounts.landing, name="landing"),
    path("password/", password_gate.change_password, name="change-password"),
    path("manage/", include("portal.urls")),
    path("me/", include("selfcare.urls")),
    path("console/", console.board, name="console"),
    path("console/counters/", console.counters, name="console-counters"),
    path("console/voicemail/", console.voicemail, name="console-voicemail"),
    path("console/voicemail/<int:pk>/heard/", console.message_heard, name="console-message-heard"),
    path("console/monitoring/<str:number>/", console.monitoring, name="console-monitoring"),
    path("api/", include("operator_panel.api_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
