"""What the web side asks of the engine, wherever the engine runs.

In the embedded default the engine shares this process (and, for the consoles' sockets, this
event loop); in the distributed mode it runs in the telephony worker of the node, reached by
a short-lived Celery task on the node's queue. Callers do not care which: they await these.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import sync_to_async

from pbx import worker

SNAPSHOT_TIMEOUT = 5.0


class EngineUnavailable(Exception):
    """No engine answered (it is not running, or its node did not reply in time)."""


async def console_snapshot(company_id: int) -> dict[str, Any]:
    """What the consoles of `company_id` show now (see pbx/events.py).

    Raises:
        EngineUnavailable: no engine to ask, or it did not answer.
    """
    current = worker.attached()
    if current is not None:
        if current.loop is asyncio.get_running_loop():
            snapshot: dict[str, Any] = current.engine.console.snapshot(company_id)
            return snapshot

        async def ask(engine: Any) -> dict[str, Any]:
            return engine.console.snapshot(company_id)

        try:
            return await sync_to_async(worker.call_engine)(ask, SNAPSHOT_TIMEOUT)
        except Exception as error:
            raise EngineUnavailable(str(error) or type(error).__name__) from error
    from django.conf import settings

    if not settings.REDIS_URL:
        raise EngineUnavailable("no telephony engine runs in this process")
    from pbx.tasks import console_snapshot as task

    def ask_the_node() -> dict[str, Any]:
        result = task.apply_async(args=(company_id,), queue=worker.telephony_queue())
        answer: dict[str, Any] = result.get(timeout=SNAPSHOT_TIMEOUT)
        return answer

    try:
        return await sync_to_async(ask_the_node, thread_sensitive=False)()
    except Exception as error:
        raise EngineUnavailable(str(error) or type(error).__name__) from error
