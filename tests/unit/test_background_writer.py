"""The background writer retries what the database refused until it goes through, in order;
only a stop gives writes up."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError

from pbx import writer
from pbx.writer import BackgroundWriter


@pytest.fixture(autouse=True)
def short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "RETRY_PAUSES", (0.01, 0.02))


def test_a_write_refused_by_a_database_hiccup_is_retried() -> None:
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return "written"

    assert BackgroundWriter("t").submit(flaky).result(5) == "written"
    assert len(attempts) == 3


def test_during_a_long_outage_writes_wait_in_order_and_all_go_through_once_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    back = threading.Event()
    attempts: list[str] = []
    written: list[str] = []

    def write(what: str) -> None:
        attempts.append(what)
        if not back.is_set():
            raise OperationalError("connection refused")
        written.append(what)

    w = BackgroundWriter("cdr")
    futures = [w.submit(write, what) for what in ("first", "second", "third")]
    with pytest.raises(TimeoutError):
        w.flush(0.5)  # far more than the pauses: tried again and again, never given up
    assert len(attempts) > 10 and set(attempts) == {"first"}  # the others wait behind it

    back.set()
    w.flush(5)

    assert written == ["first", "second", "third"]
    assert all(f.result() is None for f in futures)
    said = [r.getMessage() for r in caplog.records if r.name == "pbx.writer"]
    assert said == [
        "the database went away (connection refused): the cdr writes wait for it, in order",
        f"the database answers again ({len(attempts) - 3} operations failed meanwhile)",
    ]


def test_a_stop_gives_up_what_the_database_still_refuses_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def refused() -> None:
        raise OperationalError("connection refused")

    w = BackgroundWriter("journal")
    w.submit(refused)
    w.submit(refused)

    assert w.drain(0.2) is False

    given_up = [r.getMessage() for r in caplog.records if "given up" in r.getMessage()]
    assert given_up == ["journal: a database write given up at stop: connection refused"] * 2
    done: list[str] = []
    w.submit(done.append, "after")  # the writer goes on working (an engine started again)
    assert w.drain(1) is True and done == ["after"]


def test_a_write_that_fails_for_another_reason_is_logged_and_the_next_ones_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []

    def broken() -> None:
        raise ValueError("a bug")

    w = BackgroundWriter("t")
    assert w.submit(broken).result(5) is None
    w.submit(done.append, "next")
    w.flush()
    assert done == ["next"]
    assert "background database write failed" in caplog.text
