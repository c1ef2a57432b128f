"""The dialog journal in the database (OpenDialog rows, per node), so that it survives a crash
of the engine: the next start sends a BYE on each dialog left in it (pbx/engine/dialog_journal.py).
"""

from __future__ import annotations

import asyncio

from pbx.engine.services import SavedDialog
from pbx.models import OpenDialog
from pbx.writer import BackgroundWriter

_UPDATED = [
    "call_id",
    "local_tag",
    "remote_tag",
    "local_uri",
    "remote_uri",
    "remote_target",
    "route_set",
    "local_cseq",
    "secure",
    "peer_host",
    "peer_port",
    "transport",
    "saved_at",  # auto_now: the insert sets it, the update on conflict takes it too
]


class OrmDialogJournal:
    """A DialogJournal (pbx.engine.services) over the OpenDialog model, for one node.

    Saves and forgets go in order through one writer thread: the engine never waits for them.
    """

    def __init__(self, node: str) -> None:
        self.node = node
        self._writer = BackgroundWriter("journal")

    def save(self, dialog: SavedDialog) -> None:
        self._writer.submit(self._upsert, dialog)

    def forget(self, leg_id: int) -> None:
        self._writer.submit(self._delete, leg_id)

    async def lost(self) -> list[SavedDialog]:
        def read() -> list[SavedDialog]:
            return [_saved(row) for row in OpenDialog.objects.filter(node=self.node)]

        kept = await asyncio.wrap_future(self._writer.submit(read))
        return kept if kept is not None else []  # None: the database stayed away (logged)

    async def clear(self) -> None:
        await asyncio.wrap_future(
            self._writer.submit(lambda: OpenDialog.objects.filter(node=self.node).delete())
        )

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every write queued so far is done (tests, shutdown)."""
        self._writer.flush(timeout)

    def drain(self, timeout: float = 5.0) -> bool:
        """At a stop: the writes queued so far, done or given up (pbx/writer.py)."""
        return self._writer.drain(timeout)

    def _upsert(self, dialog: SavedDialog) -> None:
        # One statement (INSERT ... ON CONFLICT UPDATE), not a read and a write.
        OpenDialog.objects.bulk_create(
            [_row(self.node, dialog)],
            update_conflicts=True,
            unique_fields=["node", "leg"],
            update_fields=_UPDATED,
        )

    def _delete(self, leg_id: int) -> None:
        OpenDialog.objects.filter(node=self.node, leg=leg_id).delete()


def _row(node: str, d: SavedDialog) -> OpenDialog:
    return OpenDialog(
        node=node,
        leg=d.leg_id,
        call_id=d.call_id,
        local_tag=d.local_tag,
        remote_tag=d.remote_tag,
        local_uri=d.local_uri,
        remote_uri=d.remote_uri,
        remote_target=d.remote_target,
        route_set=list(d.route_set),
        local_cseq=d.local_cseq,
        secure=d.secure,
        peer_host=d.peer[0],
        peer_port=d.peer[1],
        transport=d.transport,
    )


def _saved(row: OpenDialog) -> SavedDialog:
    return SavedDialog(
        leg_id=row.leg,
        call_id=row.call_id,
        local_tag=row.local_tag,
        remote_tag=row.remote_tag,
        local_uri=row.local_uri,
        remote_uri=row.remote_uri,
        remote_target=row.remote_target,
        route_set=tuple(str(route) for route in row.route_set),
        local_cseq=row.local_cseq,
        secure=row.secure,
        peer=(row.peer_host, row.peer_port),
        transport=row.transport,
    )
