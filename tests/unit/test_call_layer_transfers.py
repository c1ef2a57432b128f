"""Transfers: blind (REFER), attended (REFER with Replaces), semi-attended, and by command.

Alice (201) calls Bob (202, one desk phone here), who answers and transfers her to Carol (203).
The SIP stack, the clock and the media ports are fakes (tests/unit/fakes/).
"""

from __future__ import annotations

import asyncio

import pytest

from pbx.engine.call import CallState, Disposition
from pbx.engine.commands import AttendedTransfer, BlindTransfer, Done, Hold, Side, execute
from pbx.engine.events import ExtensionState
from pbx.engine.operations import HANG_UP_REFERRER_AFTER
from pbx.sip.uri import SipUri
from tests.unit.fakes.directory import COMPANY, extension
from tests.unit.fakes.media import bridged
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.phones import Dialled, Phone
from tests.unit.fakes.sip import ADVERTISE

ROUTING, RINGING, ANSWERED, TRANSFERRING, ENDED = (
    CallState.ROUTING,
    CallState.RINGING,
    CallState.ANSWERED,
    CallState.TRANSFERRING,
    CallState.ENDED,
)


async def alice_talks_to_bob() -> tuple[Pbx, Phone, Phone, Phone, Dialled]:
    """Alice called Bob, who answered; Carol waits by her phone."""
    pbx = office(extension("202", "Bob", "bob"))
    alice, bob, carol = pbx.phone("alice"), pbx.phone("bob"), pbx.phone("carol")
    call = await alice.dial("202")
    await bob.answer()
    assert pbx.call(call.call_id).state is ANSWERED
    return pbx, alice, bob, carol, call


def final_notify_state(phone: Phone) -> str:
    return phone.received("NOTIFY")[-1].headers.get("Subscription-State") or ""


# --- blind transfer --------------------------------------------------------------------------


async def test_a_blind_transfer_puts_the_transferee_through_to_the_target() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()

    reply = await bob.refer("203")
    assert reply is not None and reply.status == 202
    assert bob.notified() == [100]
    assert carol.got == ["INVITE"]
    assert carol.invite.from_addr.uri.user == "201"  # Carol sees who is transferred to her
    assert pbx.media(alice).hears_music
    assert pbx.call(call.call_id).state is TRANSFERRING

    await carol.ring()
    await carol.answer()
    assert bridged(pbx.media(alice), pbx.media(carol))
    assert bob.notified() == [100, 200]
    assert final_notify_state(bob).startswith("terminated")
    assert call.statuses == [100, 200]  # nothing more for Alice: her dialog stays as it was

    await pbx.advance(HANG_UP_REFERRER_AFTER)  # Bob did not hang up: we do it for him
    assert bob.got[-1] == "BYE"
    assert "BYE" not in alice.got
    first, second = pbx.call_ids()
    assert pbx.call_states(first) == [ROUTING, RINGING, ANSWERED, TRANSFERRING, ENDED]
    assert pbx.record(first)["disposition"] == "answered"
    assert pbx.record(first)["reason"] == "transferred"
    assert pbx.call_states(second) == [ROUTING, RINGING, ANSWERED]
    assert pbx.record(second) == {
        "direction": "internal",
        "caller": "201",
        "callee": "203",
        "disposition": "in_progress",
        "answered_by": "carol",
    }


async def test_the_caller_can_transfer_the_callee_who_is_presented_as_himself() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    await alice.refer("203")
    assert pbx.media(bob).hears_music
    assert carol.invite.from_addr.uri.user == "202"

    await carol.answer()
    assert bridged(pbx.media(bob), pbx.media(carol))
    assert alice.notified() == [100, 200]
    assert pbx.record(pbx.call_ids()[1])["caller"] == "202"


async def test_a_referrer_that_hangs_up_after_the_notify_is_not_hung_up_again() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    await bob.refer("203")
    await carol.answer()
    reply = await bob.hang_up()
    assert reply is not None and reply.status == 200

    await pbx.advance(HANG_UP_REFERRER_AFTER)
    assert bob.got.count("BYE") == 0
    assert bridged(pbx.media(alice), pbx.media(carol))
    assert pbx.record(call.call_id)["reason"] == "bye"


async def test_a_referrer_that_hangs_up_at_once_leaves_the_transfer_going() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    await bob.refer("203")
    await bob.hang_up()  # many phones leave right after the 202
    assert pbx.call_states(call.call_id)[-1] is ENDED
    assert pbx.media(alice).hears_music

    await carol.answer()
    assert bridged(pbx.media(alice), pbx.media(carol))
    assert "BYE" not in alice.got


