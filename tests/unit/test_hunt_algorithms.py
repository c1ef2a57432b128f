"""Hunt groups alone: the order of the members of each algorithm over a sequence of calls, and
the groups of targets ringing one after the other, with no SIP and no clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pbx.engine.hunt import (
    Algorithm,
    RingAll,
    RingGroups,
    RingStep,
    hunt_order,
    strategy_for_hunt,
)

L = Algorithm.LINEAR
C = Algorithm.CIRCULAR
U = Algorithm.UNIFORM_SEQUENTIAL
I = Algorithm.LONGEST_IDLE  # noqa: E741
A = Algorithm.RING_ALL

FIRST = "first"  # the first member of the order answers
NOBODY = ""  # nobody answers: `last` stays as it was


@dataclass(frozen=True)
class Call:
    """One call to the group: who is not free, who answers, and the order we expect."""

    expected: list[str]
    not_free: frozenset[str] = frozenset()
    answers: str = FIRST

    def free(self, member: str) -> bool:
        return member not in self.not_free


def call(expected: str, not_free: str = "", answers: str = FIRST) -> Call:
    return Call(expected.split(), frozenset(not_free.split()), answers)


@dataclass
class Group:
    """The group's memory between calls, as the call manager keeps it."""

    members: list[str]
    last: str = ""
    idle_since: dict[str, float] = field(default_factory=dict)


def run_calls(algorithm: Algorithm, group: Group, calls: list[Call]) -> list[list[str]]:
    """Each call's order; the member that answers becomes `last` and, once its call ends (at
    100 times the call's number), idle since then."""
    orders = []
    for now, c in enumerate(calls, start=1):
        order = hunt_order(
            algorithm,
            group.members,
            last=group.last,
            idle_since=group.idle_since,
            free=c.free,
        )
        orders.append(order)
        answered = order[0] if c.answers == FIRST and order else c.answers
        if answered:
            assert answered in order
            group.last = answered
            group.idle_since[answered] = 100.0 * now
    return orders


THREE = ["201", "202", "203"]
FOUR = ["201", "202", "203", "204"]

SEQUENCES = [
    pytest.param(
        L,
        Group(FOUR),
        [
            call("201 202 203 204"),
            call("202 203 204", not_free="201"),
            call("201 202 203 204", answers="203"),
            call("201 203", not_free="202 204"),
        ],
        id="linear-always-from-the-first-skipping-busy",
    ),
    pytest.param(
        U,
        Group(THREE),
        [
            call("201 202 203"),
            call("202 203 201"),
            call("203 201 202"),
            call("201 202 203"),
            call("202 203 201"),
        ],
        id="uniform-sequential-rotates",
    ),
    pytest.param(
        U,
        Group(FOUR),
        [
            call("201 202 203 204"),
            call("203 204 201", not_free="202"),  # 202 busy: skipped
            call("204 201 202 203"),  # 203 answered: 204 is next, 202 is back
            call("201 202 203", not_free="204"),
            call("202 203 204 201", answers="203"),  # 202 lets it ring: 203 answers
            call("204 201 202 203"),
        ],
        id="uniform-sequential-busy-skipped-rotation-stays-right",
    ),
    pytest.param(
        U,
        Group(FOUR),
        [
            call("201 202 203 204", answers="202"),
            # 202 is still on that call: not free, yet the search starts after it.
            call("203 204 201", not_free="202"),
            call("204 201 202", not_free="203"),
        ],
        id="uniform-sequential-busy-last-anchors-the-rotation",
    ),
    pytest.param(
        U,
        Group(THREE),
        [
            call("201 202 203", answers="202"),
            call("203 201 202", answers=NOBODY),
            call("203 201 202"),  # nobody took the last call: the same start
        ],
        id="uniform-sequential-unanswered-call-keeps-the-position",
    ),
    pytest.param(
        C,
        Group(THREE),
        [
            call("201 202 203"),
            call("201 202 203"),  # stays on the member that answered
            call("202 203", not_free="201"),
            call("202 203 201"),
            call("203 201", not_free="202"),  # 202 DND: the search goes on from it
            call("203 201 202"),
            call("203 201 202", answers="201"),
            call("201 202 203"),
        ],
        id="circular-stays-on-the-answering-member",
    ),
    pytest.param(
        C,
        Group(FOUR, last="203"),
        [
            call("204 201 202", not_free="203"),  # 203 still busy: start after it
            call("204 201 202 203"),
        ],
        id="circular-busy-last-anchors-the-search",
    ),
    pytest.param(
        I,
        Group(THREE),
        [
            call("201 202 203"),  # nobody seen busy yet: configured order
            call("202 203 201"),  # 201 idle since call 1
            call("203 201 202"),
            call("201 202 203"),  # 201 now the longest idle
        ],
        id="longest-idle-never-busy-first-then-by-idle-time",
    ),
    pytest.param(
        I,
        Group(FOUR, idle_since={"201": 50.0, "202": 10.0, "203": 30.0}),
        [
            call("204 202 203 201"),  # 204 never busy: idle since forever
            call("202 203 201", not_free="204"),
            call("203 201 204", not_free="202"),  # 202 DND is left out
            call("201 204 202 203", answers="201"),  # 204 idle since 100, 202 200, 203 300
        ],
        id="longest-idle-by-idle-since-ascending-skipping-busy",
    ),
    pytest.param(
        I,
        Group(FOUR, idle_since={"201": 7.0, "202": 3.0, "203": 7.0, "204": 3.0}),
        [call("202 204 201 203", answers=NOBODY)],
        id="longest-idle-ties-keep-configured-order",
    ),
    pytest.param(
        A,
        Group(FOUR, last="202"),
        [
            call("201 202 203 204", answers="203"),
            call("201 202 204", not_free="203"),
            call("202 204", not_free="201 203"),
        ],
        id="ring-all-every-free-member",
    ),
]


