"""A call: the caller's leg, the leg that answered, and its life as a state table.

A call is created by an INVITE (its caller's leg A is then unanswered) or by the engine for a
party already in a conversation (a transfer: leg A is answered and the call is `HANDOFF`). It
is routed, rings (a `Ringer` owns the forks), is answered (leg B joins A) and ends. Every move
goes through `Call.move` along `_TRANSITIONS` and emits a `CallChanged` event; whoever waits
for the outcome (a transfer) awaits `Call.outcome`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pbx.engine.events import CallChanged, EventSink, NullSink
from pbx.engine.legs import Leg
from pbx.engine.routing import Party, Route

if TYPE_CHECKING:
    from pbx.engine.media import MediaEndpoint
    from pbx.engine.ringer import Ringer

log = logging.getLogger(__name__)


class CallState(enum.Enum):
    ROUTING = "routing"  # looking up where the number goes (or where a forwarding goes)
    QUEUED = "queued"  # waits in the operator queue (the caller hears ringing) for a console
    RINGING = "ringing"  # a ringer rings one or more phones or the trunk
    ANSWERED = "answered"  # two parties talk
    ATTENDANT = "attendant"  # the PBX answered: the caller walks a Multiselection's menus
    TRANSFERRING = "transferring"  # one party left for a transfer; the other waits for its end
    PARKED = "parked"  # the operator left it in a parking slot: one party, hearing music
    ENDED = "ended"


_TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.ROUTING: frozenset(
        {
            CallState.RINGING,
            CallState.QUEUED,
            CallState.ANSWERED,
            CallState.ATTENDANT,
            CallState.ENDED,
        }
    ),
    # An operator takes a queued call (their phone is rung), or it ends waiting.
    # ...or an operator's phone picks it up by dialling the operator number.
    CallState.QUEUED: frozenset({CallState.ROUTING, CallState.ANSWERED, CallState.ENDED}),
    # Ringing an operator's phone that does not answer puts the call back where it waited.
    CallState.RINGING: frozenset(
        {
            CallState.ROUTING,
            CallState.ANSWERED,
            CallState.ATTENDANT,
            CallState.QUEUED,
            CallState.PARKED,
            CallState.ENDED,
        }
    ),
    # A key of the menu sends the caller on: the call is routed again (its leg A answered).
    CallState.ATTENDANT: frozenset({CallState.ROUTING, CallState.ENDED}),
    CallState.ANSWERED: frozenset({CallState.TRANSFERRING, CallState.PARKED, CallState.ENDED}),
    CallState.TRANSFERRING: frozenset({CallState.ANSWERED, CallState.ENDED}),
    # Retrieving a parked call rings the retriever's phone.
    CallState.PARKED: frozenset({CallState.ROUTING, CallState.ENDED}),
    CallState.ENDED: frozenset(),
}


class CallKind(enum.Enum):
    NEW = "new"  # an INVITE: leg A waits for our answer
    HANDOFF = "handoff"  # placed for a party already in a dialog (transfers): A is answered


class Disposition(enum.Enum):
    """How a call ended, for the call record."""

    ANSWERED = "answered"
    BUSY = "busy"
    CANCELLED = "cancelled"
    NO_ANSWER = "no_answer"
    FAILED = "failed"

    @classmethod
    def of_status(cls, status: int) -> Disposition:
        """The disposition of a call that ended unanswered with `status`."""
        return _STATUS_DISPOSITIONS.get(status, cls.FAILED)


class Status(enum.IntEnum):
    """The SIP statuses the call layer ends calls and legs with."""

    NOT_FOUND = 404
    REQUEST_TIMEOUT = 408
    UNAVAILABLE = 480
    LOOP_DETECTED = 482
    BUSY_HERE = 486
    REQUEST_TERMINATED = 487
    NOT_ACCEPTABLE_HERE = 488
    SERVICE_UNAVAILABLE = 503
    BUSY_EVERYWHERE = 600


_STATUS_DISPOSITIONS: dict[int, Disposition] = {
    Status.BUSY_HERE: Disposition.BUSY,
    Status.BUSY_EVERYWHERE: Disposition.BUSY,
    Status.REQUEST_TERMINATED: Disposition.CANCELLED,
    Status.NOT_FOUND: Disposition.FAILED,
    Status.UNAVAILABLE: Disposition.NO_ANSWER,
    Status.REQUEST_TIMEOUT: Disposition.NO_ANSWER,
}

BUSY_STATUSES = frozenset({Status.BUSY_HERE, Status.BUSY_EVERYWHERE})


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a call's ringing ended: `answered` is the leg that answered, or None and `status`."""

    answered: Leg | None
    status: int = 200


