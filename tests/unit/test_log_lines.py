"""Every log line carries the same clock: UTC with a Z, whatever the company's time zone."""

from __future__ import annotations

import logging
import re

from django.conf import settings

from operator_panel.logs import UtcFormatter


def test_a_log_line_starts_with_utc_time_whatever_the_time_zone() -> None:
    formatter = UtcFormatter("%(asctime)s %(message)s")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    record.created, record.msecs = 1_780_000_000.25, 250.0  # 2026-05-28T20:26:40.250Z

    assert formatter.format(record) == "2026-05-28T20:26:40.250Z hello"


def test_the_settings_use_it_for_every_process() -> None:
    formatter = settings.LOGGING["formatters"]["plain"]
    assert formatter["()"] == "operator_panel.logs.UtcFormatter"
    assert settings.CELERY_WORKER_HIJACK_ROOT_LOGGER is False
    assert re.match(r"^%\(asctime\)s ", formatter["format"])
