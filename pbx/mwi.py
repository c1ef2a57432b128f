"""Tell the telephony engines that an extension's voicemail changed outside them (the end-user
portal heard or deleted a message), so that message-waiting lamps follow.

Fire and forget: the engine of this process directly, or a task on every node's queue whose
result nobody keeps. A node that is down misses it; its lamps are right again at the next
change or subscription refresh.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from pbx import worker
from pbx.control import nodes

log = logging.getLogger(__name__)


def mailbox_changed(company_id: int, number: str) -> None:
    if worker.attached() is not None:

        async def tell(engine: Any) -> None:
            engine.mailbox_changed(company_id, number)

        try:
            worker.call_engine(tell, timeout=2.0)
        except Exception as error:  # a lamp is not worth failing the user's request
            log.warning("message lamps of %s not updated: %s", number, error)
        return
    if not settings.REDIS_URL:
        return
    from pbx.tasks import mailbox_changed as task

    for node in nodes():
        try:
            task.apply_async((company_id, number), queue=worker.telephony_queue(node))
        except Exception as error:
            log.warning("message lamps of %s on %s not updated: %s", number, node, error)
