"""What the hunt algorithms remember between calls, in the database: the member that took a
group's last call (HuntGroup.last_member) and when each line became idle (LineIdle).

Every node reads and writes the same rows, so a rotation goes on where another node or the
previous run left it. Reads run on a worker thread at call set-up (one small query); writes go
through a background writer with update(), which sends no signal: they never make the engines
reload their configuration.

While the database does not answer, calls to a hunt group still ring: the rotation goes on from
what this node last read or wrote (said once in the log), and the writes wait in the writer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import DatabaseError, close_old_connections

from pbx.connectivity import Outage
from pbx.engine.services import MemoryHuntMemory
from pbx.models import HuntGroup, LineIdle
from pbx.writer import BackgroundWriter

log = logging.getLogger(__name__)


class OrmHuntMemory:
    def __init__(self) -> None:
        self._writer = BackgroundWriter("hunt-memory")
        self._known = MemoryHuntMemory()  # what this node read or wrote last
        self._outage = Outage(log, "the database", "hunt groups rotate on what this node remembers")

    async def last_member(self, company_id: int, group: str) -> str:
        def read() -> str:
            close_old_connections()
            found = HuntGroup.objects.filter(company_id=company_id, number=group)
            return found.values_list("last_member", flat=True).first() or ""

        try:
            member = await asyncio.to_thread(read)
        except DatabaseError as error:
            self._outage.failed(error)
            return await self._known.last_member(company_id, group)
        self._outage.succeeded()
        self._known.took_call(company_id, group, member)
        return member

    async def idle_since(self, company_id: int, numbers: Sequence[str]) -> dict[str, float]:
        def read() -> dict[str, float]:
            close_old_connections()
            rows = LineIdle.objects.filter(company_id=company_id, number__in=list(numbers))
            return {n: at.timestamp() for n, at in rows.values_list("number", "idle_since")}

        try:
            idle = await asyncio.to_thread(read)
        except DatabaseError as error:
            self._outage.failed(error)
            return await self._known.idle_since(company_id, numbers)
        self._outage.succeeded()
        for number, at in idle.items():
            self._known.line_idle(company_id, number, at)
        return idle

    def took_call(self, company_id: int, group: str, member: str) -> None:
        self._known.took_call(company_id, group, member)
        self._writer.submit(
            lambda: HuntGroup.objects.filter(company_id=company_id, number=group).update(
                last_member=member
            )
        )

    def line_idle(self, company_id: int, number: str, at: float) -> None:
        self._known.line_idle(company_id, number, at)
        when = datetime.fromtimestamp(at, UTC)

        def write() -> None:
            LineIdle.objects.update_or_create(
                company_id=company_id, number=number, defaults={"idle_since": when}
            )

        self._writer.submit(write)

    def flush(self) -> None:
        self._writer.flush()

    def drain(self, timeout: float = 5.0) -> bool:
        """At a stop: the writes queued so far, done or given up (pbx/writer.py)."""
        return self._writer.drain(timeout)
