"""Ringing a call: forks, ring strategies, CANCEL at every moment, no answer, busy, forwarding.

Alice (201) calls; Bob (202) has a desk phone and a mobile; Carol (203) and Dave (204) have one
phone each. The SIP stack, the clock and the media ports are fakes (tests/unit/fakes/).
"""

from __future__ import annotations

from pbx.engine.call import CallState, Disposition
from pbx.engine.directory import ExtensionInfo
from pbx.engine.events import ExtensionState
from pbx.engine.legs import LegState
from pbx.sip import sdp
from tests.unit.fakes.directory import COMPANY, extension
from tests.unit.fakes.media import bridged
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.phones import Phone
from tests.unit.fakes.sip import ADVERTISE

ROUTING, RINGING, ANSWERED, ENDED = (
    CallState.ROUTING,
    CallState.RINGING,
    CallState.ANSWERED,
    CallState.ENDED,
)


def bob_in_order() -> ExtensionInfo:
    """Bob's three phones ring one after the other: 30 s shared, 10 s each."""
    return extension(
        "202",
        "Bob",
        "bob-desk",
        "bob-mobile",
        "bob-soft",
        ring_mode="in_order",
        no_answer_timeout=30,
    )


def phones(pbx: Pbx, *devices: str) -> list[Phone]:
    return [pbx.phone(device) for device in devices]


# --- ringing every phone at once -----------------------------------------------------------


async def test_ringing_all_the_first_to_answer_wins_and_the_other_is_cancelled() -> None:
    pbx = office()
    alice, desk, mobile = phones(pbx, "alice", "bob-desk", "bob-mobile")
    call = await alice.dial("202")
    assert (desk.got, mobile.got) == (["INVITE"], ["INVITE"])

    await desk.ring()
    await mobile.ring()
    await desk.answer()

    assert desk.got == ["INVITE", "ACK"]
    assert mobile.got == ["INVITE", "CANCEL"]
    assert mobile.received("CANCEL")[0].branch == mobile.invite.branch
    assert call.statuses == [100, 180, 180, 200]
    answer = sdp.SessionDescription.parse(call.final.body)
    assert sdp.audio_endpoint(answer) == (ADVERTISE, pbx.media(alice).port)
    assert bridged(pbx.media(alice), pbx.media(desk))

    await mobile.refuse(487)
    assert pbx.call_states(call.call_id) == [ROUTING, RINGING, ANSWERED]
    assert pbx.leg_states("alice") == [[LegState.INCOMING, LegState.RINGING, LegState.ANSWERED]]
    assert pbx.leg_states("bob-desk") == [[LegState.CALLING, LegState.RINGING, LegState.ANSWERED]]
    assert pbx.leg_states("bob-mobile") == [
        [LegState.CALLING, LegState.RINGING, LegState.ENDING, LegState.ENDED]
    ]
    assert pbx.record(call.call_id) == {
        "direction": "internal",
        "caller": "201",
        "callee": "202",
        "disposition": "in_progress",
        "answered_by": "bob-desk",
    }


async def test_a_phone_registered_at_two_contacts_rings_at_both() -> None:
    pbx = office(extension("202", "Bob", "bob-desk"))
    alice, desk = phones(pbx, "alice", "bob-desk")
    elsewhere = pbx.second_contact("bob-desk")
    call = await alice.dial("202")
    assert desk.got == elsewhere.got == ["INVITE"]

    await elsewhere.ring()
    await desk.answer()
    assert elsewhere.got == ["INVITE", "CANCEL"]
    assert call.statuses == [100, 180, 200]
    assert len(pbx.leg_states("bob-desk")) == 2
    assert pbx.record(call.call_id)["answered_by"] == "bob-desk"