async def test_a_blind_transfer_to_a_busy_target_gives_the_transferee_back() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    await bob.refer("203")
    await carol.refuse(486)

    assert bob.notified() == [100, 486]
    assert bridged(pbx.media(alice), pbx.media(bob))
    assert pbx.call_states(call.call_id) == [ROUTING, RINGING, ANSWERED, TRANSFERRING, ANSWERED]
    second = pbx.call_ids()[1]
    assert pbx.call_states(second) == [ROUTING, RINGING, ENDED]
    assert pbx.ended(second).disposition is Disposition.BUSY

    await pbx.advance(HANG_UP_REFERRER_AFTER)
    assert "BYE" not in bob.got
    assert "BYE" not in alice.got


@pytest.mark.parametrize(("number", "status"), [("299", 404), ("204", 480)])
async def test_a_blind_transfer_to_a_number_that_cannot_ring_gives_the_transferee_back(
    number: str, status: int
) -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    pbx.phone("dave", registered=False)
    await bob.refer(number)
    assert bob.notified() == [100, status]
    assert bridged(pbx.media(alice), pbx.media(bob))


async def test_a_transferee_given_back_to_a_referrer_that_holds_it_hears_music_again() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    await bob.hold()  # phones hold before they transfer
    await bob.refer("203")
    await carol.refuse(486)
    assert pbx.media(alice).hears_music


async def test_after_a_failed_transfer_the_caller_is_still_the_callers_side() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    await bob.refer("203")
    await carol.refuse(486)

    await execute(pbx.calls, pbx.operations, Hold(call.call_id, side=Side.CALLER))
    assert pbx.media(bob).hears_music  # Alice, the caller, holds: Bob hears the music


async def test_a_transferee_hanging_up_while_the_target_rings_ends_the_transfer_with_487() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    await bob.refer("203")
    await carol.ring()

    reply = await alice.hang_up()
    assert reply is not None and reply.status == 200
    assert carol.got == ["INVITE", "CANCEL"]
    assert bob.notified() == [100, 487]
    second = pbx.call_ids()[1]
    assert pbx.ended(second).disposition is Disposition.CANCELLED

    await pbx.advance(HANG_UP_REFERRER_AFTER)  # nobody left for Bob to talk to
    assert bob.got[-1] == "BYE"
    assert pbx.call_states(call.call_id)[-1] is ENDED
    await carol.refuse(487)
    assert pbx.ports.open == []


async def test_when_the_referrer_left_and_the_target_is_busy_the_transferee_is_hung_up() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    await bob.refer("203")
    await bob.hang_up()
    await carol.refuse(486)

    assert alice.got[-1] == "BYE"
    assert pbx.ports.open == []
    assert pbx.presence.snapshot() == {}


async def test_a_second_refer_during_a_transfer_is_declined() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    await bob.refer("203")
    reply = await bob.refer("204")
    assert reply is not None and reply.status == 603
    assert len(pbx.call_ids()) == 2


@pytest.mark.parametrize("refer_to", ["<tel:+390212345678>", "<sip:", None])
async def test_a_refer_without_a_usable_refer_to_gets_400(refer_to: str | None) -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    headers = (("Refer-To", refer_to),) if refer_to is not None else ()
    reply = await bob.send("REFER", headers=headers)
    assert reply is not None and reply.status == 400
    assert pbx.call(call.call_id).state is ANSWERED


# --- attended and semi-attended transfers ----------------------------------------------------


async def test_an_attended_transfer_joins_the_transferee_and_the_target() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    to_alice = bob.invite.call_id
    await bob.hold(to_alice)
    assert pbx.media(alice).hears_music
    consult = await bob.dial("203")
    await carol.answer()

    reply = await bob.refer("203", to_alice, replaces=bob.replaces(consult.sip_call_id))
    assert reply is not None and reply.status == 202
    assert bob.notified(to_alice) == [100, 200]
    assert bridged(pbx.media(alice), pbx.media(carol))
    assert carol.got == ["INVITE", "ACK"]  # Carol's dialog stays as it was
    first, second = pbx.call_ids()
    assert pbx.call_states(second) == [ROUTING, RINGING, ANSWERED, TRANSFERRING]

    await pbx.advance(HANG_UP_REFERRER_AFTER)
    assert {r.call_id for r in bob.received("BYE")} == {to_alice, consult.sip_call_id}
    assert pbx.call_states(second)[-1] is ENDED
    assert pbx.call(first).state is ANSWERED
    assert pbx.presence.state(COMPANY, "202") is ExtensionState.IDLE

    await carol.hang_up()  # Alice and Carol are now one call
    assert alice.got[-1] == "BYE"
    assert pbx.call_states(first)[-1] is ENDED
    assert pbx.ports.open == []


