"""A source that keeps failing authentication is blocked for a while, then let in again."""

from __future__ import annotations

import logging
import re

import pytest

from pbx.engine.auth import FailureTracker

# The failregex the README's fail2ban filter uses, with fail2ban's <HOST> written out.
FAIL2BAN_REGEX = r"pbx\.security: blocked SIP source (?P<host>[0-9a-fA-F:.]+) for "
LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"  # the settings


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


# --- what the administrators' security page reads and does (pbx/security.py) ---------------


def test_it_lists_the_blocked_sources_with_their_time_left_and_failures() -> None:
    tracker = FailureTracker(limit=2, window=60, block_for=300)
    for t in (0, 1):
        tracker.failed("192.0.2.7", t)
    for t in (50, 51):
        tracker.failed("2001:db8::9", t)
    tracker.failed("198.51.100.1", 52)  # one failure: not blocked

    assert tracker.blocked(101) == [("192.0.2.7", 200, 2), ("2001:db8::9", 250, 2)]
    ip, seconds_left, failures = tracker.blocked(101)[0]
    assert (ip, seconds_left, failures) == ("192.0.2.7", 200, 2)


def test_an_expired_block_is_no_longer_listed() -> None:
    tracker = FailureTracker(limit=1, window=60, block_for=30)
    tracker.failed("192.0.2.7", 0)
    assert tracker.blocked(29)
    assert tracker.blocked(30) == []
    assert not tracker.is_blocked("192.0.2.7", 30)


def test_unblocking_lets_the_source_in_at_once_and_forgets_its_failures() -> None:
    tracker = FailureTracker(limit=2, window=60, block_for=300)
    for t in (0, 1):
        tracker.failed("192.0.2.7", t)

    assert tracker.unblock("192.0.2.7", by="carol")

    assert not tracker.is_blocked("192.0.2.7", 2)
    assert tracker.blocked(2) == []
    tracker.failed("192.0.2.7", 3)  # the count starts again
    assert not tracker.is_blocked("192.0.2.7", 3)


def test_unblocking_a_source_that_is_not_blocked_says_so() -> None:
    tracker = FailureTracker(limit=2, window=60, block_for=300)
    tracker.failed("192.0.2.7", 0)
    assert not tracker.unblock("192.0.2.7")
    assert not tracker.unblock("203.0.113.5")


def test_a_block_is_one_log_line_that_names_the_source(caplog: pytest.LogCaptureFixture) -> None:
    tracker = FailureTracker(limit=3, window=60, block_for=300)
    with caplog.at_level(logging.INFO, logger="pbx.security"):
        for t in range(5):  # failures past the limit while blocked log nothing more
            tracker.failed("192.0.2.7", t)

    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            "pbx.security",
            logging.WARNING,
            "blocked SIP source 192.0.2.7 for 300 s after 3 failed authentications",
        )
    ]
    line = logging.Formatter(LOG_FORMAT).format(caplog.records[0])
    assert re.search(FAIL2BAN_REGEX, line)["host"] == "192.0.2.7"


def test_an_unblock_is_one_log_line_that_names_the_administrator(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = FailureTracker(limit=1, window=60, block_for=300)
    tracker.failed("192.0.2.7", 0)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="pbx.security"):
        tracker.unblock("192.0.2.7", by="carol")
        tracker.unblock("192.0.2.7", by="carol")  # not blocked any more: nothing to log

    assert [r.getMessage() for r in caplog.records] == [
        "unblocked SIP source 192.0.2.7 by administrator carol"
    ]
