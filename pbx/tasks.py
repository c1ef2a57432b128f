"""Celery tasks of the telephony domain.

Call-control tasks run on the telephony worker of the node that owns the call (queue
``telephony.<node>``), against the engine attached to that process. They are short-lived and
never replayed: they expire after 10 s, are acknowledged on receipt and never retried, because
a stale command (a transfer for a call that has moved on) must be dropped, not executed late.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from pbx import worker

CONTROL_OPTIONS: dict[str, Any] = {
    "queue": worker.telephony_queue(),
    "expires": 10,
    "acks_late": False,
    "max_retries": 0,
}


@shared_task(name="pbx.engine_status", **CONTROL_OPTIONS)
def engine_status() -> dict[str, Any]:
    """The status of the engine of this node: node, SIP port, and what the engine reports."""
    return worker.call_engine(worker.describe, timeout=5)
