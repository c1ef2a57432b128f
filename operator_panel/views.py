"""The home page and the health check. The operator console comes with its own issue."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from pbx import worker

ENGINE_QUERY_TIMEOUT = 2.0


STATUS_CACHE_SECONDS = 5
PUBLIC_FIELDS = ("mode", "node", "running", "sip_port")  # what anonymous visitors may see


def engine_state() -> dict[str, Any]:
    """How the telephony engine is doing, asked at most once every few seconds.

    In the distributed mode each question is a task on the telephony worker, which runs one
    task at a time: a stream of page hits must not push real call control past its expiry.
    """
    if worker.attached() is not None:
        return _ask_engine()  # in this process: cheap, and always current
    state = cache.get("centralino:engine-state")
    if state is None:
        state = _ask_engine()
        cache.set("centralino:engine-state", state, STATUS_CACHE_SECONDS)
    return state


def _visible(state: dict[str, Any], request: HttpRequest) -> dict[str, Any]:
    """All of it for staff; for anyone else whether it runs, not its trunks or devices."""
    if request.user.is_authenticated and request.user.is_staff:
        return state
    return {key: state[key] for key in PUBLIC_FIELDS if key in state}


def _ask_engine() -> dict[str, Any]:
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
        {"engine": _visible(engine_state(), request), "sip_bind": settings.CENTRALINO_BIND},
    )


def healthz(request: HttpRequest) -> JsonResponse:
    """Health as JSON: 200 when the database answers, 503 otherwise; the engine is reported."""
    database = _database_ok()
    body = {
        "status": "ok" if database else "error",
        "database": "ok" if database else "unreachable",
        "engine": _visible(engine_state(), request),
    }
    return JsonResponse(body, status=200 if database else 503)
