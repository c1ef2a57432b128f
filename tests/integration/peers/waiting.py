"""Waiting for what a test waits for (a line, an event, a tone), never for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    check: Callable[[], T],
    timeout: float = 10.0,
    *,
    what: str,
    seen: Callable[[], object] | None = None,
    interval: float = 0.02,
) -> T:
    """Call check() until it returns something truthy, and return that.

    On timeout, AssertionError: "waited N s for <what>; saw <seen() or check()'s last value>".
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            observed = seen() if seen is not None else value
            raise AssertionError(f"waited {timeout:g} s for {what}; saw {observed!r}")
        time.sleep(interval)
