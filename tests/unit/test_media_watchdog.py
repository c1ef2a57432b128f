"""The media watchdog: which answered legs have been silent for too long."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pbx.engine.watchdog import MediaWatchdog


class _Leg(SimpleNamespace):
    __hash__ = object.__hash__  # identity, like the engine's legs (dataclass eq=False)
    __eq__ = object.__eq__


def _leg(received: int = 0, **state: Any) -> Any:
    values = {"answered": True, "remote_hold": False, "awaiting_answer": False} | state
    return _Leg(media=SimpleNamespace(heard=received), **values)


def test_a_leg_that_stops_sending_is_reported_after_the_timeout() -> None:
    watchdog, leg = MediaWatchdog(timeout=10), _leg(received=5)
    assert watchdog.silent([leg], now=0) == []
    assert watchdog.silent([leg], now=9) == []
    assert watchdog.silent([leg], now=10) == [leg]


def test_packets_arriving_reset_the_clock() -> None:
    watchdog, leg = MediaWatchdog(timeout=10), _leg(received=5)
    watchdog.silent([leg], now=0)
    leg.media.heard = 6
    assert watchdog.silent([leg], now=9) == []
    assert watchdog.silent([leg], now=18) == []
    assert watchdog.silent([leg], now=19) == [leg]


def test_a_phone_on_hold_or_not_yet_answered_may_be_silent() -> None:
    watchdog = MediaWatchdog(timeout=1)
    holding, ringing, late = (
        _leg(remote_hold=True),
        _leg(answered=False),
        _leg(awaiting_answer=True),
    )
    for now in (0, 5, 50):
        assert watchdog.silent([holding, ringing, late], now=now) == []


def test_a_leg_that_leaves_and_comes_back_starts_afresh() -> None:
    watchdog, leg = MediaWatchdog(timeout=10), _leg()
    watchdog.silent([leg], now=0)
    watchdog.silent([], now=5)
    assert watchdog.silent([leg], now=12) == []
    assert watchdog.silent([leg], now=22) == [leg]
