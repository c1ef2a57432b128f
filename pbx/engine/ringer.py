"""Ringing one route for one call: the forks (B legs), their responses, and the first answer.

A `Ringer` is made per route a call follows (a forwarding makes a new one). It runs a ring
strategy (hunt.py) over its targets, sends the INVITEs, answers the carrier's challenges,
sends a CANCEL when a fork must stop (only once it rang: RFC 3261 9.1), ACKs and hangs up a 200
that crossed our CANCEL, and ends with a `RingResult` that its call manager awaits: the leg
that answered, or why nobody did. It touches no other call and reports nothing upwards.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pbx.engine.call import Call, Status, better_failure
from pbx.engine.directory import TrunkInfo
from pbx.engine.events import EventSink
from pbx.engine.hunt import RingStep, RingStrategy
from pbx.engine.legs import ALLOW, LIVE_RINGING, DialogIndex, Leg, LegState
from pbx.engine.negotiation import offer_for_callee, take_answer
from pbx.engine.routing import Member, Party
from pbx.sip.dialog import Dialog
from pbx.sip.digest import DigestClient, DigestError, select_challenge
from pbx.sip.headers import Headers
from pbx.sip.ids import new_call_id, new_tag
from pbx.sip.message import Request, Response

if TYPE_CHECKING:
    from pbx.engine.media import MediaEndpoint
    from pbx.engine.services import Clock, Contacts, SipSender, Timer

log = logging.getLogger(__name__)

Addr = tuple[str, int]
MAX_AUTH_TRIES = 2


@dataclass(frozen=True, slots=True)
class Target:
    """Something to ring: a registered contact of a device, or the carrier."""

    uri: str
    dest: Addr
    transport: str
    device: str = ""  # the SIP username of the phone
    request_user: str | None = None  # the To user, when not the route's number
    trunk: TrunkInfo | None = None
    member: str = ""  # the extension it belongs to (a hunt group rings several)


def member_targets(members: Iterable[Member], contacts: Contacts, stack: SipSender) -> list[Target]:
    """Every registered contact of every device of `members`, in ring order."""
    now = stack.now()
    return [
        Target(
            str(b.contact),
            stack.destination(b),
            b.transport,
            device=b.username,
            member=member.number,
        )
        for member in members
        for device in member.devices
        for b in contacts.contacts(device, now)
    ]


def trunk_target(trunk: TrunkInfo, number: str, dest: Addr) -> Target:
    """The carrier, asked for `number` (the carrier's host in the request URI)."""
    port = f":{trunk.port}" if trunk.port != 5060 else ""
    return Target(
        f"sip:{number}@{trunk.host}{port}", dest, trunk.transport, request_user=number, trunk=trunk
    )


class RingEnd(enum.Enum):
    ANSWERED = "answered"
    REFUSED = "refused"  # every target refused or failed: `status` says the best why
    NO_ANSWER = "no_answer"  # the no-answer timer
    STOPPED = "stopped"  # the call ended or moved on while ringing


@dataclass(frozen=True, slots=True)
class RingResult:
    end: RingEnd
    leg: Leg | None = None
    status: int = 0


class Ringer:
    """Rings `targets` for `call` by `strategy`, for at most `timeout` seconds.

    Without a call it rings for the PBX itself (the operator's own phone, before the console
    dials for them): the offer is ours alone and no caller hears the ringing."""

    def __init__(
        self,
        call: Call | None,
        number: str,
        targets: list[Target],
        strategy: RingStrategy,
        timeout: float,
        *,
        media: MediaEndpoint,
        presented: Party,
        extension: tuple[int, str] | None,
        stack: SipSender,
        clock: Clock,
        events: EventSink,
        dialogs: DialogIndex,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.call = call
        self.headers = headers  # more for every INVITE (an auto-answer request)
        self.number = number
        self.targets = targets
        self.strategy = strategy
        self.timeout = timeout
        self.media = media
        self.presented = presented
        self.extension = extension
        self.stack = stack
        self.clock = clock
        self.events = events
        self.dialogs = dialogs
        self.forks: dict[int, Leg] = {}  # target index -> its leg
        self.best_failure = 0
        self._target_of: dict[int, int] = {}  # leg id -> target index
        self._result: asyncio.Future[RingResult] = asyncio.get_running_loop().create_future()
        self._no_answer: Timer | None = None
        self._step_timer: Timer | None = None
        self._applying = False

    @property
    def done(self) -> bool:
        return self._result.done()

    async def run(self) -> RingResult:
        """Ring until a target answers, all refuse, the timer expires or `stop()`."""
        self._no_answer = self.clock.call_later(self.timeout, self._expired)
        self._apply(self.strategy.start())
        return await self._result

    def stop(self) -> None:
        """Stop ringing everything (the caller gave up, the call is forwarded...)."""
        self._finish(RingResult(RingEnd.STOPPED))

    # --- steps -------------------------------------------------------------------------

    def _apply(self, step: RingStep) -> None:
        if self.done:
            return
        self._applying = True
        try:
            for index in step.stop:
                leg = self.forks.get(index)
                if leg is not None and leg.state in LIVE_RINGING:
                    leg.hangup()
            # A step that rings nothing and sets no timer (a stopped phone's 487) leaves the
            # current turn's timer alone.
            if self._step_timer is not None and (step.ring or step.timer is not None):
                self._step_timer.cancel()
                self._step_timer = None
            for index in step.ring:
                self._fork(index)
            if step.timer is not None:
                self._step_timer = self.clock.call_later(step.timer, self._step_expired)
        finally:
            self._applying = False
        self._check_exhausted()

    def _step_expired(self) -> None:
        self._step_timer = None
        step = self.strategy.timeout()
        if getattr(self.strategy, "exhausted", False):  # a hunt group's last turn is over
            self._finish(RingResult(RingEnd.NO_ANSWER, status=Status.UNAVAILABLE))
            return
        self._apply(step)

    def _expired(self) -> None:
        self._no_answer = None
        self._finish(RingResult(RingEnd.NO_ANSWER, status=Status.UNAVAILABLE))

    def _check_exhausted(self) -> None:
        if self.done or self._applying:
            return
        if not any(leg.state in LIVE_RINGING for leg in self.forks.values()):
            self._finish(RingResult(RingEnd.REFUSED, status=self.best_failure or 480))

    def _finish(self, result: RingResult) -> None:
        if self.done:
            return
        for timer in (self._no_answer, self._step_timer):
            if timer is not None:
                timer.cancel()
        self._no_answer = self._step_timer = None
        keep = result.leg
        for leg in self.forks.values():
            if leg is not keep and leg.state in LIVE_RINGING:
                leg.hangup()
        self._result.set_result(result)

    # --- the INVITEs -------------------------------------------------------------------

    def _fork(self, index: int) -> Leg:
        target = self.targets[index]
        stack = self.stack
        advertise = stack.advertise
        caller = self.presented
        from_uri = f"sip:{caller.number}@{advertise}"
        display = caller.name.replace('"', "") if caller.name else ""
        transport = target.transport
        headers = Headers(
            [
                ("Via", str(stack.via(transport))),
                ("Max-Forwards", "70"),
                (
                    "From",
                    f'"{display}" <{from_uri}>;tag={new_tag()}'
                    if display
                    else f"<{from_uri}>;tag={new_tag()}",
                ),
                ("To", f"<sip:{target.request_user or self.number}@{advertise}>"),
                ("Call-ID", new_call_id(advertise)),
                ("CSeq", "1 INVITE"),
                ("Contact", stack.contact(transport=transport)),
                ("Allow", ALLOW),
                ("User-Agent", "Centralino"),
                *self.headers,
                ("Content-Type", "application/sdp"),
            ]
        )
        leg_a = self.call.a if self.call is not None else None
        invite = Request(
            "INVITE", target.uri, headers, offer_for_callee(advertise, leg_a, self.media)
        )
        leg = Leg(
            stack,
            "uac",
            invite,
            target.dest,
            transport,
            self.media,
            label=self.number,
            events=self.events,
            device=target.device,
            owns_media=False,
            extension=(self.extension[0], target.member)
            if self.extension is not None and target.member
            else self.extension,
            sdp_version=2,  # our INVITE's offer was version 1
            trunk=target.trunk,
            call_id=self.call.id if self.call is not None else "",
        )
        self.forks[index] = leg
        self._target_of[leg.id] = index
        self._send(leg)
        return leg

    def _send(self, leg: Leg) -> None:
        self.stack.send_request(
            leg.invite, leg.peer, leg.transport, lambda response: self._response(leg, response)
        )

    # --- responses ---------------------------------------------------------------------

    def _response(self, leg: Leg, response: Response | None) -> None:
        if response is None:  # timer B: nobody there
            self._failed(leg, Status.REQUEST_TIMEOUT)
            return
        status = response.status
        if status < 200:
            if status > 100:
                leg.provisional_received(response.to_addr.tag)
                a = self.call.a if self.call is not None else None
                if not self.done and leg.state is LegState.RINGING and a and a.unanswered:
                    a.respond(180)
            return
        if status < 300:
            self._answered(leg, response)
            return
        if status in (401, 407) and self._retry_with_auth(leg, response):
            return
        self._failed(leg, status)

    def _answered(self, leg: Leg, response: Response) -> None:
        if leg.dialog is not None:
            return  # a retransmitted 2xx: the transaction layer re-sends our ACK itself
        if self.done or leg.state not in LIVE_RINGING:
            self._hang_up_late_answer(leg, response)
            return
        dialog = Dialog.from_uac(leg.invite, response)
        ack, _ = dialog.make_ack(leg.invite.cseq.number, via=self.stack.via(leg.transport))
        self.stack.send_ack(ack, leg.peer, leg.transport)
        leg.dialog = dialog
        self.dialogs.add(leg)  # indexed before it says it answered: the journal looks it up
        leg.move(LegState.ANSWERED)
        if not take_answer(leg, response.body):
            self.dialogs.remove(leg)
            leg.hangup()
            self._failed(leg, Status.NOT_ACCEPTABLE_HERE)
            return
        self._finish(RingResult(RingEnd.ANSWERED, leg=leg, status=response.status))

    def _hang_up_late_answer(self, leg: Leg, response: Response) -> None:
        """A phone answered after we gave up on it (its 200 crossed our CANCEL): ACK, BYE."""
        dialog = Dialog.from_uac(leg.invite, response)
        ack, _ = dialog.make_ack(leg.invite.cseq.number, via=self.stack.via(leg.transport))
        self.stack.send_ack(ack, leg.peer, leg.transport)
        leg.dialog = dialog
        if leg.state in (LegState.ENDING, LegState.CANCEL_PENDING):
            leg.move(LegState.ANSWERED)
            leg.hangup()
        else:  # already ended for us: only its dialog is left to close
            leg.send_in_dialog("BYE")
        log.info("late answer from %s hung up", leg.label)

    def _failed(self, leg: Leg, status: int) -> None:
        leg.finish()
        if self.done:
            return
        self.best_failure = better_failure(self.best_failure, status)
        index = self._target_of.get(leg.id)
        if index is not None:
            self._apply(self.strategy.refused(index))
        else:
            self._check_exhausted()

    def _retry_with_auth(self, leg: Leg, response: Response) -> bool:
        trunk = leg.trunk
        if (
            trunk is None
            or leg.auth_tries >= MAX_AUTH_TRIES
            or leg.state not in LIVE_RINGING
            or self.done
        ):
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
            leg.move(LegState.CALLING)
        self._send(leg)
        return True
