"""One clock for every log line: UTC, ISO 8601 with a "Z", whatever process wrote it (web,
telephony worker, jobs worker, beat) and whatever TIME_ZONE the company uses. Lines of several
processes then sort and compare by their first word."""

from __future__ import annotations

import logging
import time


class UtcFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"
