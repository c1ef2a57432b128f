"""What the call layer says happened: call and leg events, key presses, busy lamps, records.

Alice (201) calls Bob (202, a desk phone and a mobile). The SIP stack, the clock and the media
ports are fakes (tests/unit/fakes/).
"""

from __future__ import annotations

import pytest

from pbx.engine.call import CallState, Disposition
from pbx.engine.events import (
    CallChanged,
    DigitPressed,
    Event,
    EventBus,
    ExtensionKey,
    ExtensionState,
    ExtensionStateChanged,
    RegistrationChanged,
)
from pbx.engine.operations import HANG_UP_REFERRER_AFTER
from tests.unit.fakes.directory import COMPANY, extension
from tests.unit.fakes.office import Pbx, office

IDLE, RINGING, DIALLING, TALKING, HELD = (
    ExtensionState.IDLE,
    ExtensionState.RINGING,
    ExtensionState.DIALLING,
    ExtensionState.TALKING,
    ExtensionState.HELD,
)


def call_events(pbx: Pbx, call_id: str) -> list[CallChanged]:
    return [e for e in pbx.log if isinstance(e, CallChanged) and e.call_id == call_id]


def lamps_from_events(pbx: Pbx) -> dict[ExtensionKey, ExtensionState]:
    """The busy lamps a console that saw every event since the start would show."""
    lamps: dict[ExtensionKey, ExtensionState] = {}
    for e in pbx.log:
        if isinstance(e, ExtensionStateChanged):
            lamps[(e.company_id, e.number)] = e.state
    return {key: state for key, state in lamps.items() if state is not IDLE}


# --- call events ---------------------------------------------------------------------------


async def test_an_answered_call_says_each_move_once_with_who_and_when() -> None:
    pbx = office()
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    call = await alice.dial("202")
    await pbx.advance(4)
    await desk.answer()
    await pbx.advance(60)
    await desk.hang_up()

    events = call_events(pbx, call.call_id)
    assert [(e.previous, e.state) for e in events] == [
        (None, CallState.ROUTING),
        (CallState.ROUTING, CallState.RINGING),
        (CallState.RINGING, CallState.ANSWERED),
        (CallState.ANSWERED, CallState.ENDED),
    ]
    assert [e.at - events[0].at for e in events] == [0, 0, 4, 64]
    assert {(e.company_id, e.caller, e.caller_name, e.dialled, e.direction) for e in events} == {
        (COMPANY, "201", "Alice", "202", "internal")
    }
    assert events[2].answered_by == "bob-desk"
    assert (events[-1].disposition, events[-1].reason) == (Disposition.ANSWERED, "bye")


async def test_a_key_pressed_by_the_callee_is_a_digit_event_of_its_call() -> None:
    pbx = office()
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    call = await alice.dial("202")
    await desk.answer()

    pbx.media(desk).press("#", duration_ms=80)
    pressed = [e for e in pbx.log if isinstance(e, DigitPressed)]
    assert [(e.call_id, e.digit, e.duration_ms) for e in pressed] == [(call.call_id, "#", 80)]
    assert pressed[0].leg_id == pbx.call(call.call_id).b.id  # type: ignore[union-attr]


async def test_after_a_transfer_the_transferees_keys_belong_to_its_new_call() -> None:
    pbx = office(extension("202", "Bob", "bob"))
    alice, bob, carol = pbx.phone("alice"), pbx.phone("bob"), pbx.phone("carol")
    await alice.dial("202")
    await bob.answer()
    await bob.refer("203")
    await carol.answer()

    pbx.media(alice).press("1")
    pressed = [e for e in pbx.log if isinstance(e, DigitPressed)]
    assert [e.call_id for e in pressed] == [pbx.call_ids()[1]]


# --- presence: the busy lamps --------------------------------------------------------------


async def test_the_callees_lamp_goes_ringing_then_talking_then_idle() -> None:
    pbx = office()
    alice, desk, mobile = pbx.phone("alice"), pbx.phone("bob-desk"), pbx.phone("bob-mobile")
    await alice.dial("202")
    assert pbx.presence.state(COMPANY, "202") is RINGING
    await desk.answer()
    await mobile.refuse(487)
    assert pbx.presence.state(COMPANY, "202") is TALKING
    await alice.hang_up()
    assert pbx.extension_states("202") == [IDLE, RINGING, TALKING, IDLE]