@pytest.mark.parametrize(("algorithm", "group", "calls"), SEQUENCES)
def test_each_algorithm_over_a_sequence_of_calls(
    algorithm: Algorithm, group: Group, calls: list[Call]
) -> None:
    assert run_calls(algorithm, group, calls) == [c.expected for c in calls]


@pytest.mark.parametrize(
    ("algorithm", "last", "expected"),
    [
        (L, "202", THREE),
        (C, "", THREE),
        (C, "299", THREE),
        (C, "203", ["203", "201", "202"]),
        (U, "", THREE),
        (U, "299", THREE),
        (U, "203", THREE),
        (U, "201", ["202", "203", "201"]),
        (I, "202", THREE),
        (A, "203", THREE),
    ],
    ids=[
        "linear-ignores-last",
        "circular-no-last-like-linear",
        "circular-gone-last-like-linear",
        "circular-from-last",
        "uniform-no-last-like-linear",
        "uniform-gone-last-like-linear",
        "uniform-wraps-after-the-end",
        "uniform-after-last",
        "longest-idle-without-idle-times-configured-order",
        "ring-all-ignores-last",
    ],
)
def test_where_the_search_starts(algorithm: Algorithm, last: str, expected: list[str]) -> None:
    assert hunt_order(algorithm, THREE, last=last) == expected


@pytest.mark.parametrize("algorithm", list(Algorithm))
def test_no_member_or_no_free_member_leaves_nobody(algorithm: Algorithm) -> None:
    assert hunt_order(algorithm, [], last="201") == []
    assert hunt_order(algorithm, THREE, last="201", free=lambda member: False) == []


def test_a_stored_algorithm_value_works_like_the_algorithm() -> None:
    stored: str = "uniform_sequential"
    assert hunt_order(stored, THREE, last="202") == ["203", "201", "202"]  # type: ignore[arg-type]
    assert [a.value for a in Algorithm] == [
        "linear",
        "circular",
        "uniform_sequential",
        "longest_idle",
        "ring_all",
    ]


# --- RingGroups ------------------------------------------------------------------------------


def test_the_first_group_rings_together_for_its_turn() -> None:
    assert RingGroups([[0, 1], [2]], [10, 5]).start() == RingStep(ring=(0, 1), timer=10)


def test_when_a_turn_ends_the_group_stops_and_the_next_rings_for_its_own_turn() -> None:
    strategy = RingGroups([[0, 1], [2], [3]], [10, 5, 8])
    strategy.start()
    assert strategy.timeout() == RingStep(ring=(2,), stop=(0, 1), timer=5)
    assert strategy.timeout() == RingStep(ring=(3,), stop=(2,), timer=8)


