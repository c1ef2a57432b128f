"""What the engine says happened: one frozen event per state change, into one sink.

Calls, legs, registrations, extensions and key presses each change state in one place (a
`move` along a table, a REGISTER, a digit). That place emits one of these events into the
engine's `EventBus`; subscribers (the call records, the presence index, later the console's
`pbx/events.py`) take what they need. Subscribers must not block and must not raise: a failing
subscriber is logged and the others still get the event.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pbx.engine.call import CallState, Disposition
    from pbx.engine.legs import LegState

log = logging.getLogger(__name__)

ExtensionKey = tuple[int, str]  # (company id, extension number)


class ExtensionState(enum.Enum):
    """What an extension's phones are doing, as a busy lamp shows it."""

    IDLE = "idle"
    RINGING = "ringing"  # one of its phones rings
    DIALLING = "dialling"  # one of its phones calls out and nobody answered yet
    TALKING = "talking"  # one of its phones is in an answered call
    HELD = "held"  # in an answered call that is on hold (either side)


@dataclass(frozen=True, slots=True)
class CallChanged:
    """A call moved from `previous` (None: it was just created) to `state`; the same state
    when something shown of it changed in place (the operator left it after a transfer)."""

    call_id: str
    previous: CallState | None
    state: CallState
    company_id: int
    direction: str
    caller: str
    caller_name: str
    dialled: str
    answered_by: str
    disposition: Disposition | None  # set when the call ended
    reason: str
    at: float
    operator: str = ""  # the extension of the operator handling it (console calls)
    park_slot: int | None = None  # set while parked
    outgoing: bool = False  # the operator made it (dialled, retrieved from parking)


@dataclass(frozen=True, slots=True)
class LegChanged:
    """A leg moved to `state` (or changed its hold: `held`)."""

    leg_id: int
    call_id: str  # "" when the leg belongs to no call (a transfer left it behind)
    label: str
    device: str
    extension: ExtensionKey | None
    role: str
    previous: LegState | None
    state: LegState
    held: bool
    at: float


@dataclass(frozen=True, slots=True)
class RegistrationChanged:
    """A device's contacts after a REGISTER (0: it unregistered)."""

    username: str
    contacts: int
    at: float
    company_id: int = 0  # the device's extension, when known
    extension: str = ""


@dataclass(frozen=True, slots=True)
class ExtensionStateChanged:
    company_id: int
    number: str
    previous: ExtensionState
    state: ExtensionState
    at: float


@dataclass(frozen=True, slots=True)
class DigitPressed:
    """An RFC 4733 key press received on a leg."""

    call_id: str
    leg_id: int
    digit: str
    duration_ms: int
    at: float


@dataclass(frozen=True, slots=True)
class MailboxChanged:
    """An extension's voicemail changed (a message left, heard or deleted, here or in the
    portal): message-waiting lamps are told the new counts."""

    company_id: int
    number: str
    at: float


Event = (
    CallChanged
    | LegChanged
    | RegistrationChanged
    | ExtensionStateChanged
    | DigitPressed
    | MailboxChanged
)
Subscriber = Callable[[Event], None]


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...


class EventBus:
    """Hands every event to every subscriber, in the order they subscribed."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    def emit(self, event: Event) -> None:
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(event)
            except Exception:
                log.exception("event subscriber %r failed on %s", subscriber, type(event).__name__)


class NullSink:
    """Drops every event (for legs and calls built outside an engine, in tests)."""

    def emit(self, event: Event) -> None:
        pass
