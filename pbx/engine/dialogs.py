"""Requests inside established dialogs: BYE, re-INVITE and UPDATE (hold, resume, new
address), REFER (transfers, reported to the referrer by NOTIFY sipfrag), ACK with a late answer.

This is the SIP side only: what the request means for the call is done by operations.py and
calls.py.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pbx.engine.call import CallState, Outcome
from pbx.engine.calls import CallManager
from pbx.engine.legs import ALLOW, Leg
from pbx.engine.negotiation import is_hold, local_sdp, take_answer
from pbx.engine.operations import CallOperations, OperationError
from pbx.engine.services import SipSender, Tasks
from pbx.engine.session_timers import MIN_SE, IntervalTooSmall, SessionTimers
from pbx.engine.session_timers import negotiate as negotiate_session_timer
from pbx.media.dtmf import DigitReceived
from pbx.sip import sdp
from pbx.sip.errors import SipParseError
from pbx.sip.headers import NameAddr
from pbx.sip.message import REASON_PHRASES, Request, make_response
from pbx.sip.uri import SipUri

if TYPE_CHECKING:
    from pbx.engine.call import Call

log = logging.getLogger(__name__)

SIPFRAG = "message/sipfrag;version=2.0"


class DialogRequests:
    def __init__(
        self,
        calls: CallManager,
        operations: CallOperations,
        session_timers: SessionTimers,
        *,
        stack: SipSender,
        tasks: Tasks,
    ) -> None:
        self.session_timers = session_timers
        self.calls = calls
        self.operations = operations
        self.stack = stack
        self.tasks = tasks

    def handle(self, leg: Leg, request: Request) -> None:
        """Handle a request inside an established dialog of `leg`."""
        if leg.dialog is not None and request.method != "ACK":
            error = leg.dialog.receive_request(request)
            if error is not None:
                self.stack.send_response(error)
                return
        method = request.method
        if method == "BYE":
            self._reply(request, 200)
            leg.finish()
            self.calls.leg_ended(leg, "bye")
        elif method in ("INVITE", "UPDATE"):
            self._offer(leg, request)
        elif method == "REFER":
            self._refer(leg, request)
        elif method == "INFO":
            self._reply(request, 200)
            _info_digit(leg, request)
        elif method in ("NOTIFY", "OPTIONS"):
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

    # --- offers: re-INVITE and UPDATE (RFC 3311) ---------------------------------------

    def _offer(self, leg: Leg, request: Request) -> None:
        """A re-INVITE or an UPDATE: hold, resume or a new address.

        A re-INVITE without an offer gets ours in the 200 (the answer comes in the ACK); an
        UPDATE without one only refreshes the dialog (session timers) and changes nothing.
        """
        contact = ("Contact", self.stack.contact(transport=leg.transport))
        try:
            timer = self._session_refresh(leg, request)
        except IntervalTooSmall:
            self._reply(request, 422, headers=(("Min-SE", str(MIN_SE)),))
            return
        if request.method == "UPDATE" and not request.body:
            self._reply(request, 200, headers=(contact, *timer))
            return
        try:
            offer = sdp.SessionDescription.parse(request.body) if request.body else None
        except sdp.SdpError as error:
            self._reply(request, 400, headers=(("Warning", f'399 centralino "{error}"'),))
            return
        leg.offered(offer)
        try:
            body = local_sdp(self.stack.advertise, leg, prefer=leg.media.codec)
        except sdp.NoCommonCodec:
            self._reply(request, 488)
            return
        except sdp.SdpError as error:
            self._reply(request, 400, headers=(("Warning", f'399 centralino "{error}"'),))
            return
        leg.local_body = body  # what a session refresh of ours offers again
        self._reply(
            request,
            200,
            body=body,
            headers=(contact, ("Content-Type", "application/sdp"), *timer),
        )
        if request.body:
            self._set_hold(leg, is_hold(request.body))

    def _session_refresh(self, leg: Leg, request: Request) -> tuple[tuple[str, str], ...]:
        """A refresh of the session timer, if the request carries one: the 2xx headers."""
        if leg.session_timer is None:
            return ()
        timer = negotiate_session_timer(request)
        if timer is None:
            return ()
        self.session_timers.refreshed(leg, timer)
        return timer.headers()

    def _answered_in_ack(self, leg: Leg, ack: Request) -> None:
        if take_answer(leg, ack.body):
            self._set_hold(leg, is_hold(ack.body))

    def _set_hold(self, leg: Leg, held: bool) -> None:
        if held:
            self.operations.hold(leg)
        else:
            self.operations.resume(leg)

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
        replaces = next(
            (value for name, value in target.uri.headers.items() if name.lower() == "replaces"),
            None,
        )
        if replaces:
            self._attended(call, referrer, replaces)
        else:
            self.tasks.spawn(self._blind(call, referrer, target.uri.user or ""))

    def _notify(self, leg: Leg, status_line: str, *, final: bool) -> None:
        state = "terminated;reason=noresource" if final else "active;expires=60"
        leg.send_in_dialog(
            "NOTIFY",
            body=f"SIP/2.0 {status_line}\r\n".encode(),
            content_type=SIPFRAG,
            extra_headers=(("Event", "refer"), ("Subscription-State", state)),
        )

    async def _blind(self, call: Call, referrer: Leg, number: str) -> None:
        outcome = await self.operations.transfer_blind(call, referrer, number)
        self._report(referrer, outcome)

    async def _semi_attended(self, call: Call, referrer: Leg, consulting: Leg) -> None:
        try:
            outcome = await self.operations.transfer_to_ringing(call, referrer, consulting)
        except OperationError:
            self._notify(referrer, "481 Call/Transaction Does Not Exist", final=True)
            return
        self._report(referrer, outcome)

    def _report(self, referrer: Leg, outcome: Outcome) -> None:
        """The final NOTIFY of a transfer; the referrer leaves unless its party came back."""
        if outcome.answered is not None:
            self._notify(referrer, "200 OK", final=True)
            self.operations.hang_up_later(referrer)
            return
        status = outcome.status
        phrase = REASON_PHRASES.get(status, "Failed")
        self._notify(referrer, f"{status} {phrase}", final=True)
        if self.calls.call_of(referrer) is None or status == 487:
            self.operations.hang_up_later(referrer)  # nobody left for it to talk to

    def _attended(self, call: Call, referrer: Leg, replaces: str) -> None:
        parts = [p.strip() for p in replaces.split(";")]
        call_id = parts[0]
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        to_tag, from_tag = params.get("to-tag", ""), params.get("from-tag", "")
        dialogs = self.calls.dialogs
        other_leg = dialogs.get(call_id, to_tag, from_tag) or dialogs.get(call_id, from_tag, to_tag)
        if other_leg is None:
            consulting = self.calls.unanswered_leg(call_id, from_tag)
            if consulting is not None:  # the consultation call still rings
                self.tasks.spawn(self._semi_attended(call, referrer, consulting))
                return
            self._notify(referrer, "481 Call/Transaction Does Not Exist", final=True)
            return
        try:
            self.operations.join(call, referrer, other_leg)
        except OperationError:
            self._notify(referrer, "481 Call/Transaction Does Not Exist", final=True)
            return
        self._notify(referrer, "200 OK", final=True)
        self.operations.hang_up_later(referrer)
        self.operations.hang_up_later(other_leg)


def _info_digit(leg: Leg, request: Request) -> None:
    """A key press sent by SIP INFO (phones that do not send RFC 4733): application/dtmf-relay
    ("Signal=5", "Duration=160") or application/dtmf ("5"). It goes where RFC 4733 presses go."""
    kind = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    text = request.body.decode("ascii", "replace")
    if kind == "application/dtmf-relay":
        fields = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition("=") for line in text.splitlines())
        )
        signal, duration = fields.get("signal", ""), fields.get("duration", "")
    elif kind == "application/dtmf":
        signal, duration = text.strip(), ""
    else:
        return
    signal = {"10": "*", "11": "#"}.get(signal, signal).upper()
    if len(signal) != 1 or signal not in "0123456789*#ABCD":
        return
    on_digit = leg.media.on_digit
    if on_digit is not None:
        ms = int(duration) if duration.isdigit() else 160
        on_digit(DigitReceived(signal, ms))
