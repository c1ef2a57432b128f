"""/me/: each part of the end-user portal brings its own routes."""

from __future__ import annotations

from selfcare import calls, overview, voicemail

app_name = "me"

urlpatterns = [*overview.urlpatterns, *calls.urlpatterns, *voicemail.urlpatterns]
