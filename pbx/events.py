"""The console's live view of the engine: one versioned schema, a sequence per company stream.

The engine's own events (pbx/engine/events.py: a call or an extension changed) come in; out go
JSON-ready messages for the operator consoles of the company they concern:

    {"v": 1, "seq": 42, "type": "call.updated", "call": {...}}
    {"v": 1, "seq": 43, "type": "call.ended", "call_id": "...", "disposition": "answered"}
    {"v": 1, "seq": 44, "type": "extension.state", "number": "201", "state": "talking"}
    {"v": 1, "seq": 45, "type": "extension.registered", "number": "201", "registered": true}

A call carries its `state` (routing, queued: waiting in the operator queue, ringing, answered,
transferring, parked), who calls and what they dialled, `operator` (the extension of the
operator handling it) and `outgoing` (the operator made it: dialled, or retrieved from
parking), `park_slot` while parked, and `held` with `held_since` while a party
holds it: the queue, the parking and the hold timers are all read from the calls.

A console first takes a `snapshot` (every live call and every extension that is not idle, with
the sequence it is at), then applies the messages that follow in order with `apply`; a gap in
the sequence (a message lost, a reconnect) raises `Gap`, and the console takes a new snapshot.
Nothing the console shows is invented on the client: snapshot + messages always equal a fresh
snapshot, which the tests check after bursts of calls.

With several telephony nodes each has its own feed and stream: messages and snapshots name
their `node`, and a console's view holds one snapshot per node (`view_of`, `apply_to_view`;
`merged` puts them together for the REST API's lists).

The engine subscribes one `ConsoleFeed`; the process that hosts the engine gives it a
`ChannelPublisher`, which delivers each message to the company's group of the channel layer
(`console_group`), where the consoles' sockets listen (operator_panel/consumers.py). Nothing
else sends to those groups. The feed itself knows no Django.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pbx.connectivity import Outage
from pbx.engine.call import CallState
from pbx.engine.events import (
    CallChanged,
    Event,
    ExtensionState,
    ExtensionStateChanged,
    LegChanged,
    RegistrationChanged,
)
from pbx.engine.legs import LegState

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

Message = dict[str, Any]
Snapshot = dict[str, Any]
Publish = Callable[[int, Message], None]  # (company id, message)


def console_group(company_id: int) -> str:
    """The channel-layer group where the consoles of a company listen."""
    return f"console.{company_id}"


class Gap(Exception):
    """A message does not follow the snapshot it is applied to: take a new snapshot."""


@dataclass
class _Stream:
    """One company's live state and the sequence of its messages."""

    seq: int = 0
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)
    registered: dict[str, set[str]] = field(default_factory=dict)  # extension -> its devices


