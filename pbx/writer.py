"""One background thread that writes to the database in order, so the event loop never waits."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import InterfaceError, OperationalError, close_old_connections, connection

from pbx.connectivity import one_line

log = logging.getLogger(__name__)

RETRY_PAUSES = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # about 19 s in all before a write is given up


class BackgroundWriter:
    """Runs ORM writes one after the other on a thread of its own; a failed write is logged."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        def run() -> Any:
            for tries, pause in enumerate((*RETRY_PAUSES, None), start=1):
                close_old_connections()
                try:
                    return fn(*args, **kwargs)
                except (OperationalError, InterfaceError) as error:
                    # The database restarting, or SQLite locked for long: wait and try again
                    # rather than lose a call record.
                    if pause is None:
                        log.error(
                            "database write given up after %d tries: %s", tries, one_line(error)
                        )
                        return None
                    log.warning(
                        "database write failed (%s): retrying in %ss", one_line(error), pause
                    )
                    connection.close()
                    time.sleep(pause)
                except Exception:
                    log.exception("background database write failed")
                    return None
            return None

        return self._pool.submit(run)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every write queued so far is done (tests, shutdown)."""
        self._pool.submit(lambda: None).result(timeout)
