"""The typed commands the engine takes from outside (the console, the API, the CLI).

`Engine.execute(command)` runs one on the engine's loop and returns a `Done` or raises
`OperationError` with a machine-readable code (`no_such_call`, `not_answered`, ...). The
commands name calls by id and sides by role, never SIP objects, so that they can travel as
Celery task arguments in the distributed mode.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from pbx.engine.call import Call, CallState
from pbx.engine.calls import CallManager
from pbx.engine.legs import Leg
from pbx.engine.operations import CallOperations, OperationError
from pbx.engine.operator import Operator, OperatorDesk


class Side(enum.Enum):
    CALLER = "caller"  # leg A: who placed the call
    CALLEE = "callee"  # leg B: who answered it


@dataclass(frozen=True, slots=True)
class Hangup:
    call_id: str


@dataclass(frozen=True, slots=True)
class Hold:
    """`side` holds: the other side hears music."""

    call_id: str
    side: Side = Side.CALLEE


@dataclass(frozen=True, slots=True)
class Resume:
    call_id: str
    side: Side = Side.CALLEE


@dataclass(frozen=True, slots=True)
class BlindTransfer:
    """`side` sends the other side of the call to `number`, and leaves once it answers."""

    call_id: str
    number: str
    side: Side = Side.CALLEE


@dataclass(frozen=True, slots=True)
class AttendedTransfer:
    """`side` of `call_id` consulted the callee of `consult_call_id`: join the other side of
    the first call with that callee; the transferring user's two legs are hung up."""

    call_id: str
    consult_call_id: str
    side: Side = Side.CALLEE


class Action(enum.Enum):
    """What an operator's console (or the REST API on its behalf) asks (operator.py)."""

    ANSWER = "answer"
    REJECT = "reject"
    HOLD = "hold"
    RESUME = "resume"
    HANGUP = "hangup"
    TRANSFER = "transfer"  # blind: `number`
    ATTENDED_TRANSFER = "attended_transfer"  # join `call_id` with `consult_call_id`
    PARK = "park"  # into `slot`, or the first free one
    RETRIEVE = "retrieve"  # the call in `slot`
    DIAL = "dial"  # `number`


@dataclass(frozen=True, slots=True)
class Console:
    """A console's command, on behalf of the operator of `company_id` at `extension`.

    Plain values only, so that it travels as a Celery task's argument (`as_dict`)."""

    action: Action
    company_id: int
    extension: str
    call_id: str = ""
    number: str = ""
    consult_call_id: str = ""
    slot: int | None = None
    node: str = ""  # the telephony node that has the call (the web routes by it)

    def as_dict(self) -> dict[str, object]:
        return {
            "action": self.action.value,
            "company_id": self.company_id,
            "extension": self.extension,
            "call_id": self.call_id,
            "number": self.number,
            "consult_call_id": self.consult_call_id,
            "slot": self.slot,
            "node": self.node,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Console:
        return cls(**{**data, "action": Action(data["action"])})


Command = Hangup | Hold | Resume | BlindTransfer | AttendedTransfer | Console


@dataclass(frozen=True, slots=True)
class Done:
    call_id: str
    status: int = 200  # of a transfer: 200, or why the target did not answer
    slot: int | None = None  # of a park: where the call went


async def execute(
    calls: CallManager,
    operations: CallOperations,
    command: Command,
    desk: OperatorDesk | None = None,
) -> Done:
    """Carry out `command`; raises OperationError when it cannot be done."""
    if isinstance(command, Console):
        if desk is None:
            raise OperationError("not_allowed", "this engine has no operator desk")
        return await _console(desk, command)
    call = _call(calls, command.call_id)
    if isinstance(command, Hangup):
        operations.hangup(call, "hung up by command")
        return Done(call.id)
    if isinstance(command, Hold | Resume):
        if not call.talking:
            raise OperationError("not_answered", f"call {call.id} is not answered")
        leg = _leg(call, command.side)
        if isinstance(command, Hold):
            operations.hold(leg)
        else:
            operations.resume(leg)
        return Done(call.id)
    if isinstance(command, BlindTransfer):
        referrer = _leg(call, command.side)
        outcome = await operations.transfer_blind(call, referrer, command.number)
        if outcome.answered is None:
            return Done(call.id, outcome.status)
        calls.hangup_leg(referrer, "transferred")
        return Done(call.id)
    consult = _call(calls, command.consult_call_id)
    referrer = _leg(call, command.side)
    if consult.a is referrer or consult.state is not CallState.ANSWERED:
        raise OperationError("not_answered", "the consultation call is not answered")
    operations.join(call, referrer, consult.a)
    calls.hangup_leg(referrer, "transferred")
    calls.hangup_leg(consult.a, "transferred")
    return Done(call.id)


async def _console(desk: OperatorDesk, command: Console) -> Done:
    operator = Operator(command.company_id, command.extension)
    action = command.action
    if action is Action.ANSWER:
        call = await desk.answer(command.call_id, operator)
    elif action is Action.REJECT:
        call = desk.reject(command.call_id, operator)
    elif action is Action.HOLD:
        call = desk.hold(command.call_id, operator)
    elif action is Action.RESUME:
        call = desk.resume(command.call_id, operator)
    elif action is Action.HANGUP:
        call = desk.hangup(command.call_id, operator)
    elif action is Action.TRANSFER:
        call = await desk.transfer_blind(command.call_id, command.number, operator)
    elif action is Action.ATTENDED_TRANSFER:
        call = desk.transfer_attended(command.call_id, command.consult_call_id, operator)
    elif action is Action.PARK:
        call = desk.park(command.call_id, operator, command.slot)
        return Done(call.id, slot=call.park_slot)
    elif action is Action.RETRIEVE:
        if command.slot is None:
            raise OperationError("no_such_slot", "say which slot to retrieve")
        call = await desk.retrieve(command.slot, operator)
    else:
        call = await desk.dial(command.number, operator)
    return Done(call.id)


def _call(calls: CallManager, call_id: str) -> Call:
    call = calls.calls.get(call_id)
    if call is None:
        raise OperationError("no_such_call", f"no call {call_id}: it has ended or never was")
    return call


def _leg(call: Call, side: Side) -> Leg:
    leg = call.a if side is Side.CALLER else call.b
    if leg is None:
        raise OperationError("not_answered", f"call {call.id} has no {side.value} yet")
    return leg