class ConsoleFeed:
    """Subscribe `on_event` to the engine's bus; `snapshot(company)` for a console that joins."""

    def __init__(
        self,
        publish: Publish | None = None,
        wall: Callable[[], float] = time.time,
        node: str = "",
    ) -> None:
        self.publish = publish
        self.wall = wall  # the console shows clock times (waiting since...), not loop time
        self.node = node  # the telephony node whose calls these are: one stream per node
        self._streams: dict[int, _Stream] = {}
        self._company_of_call: dict[str, int] = {}
        self._holding: dict[int, str] = {}  # leg id -> the call in which it holds
        self._holders: Counter[str] = Counter()  # call id -> how many of its legs hold

    def on_event(self, event: Event) -> None:
        if isinstance(event, CallChanged):
            self._call(event)
        elif isinstance(event, LegChanged):
            self._leg(event)
        elif isinstance(event, ExtensionStateChanged):
            self._extension(event)
        elif isinstance(event, RegistrationChanged) and event.extension:
            self._registration(event)

    def _registration(self, event: RegistrationChanged) -> None:
        """An extension is registered while any of its devices is."""
        stream = self._stream(event.company_id)
        devices = stream.registered.get(event.extension, set())
        was = bool(devices)
        if event.contacts:
            devices.add(event.username)
        else:
            devices.discard(event.username)
        if devices:
            stream.registered[event.extension] = devices
        else:
            stream.registered.pop(event.extension, None)
        if bool(devices) != was:
            self._send(
                event.company_id,
                stream,
                {
                    "type": "extension.registered",
                    "number": event.extension,
                    "registered": bool(devices),
                },
            )

    def _leg(self, event: LegChanged) -> None:
        """A leg held or resumed, ended, or left its call (a transfer, a park): the `held`
        of the calls concerned."""
        before = self._holding.get(event.leg_id)
        holding = event.held and event.state is not LegState.ENDED and bool(event.call_id)
        if before is not None:
            del self._holding[event.leg_id]
            self._holders[before] -= 1
            if not self._holders[before]:
                del self._holders[before]
        if holding:
            self._holding[event.leg_id] = event.call_id
            self._holders[event.call_id] += 1
        for call_id in {before, event.call_id if holding else None}:
            if call_id is not None:
                self._refresh_held(call_id)

    def _refresh_held(self, call_id: str) -> None:
        company_id = self._company_of_call.get(call_id)
        if company_id is None:
            return
        stream = self._stream(company_id)
        call = stream.calls.get(call_id)
        if call is None:
            return
        held = call_id in self._holders
        if held == call["held"]:
            return
        call["held"] = held
        call["held_since"] = self.wall() if held else None
        self._send(company_id, stream, {"type": "call.updated", "call": dict(call)})

    def _call(self, event: CallChanged) -> None:
        stream = self._stream(event.company_id)
        if event.state is CallState.ENDED:
            self._company_of_call.pop(event.call_id, None)
            if stream.calls.pop(event.call_id, None) is None:
                return  # a call the console never saw (ended as it began)
            disposition = event.disposition.value if event.disposition else "failed"
            self._send(
                event.company_id,
                stream,
                {"type": "call.ended", "call_id": event.call_id, "disposition": disposition},
            )
            return
        now = self.wall()
        known = stream.calls.get(event.call_id)
        self._company_of_call[event.call_id] = event.company_id
        held = event.call_id in self._holders
        call = {
            "id": event.call_id,
            "state": event.state.value,
            "direction": event.direction,
            "caller": event.caller,
            "caller_name": event.caller_name,
            "dialled": event.dialled,
            "answered_by": event.answered_by,
            "operator": event.operator,
            "park_slot": event.park_slot,
            "outgoing": event.outgoing,
            "held": held,
            "held_since": known["held_since"] if known and held else None,
            "started_at": known["started_at"] if known else now,
            "state_since": now
            if known is None or known["state"] != event.state.value
            else known["state_since"],
            "node": self.node,
        }
        stream.calls[event.call_id] = call
        self._send(event.company_id, stream, {"type": "call.updated", "call": dict(call)})

    def _extension(self, event: ExtensionStateChanged) -> None:
        stream = self._stream(event.company_id)
        if event.state is ExtensionState.IDLE:
            stream.extensions.pop(event.number, None)
        else:
            stream.extensions[event.number] = event.state.value
        self._send(
            event.company_id,
            stream,
            {"type": "extension.state", "number": event.number, "state": event.state.value},
        )

    def _stream(self, company_id: int) -> _Stream:
        stream = self._streams.get(company_id)
        if stream is None:
            stream = self._streams[company_id] = _Stream()
        return stream

    def _send(self, company_id: int, stream: _Stream, body: Message) -> None:
        stream.seq += 1
        if self.publish is not None:
            message = {"v": SCHEMA_VERSION, "node": self.node, "seq": stream.seq, **body}
            self.publish(company_id, message)

    def snapshot(self, company_id: int) -> Snapshot:
        """Everything a console of `company_id` shows now, and the sequence it is at."""
        stream = self._streams.get(company_id) or _Stream()
        return {
            "v": SCHEMA_VERSION,
            "node": self.node,
            "seq": stream.seq,
            "calls": copy.deepcopy(stream.calls),
            "extensions": dict(stream.extensions),
            "registered": sorted(stream.registered),
        }


