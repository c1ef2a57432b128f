"""The administrator sets up the reception in the browser, and the next call follows (issue 7,
SPEC E1-E6), in the embedded default and the distributed mode (tests/e2e/conftest.py).

The demo administrator logs in for the first time (and must choose a password), uploads an
announcement, makes it the main menu's and sends key 3 to extension 203, paints today with the
main menu, adds tomorrow as a holiday, and makes the hunt group 600 ring all its members. Real
phones then call: the caller hears the uploaded prompt (its tone, measured), presses 3 and talks
with 203; a call to 600 rings 201 and 203 at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from playwright.sync_api import expect

from pbx.media.announcement import encode_pcm16k_wav
from tests.e2e.conftest import ConsoleServer
from tests.integration.peers.baresip import Baresip
from tests.integration.processes import manage

pytestmark = pytest.mark.e2e

PROMPT_HZ, CALLER_HZ, LUCA_HZ, ANNA_HZ = 700.0, 440.0, 660.0, 880.0
NEW_PASSWORD = "Una-nuova-password-42"


@pytest.fixture
def admin_page(console_server: ConsoleServer, browser: Any) -> Iterator[Any]:
    """The demo administrator, logged in through the first-login password change."""
    manage(
        console_server.env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User\n"
        "from pbx.models import Membership\n"
        f"user = User.objects.get(username='admin'); user.set_password('{_password(console_server)}')"
        "; user.save()\n"
        "Membership.objects.filter(user=user).update(must_change_password=True)\n",
    )
    context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US")
    page = context.new_page()
    page.goto(f"{console_server.url}/manage/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(_password(console_server))
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/password/**")
    expect(page.get_by_text("This is your first login")).to_be_visible()
    page.get_by_label("Old password").fill(_password(console_server))
    page.get_by_label(re.compile(r"^New password:?$")).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url("**/manage/")
    try:
        yield page
    finally:
        context.close()


def _password(server: ConsoleServer) -> str:
    return str(server.credentials()["passwords"]["admin"])


def _tone_wav(path: Path, hz: float, seconds: float = 4.0) -> Path:
    t = np.arange(int(16000 * seconds)) / 16000
    path.write_bytes(encode_pcm16k_wav((0.4 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)))
    return path


def upload_announcement(page: Any, server: ConsoleServer, wav: Path) -> None:
    page.goto(f"{server.url}/manage/announcements/")
    upload = page.locator("section.card", has=page.get_by_role("heading", name="Upload a WAV file"))
    upload.get_by_label("Name").fill("Prova")
    upload.get_by_label("WAV file").set_input_files(str(wav))
    upload.get_by_role("button", name="Upload").click()
    expect(page.get_by_label("Listen to Prova")).to_be_attached()


def open_multiselection(page: Any, server: ConsoleServer) -> None:
    page.goto(f"{server.url}/manage/multiselections/")
    page.get_by_role("link", name="700", exact=True).click()
    expect(page.get_by_role("grid")).to_be_visible()


def edit_main_menu(page: Any) -> None:
    page.get_by_role("link", name="Edit Benvenuto").click()
    page.get_by_label("Announcement").select_option(label="Prova")
    page.get_by_label("Action for key 3").select_option("extension")
    page.get_by_label("Number for key 3").fill("203")
    page.get_by_role("button", name="Save the menu").click()
    expect(page.locator(".messages")).to_contain_text("saved")


def paint_today(page: Any, weekday: int) -> None:
    """Today's column with the main menu: the morning by mouse, the rest by keyboard."""
    page.get_by_role("radio", name="Benvenuto").check()
    column = f'td[role="gridcell"][data-day="{weekday}"]'
    first, middle = (
        page.locator(f'{column}[data-slot="0"]'),
        page.locator(f'{column}[data-slot="8"]'),
    )
    first.scroll_into_view_if_needed()
    start, end = first.bounding_box(), middle.bounding_box()
    page.mouse.move(start["x"] + 5, start["y"] + 3)
    page.mouse.down()
    page.mouse.move(end["x"] + 5, end["y"] + 3, steps=8)
    page.mouse.up()
    middle.focus()
    for _ in range(95 - 8):
        page.keyboard.press("Shift+ArrowDown")
    expect(page.locator(f'{column}[data-slot="95"]')).to_have_attribute(
        "aria-label", re.compile("Benvenuto")
    )
    page.get_by_role("button", name="Save the schedule").click()
    expect(page.locator(".schedule-status")).not_to_be_empty()


def add_holiday(page: Any, day: str) -> None:
    holidays = page.locator("section.card", has=page.get_by_role("heading", name="Add a holiday"))
    holidays.get_by_label("Date").fill(day)
    holidays.get_by_label("Name").fill("Festa del test")
    holidays.get_by_label("Menu").select_option(label="Chiuso")
    holidays.get_by_role("button", name="Add").click()
    expect(page.get_by_text("Festa del test")).to_be_visible()


def ring_all(page: Any, server: ConsoleServer) -> None:
    page.goto(f"{server.url}/manage/hunt-groups/")
    page.get_by_role("link", name="600", exact=True).click()
    page.get_by_label("Algorithm").select_option("ring_all")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messages")).to_be_visible()


def test_the_administrator_sets_up_the_reception_and_the_next_call_follows(
    console_server: ConsoleServer, admin_page: Any, phone: Any, tmp_path: Path
) -> None:
    page = admin_page
    upload_announcement(page, console_server, _tone_wav(tmp_path / "prova.wav", PROMPT_HZ))
    open_multiselection(page, console_server)
    edit_main_menu(page)
    open_multiselection(page, console_server)
    today = datetime.now(ZoneInfo("Europe/Rome"))
    paint_today(page, today.weekday())
    add_holiday(page, (today + timedelta(days=1)).strftime("%Y-%m-%d"))
    ring_all(page, console_server)

    caller: Baresip = phone("201", CALLER_HZ)
    luca: Baresip = phone("203", LUCA_HZ, answermode="auto")
    caller.dial(f"sip:700@{console_server.registrar}")
    caller.wait_established()
    caller.wait_hearing(PROMPT_HZ, since=0)  # the announcement uploaded a minute ago
    caller.send_dtmf("3")
    luca.wait_established()
    heard_from = caller.received_audio().size
    caller.wait_hearing(LUCA_HZ, since=heard_from)
    luca.wait_hearing(CALLER_HZ)
    caller.hangup()
    luca.wait_closed()

    anna: Baresip = phone("204", ANNA_HZ)
    caller.drain()
    luca.close()
    luca = phone("203", LUCA_HZ)
    anna.dial(f"sip:600@{console_server.registrar}")
    caller.wait_incoming(timeout=5)  # 201 and 203 ring together: Ring all
    luca.wait_incoming(timeout=5)
    anna.hangup()
