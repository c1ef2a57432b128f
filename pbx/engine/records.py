"""Where the engine reports call records (CDR). The Django side writes them to the database."""

from __future__ import annotations

from typing import Protocol

from pbx.engine.call import CallState
from pbx.engine.events import CallChanged, Event

_UNANSWERED = frozenset({CallState.ROUTING, CallState.RINGING})
# A Multiselection answers a call itself: the caller's call is answered from then on.
_ANSWERED = frozenset({CallState.ANSWERED, CallState.ATTENDANT})


class CallRecorder(Protocol):
    """Receives a call's milestones; implementations must not block the event loop."""

    def started(
        self,
        call_id: str,
        *,
        direction: str,
        caller: str,
        caller_name: str,
        callee: str,
        company_id: int | None,
    ) -> None: ...

    def answered(self, call_id: str, answered_by: str) -> None: ...

    def taken(self, call_id: str, answered_by: str) -> None:
        """Someone else took the answered call (a menu's transfer, a console's, a retrieval from
        parking, the voicemail a menu key leads to): `answered_by` follows, the answer time
        stays the first one."""
        ...

    def ended(self, call_id: str, disposition: str, reason: str) -> None: ...


class MemoryRecorder:
    """Keeps records in a dict: for tests and benchmarks."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, object]] = {}

    def started(
        self,
        call_id: str,
        *,
        direction: str,
        caller: str,
        caller_name: str,
        callee: str,
        company_id: int | None,
    ) -> None:
        self.records[call_id] = {
            "direction": direction,
            "caller": caller,
            "callee": callee,
            "disposition": "in_progress",
            "answered_by": "",
        }

    def answered(self, call_id: str, answered_by: str) -> None:
        self.records[call_id]["answered_by"] = answered_by

    def taken(self, call_id: str, answered_by: str) -> None:
        self.records[call_id]["answered_by"] = answered_by

    def ended(self, call_id: str, disposition: str, reason: str) -> None:
        self.records[call_id].update(disposition=disposition, reason=reason)


class RecordWriter:
    """Subscribes to the engine's events and writes each call's record through a recorder."""

    def __init__(self, recorder: CallRecorder) -> None:
        self.recorder = recorder
        # Who has each answered call: answered once, then taken by whoever answers next.
        self._answered: dict[str, str] = {}

    def on_event(self, event: Event) -> None:
        if not isinstance(event, CallChanged):
            return
        if event.previous is None:
            self.recorder.started(
                event.call_id,
                direction=event.direction,
                caller=event.caller,
                caller_name=event.caller_name,
                callee=event.dialled,
                company_id=event.company_id,
            )
        elif event.state in _ANSWERED and event.previous in _UNANSWERED:
            by = self._answered.get(event.call_id)
            if by is None:
                self.recorder.answered(event.call_id, event.answered_by)
            elif by != event.answered_by:
                self.recorder.taken(event.call_id, event.answered_by)
            self._answered[event.call_id] = event.answered_by
        elif event.state is CallState.ENDED:
            self._answered.pop(event.call_id, None)
            disposition = event.disposition.value if event.disposition else "failed"
            self.recorder.ended(event.call_id, disposition, event.reason)
