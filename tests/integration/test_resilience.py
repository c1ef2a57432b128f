"""Bad input and services going away (issue 9, "Bad input"), on the real processes.

- A wrong DATABASE_URL (nothing listening, or a user the server does not know) or REDIS_URL:
  `manage.py serve` and the Celery workers exit at once with one line naming the service and
  the reason, no traceback; the web (Daphne, as the Procfile runs it) answers /healthz with 503
  and says what is wrong once in its log.
- Redis going away under a running telephony worker (a redis-server of the test's own, on a
  free port, stopped and started again): Celery's line about its broker and one line from the
  engine (its console messages cannot leave) in the worker's log, a new call attempt still
  answered, the call in progress carries on with audio both ways; once Redis is back /healthz
  is 200 again, the node answers a console snapshot task with the call in it, and the
  consoles get the call's end. A console socket open while Redis restarts is closed by the web
  (its group went with Redis), one line in the web's log, and the page's next socket shows the
  calls made after.
- PostgreSQL restarting (the shared server cannot restart: the test database's backends are
  terminated and new connections refused for a while): a line in the worker's log for each
  thing that waits (the heartbeat, the node's lock, the configuration), the call carries on, a
  new call attempt is still answered, a hunt group still rings (its rotation from what the node
  knew) and a mailbox still records (the message waits on disk); after an outage longer than
  the writers ever retried before, the records are completed and the message kept once
  connections come back, the heartbeat resumes and the worker holds its node's lock again.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.peers.baresip import Baresip, baresip_binary
from tests.integration.peers.ports import free_port_range, free_udp_port
from tests.integration.peers.sipp import run_sipp, sipp_binary
from tests.integration.peers.waiting import wait_for
from tests.integration.processes import (
    HOST,
    POSTGRES_ADMIN_URL,
    ROOT,
    SERVE,
    Child,
    base_env,
    celery_worker,
    http_get,
    login,
    manage,
    sip_options,
    skip_loudly,
    start_child,
)

pytestmark = pytest.mark.integration

EXIT_TIMEOUT = 30.0  # a process refusing a wrong URL exits in a second or two
DAPHNE = [str(Path(sys.executable).with_name("daphne"))]


def run_to_exit(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `command` in the repository until it exits; its return code and output."""
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=EXIT_TIMEOUT
    )
    return done.returncode, done.stdout + done.stderr


