"""A call: the caller's leg, the legs it rings, the one that answered, and its state."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pbx.engine.legs import Leg
from pbx.engine.media import MediaEndpoint
from pbx.engine.routing import Party, Route

log = logging.getLogger(__name__)


class CallState(enum.Enum):
    ROUTING = "routing"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


_CALL_TRANSITIONS = {
    CallState.ROUTING: {CallState.RINGING, CallState.ANSWERED, CallState.ENDED},
    CallState.RINGING: {CallState.RINGING, CallState.ANSWERED, CallState.ENDED},
    CallState.ANSWERED: {CallState.ENDED},
    CallState.ENDED: set(),
}


# How an unanswered call ends, for the call record.
DISPOSITIONS = {
    486: "busy",
    600: "busy",
    487: "cancelled",
    404: "failed",
    480: "no_answer",
    408: "no_answer",
}


@dataclass(eq=False)
class Call:
    id: str
    a: Leg
    caller: Party
    dialled: str
    direction: str
    state: CallState = CallState.ROUTING
    forks: list[Leg] = field(default_factory=list)
    b: Leg | None = None
    no_answer: asyncio.TimerHandle | None = None
    depth: int = 0  # forwarding hops taken, to stop loops
    best_failure: int = 0
    on_answered: Any = None  # a feature (transfer) waiting for the answer instead of leg A
    route: Route | None = None
    b_media: MediaEndpoint | None = None  # shared by the forks until one answers
    advance: Callable[[], None] | None = None  # ring-in-order: move on to the next device
    advance_timer: asyncio.TimerHandle | None = None

    def move(self, new: CallState) -> None:
        if new not in _CALL_TRANSITIONS[self.state]:
            raise RuntimeError(f"call {self.id}: {self.state.value} -> {new.value}")
        log.info(
            "call %s %s -> %s: %s -> %s",
            self.id[:8],
            self.caller.number,
            self.dialled,
            self.state.value,
            new.value,
        )
        self.state = new

    def other(self, leg: Leg) -> Leg | None:
        if leg is self.a:
            return self.b
        if leg is self.b:
            return self.a
        return None


def better_failure(current: int, new: int) -> int:
    """Pick the response to pass back when every fork failed (RFC 3261 16.7, simplified)."""
    if current == 0:
        return new
    rank = {486: 0, 600: 0, 603: 1, 480: 2, 408: 3, 487: 9}
    return new if rank.get(new, 5) < rank.get(current, 5) else current