def apply(snapshot: Snapshot, message: Message) -> Snapshot:
    """The snapshot after `message` (what the console's JavaScript does, in Python).

    Raises:
        Gap: the message is not the next one of the snapshot's stream (an older one, sent
            while the snapshot was taken, is already in it and changes nothing).
        ValueError: a schema version or a message type this code does not know.
    """
    if message.get("v") != SCHEMA_VERSION or snapshot.get("v") != SCHEMA_VERSION:
        raise ValueError(f"schema version {message.get('v')}, expected {SCHEMA_VERSION}")
    if message["seq"] <= snapshot["seq"]:
        return snapshot  # sent while the snapshot was taken: already in it
    if message["seq"] != snapshot["seq"] + 1:
        raise Gap(f"message {message['seq']} after snapshot {snapshot['seq']}")
    result = copy.deepcopy(snapshot)
    result["seq"] = message["seq"]
    kind = message["type"]
    if kind == "call.updated":
        result["calls"][message["call"]["id"]] = dict(message["call"])
    elif kind == "call.ended":
        result["calls"].pop(message["call_id"], None)
    elif kind == "extension.registered":
        registered = set(result["registered"])
        if message["registered"]:
            registered.add(message["number"])
        else:
            registered.discard(message["number"])
        result["registered"] = sorted(registered)
    elif kind == "extension.state":
        if message["state"] == ExtensionState.IDLE.value:
            result["extensions"].pop(message["number"], None)
        else:
            result["extensions"][message["number"]] = message["state"]
    else:
        raise ValueError(f"unknown message type {kind!r}")
    return result


# --- several telephony nodes ---------------------------------------------------------------
#
# Each node's engine has its own feed and stream (its calls, its phones' extensions, its own
# sequence). A console's view holds one snapshot per node; a message applies to its node's.

View = dict[str, Any]  # {"v": 1, "nodes": {node: Snapshot}}

# What an extension shows when its phones are busy on several nodes: as presence.py ranks it.
_PRECEDENCE = ["idle", "dialling", "ringing", "talking", "held"]


def view_of(snapshots: list[Snapshot]) -> View:
    """The console's view of every node that answered."""
    return {"v": SCHEMA_VERSION, "nodes": {s["node"]: s for s in snapshots}}


def apply_to_view(view: View, message: Message) -> View:
    """The view after `message`, applied to the snapshot of its node.

    Raises:
        Gap: a node the view has no snapshot of (it started since), or a gap in its stream.
    """
    node = message.get("node", "")
    if node not in view["nodes"]:
        raise Gap(f"a message of node {node!r}, which the view does not hold")
    return {**view, "nodes": {**view["nodes"], node: apply(view["nodes"][node], message)}}


def merged(view: View) -> Snapshot:
    """The nodes' snapshots as one: every call, each extension's busiest state, every
    registered extension (what the REST API lists)."""
    calls: dict[str, dict[str, Any]] = {}
    extensions: dict[str, str] = {}
    registered: set[str] = set()
    for snapshot in view["nodes"].values():
        calls.update(snapshot["calls"])
        registered.update(snapshot["registered"])
        for number, state in snapshot["extensions"].items():
            shown = extensions.get(number, ExtensionState.IDLE.value)
            if _PRECEDENCE.index(state) > _PRECEDENCE.index(shown):
                extensions[number] = state
    return {"calls": calls, "extensions": extensions, "registered": sorted(registered)}


# What a channel layer on Redis raises while Redis is away or restarting.
UNREACHABLE = (OSError, RedisConnectionError, RedisTimeoutError)


class ChannelPublisher:
    """Delivers a feed's messages to the company groups of a channel layer, in their order.

    Called on the engine's loop for every message; one drain task at a time sends them, so
    that a slow layer (Redis) never reorders a stream. A send that fails is tried once more: a
    Redis that restarted closed the pooled connection, which fails once and is replaced. A
    message that fails twice is dropped (the consoles see the gap in the sequence and take a
    new snapshot); the log says once that Redis went away and once that it is back.
    """

    def __init__(self, layer: Any, spawn: Callable[[Coroutine[Any, Any, None]], object]) -> None:
        self.layer = layer
        self.spawn = spawn
        self._queue: deque[tuple[int, Message]] = deque()
        self._draining = False
        self.outage = Outage(log, "Redis", "console messages are lost until it is back")

    def __call__(self, company_id: int, message: Message) -> None:
        self._queue.append((company_id, message))
        if not self._draining:
            self._draining = True
            self.spawn(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue:
                company_id, message = self._queue.popleft()
                await self._send(company_id, message)
        finally:
            self._draining = False

    async def _send(self, company_id: int, message: Message) -> None:
        event = {"type": "console.event", "message": message}
        for attempt in (1, 2):
            try:
                await self.layer.group_send(console_group(company_id), event)
            except UNREACHABLE as error:
                if attempt == 2:
                    self.outage.failed(error)
            except Exception:  # not the layer's absence: a bug, with its traceback
                log.exception("console message %s of company %s lost", message["seq"], company_id)
                return
            else:
                self.outage.succeeded()
                return
