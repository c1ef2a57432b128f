"""The background writer retries what a database hiccup refused, and keeps the order."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from pbx import writer
from pbx.writer import BackgroundWriter


def test_a_write_refused_by_a_database_hiccup_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "RETRY_PAUSES", (0.01, 0.01))
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return "written"

    assert BackgroundWriter("t").submit(flaky).result(5) == "written"
    assert len(attempts) == 3


def test_a_write_that_keeps_failing_is_given_up_and_the_next_ones_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(writer, "RETRY_PAUSES", (0.01,))
    done: list[str] = []

    def broken() -> None:
        raise OperationalError("down")

    w = BackgroundWriter("t")
    assert w.submit(broken).result(5) is None
    w.submit(done.append, "next")
    w.flush()
    assert done == ["next"]
