"""Presence (RFC 3856) for softphones' buddy lists, engine side: a phone of the company watches
an extension and is told, as PIDF with RFC 4480's activities, whether one of its phones is
registered and whether it is on the phone. Alice (201) watches Bob (202), against the call
layer's fakes, as tests/unit/test_lamps_on_phones.py does for busy lamps."""

from __future__ import annotations

from pbx.engine.events import RegistrationChanged
from pbx.sip.event_bodies import ON_THE_PHONE, Presence
from pbx.sip.subscription import ALLOW_EVENTS, Package
from tests.unit.fakes.directory import COMPANY
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.sip import ADVERTISE
from tests.unit.test_lamps_on_phones import OTHER_COMPANY, Watcher, lamps

BOB = f"sip:202@{ADVERTISE}"


async def alice_watches_bob(pbx: Pbx) -> Watcher:
    watcher = Watcher(pbx, lamps(pbx), pbx.phone("alice"))
    ok = await watcher.subscribe("202", "presence", Accept="application/pidf+xml")
    assert ok.status == 200
    await watcher.answer()
    return watcher


def said(watcher: Watcher) -> list[Presence]:
    return [Presence.parse(n.body) for n in watcher.notifies()]


async def test_a_registered_idle_extension_is_available() -> None:
    pbx = office()
    pbx.phone("bob-desk")
    watcher = await alice_watches_bob(pbx)

    notify = watcher.last
    assert notify.headers.get("Event") == "presence"
    assert notify.headers.get("Content-Type") == "application/pidf+xml"
    assert said(watcher) == [Presence(BOB, True, "", "Available")]


async def test_a_call_shows_on_the_phone_and_its_end_available_again_once_each() -> None:
    pbx = office()
    pbx.phone("bob-desk")
    watcher = await alice_watches_bob(pbx)
    carol, bob = pbx.phone("carol"), pbx.phone("bob-desk")

    await carol.dial("202")
    await watcher.answer()
    await bob.answer()
    await watcher.answer()
    await carol.hang_up()
    await watcher.answer()

    assert [(p.activity, p.note) for p in said(watcher)] == [
        ("", "Available"),
        (ON_THE_PHONE, "Ringing"),
        (ON_THE_PHONE, "On the phone"),  # ringing -> talking: the note changed
        ("", "Available"),
    ]


async def test_an_extension_without_a_registered_phone_is_offline_until_one_registers() -> None:
    pbx = office()
    watcher = await alice_watches_bob(pbx)
    assert said(watcher) == [Presence(BOB, False, "", "Offline")]

    pbx.phone("bob-mobile")  # registers
    pbx.events.emit(RegistrationChanged("bob-mobile", 1, pbx.clock.now(), COMPANY, "202"))
    await pbx.settle()

    assert said(watcher)[-1] == Presence(BOB, True, "", "Available")


async def test_presence_is_refused_like_a_busy_lamp_outside_the_company() -> None:
    pbx = office()
    subs = lamps(pbx)
    watcher = Watcher(pbx, subs, pbx.phone("alice"))
    assert (await watcher.subscribe("299", "presence")).status == 404
    stranger = Watcher(pbx, subs, pbx.phone("carol"))
    assert (await stranger.subscribe("202", "presence", company=OTHER_COMPANY)).status in (403, 404)
    assert subs.watching(Package.PRESENCE, COMPANY, "202") == []


async def test_a_phone_that_only_accepts_another_body_is_told_which_one() -> None:
    pbx = office()
    watcher = Watcher(pbx, lamps(pbx), pbx.phone("alice"))
    refused = await watcher.subscribe("202", "presence", Accept="application/xpidf+xml")
    assert refused.status == 406
    assert refused.headers.get("Accept") == "application/pidf+xml"


def test_presence_is_among_the_events_the_pbx_announces() -> None:
    assert "presence" in ALLOW_EVENTS.split(", ")