async def test_the_callers_lamp_goes_dialling_then_talking_then_idle() -> None:
    pbx = office()
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    await alice.dial("202")
    assert pbx.presence.state(COMPANY, "201") is DIALLING
    await desk.answer()
    await desk.hang_up()
    assert pbx.extension_states("201") == [IDLE, DIALLING, TALKING, IDLE]


async def test_an_extension_is_busy_only_while_one_of_its_phones_talks() -> None:
    pbx = office()
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    await alice.dial("202")
    assert not pbx.presence.is_busy(COMPANY, "202")
    await desk.answer()
    assert pbx.presence.is_busy(COMPANY, "202")
    assert pbx.presence.is_busy(COMPANY, "201")
    await alice.hang_up()
    assert not pbx.presence.is_busy(COMPANY, "202")
    assert not pbx.presence.is_busy(COMPANY, "201")


async def test_the_lamp_of_the_extension_that_holds_shows_held_until_it_resumes() -> None:
    pbx = office()
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    await alice.dial("202")
    await desk.answer()
    await desk.hold()
    assert pbx.presence.state(COMPANY, "202") is HELD
    await desk.resume()
    assert pbx.extension_states("202") == [IDLE, RINGING, TALKING, HELD, TALKING]


async def test_the_lamp_of_the_party_put_on_hold_shows_held_too() -> None:
    pbx = office()
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    await alice.dial("202")
    await desk.answer()
    await desk.hold()
    assert pbx.presence.state(COMPANY, "201") is HELD


async def test_the_lamps_a_console_builds_from_events_match_the_snapshot_at_every_step() -> None:
    pbx = office(extension("202", "Bob", "bob"))
    alice, bob, carol = pbx.phone("alice"), pbx.phone("bob"), pbx.phone("carol")
    steps = [
        lambda: alice.dial("202"),
        lambda: bob.answer(),
        lambda: bob.hold(),
        lambda: bob.refer("203"),
        lambda: carol.ring(),
        lambda: carol.answer(),
        lambda: pbx.advance(HANG_UP_REFERRER_AFTER),
        lambda: carol.hang_up(),
    ]
    seen = []
    for step in steps:
        await step()
        assert lamps_from_events(pbx) == pbx.presence.snapshot()
        seen.append(pbx.presence.snapshot())
    assert seen[1] == {(COMPANY, "201"): TALKING, (COMPANY, "202"): TALKING}
    assert seen[4] == {(COMPANY, "201"): TALKING, (COMPANY, "202"): HELD, (COMPANY, "203"): RINGING}
    assert seen[6] == {(COMPANY, "201"): TALKING, (COMPANY, "203"): TALKING}
    assert seen[-1] == {}


# --- records -------------------------------------------------------------------------------


async def test_each_call_gets_one_record_with_how_it_ended() -> None:
    pbx = office(extension("203", "Carol", "carol", do_not_disturb=True))
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    pbx.phone("carol")
    answered = await alice.dial("202")
    await desk.answer()
    await alice.hang_up()
    refused = await alice.dial("203")

    assert pbx.recorder.records == {
        answered.call_id: {
            "direction": "internal",
            "caller": "201",
            "callee": "202",
            "disposition": "answered",
            "answered_by": "bob-desk",
            "reason": "bye",
        },
        refused.call_id: {
            "direction": "internal",
            "caller": "201",
            "callee": "203",
            "disposition": "no_answer",
            "answered_by": "",
            "reason": "do not disturb",
        },
    }


# --- the bus -------------------------------------------------------------------------------


def test_a_failing_subscriber_is_logged_and_the_others_still_get_the_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    got: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    bus.subscribe(got.append)
    event = RegistrationChanged("alice", 1, 0.0)
    bus.emit(event)
    assert got == [event]
    assert "broken" in caplog.text and "RegistrationChanged" in caplog.text


def test_an_unsubscribed_subscriber_gets_nothing_more() -> None:
    bus = EventBus()
    got: list[Event] = []
    unsubscribe = bus.subscribe(got.append)
    bus.emit(RegistrationChanged("alice", 1, 0.0))
    unsubscribe()
    unsubscribe()  # twice is harmless
    bus.emit(RegistrationChanged("alice", 0, 1.0))
    assert [e.contacts for e in got] == [1]  # type: ignore[union-attr]