async def test_the_phones_get_the_callers_number_and_name_and_the_dialled_number() -> None:
    pbx = office()
    alice, desk = phones(pbx, "alice", "bob-desk")
    await alice.dial("202")
    invite = desk.invite
    assert invite.uri == f"sip:bob-desk@{desk.host}:5060"
    assert (invite.from_addr.display, invite.from_addr.uri.user) == ("Alice", "201")
    assert invite.to_addr.uri.user == "202"
    assert sdp.audio_endpoint(sdp.SessionDescription.parse(invite.body))[0] == ADVERTISE


async def test_the_callers_answer_prefers_the_codec_the_callee_chose() -> None:
    pbx = office(extension("202", "Bob", "bob-desk"))
    alice, desk = phones(pbx, "alice", "bob-desk")
    call = await alice.dial("202")  # Alice offers PCMU, then PCMA
    offer = sdp.SessionDescription.parse(desk.invite.body)
    pcma_only = sdp.negotiate(
        offer, ("PCMA",), local_ip=desk.host, local_port=4000, session_id=1, version=1
    )
    await desk.answer(body=bytes(pcma_only.sdp))

    answer = sdp.SessionDescription.parse(call.final.body)
    assert [name for _, name, _ in sdp.codecs(answer) if name != "telephone-event"] == ["PCMA"]
    assert pbx.media(desk).codec == "PCMA"


async def test_a_phone_that_has_not_rung_yet_is_cancelled_only_once_it_rings() -> None:
    pbx = office()
    alice, desk, mobile = phones(pbx, "alice", "bob-desk", "bob-mobile")
    call = await alice.dial("202")
    await desk.answer()
    assert mobile.got == ["INVITE"]  # RFC 3261 9.1: no CANCEL before a provisional response

    await mobile.ring()
    assert mobile.got == ["INVITE", "CANCEL"]
    assert call.statuses == [100, 200]  # a fork ringing after the answer is not relayed


async def test_a_phone_answering_with_unusable_sdp_is_hung_up_and_the_other_keeps_ringing() -> None:
    pbx = office()
    alice, desk, mobile = phones(pbx, "alice", "bob-desk", "bob-mobile")
    call = await alice.dial("202")
    await desk.answer(body=b"not sdp")
    assert desk.got == ["INVITE", "ACK", "BYE"]
    assert mobile.got == ["INVITE"]
    assert call.statuses == [100]

    await mobile.answer()
    assert call.statuses == [100, 200]
    assert pbx.record(call.call_id)["answered_by"] == "bob-mobile"


# --- ringing one phone after the other -----------------------------------------------------


async def test_ringing_in_order_moves_to_the_next_phone_when_the_turn_ends() -> None:
    pbx = office(bob_in_order())
    alice, desk, mobile, soft = phones(pbx, "alice", "bob-desk", "bob-mobile", "bob-soft")
    call = await alice.dial("202")
    assert (desk.got, mobile.got, soft.got) == (["INVITE"], [], [])
    await desk.ring()

    await pbx.advance(9.9)
    assert mobile.got == []
    await pbx.advance(0.1)
    assert desk.got == ["INVITE", "CANCEL"]
    assert mobile.got == ["INVITE"]

    await mobile.ring()
    await pbx.advance(10)
    assert mobile.got == ["INVITE", "CANCEL"]
    assert soft.got == ["INVITE"]

    await soft.answer()
    assert call.statuses[-1] == 200
    assert pbx.leg_states("bob-desk") == [[LegState.CALLING, LegState.RINGING, LegState.ENDING]]
    assert pbx.leg_states("bob-soft") == [[LegState.CALLING, LegState.ANSWERED]]
    assert pbx.call_states(call.call_id) == [ROUTING, RINGING, ANSWERED]
    assert pbx.record(call.call_id)["answered_by"] == "bob-soft"


