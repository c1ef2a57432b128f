"""Routes of the REST API (operator_panel/api.py), its OpenAPI schema and its docs."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from operator_panel import api

app_name = "api"

urlpatterns = [
    path("v1/calls/", api.calls, name="calls"),
    path("v1/calls/<str:call_id>/answer/", api.answer, name="answer"),
    path("v1/calls/<str:call_id>/reject/", api.reject, name="reject"),
    path("v1/calls/<str:call_id>/hold/", api.hold, name="hold"),
    path("v1/calls/<str:call_id>/resume/", api.resume, name="resume"),
    path("v1/calls/<str:call_id>/hangup/", api.hangup, name="hangup"),
    path("v1/calls/<str:call_id>/park/", api.park, name="park"),
    path("v1/calls/<str:call_id>/transfer/", api.transfer, name="transfer"),
    path("v1/parking/", api.parking, name="parking"),
    path("v1/parking/<int:slot>/retrieve/", api.retrieve, name="retrieve"),
    path("v1/dial/", api.dial, name="dial"),
    path("v1/extensions/", api.extensions, name="extensions"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
