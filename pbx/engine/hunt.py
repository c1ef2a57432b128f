"""Ring strategies: which targets ring when, as pure state machines over target numbers.

A ringer (ringer.py) holds the targets of one call (the contacts of an extension's devices
today; the members of a hunt group tomorrow), numbered 0..n-1, and asks its strategy what to
do when the ringing starts, when a target refuses or fails, and when the strategy's own step
timer fires. A strategy knows no SIP and no clock: it returns `RingStep`s, so that each one is
tested alone. The ringer's overall no-answer timer is not the strategy's business.
"""

from __future__ import annotations

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


def strategy_for(ring_mode: str, count: int, timeout: float) -> RingStrategy:
    """The strategy of an extension's ring mode ("all" or "in_order")."""
    if ring_mode == "in_order" and count > 1:
        return RingInOrder.sharing(count, timeout)
    return RingAll(count)
