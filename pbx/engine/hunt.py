"""Ring strategies: which targets ring when, as pure state machines over target numbers.

A ringer (ringer.py) holds the targets of one call (the contacts of an extension's devices
today; the members of a hunt group tomorrow), numbered 0..n-1, and asks its strategy what to
do when the ringing starts, when a target refuses or fails, and when the strategy's own step
timer fires. A strategy knows no SIP and no clock: it returns `RingStep`s, so that each one is
tested alone. The ringer's overall no-answer timer is not the strategy's business.

A hunt group ("Call Distributor") adds an order among its members: `hunt_order` lists the free
members in the order its `Algorithm` tries them, the caller makes one group of target indexes
per member (a member's registered phones ring together) and `strategy_for_hunt` rings those
groups one after the other with `RingGroups`, or all at once with `RingAll`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

MIN_TURN = 5.0  # seconds: the shortest turn a device gets when ringing one after the other


@dataclass(frozen=True, slots=True)
class RingStep:
    """What to do now: start ringing `ring`, stop `stop`, and call `timeout()` after `timer`
    seconds (None: no step timer; any earlier step timer is cancelled)."""

    ring: tuple[int, ...] = ()
    stop: tuple[int, ...] = ()
    timer: float | None = None


class RingStrategy(Protocol):
    def start(self) -> RingStep: ...

    def refused(self, target: int) -> RingStep: ...

    def timeout(self) -> RingStep: ...


class RingAll:
    """Every target at once; the first to answer wins."""

    def __init__(self, count: int) -> None:
        self.count = count

    def start(self) -> RingStep:
        return RingStep(ring=tuple(range(self.count)))

    def refused(self, target: int) -> RingStep:
        return RingStep()

    def timeout(self) -> RingStep:
        return RingStep()


class RingInOrder:
    """One target after the other, each for `turn` seconds; one that refuses passes the turn
    at once. The last one rings until the overall no-answer timer."""

    def __init__(self, count: int, turn: float) -> None:
        self.count = count
        self.turn = turn
        self.current = -1

    @classmethod
    def sharing(cls, count: int, timeout: float) -> RingInOrder:
        """Share `timeout` among `count` targets, at least `MIN_TURN` each."""
        return cls(count, max(MIN_TURN, timeout / max(count, 1)))

    def start(self) -> RingStep:
        return self._next(())

    def refused(self, target: int) -> RingStep:
        if target != self.current:
            return RingStep()
        return self._next(())

    def timeout(self) -> RingStep:
        return self._next((self.current,) if self.current >= 0 else ())

    def _next(self, stop: tuple[int, ...]) -> RingStep:
        if self.current + 1 >= self.count:
            self.current = self.count
            return RingStep(stop=())  # nothing left: the last one keeps ringing
        self.current += 1
        last = self.current == self.count - 1
        return RingStep(ring=(self.current,), stop=stop, timer=None if last else self.turn)


class RingAllThenAdd:
    """Targets 0..count-1 at once; after `delay` seconds target `count` (an outside number,
    a mobile) rings with them."""

    def __init__(self, count: int, delay: float) -> None:
        self.count = count
        self.delay = delay

    def start(self) -> RingStep:
        return RingStep(ring=tuple(range(self.count)), timer=self.delay)

    def refused(self, target: int) -> RingStep:
        return RingStep()

    def timeout(self) -> RingStep:
        return RingStep(ring=(self.count,))


def strategy_for(
    ring_mode: str, count: int, timeout: float, *, extra: bool = False, extra_delay: float = 10
) -> RingStrategy:
    """The strategy of an extension's ring mode ("all" or "in_order") over its `count`
    devices; with `extra`, target `count` is an outside number that rings too: after
    `extra_delay` seconds with the others, or as the last in order; with no device to
    ring (none registered), at once."""
    if count == 0:
        return RingAll(1 if extra else 0)
    if ring_mode == "in_order" and count + extra > 1:
        return RingInOrder.sharing(count + extra, timeout)
    if extra:
        return RingAllThenAdd(count, extra_delay)
    return RingAll(count)


# --- hunt groups -----------------------------------------------------------------------------


class Algorithm(enum.StrEnum):
    """How a hunt group ("Call Distributor") searches its members for one to ring.

    - LINEAR: the search starts with the first configured line and goes on in configured order.
    - CIRCULAR: the search starts with the line that was called, i.e. the member that took the
      group's previous call (where the previous search stopped), then goes on in configured
      order, wrapping round.
    - UNIFORM_SEQUENTIAL: the search starts with the first line after the one called last time
      this group was called, then goes on in configured order, wrapping round: a rotation.
    - LONGEST_IDLE (uniform longest idle): the line idle the longest first, then the next
      longest idle, and so on; a member never seen busy counts as idle since forever, and ties
      keep configured order.
    - RING_ALL: every free member at once until one answers.
    """

    LINEAR = "linear"
    CIRCULAR = "circular"
    UNIFORM_SEQUENTIAL = "uniform_sequential"
    LONGEST_IDLE = "longest_idle"
    RING_ALL = "ring_all"


def hunt_order(
    algorithm: Algorithm,
    members: Sequence[str],
    *,
    last: str = "",
    idle_since: Mapping[str, float] | None = None,
    free: Callable[[str], bool] | None = None,
) -> list[str]:
    """The members (extension numbers, in configured order) in the order the search tries them.

    `last` is the member that took the group's previous call: CIRCULAR starts with it and
    UNIFORM_SEQUENTIAL with the one after it; "" or a member no longer in the group starts
    like LINEAR. `idle_since` gives, for LONGEST_IDLE, the time (any clock, larger is later)
    since which each member has been idle; a member missing from it has been idle since
    forever. Members for which `free()` is False (busy, do not disturb, unregistered) are left
    out of the result, but a `last` that is not free still anchors the rotation. LINEAR and
    RING_ALL keep configured order.
    """
    algorithm = Algorithm(algorithm)  # a stored "linear" works too
    order = list(members)
    if algorithm in (Algorithm.CIRCULAR, Algorithm.UNIFORM_SEQUENTIAL) and last in order:
        after = 1 if algorithm is Algorithm.UNIFORM_SEQUENTIAL else 0
        start = (order.index(last) + after) % len(order)
        order = order[start:] + order[:start]
    elif algorithm is Algorithm.LONGEST_IDLE:
        since = idle_since or {}
        order.sort(key=lambda member: since.get(member, -math.inf))  # stable: ties keep order
    if free is None:
        return order
    return [member for member in order if free(member)]


class RingGroups:
    """Groups of targets one after the other: group i rings for `turns[i]` seconds, then its
    targets are stopped and the next group rings. A group is one hunt group member's targets
    (a member may have several registered phones, which ring together); when every target of
    the ringing group has refused, the turn passes at once. Empty groups are skipped.

    Unlike `RingInOrder`, the last group's turn ends too: after it nothing is left, the step
    only stops its targets and `exhausted` becomes True. The ringer must check `exhausted`
    after applying a step and then end with no answer (NO_ANSWER), as its overall no-answer
    timer, which `total(turns)` sets to the same moment, would: otherwise the stopped targets
    leave nothing ringing and it would end as if all had refused. When the last group's
    targets all refused, `exhausted` is True as well and ending as refused is right.
    """

    def __init__(self, groups: Sequence[Sequence[int]], turns: Sequence[float]) -> None:
        if len(groups) != len(turns):
            raise ValueError(f"{len(groups)} groups but {len(turns)} turns")
        self.groups = [
            (tuple(group), turn) for group, turn in zip(groups, turns, strict=True) if group
        ]
        self.current = -1  # index in self.groups of the ringing group
        self._refused: set[int] = set()  # targets of the ringing group that refused

    @staticmethod
    def total(turns: Sequence[float]) -> float:
        """The sum of the turns: the overall no-answer timeout to give the ringer (an empty
        group's turn counts too: leave it out to end exactly with the last turn)."""
        return float(sum(turns))

    @property
    def exhausted(self) -> bool:
        """True once the last group's turn is over (or there was no group at all)."""
        return self.current >= len(self.groups)

    @property
    def ringing(self) -> tuple[int, ...]:
        """The targets of the group whose turn it is (none before the start or after the end)."""
        if 0 <= self.current < len(self.groups):
            return self.groups[self.current][0]
        return ()

    def start(self) -> RingStep:
        if self.current >= 0:
            return RingStep()
        return self._next(())

    def refused(self, target: int) -> RingStep:
        ringing = self.ringing
        if target not in ringing:
            return RingStep()  # a stopped target's 487, or one not ringing at all
        self._refused.add(target)
        if self._refused.issuperset(ringing):
            return self._next(())  # nothing to stop: every target ended by itself
        return RingStep()

    def timeout(self) -> RingStep:
        ringing = self.ringing
        if not ringing:
            return RingStep()
        return self._next(tuple(t for t in ringing if t not in self._refused))

    def _next(self, stop: tuple[int, ...]) -> RingStep:
        self._refused = set()
        self.current = min(self.current + 1, len(self.groups))
        if self.exhausted:
            return RingStep(stop=stop)
        group, turn = self.groups[self.current]
        return RingStep(ring=group, stop=stop, timer=turn)


def strategy_for_hunt(
    algorithm: Algorithm, groups: Sequence[Sequence[int]], turns: Sequence[float]
) -> RingStrategy:
    """The strategy of a hunt group: `groups` are the members' target indexes in
    `hunt_order`, which together number the ringer's targets 0..n-1, and `turns` their turns.

    RING_ALL rings every target at once with `RingAll` (its turns only matter for the overall
    timeout, `RingGroups.total(turns)`); every other algorithm rings the groups one after the
    other with `RingGroups`.
    """
    if Algorithm(algorithm) is Algorithm.RING_ALL:
        targets = sorted({target for group in groups for target in group})
        if targets != list(range(len(targets))):
            raise ValueError(f"targets {targets} do not number 0..n-1")
        return RingAll(len(targets))
    return RingGroups(groups, turns)
