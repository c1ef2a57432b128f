"""Presence: which extensions ring, dial, talk or hold, from the events of their legs.

An index from each extension to its live legs, kept up to date by `LegChanged` events, so
that "is 201 busy?" and the busy lamps are a lookup, not a scan of every call. It emits
`ExtensionStateChanged` when what an extension shows changes.
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
        self._states: dict[ExtensionKey, ExtensionState] = {}

    def on_event(self, event: Event) -> None:
        if not isinstance(event, LegChanged) or event.extension is None:
            return
        key = event.extension
        legs = self._legs.setdefault(key, {})
        if event.state is LegState.ENDED:
            legs.pop(event.leg_id, None)
            if not legs:
                del self._legs[key]
        else:
            legs[event.leg_id] = event
        self._update(key, event.at)

    def _update(self, key: ExtensionKey, at: float) -> None:
        new = _derive(self._legs.get(key, {}).values())
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
        return any(
            leg.state is LegState.ANSWERED
            for leg in self._legs.get((company_id, number), {}).values()
        )

    def snapshot(self) -> dict[ExtensionKey, ExtensionState]:
        """Every extension that is not idle, and what it shows."""
        return dict(self._states)


def _derive(legs: Iterable[LegChanged]) -> ExtensionState:
    talking = held = ringing = dialling = False
    for leg in legs:
        if leg.state is LegState.ANSWERED:
            talking = True
            held = held or leg.held
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
