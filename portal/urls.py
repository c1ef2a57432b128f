"""/manage/: each part of the portal brings its own routes."""

from __future__ import annotations

from portal import announcements, attendant, extensions, home, hunt, security

app_name = "manage"

urlpatterns = [
    *home.urlpatterns,
    *extensions.urlpatterns,
    *hunt.urlpatterns,
    *attendant.urlpatterns,
    *announcements.urlpatterns,
    *security.urlpatterns,
]
