"""The auto-attendant ("Multiselection", pbx/engine/attendant.py) in the call layer: the menu the
schedule picks, the PBX answering and playing it, keys (RFC 4733 and SIP INFO) taken at once,
menus and back, retries that never trap a caller, and the keys that send the caller on.

The office of tests/unit/fakes with the Multiselection 800 ("Reception"): its day menu answers
on weekdays from 08:30 to 18:00 in Rome, a holiday menu on Christmas, the night menu otherwise.
Alice (201) calls it; Bob (202, one phone here), Carol (203) and Dave (204) are behind its keys.
Announcements last 3 s on the fake clock; a menu waits 5 s for a key and replays twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from pbx.engine.attendant import MAX_FAILURES
from pbx.engine.call import CallState
from pbx.engine.directory import AttendantInfo, HuntGroupInfo, MenuAction, MenuInfo
from pbx.engine.events import CallChanged, DigitPressed
from pbx.engine.operator import OperatorDesk
from pbx.engine.schedule import Period
from tests.unit.fakes.directory import COMPANY, extension
from tests.unit.fakes.media import bridged
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.phones import Dialled, Phone

RECEPTION = "800"
DAY, SALES, NIGHT, HOLIDAY, SUPPORT = 1, 2, 3, 4, 5
ANNOUNCEMENT = 3.0  # seconds each announcement lasts
TIMEOUT = 5.0
CHRISTMAS = date(2026, 12, 25)


def key(action: str, number: str = "", menu: int | None = None) -> MenuAction:
    return MenuAction(action, number, menu)


def menu(menu_id: int, name: str, **keys: MenuAction) -> MenuInfo:
    """A menu whose announcement is "<name>.wav"; `keys` by name: k1 is "1", star "*",
    hash "#", timeout and invalid themselves."""
    names = {"star": "*", "hash": "#"}
    return MenuInfo(
        menu_id,
        name,
        f"{name}.wav",
        timeout=TIMEOUT,
        retries=2,
        keys=tuple((names.get(k, k.removeprefix("k")), action) for k, action in keys.items()),
    )


DAY_MENU = menu(
    DAY,
    "day",
    k1=key("extension", "202"),
    k2=key("menu", menu=SALES),
    k3=key("hunt_group", "600"),
    k4=key("extension", "203"),
    k5=key("outside", "0612345678"),
    k0=key("operator"),
    k9=key("hangup"),
    star=key("back"),
    hash=key("replay"),
)
SALES_MENU = menu(
    SALES, "sales", k1=key("extension", "203"), k2=key("menu", menu=SUPPORT), star=key("back")
)
SUPPORT_MENU = menu(SUPPORT, "support", k1=key("extension", "204"), star=key("back"))
NIGHT_MENU = menu(NIGHT, "night", k1=key("extension", "204"))
HOLIDAY_MENU = menu(HOLIDAY, "holiday")
WEEKDAYS = tuple(Period(day, 8 * 60 + 30, 18 * 60, DAY) for day in range(5))


def reception(*menus: MenuInfo, **options: object) -> AttendantInfo:
    """The Multiselection 800: by default the five menus above on the week above."""
    info = AttendantInfo(
        COMPANY,
        RECEPTION,
        "Reception",
        periods=WEEKDAYS,
        holidays=((CHRISTMAS, HOLIDAY),),
        default_menu=NIGHT,
        menus=menus or (DAY_MENU, SALES_MENU, NIGHT_MENU, HOLIDAY_MENU, SUPPORT_MENU),
    )
    return replace(info, **options)  # type: ignore[arg-type]


def front_office(attendant: AttendantInfo | None = None) -> Pbx:
    """The office with Bob on one phone, the reception, its announcements and hunt group 600
    (Carol and Dave ringing together); the wall clock on Monday at 09:00 in Rome."""
    pbx = office(extension("202", "Bob", "bob"))
    info = attendant or reception()
    pbx.directory.attendants[(COMPANY, info.number)] = info
    for m in info.menus:
        if m.announcement:
            pbx.prompts.add(m.announcement, ANNOUNCEMENT)
    pbx.directory.hunt_groups[(COMPANY, "600")] = HuntGroupInfo(
        COMPANY, "600", "Support", "ring_all", (("203", 20), ("204", 20))
    )
    return pbx


async def in_the_menu(attendant: AttendantInfo | None = None) -> tuple[Pbx, Phone, Dialled]:
    pbx = front_office(attendant)
    alice = pbx.phone("alice")
    call = await alice.dial(RECEPTION)
    assert pbx.call(call.call_id).state is CallState.ATTENDANT
    return pbx, alice, call


async def press(pbx: Pbx, phone: Phone, *digits: str) -> None:
    """`phone` presses `digits` (RFC 4733), one after the other."""
    for digit in digits:
        pbx.media(phone).press(digit)
        await pbx.settle()


async def wait_out(pbx: Pbx) -> None:
    """The announcement plays to its end and nobody presses a key for the menu's timeout."""
    await pbx.advance(ANNOUNCEMENT + TIMEOUT)


