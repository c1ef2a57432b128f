"""Session timers (RFC 4028): what the PBX agrees with a calling phone, answers, refreshes and
enforces.

Alice (201) calls Carol (203) and asks for a session timer on her INVITE. The SIP stack, the
clock and the media ports are fakes (tests/unit/fakes/).
"""

from __future__ import annotations

import pytest

from pbx.engine.call import CallState
from pbx.engine.session_timers import IntervalTooSmall, SessionTimer, negotiate
from pbx.sip import sdp
from pbx.sip.headers import Headers
from pbx.sip.message import Request
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.phones import Dialled, Phone
from tests.unit.fakes.sip import ADVERTISE

Header = tuple[str, str]

TIMER: Header = ("Supported", "timer")
ALLOW_UPDATE: Header = ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE")
ALLOW_NO_UPDATE: Header = ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")


def session_expires(value: str) -> Header:
    return ("Session-Expires", value)


def invite_with(*headers: Header) -> Request:
    """An INVITE from Alice's phone carrying `headers` (only the headers matter here)."""
    fields = Headers(
        [
            ("Via", "SIP/2.0/UDP 10.0.0.11:5060;branch=z9hG4bK-st"),
            ("From", f"<sip:201@{ADVERTISE}>;tag=a"),
            ("To", f"<sip:203@{ADVERTISE}>"),
            ("Call-ID", "session-timer-test"),
            ("CSeq", "1 INVITE"),
            *headers,
        ]
    )
    return Request("INVITE", f"sip:203@{ADVERTISE}", fields)


async def alice_calls_carol(*headers: Header) -> tuple[Pbx, Phone, Phone, Dialled]:
    """Alice dials Carol with `headers` on her INVITE; Carol answers and Alice ACKs."""
    pbx = office()
    alice, carol = pbx.phone("alice"), pbx.phone("carol")
    call = await alice.dial("203", headers=headers)
    await carol.answer()
    assert call.final.status == 200, call.statuses
    await call.ack()
    return pbx, alice, carol, call


def talking(pbx: Pbx, call: Dialled) -> bool:
    """Whether the call is still up (an ended call is forgotten by the call manager)."""
    live = pbx.calls.calls.get(call.call_id)
    return live is not None and live.state is CallState.ANSWERED


def hung_up_by_session_timer(pbx: Pbx, alice: Phone, carol: Phone, call: Dialled) -> bool:
    """Both phones got a BYE and the call (and its record) ended because nobody refreshed."""
    return (
        alice.got.count("BYE") == 1
        and carol.got.count("BYE") == 1
        and pbx.ended(call.call_id).reason == "session expired"
        and pbx.record(call.call_id)["reason"] == "session expired"
    )


# --- negotiate(): what an INVITE asks for --------------------------------------------------


@pytest.mark.parametrize("asked", ["1800", "1800;refresher=uac"])
def test_a_phone_that_supports_timers_refreshes_itself_unless_it_asks_us_to(asked: str) -> None:
    timer = negotiate(invite_with(TIMER, session_expires(asked)))
    assert timer == SessionTimer(1800, "uac", required=True)


def test_a_phone_that_asks_us_to_refresh_gets_us_as_refresher() -> None:
    timer = negotiate(invite_with(TIMER, session_expires("1800;refresher=uas")))
    assert timer == SessionTimer(1800, "uas", required=True)


@pytest.mark.parametrize(
    "supported",
    [(), (("Supported", "replaces, 100rel"),), (("Supported", "timers"),)],
    ids=["no Supported", "other extensions", "a token that only looks like timer"],
)
@pytest.mark.parametrize("asked", ["1800", "1800;refresher=uac", "1800;refresher=uas"])
def test_a_phone_without_timer_support_gets_us_as_refresher_and_no_require(
    supported: tuple[Header, ...], asked: str
) -> None:
    timer = negotiate(invite_with(*supported, session_expires(asked)))
    assert timer == SessionTimer(1800, "uas", required=False)


