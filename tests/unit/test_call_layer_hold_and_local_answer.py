"""Answered calls: hold and resume (re-INVITE, UPDATE, commands), hanging up, late offers,
requests inside dialogs, and the PBX answering a caller itself.

Alice (201) calls Bob (202, one desk phone here). The SIP stack, the clock and the media ports
are fakes (tests/unit/fakes/).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pbx.engine.call import CallState
from pbx.engine.commands import (
    AttendedTransfer,
    BlindTransfer,
    Command,
    Done,
    Hangup,
    Hold,
    Resume,
    Side,
    execute,
)
from pbx.engine.events import DigitPressed, LegChanged
from pbx.engine.operations import OperationError
from pbx.engine.routing import Party
from pbx.sip import sdp
from tests.unit.fakes.directory import extension
from tests.unit.fakes.media import bridged
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.phones import RTP_PORT, Dialled, Phone
from tests.unit.fakes.sip import ADVERTISE


async def alice_talks_to_bob() -> tuple[Pbx, Phone, Phone, Dialled]:
    pbx = office(extension("202", "Bob", "bob"))
    alice, bob = pbx.phone("alice"), pbx.phone("bob")
    call = await alice.dial("202")
    await bob.answer()
    assert bridged(pbx.media(alice), pbx.media(bob))
    return pbx, alice, bob, call


def direction_of(body: bytes) -> str:
    return sdp.direction(sdp.SessionDescription.parse(body))


# --- hold and resume from the phones ---------------------------------------------------------


@pytest.mark.parametrize("method", ["INVITE", "UPDATE"])
async def test_an_offer_that_only_sends_holds_and_the_other_party_hears_music(method: str) -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()

    reply = await bob.hold(method=method)
    assert reply is not None and reply.status == 200
    assert direction_of(reply.body) == "recvonly"
    assert pbx.media(alice).hears_music
    held = [e for e in pbx.log if isinstance(e, LegChanged) and e.device == "bob"][-1]
    assert held.held is True
    assert pbx.media(bob).withheld  # our answer says recvonly: nothing is sent to Bob
    assert not pbx.media(alice).withheld


@pytest.mark.parametrize("method", ["INVITE", "UPDATE"])
async def test_an_offer_that_sends_and_receives_again_resumes_the_call(method: str) -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    await bob.hold(method=method)

    reply = await bob.resume(method=method)
    assert reply is not None and reply.status == 200
    assert direction_of(reply.body) == "sendrecv"
    assert bridged(pbx.media(alice), pbx.media(bob))
    assert not pbx.media(bob).withheld


async def test_the_caller_can_hold_too() -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    await alice.hold()
    assert pbx.media(bob).hears_music
    assert not pbx.media(alice).hears_music


async def test_an_old_style_hold_with_a_null_address_holds_and_keeps_the_media_address() -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    rfc2543 = sdp.make_offer("0.0.0.0", RTP_PORT, session_id=7, version=9)
    reply = await bob.offer(bytes(rfc2543))
    assert reply is not None and reply.status == 200
    assert pbx.media(alice).hears_music
    assert pbx.media(bob).remote == (bob.host, RTP_PORT)


async def test_an_update_without_sdp_only_refreshes_the_dialog() -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    reply = await bob.send("UPDATE")
    assert reply is not None and reply.status == 200
    assert reply.body == b""
    assert bridged(pbx.media(alice), pbx.media(bob))


async def test_a_reinvite_without_sdp_gets_our_offer_and_the_answer_comes_in_the_ack() -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    reply = await bob.offer(b"")
    assert reply is not None and reply.status == 200
    assert direction_of(reply.body) == "sendrecv"
    ours = sdp.SessionDescription.parse(reply.body)
    assert sdp.audio_endpoint(ours) == (ADVERTISE, pbx.media(bob).port)

    await bob.ack(reply, bob.answer_to(reply.body, direction="sendonly"))
    assert pbx.media(alice).hears_music


async def test_an_offer_without_a_common_codec_gets_488_and_changes_nothing() -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    g722 = sdp.make_offer(bob.host, RTP_PORT, ("G722",), session_id=7, version=9)
    reply = await bob.offer(bytes(g722))
    assert reply is not None and reply.status == 488
    assert bridged(pbx.media(alice), pbx.media(bob))


async def test_an_offer_that_is_not_sdp_gets_400() -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    reply = await bob.offer(b"v=0\r\nnonsense\r\n")
    assert reply is not None and reply.status == 400


# --- late offer ------------------------------------------------------------------------------


async def test_a_caller_without_an_offer_gets_ours_in_the_200_and_answers_in_its_ack() -> None:
    pbx = office(extension("202", "Bob", "bob"))
    alice, bob = pbx.phone("alice"), pbx.phone("bob")
    call = await alice.dial("202", body=b"")
    assert bob.invite.body  # Bob gets our offer all the same
    await bob.answer()
    offer = call.final.body
    assert direction_of(offer) == "sendrecv"

    await call.ack(alice.answer_to(offer))
    assert bridged(pbx.media(alice), pbx.media(bob))


# --- hanging up and other requests in dialogs ------------------------------------------------


@pytest.mark.parametrize("who", ["caller", "callee"])
async def test_a_bye_from_either_party_ends_the_call_and_the_other_gets_bye(who: str) -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    leaving, staying = (alice, bob) if who == "caller" else (bob, alice)
    await pbx.advance(42)

    reply = await leaving.hang_up()
    assert reply is not None and reply.status == 200
    assert staying.got[-1] == "BYE"
    assert "BYE" not in leaving.got
    assert pbx.call_states(call.call_id)[-1] is CallState.ENDED
    assert pbx.ended(call.call_id).at == pbx.clock.now()
    assert pbx.record(call.call_id)["disposition"] == "answered"
    assert pbx.ports.open == []


async def test_after_the_call_ended_a_crossing_bye_gets_481() -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    await alice.hang_up()
    reply = await bob.hang_up(bob.invite.call_id)  # sent before ours reached Bob
    assert reply is not None and reply.status == 481


@pytest.mark.parametrize(("method", "status"), [("INFO", 200), ("OPTIONS", 200), ("MESSAGE", 405)])
async def test_other_requests_in_a_dialog_are_answered_and_change_nothing(
    method: str, status: int
) -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    reply = await bob.send(method)
    assert reply is not None and reply.status == status
    assert pbx.call(call.call_id).state is CallState.ANSWERED


# --- commands --------------------------------------------------------------------------------


async def test_the_hold_and_resume_commands_hold_the_side_they_name() -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    done = await execute(pbx.calls, pbx.operations, Hold(call.call_id))
    assert done == Done(call.call_id)
    assert pbx.media(alice).hears_music  # the callee holds by default

    await execute(pbx.calls, pbx.operations, Resume(call.call_id))
    assert bridged(pbx.media(alice), pbx.media(bob))

    await execute(pbx.calls, pbx.operations, Hold(call.call_id, side=Side.CALLER))
    assert pbx.media(bob).hears_music


async def test_the_hangup_command_ends_an_answered_call_with_bye_to_both() -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    done = await execute(pbx.calls, pbx.operations, Hangup(call.call_id))
    assert done == Done(call.call_id)
    assert alice.got[-1] == bob.got[-1] == "BYE"
    assert pbx.record(call.call_id)["reason"] == "hung up by command"
    assert pbx.record(call.call_id)["disposition"] == "answered"


async def test_the_hangup_command_ends_a_ringing_call_and_cancels_the_phones() -> None:
    pbx = office()
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    call = await alice.dial("202")
    await desk.ring()
    await execute(pbx.calls, pbx.operations, Hangup(call.call_id))
    assert call.final.status >= 400
    assert desk.got == ["INVITE", "CANCEL"]
    assert pbx.record(call.call_id)["disposition"] == "cancelled"


@pytest.mark.parametrize(
    "command",
    [Hangup("gone"), Hold("gone"), Resume("gone"), BlindTransfer("gone", "203")],
    ids=["hangup", "hold", "resume", "transfer"],
)
async def test_a_command_for_a_call_that_is_not_there_says_no_such_call(command: Command) -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    with pytest.raises(OperationError) as raised:
        await execute(pbx.calls, pbx.operations, command)
    assert raised.value.code == "no_such_call"


@pytest.mark.parametrize(
    "make",
    [
        lambda call_id: Hold(call_id),
        lambda call_id: BlindTransfer(call_id, "203"),
        lambda call_id: BlindTransfer(call_id, "203", side=Side.CALLER),
        lambda call_id: AttendedTransfer(call_id, call_id),
    ],
    ids=["hold", "transfer", "transfer-by-the-caller", "attended"],
)
async def test_a_command_that_needs_an_answered_call_says_not_answered(make: object) -> None:
    pbx = office()
    alice = pbx.phone("alice")
    pbx.phone("bob-desk")
    call = await alice.dial("202")
    with pytest.raises(OperationError) as raised:
        await execute(pbx.calls, pbx.operations, make(call.call_id))  # type: ignore[operator]
    assert raised.value.code == "not_answered"
    assert pbx.call(call.call_id).state is CallState.RINGING


async def test_holding_the_caller_of_a_ringing_call_says_not_answered() -> None:
    pbx = office()
    alice = pbx.phone("alice")
    pbx.phone("bob-desk")
    call = await alice.dial("202")
    with pytest.raises(OperationError):
        await execute(pbx.calls, pbx.operations, Hold(call.call_id, side=Side.CALLER))


# --- the PBX answers the caller itself -------------------------------------------------------


async def test_answering_locally_answers_the_caller_with_sdp_and_stops_the_ringing() -> None:
    pbx = office()
    alice, desk, mobile = pbx.phone("alice"), pbx.phone("bob-desk"), pbx.phone("bob-mobile")
    call = await alice.dial("202")
    await desk.ring()

    endpoint = pbx.calls.answer_locally(pbx.call(call.call_id))
    await pbx.settle()
    assert call.statuses == [100, 180, 200]
    assert endpoint is pbx.media(alice)
    answer = sdp.SessionDescription.parse(call.final.body)
    assert sdp.audio_endpoint(answer) == (ADVERTISE, endpoint.port)
    assert desk.got == ["INVITE", "CANCEL"]
    assert mobile.got == ["INVITE"]  # cancelled once it rings
    assert pbx.call_states(call.call_id) == [
        CallState.ROUTING,
        CallState.RINGING,
        CallState.ANSWERED,
    ]
    assert pbx.record(call.call_id)["answered_by"] == "pbx"

    await alice.hang_up()
    assert pbx.record(call.call_id)["disposition"] == "answered"
    assert pbx.ports.open == []


async def test_a_key_pressed_on_a_locally_answered_call_is_a_digit_event() -> None:
    pbx = office()
    alice = pbx.phone("alice")
    pbx.phone("bob-desk")
    call = await alice.dial("202")
    the_call = pbx.call(call.call_id)
    endpoint = pbx.calls.answer_locally(the_call)
    await pbx.advance(3)

    endpoint.press("5", duration_ms=160)
    digits = [e for e in pbx.log if isinstance(e, DigitPressed)]
    assert digits == [DigitPressed(the_call.id, the_call.a.id, "5", 160, pbx.clock.now())]


async def test_an_answered_call_cannot_be_answered_locally() -> None:
    pbx, alice, bob, call = await alice_talks_to_bob()
    with pytest.raises(RuntimeError):
        pbx.calls.answer_locally(pbx.call(call.call_id))
    assert alice.got == []


async def test_answering_locally_while_the_number_is_looked_up_rings_nobody() -> None:
    pbx = office()
    looked_up = asyncio.Event()
    router = pbx.calls.router

    class SlowRouter:
        """The dial plan, waiting for the test before it answers (a slow directory)."""

        async def route(self, caller: Party, dialled: str, depth: int = 0) -> Any:
            await looked_up.wait()
            return await router.route(caller, dialled, depth)

        async def forward(self, caller: Party, target: str) -> Any:
            return await router.forward(caller, target)

    pbx.calls.router = SlowRouter()
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    call = await alice.dial("202")
    pbx.calls.answer_locally(pbx.call(call.call_id))
    looked_up.set()
    await pbx.settle()

    assert desk.got == []
    assert call.statuses == [100, 200]
    assert pbx.call_states(call.call_id) == [CallState.ROUTING, CallState.ANSWERED]
    assert pbx.failures == []
