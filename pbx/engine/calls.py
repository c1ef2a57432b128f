"""Calls: the B2BUA that joins a caller's leg to the leg of whoever answers.

A call starts with an INVITE (leg A), is routed by number (routing.py), rings what its route
names (ring_plan.py says what, a `Ringer` per route rings it, ringer.py), and is bridged to
the first that answers. What happens after a ringing ends (forward on busy or no answer) is
decided here, how calls end (the voicemail hook, hang-ups) in call_endings.py; what happens
inside a dialog is dialogs.py's, and what users do with calls (hold, transfer, join) is
operations.py's, both through the methods below.
"""

from __future__ import annotations

import enum
import logging
import uuid
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from pbx.engine.call import BUSY_STATUSES, Call, CallKind, CallState, Disposition, Outcome, Status
from pbx.engine.call_endings import CallEndings
from pbx.engine.events import DigitPressed, EventSink, ExtensionKey
from pbx.engine.legs import DialogIndex, Leg, reject
from pbx.engine.media import MediaEndpoint, NoFreePort, bridge
from pbx.engine.negotiation import local_sdp, unanswerable
from pbx.engine.ring_plan import CannotRing, auto_answer_headers, plan_ringing
from pbx.engine.ringer import RingEnd, Ringer, RingResult
from pbx.engine.routing import MAX_FORWARDS, Party, Route, Unavailable
from pbx.engine.services import (
    Clock,
    Contacts,
    HuntMemory,
    MediaPorts,
    MemoryHuntMemory,
    Routing,
    SipSender,
    Tasks,
    TrunkAddresses,
)
from pbx.engine.session_timers import MIN_SE, IntervalTooSmall
from pbx.engine.session_timers import negotiate as negotiate_session_timer
from pbx.media.dtmf import DigitReceived
from pbx.sip import sdp
from pbx.sip.message import Request

log = logging.getLogger(__name__)


class SetupState(enum.Enum):
    """An INVITE still being authenticated or routed, before it has a call."""

    ROUTING = "routing"
    CANCELLED = "cancelled"  # a CANCEL came meanwhile: the INVITE gets 487 and no call


