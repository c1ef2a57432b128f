"""Ring strategies alone: which targets ring, stop and get a turn timer, with no SIP and no clock."""

from __future__ import annotations

import pytest

from pbx.engine.hunt import MIN_TURN, RingAll, RingInOrder, RingStep, strategy_for


def test_ring_all_rings_every_target_at_once_without_a_turn_timer() -> None:
    assert RingAll(3).start() == RingStep(ring=(0, 1, 2), timer=None)


def test_ring_all_does_nothing_more_when_a_target_refuses_or_time_passes() -> None:
    strategy = RingAll(3)
    strategy.start()
    assert strategy.refused(1) == RingStep()
    assert strategy.timeout() == RingStep()


def test_in_order_rings_the_first_target_for_one_turn() -> None:
    assert RingInOrder(3, turn=10).start() == RingStep(ring=(0,), timer=10)


def test_when_a_turn_ends_the_target_stops_and_the_next_one_rings() -> None:
    strategy = RingInOrder(3, turn=10)
    strategy.start()
    assert strategy.timeout() == RingStep(ring=(1,), stop=(0,), timer=10)


def test_the_last_target_rings_without_a_turn_timer() -> None:
    strategy = RingInOrder(3, turn=10)
    strategy.start()
    strategy.timeout()
    assert strategy.timeout() == RingStep(ring=(2,), stop=(1,), timer=None)


def test_after_the_last_turn_a_timeout_stops_nobody_and_rings_nobody() -> None:
    strategy = RingInOrder(2, turn=10)
    strategy.start()
    strategy.timeout()
    assert strategy.timeout() == RingStep()


def test_a_target_that_refuses_passes_the_turn_at_once() -> None:
    strategy = RingInOrder(3, turn=10)
    strategy.start()
    # Nothing to stop: the target that refused has ended by itself.
    assert strategy.refused(0) == RingStep(ring=(1,), timer=10)


def test_a_refusal_from_a_target_whose_turn_is_over_rings_nobody_new() -> None:
    strategy = RingInOrder(3, turn=10)
    strategy.start()
    strategy.timeout()  # 0 stopped, 1 rings
    step = strategy.refused(0)  # 0 answers our CANCEL with 487
    assert step.ring == () and step.stop == ()
    assert strategy.timeout() == RingStep(ring=(2,), stop=(1,), timer=None)


def test_when_the_last_target_refuses_nothing_is_left_to_ring() -> None:
    strategy = RingInOrder(2, turn=10)
    strategy.start()
    strategy.refused(0)
    assert strategy.refused(1) == RingStep()
    assert strategy.timeout() == RingStep()


def test_a_walk_through_refusals_and_timeouts_rings_each_target_once_in_order() -> None:
    strategy = RingInOrder(4, turn=7)
    rung = list(strategy.start().ring)
    rung += strategy.refused(0).ring
    rung += strategy.timeout().ring
    rung += strategy.refused(2).ring
    rung += strategy.timeout().ring
    assert rung == [0, 1, 2, 3]


def test_sharing_splits_the_timeout_among_the_targets() -> None:
    assert RingInOrder.sharing(3, timeout=30).turn == 10


def test_sharing_gives_each_target_at_least_the_minimum_turn() -> None:
    assert RingInOrder.sharing(10, timeout=20).turn == MIN_TURN


@pytest.mark.parametrize(
    ("mode", "count", "expected"),
    [("all", 3, RingAll), ("in_order", 3, RingInOrder), ("in_order", 1, RingAll)],
    ids=["all", "in-order", "in-order-of-one-rings-it"],
)
def test_strategy_for_rings_in_order_only_when_asked_and_there_are_several_targets(
    mode: str, count: int, expected: type
) -> None:
    strategy = strategy_for(mode, count, timeout=30)
    assert type(strategy) is expected
    assert strategy.start().ring[0] == 0
