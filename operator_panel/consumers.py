"""The operator console's socket: the company's live calls and extensions, as they change,
and the console's commands.

Only operators and administrators of a company get in (anyone else is refused before the
handshake completes; a foreign Origin is refused by the ASGI stack, operator_panel/asgi.py);
the socket joins its company's group and no other, sends the snapshot first and then every
message of the stream (pbx/events.py), which the page applies in order.

A command, `{"type": "command", "id": <client id>, "action": ..., ...}` (pbx/control.py),
gets `{"type": "ack", "id": ..., "result": {...}}` or `{"type": "error", "id": ...,
"code": ..., "detail": ...}`, to this socket only. Commands run beside the stream: one that
waits for the operator's phone to answer never holds back the messages that show it ringing.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from redis.exceptions import RedisError

from operator_panel.web_redis import REDIS
from pbx import control
from pbx.events import console_group

REFUSED = 4403  # the close code of a socket that may not see the console
# Redis does not answer: the page opens a new socket in a moment. (1013, "try again later", is
# a code Daphne's WebSocket library refuses to send: the application range it is.)
TRY_AGAIN = 4503


class ConsoleConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    actor: control.Actor | None = None

    async def connect(self) -> None:
        self.commands: set[asyncio.Task[None]] = set()
        actor = await database_sync_to_async(control.actor_of)(self.scope.get("user"))
        if actor is None or not actor.runs_the_console:
            await self.close(code=REFUSED)
            return
        self.actor = actor
        try:
            await self.channel_layer.group_add(console_group(actor.company_id), self.channel_name)
        except RedisError as error:  # the page tries again in a moment
            REDIS.failed(error)
            await self.close(code=TRY_AGAIN)
            return
        REDIS.succeeded()
        self.group = console_group(actor.company_id)
        await self.accept()
        await self.send_snapshot()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except RedisError as error:
            # Redis went away under the socket: its group is gone with it (Redis keeps nothing).
            # Said once; the socket closes, and the page opens a new one, with a new snapshot,
            # once Redis answers again.
            REDIS.failed(error)
            self.group = None
            with contextlib.suppress(Exception):  # the client went too
                await self.close(code=TRY_AGAIN)

    async def send_snapshot(self) -> None:
        assert self.actor is not None
        try:
            snapshot = await control.console_snapshot(self.actor.company_id)
        except control.EngineUnavailable as error:
            await self.send_json(
                {"type": "error", "code": "engine_unavailable", "detail": str(error)}
            )
            return
        await self.send_json({"type": "snapshot", **snapshot})

    async def disconnect(self, code: int) -> None:
        for task in getattr(self, "commands", ()):
            task.cancel()
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections before every message, one hop to the
        # sync thread each (about 0.15 ms): a stream message touches no database, and with
        # 50 consoles it was most of the cost of a delivery (bench/RESULTS.md).
        if message.get("type") == "console.event":
            await self.console_event(message)
            return
        await super().dispatch(message)

    async def console_event(self, event: dict[str, Any]) -> None:
        await self.send_json(event["message"])

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            # The status bar shows the round trip on hover (SPEC B9).
            await self.send_json({"type": "pong", "id": content.get("id")})
        elif kind == "resync":  # the page saw a gap in the sequence
            await self.send_snapshot()
        elif kind == "command":
            task = asyncio.ensure_future(self._command(content))
            self.commands.add(task)
            task.add_done_callback(self.commands.discard)
        else:
            await self.send_json({"type": "error", "code": "unknown_message"})

    async def _command(self, content: dict[str, Any]) -> None:
        client_id = content.get("id")
        try:
            console = control.parse(self.actor, content)
            result = await control.command(console)
        except control.Refused as refused:
            await self.send_json(
                {"type": "error", "id": client_id, "code": refused.code, "detail": refused.detail}
            )
            return
        await self.send_json({"type": "ack", "id": client_id, "result": result})
