"""Engine events made by hand, for tests of what subscribes to them (the consoles)."""

from __future__ import annotations

from pbx.engine.call import CallState
from pbx.engine.events import CallChanged


def call_created(company_id: int, call_id: str = "c1") -> CallChanged:
    """The first event of a call from an outside number to a company number."""
    return CallChanged(
        call_id=call_id,
        previous=None,
        state=CallState.ROUTING,
        company_id=company_id,
        direction="inbound",
        caller="0612345678",
        caller_name="Rossi",
        dialled="0212345678",
        answered_by="",
        disposition=None,
        reason="",
        at=0.0,
    )