def hung_up(pbx: Pbx, phone: Phone, call: Dialled) -> bool:
    """The PBX hung up `phone`'s answered call: BYE, the call ended, nothing left running."""
    return (
        phone.got[-1:] == ["BYE"]
        and pbx.call_states(call.call_id)[-1] is CallState.ENDED
        and pbx.attendants.sessions == {}
        and pbx.clock.next_due() is None
        and pbx.ports.open == []
    )


# --- the schedule picks the menu ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "played"),
    [
        (datetime(2026, 3, 2, 8, 0, tzinfo=UTC), "day.wav"),  # Monday 09:00 CET
        (datetime(2026, 3, 2, 7, 29, tzinfo=UTC), "night.wav"),  # Monday 08:29, before opening
        (datetime(2026, 3, 2, 7, 30, tzinfo=UTC), "day.wav"),  # Monday 08:30, opening
        (datetime(2026, 3, 2, 17, 0, tzinfo=UTC), "night.wav"),  # Monday 18:00, closed
        (datetime(2026, 3, 7, 10, 0, tzinfo=UTC), "night.wav"),  # Saturday 11:00
        (datetime(2026, 12, 25, 10, 0, tzinfo=UTC), "holiday.wav"),  # Christmas, a Friday
        (datetime(2026, 12, 24, 23, 30, tzinfo=UTC), "holiday.wav"),  # already the 25th in Rome
        (datetime(2026, 12, 25, 23, 30, tzinfo=UTC), "night.wav"),  # the 26th in Rome
        # 06:45 UTC is 07:45 in Rome in winter (closed) but 08:45 in summer time (open).
        (datetime(2026, 3, 27, 6, 45, tzinfo=UTC), "night.wav"),  # Friday, CET
        (datetime(2026, 3, 30, 6, 45, tzinfo=UTC), "day.wav"),  # Monday after the change, CEST
        (datetime(2026, 10, 26, 6, 45, tzinfo=UTC), "night.wav"),  # Monday back in CET
    ],
)
async def test_the_schedule_picks_the_menu(instant: datetime, played: str) -> None:
    pbx = front_office()
    pbx.wall.set(instant)
    alice = pbx.phone("alice")
    await alice.dial(RECEPTION)
    assert pbx.played(alice) == [played]


async def test_the_menu_is_chosen_when_the_call_comes_and_kept_for_the_call() -> None:
    pbx = front_office()
    pbx.wall.set(datetime(2026, 3, 2, 16, 59, 59, tzinfo=UTC))  # Monday 17:59:59 in Rome
    alice = pbx.phone("alice")
    await alice.dial(RECEPTION)
    await pbx.advance(ANNOUNCEMENT + TIMEOUT)  # 18:00 has passed: the replay is the same menu
    assert pbx.played(alice) == ["day.wav", "day.wav"]


