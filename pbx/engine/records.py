"""Where the engine reports call records (CDR). The Django side writes them to the database."""

from __future__ import annotations

from typing import Protocol


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

    def ended(self, call_id: str, disposition: str, reason: str) -> None:
        self.records[call_id].update(disposition=disposition, reason=reason)