def assert_one_clear_line(output: str, *words: str) -> str:
    """The output holds exactly one line with every one of `words`, and no traceback."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if all(word in line for word in words)]
    assert len(lines) == 1, f"not one line with {words}:\n{output}"
    return lines[0]


# --- A wrong DATABASE_URL ---------------------------------------------------------------


@pytest.fixture(params=["nothing listening", "unknown user"])
def wrong_database(request: pytest.FixtureRequest) -> tuple[str, tuple[str, ...]]:
    """A DATABASE_URL that cannot work, and what the one line must say."""
    if request.param == "nothing listening":
        port = free_udp_port()  # free: nothing listens there
        return f"postgresql://postgres@127.0.0.1:{port}/centralino", (
            f"at 127.0.0.1:{port}",
            "Connection refused",
        )
    user = f"nobody_{uuid.uuid4().hex[:6]}"
    return f"postgresql://{user}@127.0.0.1:5432/centralino", (
        f"as {user}",
        f'role "{user}" does not exist',
    )


def test_serve_with_a_wrong_database_url_exits_with_one_line(
    wrong_database: tuple[str, tuple[str, ...]], tmp_path: Path
) -> None:
    url, says = wrong_database
    env = {**base_env(tmp_path), "DATABASE_URL": url}
    env["CENTRALINO_HTTP_PORT"] = str(free_udp_port())

    code, output = run_to_exit(SERVE, env)

    assert code != 0, output
    assert_one_clear_line(output, "cannot connect to the postgresql database 'centralino'", *says)
    assert sip_options(int(env["CENTRALINO_SIP_PORT"]), timeout=0.3) is None


def test_the_telephony_worker_with_a_wrong_database_url_exits_with_one_line(
    wrong_database: tuple[str, tuple[str, ...]], redis_url: str, tmp_path: Path
) -> None:
    url, says = wrong_database
    env = {**base_env(tmp_path), "DATABASE_URL": url, "REDIS_URL": redis_url}
    env["CENTRALINO_NODE"] = node = f"bad{uuid.uuid4().hex[:8]}"

    code, output = run_to_exit(celery_worker(f"telephony.{node}"), env)

    assert code != 0, output
    line = assert_one_clear_line(output, "cannot connect to the postgresql database", *says)
    assert "This worker exits" in line
    assert "ready." not in output  # it never served, with or without an engine


# --- A wrong REDIS_URL ------------------------------------------------------------------


@pytest.mark.parametrize("queue", ["telephony", "celery"])
def test_a_worker_with_a_wrong_redis_url_exits_with_one_line(
    queue: str, postgres_url: str, tmp_path: Path
) -> None:
    """The telephony worker, and the jobs worker (the Procfile's `worker`)."""
    port = free_udp_port()
    env = {**base_env(tmp_path), "DATABASE_URL": postgres_url}
    env["REDIS_URL"] = f"redis://:s3cret@127.0.0.1:{port}/0"
    env["CENTRALINO_NODE"] = node = f"bad{uuid.uuid4().hex[:8]}"
    name = f"telephony.{node}" if queue == "telephony" else "celery"

    code, output = run_to_exit(celery_worker(name, "-n", f"{node}@%h"), env)

    assert code != 0, output
    line = assert_one_clear_line(output, f"Redis at redis://:***@127.0.0.1:{port}/0", "refused")
    assert "This worker exits" in line
    assert "s3cret" not in output
    assert sip_options(int(env["CENTRALINO_SIP_PORT"]), timeout=0.3) is None


def test_beat_with_a_wrong_redis_url_exits_with_one_line(tmp_path: Path) -> None:
    port = free_udp_port()
    env = {**base_env(tmp_path), "REDIS_URL": f"redis://:s3cret@127.0.0.1:{port}/0"}
    beat = [sys.executable, "-m", "celery", "-A", "operator_panel", "beat"]
    beat += ["--schedule", str(tmp_path / "celerybeat-schedule")]

    code, output = run_to_exit(beat, env)

    assert code != 0, output
    line = assert_one_clear_line(output, f"Redis at redis://:***@127.0.0.1:{port}/0", "refused")
    assert "celery beat exits" in line
    assert "s3cret" not in output


def test_the_web_with_a_wrong_redis_url_answers_503_and_says_so_once(
    postgres_url: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    """Daphne as the Procfile starts it: there is no start-up hook to refuse in, so the web
    serves what needs no Redis, and /healthz (what a monitor or systemd watches) says no."""
    port, http_port = free_udp_port(), free_udp_port()
    env = {**base_env(tmp_path), "DATABASE_URL": postgres_url}
    env.update(REDIS_URL=f"redis://127.0.0.1:{port}/0", CENTRALINO_ENGINE="off")
    manage(env, "migrate", "--noinput")
    web = spawn(
        [*DAPHNE, "--bind", HOST, "--port", str(http_port), "operator_panel.asgi:application"],
        env,
        tmp_path / "web.log",
    )
    web.wait_until(lambda: http_get(http_port, "/login/")[0] == 200, "web")

    for _ in range(3):
        status, body = http_get(http_port, "/healthz")
        assert status == 503 and b'"redis": "unreachable"' in body, body

    assert_one_clear_line(web.output(), f"Redis at redis://127.0.0.1:{port}/0", "refused")


# --- Services going away under a running telephony worker --------------------------------


@dataclass
class RedisServer:
    """A redis-server of the test's own, on a free port, that the test stops and starts."""

    port: int
    log: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", HOST, "--save", ""]
                + ["--appendonly", "no"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(self.answers, 10, what=f"redis-server on {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process = None

    def answers(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


@dataclass
class Office:
    """A telephony worker and a web on PostgreSQL and a Redis of their own; 201 and 202."""

    database_url: str
    redis: RedisServer
    env: dict[str, str]
    worker: Child
    web: Child
    http_port: int
    company_id: int
    secrets: dict[str, str]

    @property
    def node(self) -> str:
        return self.env["CENTRALINO_NODE"]

    @property
    def registrar(self) -> str:
        return f"{HOST}:{self.env['CENTRALINO_SIP_PORT']}"

    def query(self, sql: str, *params: object) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=3) as conn:
            return conn.execute(sql, params).fetchall()

    def pending_seconds(self) -> float:
        """Seconds of voicemail recorded and not yet kept (8 kHz 16-bit WAV files)."""
        pending = Path(self.env["CENTRALINO_VAR"]) / "voicemail" / "pending"
        return sum(max(0, p.stat().st_size - 44) for p in pending.rglob("*.wav")) / 16000

    def healthz(self) -> int:
        return http_get(self.http_port, "/healthz")[0]

    def snapshot(self) -> dict:
        """What the consoles of the company see, asked of the node as the web asks it."""
        from celery import Celery

        app = Celery("test-client", broker=self.redis.url, backend=self.redis.url)
        try:
            result = app.send_task(
                "pbx.console_snapshot",
                args=[self.company_id],
                queue=f"telephony.{self.node}",
                expires=10,
            )
            return result.get(timeout=10)
        finally:
            app.close()


# Hunt group 600, Circular over 203 (no phone: skipped) and 202: its rotation is read from the
# database at each call.
HUNT_GROUP = """
from pbx.models import Extension, HuntGroup, HuntMember
e203 = Extension.objects.get(number="203")
group = HuntGroup.objects.create(
    company=e203.company, number="600", name="Sales", algorithm="circular"
)
for position, number in enumerate(("203", "202")):
    HuntMember.objects.create(
        group=group, extension=Extension.objects.get(number=number), position=position
    )
"""
OPERATOR_PASSWORD = f"operator-{uuid.uuid4().hex[:12]}"
OPERATOR = f"""
from django.contrib.auth.models import User
from pbx.models import Company, Membership, Role
user = User.objects.create_user("operator", password={OPERATOR_PASSWORD!r})
Membership.objects.create(
    user=user, company=Company.objects.get(), role=Role.OPERATOR, must_change_password=False
)
"""


@pytest.fixture(scope="module")
def office(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    if baresip_binary() is None:
        skip_loudly("baresip (baresip-core) is not installed: no call while services go away")
    if sipp_binary() is None:
        skip_loudly("SIPp (sip-tester) is not installed: no call attempt while services go away")
    if shutil.which("redis-server") is None:
        skip_loudly("redis-server is not installed: Redis cannot be stopped under a worker")
    tmp_path = tmp_path_factory.mktemp("office")
    redis = RedisServer(free_port_range(1), tmp_path / "redis.log")
    redis.start()
    env = base_env(tmp_path)
    node = f"res{uuid.uuid4().hex[:8]}"
    http_port = free_port_range(1)
    env.update(DATABASE_URL=postgres_url, REDIS_URL=redis.url, CENTRALINO_NODE=node)
    manage(env, "migrate", "--noinput")
    numbers = ("201", "202", "203")  # 203 has no phone: its mailbox answers
    secrets = {number: f"resilience-{number}-{uuid.uuid4().hex[:8]}" for number in numbers}
    for number, secret in secrets.items():
        manage(env, "extension", "add", number, "--name", f"Phone {number}", "--secret", secret)
    manage(env, "shell", "-c", HUNT_GROUP)
    manage(env, "shell", "-c", OPERATOR)
    command = celery_worker(f"telephony.{node}", "-n", f"{node}@%h", "--loglevel", "INFO")
    worker = start_child(command, env, tmp_path / "worker.log")
    web_env = {**env, "CENTRALINO_ENGINE": "off"}
    web = start_child(
        [*DAPHNE, "--bind", HOST, "--port", str(http_port), "operator_panel.asgi:application"],
        web_env,
        tmp_path / "web.log",
    )
    try:
        worker.wait_until(lambda: sip_options(int(env["CENTRALINO_SIP_PORT"])) is not None, "SIP")
        worker.wait_until(lambda: "ready." in worker.output(), "telephony worker")
        web.wait_until(lambda: http_get(http_port, "/healthz")[0] == 200, "web")
        office = Office(postgres_url, redis, env, worker, web, http_port, 0, secrets)
        [(office.company_id,)] = office.query(
            "SELECT company_id FROM pbx_extension WHERE number = '201'"
        )
        yield office
    finally:
        web.kill()
        if worker.process.poll() is None:
            worker.stop(signal.SIGTERM, timeout=20)
        redis.stop()


@dataclass
class Call:
    caller: Baresip
    callee: Baresip

    def assert_audio_flows(self) -> None:
        """Both phones hear each other from now on (not from what they heard before)."""
        callee_heard, caller_heard = (
            self.callee.received_audio().size,
            self.caller.received_audio().size,
        )
        self.callee.wait_hearing(440, since=callee_heard)
        self.caller.wait_hearing(1000, since=caller_heard)


def start_call(office: Office, make_baresip: Callable[..., Baresip]) -> Call:
    """201 calls 202, both hear each other (with Redis up, whatever an earlier test left)."""
    if not office.redis.answers():
        office.redis.start()
    registrar = office.registrar
    caller = make_baresip("201", password=office.secrets["201"], registrar=registrar, tone_hz=440)
    callee = make_baresip("202", password=office.secrets["202"], registrar=registrar, tone_hz=1000)
    caller.wait_registered()
    callee.wait_registered()
    caller.dial("202")
    callee.wait_established()
    caller.wait_established()
    call = Call(caller, callee)
    call.assert_audio_flows()
    return call


def lines_after(child: Child, mark: int, pattern: str) -> list[str]:
    """The lines of `child`'s log after character `mark` that match `pattern`."""
    return [line for line in child.output()[mark:].splitlines() if re.search(pattern, line)]


def wait_logged(child: Child, mark: int, pattern: str, timeout: float, *, what: str) -> list[str]:
    """Wait until `child` logged, after character `mark`, a line matching `pattern`; the lines."""
    return wait_for(
        lambda: lines_after(child, mark, pattern),
        timeout,
        what=what,
        seen=lambda: child.output()[mark:],
    )


def assert_no_traceback_or_warning(child: Child, mark: int) -> None:
    """What `child` logged after `mark` is lines: no traceback, no Python warning's block."""
    logged = child.output()[mark:]
    assert "Traceback" not in logged and "py.warnings" not in logged, logged


def test_redis_going_away_leaves_the_call_alone_and_the_node_answers_once_it_is_back(
    office: Office, make_baresip: Callable[..., Baresip]
) -> None:
    import asyncio

    from channels_redis.core import RedisChannelLayer

    from pbx.events import console_group

    call = start_call(office, make_baresip)
    worker_mark, web_mark = len(office.worker.output()), len(office.web.output())

    went = time.monotonic()
    office.redis.stop()
    wait_logged(
        office.worker,
        worker_mark,
        "Connection to broker lost",
        15,
        what="Celery's line about its broker in the worker's log",
    )
    # A new call still gets its answer (404: no such number); the console's messages about
    # it cannot leave: the engine says so once.
    attempt = run_sipp(
        "uac_expect_404",
        office.registrar,
        keys={"service": "219", "user": "201"},
        auth=("201", office.secrets["201"]),
    )
    assert attempt.ok, attempt.explain()
    [line] = wait_logged(
        office.worker,
        worker_mark,
        "pbx.events: Redis went away",
        15,
        what="the engine's line about Redis",
    )
    assert f"127.0.0.1:{office.redis.port}" in line
    call.assert_audio_flows()
    assert office.healthz() == 503
    down = time.monotonic() - went

    office.redis.start()
    back = time.monotonic()
    wait_for(lambda: office.healthz() == 200, 15, what="/healthz 200 with Redis back")
    snapshot = office.snapshot()
    print(f"\nRedis away {down:.2f} s; a snapshot answered {time.monotonic() - back:.2f} s after")
    assert len(snapshot["calls"]) == 1, snapshot
    call.assert_audio_flows()

    async def hang_up_watching_the_console() -> list[dict]:
        layer = RedisChannelLayer(hosts=[office.redis.url])
        channel = await layer.new_channel()
        await layer.group_add(console_group(office.company_id), channel)
        await asyncio.to_thread(call.caller.hangup)
        messages: list[dict] = []
        while not any(m["type"] == "call.ended" for m in messages):
            messages.append((await asyncio.wait_for(layer.receive(channel), 10))["message"])
        await layer.flush()
        return messages

    messages = asyncio.run(hang_up_watching_the_console())
    call.callee.wait_closed()
    assert messages[-1]["seq"] > snapshot["seq"]
    office.worker.wait_until(
        lambda: bool(lines_after(office.worker, worker_mark, "pbx.events: Redis answers again")),
        "the engine's line about Redis being back",
    )
    assert_no_traceback_or_warning(office.worker, worker_mark)
    assert_no_traceback_or_warning(office.web, web_mark)
    assert len(lines_after(office.web, web_mark, "Redis went away")) == 1


class Console:
    """An operator's console socket as the page keeps it: a new one whenever it closes (the page
    tries again every 2 s), every message it got, and how many sockets it took."""

    def __init__(self, office: Office) -> None:
        self.office = office
        self.session = login(office.http_port, "operator", OPERATOR_PASSWORD)
        self.messages: list[dict] = []
        self.sockets = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Console:
        self.thread.start()
        wait_for(lambda: self.snapshots(), 15, what="the console's first snapshot")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(10)

    def snapshots(self) -> list[dict]:
        return [m for m in list(self.messages) if m.get("type") == "snapshot"]

    def shows(self, number: str, state: str, since: int) -> bool:
        """Whether a message from the `since`-th on, or a snapshot, shows `number` in `state`."""
        for m in list(self.messages)[since:]:
            if m.get("type") == "extension.state" and (m["number"], m["state"]) == (number, state):
                return True
            nodes = m.get("nodes", {}) if m.get("type") == "snapshot" else {}
            if any(node["extensions"].get(number) == state for node in nodes.values()):
                return True
        return False

    async def _run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        port = self.office.http_port
        while not self.stopping.is_set():
            try:
                async with connect(
                    f"ws://{HOST}:{port}/ws/console/",
                    origin=f"http://{HOST}:{port}",  # type: ignore[arg-type]
                    additional_headers={"Cookie": f"sessionid={self.session}"},
                    open_timeout=5,
                ) as socket:
                    self.sockets += 1
                    while not self.stopping.is_set():
                        try:
                            raw = await asyncio.wait_for(socket.recv(), 0.5)
                        except TimeoutError:
                            continue
                        self.messages.append(json.loads(raw))
            except (ConnectionClosed, InvalidStatus, OSError, TimeoutError):
                pass
            await asyncio.sleep(2)  # as the page does


def test_a_console_open_while_redis_restarts_sees_the_calls_made_after(
    office: Office, make_baresip: Callable[..., Baresip]
) -> None:
    if not office.redis.answers():
        office.redis.start()
    web_mark = len(office.web.output())
    with Console(office) as console:
        office.redis.stop()
        time.sleep(3)  # the web notices: its socket's reads fail
        office.redis.start()
        wait_for(lambda: office.healthz() == 200, 15, what="/healthz 200 with Redis back")
        seen = len(console.messages)
        call = start_call(office, make_baresip)
        wait_for(
            lambda: console.shows("202", "talking", since=seen),
            15,
            what="the console showing the call made after Redis came back",
            seen=lambda: (
                console.sockets,
                console.messages[seen:],
                office.web.output()[web_mark:][-3000:],
            ),
        )
        call.caller.hangup()
        call.callee.wait_closed()
    print(f"\nthe console used {console.sockets} sockets")
    assert console.sockets >= 2  # the web closed the deaf one; the page opened another
    assert_no_traceback_or_warning(office.web, web_mark)
    assert len(lines_after(office.web, web_mark, "Redis went away")) == 1
    assert lines_after(office.web, web_mark, "Redis answers again")


def test_postgresql_restarting_leaves_the_call_alone_and_loses_no_record(
    office: Office, make_baresip: Callable[..., Baresip]
) -> None:
    """The shared server cannot restart: the test database's backends are terminated, and
    new connections refused (ALLOW_CONNECTIONS false) until the worker has shown that it
    noticed and that the record's end waits; then connections are allowed again."""
    import psycopg

    call = start_call(office, make_baresip)
    database = office.database_url.rsplit("/", 1)[1]
    [(attempts,)] = office.query("SELECT count(*) FROM stats_callrecord WHERE callee = '219'")
    mark = len(office.worker.output())
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        try:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            [(terminated,)] = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchall()
            went = time.monotonic()
            [line] = wait_logged(
                office.worker,
                mark,
                "pbx.heartbeat: the database went away",
                15,
                what="the worker's line about the database",
            )
            assert f'database "{database}"' in line
            call.assert_audio_flows()
            # A new call is still handled, with the configuration the engine read last.
            attempt = run_sipp(
                "uac_expect_404",
                office.registrar,
                keys={"service": "219", "user": "201"},
                auth=("201", office.secrets["201"]),
            )
            assert attempt.ok, attempt.explain()
            assert office.healthz() == 503
            hung_up = len(office.worker.output())
            call.caller.hangup()  # the record's end waits for the database
            call.callee.wait_closed()
            call.caller.wait_closed()
            wait_logged(
                office.worker,
                hung_up,
                "pbx.writer: the database went away",
                15,
                what="the record's end waiting for the database",
            )
            # A hunt group still rings, its rotation from what the node last knew.
            call.caller.dial("600")
            call.callee.wait_established()
            call.caller.wait_established()
            call.assert_audio_flows()
            call.caller.hangup()
            call.callee.wait_closed()
            call.caller.wait_closed()
            assert lines_after(office.worker, mark, "pbx.hunt_memory: the database went away")
            # The mailbox of 203 (no phone) answers and records; the message waits on disk.
            call.caller.dial("203")
            call.caller.wait_established()
            call.caller.wait_hearing(1000, seconds=0.3, timeout=20)  # the beep: speak now
            wait_for(
                lambda: office.pending_seconds() >= 2.0,
                10,
                what="2 s recorded by the mailbox",
                seen=office.pending_seconds,
            )
            call.caller.hangup()
            call.caller.wait_closed()
            wait_logged(
                office.worker,
                mark,
                "voicemail for 203 not stored yet",
                10,
                what="the message waiting for the database",
            )
            # Longer than the writers once retried (about 19 s) before giving a record up.
            time.sleep(max(0.0, 22.0 - (time.monotonic() - went)))
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            restored_at = datetime.now(UTC)
    back = time.monotonic()
    print(f"\n{terminated} backends terminated; connections refused for {back - went:.2f} s")

    def last_record(callee: str) -> tuple | None:
        rows = office.query(
            "SELECT ended_at, disposition FROM stats_callrecord WHERE callee = %s"
            " ORDER BY id DESC LIMIT 1",
            callee,
        )
        return rows[0] if rows and rows[0][0] is not None else None

    ended_at, disposition = wait_for(
        lambda: last_record("202"), 30, what="the call's record completed"
    )
    print(f"record completed {time.monotonic() - back:.2f} s after the database came back")
    assert disposition == "answered"
    assert ended_at < restored_at  # when the call ended, not when the write got through
    assert wait_for(lambda: last_record("600"), 30, what="the hunt group call's record")
    [(seconds, caller)] = wait_for(
        lambda: office.query(
            "SELECT m.duration, m.caller FROM pbx_voicemessage m"
            " JOIN pbx_mailbox b ON b.id = m.mailbox_id"
            " JOIN pbx_extension e ON e.id = b.extension_id WHERE e.number = '203'"
        ),
        30,
        what="the message left during the outage, kept",
    )
    assert caller == "201" and seconds >= 2.0
    assert office.pending_seconds() == 0
    wait_for(  # the attempt made while the database was away has its record too
        lambda: (
            office.query(
                "SELECT count(*) FROM stats_callrecord WHERE callee = '219' AND ended_at IS NOT NULL"
            )
            == [(attempts + 1,)]
        ),
        15,
        what="the attempt's record",
    )
    wait_for(
        lambda: (
            office.query("SELECT count(*) FROM pbx_opendialog WHERE node = %s", office.node)
            == [(0,)]
        ),
        15,
        what="the call's dialogs out of the journal",
    )
    wait_for(lambda: office.healthz() == 200, 15, what="/healthz 200 (the heartbeat resumes)")
    office.worker.wait_until(
        lambda: bool(lines_after(office.worker, mark, "pbx.heartbeat: the database answers")),
        "the worker's line about the database being back",
    )
    office.worker.wait_until(
        lambda: (
            office.query(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = %s",
                f"centralino node lock {office.node}",
            )
            == [(1,)]
        ),
        "the worker to hold its node's lock again",
    )
    assert lines_after(office.worker, mark, f"node {office.node}: its lock is held again")
    assert_no_traceback_or_warning(office.worker, mark)