async def test_without_a_menu_for_the_moment_the_caller_gets_480() -> None:
    pbx = front_office(reception(default_menu=None))
    pbx.wall.set(datetime(2026, 3, 7, 10, 0, tzinfo=UTC))  # Saturday: no period, no default
    call = await pbx.phone("alice").dial(RECEPTION)
    assert call.statuses == [100, 480]
    assert pbx.ports.open == []


# --- answering and playing ---------------------------------------------------------------------


async def test_the_pbx_answers_and_plays_the_menu() -> None:
    pbx, alice, call = await in_the_menu()
    assert call.statuses == [100, 200]
    assert call.final.body  # our SDP: the caller hears us
    assert pbx.played(alice) == ["day.wav"]
    assert pbx.media(alice).playing
    assert pbx.call_states(call.call_id) == [CallState.ROUTING, CallState.ATTENDANT]
    assert pbx.record(call.call_id)["answered_by"] == RECEPTION


async def test_a_menu_whose_announcement_cannot_be_read_plays_silence_and_still_takes_keys() -> (
    None
):
    broken = replace(DAY_MENU, announcement="gone.wav")
    pbx = front_office(reception(broken, SALES_MENU, NIGHT_MENU, HOLIDAY_MENU))
    del pbx.prompts.samples["gone.wav"]
    alice = pbx.phone("alice")
    await alice.dial(RECEPTION)
    assert pbx.played(alice) == ["silence"]
    await press(pbx, alice, "2")
    assert pbx.played(alice) == ["silence", "sales.wav"]


async def test_a_key_during_the_announcement_acts_at_once() -> None:
    pbx, alice, call = await in_the_menu()
    await pbx.advance(1)
    await press(pbx, alice, "2")
    assert pbx.played(alice) == ["day.wav", "sales.wav"]
    await pbx.advance(ANNOUNCEMENT - 1)  # what remained of the day menu: nothing replays
    assert pbx.played(alice) == ["day.wav", "sales.wav"]


async def test_a_submenu_and_back_and_back_again() -> None:
    pbx, alice, call = await in_the_menu()
    await press(pbx, alice, "2", "2", "*", "*")
    assert pbx.played(alice) == ["day.wav", "sales.wav", "support.wav", "sales.wav", "day.wav"]


async def test_back_in_the_top_menu_replays_it() -> None:
    pbx, alice, call = await in_the_menu()
    await press(pbx, alice, "*")
    assert pbx.played(alice) == ["day.wav", "day.wav"]


async def test_the_replay_key_replays() -> None:
    pbx, alice, call = await in_the_menu()
    await pbx.advance(ANNOUNCEMENT + 2)
    await press(pbx, alice, "#")
    assert pbx.played(alice) == ["day.wav", "day.wav"]
    await pbx.advance(ANNOUNCEMENT + TIMEOUT - 0.1)  # the wait starts again after the replay
    assert pbx.played(alice) == ["day.wav", "day.wav"]


# --- invalid keys and timeouts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "then"),
    [
        ({"invalid": key("menu", menu=SALES)}, "sales.wav"),
        ({"invalid": key("menu", menu=SALES), "timeout": key("hangup")}, "sales.wav"),
        ({"timeout": key("menu", menu=SALES)}, "sales.wav"),  # no invalid action: the timeout's
        ({"invalid": key("hangup")}, "BYE"),
        ({}, "BYE"),  # nothing to do: goodbye
        ({"invalid": key("replay")}, "BYE"),  # replaying for ever is no action
    ],
    ids=["invalid", "invalid-before-timeout", "timeout-instead", "hangup", "none", "replay"],
)
async def test_an_invalid_key_replays_then_does_the_invalid_action(
    keys: dict[str, MenuAction], then: str
) -> None:
    strict = replace(DAY_MENU, keys=(("1", key("extension", "202")), *keys.items()))
    pbx, alice, call = await in_the_menu(reception(strict, SALES_MENU, NIGHT_MENU, HOLIDAY_MENU))
    await press(pbx, alice, "7", "8")
    assert pbx.played(alice) == ["day.wav"] * 3
    await press(pbx, alice, "7")
    if then == "BYE":
        assert hung_up(pbx, alice, call)
    else:
        assert pbx.played(alice) == ["day.wav"] * 3 + [then]


