"""The environment alone picks the embedded default or the distributed mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
from operator_panel import settings as s
print(json.dumps({
    "db_engine": s.DATABASES["default"]["ENGINE"],
    "db_name": str(s.DATABASES["default"]["NAME"]),
    "db_host": s.DATABASES["default"].get("HOST", ""),
    "channel_layer": s.CHANNEL_LAYERS["default"]["BACKEND"],
    "channel_hosts": s.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("hosts", []),
    "cache": s.CACHES["default"]["BACKEND"],
    "broker": s.CELERY_BROKER_URL,
    "eager": s.CELERY_TASK_ALWAYS_EAGER,
    "engine": s.CENTRALINO_ENGINE,
}, default=lambda value: value.__name__))
"""


def settings_with(**env: str) -> dict[str, Any]:
    """Import the settings in a fresh interpreter with exactly these switches set."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    clean.pop("CENTRALINO_ENGINE", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_no_environment_means_sqlite_in_memory_layer_and_eager_tasks(tmp_path: Path) -> None:
    s = settings_with(CENTRALINO_VAR=str(tmp_path))

    assert s["db_engine"] == "django.db.backends.sqlite3"
    assert s["db_name"] == str(tmp_path / "centralino.sqlite3")
    assert s["channel_layer"] == "channels.layers.InMemoryChannelLayer"
    assert s["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert s["eager"] is True
    assert s["engine"] == "embedded"


def test_database_url_selects_postgresql() -> None:
    s = settings_with(DATABASE_URL="postgres://postgres@127.0.0.1:5432/centralino")

    assert s["db_engine"] == "django.db.backends.postgresql"
    assert s["db_name"] == "centralino"
    assert s["db_host"] == "127.0.0.1"
    # The database alone does not move the channel layer or the engine.
    assert s["channel_layer"] == "channels.layers.InMemoryChannelLayer"
    assert s["engine"] == "embedded"


def test_redis_url_selects_redis_for_channels_cache_and_celery() -> None:
    url = "redis://127.0.0.1:6379/3"
    s = settings_with(REDIS_URL=url)

    assert s["channel_layer"] == "channels_redis.core.RedisChannelLayer"
    # Reads may wait longer than channels_redis's 5 s; a stale pooled connection is tried again.
    assert s["channel_hosts"] == [
        {"address": url, "socket_timeout": 30, "retry_on_error": ["ConnectionError"]}
    ]
    assert s["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert s["broker"] == url
    assert s["eager"] is False
    # With a broker the engine runs on a telephony worker, not in the web process.
    assert s["engine"] == "off"
