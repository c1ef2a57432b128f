"""Calls: the B2BUA that joins a caller's leg to the leg of whoever answers.

A call starts with an INVITE (leg A), is routed by number (routing.py), rings one or more
devices or the trunk (forked B legs), and is bridged to the first that answers; the rest are
cancelled. Its own life is a small explicit state machine; every end writes the call record.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pbx.engine.legs import Leg, LegState, reject
from pbx.engine.media import MediaEndpoint, bridge
from pbx.engine.routing import Party, Route, Unavailable
from pbx.sip import sdp
from pbx.sip.dialog import Dialog
from pbx.sip.digest import DigestClient, DigestError
from pbx.sip.headers import Headers
from pbx.sip.ids import new_call_id, new_tag
from pbx.sip.message import Request, Response

if TYPE_CHECKING:
    from pbx.engine.runtime import Engine

log = logging.getLogger(__name__)


class CallState(enum.Enum):
    ROUTING = "routing"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


_CALL_TRANSITIONS = {
    CallState.ROUTING: {CallState.RINGING, CallState.ANSWERED, CallState.ENDED},
    CallState.RINGING: {CallState.RINGING, CallState.ANSWERED, CallState.ENDED},
    CallState.ANSWERED: {CallState.ENDED},
    CallState.ENDED: set(),
}

CODECS = ("PCMU", "PCMA")

# How an unanswered call ends, for the call record.
_DISPOSITIONS = {486: "busy", 600: "busy", 487: "cancelled", 404: "failed", 480: "no_answer",
                 408: "no_answer"}


@dataclass(eq=False)
class Call:
    id: str
    a: Leg
    caller: Party
    dialled: str
    direction: str
    state: CallState = CallState.ROUTING
    forks: list[Leg] = field(default_factory=list)
    b: Leg | None = None
    target_extension: tuple[int, str] | None = None  # (company, number) of the callee extension
    caller_extension: tuple[int, str] | None = None
    no_answer: asyncio.TimerHandle | None = None
    depth: int = 0  # forwarding hops taken, to stop loops
    best_failure: int = 0
    on_answered: Any = None  # a feature (transfer) waiting for the answer instead of leg A
    route: Route | None = None
    b_media: MediaEndpoint | None = None  # shared by the forks until one answers

    def move(self, new: CallState) -> None:
        if new not in _CALL_TRANSITIONS[self.state]:
            raise RuntimeError(f"call {self.id}: {self.state.value} -> {new.value}")
        log.info("call %s %s -> %s: %s -> %s", self.id[:8], self.caller.number, self.dialled,
                 self.state.value, new.value)
        self.state = new

    def other(self, leg: Leg) -> Leg | None:
        if leg is self.a:
            return self.b
        if leg is self.b:
            return self.a
        return None


class CallManager:
    """All calls of one engine, and the SIP dialogs that lead to them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.stack = engine.stack
        self.calls: dict[str, Call] = {}
        self.dialogs: dict[tuple[str, str, str], Leg] = {}  # (call-id, local tag, remote tag)
        self.pending_invites: dict[Any, Leg] = {}  # server transaction key -> unanswered leg A
        self.leg_call: dict[int, Call] = {}
        self.busy: Counter[tuple[int, str]] = Counter()

    # --- new calls -------------------------------------------------------------------------

    async def incoming(self, invite: Request, source: tuple[str, int], transport: str, key: Any,
                       caller: Party, dialled: str, direction: str, *, did_route: Route | None = None) -> None:
        """Take a new INVITE from a phone or the trunk and route it."""
        try:
            offer = sdp.SessionDescription.parse(invite.body) if invite.body else None
        except sdp.SdpError as error:
            reject(self.stack, invite, 400, f"Bad SDP: {error}")
            return
        media = await self.engine.media.allocate()
        if offer is not None:
            try:  # refuse now an offer we could never answer, before anything rings
                sdp.negotiate(offer, local_ip=self.engine.advertise, local_port=media.port,
                              session_id=1, version=1)
            except sdp.NoCommonCodec:
                media.close()
                reject(self.stack, invite, 488, "No common codec")
                return
        # Without an offer (late offer, RFC 3261 13.2.1) we offer in the 200 and the
        # caller answers in its ACK.
        leg = Leg(self.stack, "uas", invite, source, transport, media, label=caller.number,
                  server_key=key, device=caller.device, offer=offer)
        leg.respond(100)
        call = Call(uuid.uuid4().hex, leg, caller, dialled, direction)
        call.caller_extension = (caller.company_id, caller.number) if caller.device else None
        self._attach(call, leg)
        self.pending_invites[key] = leg
        self.engine.recorder.started(call.id, direction=direction, caller=caller.number,
                                     caller_name=caller.name, callee=dialled,
                                     company_id=caller.company_id)
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
        call.target_extension = route.extension_key
        call.route = route
        if call.b_media is None or call.b_media.closed:
            call.b_media = await self.engine.media.allocate()
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

    # --- ringing ---------------------------------------------------------------------------

    def _offer_for(self, call: Call, media: MediaEndpoint) -> bytes:
        offer = call.a.offer
        preferred = [n for _, n, _ in sdp.codecs(offer) if n in CODECS] if offer else []
        order = list(dict.fromkeys([*preferred, *CODECS]))
        return bytes(sdp.make_offer(self.engine.advertise, media.port, order,
                                    session_id=media.port, version=1))

    def _ring_devices(self, call: Call, route: Route) -> None:
        now = self.stack.now()
        bindings = [b for device in route.devices for b in self.engine.registrar.contacts(device, now)]
        if not bindings:
            self.unavailable(call, "unreachable")
            return
        call.move(CallState.RINGING)
        if route.ring_mode == "in_order" and len(bindings) > 1:
            share = max(5.0, route.timeout / len(bindings))
            self._ring_in_order(call, route, bindings, share)
        else:
            for binding in bindings:
                self._fork(call, route, binding.contact, binding.source, binding.transport, binding.username)
        self._arm_no_answer(call, route)

    def _ring_in_order(self, call: Call, route: Route, bindings: list[Any], share: float) -> None:
        if call.state is not CallState.RINGING or not bindings:
            return
        first, rest = bindings[0], bindings[1:]
        leg = self._fork(call, route, first.contact, first.source, first.transport, first.username)

        def next_device() -> None:
            if call.state is CallState.RINGING and not leg.ended:
                leg.hangup("next device")
            self._ring_in_order(call, route, rest, share)

        if rest:
            asyncio.get_running_loop().call_later(share, next_device)

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
            call.forks.clear()
            await self.follow(call, await self.engine.router.forward(call.caller, route.forward_no_answer))
            return
        self.unavailable(call, "no answer", 480)

    def _fork(self, call: Call, route: Route, uri: Any, dest: tuple[str, int], transport: str,
              device: str, *, request_user: str | None = None) -> Leg:
        media = call.b_media
        assert media is not None
        caller = call.caller
        from_uri = f"sip:{caller.number}@{self.engine.advertise}"
        display = caller.name.replace('"', "") if caller.name else ""
        headers = Headers([
            ("Via", str(self.stack.via(transport))),
            ("Max-Forwards", "70"),
            ("From", f'"{display}" <{from_uri}>;tag={new_tag()}' if display else f"<{from_uri}>;tag={new_tag()}"),
            ("To", f"<sip:{request_user or route.number}@{self.engine.advertise}>"),
            ("Call-ID", new_call_id(self.engine.advertise)),
            ("CSeq", "1 INVITE"),
            ("Contact", self.stack.contact(transport=transport)),
            ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY, INFO"),
            ("User-Agent", "Centralino"),
            ("Content-Type", "application/sdp"),
        ])
        invite = Request("INVITE", str(uri), headers, self._offer_for(call, media))
        leg = Leg(self.stack, "uac", invite, dest, transport, media, label=route.number,
                  device=device, owns_media=False)
        call.forks.append(leg)
        self.leg_call[id(leg)] = call
        leg.on_end = self._leg_ended
        self.stack.send_request(invite, dest, transport, lambda r, leg=leg: self._on_fork_response(leg, r))
        return leg

    def _stop_forks(self, call: Call, keep: Leg | None = None) -> None:
        for leg in call.forks:
            if leg is not keep and not leg.ended and leg.state is not LegState.ENDING:
                leg.on_end = None
                leg.hangup("cancelled")

    # --- responses to our INVITEs ----------------------------------------------------------

    def _on_fork_response(self, leg: Leg, response: Response | None) -> None:
        call = self.leg_call.get(id(leg))
        if call is None:
            return
        if response is None:  # timer B: nobody there
            self._fork_failed(call, leg, 408)
            return
        status = response.status
        if status < 200:
            if status > 100 and leg.state in (LegState.CALLING, LegState.RINGING):
                leg.move(LegState.RINGING)
                if call.on_answered is None and call.a.state in (LegState.INCOMING, LegState.RINGING):
                    call.a.respond(180)
            if leg.cancel_pending:
                leg.cancel_pending = False
                from pbx.sip.transaction import make_cancel
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
            from pbx.sip.digest import select_challenge
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
        self.stack.send_request(leg.invite, leg.peer, leg.transport,
                                lambda r, leg=leg: self._on_fork_response(leg, r))
        return True

    def _fork_answered(self, call: Call, leg: Leg, response: Response) -> None:
        dialog = Dialog.from_uac(leg.invite, response)
        ack, _ = dialog.make_ack(leg.invite.cseq.number, via=self.stack.via(leg.transport))
        self.stack.send_ack(ack, leg.peer, leg.transport)
        leg.dialog = dialog
        if leg.state is LegState.ENDING or call.state is CallState.ENDED or (call.b is not None and call.b is not leg):
            # Answered after we gave up on it (a CANCEL crossed the 200): hang it up.
            leg.state = LegState.ANSWERED
            leg.on_end = None
            leg.hangup("too late")
            return
        if leg.state is LegState.ANSWERED:
            return  # a retransmitted 2xx
        leg.move(LegState.ANSWERED)
        self.dialogs[(dialog.call_id, dialog.local_tag, dialog.remote_tag)] = leg
        if not self.take_answer(leg, response.body):
            leg.hangup("bad answer")
            self._fork_failed(call, leg, 488)
            return
        leg.owns_media = True
        call.b_media = None
        if call.no_answer:
            call.no_answer.cancel()
        self._stop_forks(call, keep=leg)
        call.forks = [leg]
        call.b = leg
        self.engine.recorder.answered(call.id, leg.device or leg.label)
        if call.target_extension:
            self.busy[call.target_extension] += 1
        if call.on_answered is not None:
            callback, call.on_answered = call.on_answered, None
            callback(call, leg)
            return
        self._answer_a(call, leg.media.codec)

    def _answer_a(self, call: Call, codec: str) -> None:
        a = call.a
        self.pending_invites.pop(a.server_key, None)
        a.respond(200, body=self.local_sdp(a, prefer=codec))
        assert a.dialog is not None and call.b is not None
        self.dialogs[(a.dialog.call_id, a.dialog.local_tag, a.dialog.remote_tag)] = a
        bridge(a.media, call.b.media)
        call.move(CallState.ANSWERED)
        if call.caller_extension:
            self.busy[call.caller_extension] += 1

    def local_sdp(self, leg: Leg, *, prefer: str | None = None, direction: str | None = None) -> bytes:
        """Our SDP for `leg`: the answer to its pending offer, or an offer of our own.

        The answer prefers `prefer` (the other leg's codec) so that the relay need not
        transcode. Raises sdp.NoCommonCodec when an offer has nothing we can use.
        """
        media = leg.media
        version, leg.sdp_version = leg.sdp_version, leg.sdp_version + 1
        offer, leg.offer = leg.offer, None
        if offer is None:
            leg.awaiting_answer = True
            order = list(dict.fromkeys([prefer or media.codec, *CODECS]))
            return bytes(sdp.make_offer(self.engine.advertise, media.port, order,
                                        session_id=media.port, version=version,
                                        direction=direction or "sendrecv"))
        offered = [name for _, name, _ in sdp.codecs(offer) if name in CODECS]
        codecs = [prefer] if prefer in offered else offered
        answer = sdp.negotiate(offer, codecs or CODECS, local_ip=self.engine.advertise,
                               local_port=media.port, session_id=media.port, version=version,
                               direction=direction)
        if answer.remote[0] not in ("0.0.0.0", "::"):
            media.set_remote(answer.remote, answer.payload_type, answer.codec, answer.telephone_event)
        return bytes(answer.sdp)

    def take_answer(self, leg: Leg, body: bytes) -> bool:
        """Apply the answer a far end sent to our offer (in an ACK or a 2xx)."""
        leg.awaiting_answer = False
        try:
            answer = sdp.SessionDescription.parse(body)
            ip, port = sdp.audio_endpoint(answer)
            pt, codec, _ = next(c for c in sdp.codecs(answer) if c[1] in CODECS)
        except (sdp.SdpError, StopIteration, ValueError):
            log.info("unusable SDP answer from %s", leg.label)
            return False
        te = next((c[0] for c in sdp.codecs(answer) if c[1].lower() == "telephone-event"), None)
        if ip not in ("0.0.0.0", "::"):
            leg.media.set_remote((ip, port), pt, codec, te)
        return True

    def _fork_failed(self, call: Call, leg: Leg, status: int) -> None:
        if not leg.ended:
            leg.on_end = None
            leg.finish(f"status {status}")
        if call.state is not CallState.RINGING:
            return
        call.best_failure = _better_failure(call.best_failure, status)
        if any(not f.ended for f in call.forks):
            return
        if call.no_answer:
            call.no_answer.cancel()
        asyncio.ensure_future(self._all_forks_failed(call))

    async def _all_forks_failed(self, call: Call) -> None:
        status = call.best_failure
        route = call.route
        if status in (486, 600) and route is not None and route.forward_busy and call.depth < 5:
            call.depth += 1
            call.forks.clear()
            call.state = CallState.ROUTING
            await self.follow(call, await self.engine.router.forward(call.caller, route.forward_busy))
            return
        if call.on_answered is not None:
            callback, call.on_answered = call.on_answered, None
            callback(call, None)
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

    # --- ending ----------------------------------------------------------------------------

    def _end_unanswered(self, call: Call, status: int, reason: str) -> None:
        if call.state is CallState.ENDED:
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
        self._close(call, _DISPOSITIONS.get(status, "failed"), reason)

    def _leg_ended(self, leg: Leg, reason: str) -> None:
        """A leg ended on its own (BYE received, CANCEL, failure): end what depends on it."""
        call = self.leg_call.get(id(leg))
        if call is None or call.state is CallState.ENDED:
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

    def _close(self, call: Call, disposition: str, reason: str) -> None:
        if call.state is CallState.ENDED:
            return
        was_answered = call.state is CallState.ANSWERED
        call.move(CallState.ENDED)
        if call.no_answer:
            call.no_answer.cancel()
        if was_answered:
            for key in (call.target_extension, call.caller_extension):
                if key and self.busy[key] > 0:
                    self.busy[key] -= 1
                    if not self.busy[key]:
                        del self.busy[key]
        for leg in [call.a, *call.forks]:
            self.leg_call.pop(id(leg), None)
            if leg.dialog is not None:
                self.dialogs.pop((leg.dialog.call_id, leg.dialog.local_tag, leg.dialog.remote_tag), None)
            if leg.owns_media:
                leg.media.close()
        if call.b_media is not None:
            call.b_media.close()
        self.pending_invites.pop(call.a.server_key, None)
        self.calls.pop(call.id, None)
        self.engine.recorder.ended(call.id, disposition, reason)

    # --- requests inside dialogs and CANCEL --------------------------------------------------

    def find_leg(self, request: Request) -> Leg | None:
        return self.dialogs.get((request.call_id, request.to_addr.tag or "", request.from_addr.tag or ""))

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

    def forget(self, call: Call, disposition: str, reason: str) -> None:
        self._close(call, disposition, reason)

    def call_of(self, leg: Leg) -> Call | None:
        return self.leg_call.get(id(leg))

    def is_busy(self, company_id: int, number: str) -> bool:
        return self.busy.get((company_id, number), 0) > 0


def _better_failure(current: int, new: int) -> int:
    """Pick the response to pass back when every fork failed (RFC 3261 16.7, simplified)."""
    if current == 0:
        return new
    rank = {486: 0, 600: 0, 603: 1, 480: 2, 408: 3, 487: 9}
    return new if rank.get(new, 5) < rank.get(current, 5) else current