async def test_a_phone_that_refuses_passes_the_turn_at_once() -> None:
    pbx = office(bob_in_order())
    alice, desk, mobile, soft = phones(pbx, "alice", "bob-desk", "bob-mobile", "bob-soft")
    call = await alice.dial("202")
    await pbx.advance(3)

    await desk.refuse(486)
    assert mobile.got == ["INVITE"]
    assert call.statuses == [100]  # one busy phone is not the extension busy

    await pbx.advance(9.9)  # the mobile's turn is a whole one, counted from the refusal
    assert soft.got == []
    await pbx.advance(0.1)
    assert soft.got == ["INVITE"]


async def test_the_last_phone_in_order_rings_until_the_no_answer_timer() -> None:
    pbx = office(bob_in_order())
    alice, desk, mobile, soft = phones(pbx, "alice", "bob-desk", "bob-mobile", "bob-soft")
    call = await alice.dial("202")
    await pbx.advance(20)
    await soft.ring()

    await pbx.advance(9.9)
    assert soft.got == ["INVITE"]
    assert call.statuses == [100, 180]
    await pbx.advance(0.1)
    assert soft.got == ["INVITE", "CANCEL"]
    assert call.final.status == 480
    assert pbx.record(call.call_id)["disposition"] == "no_answer"


async def test_a_cancelled_phone_answering_487_does_not_take_the_next_phones_turn_away() -> None:
    pbx = office(bob_in_order())
    alice, desk, mobile, soft = phones(pbx, "alice", "bob-desk", "bob-mobile", "bob-soft")
    await alice.dial("202")
    await desk.ring()
    await pbx.advance(10)  # the mobile's turn: the desk phone gets its CANCEL
    await desk.refuse(487)  # ...and ends its INVITE with 487, as every phone does

    await pbx.advance(10)
    assert soft.got == ["INVITE"]


# --- nobody answers, busy, unreachable, do-not-disturb -------------------------------------


async def test_nobody_answering_ends_the_call_with_480_and_a_no_answer_record() -> None:
    pbx = office()
    alice, desk, mobile = phones(pbx, "alice", "bob-desk", "bob-mobile")
    call = await alice.dial("202")
    await desk.ring()
    await mobile.ring()

    await pbx.advance(19.9)
    assert call.statuses == [100, 180, 180]
    await pbx.advance(0.1)
    assert call.final.status == 480
    assert desk.got == mobile.got == ["INVITE", "CANCEL"]
    assert pbx.call_states(call.call_id) == [ROUTING, RINGING, ENDED]
    assert pbx.ended(call.call_id).disposition is Disposition.NO_ANSWER
    assert pbx.record(call.call_id)["disposition"] == "no_answer"
    assert pbx.record(call.call_id)["reason"] == "no answer"


async def test_a_phone_that_never_responds_counts_as_no_answer() -> None:
    pbx = office()
    alice, carol = phones(pbx, "alice", "carol")
    call = await alice.dial("203")
    await carol.never_answer()  # timer B: 408 from the transaction layer
    assert call.final.status == 480
    assert pbx.record(call.call_id)["disposition"] == "no_answer"


async def test_no_answer_forwards_the_call_when_the_extension_says_so() -> None:
    pbx = office(extension("202", "Bob", "bob-desk", forward_no_answer="203"))
    alice, desk, carol = phones(pbx, "alice", "bob-desk", "carol")
    call = await alice.dial("202")
    await desk.ring()
    await pbx.advance(20)
    assert desk.got == ["INVITE", "CANCEL"]
    assert carol.got == ["INVITE"]
    assert carol.invite.from_addr.uri.user == "201"
    assert carol.invite.to_addr.uri.user == "203"

    await carol.answer()
    assert call.statuses == [100, 180, 200]
    assert pbx.call_states(call.call_id) == [ROUTING, RINGING, ROUTING, RINGING, ANSWERED]
    assert pbx.record(call.call_id)["callee"] == "202"
    assert pbx.record(call.call_id)["answered_by"] == "carol"
    assert bridged(pbx.media(alice), pbx.media(carol))


