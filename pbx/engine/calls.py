"""Calls: the B2BUA that joins a caller's leg to the leg of whoever answers.

A call starts with an INVITE (leg A), is routed by number (routing.py), rings one or more
devices or the trunk (forked B legs), and is bridged to the first that answers; the rest are
cancelled. Its own life is a small explicit state machine; every end writes the call record.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from pbx.engine.call import DISPOSITIONS, Call, CallState
from pbx.engine.legs import Leg, LegState, reject
from pbx.engine.media import NoFreePort, bridge
from pbx.engine.negotiation import local_sdp
from pbx.engine.ringing import Ringing
from pbx.engine.routing import Party, Route, Unavailable
from pbx.sip import sdp
from pbx.sip.message import Request

if TYPE_CHECKING:
    from pbx.engine.runtime import Engine

log = logging.getLogger(__name__)


class CallManager(Ringing):
    """All calls of one engine, and the SIP dialogs that lead to them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.stack = engine.stack
        self.calls: dict[str, Call] = {}
        self.dialogs: dict[tuple[str, str, str], Leg] = {}  # (call-id, local tag, remote tag)
        self.pending_invites: dict[Any, Leg] = {}  # server transaction key -> unanswered leg A
        self.leg_call: dict[int, Call] = {}
        # INVITEs still being authenticated or routed, and those a CANCEL reached meanwhile.
        self.routing: set[Any] = set()
        self.early_cancels: set[Any] = set()

    # --- new calls -------------------------------------------------------------------------

    async def incoming(
        self,
        invite: Request,
        source: tuple[str, int],
        transport: str,
        key: Any,
        caller: Party,
        dialled: str,
        direction: str,
        *,
        did_route: Route | None = None,
    ) -> None:
        """Take a new INVITE from a phone or the trunk and route it."""
        try:
            offer = sdp.SessionDescription.parse(invite.body) if invite.body else None
        except sdp.SdpError as error:
            reject(self.stack, invite, 400, f"Bad SDP: {error}")
            return
        try:
            media = await self.engine.media.allocate()
        except NoFreePort:
            reject(self.stack, invite, 503, "No media port free")
            return
        if key in self.early_cancels:  # the caller gave up while we were busy
            media.close()
            reject(self.stack, invite, 487)
            return
        if offer is not None:
            try:  # refuse now an offer we could never answer, before anything rings
                sdp.negotiate(
                    offer,
                    local_ip=self.engine.advertise,
                    local_port=media.port,
                    session_id=1,
                    version=1,
                )
            except sdp.NoCommonCodec:
                media.close()
                reject(self.stack, invite, 488, "No common codec")
                return
            except sdp.SdpError as error:  # e.g. no c= line: nothing we could ever answer
                media.close()
                reject(self.stack, invite, 488, f"Unusable SDP: {error}")
                return
        # Without an offer (late offer, RFC 3261 13.2.1) we offer in the 200 and the
        # caller answers in its ACK.
        leg = Leg(
            self.stack,
            "uas",
            invite,
            source,
            transport,
            media,
            label=caller.number,
            server_key=key,
            device=caller.device,
            offer=offer,
            extension=(caller.company_id, caller.number) if caller.device else None,
        )
        leg.respond(100)
        call = Call(uuid.uuid4().hex, leg, caller, dialled, direction)
        self._attach(call, leg)
        self.pending_invites[key] = leg
        self.engine.recorder.started(
            call.id,
            direction=direction,
            caller=caller.number,
            caller_name=caller.name,
            callee=dialled,
            company_id=caller.company_id,
        )
        route = did_route or await self.engine.router.route(caller, dialled)
        await self.follow(call, route)

    def _attach(self, call: Call, leg: Leg) -> None:
        self.calls[call.id] = call
        self.leg_call[id(leg)] = call
        leg.on_end = self._leg_ended

    async def follow(self, call: Call, route: Route) -> None:
        """Ring what `route` says, or end the call the way it says."""
        if call.state is CallState.ENDED:
            return
        if isinstance(route, Unavailable):
            self.unavailable(call, route.reason, route.status)
            return
        call.route = route
        if call.b_media is None or call.b_media.closed:
            try:
                media = await self.engine.media.allocate()
            except NoFreePort:
                self.unavailable(call, "no media port free", 503)
                return
            if call.state is CallState.ENDED:  # cancelled while the port was found
                media.close()
                return
            call.b_media = media
        if route.trunk is not None:
            await self._dial_trunk(call, route)
        else:
            self._ring_devices(call, route)

    def unavailable(self, call: Call, reason: str, status: int = 480) -> None:
        """THE voicemail hook: no answer, busy, do-not-disturb, unreachable.

        Voicemail arrives in a later issue; until then the caller gets `status` (480, or 486
        when busy) and the call ends.
        """
        self._end_unanswered(call, status, reason)

    def give_up(self, call: Call, status: int) -> None:
        """Tell the feature that placed `call` that nobody answered (`status` says why)."""
        callback, call.on_answered = call.on_answered, None
        call.best_failure = status
        self._stop_forks(call)
        if call.no_answer:
            call.no_answer.cancel()
        callback(call, None)

    def _answer_a(self, call: Call, codec: str) -> None:
        a = call.a
        self.pending_invites.pop(a.server_key, None)
        a.respond(200, body=local_sdp(self.engine.advertise, a, prefer=codec))
        assert a.dialog is not None and call.b is not None
        self.dialogs[(a.dialog.call_id, a.dialog.local_tag, a.dialog.remote_tag)] = a
        bridge(a.media, call.b.media)
        call.move(CallState.ANSWERED)

    # --- ending ----------------------------------------------------------------------------

    def _end_unanswered(self, call: Call, status: int, reason: str) -> None:
        if call.state is CallState.ENDED:
            return
        if call.on_answered is not None:
            # Placed by a feature (a transfer): its caller is already in a conversation, the
            # feature decides what becomes of it.
            self.give_up(call, status)
            return
        if call.no_answer:
            call.no_answer.cancel()
        self._stop_forks(call)
        a = call.a
        self.pending_invites.pop(a.server_key, None)
        if a.state in (LegState.INCOMING, LegState.RINGING):
            a.on_end = None
            a.respond(status)
            a.media.close()
        self._close(call, DISPOSITIONS.get(status, "failed"), reason)

    def _leg_ended(self, leg: Leg, reason: str) -> None:
        """A leg ended on its own (BYE received, CANCEL, failure): end what depends on it."""
        call = self.leg_call.get(id(leg))
        if call is None:
            self.forget_dialog(leg)  # a leg a transfer left behind
            return
        if call.state is CallState.ENDED:
            return
        if leg is call.a and call.state is not CallState.ANSWERED and call.on_answered is not None:
            self.give_up(call, 487)  # the party being transferred hung up: the feature ends it
            return
        if leg is call.a and call.state is not CallState.ANSWERED:
            self._stop_forks(call)
            self._close(call, "cancelled", reason)
            return
        if call.state is CallState.ANSWERED and leg in (call.a, call.b):
            other = call.other(leg)
            if other is not None and not other.ended:
                other.on_end = None
                other.hangup(reason)
            self._close(call, "answered", reason)

    def hangup_call(self, call: Call, reason: str = "hangup") -> None:
        for leg in [call.a, *call.forks]:
            if not leg.ended:
                leg.on_end = None
                leg.hangup(reason)
        if call.state is not CallState.ENDED:
            self._close(call, "answered" if call.b else "cancelled", reason)

    def _close(self, call: Call, disposition: str, reason: str, keep: Leg | None = None) -> None:
        """Forget the call and release its legs' dialogs and media, except `keep`'s."""
        if call.state is CallState.ENDED:
            return
        call.move(CallState.ENDED)
        if call.no_answer:
            call.no_answer.cancel()
        call.advance = None
        if call.advance_timer is not None:
            call.advance_timer.cancel()
        for leg in [call.a, *call.forks]:
            if leg is keep:
                if self.leg_call.get(id(leg)) is call:
                    del self.leg_call[id(leg)]
                continue
            self.leg_call.pop(id(leg), None)
            if leg.dialog is not None:
                self.dialogs.pop(
                    (leg.dialog.call_id, leg.dialog.local_tag, leg.dialog.remote_tag), None
                )
            if leg.owns_media:
                leg.media.close()
        if call.b_media is not None:
            call.b_media.close()
        self.pending_invites.pop(call.a.server_key, None)
        self.calls.pop(call.id, None)
        self.engine.recorder.ended(call.id, disposition, reason)

    # --- requests inside dialogs and CANCEL --------------------------------------------------

    def find_leg(self, request: Request) -> Leg | None:
        return self.dialogs.get(
            (request.call_id, request.to_addr.tag or "", request.from_addr.tag or "")
        )

    def cancel(self, invite_key: Any) -> bool:
        leg = self.pending_invites.pop(invite_key, None)
        if leg is None:
            return False
        call = self.leg_call.get(id(leg))
        if call is not None and call.state is not CallState.ANSWERED:
            self._end_unanswered(call, 487, "cancelled by caller")
        return True

    # --- moving legs between calls (transfers) ------------------------------------------------

    def detach(self, call: Call, leg: Leg) -> None:
        """Take `leg` out of `call` without ending either."""
        if leg is call.b:
            call.b = None
        elif leg is call.a and call.b is not None:
            call.a, call.b = call.b, None
        call.forks = [f for f in call.forks if f is not leg]
        if call.b is not None and call.b not in call.forks:
            call.forks.append(call.b)
        if self.leg_call.get(id(leg)) is call:
            del self.leg_call[id(leg)]

    def adopt(self, call: Call, leg: Leg) -> None:
        """Make `leg` the caller's leg of the new `call`."""
        self._attach(call, leg)

    def rejoin(self, call: Call, leg: Leg) -> None:
        call.b = leg
        call.forks = [leg]
        self.leg_call[id(leg)] = call
        leg.on_end = self._leg_ended

    def replace(self, call: Call, old: Leg, new: Leg) -> None:
        """Put `new` where `old` was in `call` (attended transfer)."""
        if call.a is old:
            call.a = new
        else:
            call.b = new
            call.forks = [new]
        self.leg_call.pop(id(old), None)
        self.leg_call[id(new)] = call
        new.on_end = self._leg_ended

    def forget_dialog(self, leg: Leg) -> None:
        """`leg` belongs to no call any more: in-dialog requests for it get 481 from now on."""
        if leg.dialog is not None:
            self.dialogs.pop(
                (leg.dialog.call_id, leg.dialog.local_tag, leg.dialog.remote_tag), None
            )

    def abandon(self, call: Call, keep: Leg, reason: str) -> None:
        """End a call placed by a feature that failed, leaving `keep` (its caller) untouched."""
        self._stop_forks(call)
        self._close(call, DISPOSITIONS.get(call.best_failure, "failed"), reason, keep=keep)

    def unanswered_leg(self, call_id: str, remote_tag: str) -> Leg | None:
        """The caller's leg of a call still ringing, by its dialog's Call-ID and From tag."""
        return next(
            (
                leg
                for leg in self.pending_invites.values()
                if leg.invite.call_id == call_id
                and (not remote_tag or leg.invite.from_addr.tag == remote_tag)
            ),
            None,
        )

    def take_over(self, call: Call, old: Leg, new: Leg) -> None:
        """`new` becomes the caller of the ringing `call`; `old`'s INVITE ends with 487."""
        self.pending_invites.pop(old.server_key, None)
        self.leg_call.pop(id(old), None)
        old.on_end = None
        old.respond(487)
        old.media.close()
        call.a = new
        self.leg_call[id(new)] = call
        new.on_end = self._leg_ended

    def call_of(self, leg: Leg) -> Call | None:
        return self.leg_call.get(id(leg))

    def is_busy(self, company_id: int, number: str) -> bool:
        """Whether a phone of this extension is in an answered call now (one lookup per set-up)."""
        key = (company_id, number)
        return any(
            leg is not None and leg.extension == key and leg.answered
            for call in self.calls.values()
            if call.state is CallState.ANSWERED
            for leg in (call.a, call.b)
        )
