"""A caller transferred to a Multiselection, by the console or by a phone: the menu answers,
whoever transferred is freed at once, and the caller walks the menu as one who dialled it.
What the menu then does with the caller (a key to nobody, hanging up) ends the call cleanly:
the caller is the PBX's from the moment the menu answered, never left in silence."""

from __future__ import annotations

from pbx.engine.call import CallState
from pbx.engine.operator import Operator, OperatorDesk
from tests.unit.fakes.directory import COMPANY, extension
from tests.unit.fakes.media import bridged
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.phones import Phone
from tests.unit.test_attendant import ANNOUNCEMENT, RECEPTION, press, reception

OPERATOR = Operator(COMPANY, "200")


def office_with_reception() -> tuple[Pbx, OperatorDesk]:
    """The office, an operator (200, phone "op") and the Multiselection 800 in its day menu
    (key 1: Bob, key 4: Carol, who has no phone here unless a test gives her one)."""
    pbx = office(extension("200", "Centralino", "op"), extension("202", "Bob", "bob"))
    pbx.directory.operator_numbers[COMPANY] = "9"
    info = reception()
    pbx.directory.attendants[(COMPANY, RECEPTION)] = info
    for m in info.menus:
        pbx.prompts.add(m.announcement, ANNOUNCEMENT)
    return pbx, OperatorDesk(pbx.calls, pbx.operations, pbx.directory, pbx.registrar)


async def operator_sends_alice_to_the_menu(pbx: Pbx, desk: OperatorDesk) -> tuple[Phone, str]:
    """Alice called the operator, who answered and sent her to 800 ("senza annuncio")."""
    alice, op = pbx.phone("alice"), pbx.phone("op")
    await alice.dial("9")
    [waiting] = desk.queue(COMPANY)
    answering = pbx.calls.tasks.spawn(desk.answer(waiting.id, OPERATOR))
    await pbx.settle()
    await op.answer()
    await answering
    await desk.transfer_blind(waiting.id, RECEPTION, OPERATOR)
    await pbx.settle()
    [menu_call] = [c for c in pbx.calls.calls.values() if c.dialled == RECEPTION]
    return alice, menu_call.id


async def test_the_operator_sends_a_caller_to_the_menu_and_is_freed_at_once() -> None:
    pbx, desk = office_with_reception()
    alice, menu_call = await operator_sends_alice_to_the_menu(pbx, desk)

    assert pbx.call(menu_call).state is CallState.ATTENDANT
    assert pbx.played(alice)[-1] == "day.wav"  # the menu, no longer the music on hold
    assert pbx.phone("op").got[-1] == "BYE"  # the operator's phone is free for the next call
    assert desk.queue(COMPANY) == []

    bob = pbx.phone("bob")
    await press(pbx, alice, "1")
    await bob.answer()
    assert bridged(pbx.media(alice), pbx.media(bob))
    assert pbx.record(menu_call)["answered_by"] == "bob"


async def test_a_phone_transfers_its_caller_to_the_menu() -> None:
    pbx, _ = office_with_reception()
    alice, bob = pbx.phone("alice"), pbx.phone("bob")
    await alice.dial("202")
    await bob.answer()

    reply = await bob.refer(RECEPTION)

    assert reply is not None and reply.status == 202
    assert bob.notified()[-1] == 200  # the transfer succeeded: the menu answered
    assert pbx.played(alice)[-1] == "day.wav"
    [menu_call] = [c for c in pbx.calls.calls.values() if c.dialled == RECEPTION]
    assert pbx.call(menu_call.id).state is CallState.ATTENDANT


async def test_a_key_to_a_number_nobody_answers_hangs_the_transferred_caller_up() -> None:
    pbx, desk = office_with_reception()
    alice, menu_call = await operator_sends_alice_to_the_menu(pbx, desk)

    await press(pbx, alice, "4")  # Carol: no phone, no mailbox

    assert alice.got[-1] == "BYE"  # not left in silence on a call nobody has
    assert pbx.call_states(menu_call)[-1] is CallState.ENDED
    assert pbx.record(menu_call)["disposition"] == "answered"  # the menu had answered it
    assert pbx.attendants.sessions == {} and pbx.ports.open == []
    await pbx.advance(pbx.calls.queue_timeout)  # the operator queue's own timer, long moot
    assert pbx.clock.next_due() is None


async def test_a_transferred_caller_who_hangs_up_in_the_menu_leaves_nothing() -> None:
    pbx, desk = office_with_reception()
    alice, menu_call = await operator_sends_alice_to_the_menu(pbx, desk)

    await alice.hang_up()

    assert pbx.call_states(menu_call)[-1] is CallState.ENDED
    assert pbx.attendants.sessions == {} and pbx.calls.calls == {}
    assert pbx.ports.open == []
    await pbx.advance(pbx.calls.queue_timeout)  # the operator queue's own timer, long moot
    assert pbx.clock.next_due() is None
