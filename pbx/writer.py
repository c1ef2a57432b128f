"""One background thread that writes to the database in order, so the event loop never waits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections

log = logging.getLogger(__name__)


class BackgroundWriter:
    """Runs ORM writes one after the other on a thread of its own; a failed write is logged."""

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        def run() -> Any:
            close_old_connections()
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("background database write failed")
                return None

        return self._pool.submit(run)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every write queued so far is done (tests, shutdown)."""
        self._pool.submit(lambda: None).result(timeout)
