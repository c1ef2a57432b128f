"""One background thread that writes to the database in order, so the event loop never waits.

A write the database refuses (it is restarting, or SQLite is locked for long) is tried again
until it goes through, the writes behind it waiting their turn: a call record made during an
outage reaches the database once it is back, however long that takes. The log says once that
the database went away and once that it is back. Only at a stop (`drain`) are the writes the
database still refuses given up, each with a line, so that no thread outlives the process
waiting for it.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import InterfaceError, OperationalError, close_old_connections, connection

from pbx.connectivity import Outage, one_line

log = logging.getLogger(__name__)

RETRY_PAUSES = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)  # then the last one, for as long as needed


class BackgroundWriter:
    """Runs ORM writes one after the other on a thread of its own; a failed write is logged."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._giving_up = threading.Event()
        self._outage = Outage(log, "the database", f"the {name} writes wait for it, in order")

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        def run() -> Any:
            pauses = itertools.chain(RETRY_PAUSES, itertools.repeat(RETRY_PAUSES[-1]))
            while True:
                close_old_connections()
                try:
                    result = fn(*args, **kwargs)
                except (OperationalError, InterfaceError) as error:
                    self._outage.failed(error)
                    connection.close()
                    if self._giving_up.is_set() or self._giving_up.wait(next(pauses)):
                        log.error(
                            "%s: a database write given up at stop: %s", self.name, one_line(error)
                        )
                        return None
                    continue
                except Exception:
                    log.exception("background database write failed")
                    return None
                self._outage.succeeded()
                return result

        return self._pool.submit(run)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every write queued so far is done (tests, shutdown).

        Raises:
            TimeoutError: they are not done after `timeout` s (the database is away).
        """
        self._pool.submit(lambda: None).result(timeout)

    def drain(self, timeout: float = 5.0) -> bool:
        """At a stop: wait up to `timeout` s for the writes queued so far; those the database
        still refuses then are given up, one line each. Whether every write went through."""
        try:
            self.flush(timeout)
            return True
        except TimeoutError:
            pass
        self._giving_up.set()
        try:
            self.flush(timeout + 30)  # each write left gets one more try, then goes
        except TimeoutError:
            log.error("%s: writes still waiting for the database at stop", self.name)
        finally:
            self._giving_up.clear()
        return False