async def test_a_replaces_spelled_in_lower_case_is_still_an_attended_transfer() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    to_alice = bob.invite.call_id
    consult = await bob.dial("203")
    await carol.answer()
    replaces = bob.replaces(consult.sip_call_id)
    target = SipUri("sip", "203", None, ADVERTISE, None, {}, {"replaces": replaces})

    await bob.send("REFER", to_alice, headers=(("Refer-To", f"<{target}>"),))
    assert bob.notified(to_alice) == [100, 200]


async def test_an_attended_transfer_naming_an_unknown_dialog_is_reported_481() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    reply = await bob.refer("203", replaces="nope@nowhere;to-tag=a;from-tag=b")
    assert reply is not None and reply.status == 202
    assert bob.notified() == [100, 481]
    assert pbx.call(call.call_id).state is ANSWERED

    await pbx.advance(HANG_UP_REFERRER_AFTER)
    assert "BYE" not in bob.got


async def test_a_semi_attended_transfer_hands_the_ringing_consultation_to_the_transferee() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    to_alice = bob.invite.call_id
    consult = await bob.dial("203")
    await carol.ring()

    reply = await bob.refer("203", to_alice, replaces=bob.replaces(consult.sip_call_id))
    assert reply is not None and reply.status == 202
    assert consult.statuses == [100, 180, 487]  # Bob's own INVITE ends
    assert carol.got == ["INVITE"]  # Carol keeps ringing, now for Alice
    assert pbx.media(alice).hears_music

    await carol.answer()
    assert bridged(pbx.media(alice), pbx.media(carol))
    assert bob.notified(to_alice) == [100, 200]
    second = pbx.call_ids()[1]
    assert pbx.call_states(second) == [ROUTING, RINGING, ANSWERED]
    assert pbx.record(second)["answered_by"] == "carol"

    await pbx.advance(HANG_UP_REFERRER_AFTER)
    assert [r.call_id for r in bob.received("BYE")] == [to_alice]
    assert pbx.presence.state(COMPANY, "202") is ExtensionState.IDLE


async def test_a_semi_attended_transfer_refused_by_the_target_brings_the_parties_back() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    to_alice = bob.invite.call_id
    consult = await bob.dial("203")
    await carol.ring()
    await bob.refer("203", to_alice, replaces=bob.replaces(consult.sip_call_id))

    await carol.refuse(486)
    assert bob.notified(to_alice) == [100, 486]
    assert bridged(pbx.media(alice), pbx.media(bob))
    assert pbx.call(call.call_id).state is ANSWERED


# --- transfers by command --------------------------------------------------------------------


async def test_the_blind_transfer_command_waits_for_the_answer_and_hangs_up_the_referrer() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    command = BlindTransfer(call.call_id, "203", side=Side.CALLEE)
    done = asyncio.ensure_future(execute(pbx.calls, pbx.operations, command))
    await pbx.settle()
    assert not done.done()
    assert pbx.media(alice).hears_music

    await carol.answer()
    assert await done == Done(call.call_id)
    assert bob.got[-1] == "BYE"
    assert bridged(pbx.media(alice), pbx.media(carol))


async def test_the_blind_transfer_command_reports_a_busy_target_and_keeps_the_call() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    command = BlindTransfer(call.call_id, "203", side=Side.CALLEE)
    done = asyncio.ensure_future(execute(pbx.calls, pbx.operations, command))
    await pbx.settle()

    await carol.refuse(486)
    assert await done == Done(call.call_id, 486)
    assert "BYE" not in bob.got
    assert bridged(pbx.media(alice), pbx.media(bob))


async def test_the_attended_transfer_command_joins_the_others_and_hangs_up_the_user() -> None:
    pbx, alice, bob, carol, call = await alice_talks_to_bob()
    consult = await bob.dial("203")
    await carol.answer()

    command = AttendedTransfer(call.call_id, consult.call_id, side=Side.CALLEE)
    assert await execute(pbx.calls, pbx.operations, command) == Done(call.call_id)
    await pbx.settle()
    assert bob.got.count("BYE") == 2
    assert bridged(pbx.media(alice), pbx.media(carol))
    assert pbx.call_states(consult.call_id)[-1] is ENDED
