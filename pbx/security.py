"""The SIP sources each telephony engine has blocked, as the administrators' page sees them.

Every engine blocks on its own (pbx/engine/auth.FailureTracker). The web reaches them the way
the consoles reach calls (pbx/control.py): the engine of this process through `call_engine`,
or a short-lived task on each node's queue (`pbx.blocked_sources`, `pbx.unblock_source`). A
node that does not answer is reported as such, never raised to the page.
"""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.conf import settings

from pbx import worker
from pbx.control import EngineUnavailable, nodes
from pbx.engine.auth import BlockedSource

QUERY_TIMEOUT = 3.0
_NOT_A_NAME = re.compile(r"[^\w.@+-]")


@dataclass(frozen=True)
class NodeBlocks:
    """One node's answer: its blocked sources and its blocking rule, or why it gave none."""

    node: str
    answered: bool
    sources: list[BlockedSource] = field(default_factory=list)
    limit: int = 0
    window: float = 0
    block_for: float = 0
    error: str = ""


def checked_ip(value: Any) -> str:
    """`value` when it is an IPv4 or IPv6 address (as the engine wrote it), else ValueError."""
    if not isinstance(value, str):
        raise ValueError("an IP address is a string")
    value = value.strip()
    ipaddress.ip_address(value)  # raises ValueError
    return value


def _log_safe(username: str) -> str:
    """A username fit for a one-line log entry (Django's own rules, enforced again)."""
    return _NOT_A_NAME.sub("_", username)[:150]


# --- run on the engine's loop (this process's engine, or a node's from its task) -----------


async def listing(engine: Any) -> dict[str, Any]:
    """What `engine` blocks now, as plain JSON-able data."""
    tracker = engine.auth.tracker
    return {
        "sources": [s._asdict() for s in tracker.blocked(engine.stack.now())],
        "limit": tracker.limit,
        "window": tracker.window,
        "block_for": tracker.block_for,
    }


async def unblocking(engine: Any, ip: str, by: str) -> bool:
    """Let `ip` in again on `engine`; False when it was not blocked there."""
    unblocked: bool = engine.auth.tracker.unblock(checked_ip(ip), by=_log_safe(by))
    return unblocked


# --- asked from the web ---------------------------------------------------------------------


def _answer(node: str, data: dict[str, Any]) -> NodeBlocks:
    return NodeBlocks(
        node,
        True,
        [BlockedSource(**source) for source in data["sources"]],
        data["limit"],
        data["window"],
        data["block_for"],
    )


def _silent(node: str, error: BaseException | str) -> NodeBlocks:
    return NodeBlocks(node, False, error=str(error) or type(error).__name__)


def blocked_sources() -> list[NodeBlocks]:
    """Every node's blocked sources, one entry per known node (pbx.control.nodes())."""
    if worker.attached() is not None:
        node = nodes()[0]
        try:
            return [_answer(node, worker.call_engine(listing, QUERY_TIMEOUT))]
        except Exception as error:  # the page shows it; a security page must not 500
            return [_silent(node, error)]
    if not settings.REDIS_URL:
        return [_silent(node, "no telephony engine runs in this process") for node in nodes()]
    from pbx.tasks import blocked_sources as task

    # Every node is asked at once; then each answer is awaited within one shared deadline.
    asked: dict[str, Any] = {}
    for node in nodes():
        try:
            asked[node] = task.apply_async(queue=worker.telephony_queue(node))
        except Exception as error:
            asked[node] = error
    deadline = time.monotonic() + QUERY_TIMEOUT
    found = []
    for node, result in asked.items():
        if isinstance(result, Exception):
            found.append(_silent(node, result))
            continue
        try:
            found.append(_answer(node, result.get(timeout=max(0.1, deadline - time.monotonic()))))
        except Exception as error:
            found.append(_silent(node, error))
        finally:
            result.forget()  # read once: not kept in Redis until result_expires
    return found


def unblock(node: str, ip: str, by: str) -> bool:
    """Let `ip` in again on `node`; False when it was not blocked there.

    Args:
        by: the administrator's username, for the log line.

    Raises:
        ValueError: `ip` is not an IP address, or `node` is not a known node.
        EngineUnavailable: the node did not answer.
    """
    ip = checked_ip(ip)
    if node not in nodes():
        raise ValueError(f"no telephony node {node!r}")
    if worker.attached() is not None:
        try:
            return worker.call_engine(partial(unblocking, ip=ip, by=by), QUERY_TIMEOUT)
        except Exception as error:
            raise EngineUnavailable(str(error) or type(error).__name__) from error
    if not settings.REDIS_URL:
        raise EngineUnavailable("no telephony engine runs in this process")
    from pbx.tasks import unblock_source as task

    try:
        result = task.apply_async(args=(ip, by), queue=worker.telephony_queue(node))
    except Exception as error:
        raise EngineUnavailable(str(error) or type(error).__name__) from error
    try:
        return bool(result.get(timeout=QUERY_TIMEOUT))
    except Exception as error:
        raise EngineUnavailable(str(error) or type(error).__name__) from error
    finally:
        result.forget()
