"""`kill -9` of the engine mid-call (issue 9): once it is started again, both phones of the
call get a BYE instead of sitting in silence, and the call's record ends when the killed
engine was last known alive, not when the new one started.

The real processes as users run them: `manage.py serve` (SQLite) and, when PostgreSQL and
Redis are here, the telephony Celery worker; two baresip phones talking with audio.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.peers.baresip import Baresip, baresip_binary
from tests.integration.peers.ports import free_udp_port
from tests.integration.processes import (
    HOST,
    ROOT,
    SERVE,
    Child,
    base_env,
    celery_worker,
    manage,
    sip_options,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(baresip_binary() is None, reason="baresip (baresip-core) is not installed"),
]

DOWN_SECONDS = 5.0  # how long the engine stays dead: the record must not count this time
BYE_WITHIN = 5.0  # seconds from the restarted engine answering SIP to both phones hung up
# The record's end lies between the last heartbeat (every 2 s, pbx/heartbeat.py) and the kill.
END_TOLERANCE = 3.0

_STATE = """
import json
from pbx.models import OpenDialog
from stats.models import CallRecord
print(json.dumps({
    "dialogs": OpenDialog.objects.count(),
    "records": [
        {
            "disposition": r.disposition,
            "end_reason": r.end_reason,
            "answered_at": r.answered_at and r.answered_at.isoformat(),
            "ended_at": r.ended_at and r.ended_at.isoformat(),
        }
        for r in CallRecord.objects.all()
    ],
}))
"""


def _state(env: dict[str, str]) -> dict:
    """What the database holds: the journal's row count and the call records."""
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", _STATE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@dataclass
class Office:
    """A node's environment with extensions 201 and 202 provisioned, and how to start it."""

    env: dict[str, str]
    command: list[str]
    log_dir: Path

    @property
    def registrar(self) -> str:
        return f"{HOST}:{self.env['CENTRALINO_SIP_PORT']}"

    def start(self, spawn: Callable[..., Child], name: str) -> Child:
        child = spawn(self.command, self.env, self.log_dir / f"{name}.log")
        port = int(self.env["CENTRALINO_SIP_PORT"])
        child.wait_until(lambda: sip_options(port) is not None, f"{name} (SIP)")
        return child


def _provision(env: dict[str, str]) -> None:
    manage(env, "migrate", "--noinput")
    for number, name in (("201", "Mario Rossi"), ("202", "Giulia Bianchi")):
        manage(
            env, "extension", "add", number, "--name", name, "--secret", f"crash-secret-{number}"
        )


def _kill_mid_call_and_restart(
    office: Office, spawn: Callable[..., Child], make_baresip: Callable[..., Baresip]
) -> None:
    engine = office.start(spawn, "first")
    caller = make_baresip(
        "201", password="crash-secret-201", registrar=office.registrar, tone_hz=440
    )
    callee = make_baresip(
        "202", password="crash-secret-202", registrar=office.registrar, tone_hz=1000
    )
    caller.wait_registered()
    callee.wait_registered()
    caller.dial(f"sip:202@{office.registrar}")
    callee.wait_established()
    caller.wait_established()
    callee.wait_hearing(440)
    caller.wait_hearing(1000)
    deadline = time.monotonic() + 10
    while (dialogs := _state(office.env)["dialogs"]) != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dialogs == 2, "the journal does not hold both legs of the call"
    time.sleep(2.5)  # a heartbeat or two into the call

    killed_at = datetime.now().astimezone()
    engine.kill()  # SIGKILL: no BYE, no record closed, no heartbeat marked stopped
    time.sleep(DOWN_SECONDS)
    assert not caller.has_event("CALL_CLOSED") and not callee.has_event("CALL_CLOSED")
    assert sip_options(int(office.env["CENTRALINO_SIP_PORT"]), 0.3) is None

    started = time.monotonic()
    restarted = office.start(spawn, "restarted")
    up = time.monotonic()
    callee.wait_closed(timeout=BYE_WITHIN)
    caller.wait_closed(timeout=max(0.1, BYE_WITHIN - (time.monotonic() - up)))
    print(
        f"\nboth phones hung up {time.monotonic() - started:.2f} s after the restart began "
        f"({time.monotonic() - up:.2f} s after it answered SIP)"
    )
    restarted.wait_until(
        lambda: "BYE sent on 2 dialogs left by a crash" in restarted.output(), "its log line"
    )

    state = _state(office.env)
    assert state["dialogs"] == 0
    [record] = state["records"]
    assert (record["disposition"], record["end_reason"]) == ("interrupted", "engine crash")
    ended_at = datetime.fromisoformat(record["ended_at"])
    print(f"record ends {(killed_at - ended_at).total_seconds():.2f} s before the kill")
    assert killed_at - timedelta(seconds=END_TOLERANCE) <= ended_at <= killed_at
    assert ended_at > datetime.fromisoformat(record["answered_at"])


def test_after_a_kill_of_serve_both_phones_get_a_bye_and_the_record_ends_at_the_kill(
    tmp_path: Path, spawn: Callable[..., Child], make_baresip: Callable[..., Baresip]
) -> None:
    env = base_env(tmp_path)
    env["CENTRALINO_HTTP_PORT"] = str(free_udp_port())
    _provision(env)

    _kill_mid_call_and_restart(Office(env, SERVE, tmp_path), spawn, make_baresip)


def test_after_a_kill_of_the_telephony_worker_both_phones_get_a_bye(
    postgres_url: str,
    redis_url: str,
    tmp_path: Path,
    spawn: Callable[..., Child],
    make_baresip: Callable[..., Baresip],
) -> None:
    """The distributed mode: the node's lock (a PostgreSQL advisory lock) dies with the
    killed worker, so the restarted one takes the node at once."""
    node = f"crash{uuid.uuid4().hex[:8]}"
    env = base_env(tmp_path)
    env.update(DATABASE_URL=postgres_url, REDIS_URL=redis_url, CENTRALINO_NODE=node)
    _provision(env)
    command = celery_worker(
        f"telephony.{node}", "-n", f"{node}@%h", "--without-heartbeat", "--loglevel", "INFO"
    )

    _kill_mid_call_and_restart(Office(env, command, tmp_path), spawn, make_baresip)
