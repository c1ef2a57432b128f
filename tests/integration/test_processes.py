"""The processes as users start them: `manage.py serve`, and the telephony Celery worker.

Each test starts the real command in a subprocess on free loopback ports and talks to it from
outside: HTTP, a raw SIP OPTIONS datagram, Celery through Redis, and a signal to stop it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.peers.baresip import Baresip
from tests.integration.peers.ports import free_port_range, free_udp_port
from tests.integration.processes import (
    HOST,
    ROOT,
    SERVE,
    Child,
    base_env,
    celery_worker,
    http_get,
    manage,
    sip_options,
    skip_loudly,
    start_child,
)

pytestmark = pytest.mark.integration

# --- The embedded default: manage.py serve -------------------------------------------------


def test_serve_answers_http_and_sip_and_stops_cleanly_on_sigint(
    tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    env = base_env(tmp_path)
    env["CENTRALINO_HTTP_PORT"] = str(free_udp_port())
    sip_port, http_port = int(env["CENTRALINO_SIP_PORT"]), int(env["CENTRALINO_HTTP_PORT"])
    manage(env, "migrate", "--noinput")
    serve = spawn(SERVE, env, tmp_path / "serve.log")
    try:
        serve.wait_until(lambda: http_get(http_port, "/")[0] == 200, "serve (HTTP)")
        serve.wait_until(lambda: sip_options(sip_port) is not None, "serve (SIP)")

        assert (sip_options(sip_port) or "").startswith("SIP/2.0 ")
        # SIP answers as soon as it is bound; the engine is reported running once it has
        # started and is attached, a moment later.
        serve.wait_until(lambda: http_get(http_port, "/healthz")[0] == 200, "serve (health)")
        status, body = http_get(http_port, "/healthz")
        assert status == 200, body
        assert b'"database": "ok"' in body and b'"running": true' in body
        assert http_get(http_port, "/static/admin/css/base.css")[0] == 200
        assert f"Web http://{HOST}:{http_port}" in serve.output()
        assert f"SIP udp+tcp {HOST}:{sip_port}" in serve.output()
    finally:
        code = serve.stop(signal.SIGINT, timeout=10)

    assert code == 0, serve.output()
    assert sip_options(sip_port, timeout=0.3) is None


def test_serve_without_the_engine_serves_the_web_only(
    tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    env = base_env(tmp_path)
    env.update(CENTRALINO_HTTP_PORT=str(free_udp_port()), CENTRALINO_ENGINE="off")
    http_port = int(env["CENTRALINO_HTTP_PORT"])
    manage(env, "migrate", "--noinput")
    serve = spawn(SERVE, env, tmp_path / "serve.log")
    try:
        serve.wait_until(lambda: http_get(http_port, "/")[0] == 200, "serve (HTTP)")
        assert sip_options(int(env["CENTRALINO_SIP_PORT"]), timeout=0.3) is None
        assert "SIP off" in serve.output()
    finally:
        code = serve.stop(signal.SIGINT, timeout=10)
    assert code == 0, serve.output()


# --- The distributed mode: the telephony worker ---------------------------------------------


@dataclass
class TelephonyWorker:
    node: str
    sip_port: int
    env: dict[str, str]
    child: Child

    @property
    def queue(self) -> str:
        return f"telephony.{self.node}"

    def celery(self):
        """A Celery client on the worker's broker (the test process itself runs eager)."""
        from celery import Celery

        return Celery("test-client", broker=self.env["REDIS_URL"], backend=self.env["REDIS_URL"])


@pytest.fixture(scope="module")
def telephony_worker(
    postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TelephonyWorker]:
    """`celery -A operator_panel worker -Q telephony.<node> --pool solo`, ready for SIP."""
    tmp_path = tmp_path_factory.mktemp("telephony")
    node = f"test{uuid.uuid4().hex[:8]}"  # its own queue: parallel runs never share one
    env = base_env(tmp_path)
    env.update(DATABASE_URL=postgres_url, REDIS_URL=redis_url, CENTRALINO_NODE=node)
    manage(env, "migrate", "--noinput")
    command = celery_worker(
        f"telephony.{node}", "-n", f"{node}@%h", "--without-heartbeat", "--loglevel", "INFO"
    )
    child = start_child(command, env, tmp_path / "worker.log")
    worker = TelephonyWorker(node, int(env["CENTRALINO_SIP_PORT"]), env, child)
    try:
        child.wait_until(lambda: sip_options(worker.sip_port) is not None, "telephony worker (SIP)")
        yield worker
    finally:
        if child.process.poll() is None:
            child.stop(signal.SIGTERM, timeout=20)