def test_after_the_last_groups_turn_its_targets_stop_and_nothing_is_left() -> None:
    strategy = RingGroups([[0], [1, 2]], [10, 5])
    strategy.start()
    strategy.timeout()
    assert not strategy.exhausted
    assert strategy.timeout() == RingStep(stop=(1, 2))
    assert strategy.exhausted
    assert strategy.timeout() == RingStep()
    assert strategy.refused(1) == RingStep()  # its 487 to our CANCEL
    assert strategy.exhausted


def test_one_target_of_a_group_refusing_keeps_the_turn_and_is_not_stopped_again() -> None:
    strategy = RingGroups([[0, 1, 2], [3]], [10, 5])
    strategy.start()
    assert strategy.refused(1) == RingStep()
    assert strategy.refused(1) == RingStep()
    assert strategy.timeout() == RingStep(ring=(3,), stop=(0, 2), timer=5)


def test_every_target_of_the_group_refusing_passes_the_turn_at_once() -> None:
    strategy = RingGroups([[0, 1], [2]], [10, 5])
    strategy.start()
    strategy.refused(1)
    # Nothing to stop: the targets that refused ended by themselves.
    assert strategy.refused(0) == RingStep(ring=(2,), timer=5)


def test_refusals_in_the_last_group_exhaust_the_strategy() -> None:
    strategy = RingGroups([[0], [1, 2]], [10, 5])
    strategy.start()
    strategy.refused(0)
    assert strategy.refused(2) == RingStep()
    assert not strategy.exhausted
    assert strategy.refused(1) == RingStep()
    assert strategy.exhausted


def test_a_refusal_from_a_group_whose_turn_is_over_changes_nothing() -> None:
    strategy = RingGroups([[0, 1], [2, 3]], [10, 5])
    strategy.start()
    strategy.timeout()  # 0 and 1 stopped, 2 and 3 ring
    assert strategy.refused(0) == RingStep()
    assert strategy.refused(1) == RingStep()
    assert strategy.ringing == (2, 3)
    assert strategy.timeout() == RingStep(stop=(2, 3))


def test_a_refusal_or_timeout_before_the_start_rings_nobody() -> None:
    strategy = RingGroups([[0], [1]], [10, 5])
    assert strategy.refused(0) == RingStep()
    assert strategy.timeout() == RingStep()
    assert strategy.start() == RingStep(ring=(0,), timer=10)
    assert strategy.start() == RingStep()  # only once


def test_empty_groups_are_skipped_with_their_turns() -> None:
    strategy = RingGroups([[], [0], [], [1], []], [1, 2, 3, 4, 5])
    assert strategy.start() == RingStep(ring=(0,), timer=2)
    assert strategy.timeout() == RingStep(ring=(1,), stop=(0,), timer=4)
    assert strategy.refused(1) == RingStep()
    assert strategy.exhausted


def test_no_group_at_all_is_exhausted_from_the_start() -> None:
    strategy = RingGroups([[], []], [10, 5])
    assert strategy.start() == RingStep()
    assert strategy.exhausted


def test_groups_and_turns_must_pair_up() -> None:
    with pytest.raises(ValueError):
        RingGroups([[0], [1]], [10])


@pytest.mark.parametrize(
    ("turns", "total"),
    [([], 0.0), ([10], 10.0), ([10, 5, 7.5], 22.5)],
    ids=["none", "one", "three"],
)
def test_total_is_the_sum_of_the_turns(turns: list[float], total: float) -> None:
    assert RingGroups.total(turns) == total


@dataclass
class Phone:
    """What a scripted target does: refuse `refuse_after` seconds after it starts ringing."""

    refuse_after: float | None = None


