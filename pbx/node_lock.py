"""One telephony worker per node, whichever machine it runs on.

A node's engine owns its calls, its call records and its queue: a second worker started for
the same `CENTRALINO_NODE` (on another port, another machine) would close the first one's live
records as interrupted and take half of its commands. The worker therefore holds a PostgreSQL
advisory lock named after the node, on a connection of its own, before it touches anything:

- every machine of a deployment shares the database, so every machine sees the lock;
- the lock belongs to the connection, and the connection to the process: a worker that dies,
  even by SIGKILL, frees it at once, with no expiry to wait for and nothing to renew (a Redis
  lock would need both, and a worker paused longer than its expiry would lose it unknowingly).

SQLite (the embedded default) is one machine and one process: the SIP port is its lock.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

log = logging.getLogger(__name__)


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

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another worker holds it."""
        import psycopg

        settings = self.database
        self.connection = psycopg.connect(
            dbname=settings["NAME"],
            user=settings.get("USER") or None,
            password=settings.get("PASSWORD") or None,
            host=settings.get("HOST") or None,
            port=settings.get("PORT") or None,
            autocommit=True,
            application_name=f"centralino node lock {self.node}",
        )
        row = self.connection.execute(
            "SELECT pg_try_advisory_lock(%s)", (lock_key(self.node),)
        ).fetchone()
        if not row or not row[0]:
            self.release()
            return False
        return True

    def release(self) -> None:
        if self.connection is not None:
            self.connection.close()  # the lock goes with its session
            self.connection = None


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
    return lock
