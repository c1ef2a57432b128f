"""The operator console's socket: the company's live calls and extensions, as they change.

Only operators and administrators of a company get in (anyone else is refused before the
handshake completes); the socket joins its company's group and no other, sends the snapshot
first and then every message of the stream (pbx/events.py), which the page applies in order.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from pbx import control
from pbx.events import console_group
from pbx.models import Membership

REFUSED = 4403  # the close code of a socket that may not see the console


class ConsoleConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        membership = await _console_membership(self.scope.get("user"))
        if membership is None:
            await self.close(code=REFUSED)
            return
        self.group = console_group(membership.company_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        try:
            snapshot = await control.console_snapshot(membership.company_id)
        except control.EngineUnavailable as error:
            await self.send_json(
                {"type": "error", "code": "engine_unavailable", "detail": str(error)}
            )
            return
        await self.send_json({"type": "snapshot", **snapshot})

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def console_event(self, event: dict[str, Any]) -> None:
        await self.send_json(event["message"])

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            # The status bar shows the round trip on hover (SPEC B9).
            await self.send_json({"type": "pong", "id": content.get("id")})
            return
        await self.send_json({"type": "error", "code": "unknown_message"})


@database_sync_to_async
def _console_membership(user: Any) -> Membership | None:
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    membership = Membership.objects.filter(user=user).first()
    if membership is None or not membership.runs_the_console:
        return None
    return membership
