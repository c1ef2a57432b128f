"""The Celery app: call control on the telephony queues, background jobs on the default one.

Settings come from Django's settings under the CELERY_ prefix. Without REDIS_URL every task runs
eagerly in the calling process (the embedded default).
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "operator_panel.settings")

app = Celery("operator_panel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Connects the worker signals that start the engine inside a telephony worker.
import pbx.worker  # noqa: E402, F401