def test_timer_support_is_read_from_the_compact_form_and_any_supported_line() -> None:
    assert negotiate(invite_with(("k", "timer"), session_expires("1800"))) == SessionTimer(
        1800, "uac", required=True
    )
    two_lines = (("Supported", "replaces"), ("Supported", "100rel, TIMER"))
    assert negotiate(invite_with(*two_lines, session_expires("1800"))) == SessionTimer(
        1800, "uac", required=True
    )


def test_the_compact_form_x_of_session_expires_is_read() -> None:
    timer = negotiate(invite_with(TIMER, ("x", "600;refresher=uas")))
    assert timer == SessionTimer(600, "uas", required=True)


@pytest.mark.parametrize("interval", [0, 30, 89])
def test_an_interval_below_90_seconds_is_too_small(interval: int) -> None:
    with pytest.raises(IntervalTooSmall):
        negotiate(invite_with(TIMER, session_expires(str(interval))))


def test_an_interval_of_exactly_90_seconds_is_accepted() -> None:
    assert negotiate(invite_with(TIMER, session_expires("90"))) == SessionTimer(
        90, "uac", required=True
    )


@pytest.mark.parametrize("value", ["soon", "", ";refresher=uac", "1800.5", "half an hour;x=1"])
def test_an_unreadable_session_expires_asks_for_no_timer(value: str) -> None:
    assert negotiate(invite_with(TIMER, session_expires(value))) is None


def test_a_request_without_session_expires_asks_for_no_timer() -> None:
    assert negotiate(invite_with(TIMER)) is None


@pytest.mark.parametrize("asked", ["1800;Refresher=uas", "1800; refresher = uas"])
def test_the_refresher_parameter_is_read_whatever_its_case_and_spacing(asked: str) -> None:
    assert negotiate(invite_with(TIMER, session_expires(asked))) == SessionTimer(
        1800, "uas", required=True
    )


# --- what the phone is told ------------------------------------------------------------------


async def test_the_200_to_a_phone_with_timer_support_names_it_and_requires_timer() -> None:
    pbx, alice, carol, call = await alice_calls_carol(TIMER, session_expires("1800"))
    assert call.final.headers.get("Session-Expires") == "1800;refresher=uac"
    assert call.final.headers.get_all("Require") == ["timer"]


async def test_the_200_to_a_phone_asking_us_to_refresh_names_us() -> None:
    pbx, alice, carol, call = await alice_calls_carol(TIMER, session_expires("1800;refresher=uas"))
    assert call.final.headers.get("Session-Expires") == "1800;refresher=uas"
    assert call.final.headers.get_all("Require") == ["timer"]


async def test_the_200_to_a_phone_without_timer_support_names_us_and_requires_nothing() -> None:
    pbx, alice, carol, call = await alice_calls_carol(session_expires("1800;refresher=uac"))
    assert call.final.headers.get("Session-Expires") == "1800;refresher=uas"
    assert call.final.headers.get("Require") is None


async def test_an_invite_asking_for_30_seconds_gets_422_with_min_se_90_and_rings_nobody() -> None:
    pbx = office()
    alice, carol = pbx.phone("alice"), pbx.phone("carol")
    call = await alice.dial("203", headers=(TIMER, session_expires("30")))
    assert call.statuses == [422]
    assert call.final.headers.get("Min-SE") == "90"
    assert call.final.to_addr.tag  # a final response that a UA can match to its INVITE
    assert call.made is None
    assert carol.got == []
    assert pbx.ports.open == []


async def test_an_update_asking_for_30_seconds_gets_422_with_min_se_90_and_no_refresh() -> None:
    pbx, alice, carol, call = await alice_calls_carol(TIMER, session_expires("90"))
    await pbx.advance(50)

    reply = await alice.send("UPDATE", headers=(TIMER, session_expires("30")))
    assert reply is not None and reply.status == 422
    assert reply.headers.get("Min-SE") == "90"

    await pbx.advance(10)  # the deadline is still 60 seconds after the answer
    assert hung_up_by_session_timer(pbx, alice, carol, call)


async def test_a_refresh_gets_the_session_timer_back_in_its_200() -> None:
    pbx, alice, carol, call = await alice_calls_carol(TIMER, session_expires("1800"))
    reply = await alice.send("UPDATE", headers=(TIMER, session_expires("1200;refresher=uac")))
    assert reply is not None and reply.status == 200
    assert reply.headers.get("Session-Expires") == "1200;refresher=uac"
    assert reply.headers.get_all("Require") == ["timer"]