@pytest.mark.parametrize(
    ("keys", "then"),
    [
        ({"timeout": key("menu", menu=SALES)}, "sales.wav"),
        ({"timeout": key("menu", menu=SALES), "invalid": key("hangup")}, "sales.wav"),
        ({"invalid": key("menu", menu=SALES)}, "BYE"),  # the invalid action is not the timeout's
        ({"timeout": key("hangup")}, "BYE"),
        ({}, "BYE"),
    ],
    ids=["timeout", "timeout-not-invalid", "only-invalid", "hangup", "none"],
)
async def test_a_timeout_replays_then_does_the_timeout_action(
    keys: dict[str, MenuAction], then: str
) -> None:
    strict = replace(DAY_MENU, keys=(("1", key("extension", "202")), *keys.items()))
    pbx, alice, call = await in_the_menu(reception(strict, SALES_MENU, NIGHT_MENU, HOLIDAY_MENU))
    await wait_out(pbx)
    await wait_out(pbx)
    assert pbx.played(alice) == ["day.wav"] * 3
    await pbx.advance(ANNOUNCEMENT + TIMEOUT - 0.1)
    assert pbx.played(alice) == ["day.wav"] * 3  # not before the third timeout
    await pbx.advance(0.1)
    if then == "BYE":
        assert hung_up(pbx, alice, call)
        assert pbx.record(call.call_id)["disposition"] == "answered"
    else:
        assert pbx.played(alice) == ["day.wav"] * 3 + [then]


async def test_a_key_resets_nothing_but_a_new_menu_gets_its_own_retries() -> None:
    timeouts_to_sales = replace(DAY_MENU, keys=(*DAY_MENU.keys, ("timeout", key("hangup"))))
    pbx, alice, call = await in_the_menu(
        reception(timeouts_to_sales, SALES_MENU, NIGHT_MENU, HOLIDAY_MENU, SUPPORT_MENU)
    )
    await wait_out(pbx)
    await wait_out(pbx)  # two replays spent in the day menu
    await press(pbx, alice, "2", "*")  # to sales and back: the day menu starts afresh
    await wait_out(pbx)
    await wait_out(pbx)
    assert not hung_up(pbx, alice, call)
    await wait_out(pbx)
    assert hung_up(pbx, alice, call)


# --- menus that lead back into themselves never trap a caller -------------------------------------


def looping(kind: str) -> AttendantInfo:
    if kind == "itself":
        day = menu(DAY, "day", timeout=key("menu", menu=DAY))
        return reception(day, NIGHT_MENU, HOLIDAY_MENU)
    if kind == "each-other":
        day = menu(DAY, "day", timeout=key("menu", menu=SALES))
        sales = menu(SALES, "sales", timeout=key("menu", menu=DAY))
        return reception(day, sales, NIGHT_MENU, HOLIDAY_MENU)
    if kind == "invalid-itself":
        day = menu(DAY, "day", invalid=key("menu", menu=DAY), timeout=key("menu", menu=DAY))
        return reception(replace(day, retries=0), NIGHT_MENU, HOLIDAY_MENU)
    assert kind == "missing-menu"
    day = menu(DAY, "day", timeout=key("menu", menu=99), invalid=key("menu", menu=99))
    return reception(day, NIGHT_MENU, HOLIDAY_MENU)


@pytest.mark.parametrize("kind", ["itself", "each-other"])
async def test_a_menu_looping_on_timeouts_hangs_up_after_max_failures(kind: str) -> None:
    pbx, alice, call = await in_the_menu(looping(kind))
    for _ in range(MAX_FAILURES - 1):
        await wait_out(pbx)
    assert not hung_up(pbx, alice, call)
    await wait_out(pbx)
    assert hung_up(pbx, alice, call)
    assert len(pbx.played(alice)) <= MAX_FAILURES
    assert pbx.ended(call.call_id).reason == "too many timeouts and invalid keys"


