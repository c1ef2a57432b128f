"""Whether the database and Redis answer, said in one line that names them (never a password).

Every process checks the services it needs before it starts (`manage.py serve`, the Celery
workers): a wrong DATABASE_URL or REDIS_URL then costs one clear line and a non-zero exit,
not a traceback or a process serving without what it needs. While running, `Outage` says once
that a service went away and once that it is back, however many operations fail in between.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit, urlunsplit

CHECK_TIMEOUT = 3.0  # seconds: a health check or a start-up check must not hang


def one_line(error: BaseException) -> str:
    """An error's text on one line (psycopg's span several, indented)."""
    return " ".join(str(error).split()) or type(error).__name__


def database_name(database: dict[str, Any]) -> str:
    """How a user recognises a DATABASES entry: engine, name, server and user."""
    engine = database["ENGINE"].rsplit(".", 1)[-1]
    if engine == "sqlite3":
        return f"SQLite database {database['NAME']}"
    server = f"{database.get('HOST') or 'localhost'}:{database.get('PORT') or 'default port'}"
    user = f" as {database['USER']}" if database.get("USER") else ""
    return f"{engine} database {database['NAME']!r} at {server}{user}"


def redis_name(url: str) -> str:
    """A Redis URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def database_problem() -> str | None:
    """Why the default database cannot be used, in one line; None when it answers."""
    from django.db import DatabaseError, connection

    try:
        connection.ensure_connection()
    except DatabaseError as error:
        return f"cannot connect to the {database_name(connection.settings_dict)}: {one_line(error)}"
    finally:
        connection.close()  # a check leaves nothing open (a prefork worker forks after it)
    return None


def redis_problem(url: str) -> str | None:
    """Why Redis at `url` cannot be used, in one line; None when it answers a PING."""
    import redis

    client = redis.Redis.from_url(
        url, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT
    )
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        return f"cannot connect to Redis at {redis_name(url)}: {one_line(error)}"
    finally:
        client.close()
    return None


def start_up_problems() -> list[str]:
    """What keeps this process from working: the database, and Redis when REDIS_URL is set."""
    from django.conf import settings

    problems = [database_problem()]
    if settings.REDIS_URL:
        problems.append(redis_problem(settings.REDIS_URL))
    return [problem for problem in problems if problem]


class Outage:
    """Says once that a service stopped answering and once that it answers again."""

    def __init__(self, log: logging.Logger, service: str, consequence: str) -> None:
        self.log = log
        self.service = service
        self.consequence = consequence
        self.problem: str | None = None
        self.failures = 0

    def failed(self, error: BaseException | str) -> None:
        """An operation on the service failed (the first one is logged)."""
        self.failures += 1
        if self.problem is None:
            self.problem = error if isinstance(error, str) else one_line(error)
            self.log.warning("%s went away (%s): %s", self.service, self.problem, self.consequence)

    def succeeded(self) -> None:
        """An operation on the service worked (the first one after an outage is logged)."""
        if self.problem is not None:
            self.log.info(
                "%s answers again (%d operations failed meanwhile)", self.service, self.failures
            )
        self.problem = None
        self.failures = 0
