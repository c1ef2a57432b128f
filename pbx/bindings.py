"""The registrar's bindings in the database, so that an engine restart keeps phones reachable."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from pbx.engine.registrar import StoredBinding
from pbx.models import Registration
from pbx.writer import BackgroundWriter


class OrmBindingStore:
    """A BindingStore (pbx.engine.registrar) over the Registration model, per node."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._writer = BackgroundWriter("bindings")

    def save(self, username: str, bindings: list[StoredBinding]) -> None:
        self._writer.submit(self._replace, username, bindings)

    @transaction.atomic
    def _replace(self, username: str, bindings: list[StoredBinding]) -> None:
        Registration.objects.filter(node=self.node, username=username).delete()
        Registration.objects.bulk_create(
            [
                Registration(
                    node=self.node,
                    username=b.username,
                    contact=b.contact[:512],
                    source_host=b.source_host,
                    source_port=b.source_port,
                    transport=b.transport,
                    expires_at=datetime.fromtimestamp(b.expires_at, UTC),
                    call_id=b.call_id[:256],
                    cseq=b.cseq,
                )
                for b in bindings
            ]
        )

    async def load(self) -> list[StoredBinding]:
        def read() -> list[StoredBinding]:
            now = timezone.now()
            Registration.objects.filter(node=self.node, expires_at__lte=now).delete()
            rows = Registration.objects.filter(node=self.node, expires_at__gt=now)
            return [
                StoredBinding(
                    r.username,
                    r.contact,
                    r.source_host,
                    r.source_port,
                    r.transport,
                    r.expires_at.timestamp(),
                    r.call_id,
                    r.cseq,
                )
                for r in rows
            ]

        return await asyncio.wrap_future(self._writer.submit(read))

    def flush(self, timeout: float = 5.0) -> None:
        self._writer.flush(timeout)

    def drain(self, timeout: float = 5.0) -> bool:
        """At a stop: the writes queued so far, done or given up (pbx/writer.py)."""
        return self._writer.drain(timeout)