@dataclass(eq=False)
class Call:
    id: str
    a: Leg
    caller: Party
    dialled: str
    direction: str
    events: EventSink = field(default_factory=NullSink, repr=False)
    kind: CallKind = CallKind.NEW
    state: CallState = CallState.ROUTING
    b: Leg | None = None
    route: Route | None = None
    b_media: MediaEndpoint | None = None  # shared by the forks until one answers
    depth: int = 0  # forwarding hops taken, to stop loops
    ringer: Ringer | None = None
    answered_by: str = ""
    operator: str = ""  # the extension of the operator whose console handles it, if any
    outgoing: bool = False  # the operator made it (dialled, retrieved): the outgoing area
    park_slot: int | None = None  # while parked
    outcome: asyncio.Future[Outcome] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.outcome = asyncio.get_running_loop().create_future()
        self._emit(None, None, "")

    def move(
        self, new: CallState, *, disposition: Disposition | None = None, reason: str = ""
    ) -> None:
        """Change state along the table (anything else is a bug) and say so."""
        if new not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"call {self.id}: {self.state.value} -> {new.value}")
        log.info(
            "call %s %s -> %s: %s -> %s",
            self.id[:8],
            self.caller.number,
            self.dialled,
            self.state.value,
            new.value,
        )
        previous, self.state = self.state, new
        self._emit(previous, disposition, reason)

    def _emit(
        self, previous: CallState | None, disposition: Disposition | None, reason: str
    ) -> None:
        self.events.emit(
            CallChanged(
                call_id=self.id,
                previous=previous,
                state=self.state,
                company_id=self.caller.company_id,
                direction=self.direction,
                caller=self.caller.number,
                caller_name=self.caller.name,
                dialled=self.dialled,
                answered_by=self.answered_by,
                operator=self.operator,
                outgoing=self.outgoing,
                park_slot=self.park_slot,
                disposition=disposition,
                reason=reason,
                at=self.a.stack.now(),
            )
        )

    def changed(self, reason: str) -> None:
        """Say that something shown of the call changed in place (its operator left it)."""
        self._emit(self.state, None, reason)

    @property
    def talking(self) -> bool:
        """Answered, parked, or answered and now waiting for a transfer of one party."""
        return self.state in (
            CallState.ANSWERED,
            CallState.TRANSFERRING,
            CallState.PARKED,
            CallState.ATTENDANT,
        )

    def other(self, leg: Leg) -> Leg | None:
        if leg is self.a:
            return self.b
        if leg is self.b:
            return self.a
        return None

    def settle(self, outcome: Outcome) -> None:
        """Tell whoever awaits `outcome` how the ringing ended (once)."""
        if not self.outcome.done():
            self.outcome.set_result(outcome)


def better_failure(current: int, new: int) -> int:
    """Pick the response to pass back when every fork failed (RFC 3261 16.7, simplified)."""
    if current == 0:
        return new
    rank = {486: 0, 600: 0, 603: 1, 480: 2, 408: 3, 487: 9}
    return new if rank.get(new, 5) < rank.get(current, 5) else current