# --- the phone refreshes, then stops ----------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "deadline"),
    [(90, 60), (120, 88), (1800, 1768)],
    ids=["a third of 90 before", "32 s before 120", "32 s before 1800"],
)
async def test_a_phone_that_never_refreshes_is_hung_up_shortly_before_its_session_expires(
    interval: int, deadline: int
) -> None:
    pbx, alice, carol, call = await alice_calls_carol(
        TIMER, session_expires(f"{interval};refresher=uac")
    )
    await pbx.advance(deadline - 1)
    assert talking(pbx, call)
    assert "BYE" not in alice.got + carol.got

    await pbx.advance(1)
    assert hung_up_by_session_timer(pbx, alice, carol, call)
    assert pbx.record(call.call_id)["disposition"] == "answered"
    assert pbx.ports.open == []


@pytest.mark.parametrize("method", ["UPDATE", "INVITE"])
async def test_a_refresh_before_the_deadline_pushes_it_back_a_whole_interval(method: str) -> None:
    pbx, alice, carol, call = await alice_calls_carol(TIMER, session_expires("90;refresher=uac"))
    await pbx.advance(50)
    refresh = (TIMER, session_expires("90;refresher=uac"))
    body = alice.sdp() if method == "INVITE" else b""
    reply = await alice.offer(body, method=method, headers=refresh)
    assert reply is not None and reply.status == 200

    await pbx.advance(59)  # 109 s after the answer: past the first deadline (60)
    assert talking(pbx, call)
    await pbx.advance(1)  # 60 s after the refresh
    assert hung_up_by_session_timer(pbx, alice, carol, call)


async def test_a_phone_that_refreshes_every_half_interval_is_never_hung_up() -> None:
    pbx, alice, carol, call = await alice_calls_carol(TIMER, session_expires("90;refresher=uac"))
    for _ in range(10):
        await pbx.advance(45)
        reply = await alice.send("UPDATE", headers=(TIMER, session_expires("90;refresher=uac")))
        assert reply is not None and reply.status == 200
    assert talking(pbx, call)
    assert "BYE" not in alice.got + carol.got


# --- we refresh -------------------------------------------------------------------------------


async def test_we_refresh_with_an_update_at_half_the_interval_when_the_phone_takes_update() -> None:
    pbx, alice, carol, call = await alice_calls_carol(
        TIMER, ALLOW_UPDATE, session_expires("1800;refresher=uas")
    )
    await pbx.advance(899)
    assert alice.got == []

    for turn in (1, 2, 3):
        await pbx.advance(1 if turn == 1 else 900)
        assert alice.got == ["UPDATE"] * turn
        update = alice.received("UPDATE")[-1]
        assert (update.headers.get("Session-Expires") or "").startswith("1800;")
        assert update.body == b""
        await alice.respond(update, headers=(session_expires("1800;refresher=uac"),))
    assert talking(pbx, call)
    assert carol.got == ["INVITE", "ACK"]  # the other leg is left alone


async def test_we_refresh_with_a_reinvite_of_our_last_sdp_when_the_phone_takes_no_update() -> None:
    pbx, alice, carol, call = await alice_calls_carol(
        TIMER, ALLOW_NO_UPDATE, session_expires("1800;refresher=uas")
    )
    await pbx.advance(900)
    assert alice.got == ["INVITE"]

    cseqs = []
    for turn in (1, 2):
        reinvite = alice.received("INVITE")[-1]
        assert (reinvite.headers.get("Session-Expires") or "").startswith("1800;")
        assert reinvite.headers.get("Content-Type") == "application/sdp"
        assert reinvite.body == call.final.body  # the same offer-answer state, unchanged
        await alice.respond(reinvite, body=alice.answer_to(reinvite.body))
        ack = alice.received("ACK")[-1]
        assert ack.cseq.number == reinvite.cseq.number
        assert ack.call_id == call.sip_call_id
        cseqs.append(reinvite.cseq.number)
        assert alice.got == ["INVITE", "ACK"] * turn
        await pbx.advance(900)
    assert cseqs[1] == cseqs[0] + 1
    assert talking(pbx, call)


