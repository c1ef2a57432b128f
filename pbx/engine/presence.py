"""Presence: which extensions ring, dial, talk or hold, from the events of their legs.

An index from each extension to its live legs, and from each call to its legs, kept up to date
by `LegChanged` events, so that "is 201 busy?" and the busy lamps are a lookup, not a scan of
every call. It emits `ExtensionStateChanged` when what an extension shows changes; a call on
hold shows held on both sides.
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

_RINGING = frozenset({LegState.CALLING, LegState.RINGING})


class Presence:
    """Subscribe `presence.on_event` to the engine's bus; read `state()` and `is_busy()`."""

    def __init__(self, events: EventSink) -> None:
        self.events = events
        self._legs: dict[ExtensionKey, dict[int, LegChanged]] = {}
        self._calls: dict[str, dict[int, LegChanged]] = {}  # call id -> its live legs
        self._call_of: dict[int, str] = {}  # leg id -> the call it was last seen in
        self._states: dict[ExtensionKey, ExtensionState] = {}

    def on_event(self, event: Event) -> None:
        if not isinstance(event, LegChanged):
            return
        touched = set(self._extensions_in(self._call_of.get(event.leg_id, "")))
        self._index_by_call(event)
        if event.extension is not None:
            legs = self._legs.setdefault(event.extension, {})
            if event.state is LegState.ENDED:
                legs.pop(event.leg_id, None)
                if not legs:
                    del self._legs[event.extension]
            else:
                legs[event.leg_id] = event
            touched.add(event.extension)
        touched.update(self._extensions_in(event.call_id))
        for key in touched:
            self._update(key, event.at)

    def _index_by_call(self, event: LegChanged) -> None:
        old = self._call_of.pop(event.leg_id, "")
        if old:
            legs = self._calls.get(old, {})
            legs.pop(event.leg_id, None)
            if not legs:
                self._calls.pop(old, None)
        if event.call_id and event.state is not LegState.ENDED:
            self._calls.setdefault(event.call_id, {})[event.leg_id] = event
            self._call_of[event.leg_id] = event.call_id

    def _extensions_in(self, call_id: str) -> Iterable[ExtensionKey]:
        if not call_id:
            return ()
        return [leg.extension for leg in self._calls.get(call_id, {}).values() if leg.extension]

    def _update(self, key: ExtensionKey, at: float) -> None:
        new = self._derive(self._legs.get(key, {}).values())
        old = self._states.get(key, ExtensionState.IDLE)
        if new is old:
            return
        if new is ExtensionState.IDLE:
            self._states.pop(key, None)
        else:
            self._states[key] = new
        self.events.emit(ExtensionStateChanged(key[0], key[1], old, new, at))

    def _derive(self, legs: Iterable[LegChanged]) -> ExtensionState:
        talking = held = ringing = dialling = False
        for leg in legs:
            if leg.state is LegState.ANSWERED:
                talking = True
                held = held or self._held(leg)
            elif leg.state in _RINGING and leg.role == "uac":
                ringing = True
            elif leg.role == "uas" and leg.state in (LegState.INCOMING, LegState.RINGING):
                dialling = True
        if talking:
            return ExtensionState.HELD if held else ExtensionState.TALKING
        if ringing:
            return ExtensionState.RINGING
        if dialling:
            return ExtensionState.DIALLING
        return ExtensionState.IDLE

    def _held(self, leg: LegChanged) -> bool:
        """Whether either party of `leg`'s call holds."""
        if leg.held:
            return True
        others = self._calls.get(leg.call_id, {}).values() if leg.call_id else ()
        return any(other.held and other.state is LegState.ANSWERED for other in others)

    def state(self, company_id: int, number: str) -> ExtensionState:
        return self._states.get((company_id, number), ExtensionState.IDLE)

    def is_busy(self, company_id: int, number: str) -> bool:
        """Whether a phone of this extension is in an answered call now."""
        return any(
            leg.state is LegState.ANSWERED
            for leg in self._legs.get((company_id, number), {}).values()
        )

    def snapshot(self) -> dict[ExtensionKey, ExtensionState]:
        """Every extension that is not idle, and what it shows."""
        return dict(self._states)
