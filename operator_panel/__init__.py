"""The Django project: settings, ASGI entry point, URLs and the Celery app."""

from __future__ import annotations

from operator_panel.celery import app as celery_app

__all__ = ("celery_app",)
