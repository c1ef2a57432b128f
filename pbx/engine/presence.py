"""Presence: which extensions ring, dial, talk or hold, from the events of their legs.

Kept up to date by `LegChanged` events with counters per extension (how many of its legs talk,
hold, ring, dial), so that "is 201 busy?" and the busy lamps are lookups, not a scan of every
call or of every leg of a busy extension (an operator's phone may carry hundreds). An event
touches the legs of at most two calls (the one a leg left, the one it is in): a call on hold
shows held on both sides. `ExtensionStateChanged` is emitted when what an extension shows
changes.
"""

from __future__ import annotations

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

# What a leg can make its extension show, as indexes into an extension's counters (plain
# ints and lists: this runs on every leg event of every call).
_HELD, _TALKING, _RINGS, _DIALS = range(4)
_SHOWN = (
    ExtensionState.HELD,
    ExtensionState.TALKING,
    ExtensionState.RINGING,
    ExtensionState.DIALLING,
)  # in precedence order: held wins (one of its conversations waits), then talking...


class Presence:
    """Subscribe `presence.on_event` to the engine's bus; read `state()` and `is_busy()`."""

    def __init__(self, events: EventSink) -> None:
        self.events = events
        self._legs: dict[int, LegChanged] = {}  # live legs by id: their last event
        self._calls: dict[str, set[int]] = {}  # call id -> ids of its live legs
        self._counts: dict[ExtensionKey, list[int]] = {}  # how many legs show each of _SHOWN
        self._states: dict[ExtensionKey, ExtensionState] = {}

    def on_event(self, event: Event) -> None:
        if not isinstance(event, LegChanged):
            return
        old = self._legs.get(event.leg_id)
        if old is None and event.state is LegState.ENDED:
            return
        if old is not None and old.call_id == event.call_id and _holds(old) == _holds(event):
            affected: Iterable[int] = (event.leg_id,)  # the others of its call show the same
        else:  # a hold or a move between calls changes what the others of the calls show
            calls = {event.call_id, old.call_id if old is not None else ""} - {""}
            affected = {event.leg_id}.union(*(self._calls.get(c, ()) for c in calls))
        touched = self._count(affected, -1)
        self._store(event, old)
        touched |= self._count(affected, +1)
        for key in touched:
            self._update(key, event.at)

    def _store(self, event: LegChanged, old: LegChanged | None) -> None:
        if old is not None and old.call_id and old.call_id != event.call_id:
            members = self._calls.get(old.call_id)
            if members is not None:
                members.discard(event.leg_id)
                if not members:
                    del self._calls[old.call_id]
        if event.state is LegState.ENDED:
            self._legs.pop(event.leg_id, None)
            members = self._calls.get(event.call_id) if event.call_id else None
            if members is not None:
                members.discard(event.leg_id)
                if not members:
                    del self._calls[event.call_id]
            return
        self._legs[event.leg_id] = event
        if event.call_id:
            self._calls.setdefault(event.call_id, set()).add(event.leg_id)

    def _count(self, leg_ids: Iterable[int], sign: int) -> set[ExtensionKey]:
        """Add (or take away) what `leg_ids` show to their extensions' counters."""
        touched: set[ExtensionKey] = set()
        for leg_id in leg_ids:
            leg = self._legs.get(leg_id)
            if leg is None or leg.extension is None:
                continue
            shows = self._shows(leg)
            if shows < 0:
                continue
            counts = self._counts.get(leg.extension)
            if counts is None:
                counts = self._counts[leg.extension] = [0, 0, 0, 0]
            counts[shows] += sign
            touched.add(leg.extension)
            if not any(counts):
                del self._counts[leg.extension]
        return touched

    def _shows(self, leg: LegChanged) -> int:
        """What one leg makes its extension show: an index of _SHOWN, or -1 for nothing."""
        state = leg.state
        if state is LegState.ANSWERED:
            return _HELD if self._held(leg) else _TALKING
        if leg.role == "uac":
            return _RINGS if state is LegState.CALLING or state is LegState.RINGING else -1
        return _DIALS if state is LegState.INCOMING or state is LegState.RINGING else -1

    def _held(self, leg: LegChanged) -> bool:
        """Whether either party of `leg`'s call holds."""
        if leg.held:
            return True
        for other_id in self._calls.get(leg.call_id, ()) if leg.call_id else ():
            other = self._legs.get(other_id)
            if other is not None and _holds(other):
                return True
        return False

    def _update(self, key: ExtensionKey, at: float) -> None:
        counts = self._counts.get(key)
        new = ExtensionState.IDLE
        if counts is not None:
            for index, count in enumerate(counts):
                if count:
                    new = _SHOWN[index]
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
        return counts is not None and bool(counts[_HELD] or counts[_TALKING])

    def snapshot(self) -> dict[ExtensionKey, ExtensionState]:
        """Every extension that is not idle, and what it shows."""
        return dict(self._states)


def _holds(leg: LegChanged) -> bool:
    """Whether `leg`'s far end holds its answered call."""
    return leg.held and leg.state is LegState.ANSWERED
