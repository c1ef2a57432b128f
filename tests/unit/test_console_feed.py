"""The console's event stream: a snapshot plus the messages after it equals a fresh snapshot."""

from __future__ import annotations

import pytest

from pbx.engine.events import RegistrationChanged
from pbx.engine.operations import HANG_UP_REFERRER_AFTER
from pbx.events import SCHEMA_VERSION, ConsoleFeed, Gap, Message, Snapshot, apply
from tests.unit.fakes.directory import COMPANY
from tests.unit.fakes.office import Pbx, office

OTHER_COMPANY = COMPANY + 1


class Console:
    """A console of one company: what it was sent, folded into its view as it arrives."""

    def __init__(self, feed: ConsoleFeed, company_id: int) -> None:
        self.view: Snapshot = feed.snapshot(company_id)
        self.messages: list[Message] = []

    def receive(self, message: Message) -> None:
        self.messages.append(message)
        self.view = apply(self.view, message)


def watched(pbx: Pbx, *companies: int) -> tuple[ConsoleFeed, dict[int, list[Message]]]:
    sent: dict[int, list[Message]] = {company: [] for company in companies}
    feed = ConsoleFeed(lambda company, message: sent.setdefault(company, []).append(message))
    pbx.events.subscribe(feed.on_event)
    return feed, sent


async def test_a_console_that_joins_mid_burst_ends_with_the_view_of_a_fresh_snapshot() -> None:
    pbx = office()
    feed, sent = watched(pbx, COMPANY)
    alice, desk, carol, dave = (
        pbx.phone("alice"),
        pbx.phone("bob-desk"),
        pbx.phone("carol"),
        pbx.phone("dave"),
    )
    steps = [
        lambda: alice.dial("202"),
        lambda: desk.ring(),
        lambda: desk.answer(),
        lambda: carol.dial("204"),
        lambda: dave.answer(),
        lambda: desk.hold(),
        lambda: desk.refer("204"),  # Dave talks to Carol: the transfer finds him busy
        lambda: desk.resume(),
        lambda: dave.hang_up(),
        lambda: desk.refer("203"),
        lambda: carol.ring(),
        lambda: carol.answer(),
        lambda: pbx.advance(HANG_UP_REFERRER_AFTER),
        lambda: alice.hang_up(),
    ]
    # A console joins before every step (one run of the burst checks every join point).
    joined: list[tuple[Console, int]] = []
    for step in steps:
        joined.append((Console(feed, COMPANY), len(sent[COMPANY])))
        await step()
    for console, seen in joined:
        for message in sent[COMPANY][seen:]:
            console.receive(message)
        assert console.view == feed.snapshot(COMPANY)
    assert feed.snapshot(COMPANY)["calls"] == {}
    assert feed.snapshot(COMPANY)["extensions"] == {}
    assert [m["seq"] for m in sent[COMPANY]] == list(range(1, len(sent[COMPANY]) + 1))


async def test_a_live_call_shows_caller_number_called_and_state_with_its_times() -> None:
    pbx = office()
    clock = iter(range(1000, 2000))
    sent: list[Message] = []
    feed = ConsoleFeed(lambda company, message: sent.append(message), wall=lambda: next(clock))
    pbx.events.subscribe(feed.on_event)
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    call = await alice.dial("202")
    await desk.ring()
    await desk.answer()

    snapshot = feed.snapshot(COMPANY)
    shown = snapshot["calls"][call.call_id]
    assert shown["state"] == "answered"
    assert (shown["caller"], shown["caller_name"], shown["dialled"]) == ("201", "Alice", "202")
    assert shown["answered_by"] == "bob-desk"
    assert shown["started_at"] < shown["state_since"]
    assert snapshot["extensions"] == {"201": "talking", "202": "talking"}
    assert {m["type"] for m in sent} == {"call.updated", "extension.state"}
    assert all(m["v"] == SCHEMA_VERSION for m in sent)

    await alice.hang_up()
    ended = next(m for m in sent if m["type"] == "call.ended")
    assert ended == {
        "v": SCHEMA_VERSION,
        "node": "",
        "seq": ended["seq"],
        "type": "call.ended",
        "call_id": call.call_id,
        "disposition": "answered",
    }


async def test_each_company_gets_only_its_own_calls() -> None:
    pbx = office()
    feed, sent = watched(pbx, COMPANY, OTHER_COMPANY)
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    await alice.dial("202")
    await desk.answer()

    assert sent[OTHER_COMPANY] == []
    assert feed.snapshot(OTHER_COMPANY) == {
        "v": SCHEMA_VERSION,
        "node": "",
        "seq": 0,
        "calls": {},
        "extensions": {},
        "registered": [],
    }
    assert len(feed.snapshot(COMPANY)["calls"]) == 1


def test_an_extension_is_registered_while_any_of_its_devices_is() -> None:
    feed = ConsoleFeed()
    sent: list[dict] = []
    feed.publish = lambda company, message: sent.append(message)
    first = feed.snapshot(COMPANY)
    for username, contacts in (("bob-desk", 1), ("bob-mobile", 1), ("bob-desk", 0)):
        feed.on_event(RegistrationChanged(username, contacts, 0.0, COMPANY, "202"))
    assert feed.snapshot(COMPANY)["registered"] == ["202"]
    feed.on_event(RegistrationChanged("bob-mobile", 0, 1.0, COMPANY, "202"))
    assert [m["registered"] for m in sent] == [True, False]  # only the changes are news
    built = first
    for message in sent:
        built = apply(built, message)
    assert built == feed.snapshot(COMPANY) and built["registered"] == []


async def test_a_message_that_skips_one_is_a_gap_and_asks_for_a_new_snapshot() -> None:
    pbx = office()
    feed, sent = watched(pbx, COMPANY)
    before = feed.snapshot(COMPANY)
    await pbx.phone("alice").dial("202")
    assert len(sent[COMPANY]) >= 2
    with pytest.raises(Gap):
        apply(before, sent[COMPANY][1])
    with pytest.raises(ValueError, match="schema version"):
        apply(before, {**sent[COMPANY][0], "v": SCHEMA_VERSION + 1})
