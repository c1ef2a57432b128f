"""Presence: which extensions ring, dial, talk or hold, from the events of their legs.

Kept up to date by `LegChanged` events with counters per extension (how many of its legs talk,
hold, ring, dial), so that "is 201 busy?" and the busy lamps are lookups, not a scan of every
call or of every leg of a busy extension (an operator's phone may carry hundreds). An event
touches the legs of at most two calls (the one a leg left, the one it is in): a call on hold
shows held on both sides. `ExtensionStateChanged` is emitted when what an extension shows
changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pbx.engine.events import (
    Event,
    EventSink,
    ExtensionKey,
    ExtensionState,
    ExtensionStateChanged,
    LegChanged,
)
from pbx.engine.legs import LegState

_RINGING = frozenset({LegState.CALLING, LegState.RINGING})
_DIALLING = frozenset({LegState.INCOMING, LegState.RINGING})


class Presence:
    """Subscribe `presence.on_event` to the engine's bus; read `state()` and `is_busy()`."""

    def __init__(self, events: EventSink) -> None:
        self.events = events
        self._legs: dict[int, LegChanged] = {}  # live legs by id: their last event
        self._calls: dict[str, set[int]] = {}  # call id -> ids of its live legs
        self._counts: dict[ExtensionKey, Counter[ExtensionState]] = {}
        self._states: dict[ExtensionKey, ExtensionState] = {}

    def on_event(self, event: Event) -> None:
        if not isinstance(event, LegChanged):
            return
        old = self._legs.get(event.leg_id)
        calls = {event.call_id, old.call_id if old is not None else ""} - {""}
        affected = {event.leg_id}.union(*(self._calls.get(c, set()) for c in calls))
        self._count(affected, -1)
        self._store(event, old)
        self._count(affected, +1)
        touched = {self._legs[i].extension for i in affected if i in self._legs}
        if old is not None:
            touched.add(old.extension)
        touched.add(event.extension)
        for key in touched:
            if key is not None:
                self._update(key, event.at)

    def _store(self, event: LegChanged, old: LegChanged | None) -> None:
        if old is not None and old.call_id:
            members = self._calls.get(old.call_id)
            if members is not None:
                members.discard(event.leg_id)
                if not members:
                    del self._calls[old.call_id]
        if event.state is LegState.ENDED:
            self._legs.pop(event.leg_id, None)
            return
        self._legs[event.leg_id] = event
        if event.call_id:
            self._calls.setdefault(event.call_id, set()).add(event.leg_id)

    def _count(self, leg_ids: Iterable[int], sign: int) -> None:
        for leg_id in leg_ids:
            leg = self._legs.get(leg_id)
            if leg is None or leg.extension is None:
                continue
            shows = self._shows(leg)
            if shows is None:
                continue
            counts = self._counts.setdefault(leg.extension, Counter())
            counts[shows] += sign
            if counts[shows] <= 0:
                del counts[shows]
                if not counts:
                    del self._counts[leg.extension]

    def _shows(self, leg: LegChanged) -> ExtensionState | None:
        """What one leg makes its extension show (None: nothing)."""
        if leg.state is LegState.ANSWERED:
            return ExtensionState.HELD if self._held(leg) else ExtensionState.TALKING
        if leg.role == "uac" and leg.state in _RINGING:
            return ExtensionState.RINGING
        if leg.role == "uas" and leg.state in _DIALLING:
            return ExtensionState.DIALLING
        return None

    def _held(self, leg: LegChanged) -> bool:
        """Whether either party of `leg`'s call holds."""
        if leg.held:
            return True
        for other_id in self._calls.get(leg.call_id, ()) if leg.call_id else ():
            other = self._legs.get(other_id)
            if other is not None and other.held and other.state is LegState.ANSWERED:
                return True
        return False

    def _update(self, key: ExtensionKey, at: float) -> None:
        counts = self._counts.get(key)
        new = ExtensionState.IDLE
        if counts:
            for state in _PRECEDENCE:
                if counts.get(state):
                    new = state
                    break
        old = self._states.get(key, ExtensionState.IDLE)
        if new is old:
            return
        if new is ExtensionState.IDLE:
            self._states.pop(key, None)
        else:
            self._states[key] = new
        self.events.emit(ExtensionStateChanged(key[0], key[1], old, new, at))

    def state(self, company_id: int, number: str) -> ExtensionState:
        return self._states.get((company_id, number), ExtensionState.IDLE)

    def is_busy(self, company_id: int, number: str) -> bool:
        """Whether a phone of this extension is in an answered call now."""
        counts = self._counts.get((company_id, number))
        if not counts:
            return False
        return bool(counts.get(ExtensionState.TALKING) or counts.get(ExtensionState.HELD))

    def snapshot(self) -> dict[ExtensionKey, ExtensionState]:
        """Every extension that is not idle, and what it shows."""
        return dict(self._states)


# An extension talking on one phone and ringing on another shows talking (held wins over
# talking: one of its conversations waits, which is what a receptionist must see).
_PRECEDENCE = (
    ExtensionState.HELD,
    ExtensionState.TALKING,
    ExtensionState.RINGING,
    ExtensionState.DIALLING,
)