async def test_a_busy_phone_forwards_the_call_when_the_extension_says_so() -> None:
    pbx = office(extension("202", "Bob", "bob-desk", forward_busy="203"))
    alice, desk, carol = phones(pbx, "alice", "bob-desk", "carol")
    call = await alice.dial("202")
    await desk.refuse(486)
    assert carol.got == ["INVITE"]

    await carol.answer()
    assert call.statuses == [100, 200]
    assert pbx.call_states(call.call_id) == [ROUTING, RINGING, ROUTING, RINGING, ANSWERED]


async def test_when_every_phone_is_busy_the_caller_gets_486_and_a_busy_record() -> None:
    pbx = office()
    alice, desk, mobile = phones(pbx, "alice", "bob-desk", "bob-mobile")
    call = await alice.dial("202")
    await desk.refuse(486)
    assert call.statuses == [100]  # the mobile still rings

    await mobile.refuse(603)
    assert call.final.status == 486
    assert pbx.call_states(call.call_id) == [ROUTING, RINGING, ENDED]
    assert pbx.leg_states("bob-desk") == [[LegState.CALLING, LegState.ENDED]]
    assert pbx.record(call.call_id)["disposition"] == "busy"
    assert pbx.record(call.call_id)["reason"] == "busy"


async def test_an_extension_already_talking_is_busy_without_ringing_its_phones() -> None:
    pbx = office()
    alice, desk, mobile, carol = phones(pbx, "alice", "bob-desk", "bob-mobile", "carol")
    await carol.dial("202")
    await desk.answer()
    assert pbx.presence.is_busy(COMPANY, "202")

    call = await alice.dial("202")
    assert call.final.status == 486
    assert len(desk.invites) == len(mobile.invites) == 1
    assert pbx.record(call.call_id)["disposition"] == "busy"


async def test_an_extension_already_talking_forwards_on_busy_without_ringing_its_phones() -> None:
    pbx = office(extension("202", "Bob", "bob-desk", forward_busy="204"))
    alice, desk, carol, dave = phones(pbx, "alice", "bob-desk", "carol", "dave")
    await carol.dial("202")
    await desk.answer()

    await alice.dial("202")
    assert len(desk.invites) == 1
    assert dave.got == ["INVITE"]


async def test_an_extension_without_a_registered_phone_is_unreachable() -> None:
    pbx = office()
    alice = pbx.phone("alice")
    carol = pbx.phone("carol", registered=False)
    call = await alice.dial("203")
    assert call.statuses == [100, 480]
    assert carol.got == []
    assert pbx.call_states(call.call_id) == [ROUTING, ENDED]
    assert pbx.record(call.call_id)["reason"] == "unreachable"


async def test_do_not_disturb_gives_480_without_ringing() -> None:
    pbx = office(extension("203", "Carol", "carol", do_not_disturb=True))
    alice, carol = phones(pbx, "alice", "carol")
    call = await alice.dial("203")
    assert call.statuses == [100, 480]
    assert carol.got == []
    assert pbx.call_states(call.call_id) == [ROUTING, ENDED]
    assert pbx.record(call.call_id)["reason"] == "do not disturb"


async def test_an_unknown_number_gives_404_and_a_failed_record() -> None:
    pbx = office()
    alice = pbx.phone("alice")
    call = await alice.dial("299")
    assert call.statuses == [100, 404]
    assert pbx.call_states(call.call_id) == [ROUTING, ENDED]
    assert pbx.record(call.call_id)["disposition"] == "failed"
    assert pbx.ports.open == []


# --- refused before anything rings ---------------------------------------------------------


async def test_an_offer_without_a_common_codec_is_refused_with_488_and_no_call() -> None:
    pbx = office()
    alice, carol = phones(pbx, "alice", "carol")
    g722 = sdp.make_offer(alice.host, 4000, ("G722",), session_id=1, version=1)
    call = await alice.dial("203", body=bytes(g722))
    assert call.statuses == [488]
    assert pbx.call_ids() == []
    assert carol.got == []
    assert pbx.ports.open == []


