"""Session timers (RFC 4028) for the calls phones place: answered, refreshed, enforced.

A phone that asks for `Session-Expires` gets it back in our 200 with the refresher named: the
phone itself when it supports timers (it sends a re-INVITE or UPDATE every half interval), or
us when it does not (we send an UPDATE, or a re-INVITE when it takes no UPDATE). A session
nobody refreshed in time is hung up, so that a call whose phone vanished does not linger. The
timers start from the events of the legs (an answered leg with a negotiated timer), not from a
call into this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pbx.engine.events import Event, LegChanged
from pbx.engine.legs import Leg, LegState
from pbx.sip.message import Request, Response

if TYPE_CHECKING:
    from pbx.engine.calls import CallManager
    from pbx.engine.services import Clock, SipSender, Timer

log = logging.getLogger(__name__)

MIN_SE = 90  # seconds: the smallest interval RFC 4028 allows, and what we accept


@dataclass(frozen=True, slots=True)
class SessionTimer:
    """A negotiated session interval and who refreshes it (as the phone's role: "uac" is the
    phone that called us, "uas" is us)."""

    interval: int
    refresher: str
    required: bool  # the phone supports timers: our 2xx says `Require: timer`

    def headers(self) -> tuple[tuple[str, str], ...]:
        """What a 2xx to the phone carries."""
        value = f"{self.interval};refresher={self.refresher}"
        if self.required:
            return (("Session-Expires", value), ("Require", "timer"))
        return (("Session-Expires", value),)


class IntervalTooSmall(ValueError):
    """The requested interval is below `MIN_SE`: answer 422 with `Min-SE`."""


def negotiate(request: Request) -> SessionTimer | None:
    """The session timer a dialog-creating or refreshing request asks for, if any.

    Raises:
        IntervalTooSmall: the request's Session-Expires is below MIN_SE.
    """
    value = request.headers.get("Session-Expires")
    if value is None:
        return None
    parts = [p.strip() for p in value.split(";")]
    try:
        interval = int(parts[0])
    except ValueError:
        return None  # unreadable: treat as not asked
    if interval < MIN_SE:
        raise IntervalTooSmall(str(interval))
    params = {
        name.strip().lower(): value.strip()
        for name, value in (p.split("=", 1) for p in parts[1:] if "=" in p)
    }
    supported = _supports_timer(request)
    refresher = params.get("refresher", "").lower()
    if not supported:
        refresher = "uas"  # RFC 4028 9: a UAC without timer support cannot refresh
    elif refresher not in ("uac", "uas"):
        refresher = "uac"  # the phone asked us to choose: the phone refreshes
    return SessionTimer(interval, refresher, required=supported)


def _supports_timer(request: Request) -> bool:
    tokens = {
        token.strip().lower()
        for value in request.headers.get_all("Supported")
        for token in value.split(",")
    }
    return "timer" in tokens


class SessionTimers:
    """Keeps the session of every answered phone leg with a timer alive, or ends it."""

    def __init__(self, calls: CallManager, *, stack: SipSender, clock: Clock) -> None:
        self.calls = calls
        self.stack = stack
        self.clock = clock
        self._timers: dict[int, Timer] = {}
        self._legs: dict[int, Leg] = {}

    def on_event(self, event: Event) -> None:
        if not isinstance(event, LegChanged):
            return
        if event.state is LegState.ENDED:
            self._cancel(event.leg_id)
            self._legs.pop(event.leg_id, None)
        elif event.state is LegState.ANSWERED and event.previous is not LegState.ANSWERED:
            leg = self.calls.leg_by_id(event.leg_id)
            if leg is not None and leg.session_timer is not None:
                self._legs[leg.id] = leg
                self._arm(leg)

    def refreshed(self, leg: Leg, timer: SessionTimer) -> None:
        """The phone refreshed its session (re-INVITE or UPDATE with Session-Expires)."""
        leg.session_timer = timer
        if leg.id in self._legs:
            self._arm(leg)

    def _arm(self, leg: Leg) -> None:
        timer = leg.session_timer
        assert timer is not None
        self._cancel(leg.id)
        if timer.refresher == "uas":
            self._timers[leg.id] = self.clock.call_later(
                timer.interval / 2, lambda: self._refresh(leg)
            )
        else:
            grace = min(32, timer.interval / 3)  # RFC 4028 10
            self._timers[leg.id] = self.clock.call_later(
                timer.interval - grace, lambda: self._expired(leg)
            )

    def _cancel(self, leg_id: int) -> None:
        handle = self._timers.pop(leg_id, None)
        if handle is not None:
            handle.cancel()

    def _refresh(self, leg: Leg) -> None:
        """Our turn: an UPDATE without SDP when the phone takes it, else a re-INVITE."""
        if leg.ended:
            return
        timer = leg.session_timer
        assert timer is not None
        # In our request we are its UAC: "refresher=uac" keeps the refreshing ours (RFC 4028 7.4).
        headers = (
            ("Session-Expires", f"{timer.interval};refresher=uac"),
            ("Supported", "timer"),
        )
        allowed = {
            method.strip().upper()
            for value in leg.invite.headers.get_all("Allow")
            for method in value.split(",")
        }
        if "UPDATE" in allowed:
            leg.send_in_dialog(
                "UPDATE",
                extra_headers=headers,
                callback=lambda response: self._refresh_answered(leg, response, "UPDATE"),
            )
        else:
            leg.send_in_dialog(
                "INVITE",
                body=leg.local_body,
                content_type="application/sdp",
                extra_headers=headers,
                callback=lambda response: self._refresh_answered(leg, response, "INVITE"),
            )
        self._arm(leg)

    def _refresh_answered(self, leg: Leg, response: Response | None, method: str) -> None:
        """A refresh that times out or finds no dialog ends the call (RFC 4028 10)."""
        if leg.ended:
            return
        if response is None or response.status in (408, 481):
            log.info("session refresh of %s failed: hanging up", leg.label)
            self.calls.hangup_leg(leg, "session refresh failed")
            return
        if method == "INVITE" and 200 <= response.status < 300 and leg.dialog is not None:
            ack, _ = leg.dialog.make_ack(response.cseq.number, via=self.stack.via(leg.transport))
            self.stack.send_ack(ack, leg.peer, leg.transport)

    def _expired(self, leg: Leg) -> None:
        self._timers.pop(leg.id, None)
        if leg.ended:
            return
        log.info("session of %s expired without a refresh: hanging up", leg.label)
        self.calls.hangup_leg(leg, "session expired")
