"""The operator's console at work in the engine (pbx/engine/operator.py): the queue, answering
by the operator's auto-answering phone, switching between calls, dialling, transfers, parking.

The office of tests/unit/fakes with an operator: extension 200 (device "op") and the
operator number 9. A second operator, 205, races the first. The SIP stack, the clock and the
media ports are fakes; the real phones do the same in tests/e2e.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pbx.engine.call import CallState
from pbx.engine.commands import Action, Console, execute
from pbx.engine.operations import OperationError
from pbx.engine.operator import PARK_SLOTS, Operator, OperatorDesk
from pbx.events import ConsoleFeed, apply
from tests.unit.fakes.directory import COMPANY, extension
from tests.unit.fakes.media import bridged
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.phones import Phone

OPERATOR = Operator(COMPANY, "200")
SECOND = Operator(COMPANY, "205")


def front_desk() -> tuple[Pbx, OperatorDesk]:
    pbx = office(extension("200", "Centralino", "op"), extension("205", "Reception 2", "op2"))
    pbx.directory.operator_numbers[COMPANY] = "9"
    pbx.directory.operators[COMPANY] = frozenset({"200", "205"})
    desk = OperatorDesk(pbx.calls, pbx.operations, pbx.directory, pbx.registrar)
    return pbx, desk


async def answered_by(pbx: Pbx, phone: Phone, work: Any) -> Any:
    """Run a desk command that rings `phone` (auto-answer) and let the phone answer."""
    task = asyncio.ensure_future(work)
    await pbx.settle()
    invite = phone.invite
    assert invite.headers.get("Call-Info", "").endswith("answer-after=0")
    await phone.answer()
    return await task


async def queued(pbx: Pbx, phone: Phone) -> str:
    call = await phone.dial("9")
    assert pbx.call(call.call_id).state is CallState.QUEUED
    return call.call_id


async def test_a_call_to_the_operator_number_waits_in_the_queue_hearing_ringing() -> None:
    pbx, desk = front_desk()
    carol = pbx.phone("carol")
    call = await carol.dial("9")
    assert call.statuses == [100, 180]
    assert [c.id for c in desk.queue(COMPANY)] == [call.call_id]
    assert desk.queue(COMPANY + 1) == []
    assert pbx.phone("op").received("INVITE") == []  # nothing rings until a console answers


async def test_answering_rings_the_operators_phone_to_answer_by_itself_and_bridges() -> None:
    pbx, desk = front_desk()
    carol, op = pbx.phone("carol"), pbx.phone("op")
    call_id = await queued(pbx, carol)

    call = await answered_by(pbx, op, desk.answer(call_id, OPERATOR))

    assert call.state is CallState.ANSWERED and call.operator == "200"
    assert bridged(pbx.media(carol), pbx.media(op))
    assert desk.queue(COMPANY) == []
    assert pbx.record(call_id)["answered_by"] == "op"


async def test_two_operators_answering_at_once_one_gets_it_the_other_is_told() -> None:
    pbx, desk = front_desk()
    carol, op = pbx.phone("carol"), pbx.phone("op")
    pbx.phone("op2")
    call_id = await queued(pbx, carol)

    first = asyncio.ensure_future(desk.answer(call_id, OPERATOR))
    second = asyncio.ensure_future(desk.answer(call_id, SECOND))
    await pbx.settle()
    await op.answer()
    await first
    with pytest.raises(OperationError) as raised:
        await second
    assert raised.value.code == "taken" and "200" in str(raised.value)
    assert pbx.phone("op2").received("INVITE") == []


async def test_an_operator_phone_that_is_not_registered_leaves_the_call_queued() -> None:
    pbx, desk = front_desk()
    call_id = await queued(pbx, pbx.phone("carol"))
    with pytest.raises(OperationError) as raised:
        await desk.answer(call_id, OPERATOR)  # op never registered
    assert raised.value.code == "phone_unreachable"
    assert pbx.call(call_id).state is CallState.QUEUED


async def test_an_operator_phone_that_refuses_puts_the_call_back_in_the_queue() -> None:
    pbx, desk = front_desk()
    op = pbx.phone("op")
    call_id = await queued(pbx, pbx.phone("carol"))
    task = asyncio.ensure_future(desk.answer(call_id, OPERATOR))
    await pbx.settle()
    await op.refuse(486)
    with pytest.raises(OperationError) as raised:
        await task
    assert raised.value.code == "phone_unreachable"
    call = pbx.call(call_id)
    assert call.state is CallState.QUEUED and call.operator == ""
    assert pbx.call_states(call_id)[-3:] == [
        CallState.ROUTING,
        CallState.RINGING,
        CallState.QUEUED,
    ]


async def test_the_operator_answers_on_the_phone_by_dialling_the_operator_number() -> None:
    pbx, desk = front_desk()
    carol, dave, op = pbx.phone("carol"), pbx.phone("dave"), pbx.phone("op")
    first = await queued(pbx, carol)
    await queued(pbx, dave)

    pickup = await op.dial("9")
    assert pickup.final.status == 200
    await pickup.ack()
    call = pbx.call(first)  # the call that waited longest
    assert call.state is CallState.ANSWERED and call.operator == "200"
    assert call.b is not None and call.b.extension == (COMPANY, "200")
    assert bridged(pbx.media(carol), call.b.media)
    assert [c.caller.number for c in desk.queue(COMPANY)] == ["204"]
    assert pbx.ended(pickup.call_id).reason == "picked up a queued call"
    desk.hold(first, OPERATOR)  # and the console drives it like any other
    assert pbx.media(carol).hears_music


async def test_an_operator_phone_dialling_the_empty_queue_hears_unavailable() -> None:
    pbx, _ = front_desk()
    pickup = await pbx.phone("op").dial("9")
    assert pickup.final.status == 480


async def test_a_colleague_dialling_the_operator_number_queues_not_picks_up() -> None:
    pbx, desk = front_desk()
    await queued(pbx, pbx.phone("carol"))
    await queued(pbx, pbx.phone("dave"))
    assert len(desk.queue(COMPANY)) == 2


async def test_rejecting_a_queued_call_tells_the_caller_busy() -> None:
    pbx, desk = front_desk()
    carol = pbx.phone("carol")
    call = await carol.dial("9")
    desk.reject(call.call_id, OPERATOR)
    await pbx.settle()
    assert call.statuses[-1] == 486
    with pytest.raises(OperationError) as raised:
        desk.reject(call.call_id, OPERATOR)
    assert raised.value.code == "no_such_call"


async def test_a_call_nobody_answers_leaves_the_queue_after_the_queue_timeout() -> None:
    pbx, desk = front_desk()
    call = await pbx.phone("carol").dial("9")
    await pbx.advance(pbx.calls.queue_timeout - 1)
    assert desk.queue(COMPANY)
    await pbx.advance(1)
    assert desk.queue(COMPANY) == []
    assert call.statuses[-1] == 480  # where voicemail will take it
    assert pbx.ended(call.call_id).reason == "nobody answered in the operator queue"


async def test_a_caller_who_hangs_up_in_the_queue_leaves_it() -> None:
    pbx, desk = front_desk()
    call = await pbx.phone("carol").dial("9")
    await call.cancel()
    assert desk.queue(COMPANY) == []
    assert pbx.ended(call.call_id).disposition.value == "cancelled"


async def test_another_companys_operator_cannot_touch_the_call() -> None:
    pbx, desk = front_desk()
    call_id = await queued(pbx, pbx.phone("carol"))
    stranger = Operator(COMPANY + 1, "200")
    with pytest.raises(OperationError) as raised:
        await desk.answer(call_id, stranger)
    assert raised.value.code == "no_such_call"
    with pytest.raises(OperationError):
        desk.reject(call_id, stranger)
    assert pbx.call(call_id).state is CallState.QUEUED


async def test_answering_a_second_call_holds_the_first_with_music() -> None:
    pbx, desk = front_desk()
    carol, dave, op = pbx.phone("carol"), pbx.phone("dave"), pbx.phone("op")
    first = await queued(pbx, carol)
    second = await queued(pbx, dave)
    await answered_by(pbx, op, desk.answer(first, OPERATOR))
    carol_side = pbx.media(carol)
    await answered_by(pbx, op, desk.answer(second, OPERATOR))

    assert carol_side.hears_music  # the first caller is held
    first_op_leg = pbx.call(first).b
    assert first_op_leg is not None and first_op_leg.media.source is None  # op no longer hears
    assert first_op_leg.remote_hold

    desk.resume(first, OPERATOR)  # click the first call: switch back
    assert bridged(carol_side, first_op_leg.media)
    assert pbx.media(dave).hears_music


async def test_dialling_rings_the_operators_phone_first_then_the_number() -> None:
    pbx, desk = front_desk()
    op, bob = pbx.phone("op"), pbx.phone("bob-desk")
    pbx.phone("bob-mobile")
    call = await answered_by(pbx, op, desk.dial("202", OPERATOR))

    assert call.state is CallState.RINGING and call.operator == "200"
    op_leg = call.a
    assert op_leg.media.music is desk.ringback  # the operator hears ringback
    await bob.answer()
    assert call.state is CallState.ANSWERED
    assert bridged(op_leg.media, pbx.media(bob))
    assert call.caller.number == "200"


@pytest.mark.parametrize(
    ("number", "code"),
    [("299", "no_such_number"), ("9", "no_such_number"), ("x1", "no_such_number")],
)
async def test_dialling_a_number_that_cannot_ring_is_refused_before_anything_rings(
    number: str, code: str
) -> None:
    pbx, desk = front_desk()
    op = pbx.phone("op")
    with pytest.raises(OperationError) as raised:
        await desk.dial(number, OPERATOR)
    assert raised.value.code == code
    assert op.received("INVITE") == []


async def test_dialling_a_busy_extension_says_target_busy() -> None:
    pbx, desk = front_desk()
    carol, dave = pbx.phone("carol"), pbx.phone("dave")
    await carol.dial("204")
    await dave.answer()
    with pytest.raises(OperationError) as raised:
        await desk.dial("204", OPERATOR)
    assert raised.value.code == "target_busy"


async def test_a_dialled_number_that_refuses_hangs_up_the_operators_phone() -> None:
    pbx, desk = front_desk()
    op, carol = pbx.phone("op"), pbx.phone("carol")
    call = await answered_by(pbx, op, desk.dial("203", OPERATOR))
    await carol.refuse(486)
    assert pbx.ended(call.id).disposition.value == "busy"
    assert "BYE" in op.got


async def test_park_and_retrieve_through_the_slots() -> None:
    pbx, desk = front_desk()
    carol, op = pbx.phone("carol"), pbx.phone("op")
    call_id = await queued(pbx, carol)
    await answered_by(pbx, op, desk.answer(call_id, OPERATOR))

    parked = desk.park(call_id, OPERATOR)
    await pbx.settle()
    assert parked.state is CallState.PARKED and parked.park_slot == 1
    assert "BYE" in op.got  # the operator's phone is free
    assert pbx.media(carol).hears_music
    assert desk.parked(COMPANY) == {1: parked}

    call = await answered_by(pbx, op, desk.retrieve(1, OPERATOR))
    assert call is parked and call.state is CallState.ANSWERED and call.park_slot is None
    assert bridged(pbx.media(carol), call.b.media)  # type: ignore[union-attr]
    assert desk.parked(COMPANY) == {}
    assert pbx.record(call_id)["answered_by"] == "op"  # answered once, by the first answer


async def test_parking_into_a_taken_or_missing_slot_is_refused_and_nothing_changes() -> None:
    pbx, desk = front_desk()
    carol, dave, op = pbx.phone("carol"), pbx.phone("dave"), pbx.phone("op")
    first = await queued(pbx, carol)
    second = await queued(pbx, dave)
    await answered_by(pbx, op, desk.answer(first, OPERATOR))
    desk.park(first, OPERATOR, slot=3)
    await answered_by(pbx, op, desk.answer(second, OPERATOR))

    for slot, code in ((3, "slot_taken"), (0, "no_such_slot"), (PARK_SLOTS + 1, "no_such_slot")):
        with pytest.raises(OperationError) as raised:
            desk.park(second, OPERATOR, slot=slot)
        assert raised.value.code == code
    assert pbx.call(second).state is CallState.ANSWERED
    with pytest.raises(OperationError) as raised:
        await desk.retrieve(5, OPERATOR)
    assert raised.value.code == "slot_empty"


async def test_a_parked_caller_who_hangs_up_frees_the_slot() -> None:
    pbx, desk = front_desk()
    carol, op = pbx.phone("carol"), pbx.phone("op")
    call_id = await queued(pbx, carol)
    await answered_by(pbx, op, desk.answer(call_id, OPERATOR))
    desk.park(call_id, OPERATOR, slot=2)
    await carol.hang_up()
    assert desk.parked(COMPANY) == {}
    assert pbx.ended(call_id).disposition.value == "answered"


async def test_attended_transfer_consults_then_joins_the_caller_with_the_target() -> None:
    pbx, desk = front_desk()
    carol, op, dave = pbx.phone("carol"), pbx.phone("op"), pbx.phone("dave")
    call_id = await queued(pbx, carol)
    await answered_by(pbx, op, desk.answer(call_id, OPERATOR))
    consult = await answered_by(pbx, op, desk.dial("204", OPERATOR))
    assert pbx.media(carol).hears_music  # held while the operator consults
    await dave.answer()

    desk.transfer_attended(call_id, consult.id, OPERATOR)
    await pbx.settle()
    assert bridged(pbx.media(carol), pbx.media(dave))
    assert op.got.count("BYE") == 2  # both of the operator's legs
    assert pbx.call(call_id).operator == ""  # out of the operator's areas
    assert pbx.call_states(call_id)[-1] is CallState.ANSWERED


async def test_blind_transfer_sends_the_caller_on_and_frees_the_operator() -> None:
    pbx, desk = front_desk()
    carol, op, dave = pbx.phone("carol"), pbx.phone("op"), pbx.phone("dave")
    call_id = await queued(pbx, carol)
    await answered_by(pbx, op, desk.answer(call_id, OPERATOR))

    await desk.transfer_blind(call_id, "204", OPERATOR)
    await pbx.settle()
    assert pbx.media(carol).hears_music  # while the target rings
    await dave.answer()
    assert bridged(pbx.media(carol), pbx.media(dave))
    assert "BYE" in op.got


async def test_the_console_commands_carry_out_the_same_and_say_why_not() -> None:
    pbx, desk = front_desk()
    carol, op = pbx.phone("carol"), pbx.phone("op")
    call_id = await queued(pbx, carol)

    def command(action: Action, **fields: Any) -> Console:
        sent = Console(action, COMPANY, "200", **fields)
        assert Console.from_dict(sent.as_dict()) == sent  # travels as plain values
        return sent

    run = execute(pbx.calls, pbx.operations, command(Action.ANSWER, call_id=call_id), desk)
    done = await answered_by(pbx, op, run)
    assert done.call_id == call_id
    done = await execute(pbx.calls, pbx.operations, command(Action.PARK, call_id=call_id), desk)
    assert done.slot == 1
    with pytest.raises(OperationError) as raised:
        await execute(pbx.calls, pbx.operations, command(Action.HOLD, call_id="gone"), desk)
    assert raised.value.code == "no_such_call"


async def test_the_console_feed_shows_queue_hold_and_parking_as_a_fresh_snapshot() -> None:
    pbx, desk = front_desk()
    clock = iter(range(1000, 2000))
    feed = ConsoleFeed(wall=lambda: float(next(clock)))
    messages: list[dict[str, Any]] = []
    feed.publish = lambda company, message: messages.append(message)
    pbx.events.subscribe(feed.on_event)
    carol, dave, op = pbx.phone("carol"), pbx.phone("dave"), pbx.phone("op")
    first = await queued(pbx, carol)
    second = await queued(pbx, dave)
    await answered_by(pbx, op, desk.answer(first, OPERATOR))
    await answered_by(pbx, op, desk.answer(second, OPERATOR))
    snapshot = feed.snapshot(COMPANY)
    assert snapshot["calls"][first]["held"] and snapshot["calls"][first]["held_since"]
    assert not snapshot["calls"][second]["held"]
    desk.park(first, OPERATOR, slot=4)
    await pbx.settle()

    built = {"v": 1, "node": "", "seq": 0, "calls": {}, "extensions": {}, "registered": []}
    for message in messages:
        built = apply(built, message)
    fresh = feed.snapshot(COMPANY)
    assert built == fresh
    parked = fresh["calls"][first]
    assert (parked["state"], parked["park_slot"], parked["operator"]) == ("parked", 4, "")
    assert not parked["held"]  # the operator who held it has left the call
    assert fresh["calls"][second]["operator"] == "200"
    assert fresh["extensions"]["200"] == "talking"
