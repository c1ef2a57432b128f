"""The console end to end: the project's own processes, real phones, a real browser.

`console_server` starts Centralino as a user does, in both modes: the embedded default
(`manage.py serve`, engine in the web process, SQLite) and the distributed mode (`serve` without
an engine plus the telephony Celery worker, PostgreSQL, the Redis channel layer). The demo is
seeded; the operator alice (extension 200) and a second operator, olga (205), log in through
the login page. Phones are baresip softphones registered with the demo's secrets.
"""

from __future__ import annotations

import json
import shutil
import signal
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.peers.baresip import Baresip, baresip_binary
from tests.integration.peers.ports import free_tcp_port
from tests.integration.processes import (  # noqa: F401 - fixtures: postgres_url, redis_url
    HOST,
    Child,
    base_env,
    celery_worker,
    http_get,
    manage,
    postgres_url,
    redis_url,
    sip_options,
    skip_loudly,
    start_child,
)

CHROMIUM = "/usr/bin/chromium"
SECOND_OPERATOR = ("olga", "205")
HOLD_ALERT_SECONDS = 3  # short, so that a test sees the held call's timer turn red


@dataclass
class ConsoleServer:
    mode: str
    url: str
    sip_port: int
    var: Path
    env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)

    @property
    def registrar(self) -> str:
        return f"{HOST}:{self.sip_port}"

    def credentials(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.var / "demo_credentials.json").read_text())
        return data

    def password(self, username: str) -> str:
        if username == SECOND_OPERATOR[0]:
            return "olga-" + self.credentials()["install_key"]
        return str(self.credentials()["passwords"][username])

    def secret(self, number: str) -> str:
        return str(self.credentials()["secrets"][number])

    def output(self) -> str:
        return "\n".join(f"--- {c.log.name}\n{c.output()[-4000:]}" for c in self.children)


def _add_second_operator(env: dict[str, str]) -> None:
    script = (
        "from django.contrib.auth.models import User\n"
        "from pbx.demo import load_credentials\n"
        "from pbx.models import Company, Extension, Membership, Role\n"
        "company = Company.objects.get()\n"
        f"user = User.objects.create_user('{SECOND_OPERATOR[0]}', password="
        "'olga-' + load_credentials()['install_key'])\n"
        f"ext = Extension.objects.get(company=company, number='{SECOND_OPERATOR[1]}')\n"
        "Membership.objects.create(user=user, company=company, role=Role.OPERATOR, extension=ext)\n"
        # The console's tests sign in many times: the demo's first-login password change is
        # the login tests' business (test_manage.py), not theirs.
        "Membership.objects.update(must_change_password=False)\n"
    )
    manage(env, "shell", "-c", script)


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def console_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleServer]:
    if baresip_binary() is None or not Path(CHROMIUM).exists():
        skip_loudly("baresip or Chromium is missing: run scripts/install_test_peers.sh")
    mode = request.param
    var = tmp_path_factory.mktemp(f"console-{mode}")
    env = base_env(var)
    http_port = free_tcp_port()
    env.update(
        CENTRALINO_HTTP_PORT=str(http_port),
        CENTRALINO_HOLD_ALERT_SECONDS=str(HOLD_ALERT_SECONDS),
        CENTRALINO_MEDIA_TIMEOUT="0",
    )
    if mode == "distributed":
        env.update(
            DATABASE_URL=request.getfixturevalue("postgres_url"),
            REDIS_URL=request.getfixturevalue("redis_url"),
            CENTRALINO_NODE=f"e2e{uuid.uuid4().hex[:8]}",
        )
    manage(env, "migrate", "--noinput")
    manage(env, "seed_demo")
    _add_second_operator(env)
    server = ConsoleServer(
        mode, f"http://{HOST}:{http_port}", int(env["CENTRALINO_SIP_PORT"]), var, env
    )
    try:
        if mode == "distributed":
            node = env["CENTRALINO_NODE"]
            worker = start_child(
                celery_worker(f"telephony.{node}", "-n", f"{node}@%h", "--without-heartbeat"),
                env,
                var / "worker.log",
            )
            server.children.append(worker)
            worker.wait_until(lambda: sip_options(server.sip_port) is not None, "telephony worker")
        serve = start_child([*_serve()], env, var / "serve.log")
        server.children.append(serve)
        serve.wait_until(lambda: http_get(http_port, "/login/")[0] == 200, "serve (HTTP)")
        if mode == "embedded":
            serve.wait_until(lambda: sip_options(server.sip_port) is not None, "serve (SIP)")
        yield server
    finally:
        for child in reversed(server.children):
            if child.process.poll() is None:
                child.stop(signal.SIGTERM, timeout=20)


def _serve() -> list[str]:
    import sys

    return [sys.executable, "manage.py", "serve"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_console(console_server: ConsoleServer, browser: Any) -> Iterator[Callable[..., Any]]:
    """Log a user in through the login page; the console page they land on."""
    contexts: list[Any] = []

    def open_as(username: str = "alice", locale: str = "en-US") -> Any:
        context = browser.new_context(viewport={"width": 1400, "height": 860}, locale=locale)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{console_server.url}/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(console_server.password(username))
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/console/")
        page.locator("#status-connection.ok").wait_for()  # the snapshot came
        return page

    try:
        yield open_as
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def phone(console_server: ConsoleServer) -> Iterator[Callable[..., Baresip]]:
    """A demo extension's baresip phone, registered; callers ring, the operator answers alone."""
    phones: list[Baresip] = []

    def make(number: str, tone_hz: float, *, answermode: str = "manual") -> Baresip:
        softphone = Baresip(
            number,
            password=console_server.secret(number),
            registrar=console_server.registrar,
            answermode=answermode,
            tone_hz=tone_hz,
            name=f"{number}-{uuid.uuid4().hex[:4]}",
        )
        phones.append(softphone)
        softphone.start()
        softphone.wait_registered()
        return softphone

    try:
        yield make
    finally:
        for softphone in phones:
            softphone.close()
            shutil.rmtree(softphone.home, ignore_errors=True)