def walk(
    strategy: RingGroups, phones: dict[int, Phone], timeout: float
) -> list[tuple[float, str, tuple[int, ...]]]:
    """Drive `strategy` like the ringer on a virtual clock: (time, "ring"/"stop", targets)."""
    log: list[tuple[float, str, tuple[int, ...]]] = []
    now = 0.0
    step_at: float | None = None
    refusals: dict[int, float] = {}

    def apply(step: RingStep) -> None:
        nonlocal step_at
        if step.stop:
            log.append((now, "stop", step.stop))
            for target in step.stop:
                refusals.pop(target, None)
        if step.ring or step.timer is not None:
            step_at = None if step.timer is None else now + step.timer
        if step.ring:
            log.append((now, "ring", step.ring))
            for target in step.ring:
                after = phones.get(target, Phone()).refuse_after
                if after is not None:
                    refusals[target] = now + after

    apply(strategy.start())
    while not strategy.exhausted:
        events = [(at, target) for target, at in refusals.items()]
        if step_at is not None:
            events.append((step_at, -1))
        at, target = min(events, default=(timeout, -1))
        if at > timeout:  # a step timer at the same moment still fires
            log.append((timeout, "no answer", ()))
            break
        now = at
        if target >= 0:
            del refusals[target]
            apply(strategy.refused(target))
        else:
            step_at = None
            apply(strategy.timeout())
    return log


def test_turn_timing_over_a_whole_hunt() -> None:
    # Member 201 has two phones (0, 1), 202 is busy (no group), 203 one phone (2) that refuses
    # after 3 s, 204 two phones (3, 4).
    turns = [10, 8, 6]
    strategy = RingGroups([[0, 1], [2], [3, 4]], turns)
    log = walk(strategy, {1: Phone(refuse_after=4)}, RingGroups.total(turns))
    assert log == [
        (0.0, "ring", (0, 1)),
        (10.0, "stop", (0,)),  # 1 refused at 4 s: only 0 is left to stop
        (10.0, "ring", (2,)),
        (18.0, "stop", (2,)),
        (18.0, "ring", (3, 4)),
        (24.0, "stop", (3, 4)),
    ]
    assert strategy.exhausted


def test_refusals_pass_turns_early_and_the_hunt_ends_before_the_total() -> None:
    turns = [10, 8, 6]
    strategy = RingGroups([[0, 1], [2], [3]], turns)
    phones = {0: Phone(2), 1: Phone(3), 2: Phone(1)}
    log = walk(strategy, phones, RingGroups.total(turns))
    assert log == [
        (0.0, "ring", (0, 1)),
        (3.0, "ring", (2,)),  # both refused: the turn passes at 3 s
        (4.0, "ring", (3,)),
        (10.0, "stop", (3,)),  # the last turn is 6 s from 4 s
    ]
    assert strategy.exhausted


# --- strategy_for_hunt ---------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [L, C, U, I])
def test_hunting_algorithms_ring_the_groups_one_after_the_other(algorithm: Algorithm) -> None:
    strategy = strategy_for_hunt(algorithm, [[0, 1], [2]], [10, 5])
    assert isinstance(strategy, RingGroups)
    assert strategy.start() == RingStep(ring=(0, 1), timer=10)


def test_ring_all_rings_every_target_of_every_group_at_once() -> None:
    strategy = strategy_for_hunt(A, [[0, 1], [], [2]], [10, 5, 5])
    assert isinstance(strategy, RingAll)
    assert strategy.start() == RingStep(ring=(0, 1, 2))


def test_ring_all_wants_the_groups_to_number_the_targets() -> None:
    with pytest.raises(ValueError):
        strategy_for_hunt(A, [[0], [2]], [10, 5])


def test_from_members_to_ringing() -> None:
    """The call manager's path: order the free members, one group per member's phones."""
    phones = {"201": [0], "202": [1, 2], "203": [], "204": [3]}  # 203 has no phone registered
    order = hunt_order(U, list(phones), last="201", free=lambda member: bool(phones[member]))
    assert order == ["202", "204", "201"]
    groups = [phones[member] for member in order]
    strategy = strategy_for_hunt(U, groups, [15] * len(groups))
    assert strategy.start() == RingStep(ring=(1, 2), timer=15)
    assert strategy.timeout() == RingStep(ring=(3,), stop=(1, 2), timer=15)
    assert strategy.refused(3) == RingStep(ring=(0,), timer=15)
    assert strategy.timeout() == RingStep(stop=(0,))
    assert isinstance(strategy, RingGroups) and strategy.exhausted