async def test_actions_to_a_menu_that_is_gone_count_as_failures_and_end_in_a_hang_up() -> None:
    pbx, alice, call = await in_the_menu(looping("missing-menu"))
    for _ in range(MAX_FAILURES):
        if hung_up(pbx, alice, call):
            break
        await wait_out(pbx)
    assert hung_up(pbx, alice, call)
    assert pbx.played(alice) == ["day.wav"] * 3  # the replays, then nowhere to go


async def test_invalid_keys_into_a_menu_looping_on_itself_hang_up_after_max_failures() -> None:
    pbx, alice, call = await in_the_menu(looping("invalid-itself"))
    await press(pbx, alice, *["7"] * (MAX_FAILURES - 1))
    assert not hung_up(pbx, alice, call)
    await press(pbx, alice, "7")
    assert hung_up(pbx, alice, call)


# --- keys that send the caller on ----------------------------------------------------------------


async def test_a_key_to_an_extension_rings_it_with_ringback_and_bridges_when_it_answers() -> None:
    pbx, alice, call = await in_the_menu()
    bob = pbx.phone("bob")
    await press(pbx, alice, "1")
    assert bob.invite.from_addr.uri.user == "201"  # type: ignore[union-attr]
    assert pbx.played(alice)[-1] == "ringback"
    await bob.ring()
    assert call.statuses == [100, 200]  # nothing more for an answered caller
    await press(pbx, alice, "2")  # keys no longer count
    assert pbx.played(alice) == ["day.wav", "ringback"]

    await bob.answer()
    assert bridged(pbx.media(alice), pbx.media(bob))
    assert pbx.call_states(call.call_id) == [
        CallState.ROUTING,
        CallState.ATTENDANT,
        CallState.ROUTING,
        CallState.RINGING,
        CallState.ANSWERED,
    ]
    answered = [e for e in pbx.log if isinstance(e, CallChanged) and e.state is CallState.ANSWERED]
    assert [e.answered_by for e in answered] == ["bob"]
    # Answered by the menu first (its answer time stays), then taken by Bob: the record, and
    # Bob's call log, say who the caller reached.
    assert pbx.record(call.call_id)["answered_by"] == "bob"

    await alice.hang_up()
    assert bob.got[-1] == "BYE"
    assert pbx.record(call.call_id)["disposition"] == "answered"
    assert pbx.attendants.sessions == {}
    assert pbx.ports.open == []


async def test_a_key_to_an_extension_that_does_not_answer_hangs_up_the_caller() -> None:
    pbx, alice, call = await in_the_menu()
    bob = pbx.phone("bob")
    await press(pbx, alice, "1")
    await bob.ring()
    await pbx.advance(20)  # Bob's no-answer time
    assert bob.got == ["INVITE", "CANCEL"]
    assert hung_up(pbx, alice, call)
    assert pbx.record(call.call_id)["disposition"] == "answered"
    assert pbx.ended(call.call_id).reason == "no answer"


async def test_a_key_to_a_busy_extension_hangs_up_the_caller() -> None:
    pbx, alice, call = await in_the_menu()
    bob = pbx.phone("bob")
    await press(pbx, alice, "1")
    await bob.refuse(486)
    assert hung_up(pbx, alice, call)


async def test_a_key_to_an_extension_follows_its_forwarding_on_no_answer() -> None:
    pbx, alice, call = await in_the_menu()
    pbx.directory.extensions[(COMPANY, "202")] = extension(
        "202", "Bob", "bob", forward_no_answer="203"
    )
    bob, carol = pbx.phone("bob"), pbx.phone("carol")
    await press(pbx, alice, "1")
    await pbx.advance(20)
    assert bob.got == ["INVITE"]  # it never rang: the CANCEL waits for a provisional
    assert carol.invites
    await carol.answer()
    assert bridged(pbx.media(alice), pbx.media(carol))