async def test_without_a_free_media_port_the_caller_gets_503_and_no_call() -> None:
    pbx = office(media_ports=0)
    alice = pbx.phone("alice")
    call = await alice.dial("203")
    assert call.statuses == [503]
    assert pbx.call_ids() == []


async def test_without_a_free_media_port_for_the_callee_the_call_fails_with_503() -> None:
    pbx = office(media_ports=1)
    alice, carol = phones(pbx, "alice", "carol")
    call = await alice.dial("203")
    assert call.statuses == [100, 503]
    assert carol.got == []
    assert pbx.record(call.call_id)["disposition"] == "failed"
    assert pbx.ports.open == []


# --- the trunk -----------------------------------------------------------------------------


async def test_a_call_out_presents_the_trunks_number_and_answers_the_carriers_challenge() -> None:
    pbx = office()
    alice = pbx.phone("alice")
    carrier = pbx.carrier()
    call = await alice.dial("0612345678")
    first = carrier.invite
    assert first.uri == "sip:612345678@sip.carrier.example"
    assert first.from_addr.uri.user == "0212345678"

    challenge = 'Digest realm="carrier", nonce="c0ffee", algorithm=MD5, qop="auth"'
    await carrier.reply(407, first, headers=(("Proxy-Authenticate", challenge),))
    retry = carrier.invite
    assert retry is not first
    assert retry.cseq.number == first.cseq.number + 1
    assert 'username="acme"' in (retry.headers.get("Proxy-Authorization") or "")
    assert call.statuses == [100]

    await carrier.ring(retry)
    await carrier.answer(retry)
    assert call.statuses == [100, 180, 200]
    assert pbx.record(call.call_id)["direction"] == "outbound"
    assert pbx.record(call.call_id)["answered_by"] == "612345678"


async def test_a_carrier_that_keeps_challenging_is_asked_twice_then_given_up() -> None:
    """Its refused credentials are not the phone's business: the phone gets 503, not a
    challenge it could never answer."""
    pbx = office()
    alice = pbx.phone("alice")
    carrier = pbx.carrier()
    call = await alice.dial("0612345678")
    challenge = 'Digest realm="carrier", nonce="c0ffee", algorithm=MD5'
    for _ in range(3):
        await carrier.reply(407, headers=(("Proxy-Authenticate", challenge),))
    assert len(carrier.invites) == 3  # the first and two tries with credentials
    assert call.final.status == 503
    assert pbx.record(call.call_id)["disposition"] == "failed"


async def test_an_unreachable_trunk_gives_503() -> None:
    pbx = office()
    alice = pbx.phone("alice")
    call = await alice.dial("0612345678")  # the carrier's address cannot be resolved
    assert call.final.status == 503
    assert pbx.record(call.call_id)["reason"] == "trunk unreachable"


# --- CANCEL from the caller, at every moment -----------------------------------------------


async def test_a_cancel_while_the_invite_is_set_up_gets_487_and_never_becomes_a_call() -> None:
    pbx = office()
    alice, carol = phones(pbx, "alice", "carol")
    pbx.ports.pause()
    call = await alice.dial("203")
    assert await call.cancel() is False  # no call yet: only the set-up is marked

    pbx.ports.resume()
    await pbx.settle()
    assert call.statuses == [487]
    assert pbx.call_ids() == []
    assert carol.got == []
    assert pbx.ports.open == []


async def test_a_cancel_while_the_callees_media_port_is_found_rings_nobody() -> None:
    pbx = office()
    alice, carol = phones(pbx, "alice", "carol")
    pbx.ports.pause(after=1)  # the caller's port comes at once, the callee's waits
    call = await alice.dial("203")
    assert await call.cancel() is True
    assert call.statuses == [100, 487]

    pbx.ports.resume()
    await pbx.settle()
    assert carol.got == []
    assert pbx.call_states(call.call_id) == [ROUTING, ENDED]
    assert pbx.record(call.call_id)["disposition"] == "cancelled"
    assert pbx.ports.open == []


