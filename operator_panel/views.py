"""The home page and the health check. The operator console comes with its own issue."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from pbx import worker

ENGINE_QUERY_TIMEOUT = 2.0


def engine_state() -> dict[str, Any]:
    """How the telephony engine is doing, from wherever it runs: this process or a worker."""
    current = worker.attached()
    if current is not None:
        try:
            status = worker.call_engine(worker.describe, timeout=ENGINE_QUERY_TIMEOUT)
        except Exception as error:  # a health page reports failures, it does not raise them
            return {"mode": "embedded", "running": False, "error": str(error)}
        return {"mode": "embedded", **status}
    if settings.CENTRALINO_ENGINE == "off" and settings.REDIS_URL:
        from pbx.tasks import engine_status

        try:
            result = engine_status.apply_async(queue=worker.telephony_queue())
            status = result.get(timeout=ENGINE_QUERY_TIMEOUT)
        except Exception as error:
            return {
                "mode": "worker",
                "node": settings.CENTRALINO_NODE,
                "running": False,
                "error": str(error) or type(error).__name__,
            }
        return {"mode": "worker", **status}
    return {"mode": settings.CENTRALINO_ENGINE, "running": False}


def _database_ok() -> bool:
    try:
        connection.ensure_connection()
    except DatabaseError:
        return False
    return True


def home(request: HttpRequest) -> HttpResponse:
    """A small landing page: where to log in, and whether the engine runs."""
    return render(
        request,
        "home.html",
        {"engine": engine_state(), "sip_bind": settings.CENTRALINO_BIND},
    )


def healthz(request: HttpRequest) -> JsonResponse:
    """Health as JSON: 200 when the database answers, 503 otherwise; the engine is reported."""
    database = _database_ok()
    body = {
        "status": "ok" if database else "error",
        "database": "ok" if database else "unreachable",
        "engine": engine_state(),
    }
    return JsonResponse(body, status=200 if database else 503)
