"""Ringing: the B legs of a call, forked to devices or sent to the trunk, and their answers.

The first 2xx wins and the other forks are cancelled; when all fail the best failure is kept
(busy beats unavailable); the no-answer timer ends the ringing. A mixin of CallManager.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pbx.engine.call import Call, CallState, better_failure
from pbx.engine.legs import ALLOW, Leg, LegState
from pbx.engine.negotiation import offer_for_callee, take_answer
from pbx.engine.routing import Party, Route
from pbx.sip.dialog import Dialog
from pbx.sip.digest import DigestClient, DigestError, select_challenge
from pbx.sip.headers import Headers
from pbx.sip.ids import new_call_id, new_tag
from pbx.sip.message import Request, Response
from pbx.sip.transaction import make_cancel

if TYPE_CHECKING:
    from pbx.engine.runtime import Engine
    from pbx.engine.stack import SipStack

log = logging.getLogger(__name__)


class Ringing:
    """The ringing half of CallManager (see calls.py for the other)."""

    engine: Engine
    stack: SipStack
    leg_call: dict[int, Call]

    def _ring_devices(self, call: Call, route: Route) -> None:
        now = self.stack.now()
        bindings = [
            b for device in route.devices for b in self.engine.registrar.contacts(device, now)
        ]
        if not bindings:
            self.unavailable(call, "unreachable")
            return
        call.move(CallState.RINGING)
        if route.ring_mode == "in_order" and len(bindings) > 1:
            share = max(5.0, route.timeout / len(bindings))
            self._ring_in_order(call, route, bindings, share)
        else:
            for binding in bindings:
                self._fork(
                    call,
                    route,
                    binding.contact,
                    binding.source,
                    binding.transport,
                    binding.username,
                )
        self._arm_no_answer(call, route)

    def _ring_in_order(self, call: Call, route: Route, bindings: list[Any], share: float) -> None:
        """Ring the first device for `share` seconds, then the next, until one answers.

        A device that refuses (busy, rejected) passes the turn at once (`call.advance`).
        """
        call.advance = None
        if call.state is not CallState.RINGING or not bindings:
            return
        first, rest = bindings[0], bindings[1:]
        leg = self._fork(call, route, first.contact, first.source, first.transport, first.username)
        if not rest:
            return
        timer: asyncio.TimerHandle | None = None

        def advance() -> None:
            if call.advance is not advance:
                return  # the ringing stopped (answered, given up, forwarded) since
            if timer is not None:
                timer.cancel()
            if (
                call.state is CallState.RINGING
                and not leg.ended
                and leg.state is not LegState.ENDING
            ):
                leg.hangup("next device")
            self._ring_in_order(call, route, rest, share)

        call.advance = advance
        timer = asyncio.get_running_loop().call_later(share, advance)
        call.advance_timer = timer

    def _arm_no_answer(self, call: Call, route: Route) -> None:
        loop = asyncio.get_running_loop()

        def expired() -> None:
            if call.state is CallState.RINGING:
                self._stop_forks(call)
                asyncio.ensure_future(self._no_answer(call, route))

        call.no_answer = loop.call_later(route.timeout, expired)

    async def _no_answer(self, call: Call, route: Route) -> None:
        if route.forward_no_answer and call.depth < 5:
            call.depth += 1
            self._drop_forks(call)
            await self.follow(
                call, await self.engine.router.forward(call.caller, route.forward_no_answer)
            )
            return
        self.unavailable(call, "no answer", 480)

    def _fork(
        self,
        call: Call,
        route: Route,
        uri: Any,
        dest: tuple[str, int],
        transport: str,
        device: str,
        *,
        request_user: str | None = None,
    ) -> Leg:
        media = call.b_media
        assert media is not None
        caller = call.caller
        from_uri = f"sip:{caller.number}@{self.engine.advertise}"
        display = caller.name.replace('"', "") if caller.name else ""
        headers = Headers(
            [
                ("Via", str(self.stack.via(transport))),
                ("Max-Forwards", "70"),
                (
                    "From",
                    f'"{display}" <{from_uri}>;tag={new_tag()}'
                    if display
                    else f"<{from_uri}>;tag={new_tag()}",
                ),
                ("To", f"<sip:{request_user or route.number}@{self.engine.advertise}>"),
                ("Call-ID", new_call_id(self.engine.advertise)),
                ("CSeq", "1 INVITE"),
                ("Contact", self.stack.contact(transport=transport)),
                ("Allow", ALLOW),
                ("User-Agent", "Centralino"),
                ("Content-Type", "application/sdp"),
            ]
        )
        invite = Request(
            "INVITE", str(uri), headers, offer_for_callee(self.engine.advertise, call.a, media)
        )
        leg = Leg(
            self.stack,
            "uac",
            invite,
            dest,
            transport,
            media,
            label=route.number,
            device=device,
            owns_media=False,
            extension=route.extension_key,
            sdp_version=2,  # our INVITE's offer was version 1
        )
        call.forks.append(leg)
        self.leg_call[id(leg)] = call
        leg.on_end = self._leg_ended
        self.stack.send_request(
            invite, dest, transport, lambda r, leg=leg: self._on_fork_response(leg, r)
        )
        return leg

    def _drop_forks(self, call: Call) -> None:
        """Forget the forks of a ringing that is over (before forwarding somewhere else)."""
        for leg in call.forks:
            self.leg_call.pop(id(leg), None)
        call.forks.clear()

    def _stop_forks(self, call: Call, keep: Leg | None = None) -> None:
        call.advance = None
        if call.advance_timer is not None:
            call.advance_timer.cancel()
            call.advance_timer = None
        for leg in call.forks:
            if leg is not keep and not leg.ended and leg.state is not LegState.ENDING:
                leg.on_end = None
                leg.hangup("cancelled")

    # --- responses to our INVITEs ----------------------------------------------------------

    def _on_fork_response(self, leg: Leg, response: Response | None) -> None:
        call = self.leg_call.get(id(leg))
        if call is None:
            if response is not None and 200 <= response.status < 300:
                self._hang_up_late_answer(leg, response)
            return
        if response is None:  # timer B: nobody there
            self._fork_failed(call, leg, 408)
            return
        status = response.status
        if status < 200:
            if status > 100 and leg.state in (LegState.CALLING, LegState.RINGING):
                leg.move(LegState.RINGING)
                if call.on_answered is None and call.a.state in (
                    LegState.INCOMING,
                    LegState.RINGING,
                ):
                    call.a.respond(180)
            if leg.cancel_pending:
                leg.cancel_pending = False
                self.stack.send_request(make_cancel(leg.invite), leg.peer, leg.transport, None)
            return
        if 200 <= status < 300:
            self._fork_answered(call, leg, response)
            return
        if status in (401, 407) and self._retry_with_auth(call, leg, response):
            return
        self._fork_failed(call, leg, status)

    def _retry_with_auth(self, call: Call, leg: Leg, response: Response) -> bool:
        trunk = leg.trunk
        if trunk is None or leg.auth_tries >= 2 or leg.state is LegState.ENDING:
            return False
        header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
        answer = "Authorization" if response.status == 401 else "Proxy-Authorization"
        client = DigestClient(trunk.username, trunk.password)
        try:
            challenge = select_challenge(response.headers.get_all(header))
            value = client.authorization(challenge, method="INVITE", uri=leg.invite.uri)
        except DigestError:
            return False
        leg.auth_tries += 1
        invite = leg.invite
        headers = invite.headers.copy()
        headers.set("Via", str(self.stack.via(leg.transport)))
        headers.set("CSeq", f"{invite.cseq.number + 1} INVITE")
        headers.set(answer, value)
        leg.invite = Request("INVITE", invite.uri, headers, invite.body)
        if leg.state is LegState.RINGING:
            leg.state = LegState.CALLING
        self.stack.send_request(
            leg.invite, leg.peer, leg.transport, lambda r, leg=leg: self._on_fork_response(leg, r)
        )
        return True

    def _hang_up_late_answer(self, leg: Leg, response: Response) -> None:
        """A phone answered after we gave up on it (its 200 crossed our CANCEL): ACK, BYE."""
        if leg.dialog is not None:
            return  # a retransmission: the transaction layer re-sends our ACK itself
        dialog = Dialog.from_uac(leg.invite, response)
        ack, _ = dialog.make_ack(leg.invite.cseq.number, via=self.stack.via(leg.transport))
        self.stack.send_ack(ack, leg.peer, leg.transport)
        leg.dialog = dialog
        leg.state = LegState.ANSWERED
        leg.on_end = None
        leg.hangup("too late")

    def _fork_answered(self, call: Call, leg: Leg, response: Response) -> None:
        if (
            leg.state is LegState.ENDING
            or call.state is CallState.ENDED
            or (call.b is not None and call.b is not leg)
        ):
            self._hang_up_late_answer(leg, response)
            return
        if leg.state is LegState.ANSWERED:
            return  # a retransmitted 2xx
        dialog = Dialog.from_uac(leg.invite, response)
        ack, _ = dialog.make_ack(leg.invite.cseq.number, via=self.stack.via(leg.transport))
        self.stack.send_ack(ack, leg.peer, leg.transport)
        leg.dialog = dialog
        leg.move(LegState.ANSWERED)
        self.dialogs[(dialog.call_id, dialog.local_tag, dialog.remote_tag)] = leg
        if not take_answer(leg, response.body):
            leg.hangup("bad answer")
            self._fork_failed(call, leg, 488)
            return
        leg.owns_media = True
        call.b_media = None
        if call.no_answer:
            call.no_answer.cancel()
        self._stop_forks(call, keep=leg)
        for other in call.forks:  # their 487s (or a late 200) find no call and are handled
            if other is not leg:
                self.leg_call.pop(id(other), None)
        call.forks = [leg]
        call.b = leg
        self.engine.recorder.answered(call.id, leg.device or leg.label)
        if call.on_answered is not None:
            callback, call.on_answered = call.on_answered, None
            callback(call, leg)
            return
        self._answer_a(call, leg.media.codec)

    def _fork_failed(self, call: Call, leg: Leg, status: int) -> None:
        if not leg.ended:
            leg.on_end = None
            leg.finish(f"status {status}")
        if call.state is not CallState.RINGING:
            return
        call.best_failure = better_failure(call.best_failure, status)
        if any(not f.ended for f in call.forks):
            return
        if call.advance is not None:  # ringing in order: the next device's turn, now
            call.advance()
            return
        if call.no_answer:
            call.no_answer.cancel()
        asyncio.ensure_future(self._all_forks_failed(call))

    async def _all_forks_failed(self, call: Call) -> None:
        status = call.best_failure
        route = call.route
        if status in (486, 600) and route is not None and route.forward_busy and call.depth < 5:
            call.depth += 1
            self._drop_forks(call)
            call.state = CallState.ROUTING
            await self.follow(
                call, await self.engine.router.forward(call.caller, route.forward_busy)
            )
            return
        if status in (486, 600):
            self.unavailable(call, "busy", 486)
        elif status in (408, 480):
            self.unavailable(call, "no answer", 480)
        else:
            self._end_unanswered(call, status if 400 <= status < 700 else 480, f"status {status}")

    # --- trunk -----------------------------------------------------------------------------

    async def _dial_trunk(self, call: Call, route: Route) -> None:
        trunk = route.trunk
        assert trunk is not None
        dest = await self.engine.trunks.address(trunk)
        if call.state is CallState.ENDED:  # cancelled while the trunk was looked up
            return
        if dest is None:
            self.unavailable(call, "trunk unreachable", 503)
            return
        call.move(CallState.RINGING)
        port = f":{trunk.port}" if trunk.port != 5060 else ""
        uri = f"sip:{route.number}@{trunk.host}{port}"
        presented = call.caller
        if trunk.caller_id and call.direction != "inbound":
            presented = Party(presented.company_id, trunk.caller_id, presented.name)
        saved, call.caller = call.caller, presented
        try:
            leg = self._fork(call, route, uri, dest, trunk.transport, "", request_user=route.number)
        finally:
            call.caller = saved
        leg.trunk = trunk
        self._arm_no_answer(call, route)