async def test_an_extension_forwarding_back_to_the_menu_answers_the_caller_again() -> None:
    pbx, alice, call = await in_the_menu()
    pbx.directory.extensions[(COMPANY, "202")] = extension(
        "202", "Bob", "bob", forward_no_answer=RECEPTION
    )
    pbx.phone("bob")
    await press(pbx, alice, "1")
    await pbx.advance(20)
    assert pbx.call(call.call_id).state is CallState.ATTENDANT
    assert pbx.played(alice) == ["day.wav", "ringback", "day.wav"]
    assert call.statuses == [100, 200]  # answered once
    await press(pbx, alice, "2")  # the new session takes keys
    assert pbx.played(alice)[-1] == "sales.wav"
    await alice.hang_up()
    assert pbx.attendants.sessions == {}
    assert pbx.clock.next_due() is None


async def test_a_key_to_a_hunt_group_rings_its_members() -> None:
    pbx, alice, call = await in_the_menu()
    carol, dave = pbx.phone("carol"), pbx.phone("dave")
    await press(pbx, alice, "3")
    assert carol.got == dave.got == ["INVITE"]
    await dave.ring()
    await carol.ring()
    await dave.answer()
    assert carol.got == ["INVITE", "CANCEL"]
    assert bridged(pbx.media(alice), pbx.media(dave))


async def test_a_key_to_an_outside_number_rings_the_carrier() -> None:
    pbx, alice, call = await in_the_menu()
    carrier = pbx.carrier()
    await press(pbx, alice, "5")
    assert carrier.invite.uri == "sip:612345678@sip.carrier.example"
    await carrier.answer()
    assert bridged(pbx.media(alice), pbx.media(carrier))


async def test_the_operator_key_puts_the_call_in_the_operator_queue() -> None:
    pbx, alice, call = await in_the_menu()
    pbx.directory.operator_numbers[COMPANY] = "9"
    desk = OperatorDesk(pbx.calls, pbx.operations, pbx.directory, pbx.registrar)
    await press(pbx, alice, "0")
    assert pbx.call(call.call_id).state is CallState.QUEUED
    assert [c.id for c in desk.queue(COMPANY)] == [call.call_id]
    assert pbx.played(alice)[-1] == "ringback"
    assert call.statuses == [100, 200]


async def test_a_caller_sent_to_the_operator_is_hung_up_when_nobody_takes_the_call() -> None:
    pbx, alice, call = await in_the_menu()
    pbx.directory.operator_numbers[COMPANY] = "9"
    await press(pbx, alice, "0")
    await pbx.advance(pbx.calls.queue_timeout)
    assert hung_up(pbx, alice, call)
    assert pbx.ended(call.call_id).reason == "nobody answered in the operator queue"


async def test_the_operator_key_without_an_operator_hangs_up() -> None:
    pbx, alice, call = await in_the_menu()
    await press(pbx, alice, "0")
    assert hung_up(pbx, alice, call)


async def test_the_hangup_key_hangs_up() -> None:
    pbx, alice, call = await in_the_menu()
    await press(pbx, alice, "9")
    assert hung_up(pbx, alice, call)
    assert pbx.ended(call.call_id).reason == "menu hangup"
    assert pbx.record(call.call_id)["disposition"] == "answered"


async def test_a_voicemail_key_names_the_extension_to_the_voicemail_hook() -> None:
    to_voicemail = replace(DAY_MENU, keys=(("6", key("voicemail", "202")),))
    pbx, alice, call = await in_the_menu(reception(to_voicemail, NIGHT_MENU, HOLIDAY_MENU))
    asked: list[str] = []
    unavailable = pbx.calls.unavailable

    def hook(call_: object, reason: str, status: int = 480, *, voicemail: str = "") -> None:
        asked.append(voicemail)
        unavailable(call_, reason, status, voicemail=voicemail)  # type: ignore[arg-type]

    pbx.calls.unavailable = hook  # type: ignore[method-assign]
    await press(pbx, alice, "6")
    assert asked == ["202"]
    assert hung_up(pbx, alice, call)  # no voicemail yet: goodbye


# --- a Multiselection that is not active -----------------------------------------------------------


