"""A source that keeps failing authentication is blocked for a while, then let in again."""

from __future__ import annotations

from pbx.engine.auth import FailureTracker


def test_it_blocks_a_source_after_the_limit_within_the_window() -> None:
    tracker = FailureTracker(limit=3, window=60, block_for=300)
    for t in (0, 1, 2):
        assert not tracker.is_blocked("10.0.0.9", t)
        tracker.failed("10.0.0.9", t)
    assert tracker.is_blocked("10.0.0.9", 3)
    assert not tracker.is_blocked("10.0.0.8", 3)


def test_failures_spread_beyond_the_window_do_not_block() -> None:
    tracker = FailureTracker(limit=3, window=10, block_for=300)
    for t in (0, 20, 40, 60):
        tracker.failed("10.0.0.9", t)
    assert not tracker.is_blocked("10.0.0.9", 61)


def test_the_block_lifts_after_its_time() -> None:
    tracker = FailureTracker(limit=1, window=10, block_for=30)
    tracker.failed("10.0.0.9", 0)
    assert tracker.is_blocked("10.0.0.9", 29)
    assert not tracker.is_blocked("10.0.0.9", 31)


def test_a_success_clears_the_count() -> None:
    tracker = FailureTracker(limit=2, window=60, block_for=30)
    tracker.failed("10.0.0.9", 0)
    tracker.succeeded("10.0.0.9")
    tracker.failed("10.0.0.9", 1)
    assert not tracker.is_blocked("10.0.0.9", 2)
