"""WebSocket routes."""

from __future__ import annotations

from django.urls import URLPattern, path

from operator_panel.consumers import ConsoleConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/console/", ConsoleConsumer.as_asgi(), name="console-socket"),
]
