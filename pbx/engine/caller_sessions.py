"""The sessions the PBX holds with callers it answered itself (a Multiselection, a mailbox, a
recording by phone, listening to voicemail), by call id: each key the caller presses goes to
its session, and the session of a call that ended is handed back once, to be wound up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from pbx.engine.call import Call, CallState
from pbx.engine.events import CallChanged, DigitPressed, Event


class HasCall(Protocol):
    @property
    def call(self) -> Call: ...


S = TypeVar("S", bound=HasCall)


class CallerSessions(dict[str, S]):
    """A dict of sessions by call id that follows the engine's events (`on_event`)."""

    def __init__(self, on_key: Callable[[S, str], None], on_ended: Callable[[S], None]) -> None:
        super().__init__()
        self._on_key = on_key
        self._on_ended = on_ended

    def on_event(self, event: Event) -> None:
        if isinstance(event, DigitPressed):
            session = self.get(event.call_id)
            if session is not None and event.leg_id == session.call.a.id:  # the caller's keys
                self._on_key(session, event.digit)
        elif isinstance(event, CallChanged) and event.state is CallState.ENDED:
            session = self.pop(event.call_id, None)
            if session is not None:
                self._on_ended(session)
