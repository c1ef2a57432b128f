"""The operator's console at work: the queue, answering for the operator's phone, hold and
switching, dialling, transfers and parking.

The operator talks on a SIP phone of their extension; the console drives it by third-party
call control. Answering a queued call rings that phone with an auto-answer request and bridges
the caller to it; dialling rings it first, then places the call from it (ringback meanwhile).
Each call the operator handles has its own dialog with their phone, and the engine holds and
resumes by switching media: a held caller hears music and the operator no longer hears them.
Taking or making a call holds the one the operator was on (SPEC B1).

Parking (SPEC B4): ten slots per company, held here; a parked call keeps its caller's leg
alone with music, and retrieving it rings the retriever's phone like an answer. A call can
only be touched by an operator of its own company; anything else is `no_such_call`, so that
nobody learns of other companies' calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pbx.engine.call import Call, CallKind, CallState
from pbx.engine.calls import CallManager
from pbx.engine.directory import Directory
from pbx.engine.hunt import RingAll
from pbx.engine.legs import Leg
from pbx.engine.media import NoFreePort
from pbx.engine.operations import CallOperations, OperationError
from pbx.engine.ring_plan import auto_answer_headers
from pbx.engine.ringer import RingEnd, Ringer, member_targets
from pbx.engine.routing import Member, Party, Route, Unavailable
from pbx.engine.services import Contacts
from pbx.media.tone import ringback

log = logging.getLogger(__name__)

PARK_SLOTS = 10
OPERATOR_RING_SECONDS = 15.0  # an auto-answering phone answers at once; a ringing one may not


@dataclass(frozen=True, slots=True)
class Operator:
    """Who acts: an operator of `company_id`, whose phone is the extension `extension`."""

    company_id: int
    extension: str


class OperatorDesk:
    """What the consoles of every company do with calls (the commands in commands.py)."""

    def __init__(
        self,
        calls: CallManager,
        operations: CallOperations,
        directory: Directory,
        contacts: Contacts,
    ) -> None:
        self.calls = calls
        self.operations = operations
        self.directory = directory
        self.contacts = contacts
        self.ringback = ringback()

    # --- reading -----------------------------------------------------------------------------

    def queue(self, company_id: int) -> list[Call]:
        """The company's calls waiting for an operator, oldest first."""
        return [
            c
            for c in self.calls.calls.values()
            if c.state is CallState.QUEUED and c.caller.company_id == company_id
        ]

    def parked(self, company_id: int) -> dict[int, Call]:
        """The company's parked calls by slot (1 to PARK_SLOTS)."""
        return {
            c.park_slot: c
            for c in self.calls.calls.values()
            if c.state is CallState.PARKED
            and c.park_slot is not None
            and c.caller.company_id == company_id
        }

    # --- the queue ---------------------------------------------------------------------------

    async def answer(self, call_id: str, operator: Operator) -> Call:
        """Take a queued call: the operator's phone is rung to answer by itself and bridged.

        Raises:
            OperationError: `no_such_call`; `taken` (another operator was first);
                `phone_unreachable` (the operator's phone is not registered or did not answer).
        """
        call = self._call(call_id, operator)
        if call.state is not CallState.QUEUED:
            raise _taken(call)
        route = await self._operator_route(operator)
        if call.state is not CallState.QUEUED:  # taken or gone while we looked
            raise _taken(call)
        call.operator = operator.extension
        await self._ring_in(call, route, operator, CallState.QUEUED, lambda: None)
        return call

    def reject(self, call_id: str, operator: Operator) -> Call:
        """Refuse a queued call: it goes where an unanswered call goes (busy, for now)."""
        call = self._call(call_id, operator)
        if call.state is not CallState.QUEUED:
            raise _taken(call)
        self.calls.unavailable(call, "rejected by the operator", 486)
        return call

    # --- the operator's own calls ---------------------------------------------------------------

    def hold(self, call_id: str, operator: Operator) -> Call:
        call = self._call(call_id, operator)
        leg = self._operator_leg(call, operator)
        self._hold(call, leg)
        return call

    def resume(self, call_id: str, operator: Operator) -> Call:
        """Take back a held call; the one the operator was on is held (switching)."""
        call = self._call(call_id, operator)
        leg = self._operator_leg(call, operator)
        self._hold_current(operator, keep=call)
        other = call.other(leg)
        if leg.remote_hold:
            self.operations.resume(leg)
        if other is not None:
            leg.media.listen_to(other.media)
        return call

    def hangup(self, call_id: str, operator: Operator) -> Call:
        call = self._call(call_id, operator)
        self.calls.hangup_call(call, "hung up by the operator")
        return call

    async def dial(self, number: str, operator: Operator) -> Call:
        """Call `number` from the operator's phone: it is rung to answer by itself first,
        and hears ringback while the number rings.

        Raises:
            OperationError: `no_such_number`, `target_busy`, `target_unavailable` (checked
                before anything rings), `phone_unreachable`.
        """
        await self._check_target(number, operator)
        route = await self._operator_route(operator)
        self._hold_current(operator)
        leg = await self._ring_operator(route)
        ext = await self.directory.extension(operator.company_id, operator.extension)
        party = Party(
            operator.company_id, operator.extension, ext.display_name if ext else "", leg.device
        )
        call = self.calls.place(leg, party, number, operator=operator.extension, outgoing=True)
        leg.media.play(self.ringback)
        self.calls.tasks.spawn(self._end_with_failure(call, leg))
        return call

    async def _end_with_failure(self, call: Call, leg: Leg) -> None:
        """A dialled number that does not answer leaves the operator's phone alone: hang up."""
        outcome = await call.outcome
        if outcome.answered is None and not leg.ended and self.calls.call_of(leg) is None:
            self.calls.dialogs.remove(leg)
            leg.hangup()

    async def transfer_blind(self, call_id: str, number: str, operator: Operator) -> Call:
        """Send the other party to `number` ("senza annuncio"). The transfer goes on after
        this returns; if the number does not answer, the call comes back to the operator."""
        call = self._call(call_id, operator)
        leg = self._operator_leg(call, operator)
        await self._check_target(number, operator)
        if call.state is not CallState.ANSWERED or call.other(leg) is None:
            raise OperationError("not_answered", "the call is not answered")
        self.calls.tasks.spawn(self._blind(call, leg, number))
        return call

    async def _blind(self, call: Call, leg: Leg, number: str) -> None:
        outcome = await self.operations.transfer_blind(call, leg, number)
        if outcome.answered is not None:
            self.calls.hangup_leg(leg, "transferred")

    def transfer_attended(self, call_id: str, consult_id: str, operator: Operator) -> Call:
        """Join the party of `call_id` with whoever answered the operator's consultation
        call `consult_id` ("con annuncio"); the operator's two legs are hung up."""
        call = self._call(call_id, operator)
        consult = self._call(consult_id, operator)
        leg = self._operator_leg(call, operator)
        consulting = self._operator_leg(consult, operator)
        if consult.state is not CallState.ANSWERED or consult.other(consulting) is None:
            raise OperationError("not_answered", "the consultation call is not answered yet")
        self.operations.join(call, leg, consulting)
        self.calls.hangup_leg(leg, "transferred")
        self.calls.hangup_leg(consulting, "transferred")
        call.operator = ""  # the operator is out of it: it leaves the console's areas
        call.changed("transferred by the operator")
        return call

    # --- parking -----------------------------------------------------------------------------

    def park(self, call_id: str, operator: Operator, slot: int | None = None) -> Call:
        """Leave the call in `slot` (the first free one when None); the caller hears music
        and the operator's phone is free.

        Raises:
            OperationError: `no_such_slot`, `slot_taken`, `parking_full`, `not_answered`.
        """
        call = self._call(call_id, operator)
        leg = self._operator_leg(call, operator)
        taken = self.parked(operator.company_id)
        if slot is None:
            slot = next((n for n in range(1, PARK_SLOTS + 1) if n not in taken), None)
            if slot is None:
                raise OperationError("parking_full", f"all {PARK_SLOTS} parking slots are taken")
        elif not 1 <= slot <= PARK_SLOTS:
            raise OperationError("no_such_slot", f"parking slots are 1 to {PARK_SLOTS}")
        elif slot in taken:
            raise OperationError("slot_taken", f"parking slot {slot} is taken")
        other = call.other(leg)
        if call.state is not CallState.ANSWERED or other is None:
            raise OperationError("not_answered", "only a call in conversation can be parked")
        self.calls.detach(call, leg)
        self.calls.hangup_leg(leg, "parked")
        other.media.play(self.operations.moh)
        call.park_slot = slot
        call.operator = ""
        call.move(CallState.PARKED)
        log.info("call %s parked in slot %d by %s", call.id[:8], slot, operator.extension)
        return call

    async def retrieve(self, slot: int, operator: Operator) -> Call:
        """Take the call parked in `slot` ("Intercetta"): the operator's phone answers it.

        Raises:
            OperationError: `slot_empty`, `taken`, `phone_unreachable`.
        """
        route = await self._operator_route(operator)
        call = self.parked(operator.company_id).get(slot)
        if call is None:
            raise OperationError("slot_empty", f"nothing is parked in slot {slot}")
        call.operator, call.park_slot, call.outgoing = operator.extension, None, True

        def back() -> None:
            call.park_slot, call.outgoing = slot, False

        await self._ring_in(call, route, operator, CallState.PARKED, back)
        return call

    async def _ring_in(
        self,
        call: Call,
        route: Route,
        operator: Operator,
        back: CallState,
        restore: Callable[[], None],
    ) -> None:
        """Bring a waiting call (queued, parked) to the operator's phone, holding the call
        they were on; if the phone does not answer, the call goes `back` as it was."""
        self._hold_current(operator, keep=call)

        def undo() -> None:
            call.operator = ""
            restore()

        result = await self.calls.connect(call, route, back, undo)
        if result is None:
            raise OperationError("no_such_call", "the caller hung up")
        if result.end is not RingEnd.ANSWERED:
            raise _no_answer(operator, result.status)

    # --- helpers -----------------------------------------------------------------------------

    def _call(self, call_id: str, operator: Operator) -> Call:
        call = self.calls.calls.get(call_id)
        if call is None or call.caller.company_id != operator.company_id:
            raise OperationError("no_such_call", "the call has ended or never was")
        return call

    def _operator_leg(self, call: Call, operator: Operator) -> Leg:
        key = (operator.company_id, operator.extension)
        for leg in (call.a, call.b):
            if leg is not None and leg.extension == key and not leg.ended:
                return leg
        raise OperationError("not_yours", "the operator's phone is not in this call")

    def _hold(self, call: Call, leg: Leg) -> None:
        if call.state is not CallState.ANSWERED:
            raise OperationError("not_answered", "the call is not answered")
        if not leg.remote_hold:
            self.operations.hold(leg)
        leg.media.listen_to(None)  # the operator no longer hears the held party

    def _hold_current(self, operator: Operator, keep: Call | None = None) -> None:
        """Hold every call the operator is talking on, but `keep`."""
        key = (operator.company_id, operator.extension)
        for call in list(self.calls.calls.values()):
            if call is keep or call.state is not CallState.ANSWERED:
                continue
            for leg in (call.a, call.b):
                if leg is not None and leg.extension == key and not leg.remote_hold:
                    self._hold(call, leg)

    async def _operator_route(self, operator: Operator) -> Route:
        """What rings the operator's phone for the console: every registered device of their
        extension at once, asked to answer by itself."""
        ext = await self.directory.extension(operator.company_id, operator.extension)
        if ext is None:
            raise OperationError("no_extension", "the operator has no extension")
        members = (Member(ext.number, ext.devices),)
        if not member_targets(members, self.contacts, self.calls.stack):
            raise OperationError(
                "phone_unreachable", f"no phone of extension {ext.number} is registered"
            )
        return Route(
            number=ext.number,
            members=members,
            timeout=OPERATOR_RING_SECONDS,
            extension_key=(ext.company_id, ext.number),
            auto_answer=True,
        )

    async def _ring_operator(self, route: Route) -> Leg:
        """Ring the operator's phone for a call the console makes; the leg that answered."""
        calls = self.calls
        try:
            media = await calls.media.allocate()
        except NoFreePort as error:
            raise OperationError("no_media_port", "no media port is free") from error
        targets = member_targets(route.members, self.contacts, calls.stack)
        ringer = Ringer(
            None,
            route.number,
            targets,
            RingAll(len(targets)),
            route.timeout,
            media=media,
            presented=Party(0, "centralino", "Centralino"),
            extension=route.extension_key,
            stack=calls.stack,
            clock=calls.clock,
            events=calls.events,
            dialogs=calls.dialogs,
            headers=auto_answer_headers(calls.advertise),
        )
        result = await ringer.run()
        if result.end is not RingEnd.ANSWERED or result.leg is None:
            media.close()
            raise OperationError(
                "phone_unreachable", f"the operator's phone did not answer ({result.status})"
            )
        result.leg.owns_media = True
        return result.leg

    async def _check_target(self, number: str, operator: Operator) -> None:
        """Refuse at once a number that cannot ring, with the reason."""
        route = await self.calls.router.route(
            Party(operator.company_id, operator.extension), number
        )
        if isinstance(route, Unavailable):
            code = {404: "no_such_number", 486: "target_busy"}.get(
                route.status, "target_unavailable"
            )
            raise OperationError(code, f"{number}: {route.reason}")
        if route.operator:
            raise OperationError("no_such_number", f"{number} is the operator's own number")


def _taken(call: Call) -> OperationError:
    if call.state is CallState.ENDED:
        return OperationError("no_such_call", "the caller hung up")
    if call.kind is CallKind.NEW and call.operator:
        return OperationError("taken", f"operator {call.operator} took the call first")
    return OperationError("taken", f"the call is {call.state.value}, no longer waiting")


def _no_answer(operator: Operator, status: int) -> OperationError:
    return OperationError(
        "phone_unreachable",
        f"the phone of extension {operator.extension} did not answer ({status})",
    )