async def test_a_multiselection_not_active_forwards_to_its_number() -> None:
    pbx = front_office(reception(active=False, forward_to="203"))
    alice, carol = pbx.phone("alice"), pbx.phone("carol")
    call = await alice.dial(RECEPTION)
    await carol.ring()
    assert call.statuses == [100, 180]  # not answered by the PBX
    await carol.answer()
    assert bridged(pbx.media(alice), pbx.media(carol))
    assert pbx.prompts.loaded == []


async def test_a_multiselection_not_active_without_a_forwarding_is_unavailable() -> None:
    pbx = front_office(reception(active=False))
    call = await pbx.phone("alice").dial(RECEPTION)
    assert call.statuses == [100, 480]


# --- keys that are not the caller's ------------------------------------------------------------------


async def test_keys_reach_only_the_session_of_their_call() -> None:
    pbx = front_office()
    alice, bob = pbx.phone("alice"), pbx.phone("bob")
    await alice.dial(RECEPTION)
    await bob.dial(RECEPTION)
    await press(pbx, alice, "2")
    assert pbx.played(alice) == ["day.wav", "sales.wav"]
    assert pbx.played(bob) == ["day.wav"]


async def test_a_digit_event_for_another_call_or_leg_is_ignored() -> None:
    pbx, alice, call = await in_the_menu()
    leg = pbx.call(call.call_id).a
    pbx.events.emit(DigitPressed("another call", leg.id, "2", 100, pbx.clock.now()))
    pbx.events.emit(DigitPressed(call.call_id, leg.id + 1000, "2", 100, pbx.clock.now()))
    await pbx.settle()
    assert pbx.played(alice) == ["day.wav"]


# --- the caller leaving ----------------------------------------------------------------------------


@pytest.mark.parametrize("when", [1.0, ANNOUNCEMENT + 1], ids=["announcement", "waiting"])
async def test_the_caller_hanging_up_ends_the_session_and_its_timers(when: float) -> None:
    pbx, alice, call = await in_the_menu()
    await pbx.advance(when)
    await alice.hang_up()
    assert pbx.call_states(call.call_id)[-1] is CallState.ENDED
    assert pbx.record(call.call_id)["disposition"] == "answered"
    assert pbx.attendants.sessions == {}
    assert pbx.clock.next_due() is None
    assert pbx.ports.open == []
    assert "BYE" not in alice.got


async def test_the_caller_hanging_up_while_a_key_rings_an_extension_cancels_it() -> None:
    pbx, alice, call = await in_the_menu()
    bob = pbx.phone("bob")
    await press(pbx, alice, "1")
    await bob.ring()
    await alice.hang_up()
    assert bob.got == ["INVITE", "CANCEL"]
    assert pbx.attendants.sessions == {}
    assert pbx.clock.next_due() is None


# --- SIP INFO ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "played"),
    [
        ("application/dtmf-relay", b"Signal=2\r\nDuration=160\r\n", "sales.wav"),
        ("application/dtmf-relay", b"Signal= 11\r\nDuration= 250\r\n", "day.wav"),  # "#"
        ("application/dtmf-relay", b"Signal=*\r\n", "day.wav"),  # back: a replay here
        ("application/dtmf", b"2", "sales.wav"),
    ],
    ids=["relay", "relay-hash-as-11", "relay-star", "dtmf"],
)
async def test_a_sip_info_key_acts_like_an_rfc_4733_one(
    content_type: str, body: bytes, played: str
) -> None:
    pbx, alice, call = await in_the_menu()
    reply = await alice.send("INFO", body=body, content_type=content_type)
    assert reply is not None and reply.status == 200
    assert pbx.played(alice) == ["day.wav", played]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/dtmf-relay", b"Signal=X\r\n"),
        ("application/dtmf-relay", b"Duration=160\r\n"),
        ("text/plain", b"2"),
    ],
)
async def test_a_sip_info_that_is_no_key_is_answered_and_ignored(
    content_type: str, body: bytes
) -> None:
    pbx, alice, call = await in_the_menu()
    reply = await alice.send("INFO", body=body, content_type=content_type)
    assert reply is not None and reply.status == 200
    assert pbx.played(alice) == ["day.wav"]
