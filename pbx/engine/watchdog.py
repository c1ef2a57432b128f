"""Ends calls whose phone went silent: no RTP for a while from a leg that is not on hold.

A phone that loses power or network never sends its BYE. Without this, the other party would
sit in silence and the call record would stay open until someone hung up by hand.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

from pbx.engine.legs import Leg


class MediaWatchdog:
    """Remembers, per answered leg, since when its received-packet count stopped moving."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._since: weakref.WeakKeyDictionary[Leg, tuple[int, float]] = weakref.WeakKeyDictionary()

    def silent(self, legs: Iterable[Leg], now: float) -> list[Leg]:
        """The legs among `legs` silent for `timeout` seconds; forget legs no longer given."""
        found: list[Leg] = []
        since: weakref.WeakKeyDictionary[Leg, tuple[int, float]] = weakref.WeakKeyDictionary()
        for leg in legs:
            if not leg.answered or leg.remote_hold or leg.awaiting_answer:
                continue  # a phone that holds (sendonly, inactive) may rightly send nothing
            # Comfort noise and RTCP count too: a phone with silence suppression that only
            # listens is alive.
            count = leg.media.heard
            previous = self._since.get(leg)
            if previous is None or previous[0] != count:
                since[leg] = (count, now)
                continue
            since[leg] = previous
            if now - previous[1] >= self.timeout:
                found.append(leg)
        self._since = since
        return found