async def test_a_cancel_before_any_phone_responded_is_held_until_the_phone_rings() -> None:
    pbx = office()
    alice, desk, mobile = phones(pbx, "alice", "bob-desk", "bob-mobile")
    call = await alice.dial("202")
    assert await call.cancel() is True
    assert call.statuses == [100, 487]
    assert desk.got == mobile.got == ["INVITE"]  # RFC 3261 9.1: nothing to CANCEL yet

    await desk.ring()
    assert desk.got == ["INVITE", "CANCEL"]
    assert call.statuses == [100, 487]  # its 180 is not relayed to a caller who left
    await desk.refuse(487)
    assert pbx.leg_states("bob-desk") == [
        [LegState.CALLING, LegState.CANCEL_PENDING, LegState.ENDING, LegState.ENDED]
    ]
    assert pbx.call_states(call.call_id) == [ROUTING, RINGING, ENDED]
    assert pbx.record(call.call_id)["disposition"] == "cancelled"
    assert pbx.record(call.call_id)["reason"] == "cancelled by caller"


async def test_a_cancel_while_ringing_cancels_every_phone_and_the_caller_gets_487() -> None:
    pbx = office()
    alice, desk, mobile = phones(pbx, "alice", "bob-desk", "bob-mobile")
    call = await alice.dial("202")
    await desk.ring()
    await mobile.ring()

    await call.cancel()
    assert desk.got == mobile.got == ["INVITE", "CANCEL"]
    assert call.statuses == [100, 180, 180, 487]
    await desk.refuse(487)
    await mobile.refuse(487)
    assert pbx.extension_states("202") == [
        ExtensionState.IDLE,
        ExtensionState.RINGING,
        ExtensionState.IDLE,
    ]
    assert pbx.ports.open == []


async def test_a_cancel_after_the_answer_changes_nothing() -> None:
    pbx = office()
    alice, desk = phones(pbx, "alice", "bob-desk")
    call = await alice.dial("202")
    await desk.answer()
    sent = len(pbx.stack.sent)

    assert await call.cancel() is False
    assert len(pbx.stack.sent) == sent
    assert pbx.call(call.call_id).state is ANSWERED


async def test_a_200_crossing_our_cancel_is_acked_then_hung_up() -> None:
    pbx = office()
    alice, desk, mobile = phones(pbx, "alice", "bob-desk", "bob-mobile")
    call = await alice.dial("202")
    await desk.ring()
    await mobile.ring()
    await call.cancel()

    await desk.answer()  # it answered before our CANCEL reached it
    await mobile.refuse(487)
    assert desk.got == ["INVITE", "CANCEL", "ACK", "BYE"]
    assert call.statuses == [100, 180, 180, 487]
    assert pbx.leg_states("bob-desk") == [
        [
            LegState.CALLING,
            LegState.RINGING,
            LegState.ENDING,
            LegState.ANSWERED,
            LegState.ENDED,
        ]
    ]
    assert pbx.presence.state(COMPANY, "202") is ExtensionState.IDLE
    assert pbx.ports.open == []


async def test_a_cancel_arriving_with_the_answer_hangs_up_the_phone_that_answered() -> None:
    pbx = office()
    alice, desk = phones(pbx, "alice", "bob-desk")
    call = await alice.dial("202")
    await desk.ring()
    # Both datagrams are read in the same turn of the loop: the 200, then the CANCEL.
    await desk.answer(settle=False)
    await call.cancel(settle=False)
    await pbx.settle()

    assert call.statuses[-1] == 487
    assert desk.got == ["INVITE", "ACK", "BYE"]
    assert pbx.presence.state(COMPANY, "202") is ExtensionState.IDLE