class CallManager(CallEndings):
    """All calls of one engine, and the SIP dialogs that lead to them (how they end:
    call_endings.py)."""

    def __init__(
        self,
        *,
        stack: SipSender,
        clock: Clock,
        events: EventSink,
        media: MediaPorts,
        contacts: Contacts,
        router: Routing,
        trunks: TrunkAddresses,
        tasks: Tasks,
        dialogs: DialogIndex | None = None,
        queue_timeout: float = 300,
        hunt_memory: HuntMemory | None = None,
    ) -> None:
        self.stack = stack
        self.clock = clock
        self.events = events
        self.media = media
        self.contacts = contacts
        self.router = router
        self.trunks = trunks
        self.tasks = tasks
        self.dialogs = dialogs if dialogs is not None else DialogIndex()
        self.queue_timeout = queue_timeout
        self.calls: dict[str, Call] = {}
        self.pending_invites: dict[Any, Leg] = {}  # server transaction key -> unanswered leg A
        self.leg_call: dict[int, Call] = {}  # leg id -> its call
        self.setups: dict[Any, SetupState] = {}  # server transaction key -> set-up state
        self.hunt_memory: HuntMemory = hunt_memory or MemoryHuntMemory()
        # Who answers a call routed to a Multiselection (attendant.py sets it), and an
        # administrator's call to record an announcement (announcement_recorder.py); without
        # them the number is unavailable.
        self.on_attendant: Callable[[Call, Route], None] | None = None
        self.on_record_announcement: Callable[[Call, Route], None] | None = None
        # Voicemail (voicemail.py): takes an unanswered call for an extension's mailbox
        # (False: that mailbox is off, the call ends as without voicemail); and the feature
        # code that listens to messages (voicemail_menu.py).
        self.on_voicemail: Callable[[Call, ExtensionKey], Awaitable[bool]] | None = None
        self.on_listen_voicemail: Callable[[Call, Route], None] | None = None
        # Directed pickup (pickup.py): a phone dialled the pickup code, or sent an INVITE
        # with Replaces naming a ringing phone's early dialog.
        self.on_directed_pickup: Callable[[Call, Route], None] | None = None

    @property
    def advertise(self) -> str:
        return self.stack.advertise

    # --- INVITEs before they are calls ---------------------------------------------------

    def setup_started(self, key: Any) -> None:
        self.setups[key] = SetupState.ROUTING

    def setup_finished(self, key: Any) -> None:
        self.setups.pop(key, None)

    def setup_cancelled(self, key: Any) -> bool:
        return self.setups.get(key) is SetupState.CANCELLED

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
        did_route: Route | Unavailable | None = None,
    ) -> None:
        """Take a new INVITE from a phone or the trunk and route it."""
        try:
            offer = sdp.SessionDescription.parse(invite.body) if invite.body else None
        except sdp.SdpError as error:
            reject(self.stack, invite, 400, f"Bad SDP: {error}")
            return
        try:
            session_timer = negotiate_session_timer(invite)
        except IntervalTooSmall:
            reject(self.stack, invite, 422, headers=(("Min-SE", str(MIN_SE)),))
            return
        try:
            media = await self.media.allocate()
        except NoFreePort:
            reject(self.stack, invite, 503, "No media port free")
            return
        if self.setup_cancelled(key):  # the caller gave up while we were busy
            media.close()
            reject(self.stack, invite, 487)
            return
        unusable = unanswerable(offer, self.advertise, media.port) if offer is not None else None
        if unusable is not None:  # refuse now an offer we could never answer, before it rings
            media.close()
            reject(self.stack, invite, 488, unusable)
            return
        # Without an offer (late offer, RFC 3261 13.2.1) we offer in the 200 and the
        # caller answers in its ACK.
        call_id = uuid.uuid4().hex
        leg = Leg(
            self.stack,
            "uas",
            invite,
            source,
            transport,
            media,
            label=caller.number,
            server_key=key,
            events=self.events,
            device=caller.device,
            offer=offer,
            extension=(caller.company_id, caller.number) if caller.device else None,
            call_id=call_id,
            session_timer=session_timer,
        )
        leg.respond(100)
        call = Call(call_id, leg, caller, dialled, direction, events=self.events)
        self._attach(call, leg)
        self.pending_invites[key] = leg
        route = did_route or await self.router.route(caller, dialled)
        await self.follow(call, route)

    def place(
        self, leg: Leg, party: Party, number: str, *, operator: str = "", outgoing: bool = False
    ) -> Call:
        """A new call for `leg`, already in a dialog with us (a transferee, the operator's
        phone when the console dials), to `number`.

        Await the call's `outcome`: the leg that answered, bridged to `leg`, or the failure;
        on a failure `leg` is left as it was, belonging to no call.
        """
        call = Call(
            uuid.uuid4().hex,
            leg,
            party,
            number,
            "internal",
            events=self.events,
            kind=CallKind.HANDOFF,
            operator=operator,
            outgoing=outgoing,
        )
        self._attach(call, leg)

        async def route() -> None:
            await self.follow(call, await self.router.route(party, number))

        self.tasks.spawn(route())
        return call

    def _attach(self, call: Call, leg: Leg) -> None:
        self.calls[call.id] = call
        self.leg_call[leg.id] = call
        leg.belong_to(call.id)
        self._hear_digits(leg)

    def _hear_digits(self, leg: Leg) -> None:
        """Key presses on `leg` become `DigitPressed` events of its call."""
        events, now, owner = self.events, self.clock.now, weakref.ref(leg)

        def pressed(event: DigitReceived) -> None:  # a weak reference: no cycle via the endpoint
            current = owner()
            if current is not None:
                events.emit(
                    DigitPressed(current.call_id, current.id, event.digit, event.duration_ms, now())
                )

        leg.media.on_digit = pressed

    # --- routing and ringing -------------------------------------------------------------

    async def follow(self, call: Call, route: Route | Unavailable) -> None:
        """Ring what `route` says, forward when it says so, or end the call the way it says.

        It stops as soon as the call is no longer being routed or rung by it: ended, or
        answered otherwise (`answer_locally`) while a lookup or a ringing was awaited.
        """
        while call.state is CallState.ROUTING:
            if isinstance(route, Unavailable):
                self.unavailable(call, route.reason, route.status, voicemail=route.voicemail)
                return
            call.route = route
            if route.operator:
                if route.pickup:
                    self._pick_up(call)
                else:
                    self._queue(call)
                return
            if route.attendant is not None:
                if self.on_attendant is None:
                    self.unavailable(call, "no auto-attendant here")
                else:
                    self.on_attendant(call, route)
                return
            if route.record_announcement:
                if self.on_record_announcement is None or not call.a.unanswered:
                    self.unavailable(call, "no announcement recording here", Status.NOT_FOUND)
                else:
                    self.on_record_announcement(call, route)
                return
            if route.directed_pickup:
                if self.on_directed_pickup is None or not call.a.unanswered:
                    self.refuse(call, Status.NOT_FOUND, "no directed pickup here")
                else:
                    self.on_directed_pickup(call, route)
                return
            if route.mailbox:
                if self.on_listen_voicemail is None or not call.a.unanswered:
                    self.unavailable(call, "no voicemail here", Status.NOT_FOUND)
                else:
                    self.on_listen_voicemail(call, route)
                return
            result = await self._ring(call, route)
            if result is None:
                return
            # Still ROUTING: nothing could ring (a hunt group without a registered phone).
            rang = call.state is CallState.RINGING
            if not rang and (call.state is not CallState.ROUTING or result.leg is not None):
                if result.leg is not None:  # it answered as the call ended or was answered
                    self.dialogs.remove(result.leg)
                    result.leg.hangup()
                return
            if result.end is RingEnd.ANSWERED:
                assert result.leg is not None
                self._answered(call, result.leg)
                return
            following = await self._after(call, route, result)
            still = CallState.RINGING if rang else CallState.ROUTING
            if following is None or call.state is not still:  # ended or answered meanwhile
                return
            if rang:
                call.move(CallState.ROUTING)
            route = following

    def _queue(self, call: Call) -> None:
        """The call waits for an operator to take it from a console (operator.py)."""
        if call.kind is CallKind.HANDOFF:  # a transfer to the operator: nobody waits for it
            self._end_unanswered(call, Status.UNAVAILABLE, "the operator takes no transfers")
            return
        if call.a.unanswered:
            call.a.respond(180)  # the caller hears ringing while it waits
        call.move(CallState.QUEUED)

        def nobody_answered() -> None:
            if call.state is CallState.QUEUED:
                self.unavailable(call, "nobody answered in the operator queue")

        self.clock.call_later(self.queue_timeout, nobody_answered)

    def _pick_up(self, call: Call) -> None:
        """An operator's phone dialled the operator number: it answers the call that has
        waited longest in its company's queue (answering on the phone, not the console)."""
        waiting = [
            c
            for c in self.calls.values()
            if c.state is CallState.QUEUED and c.caller.company_id == call.caller.company_id
        ]
        if not waiting:
            self._end_unanswered(call, Status.UNAVAILABLE, "no call waiting for the operator")
            return
        queued, phone = waiting[0], call.a
        self.pending_invites.pop(phone.server_key, None)
        phone.respond(200, body=local_sdp(self.advertise, phone), headers=_session_headers(phone))
        self.dialogs.add(phone)
        self._close(call, Disposition.ANSWERED, "picked up a queued call", keep=phone)
        phone.belong_to(queued.id)
        queued.operator = call.caller.number
        self._answered(queued, phone)

    def answer_ringing(self, call: Call, ringing: Call) -> None:
        """`call`'s caller (a phone that asked for a directed pickup) answers `ringing` in
        place of the phones it rings, which stop ringing (the ringer CANCELs them)."""
        phone = call.a
        if ringing.ringer is not None:
            ringing.ringer.stop()
        if ringing.b_media is not None:  # the forks' shared endpoint: the picker has its own
            ringing.b_media.close()
            ringing.b_media = None
        self.pending_invites.pop(phone.server_key, None)
        phone.respond(200, body=local_sdp(self.advertise, phone), headers=_session_headers(phone))
        self.dialogs.add(phone)
        self._close(call, Disposition.ANSWERED, "picked up a ringing call", keep=phone)
        phone.belong_to(ringing.id)
        self._answered(ringing, phone)

    async def connect(
        self, call: Call, route: Route, back: CallState, restore: Callable[[], None]
    ) -> RingResult | None:
        """Ring `route` for a call that waits (queued, parked) and bridge it to whoever
        answers; when nobody does, `restore()` puts back what the caller changed for the
        attempt and the call goes back to `back`, and the result says why. None: the call
        ended (or no media port was free) meanwhile."""
        call.move(CallState.ROUTING)
        result = await self._ring(call, route)
        if result is None:
            return None
        if call.state is not CallState.RINGING:
            if result.leg is not None:  # it answered as the call ended
                self.dialogs.remove(result.leg)
                result.leg.hangup()
            return None
        if result.end is RingEnd.ANSWERED:
            assert result.leg is not None
            self._answered(call, result.leg)
        else:
            restore()
            call.move(back)
        return result

    async def _ring(self, call: Call, route: Route) -> RingResult | None:
        if call.b_media is None or call.b_media.closed:
            try:
                media = await self.media.allocate()
            except NoFreePort:
                self.unavailable(call, "no media port free", Status.SERVICE_UNAVAILABLE)
                return None
            if call.state is not CallState.ROUTING:  # ended or answered meanwhile
                media.close()
                return None
            call.b_media = media
        plan = await plan_ringing(
            call,
            route,
            contacts=self.contacts,
            stack=self.stack,
            trunks=self.trunks,
            router=self.router,
        )
        if plan is None:  # ended or answered meanwhile
            return None
        if isinstance(plan, CannotRing):
            if plan.group_fallback:  # no member's phone is registered: the group's fallback
                return RingResult(RingEnd.REFUSED, status=Status.UNAVAILABLE)
            self.unavailable(call, plan.reason, plan.status)
            return None
        ringer = Ringer(
            call,
            route.number,
            plan.targets,
            plan.strategy,
            route.timeout,
            media=call.b_media,
            presented=plan.presented,
            extension=route.extension_key,
            stack=self.stack,
            clock=self.clock,
            events=self.events,
            dialogs=self.dialogs,
            headers=auto_answer_headers(self.advertise) if route.auto_answer else (),
        )
        call.ringer = ringer
        call.move(CallState.RINGING)
        try:
            return await ringer.run()
        finally:
            if call.ringer is ringer:
                call.ringer = None

    async def _after(
        self, call: Call, route: Route, result: RingResult
    ) -> Route | Unavailable | None:
        """Where a ringing that ended unanswered leads: a forwarding, or nowhere (None)."""
        if result.end is RingEnd.STOPPED:
            return None
        if route.hunt is not None:  # nobody in the group answered: the group's fallback
            if call.depth >= MAX_FORWARDS:
                self.unavailable(call, "forwarding loop", Status.LOOP_DETECTED)
                return None
            call.depth += 1
            return await self.router.hunt_fallback(call.caller, route.hunt, call.depth, "no answer")
        if result.end is RingEnd.NO_ANSWER:
            if route.forward_no_answer and call.depth < MAX_FORWARDS:
                call.depth += 1
                return await self.router.forward(call.caller, route.forward_no_answer)
            self.unavailable(call, "no answer", Status.UNAVAILABLE)
            return None
        status = result.status
        if status in BUSY_STATUSES:
            if route.forward_busy and call.depth < MAX_FORWARDS:
                call.depth += 1
                return await self.router.forward(call.caller, route.forward_busy)
            self.unavailable(call, "busy", Status.BUSY_HERE)
        elif status in (Status.REQUEST_TIMEOUT, Status.UNAVAILABLE):
            self.unavailable(call, "no answer", Status.UNAVAILABLE)
        elif status in (401, 407):  # the carrier refused our credentials: not the phone's
            self._end_unanswered(call, Status.SERVICE_UNAVAILABLE, f"status {status}")
        else:
            final = status if 400 <= status < 700 else Status.UNAVAILABLE
            self._end_unanswered(call, final, f"status {status}")
        return None

    def _answered(self, call: Call, leg: Leg) -> None:
        """`leg` answered: it joins leg A, which we answer now unless it already talks."""
        leg.owns_media = True
        call.b_media = None
        call.b = leg
        self.leg_call[leg.id] = call
        self._hear_digits(leg)
        call.answered_by = leg.device or leg.label
        route = call.route
        if route is not None and route.hunt is not None and leg.extension is not None:
            self.hunt_memory.took_call(route.hunt.company_id, route.hunt.number, leg.extension[1])
        a = call.a
        if a.unanswered:
            self.pending_invites.pop(a.server_key, None)
            a.respond(
                200,
                body=local_sdp(self.advertise, a, prefer=leg.media.codec),
                headers=_session_headers(a),
            )
            self.dialogs.add(a)
        bridge(a.media, leg.media)
        call.move(CallState.ANSWERED)
        call.settle(Outcome(leg))

    def answer_locally(
        self, call: Call, state: CallState = CallState.ANSWERED, by: str = "pbx"
    ) -> MediaEndpoint:
        """The PBX answers the caller itself: returns the media endpoint to play to and record
        from (voicemail, the auto-attendant: `state` ATTENDANT); its key presses are
        `DigitPressed` events.

        A caller the PBX already answered (a menu sent it on, and what it reached forwards to
        a menu again), or a party transferred here (a handoff: already in a dialog with us), is
        taken as it is: no second 200. A handoff is then done: its outcome is settled, so that
        whoever transferred it is freed (a blind transfer to a Multiselection)."""
        a = call.a
        answered_by_us = call.b is None and not a.ended
        if call.state not in (CallState.ROUTING, CallState.RINGING) or not (
            a.unanswered or answered_by_us
        ):
            raise RuntimeError(f"call {call.id} cannot be answered locally: {call.state.value}")
        if call.ringer is not None:
            call.ringer.stop()
        if a.unanswered:
            self.pending_invites.pop(a.server_key, None)
            a.respond(200, body=local_sdp(self.advertise, a), headers=_session_headers(a))
            self.dialogs.add(a)
        call.answered_by = by
        call.move(state)
        if state is CallState.ANSWERED or call.kind is CallKind.HANDOFF:
            call.settle(Outcome(a))
        return a.media

    # --- requests inside dialogs and CANCEL --------------------------------------------------

    def find_leg(self, request: Request) -> Leg | None:
        return self.dialogs.find(request)

    def cancel(self, invite_key: Any) -> bool:
        """A CANCEL for an INVITE: end its call if it still rings; False if we know no call."""
        leg = self.pending_invites.pop(invite_key, None)
        if leg is None:
            if invite_key in self.setups:  # still being authenticated or routed
                self.setups[invite_key] = SetupState.CANCELLED
            return False
        call = self.leg_call.get(leg.id)
        if call is not None and not call.talking:
            self._end_unanswered(call, Status.REQUEST_TERMINATED, "cancelled by caller")
        return True

    # --- moving legs between calls (operations.py) -----------------------------------------

    def detach(self, call: Call, leg: Leg) -> None:
        """Take `leg` out of `call` without ending either; the other leg becomes leg A."""
        if leg is call.b:
            call.b = None
        elif leg is call.a and call.b is not None:
            call.a, call.b = call.b, None
        if self.leg_call.get(leg.id) is call:
            del self.leg_call[leg.id]
        leg.belong_to("")

    def rejoin(self, call: Call, leg: Leg, *, as_caller: bool) -> None:
        """Put `leg` back as the other party of `call` (a transfer failed), on its old side."""
        if as_caller:
            call.a, call.b = leg, call.a
        else:
            call.b = leg
        self.leg_call[leg.id] = call
        leg.belong_to(call.id)

    def replace(self, call: Call, old: Leg, new: Leg) -> None:
        """Put `new` where `old` was in `call` (attended transfer)."""
        if call.a is old:
            call.a = new
        else:
            call.b = new
        self.leg_call.pop(old.id, None)
        old.belong_to("")
        self.leg_call[new.id] = call
        new.belong_to(call.id)

    def take_over(self, call: Call, old: Leg, new: Leg) -> None:
        """`new` becomes the caller of the ringing `call`; `old`'s INVITE ends with 487."""
        self.pending_invites.pop(old.server_key, None)
        self.leg_call.pop(old.id, None)
        old.respond(Status.REQUEST_TERMINATED)
        call.a = new
        call.kind = CallKind.HANDOFF
        self.leg_call[new.id] = call
        new.belong_to(call.id)

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

    def call_of(self, leg: Leg) -> Call | None:
        return self.leg_call.get(leg.id)

    def leg_by_id(self, leg_id: int) -> Leg | None:
        """A leg of a live call, by its id (events name legs by id)."""
        call = self.leg_call.get(leg_id)
        if call is None:
            return None
        return next((leg for leg in (call.a, call.b) if leg is not None and leg.id == leg_id), None)


def _session_headers(leg: Leg) -> tuple[tuple[str, str], ...]:
    return leg.session_timer.headers() if leg.session_timer is not None else ()
