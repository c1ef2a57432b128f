"""What the hunt algorithms remember between calls, in the database: the member that took a
group's last call (HuntGroup.last_member) and when each line became idle (LineIdle).

Every node reads and writes the same rows, so a rotation goes on where another node or the
previous run left it. Reads run on a worker thread at call set-up (one small query); writes go
through a background writer with update(), which sends no signal: they never make the engines
reload their configuration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import close_old_connections

from pbx.models import HuntGroup, LineIdle
from pbx.writer import BackgroundWriter


class OrmHuntMemory:
    def __init__(self) -> None:
        self._writer = BackgroundWriter("hunt-memory")

    async def last_member(self, company_id: int, group: str) -> str:
        def read() -> str:
            close_old_connections()
            found = HuntGroup.objects.filter(company_id=company_id, number=group)
            return found.values_list("last_member", flat=True).first() or ""

        return await asyncio.to_thread(read)

    async def idle_since(self, company_id: int, numbers: Sequence[str]) -> dict[str, float]:
        def read() -> dict[str, float]:
            close_old_connections()
            rows = LineIdle.objects.filter(company_id=company_id, number__in=list(numbers))
            return {n: at.timestamp() for n, at in rows.values_list("number", "idle_since")}

        return await asyncio.to_thread(read)

    def took_call(self, company_id: int, group: str, member: str) -> None:
        self._writer.submit(
            lambda: HuntGroup.objects.filter(company_id=company_id, number=group).update(
                last_member=member
            )
        )

    def line_idle(self, company_id: int, number: str, at: float) -> None:
        when = datetime.fromtimestamp(at, UTC)

        def write() -> None:
            LineIdle.objects.update_or_create(
                company_id=company_id, number=number, defaults={"idle_since": when}
            )

        self._writer.submit(write)

    def flush(self) -> None:
        self._writer.flush()
