"""Writes call records from the engine to the database, off the event loop and in order."""

from __future__ import annotations

import asyncio
import logging

from django.db.models import DateTimeField, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from pbx.models import NodeHeartbeat
from pbx.writer import BackgroundWriter
from stats.models import CallRecord, Disposition

log = logging.getLogger(__name__)


class OrmCallRecorder:
    """A CallRecorder (pbx.engine.records) over the CallRecord model.

    One writer thread keeps each call's writes in order; the engine never waits for them.
    """

    def __init__(self, node: str) -> None:
        self.node = node
        self._writer = BackgroundWriter("cdr")
        self._submit = self._writer.submit

    def started(
        self,
        call_id: str,
        *,
        direction: str,
        caller: str,
        caller_name: str,
        callee: str,
        company_id: int | None,
    ) -> None:
        now = timezone.now()
        self._submit(
            CallRecord.objects.create,
            call_id=call_id,
            node=self.node,
            company_id=company_id,
            direction=direction,
            caller=caller[:64],
            caller_name=caller_name[:120],
            callee=callee[:64],
            started_at=now,
        )

    def answered(self, call_id: str, answered_by: str) -> None:
        now = timezone.now()
        self._submit(
            lambda: CallRecord.objects.filter(call_id=call_id).update(
                answered_at=now, answered_by=answered_by[:64]
            )
        )

    def taken(self, call_id: str, answered_by: str) -> None:
        self._submit(
            lambda: CallRecord.objects.filter(call_id=call_id).update(answered_by=answered_by[:64])
        )

    def ended(self, call_id: str, disposition: str, reason: str) -> None:
        now = timezone.now()
        self._submit(
            lambda: CallRecord.objects.filter(call_id=call_id).update(
                ended_at=now, disposition=disposition, end_reason=reason[:60]
            )
        )

    async def recover(self) -> int:
        """Close the records a crash of this node left open, as interrupted, at the last time
        its engine was known alive: its last heartbeat (pbx/heartbeat.py; this start's own
        beat has not begun), but never before a record's start or answer."""

        def close() -> int:
            now = timezone.now()
            seen_at = (
                NodeHeartbeat.objects.filter(node=self.node)
                .values_list("seen_at", flat=True)
                .first()
            )
            last_alive = min(seen_at, now) if seen_at is not None else now
            return CallRecord.objects.filter(
                node=self.node, disposition=Disposition.IN_PROGRESS
            ).update(
                disposition=Disposition.INTERRUPTED,
                ended_at=Greatest(
                    Coalesce("answered_at", "started_at"),
                    Value(last_alive, output_field=DateTimeField()),
                ),
                end_reason="engine crash",
            )

        closed = await asyncio.wrap_future(self._writer.submit(close))
        if closed:
            log.warning("closed %d call records left open by a previous run as interrupted", closed)
        return closed

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every write queued so far is done (tests, shutdown)."""
        self._writer.flush(timeout)

    def drain(self, timeout: float = 5.0) -> bool:
        """At a stop: the writes queued so far, done or given up (pbx/writer.py)."""
        return self._writer.drain(timeout)
