"""WebSocket routes. The operator console's consumer arrives with its issue."""

from __future__ import annotations

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
