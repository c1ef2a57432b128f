"""One telephony worker per node, whichever machine it runs on.

A node's engine owns its calls, its call records and its queue: a second worker started for
the same `CENTRALINO_NODE` (on another port, another machine) would close the first one's live
records as interrupted and take half of its commands. The worker therefore holds a PostgreSQL
advisory lock named after the node, on a connection of its own, before it touches anything:

- every machine of a deployment shares the database, so every machine sees the lock;
- the lock belongs to the connection, and the connection to the process: a worker that dies,
  even by SIGKILL, frees it at once, with no expiry to wait for and nothing to renew (a Redis
  lock would need both, and a worker paused longer than its expiry would lose it unknowingly).

The connection can also die under a live worker (PostgreSQL restarting, its backend
terminated): a watcher thread checks it every few seconds and takes the lock again once the
database answers, saying so in the log.

SQLite (the embedded default) is one machine and one process: the SIP port is its lock.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

WATCH_SECONDS = 2.0  # how often a worker checks that it still holds its node's lock
CONNECT_TIMEOUT = 5  # seconds: a stop never waits longer for a database that does not answer


def lock_key(node: str) -> int:
    """The advisory lock's 64-bit key for a node (stable across processes and versions)."""
    digest = hashlib.blake2b(f"centralino-node:{node}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class NodeLock:
    """Holds the node's lock for as long as this object's connection lives."""

    def __init__(self, database: dict[str, Any], node: str) -> None:
        self.database = database
        self.node = node
        self.connection: Any = None
        self._using = threading.Lock()  # the watcher and release() share the connection
        self._released = threading.Event()

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another worker holds it."""
        import psycopg

        settings = self.database
        with self._using:
            self.connection = psycopg.connect(
                dbname=settings["NAME"],
                user=settings.get("USER") or None,
                password=settings.get("PASSWORD") or None,
                host=settings.get("HOST") or None,
                port=settings.get("PORT") or None,
                autocommit=True,
                application_name=f"centralino node lock {self.node}",
                connect_timeout=CONNECT_TIMEOUT,
            )
            row = self.connection.execute(
                "SELECT pg_try_advisory_lock(%s)", (lock_key(self.node),)
            ).fetchone()
            if row and row[0] and not self._released.is_set():
                return True
            self._close()
            return False

    def release(self) -> None:
        self._released.set()
        with self._using:
            self._close()

    def _close(self) -> None:
        if self.connection is not None:
            self.connection.close()  # the lock goes with its session
            self.connection = None

    def watch(self, interval: float = WATCH_SECONDS) -> None:
        """Check the lock's connection every `interval` seconds, in a daemon thread, and take
        the lock again when the connection died (until release())."""
        thread = threading.Thread(
            target=self._watch, args=(interval,), name="node-lock", daemon=True
        )
        thread.start()

    def _watch(self, interval: float) -> None:
        while not self._released.wait(interval):
            if not self.holds():
                log.warning(
                    "node %s: the database connection holding its lock is gone: taking the "
                    "lock again once the database answers",
                    self.node,
                )
                self._take_again(interval)

    def _take_again(self, interval: float) -> None:
        said_taken = False
        while not self._released.wait(interval):
            try:
                if self.acquire():
                    log.info("node %s: its lock is held again", self.node)
                    return
            except Exception:  # the database is still away: try again at the next turn
                continue
            if not said_taken and not self._released.is_set():
                said_taken = True
                log.error(
                    "node %s: another telephony worker took its lock while the database was "
                    "away: two engines serve this node, stop one of them",
                    self.node,
                )

    def holds(self) -> bool:
        """Whether the lock's connection is alive (and the lock with it)."""
        with self._using:
            if self.connection is None:
                return False
            try:
                self.connection.execute("SELECT 1")
            except Exception:
                self._close()
                return False
            return True


def hold(node: str) -> NodeLock | None:
    """The node's lock when the database is PostgreSQL (None for SQLite, which needs none).

    Raises:
        SystemExit: another worker serves this node.
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if "postgresql" not in database["ENGINE"]:
        return None
    lock = NodeLock(database, node)
    if not lock.acquire():
        log.error(
            "node %s is already served by another telephony worker (it holds the node's lock "
            "in PostgreSQL): this worker exits and touches nothing",
            node,
        )
        raise SystemExit(1)
    lock.watch()
    return lock
