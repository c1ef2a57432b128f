"""The typed commands the engine takes from outside (the console, the API, the CLI).

`Engine.execute(command)` runs one on the engine's loop and returns a `Done` or raises
`OperationError` with a machine-readable code (`no_such_call`, `not_answered`, ...). The
commands name calls by id and sides by role, never SIP objects, so that they can travel as
Celery task arguments in the distributed mode.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pbx.engine.call import Call, CallState
from pbx.engine.calls import CallManager
from pbx.engine.legs import Leg
from pbx.engine.operations import CallOperations, OperationError


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


Command = Hangup | Hold | Resume | BlindTransfer | AttendedTransfer


@dataclass(frozen=True, slots=True)
class Done:
    call_id: str
    status: int = 200  # of a transfer: 200, or why the target did not answer


async def execute(calls: CallManager, operations: CallOperations, command: Command) -> Done:
    """Carry out `command`; raises OperationError when it cannot be done."""
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
