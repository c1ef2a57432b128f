"""Directed pickup: a phone answers a call that rings at another extension of its company,
in place of that extension's phones, which stop ringing.

Two ways to ask: the pickup feature code followed by the extension (`*8203`, routing.py), or
an INVITE with Replaces naming the early dialog of one of the ringing phones, as a busy lamp
shows it (RFC 4235's dialog-info gives its Call-ID and tags; RFC 3891: we sent that INVITE,
so the early dialog may be replaced). The picking phone's INVITE is answered and joined to
the caller; the call's other forks are CANCELled (`CallManager.answer_ringing`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pbx.engine.call import Call, CallState, Status
from pbx.engine.calls import CallManager
from pbx.engine.legs import LIVE_RINGING, Leg
from pbx.engine.routing import Route

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Replaces:
    """A Replaces header (RFC 3891): the dialog to replace, and whether only early."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    @classmethod
    def parse(cls, value: str) -> Replaces:
        call_id, *params = (part.strip() for part in value.split(";"))
        fields: dict[str, str] = {}
        for param in params:
            name, _, val = param.partition("=")
            fields[name.strip().lower()] = val.strip()
        return cls(
            call_id,
            fields.get("to-tag", ""),
            fields.get("from-tag", ""),
            "early-only" in fields,
        )

    def names(self, leg: Leg) -> bool:
        """Whether it names `leg`'s early dialog with the phone. The tags are taken in either
        order: phones disagree on whose tag to-tag is when the replaced dialog's INVITE came
        from the PBX (RFC 3891 says: ours, the recipient's)."""
        if leg.invite.call_id != self.call_id:
            return False
        ours, theirs = leg.invite.from_addr.tag or "", leg.remote_tag
        given = {tag for tag in (self.to_tag, self.from_tag) if tag}
        return given <= {ours, theirs}


class DirectedPickup:
    """Answers pickups for the call manager (`CallManager.on_directed_pickup`)."""

    def __init__(self, calls: CallManager) -> None:
        self.calls = calls
        calls.on_directed_pickup = self.pick_up

    def pick_up(self, call: Call, route: Route) -> None:
        """`call`'s phone asked to answer what `route` names: the oldest call ringing at
        extension `route.number` of its company, or the one whose early dialog
        `route.replaces` names. Nothing like that: 480 (by code) or 481 (Replaces)."""
        replaces = Replaces.parse(route.replaces) if route.replaces else None
        ringing = self.ringing(call, route.number, replaces)
        if ringing is None:
            if replaces is not None:
                self.calls.refuse(call, 481, "no such early dialog to replace")
            else:
                self.calls.refuse(call, Status.UNAVAILABLE, f"nothing rings at {route.number}")
            return
        log.info(
            "call %s: %s picks up the call from %s ringing at %s",
            ringing.id[:8],
            call.caller.number,
            ringing.caller.number,
            route.number or "a replaced dialog",
        )
        self.calls.answer_ringing(call, ringing)

    def ringing(self, call: Call, number: str, replaces: Replaces | None) -> Call | None:
        """The call `call`'s phone may pick up: ringing a phone of its company, not its own."""
        company = call.caller.company_id
        for candidate in self.calls.calls.values():
            ringer = candidate.ringer
            if candidate is call or candidate.state is not CallState.RINGING or ringer is None:
                continue
            if candidate.a.device and candidate.a.device == call.a.device:
                continue  # its own call, still ringing elsewhere
            for leg in ringer.forks.values():
                key = leg.extension
                if leg.state not in LIVE_RINGING or key is None or key[0] != company:
                    continue
                if replaces.names(leg) if replaces is not None else key[1] == number:
                    return candidate
        return None