def test_the_telephony_worker_answers_sip_options(telephony_worker: TelephonyWorker) -> None:
    assert (sip_options(telephony_worker.sip_port) or "").startswith("SIP/2.0 ")


def test_engine_status_runs_on_the_telephony_queue(telephony_worker: TelephonyWorker) -> None:
    app = telephony_worker.celery()

    result = app.send_task("pbx.engine_status", queue=telephony_worker.queue, expires=10)
    status = result.get(timeout=15)

    assert status["running"] is True
    assert status["node"] == telephony_worker.node
    assert status["sip_port"] == telephony_worker.sip_port


def test_a_second_worker_for_the_same_node_exits_and_touches_nothing(
    telephony_worker: TelephonyWorker, tmp_path: Path
) -> None:
    """Another port, maybe another machine: the node's lock in PostgreSQL says no."""
    env = {**telephony_worker.env, "CENTRALINO_SIP_PORT": str(free_udp_port())}
    second = subprocess.run(
        celery_worker(telephony_worker.queue, "-n", f"second-{telephony_worker.node}@%h"),
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    output = second.stdout + second.stderr
    assert second.returncode != 0, output
    assert b"already served by another telephony worker" in output
    assert b"Telephony engine of node" not in output  # no engine was built
    assert sip_options(int(env["CENTRALINO_SIP_PORT"])) is None  # it never listened
    assert sip_options(telephony_worker.sip_port) is not None  # the first serves on


def test_a_call_completes_through_the_telephony_worker(
    telephony_worker: TelephonyWorker, make_baresip: Callable[..., Baresip]
) -> None:
    from tests.integration.peers.audio import assert_tone
    from tests.integration.peers.baresip import baresip_binary

    if baresip_binary() is None:
        skip_loudly("baresip (baresip-core) is not installed: no call through the worker")
    env = telephony_worker.env
    manage(env, "extension", "add", "201", "--name", "Mario Rossi", "--secret", "worker-secret-201")
    manage(
        env, "extension", "add", "202", "--name", "Giulia Bianchi", "--secret", "worker-secret-202"
    )
    registrar = f"{HOST}:{telephony_worker.sip_port}"
    caller = make_baresip("201", password="worker-secret-201", registrar=registrar, tone_hz=440)
    callee = make_baresip("202", password="worker-secret-202", registrar=registrar, tone_hz=1000)
    caller.wait_registered()
    callee.wait_registered()
    caller.dial(f"sip:202@{registrar}")
    callee.wait_established()
    callee.wait_hearing(440)
    caller.wait_hearing(1000)
    caller.hangup()
    callee.wait_closed()
    assert_tone(callee.received_audio()[-12000:-4000], 440)
    assert_tone(caller.received_audio()[-12000:-4000], 1000)


def test_the_consoles_see_the_calls_of_the_telephony_worker(
    telephony_worker: TelephonyWorker,
) -> None:
    """The worker's engine publishes to the Redis channel layer, where the web's console
    sockets listen, and answers the snapshot a console takes when it joins."""
    import asyncio

    from channels_redis.core import RedisChannelLayer

    from pbx.events import SCHEMA_VERSION, console_group
    from tests.integration.peers.sipp import run_sipp

    env = telephony_worker.env
    manage(
        env, "extension", "add", "211", "--name", "Console Test", "--secret", "worker-secret-211"
    )
    company_id = int(
        subprocess.run(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c", _COMPANY_OF_211],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.strip()
    )

    async def watch() -> list[dict]:
        layer = RedisChannelLayer(hosts=[env["REDIS_URL"]])
        channel = await layer.new_channel()
        await layer.group_add(console_group(company_id), channel)
        result = await asyncio.to_thread(
            run_sipp,
            "uac_expect_404",
            f"{HOST}:{telephony_worker.sip_port}",
            keys={"service": "219", "user": "211"},
            auth=("211", "worker-secret-211"),
        )
        assert result.ok, result.explain()
        messages = []
        while not any(m["type"] == "call.ended" for m in messages):
            event = await asyncio.wait_for(layer.receive(channel), 15)
            messages.append(event["message"])
        await layer.flush()
        return messages

    messages = asyncio.run(watch())
    calls = [m for m in messages if m["type"] == "call.updated"]
    assert calls and calls[0]["call"]["dialled"] == "219"
    assert messages[-1]["disposition"] == "failed"
    assert [m["seq"] for m in messages] == sorted(m["seq"] for m in messages)

    app = telephony_worker.celery()
    snapshot = app.send_task(
        "pbx.console_snapshot", args=[company_id], queue=telephony_worker.queue, expires=10
    ).get(timeout=15)
    assert snapshot["v"] == SCHEMA_VERSION
    assert snapshot["calls"] == {}  # the call has ended
    assert snapshot["seq"] >= messages[-1]["seq"]


_COMPANY_OF_211 = (
    "from pbx.models import Extension; print(Extension.objects.get(number='211').company_id)"
)


def test_an_ordinary_worker_does_not_start_an_engine(
    postgres_url: str, redis_url: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    env = base_env(tmp_path)
    env.update(DATABASE_URL=postgres_url, REDIS_URL=redis_url)
    queue = f"jobs{uuid.uuid4().hex[:8]}"
    command = celery_worker(queue, "-n", f"{queue}@%h", "--without-heartbeat", "--loglevel", "INFO")
    worker = spawn(command, env, tmp_path / "worker.log")
    try:
        worker.wait_until(lambda: "ready." in worker.output(), "ordinary worker")
        assert sip_options(int(env["CENTRALINO_SIP_PORT"]), timeout=0.5) is None
    finally:
        code = worker.stop(signal.SIGTERM, timeout=20)
    assert code == 0, worker.output()


def test_the_telephony_worker_stops_the_engine_on_sigterm(
    telephony_worker: TelephonyWorker,
) -> None:
    # Runs last in this module: it stops the shared worker.
    code = telephony_worker.child.stop(signal.SIGTERM, timeout=20)

    assert code == 0, telephony_worker.child.output()
    assert sip_options(telephony_worker.sip_port, timeout=0.3) is None


def test_the_procfile_starts_every_process_and_stops_on_sigterm(
    postgres_url: str, redis_url: str, tmp_path: Path, spawn: Callable[..., Child]
) -> None:
    """`honcho start`: the web on Daphne without an engine, the telephony worker, jobs, beat."""
    honcho = Path(sys.executable).with_name("honcho")
    if not honcho.exists():
        skip_loudly("honcho is not installed (requirements-dev.txt): Procfile not started")
    env = base_env(tmp_path)
    node = f"proc{uuid.uuid4().hex[:8]}"
    http_port = free_port_range(1)
    env.update(
        DATABASE_URL=postgres_url,
        REDIS_URL=redis_url,
        CENTRALINO_NODE=node,
        CENTRALINO_HTTP_PORT=str(http_port),
    )
    # As the README runs it: the Procfile names the venv's programs itself, nothing on PATH.
    env["PATH"] = ":".join(
        part
        for part in env.get("PATH", "").split(":")
        if not part.startswith(str(Path(sys.executable).parent))
    )
    manage(env, "migrate", "--noinput")
    honcho_start = spawn([str(honcho), "start"], env, tmp_path / "honcho.log", new_session=True)
    try:
        sip_port = int(env["CENTRALINO_SIP_PORT"])
        honcho_start.wait_until(lambda: sip_options(sip_port) is not None, "telephony (SIP)")
        honcho_start.wait_until(lambda: http_get(http_port, "/healthz")[0] == 200, "web")
        started = honcho_start.output()
        for name in ("web", "telephony", "worker", "beat"):
            assert f"{name}.1 started" in started, started
    finally:
        returncode = honcho_start.stop(signal.SIGTERM, timeout=30)
    assert returncode is not None, f"honcho did not stop:\n{honcho_start.output()}"
    assert sip_options(int(env["CENTRALINO_SIP_PORT"]), timeout=0.5) is None


def test_a_telephony_worker_whose_engine_cannot_start_exits(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Its supervisor must see the failure, not a worker serving with no engine."""
    import socket

    env = base_env(tmp_path)
    env.update(DATABASE_URL=postgres_url, REDIS_URL=redis_url, CENTRALINO_NODE="taken")
    manage(env, "migrate", "--noinput")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((HOST, int(env["CENTRALINO_SIP_PORT"])))
        process = subprocess.run(
            celery_worker("telephony.taken"),
            cwd=ROOT,
            env=env,
            capture_output=True,
            timeout=60,
        )
    assert process.returncode != 0
    assert b"did not start" in process.stderr + process.stdout
