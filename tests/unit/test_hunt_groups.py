"""Hunt groups ("Call Distributor") in the call layer: which member's phones ring first call after
call by each algorithm, members that cannot take a call skipped, each member's turn on the
fake clock, the fallback when nobody answers or nobody is free, and an extension's outside
number added to its ringing after a delay.

The office of tests/unit/fakes, with Bob on one phone here: Alice (201) calls group 600, whose
members are Bob (202), Carol (203) and Dave (204), each with a 10 s turn; Erin (205) is a
fallback number and Frank (206) keeps members busy. The algorithms alone, with no SIP, are
tested in test_hunt_algorithms.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pbx.engine.call import CallState
from pbx.engine.directory import ExtensionInfo, HuntGroupInfo
from pbx.engine.hunt import Algorithm
from pbx.engine.operator import OperatorDesk
from pbx.engine.routing import Party, Unavailable
from pbx.engine.services import MemoryHuntMemory
from pbx.sip.message import Request
from tests.unit.fakes.directory import CARRIER_ADDR, COMPANY, extension
from tests.unit.fakes.media import bridged
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.phones import Dialled, Phone

GROUP = "600"
MEMBERS = ("202", "203", "204")
DEVICE = {"202": "bob", "203": "carol", "204": "dave", "205": "erin"}
TURN = 10


def staff(*overrides: ExtensionInfo) -> Pbx:
    """The office with Bob on one phone, Erin and Frank; `overrides` replace extensions."""
    return office(
        extension("202", "Bob", "bob"),
        extension("205", "Erin", "erin"),
        extension("206", "Frank", "frank"),
        *overrides,
    )


def hunt_group(
    pbx: Pbx,
    algorithm: Algorithm,
    members: tuple[str, ...] = MEMBERS,
    turns: tuple[int, ...] | None = None,
    fallback: str = "hangup",
    fallback_number: str = "",
) -> HuntGroupInfo:
    group = HuntGroupInfo(
        COMPANY,
        GROUP,
        "Sales",
        algorithm.value,
        tuple(zip(members, turns or (TURN,) * len(members), strict=True)),
        fallback,
        fallback_number,
    )
    pbx.directory.hunt_groups[(COMPANY, GROUP)] = group
    return group


def invited_since(pbx: Pbx, mark: int) -> list[str]:
    """The devices the PBX sent a new INVITE to after `mark` messages, in order."""
    devices = {phone.addr: name for name, phone in pbx.phones.items()}
    return [
        devices.get(s.dest, f"{s.dest}")  # type: ignore[arg-type]
        for s in pbx.stack.sent[mark:]
        if isinstance(s.message, Request)
        and s.message.method == "INVITE"
        and s.message.to_addr.tag is None
    ]


def ringing_phones(pbx: Pbx, devices: list[str]) -> list[Phone]:
    return [pbx.phones[d] for d in devices]


@dataclass
class Hunted:
    """One call to the group: the devices invited in order, and the call."""

    invited: list[str]
    call: Dialled


async def call_group(pbx: Pbx, caller: Phone, answerer: str) -> Hunted:
    """`caller` calls the group; every member invited before `answerer` refuses (486: the
    turn passes at once), `answerer` (a device) answers; then they talk and hang up."""
    mark = len(pbx.stack.sent)
    call = await caller.dial(GROUP)
    refused: set[str] = set()
    while True:
        invited = invited_since(pbx, mark)
        if answerer in invited:
            break
        waiting = [d for d in invited if d not in refused]
        assert waiting, f"{answerer} never rang: {invited}"
        for device in waiting:
            refused.add(device)
            await pbx.phones[device].refuse(486)
    await pbx.phones[answerer].answer()
    assert pbx.call(call.call_id).state is CallState.ANSWERED
    await pbx.advance(60)
    await caller.hang_up(call.sip_call_id)
    await pbx.advance(60)
    return Hunted(invited_since(pbx, mark), call)


def office_with_group(algorithm: Algorithm, **options: object) -> tuple[Pbx, Phone]:
    pbx = staff()
    hunt_group(pbx, algorithm, **options)  # type: ignore[arg-type]
    for device in ("bob", "carol", "dave", "erin", "frank"):
        pbx.phone(device)
    return pbx, pbx.phone("alice")


# --- the member rung first, call after call ----------------------------------------------------


# Each call: the devices invited in order, the last of which answers (the others refuse).
SEQUENCES = [
    pytest.param(
        Algorithm.LINEAR,
        [["bob"], ["bob", "carol"], ["bob", "carol", "dave"], ["bob"]],
        id="linear-always-from-the-first",
    ),
    pytest.param(
        Algorithm.CIRCULAR,
        [["bob", "carol"], ["carol"], ["carol", "dave"], ["dave", "bob"], ["bob"]],
        id="circular-from-the-one-that-took-the-last-call",
    ),
    pytest.param(
        Algorithm.UNIFORM_SEQUENTIAL,
        [["bob"], ["carol"], ["dave"], ["bob", "carol"], ["dave"], ["bob"]],
        id="uniform-sequential-rotates",
    ),
    pytest.param(
        Algorithm.LONGEST_IDLE,
        # Carol only rang in the fifth call: she is still idle since her call, the longest.
        [["bob"], ["carol"], ["dave"], ["bob"], ["carol", "dave"], ["carol"]],
        id="longest-idle",
    ),
]


@pytest.mark.parametrize(("algorithm", "calls"), SEQUENCES)
async def test_each_algorithm_rings_the_right_member_first_over_a_sequence_of_calls(
    algorithm: Algorithm, calls: list[list[str]]
) -> None:
    pbx, alice = office_with_group(algorithm)
    for expected in calls:
        hunted = await call_group(pbx, alice, expected[-1])
        assert hunted.invited == expected


async def test_a_member_that_only_rang_is_not_less_idle_for_it() -> None:
    pbx, alice = office_with_group(Algorithm.LONGEST_IDLE)
    first = await call_group(pbx, alice, "carol")  # Bob rang and refused; Carol talked
    assert first.invited == ["bob", "carol"]
    second = await call_group(pbx, alice, "bob")  # Bob has never been on a call: still first
    assert second.invited == ["bob"]
    third = await call_group(pbx, alice, "dave")  # Dave has never talked; Carol talked first
    assert third.invited == ["dave"]


async def test_longest_idle_remembers_when_each_line_became_idle_by_the_wall_clock() -> None:
    pbx, alice = office_with_group(Algorithm.LONGEST_IDLE)
    await call_group(pbx, alice, "bob")  # talks 60 s, then 60 s pass
    idle = pbx.hunt_memory.idle
    assert idle[(COMPANY, "202")] == pbx.wall.timestamp() - 60
    assert idle[(COMPANY, "201")] == pbx.wall.timestamp() - 60  # the caller's line too
    assert (COMPANY, "203") not in idle


async def test_ring_all_rings_every_free_member_and_cancels_the_others_when_one_answers() -> None:
    pbx, alice = office_with_group(Algorithm.RING_ALL)
    call = await alice.dial(GROUP)
    bob, carol, dave = pbx.phone("bob"), pbx.phone("carol"), pbx.phone("dave")
    assert bob.got == carol.got == dave.got == ["INVITE"]
    for phone in (bob, carol, dave):
        await phone.ring()
    assert set(call.statuses) == {100, 180}
    await carol.answer()
    assert bob.got == dave.got == ["INVITE", "CANCEL"]
    assert carol.got == ["INVITE", "ACK"]
    assert bridged(pbx.media(alice), pbx.media(carol))
    assert sorted(leg.device for leg in pbx.dialogs.legs()) == ["alice", "carol"]
    assert pbx.hunt_memory.last[(COMPANY, GROUP)] == "203"
    await alice.hang_up()
    assert carol.got[-1] == "BYE"
    assert pbx.ports.open == []


async def test_the_member_that_answers_is_remembered_as_the_groups_last() -> None:
    pbx, alice = office_with_group(Algorithm.CIRCULAR)
    await call_group(pbx, alice, "dave")
    assert pbx.hunt_memory.last == {(COMPANY, GROUP): "204"}


# --- members that cannot take a call ------------------------------------------------------------


async def carol_busy(pbx: Pbx) -> None:
    await pbx.phone("carol").dial("206")
    await pbx.phone("frank").answer()


@pytest.mark.parametrize(
    "why",
    ["busy", "do-not-disturb", "unregistered", "disabled"],
)
@pytest.mark.parametrize("algorithm", [Algorithm.LINEAR, Algorithm.RING_ALL])
async def test_a_member_that_cannot_take_the_call_is_skipped(
    algorithm: Algorithm, why: str
) -> None:
    carol = {
        "do-not-disturb": extension("203", "Carol", "carol", do_not_disturb=True),
        "disabled": extension("203", "Carol", "carol", enabled=False),
    }
    pbx = staff(*([carol[why]] if why in carol else []))
    hunt_group(pbx, algorithm)
    alice, bob, dave = pbx.phone("alice"), pbx.phone("bob"), pbx.phone("dave")
    pbx.phone("carol", registered=why != "unregistered")
    if why == "busy":
        pbx.phone("frank")
        await carol_busy(pbx)
    mark = len(pbx.stack.sent)
    call = await alice.dial(GROUP)
    if algorithm is Algorithm.LINEAR:
        await bob.refuse(486)
    assert invited_since(pbx, mark) == ["bob", "dave"]
    await dave.answer()
    assert bridged(pbx.media(alice), pbx.media(dave))
    assert pbx.call(call.call_id).state is CallState.ANSWERED


async def test_a_member_with_two_phones_rings_on_both_in_its_turn() -> None:
    pbx = office()  # Bob with a desk phone and a mobile
    hunt_group(pbx, Algorithm.LINEAR)
    alice, desk, mobile = pbx.phone("alice"), pbx.phone("bob-desk"), pbx.phone("bob-mobile")
    carol = pbx.phone("carol")
    second = pbx.second_contact("carol")  # Carol's phone registered at two addresses
    mark = len(pbx.stack.sent)
    await alice.dial(GROUP)
    assert invited_since(pbx, mark) == ["bob-desk", "bob-mobile"]
    await desk.ring()
    await mobile.ring()
    await pbx.advance(TURN)
    assert desk.got == mobile.got == ["INVITE", "CANCEL"]
    assert carol.got == second.got == ["INVITE"]
    await second.answer()
    assert carol.got == ["INVITE"]  # stopped, cancelled once it rings
    assert bridged(pbx.media(alice), pbx.media(second))


# --- turns -----------------------------------------------------------------------------------------


async def test_each_member_rings_for_its_own_turn_then_the_fallback() -> None:
    pbx = staff()
    hunt_group(pbx, Algorithm.LINEAR, turns=(10, 15, 20), fallback="number", fallback_number="205")
    alice = pbx.phone("alice")
    bob, carol, dave, erin = (pbx.phone(d) for d in ("bob", "carol", "dave", "erin"))
    call = await alice.dial(GROUP)
    await bob.ring()
    await pbx.advance(9.9)
    assert (bob.got, carol.got) == (["INVITE"], [])
    await pbx.advance(0.1)
    assert (bob.got, carol.got) == (["INVITE", "CANCEL"], ["INVITE"])
    await carol.ring()
    await pbx.advance(14.9)
    assert dave.got == []
    await pbx.advance(0.1)
    assert (carol.got, dave.got) == (["INVITE", "CANCEL"], ["INVITE"])
    await dave.ring()
    await pbx.advance(19.9)
    assert erin.got == []
    await pbx.advance(0.1)
    assert (dave.got, erin.got) == (["INVITE", "CANCEL"], ["INVITE"])
    await erin.answer()
    assert bridged(pbx.media(alice), pbx.media(erin))
    assert call.final.status == 200


async def test_a_member_refusing_passes_the_turn_at_once() -> None:
    pbx, alice = office_with_group(Algorithm.LINEAR)
    await alice.dial(GROUP)
    await pbx.advance(3)
    await pbx.phone("bob").refuse(603)
    assert pbx.phone("carol").got == ["INVITE"]
    await pbx.advance(TURN - 0.1)
    assert pbx.phone("dave").got == []  # Carol has her whole turn
    await pbx.advance(0.1)
    assert pbx.phone("dave").got == ["INVITE"]


async def test_the_caller_giving_up_cancels_the_ringing_member_and_leaves_no_timer() -> None:
    pbx, alice = office_with_group(Algorithm.LINEAR)
    call = await alice.dial(GROUP)
    await pbx.phone("bob").ring()
    await call.cancel()
    assert pbx.phone("bob").got == ["INVITE", "CANCEL"]
    assert call.statuses == [100, 180, 487]
    assert pbx.clock.next_due() is None
    assert pbx.ports.open == []


# --- nobody answers, nobody is free: the fallback ------------------------------------------------


async def nobody_answers(pbx: Pbx, alice: Phone) -> Dialled:
    call = await alice.dial(GROUP)
    for _ in MEMBERS:
        await pbx.advance(TURN)
    return call


async def test_nobody_answering_puts_the_call_in_the_operator_queue() -> None:
    pbx, alice = office_with_group(Algorithm.LINEAR, fallback="operator")
    pbx.directory.operator_numbers[COMPANY] = "9"
    desk = OperatorDesk(pbx.calls, pbx.operations, pbx.directory, pbx.registrar)
    call = await nobody_answers(pbx, alice)
    assert pbx.call(call.call_id).state is CallState.QUEUED
    assert [c.id for c in desk.queue(COMPANY)] == [call.call_id]


async def test_nobody_answering_rings_the_fallback_number() -> None:
    pbx, alice = office_with_group(Algorithm.RING_ALL, fallback="number", fallback_number="205")
    call = await alice.dial(GROUP)
    await pbx.advance(TURN)
    erin = pbx.phone("erin")
    assert erin.got == ["INVITE"]
    await erin.answer()
    assert bridged(pbx.media(alice), pbx.media(erin))
    assert pbx.call(call.call_id).state is CallState.ANSWERED


@pytest.mark.parametrize(
    ("fallback", "number", "voicemail"),
    [("voicemail", "205", "205"), ("hangup", "", ""), ("operator", "", "")],
    ids=["voicemail", "hangup", "operator-without-one"],
)
async def test_nobody_answering_ends_the_call_with_480_for_the_voicemail_hook(
    fallback: str, number: str, voicemail: str
) -> None:
    pbx, alice = office_with_group(Algorithm.LINEAR, fallback=fallback, fallback_number=number)
    asked: list[str] = []
    unavailable = pbx.calls.unavailable

    def hook(call: object, reason: str, status: int = 480, *, voicemail: str = "") -> None:
        asked.append(voicemail)
        unavailable(call, reason, status, voicemail=voicemail)  # type: ignore[arg-type]

    pbx.calls.unavailable = hook  # type: ignore[method-assign]
    call = await nobody_answers(pbx, alice)
    assert call.statuses[-1] == 480
    assert asked == [voicemail]
    assert pbx.record(call.call_id)["disposition"] == "no_answer"
    assert pbx.clock.next_due() is None
    assert pbx.ports.open == []


async def test_the_router_names_the_voicemail_of_the_fallback() -> None:
    pbx, alice = office_with_group(Algorithm.LINEAR, fallback="voicemail", fallback_number="205")
    for number in MEMBERS:  # nobody free
        ext = pbx.directory.extensions[(COMPANY, number)]
        pbx.directory.extensions[(COMPANY, number)] = ExtensionInfo(
            COMPANY, number, ext.display_name, ext.devices, do_not_disturb=True
        )
    route = await pbx.calls.router.route(Party(COMPANY, "201", "Alice", "alice"), GROUP)
    assert route == Unavailable("no free member", 480, voicemail="205")


@pytest.mark.parametrize("why", ["do-not-disturb", "unregistered", "busy"])
async def test_without_a_free_member_the_fallback_comes_at_once_without_ringing(why: str) -> None:
    dnd = why == "do-not-disturb"
    pbx = staff(
        *(extension(n, n, DEVICE[n], do_not_disturb=True) for n in MEMBERS if dnd),
    )
    hunt_group(pbx, Algorithm.LINEAR, fallback="number", fallback_number="205")
    alice, erin = pbx.phone("alice"), pbx.phone("erin")
    members = [pbx.phone(DEVICE[n], registered=why != "unregistered") for n in MEMBERS]
    if why == "busy":
        bob, carol, dave = members
        frank = pbx.phone("frank")
        await bob.dial("203")
        await carol.answer()
        await dave.dial("206")
        await frank.answer()
    mark = len(pbx.stack.sent)
    call = await alice.dial(GROUP)
    assert invited_since(pbx, mark) == ["erin"]
    await erin.answer()
    assert bridged(pbx.media(alice), pbx.media(erin))
    assert call.statuses == [100, 200]


async def test_a_fallback_back_to_the_group_is_a_loop_that_ends() -> None:
    pbx, alice = office_with_group(Algorithm.LINEAR, fallback="number", fallback_number=GROUP)
    call = await alice.dial(GROUP)
    for _ in range(10):
        await pbx.advance(len(MEMBERS) * TURN)
    assert call.statuses[-1] == 482
    assert pbx.clock.next_due() is None


# --- the hunt memory ---------------------------------------------------------------------------------


async def test_the_memory_hunt_memory_keeps_the_last_member_and_idle_times() -> None:
    memory = MemoryHuntMemory()
    assert await memory.last_member(COMPANY, GROUP) == ""
    memory.took_call(COMPANY, GROUP, "203")
    memory.took_call(COMPANY + 1, GROUP, "999")
    memory.line_idle(COMPANY, "202", 100.0)
    memory.line_idle(COMPANY, "202", 150.0)
    memory.line_idle(COMPANY, "204", 120.0)
    assert await memory.last_member(COMPANY, GROUP) == "203"
    assert await memory.idle_since(COMPANY, ["202", "203", "204"]) == {"202": 150.0, "204": 120.0}
    assert await memory.idle_since(COMPANY + 1, ["202"]) == {}


# --- an extension's outside number -------------------------------------------------------------------


def mobile_too(delay: int = 10, ring_mode: str = "all") -> Pbx:
    return staff(
        extension(
            "202",
            "Bob",
            "bob",
            ring_outside="0333123456",
            ring_outside_delay=delay,
            ring_mode=ring_mode,
        )
    )


async def test_the_outside_number_rings_after_the_delay_and_is_cancelled_when_a_phone_answers() -> (
    None
):
    pbx = mobile_too()
    alice, bob, carrier = pbx.phone("alice"), pbx.phone("bob"), pbx.carrier()
    call = await alice.dial("202")
    await bob.ring()
    await pbx.advance(9.9)
    assert carrier.invites == []
    await pbx.advance(0.1)
    assert carrier.invite.uri == "sip:333123456@sip.carrier.example"
    await carrier.ring()
    await bob.answer()
    assert carrier.got[-1] == "CANCEL"
    assert bridged(pbx.media(alice), pbx.media(bob))
    assert call.final.status == 200


async def test_the_outside_number_answering_cancels_the_phones() -> None:
    pbx = mobile_too()
    alice, bob, carrier = pbx.phone("alice"), pbx.phone("bob"), pbx.carrier()
    await alice.dial("202")
    await bob.ring()
    await pbx.advance(10)
    await carrier.answer()
    assert bob.got == ["INVITE", "CANCEL"]
    assert bridged(pbx.media(alice), pbx.media(carrier))
    assert pbx.stack.requests_to(CARRIER_ADDR)[-1].method == "ACK"


async def test_a_phone_answering_before_the_delay_leaves_the_outside_number_alone() -> None:
    pbx = mobile_too()
    alice, bob, carrier = pbx.phone("alice"), pbx.phone("bob"), pbx.carrier()
    await alice.dial("202")
    await bob.answer()
    await pbx.advance(30)
    assert carrier.got == []
    assert pbx.clock.next_due() is None


async def test_without_a_registered_phone_the_outside_number_rings_at_once() -> None:
    pbx = mobile_too()
    alice, carrier = pbx.phone("alice"), pbx.carrier()
    pbx.phone("bob", registered=False)
    call = await alice.dial("202")
    assert carrier.invite.uri == "sip:333123456@sip.carrier.example"
    await carrier.answer()
    assert bridged(pbx.media(alice), pbx.media(carrier))
    assert pbx.call(call.call_id).state is CallState.ANSWERED
