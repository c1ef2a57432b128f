"""The web process's view of Redis, which carries the consoles' live calls and their commands:
a wrong REDIS_URL, or Redis gone, is said once in the web's log and once when it answers again,
whoever noticed it first (/healthz, a console's socket)."""

from __future__ import annotations

import logging

from pbx.connectivity import Outage

log = logging.getLogger(__name__)

REDIS = Outage(log, "Redis", "the consoles get no live calls and their commands fail")