async def test_a_phone_that_takes_update_but_asks_nothing_of_us_still_gets_our_refresh() -> None:
    # No `timer` in Supported: the phone cannot refresh, so we do (RFC 4028 9).
    pbx, alice, carol, call = await alice_calls_carol(ALLOW_UPDATE, session_expires("1800"))
    await pbx.advance(900)
    assert alice.got == ["UPDATE"]


async def test_a_phone_that_refreshes_although_we_are_the_refresher_moves_our_refresh_on() -> None:
    pbx, alice, carol, call = await alice_calls_carol(
        TIMER, ALLOW_UPDATE, session_expires("1800;refresher=uas")
    )
    await pbx.advance(600)
    await alice.send("UPDATE", headers=(TIMER, session_expires("1800;refresher=uas")))
    await pbx.advance(899)  # 1499 s after the answer
    assert alice.got == []
    await pbx.advance(1)
    assert alice.got == ["UPDATE"]


async def test_our_refreshes_stop_when_the_call_ends() -> None:
    pbx, alice, carol, call = await alice_calls_carol(
        TIMER, ALLOW_UPDATE, session_expires("1800;refresher=uas")
    )
    await carol.hang_up()
    assert pbx.clock.next_due() is None
    await pbx.advance(3600)
    assert alice.got == ["BYE"]


async def test_our_refresh_names_us_the_refresher() -> None:
    pbx, alice, carol, call = await alice_calls_carol(
        TIMER, ALLOW_UPDATE, session_expires("1800;refresher=uas")
    )
    await pbx.advance(900)
    assert alice.received("UPDATE")[-1].headers.get("Session-Expires") == "1800;refresher=uac"


async def test_our_refresh_reinvite_after_a_hold_carries_the_sdp_we_last_sent() -> None:
    pbx, alice, carol, call = await alice_calls_carol(
        TIMER, ALLOW_NO_UPDATE, session_expires("1800;refresher=uas")
    )
    held = await alice.hold()
    assert held is not None and sdp.direction(sdp.SessionDescription.parse(held.body)) == (
        "recvonly"
    )
    await pbx.advance(900)
    assert alice.received("INVITE")[-1].body == held.body


async def test_update_listed_on_a_second_allow_line_gets_update_refreshes() -> None:
    pbx, alice, carol, call = await alice_calls_carol(
        TIMER,
        ("Allow", "INVITE, ACK, CANCEL, BYE"),
        ("Allow", "OPTIONS, UPDATE"),
        session_expires("1800;refresher=uas"),
    )
    await pbx.advance(900)
    assert alice.got == ["UPDATE"]


@pytest.mark.parametrize("allow", [ALLOW_UPDATE, ALLOW_NO_UPDATE], ids=["UPDATE", "re-INVITE"])
@pytest.mark.parametrize("failure", [None, 408, 481], ids=["timeout", "408", "481"])
async def test_a_refresh_that_times_out_or_finds_no_dialog_hangs_up_the_call(
    allow: Header, failure: int | None
) -> None:
    pbx, alice, carol, call = await alice_calls_carol(
        TIMER, allow, session_expires("1800;refresher=uas")
    )
    await pbx.advance(900)
    refresh = alice.received()[-1]
    if failure is None:
        await alice.never_answer(refresh)
    else:
        await alice.respond(refresh, failure)
    assert not talking(pbx, call)
    assert carol.got.count("BYE") == 1


# --- no timer asked ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [(), (TIMER,), (TIMER, ALLOW_UPDATE)],
    ids=["nothing", "timer supported", "timer supported and UPDATE allowed"],
)
async def test_a_call_without_session_expires_arms_no_timer_and_is_never_hung_up_by_one(
    headers: tuple[Header, ...],
) -> None:
    pbx, alice, carol, call = await alice_calls_carol(*headers)
    assert call.final.headers.get("Session-Expires") is None
    assert call.final.headers.get("Require") is None
    assert pbx.clock.next_due() is None

    await pbx.advance(24 * 3600)
    assert talking(pbx, call)
    assert alice.got == []
    assert carol.got == ["INVITE", "ACK"]
