"""The end-user portal in a browser (issue 8, SPEC F2, F4), in the embedded default and the
distributed mode (tests/e2e/conftest.py).

The demo end user bob (extension 201) logs in through the login page and finds a voice message
left for him: the <audio> element loads it (its duration is the recording's), he marks it
heard and deletes it (row and file). Screenshots of every page are taken at a desktop's and a
phone's width (390 px), in Italian.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ConsoleServer
from tests.integration.processes import ROOT

pytestmark = pytest.mark.e2e

CALLER, CALLER_NAME, SECONDS = "0612345678", "Studio Bianchi", 2.0

# Run by `manage.py shell` in the server's environment: the file is written first, in the
# server's voicemail folder, then the row, as the engine does.
LEAVE_MESSAGE = """
import json
import numpy as np
from pbx.media.wav import encode_wav_pcm
from pbx.models import Mailbox, VoiceMessage, voicemail_dir
t = np.arange(int(8000 * {seconds})) / 8000
name = VoiceMessage.new_file_name()
voicemail_dir().mkdir(parents=True, exist_ok=True)
(voicemail_dir() / name).write_bytes(
    encode_wav_pcm((8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), 8000)
)
message = VoiceMessage.objects.create(
    mailbox=Mailbox.objects.get(extension__number="201"),
    caller="{caller}", caller_name="{caller_name}", duration={seconds}, file_name=name,
)
print(json.dumps({{"id": message.pk, "file": str(voicemail_dir() / name)}}))
"""

# Calls for the screenshots' call log: one answered, one that ended in the voicemail above.
SOME_CALLS = """
from datetime import timedelta
from django.utils import timezone
from pbx.models import Company
from stats.models import CallRecord
now, company = timezone.now(), Company.objects.get()
for i, (caller, callee, by, outcome, ago) in enumerate([
    ("201", "0287654321", "0287654321", "answered", 50),
    ("3471234567", "201", "201", "answered", 20),
    ("202", "201", "", "no_answer", 9),
]):
    at = now - timedelta(minutes=ago)
    CallRecord.objects.create(
        call_id=f"shot{i}", company=company, direction="internal", caller=caller, callee=callee,
        answered_by=by, started_at=at, answered_at=at + timedelta(seconds=4) if by else None,
        ended_at=at + timedelta(seconds=95), disposition=outcome,
    )
"""


def run_in_server(server: ConsoleServer, script: str) -> str:
    """What `script` printed, run by `manage.py shell` with the server's settings."""
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=server.env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout


def leave_message(server: ConsoleServer) -> dict[str, Any]:
    script = LEAVE_MESSAGE.format(seconds=SECONDS, caller=CALLER, caller_name=CALLER_NAME)
    created: dict[str, Any] = json.loads(run_in_server(server, script).strip().splitlines()[-1])
    return created


@pytest.fixture
def bob_page(console_server: ConsoleServer, browser: Any) -> Iterator[Any]:
    """bob, logged in through the login page, on /me/ (where the landing sends end users)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.goto(f"{console_server.url}/login/")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(console_server.password("bob"))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/me/")
    try:
        yield page
    finally:
        context.close()


def audio_duration(audio: Any) -> float:
    """The element's duration once its metadata loaded (an error rejects)."""
    duration: float = audio.evaluate(
        """(el) => new Promise((resolve, reject) => {
            el.addEventListener("loadedmetadata", () => resolve(el.duration), {once: true});
            el.addEventListener("error", () => reject(new Error("audio error " + el.error.code)),
                                {once: true});
            if (el.readyState >= 1) resolve(el.duration); else el.load();
        })"""
    )
    return duration


def test_bob_plays_marks_heard_and_deletes_a_voice_message(
    console_server: ConsoleServer, bob_page: Any
) -> None:
    page = bob_page
    created = leave_message(console_server)
    page.reload()
    expect(page.get_by_role("heading", name="My phone", exact=True)).to_be_visible()

    page.get_by_role("link", name=re.compile("^Voicemail 1 new")).click()
    message = page.locator(f'li[aria-labelledby="message-{created["id"]}"]')
    player = message.get_by_label(re.compile(f"^Message from {CALLER_NAME}, "))
    expect(player).to_be_visible()
    expect(message).to_have_class(re.compile(r"\bnew\b"))
    assert audio_duration(player) == pytest.approx(SECONDS, abs=0.05)
    with page.expect_download() as download:
        message.get_by_role("link", name=re.compile("^Download the message")).click()
    assert re.fullmatch(r"voicemail-\d{8}-\d{4}-0612345678\.wav", download.value.suggested_filename)
    assert Path(download.value.path()).read_bytes() == Path(created["file"]).read_bytes()

    message.get_by_role("button", name=re.compile(r"^Mark the message .* as heard$")).click()
    expect(message).not_to_have_class(re.compile(r"\bnew\b"))
    expect(message.get_by_role("button", name=re.compile("as new$"))).to_be_visible()
    expect(page.get_by_role("link", name="Voicemail", exact=True)).to_be_visible()  # no badge

    page.once("dialog", lambda dialog: dialog.accept())
    message.get_by_role(
        "button", name=re.compile(f"^Delete the message from {CALLER_NAME}")
    ).click()
    expect(page.locator(".messages")).to_contain_text("deleted")
    expect(message).to_have_count(0)
    assert not Path(created["file"]).exists()


def test_bob_sees_his_phone_register(
    console_server: ConsoleServer, bob_page: Any, phone: Callable[..., Any]
) -> None:
    page = bob_page
    expect(page.get_by_text("Not registered")).to_be_visible()

    phone("201", 440.0)
    page.reload()

    expect(page.get_by_text(re.compile(r"^Registered from 127\.0\.0\.1 \(UDP\)"))).to_be_visible()
    expect(page.locator(".sip-settings")).to_contain_text(str(console_server.sip_port))


def test_bob_turns_do_not_disturb_on_and_off(console_server: ConsoleServer, bob_page: Any) -> None:
    page = bob_page

    page.get_by_role("button", name="Turn on do not disturb").click()
    expect(page.locator("#dnd-state")).to_contain_text("On")
    page.get_by_role("button", name="Turn off do not disturb").click()
    expect(page.locator("#dnd-state")).to_contain_text("Off")


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_screenshots_in_italian(
    console_server: ConsoleServer,
    browser: Any,
    phone: Callable[..., Any],
    tmp_path_factory: pytest.TempPathFactory,
    width: int,
    height: int,
) -> None:
    phone("201", 440.0)
    if width > 400:
        leave_message(console_server)
        run_in_server(console_server, SOME_CALLS)
    folder = tmp_path_factory.getbasetemp() / "me-screenshots"
    folder.mkdir(exist_ok=True)
    context = browser.new_context(
        viewport={"width": width, "height": height}, locale="it-IT", device_scale_factor=1
    )
    page = context.new_page()
    try:
        page.goto(f"{console_server.url}/login/")
        page.locator("#id_username").fill("bob")
        page.locator("#id_password").fill(console_server.password("bob"))
        page.locator("form.login-card button[type=submit]").click()
        page.wait_for_url("**/me/")
        for name, path in (
            ("overview", "/me/"),
            ("calls", "/me/calls/"),
            ("voicemail", "/me/voicemail/"),
        ):
            page.goto(f"{console_server.url}{path}")
            expect(page.locator("html")).to_have_attribute("lang", "it")
            # Nothing wider than the screen: no sideways scrolling on a phone.
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} is {overflow}px wider than {width}px"
            page.screenshot(
                path=str(folder / f"me-{console_server.mode}-{name}-{width}.png"), full_page=True
            )
    finally:
        context.close()
