"""Each telephony engine's sign of life, in the database (NodeHeartbeat).

The engine writes its node's row every `BEAT_SECONDS` from its own loop (the write runs on a
worker thread); a clean stop marks it stopped. Whoever asks how a node is (/healthz, the home
page) reads rows: a node not seen for `STALE_SECONDS` is down, whatever the reason (killed,
hung, its machine gone).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from pbx.connectivity import Outage
from pbx.models import NodeHeartbeat

if TYPE_CHECKING:
    from pbx.engine.runtime import Engine

log = logging.getLogger(__name__)

BEAT_SECONDS = 2.0
STALE_SECONDS = 6.0


def _write(node: str, status: dict[str, object], started: datetime, stopped: bool) -> None:
    close_old_connections()
    now = timezone.now()
    NodeHeartbeat.objects.update_or_create(
        node=node,
        defaults={
            "started_at": started,
            "seen_at": now,
            "stopped_at": now if stopped else None,
            "sip_port": int(status.get("sip_port") or 0),  # type: ignore[call-overload]
            "calls": int(status.get("calls") or 0),  # type: ignore[call-overload]
            "registered_devices": int(status.get("registered_devices") or 0),  # type: ignore[call-overload]
        },
    )


async def beat(engine: Engine) -> None:
    """Write the node's row until cancelled (the engine's tasks are cancelled when it stops)."""
    node, started = engine.config.node, timezone.now()
    # The database restarting: said once, and once when it is back, however long it takes.
    database = Outage(log, "the database", f"the heartbeat of node {node} waits for it")
    while True:
        try:
            await asyncio.to_thread(_write, node, engine.status(), started, False)
        except DatabaseError as error:
            database.failed(error)
        else:
            database.succeeded()
        await asyncio.sleep(BEAT_SECONDS)


async def stopped(engine: Engine) -> None:
    """Mark the node stopped (a clean stop: not a crash)."""
    try:
        await asyncio.to_thread(_write, engine.config.node, engine.status(), timezone.now(), True)
    except DatabaseError as error:
        log.warning("could not mark node %s stopped: %s", engine.config.node, error)


@dataclass(frozen=True)
class NodeState:
    node: str
    alive: bool
    reason: str  # why it is not alive ("" when it is)
    seen_at: datetime | None
    sip_port: int = 0
    calls: int = 0
    registered_devices: int = 0


def node_state(node: str, row: NodeHeartbeat | None = None) -> NodeState:
    """How the engine of `node` is, from its last heartbeat."""
    if row is None:
        row = NodeHeartbeat.objects.filter(node=node).first()
    if row is None:
        return NodeState(node, False, f"no telephony engine has run for node {node}", None)
    age = (timezone.now() - row.seen_at).total_seconds()
    if row.stopped_at is not None:
        reason = f"the engine of node {node} stopped at {row.stopped_at.isoformat()}"
    elif age > STALE_SECONDS:
        reason = f"no sign of life from the engine of node {node} for {age:.0f} s"
    else:
        reason = ""
    return NodeState(
        node,
        not reason,
        reason,
        row.seen_at,
        row.sip_port,
        row.calls,
        row.registered_devices,
    )


def every_node() -> list[NodeState]:
    """Every node that ever ran an engine here, with its state (stale ones for a week)."""
    recent = timezone.now() - timedelta(days=7)
    rows = NodeHeartbeat.objects.filter(seen_at__gte=recent).order_by("node")
    return [node_state(row.node, row) for row in rows]
