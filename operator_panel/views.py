"""The home page and the health check."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from operator_panel.web_redis import REDIS
from pbx import heartbeat, worker
from pbx.connectivity import redis_problem

log = logging.getLogger(__name__)
ENGINE_QUERY_TIMEOUT = 2.0


PUBLIC_FIELDS = ("mode", "node", "running", "sip_port", "error")  # what anonymous visitors may see


def engine_state() -> dict[str, Any]:
    """How the telephony engine of this node is: asked directly when it runs in this process,
    otherwise read from its heartbeat (pbx/heartbeat.py). Nothing is asked of a remote engine
    and nothing is left behind in Redis, however often a monitor looks."""
    current = worker.attached()
    if current is not None:
        try:
            status = worker.call_engine(worker.describe, timeout=ENGINE_QUERY_TIMEOUT)
        except Exception as error:  # a health page reports failures, it does not raise them
            return {"mode": "embedded", "running": False, "error": str(error)}
        return {"mode": "embedded", **status}
    try:
        state = heartbeat.node_state(settings.CENTRALINO_NODE)
    except DatabaseError as error:
        return {"mode": settings.CENTRALINO_ENGINE, "running": False, "error": str(error)}
    return _described(state, "worker" if settings.CENTRALINO_ENGINE == "off" else "embedded")


def _described(state: heartbeat.NodeState, mode: str) -> dict[str, Any]:
    described: dict[str, Any] = {"mode": mode, "node": state.node, "running": state.alive}
    if state.reason:
        described["error"] = state.reason
    if state.seen_at is not None:
        described.update(
            seen_at=state.seen_at.isoformat(),
            sip_port=state.sip_port,
            calls=state.calls,
            registered_devices=state.registered_devices,
        )
    return described


def _visible(state: dict[str, Any], request: HttpRequest) -> dict[str, Any]:
    """All of it for staff; for anyone else whether it runs (and why not), not its trunks or
    devices."""
    if request.user.is_authenticated and request.user.is_staff:
        return state
    return {key: state[key] for key in PUBLIC_FIELDS if key in state}


def _database_ok() -> bool:
    try:
        connection.ensure_connection()
    except DatabaseError:
        return False
    return True


def home(request: HttpRequest) -> HttpResponse:
    """A small landing page: where to log in, whether the engine runs, and every node."""
    try:
        nodes = heartbeat.every_node()
    except DatabaseError:
        nodes = []
    return render(
        request,
        "home.html",
        {
            "engine": _visible(engine_state(), request),
            "sip_bind": settings.CENTRALINO_BIND,
            "nodes": nodes,
        },
    )


def healthz(request: HttpRequest) -> JsonResponse:
    """Health as JSON: 200 when the database answers and the engine of this node is alive
    (its heartbeat is fresh); 503 otherwise, with the reason."""
    database = _database_ok()
    engine = engine_state() if database else {"running": False, "error": "database unreachable"}
    redis = _redis_ok()
    healthy = database and redis is not False and bool(engine.get("running"))
    body = {
        "status": "ok" if healthy else "error",
        "database": "ok" if database else "unreachable",
        "engine": _visible(engine, request),
    }
    if redis is not None:  # the distributed mode: consoles and commands go through Redis
        body["redis"] = "ok" if redis else "unreachable"
    return JsonResponse(body, status=200 if healthy else 503)


def _redis_ok() -> bool | None:
    """Whether Redis answers (None without REDIS_URL); its address and error go to the log."""
    if not settings.REDIS_URL:
        return None
    problem = redis_problem(settings.REDIS_URL)
    if problem:
        REDIS.failed(problem)
        return False
    REDIS.succeeded()
    return True
