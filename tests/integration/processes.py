"""Running the project's processes in tests as users start them: `manage.py serve`, the
telephony Celery worker, and the services they need (PostgreSQL, Redis), on free loopback
ports, with their output in a log file and a way to poll, stop or kill them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.peers.ports import free_port_range, free_udp_port

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_TEST_URL = "redis://127.0.0.1:6379/15"
START_TIMEOUT = 45.0


def skip_loudly(reason: str) -> None:
    print(f"\n!!! SKIPPED: {reason}", file=sys.stderr)
    pytest.skip(reason)


def sip_options(port: int, timeout: float = 1.0) -> str | None:
    """Send one OPTIONS over UDP to 127.0.0.1:port; return the status line of the reply.

    None when nothing answers: at once when the port is closed (the socket is connected, so
    the kernel's "port unreachable" comes back as an error), else after `timeout` seconds.
    """
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        sock.connect((HOST, port))
        local_port = sock.getsockname()[1]
        tag, call_id, branch = uuid.uuid4().hex[:8], uuid.uuid4().hex, uuid.uuid4().hex[:12]
        request = (
            f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local_port};branch=z9hG4bK{branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{HOST}>;tag={tag}\r\n"
            f"To: <sip:{HOST}:{port}>\r\n"
            f"Call-ID: {call_id}@{HOST}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            f"Contact: <sip:probe@{HOST}:{local_port}>\r\n"
            "Accept: application/sdp\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        sock.settimeout(timeout)
        try:
            sock.send(request.encode())
            data = sock.recv(65535)
        except (TimeoutError, ConnectionRefusedError):
            return None
    return data.decode("utf-8", "replace").split("\r\n", 1)[0]


def http_get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def login(port: int, username: str, password: str) -> str:
    """Log `username` in through /login/ as a browser does (CSRF token and all); the session id."""
    import http.cookiejar
    import re
    import urllib.parse

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    url = f"http://{HOST}:{port}/login/"
    page = opener.open(url, timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    form = {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
    opener.open(url, urllib.parse.urlencode(form).encode(), timeout=30).read()
    session = next((c.value for c in jar if c.name == "sessionid"), None)
    assert session, f"{username} could not log in"
    return session


@dataclass
class Child:
    """A process a test started, its output going to a log file."""

    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def wait_until(self, check: Callable[[], bool], what: str) -> None:
        """Poll `check` until it is true; fail with the log if the process dies or times out."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{what}: exited with {self.process.returncode}:\n{self.output()}")
            try:
                if check():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        pytest.fail(f"{what}: not ready after {START_TIMEOUT} s:\n{self.output()}")

    def stop(self, sig: int, timeout: float) -> int | None:
        """Send `sig` and wait; kill and return None if it did not exit in time."""
        return stop(self.process, sig, timeout)

    def kill(self) -> None:
        """Kill it (and its process group, when it leads one) if it still runs."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(self.process.pid) == self.process.pid:
                    os.killpg(self.process.pid, signal.SIGKILL)
                else:
                    self.process.kill()
            self.process.wait()


def start_child(
    command: list[str], env: dict[str, str], log: Path, *, new_session: bool = False
) -> Child:
    """Start `command` in the repository with its output to `log`."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )
    return Child(process, log)


@pytest.fixture
def spawn() -> Iterator[Callable[..., Child]]:
    """start_child for one test: whatever still runs at its end is killed."""
    children: list[Child] = []

    def start(command: list[str], env: dict[str, str], log: Path, **options: bool) -> Child:
        child = start_child(command, env, log, **options)
        children.append(child)
        return child

    try:
        yield start
    finally:
        for child in children:
            child.kill()


SERVE = [sys.executable, "manage.py", "serve"]


def celery_worker(queue: str, *options: str) -> list[str]:
    """The command line of a solo-pool Celery worker consuming `queue`."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "operator_panel",
        "worker",
        "-Q",
        queue,
        "--pool",
        "solo",
        "--without-gossip",
        "--without-mingle",
        *options,
    ]


def base_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a child process: no inherited switches, its own var dir and ports."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CENTRALINO_") and k not in {"DATABASE_URL", "REDIS_URL"}
    }
    rtp = free_port_range(20)
    env.update(
        DJANGO_SETTINGS_MODULE="operator_panel.settings",
        PYTHONUNBUFFERED="1",
        CENTRALINO_VAR=str(tmp_path),
        CENTRALINO_BIND=HOST,
        CENTRALINO_SIP_PORT=str(free_udp_port()),
        CENTRALINO_RTP_PORTS=f"{rtp}-{rtp + 19}",
    )
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def stop(process: subprocess.Popen, sig: int, timeout: float) -> int | None:
    """Send `sig` and wait; kill and return None if it did not exit in time."""
    process.send_signal(sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database, dropped afterwards."""
    try:
        import psycopg

        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as error:
        skip_loudly(f"PostgreSQL is unreachable at {POSTGRES_ADMIN_URL}: {error}")
    name = f"centralino_test_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=3).ping()
    except Exception as error:
        skip_loudly(f"Redis is unreachable at {REDIS_TEST_URL}: {error}")
    return REDIS_TEST_URL
