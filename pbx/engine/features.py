"""What phones do inside a call: hang up, hold and resume (re-INVITE), transfer (REFER)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from pbx.engine.call import Call, CallState
from pbx.engine.calls import CallManager
from pbx.engine.legs import ALLOW, Leg
from pbx.engine.media import bridge
from pbx.engine.negotiation import is_hold, local_sdp, take_answer
from pbx.engine.routing import Party
from pbx.sip import sdp
from pbx.sip.errors import SipParseError
from pbx.sip.headers import NameAddr
from pbx.sip.message import REASON_PHRASES, Request, make_response
from pbx.sip.uri import SipUri

if TYPE_CHECKING:
    from pbx.engine.runtime import Engine

log = logging.getLogger(__name__)

SIPFRAG = "message/sipfrag;version=2.0"


class Features:
    def __init__(self, engine: Engine, calls: CallManager) -> None:
        self.engine = engine
        self.calls = calls
        self.stack = engine.stack

    def in_dialog(self, leg: Leg, request: Request) -> None:
        """Handle a request inside an established dialog of `leg`."""
        if leg.dialog is not None and request.method != "ACK":
            error = leg.dialog.receive_request(request)
            if error is not None:
                self.stack.send_response(error)
                return
        method = request.method
        if method == "BYE":
            self._reply(request, 200)
            leg.finish("bye")
        elif method == "INVITE":
            self._reinvite(leg, request)
        elif method == "REFER":
            self._refer(leg, request)
        elif method in ("INFO", "NOTIFY", "OPTIONS", "UPDATE"):
            self._reply(request, 200)
        elif method == "ACK":
            if leg.awaiting_answer and request.body:
                self._answered_in_ack(leg, request)
        else:
            self._reply(request, 405, headers=(("Allow", ALLOW),))

    def _reply(
        self,
        request: Request,
        status: int,
        *,
        body: bytes = b"",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.stack.send_response(make_response(request, status, headers=headers, body=body))

    # --- hold and resume ---------------------------------------------------------------

    def _reinvite(self, leg: Leg, request: Request) -> None:
        """A re-INVITE: hold, resume or a new address. Without an offer, we offer in the 200."""
        try:
            leg.offer = sdp.SessionDescription.parse(request.body) if request.body else None
            body = local_sdp(self.engine.advertise, leg, prefer=leg.media.codec)
        except sdp.NoCommonCodec:
            self._reply(request, 488)
            return
        except sdp.SdpError as error:
            self._reply(request, 400, headers=(("Warning", f'399 centralino "{error}"'),))
            return
        self._reply(
            request,
            200,
            body=body,
            headers=(
                ("Contact", self.stack.contact(transport=leg.transport)),
                ("Content-Type", "application/sdp"),
            ),
        )
        if request.body:
            self._set_hold(leg, is_hold(request.body))

    def _answered_in_ack(self, leg: Leg, ack: Request) -> None:
        if take_answer(leg, ack.body):
            self._set_hold(leg, is_hold(ack.body))

    def _set_hold(self, leg: Leg, held: bool) -> None:
        """The far end of `leg` holds or resumes: the other party hears music, or it again."""
        call = self.calls.call_of(leg)
        other = call.other(leg) if call is not None else None
        if call is None or other is None:
            leg.remote_hold = held  # alone for now (a transfer rings): remember it all the same
            return
        if held and not leg.remote_hold:
            leg.remote_hold = True
            log.info("call %s: %s holds, %s hears music", call.id[:8], leg.label, other.label)
            other.media.play(self.engine.media.moh)
        elif not held and leg.remote_hold:
            leg.remote_hold = False
            log.info("call %s: %s resumes", call.id[:8], leg.label)
            other.media.listen_to(leg.media)

    # --- transfer ------------------------------------------------------------------------

    def _refer(self, referrer: Leg, request: Request) -> None:
        call = self.calls.call_of(referrer)
        value = request.headers.get("Refer-To")
        try:
            target = NameAddr.parse(value) if value else None
        except SipParseError:
            target = None
        if target is None or not isinstance(target.uri, SipUri):
            self._reply(request, 400, headers=(("Warning", '399 centralino "bad Refer-To"'),))
            return
        if call is None or call.state is not CallState.ANSWERED or call.other(referrer) is None:
            self._reply(request, 603)
            return
        self._reply(request, 202)
        self._notify(referrer, "100 Trying", final=False)
        replaces = target.uri.headers.get("Replaces")
        if replaces:
            self._attended(call, referrer, replaces)
        else:
            asyncio.ensure_future(self._blind(call, referrer, target.uri.user or ""))

    def _notify(self, leg: Leg, status_line: str, *, final: bool) -> None:
        state = "terminated;reason=noresource" if final else "active;expires=60"
        leg.send_in_dialog(
            "NOTIFY",
            body=f"SIP/2.0 {status_line}\r\n".encode(),
            content_type=SIPFRAG,
            extra_headers=(("Event", "refer"), ("Subscription-State", state)),
        )

    async def _blind(self, call: Call, referrer: Leg, number: str) -> None:
        transferee = call.other(referrer)
        assert transferee is not None
        party = self._party_of(call, transferee)
        self.calls.detach(call, transferee)
        transferee.media.play(self.engine.media.moh)
        new = Call(uuid.uuid4().hex, transferee, party, number, "internal", state=CallState.ROUTING)
        self.calls.adopt(new, transferee)
        self.engine.recorder.started(
            new.id,
            direction=new.direction,
            caller=party.number,
            caller_name=party.name,
            callee=number,
            company_id=party.company_id,
        )

        new.on_answered = self._outcome(call, referrer, transferee)
        log.info("call %s: blind transfer of %s to %s", call.id[:8], transferee.label, number)
        await self.calls.follow(new, await self.engine.router.route(party, number))

    def _outcome(
        self, call: Call, referrer: Leg, transferee: Leg
    ) -> Callable[[Call, Leg | None], None]:
        """What to do when the call ringing for `transferee` is answered, or is not."""

        def done(new_call: Call, answered: Leg | None) -> None:
            if answered is None:
                status = new_call.best_failure or 480
                self.calls.abandon(new_call, keep=transferee, reason="transfer failed")
                if transferee.ended:  # it hung up while the target rang
                    self.calls.forget_dialog(transferee)
                    self._notify(referrer, "487 Request Terminated", final=True)
                    self._hang_up_later(referrer)
                    return
                phrase = REASON_PHRASES.get(status, "Failed")
                self._notify(referrer, f"{status} {phrase}", final=True)
                if not referrer.ended:  # the referrer is still there: give its party back
                    self.calls.rejoin(call, transferee)
                    bridge(transferee.media, referrer.media)
                else:
                    self.calls.forget_dialog(transferee)
                    transferee.hangup("transfer failed")
                return
            bridge(transferee.media, answered.media)
            new_call.move(CallState.ANSWERED)
            self._notify(referrer, "200 OK", final=True)
            self._hang_up_later(referrer)

        return done

    def _semi_attended(self, call: Call, referrer: Leg, consulting: Leg) -> None:
        """Transfer to a consultation call that still rings: the transferee takes it over.

        The referrer's own INVITE of that call gets 487; the target keeps ringing, now for the
        transferee, and the outcome is reported as for a blind transfer.
        """
        consult = self.calls.call_of(consulting)
        transferee = call.other(referrer)
        if consult is None or transferee is None or consult.state is not CallState.RINGING:
            self._notify(referrer, "481 Call/Transaction Does Not Exist", final=True)
            return
        self.calls.detach(call, transferee)
        transferee.media.play(self.engine.media.moh)
        self.calls.take_over(consult, consulting, transferee)
        consult.on_answered = self._outcome(call, referrer, transferee)
        log.info(
            "call %s: semi-attended transfer of %s to %s, still ringing",
            call.id[:8],
            transferee.label,
            consult.dialled,
        )

    def _attended(self, call: Call, referrer: Leg, replaces: str) -> None:
        parts = [p.strip() for p in replaces.split(";")]
        call_id = parts[0]
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        to_tag, from_tag = params.get("to-tag", ""), params.get("from-tag", "")
        other_leg = self.calls.dialogs.get((call_id, to_tag, from_tag)) or self.calls.dialogs.get(
            (call_id, from_tag, to_tag)
        )
        transferee = call.other(referrer)
        if other_leg is None:
            consulting = self.calls.unanswered_leg(call_id, from_tag)
            if consulting is not None:  # the consultation call still rings
                self._semi_attended(call, referrer, consulting)
                return
        other_call = self.calls.call_of(other_leg) if other_leg else None
        if other_leg is None or other_call is None or transferee is None:
            self._notify(referrer, "481 Call/Transaction Does Not Exist", final=True)
            return
        target = other_call.other(other_leg)
        if target is None:
            self._notify(referrer, "481 Call/Transaction Does Not Exist", final=True)
            return
        # Join the transferee and the target; the referrer's two legs leave.
        self.calls.detach(other_call, target)
        self.calls.replace(call, referrer, target)
        bridge(transferee.media, target.media)
        transferee.remote_hold = target.remote_hold = False
        log.info(
            "call %s: attended transfer joins %s and %s",
            call.id[:8],
            transferee.label,
            target.label,
        )
        self._notify(referrer, "200 OK", final=True)
        self._hang_up_later(referrer)
        self._hang_up_later(other_leg)

    def _hang_up_later(self, leg: Leg) -> None:
        """The referrer normally hangs up after NOTIFY 200; do it for it if it does not."""

        def later() -> None:
            if not leg.ended:
                leg.hangup("transferred")

        asyncio.get_running_loop().call_later(2.0, later)

    def _party_of(self, call: Call, leg: Leg) -> Party:
        if leg is call.a:
            return call.caller
        company = call.caller.company_id
        return Party(company, leg.label, "", leg.device)
