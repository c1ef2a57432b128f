"""E6 with real phones: each hunt group algorithm rings the right member first, call after call.

The members 202, 203 and 204 are baresip phones that ring until the test answers or refuses
(486) them; the caller is baresip 201. For every call the test notes which phone rings, one at
a time, refuses the ones the plan says and answers the next: the order in which they rang is
what the algorithm chose, and whoever answered is "the member that took the previous call" for
the next one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import pytest

from tests.integration.engine_fixture import Pbx
from tests.integration.peers.baresip import Baresip, BaresipError, baresip_binary
from tests.integration.peers.waiting import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(baresip_binary() is None, reason="baresip (baresip-core) is not installed"),
]

GROUP = "600"
MEMBERS = ("202", "203", "204")
RING_TIME = 5  # seconds: the shortest turn the portal allows
CANCELLED = "Connection reset by peer"  # how baresip 1.0 (libre) reports a CANCEL
TONES = {"201": 440.0, "202": 1000.0, "203": 700.0, "204": 1200.0, "205": 1500.0}


@pytest.fixture
def server(make_pbx: Callable[..., Pbx]) -> Pbx:
    return make_pbx(extensions=("201", *MEMBERS, "205"))


@pytest.fixture
def phones(server: Pbx, make_baresip: Callable[..., Baresip]) -> dict[str, Baresip]:
    """201 calls (answering by itself); the members ring until the test answers them."""
    made = {
        number: make_baresip(
            number,
            password=server.secrets[number],
            registrar=server.address,
            tone_hz=TONES[number],
            answermode="auto" if number == "201" else "manual",
        )
        for number in ("201", *MEMBERS)
    }
    for phone in made.values():
        phone.wait_registered()
    return made


def take_ring(phone: Baresip) -> bool:
    """Whether the phone has rung since we last looked (and take that ring)."""
    try:
        phone.wait_event("CALL_INCOMING", timeout=0)
    except BaresipError:
        return False
    return True


def rang_at(phone: Baresip) -> float:
    """When the phone last started ringing (the test's clock)."""
    return max(e["_time"] for e in phone.events if e.get("type") == "CALL_INCOMING")


def next_ring(members: dict[str, Baresip], timeout: float) -> str:
    """Wait until a member's phone rings; its number."""
    return wait_for(
        lambda: next((number for number, phone in members.items() if take_ring(phone)), ""),
        timeout,
        what="a member's phone to ring",
    )


def call_group(
    server: Pbx,
    phones: dict[str, Baresip],
    *,
    refuse: Iterable[str] = (),
    ignore: Iterable[str] = (),
) -> list[str]:
    """201 calls the group; a ringing member in `refuse` says busy (486), one in `ignore`
    lets its turn run out, any other answers. Returns the members in the order they rang
    (checking that each rang alone); the call is hung up and gone when it returns."""
    refuse, ignore = set(refuse), set(ignore)
    caller = phones["201"]
    members = {number: phones[number] for number in MEMBERS}
    caller.dial(f"sip:{GROUP}@{server.address}")
    rang: list[str] = []
    while True:
        number = next_ring(members, RING_TIME + 5)
        rang.append(number)
        states = server.extension_states(*MEMBERS)
        assert [n for n, s in states.items() if s == "ringing"] == [number], (rang, states)
        phone = members[number]
        if number in refuse:
            phone.hangup()  # baresip refuses a call it has not answered with 486
            phone.wait_closed()
        elif number in ignore:  # its turn runs out: CANCEL
            assert phone.wait_closed(timeout=RING_TIME + 3)["param"] == CANCELLED
        else:
            phone.answer()
            break
    phone.wait_established()
    caller.wait_established()
    # Only the caller and the member who answered are left in the call.
    wait_for(
        lambda: server.live_legs() == ["201", number],
        5,
        what=f"201 and {number} alone in the call",
        seen=server.live_legs,
    )
    caller.hangup()
    caller.wait_closed()
    phone.wait_closed()
    server.wait_no_calls()
    return rang


def make_phone_205(server: Pbx, make_baresip: Callable[..., Baresip]) -> Baresip:
    """205, a phone outside the group that answers by itself."""
    phone = make_baresip(
        "205", password=server.secrets["205"], registrar=server.address, tone_hz=TONES["205"]
    )
    phone.wait_registered()
    return phone


def busy_with(server: Pbx, caller: Baresip, member: Baresip) -> None:
    """`caller` calls `member`, who answers: the member is busy until one hangs up."""
    caller.dial(f"sip:{member.user}@{server.address}")
    member.wait_incoming()
    member.answer()
    caller.wait_established()
    wait_for(
        lambda: server.extension_states(member.user)[member.user] == "talking",
        5,
        what=f"{member.user} talking",
    )


@pytest.mark.parametrize(
    ("algorithm", "plan", "expected"),
    [
        pytest.param(
            "linear",
            [{"refuse": ["202"]}, {}, {"refuse": ["202", "203"]}],
            [["202", "203"], ["202"], ["202", "203", "204"]],
            id="linear-always-from-the-first",
        ),
        pytest.param(
            "circular",
            [{"refuse": ["202"]}, {"refuse": ["203"]}, {}, {"refuse": ["204"]}],
            [["202", "203"], ["203", "204"], ["204"], ["204", "202"]],
            id="circular-from-the-last-taker",
        ),
        pytest.param(
            "uniform_sequential",
            [{}, {"refuse": ["203"]}, {}, {}],
            [["202"], ["203", "204"], ["202"], ["203"]],
            id="uniform-sequential-after-the-last-taker",
        ),
        pytest.param(
            "longest_idle",
            # 203 refuses the second call: a line that only rang was not used, so it is
            # still idle since for ever, the longest of all.
            [{}, {"refuse": ["203"]}, {}, {}],
            [["202"], ["203", "204"], ["203"], ["202"]],
            id="longest-idle-first",
        ),
    ],
)
def test_the_group_rings_its_members_in_the_algorithms_order(
    server: Pbx,
    phones: dict[str, Baresip],
    algorithm: str,
    plan: list[dict[str, list[str]]],
    expected: list[list[str]],
) -> None:
    server.add_hunt_group(GROUP, algorithm, tuple((m, RING_TIME) for m in MEMBERS))
    seen = []
    for step in plan:
        seen.append(call_group(server, phones, **step))
        assert seen == expected[: len(seen)], f"{algorithm}: rang {seen}, want {expected}"
    assert [r["answered_by"] for r in server.wait_records(len(plan))] == [
        rang[-1] for rang in expected
    ]


def test_a_busy_member_is_skipped_and_the_rotation_goes_on_from_it(
    server: Pbx, phones: dict[str, Baresip], make_baresip: Callable[..., Baresip]
) -> None:
    server.add_hunt_group(GROUP, "circular", tuple((m, RING_TIME) for m in MEMBERS))
    assert call_group(server, phones, refuse=["202"]) == ["202", "203"]  # 203 took it
    other = make_phone_205(server, make_baresip)
    busy_with(server, other, phones["203"])
    # Circular starts with the last taker, 203: busy, so the search goes on after it.
    caller = phones["201"]
    members = {number: phones[number] for number in MEMBERS if number != "203"}
    caller.dial(f"sip:{GROUP}@{server.address}")
    assert next_ring(members, 5) == "204"
    phones["204"].answer()
    caller.wait_established()
    assert not take_ring(phones["203"])
    caller.hangup()
    phones["204"].wait_closed()
    other.hangup()
    phones["203"].wait_closed()
    server.wait_no_calls()


def test_a_member_who_lets_its_turn_run_out_is_cancelled_and_the_next_one_rings(
    server: Pbx, phones: dict[str, Baresip]
) -> None:
    server.add_hunt_group(GROUP, "linear", tuple((m, RING_TIME) for m in MEMBERS))
    started = time.monotonic()
    assert call_group(server, phones, ignore=["202"]) == ["202", "203"]
    assert time.monotonic() - started >= RING_TIME - 0.5  # 202 had its whole turn


def test_ring_all_rings_every_free_member_and_keeps_only_the_one_who_answers(
    server: Pbx, phones: dict[str, Baresip], make_baresip: Callable[..., Baresip]
) -> None:
    server.add_hunt_group(GROUP, "ring_all", tuple((m, RING_TIME) for m in MEMBERS))
    caller = phones["201"]
    members = {number: phones[number] for number in MEMBERS}

    caller.dial(f"sip:{GROUP}@{server.address}")
    rang = {next_ring(members, 5) for _ in MEMBERS}
    assert rang == set(MEMBERS)
    assert set(server.extension_states(*MEMBERS).values()) == {"ringing"}
    times = [rang_at(members[number]) for number in MEMBERS]
    assert max(times) - min(times) < 1, f"not at once: {times}"  # a turn would be 5 s
    members["203"].answer()
    members["203"].wait_established()
    caller.wait_established()
    for number in ("202", "204"):
        assert members[number].wait_closed()["param"] == CANCELLED
    members["203"].wait_hearing(TONES["201"], seconds=0.5)
    caller.wait_hearing(TONES["203"], seconds=0.5)
    assert server.live_legs() == ["201", "203"]
    assert server.leftovers()["dialogs"] == 2
    assert server.extension_states(*MEMBERS) == {
        "202": "idle",
        "203": "talking",
        "204": "idle",
    }
    caller.hangup()
    members["203"].wait_closed()
    server.wait_no_calls()
    assert server.wait_record(disposition="answered")["answered_by"] == "203"

    # 204 is in a call of its own: only the free members ring.
    other = make_phone_205(server, make_baresip)
    busy_with(server, other, members["204"])
    caller.dial(f"sip:{GROUP}@{server.address}")
    rang = {next_ring(members, 5) for _ in range(2)}
    assert rang == {"202", "203"}
    members["202"].answer()
    caller.wait_established()
    members["203"].wait_closed()
    assert not take_ring(members["204"])
    caller.hangup()
    members["202"].wait_closed()
    other.hangup()
    members["204"].wait_closed()
    server.wait_no_calls()


def test_when_every_member_refuses_the_call_goes_to_the_fallback(
    server: Pbx, phones: dict[str, Baresip], make_baresip: Callable[..., Baresip]
) -> None:
    fallback = make_phone_205(server, make_baresip)
    server.add_hunt_group(
        GROUP,
        "linear",
        tuple((m, RING_TIME) for m in MEMBERS),
        fallback="number",
        fallback_number="205",
    )
    caller = phones["201"]
    members = {number: phones[number] for number in MEMBERS}
    caller.dial(f"sip:{GROUP}@{server.address}")
    for number in MEMBERS:
        assert next_ring(members, 5) == number
        members[number].hangup()
        members[number].wait_closed()
    fallback.wait_established()
    caller.wait_established()
    caller.wait_hearing(TONES["205"], seconds=0.5)
    fallback.wait_hearing(TONES["201"], seconds=0.5)
    caller.hangup()
    fallback.wait_closed()
    server.wait_no_calls()
    assert server.wait_record(disposition="answered")["answered_by"] == "205"
