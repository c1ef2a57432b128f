"""A fake `Clock`: time moves only when a test says so, and timers fire in order; and a wall
clock that moves with it."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(eq=False)
class FakeTimer:
    due: float
    order: int
    callback: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A `Clock` whose time moves only when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[FakeTimer] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self._now + delay, next(self._order), callback)
        self._timers.append(timer)
        return timer

    def next_due(self) -> float | None:
        """When the next live timer fires (None: no timer)."""
        return min((t.due for t in self._timers if not t.cancelled), default=None)

    def advance(self, seconds: float) -> None:
        """Move time on by `seconds`, firing the timers that fall due, in order."""
        self.advance_to(self._now + seconds)

    def advance_to(self, when: float) -> None:
        while True:
            due = [t for t in self._timers if not t.cancelled and t.due <= when]
            if not due:
                break
            timer = min(due, key=lambda t: (t.due, t.order))
            self._timers.remove(timer)
            self._now = timer.due
            timer.callback()
        self._now = max(self._now, when)


class FakeWallClock:
    """The date and time of day (aware), moving with a `FakeClock`: what an engine reads for
    schedules and dates. `set()` puts it on another instant, as if the test travelled there."""

    def __init__(self, clock: FakeClock, start: datetime) -> None:
        self.clock = clock
        self.set(start)

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("a wall clock tells aware times")
        self._start, self._origin = instant, self.clock.now()

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=self.clock.now() - self._origin)

    def timestamp(self) -> float:
        """Seconds since the epoch, as `time.time()` says them."""
        return self().timestamp()
