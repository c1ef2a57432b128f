"""The receptionist's day in the browser, with real phones (issue 6, SPEC B1, B2, B4, B6, B7).

Each test runs against the embedded default and the distributed mode (tests/e2e/conftest.py).
The operator's phone (200) answers by itself, as the console asks it to; callers and colleagues
are baresip phones sending tones, and the audio is checked where it arrives.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import SECOND_OPERATOR, ConsoleServer
from tests.e2e.test_me import run_in_server
from tests.integration.peers.audio import dominant_frequency, rms
from tests.integration.peers.baresip import Baresip
from tests.integration.peers.waiting import wait_for

pytestmark = pytest.mark.e2e

OPERATOR_NUMBER = "9"
OPERATOR_TONE, MARIO_TONE, LUCA_TONE, ANNA_TONE = 1000.0, 440.0, 660.0, 880.0


def incoming(page: Any, name: str) -> Any:
    """The row of a call in the incoming area, found by the caller's name."""
    return page.locator("#incoming-calls").get_by_role("listitem").filter(has_text=name)


def outgoing(page: Any, name: str) -> Any:
    return page.locator("#outgoing-calls").get_by_role("listitem").filter(has_text=name)


def extension(page: Any, number: str) -> Any:
    return page.locator(f'#extensions li[data-number="{number}"]')


def call_operator(server: ConsoleServer, caller: Baresip) -> None:
    caller.dial(f"sip:{OPERATOR_NUMBER}@{server.registrar}")


def hear_each_other(one: Baresip, one_tone: float, other: Baresip, other_tone: float) -> None:
    """From now on, each phone hears the other's tone."""
    one_from, other_from = one.received_audio().size, other.received_audio().size
    one.wait_hearing(other_tone, since=one_from)
    other.wait_hearing(one_tone, since=other_from)


def hears_music(phone: Baresip, not_tone: float) -> None:
    """The last 1.5 s it heard are loud and not the tone it heard before: music on hold."""
    since = phone.received_audio().size

    def music() -> bool:
        audio = phone.received_audio()[since:]
        if audio.size < 12000:
            return False
        tail = audio[-12000:]
        return rms(tail) > 300 and abs(dominant_frequency(tail) - not_tone) > 20

    wait_for(music, 10, what=f"{phone.name} to hear music on hold")


def test_two_callers_queue_the_operator_answers_switches_parks_and_retrieves(
    console_server: ConsoleServer,
    open_console: Callable[..., Any],
    phone: Callable[..., Baresip],
) -> None:
    operator = phone("200", OPERATOR_TONE, answermode="auto")
    mario, luca = phone("201", MARIO_TONE), phone("203", LUCA_TONE)
    page = open_console()
    expect(page.locator("#status-phone")).to_have_text(re.compile("Phone registered"))

    call_operator(console_server, mario)
    call_operator(console_server, luca)
    expect(incoming(page, "Mario Rossi")).to_contain_text("Waiting for answer")
    expect(incoming(page, "Luca Verdi")).to_contain_text("→ 9")
    expect(page.locator("#incoming-count")).to_have_text("2")

    # Answer Mario with a click: the operator's phone answers by itself and the audio flows.
    incoming(page, "Mario Rossi").get_by_role("button", name="Answer").click()
    expect(incoming(page, "Mario Rossi")).to_contain_text("In conversation")
    hear_each_other(operator, OPERATOR_TONE, mario, MARIO_TONE)
    expect(page.locator("#status-call")).to_contain_text("In conversation with Mario Rossi")

    # Answer Luca: Mario is held with music, and his timer turns red after the alert time.
    incoming(page, "Luca Verdi").get_by_role("button", name="Answer").click()
    expect(incoming(page, "Mario Rossi")).to_contain_text("On hold")
    hear_each_other(operator, OPERATOR_TONE, luca, LUCA_TONE)
    hears_music(mario, OPERATOR_TONE)
    expect(incoming(page, "Mario Rossi").locator("time.timer.alert")).to_be_visible(timeout=10000)

    # Click Mario to switch back to him: Luca is held in turn.
    incoming(page, "Mario Rossi").locator(".who").click()
    expect(incoming(page, "Luca Verdi")).to_contain_text("On hold")
    mario.wait_hearing(OPERATOR_TONE, since=mario.received_audio().size)
    hears_music(luca, OPERATOR_TONE)

    # Park Luca by dragging him onto slot 3, then retrieve him by dragging the slot out.
    slot = page.get_by_role("button", name=re.compile(r"^Parking slot 3"))
    incoming(page, "Luca Verdi").drag_to(slot)
    expect(slot).to_have_accessible_name(re.compile("Parking slot 3: Luca Verdi"))
    expect(incoming(page, "Luca Verdi")).to_have_count(0)
    slot.drag_to(page.locator("#outgoing"))
    expect(outgoing(page, "Luca Verdi")).to_contain_text("In conversation")
    expect(slot).to_have_accessible_name(re.compile("empty"))
    hear_each_other(operator, OPERATOR_TONE, luca, LUCA_TONE)

    # Presence: the callers' extensions show busy while they talk to the operator.
    expect(extension(page, "201")).to_have_class(re.compile("presence-(talking|held)"))
    mario.hangup()
    luca.hangup()
    expect(page.locator("#incoming-calls .call")).to_have_count(0)
    expect(page.locator("#outgoing-calls .call")).to_have_count(0)
    expect(extension(page, "201")).to_have_class(re.compile("presence-idle"))


def test_a_blind_transfer_by_dragging_the_call_onto_a_colleague(
    console_server: ConsoleServer,
    open_console: Callable[..., Any],
    phone: Callable[..., Baresip],
) -> None:
    operator = phone("200", OPERATOR_TONE, answermode="auto")
    mario = phone("201", MARIO_TONE)
    anna = phone("204", ANNA_TONE)
    page = open_console()
    expect(extension(page, "204")).to_have_class(re.compile("presence-idle"))
    # Monitoring of one colleague switched off by menu: it stays off after a reload (SPEC B8).
    extension(page, "205").get_by_role("button").click(button="right")
    page.get_by_role("menuitem", name="Switch monitoring off").click()
    expect(extension(page, "205")).to_have_class(re.compile("presence-disabled"))
    page.reload()
    expect(extension(page, "205").get_by_role("button")).to_have_accessible_name(
        re.compile("Monitoring off")
    )
    call_operator(console_server, mario)
    incoming(page, "Mario Rossi").get_by_role("button", name="Answer").click()
    operator.wait_hearing(MARIO_TONE)

    incoming(page, "Mario Rossi").drag_to(extension(page, "204"))
    expect(extension(page, "204")).to_have_class(re.compile("presence-ringing"))
    anna.wait_incoming()
    anna.answer()
    hear_each_other(mario, MARIO_TONE, anna, ANNA_TONE)
    operator.wait_closed()  # the operator's phone is free again
    expect(extension(page, "204")).to_have_class(re.compile("presence-talking"))
    expect(page.locator("#incoming-calls .call")).to_have_count(0)
    mario.hangup()


def test_a_whole_announced_transfer_by_keyboard_alone(
    console_server: ConsoleServer,
    open_console: Callable[..., Any],
    phone: Callable[..., Baresip],
) -> None:
    operator = phone("200", OPERATOR_TONE, answermode="auto")
    mario = phone("201", MARIO_TONE)
    anna = phone("204", ANNA_TONE, answermode="auto")
    page = open_console()
    call_operator(console_server, mario)
    expect(incoming(page, "Mario Rossi")).to_be_visible()

    page.keyboard.press("Enter")  # answer the call waiting longest
    operator.wait_hearing(MARIO_TONE)
    page.keyboard.press("t")  # transfer: the number field takes the target
    expect(page.locator("#dial")).to_be_focused()
    page.keyboard.type("204")
    page.keyboard.press("Enter")  # with announcement: Mario is held, Anna rings
    expect(outgoing(page, "Centralino")).to_contain_text("In conversation")
    hears_music(mario, OPERATOR_TONE)
    operator.wait_hearing(ANNA_TONE)  # the operator announces the call to Anna
    page.keyboard.press("F4")  # release: Mario and Anna talk
    hear_each_other(mario, MARIO_TONE, anna, ANNA_TONE)
    expect(page.locator("#incoming-calls .call")).to_have_count(0)
    expect(page.locator("#outgoing-calls .call")).to_have_count(0)
    mario.hangup()


def test_two_operators_answering_at_once_one_gets_the_call_the_other_is_told(
    console_server: ConsoleServer,
    open_console: Callable[..., Any],
    phone: Callable[..., Baresip],
) -> None:
    alices_phone = phone("200", OPERATOR_TONE, answermode="auto")
    olgas_phone = phone(SECOND_OPERATOR[1], LUCA_TONE, answermode="auto")
    mario = phone("201", MARIO_TONE)
    alice, olga = open_console("alice"), open_console(SECOND_OPERATOR[0])
    call_operator(console_server, mario)
    for page in (alice, olga):
        expect(incoming(page, "Mario Rossi")).to_contain_text("Waiting for answer")

    # Both click at once: each page clicks at the same moment, before either hears back.
    at = alice.evaluate("Date.now() + 500")
    for page in (alice, olga):
        button = incoming(page, "Mario Rossi").get_by_role("button", name="Answer")
        button.evaluate("(b, at) => setTimeout(() => b.click(), at - Date.now())", at)
    told = "Another operator answered that call first"

    def toasts() -> list[str]:
        return [p.locator("#toast").text_content() or "" for p in (alice, olga)]

    wait_for(lambda: any(told in t for t in toasts()), 8, what="one operator told", seen=toasts)
    losers = [told in t for t in toasts()]
    assert losers.count(True) == 1, toasts()
    page, operator_phone = (alice, alices_phone) if losers[1] else (olga, olgas_phone)
    operator_phone.wait_hearing(MARIO_TONE)
    loser = olga if page is alice else alice
    expect(incoming(loser, "Mario Rossi")).to_have_count(0)  # gone from the other's queue
    mario.hangup()


def test_the_operator_answers_on_the_phone_itself_and_the_console_follows(
    console_server: ConsoleServer,
    open_console: Callable[..., Any],
    phone: Callable[..., Baresip],
) -> None:
    operator = phone("200", OPERATOR_TONE)
    mario = phone("201", MARIO_TONE)
    page = open_console()
    call_operator(console_server, mario)
    expect(incoming(page, "Mario Rossi")).to_contain_text("Waiting for answer")

    call_operator(console_server, operator)  # the operator's phone dials 9: it takes the call
    operator.wait_established()
    hear_each_other(operator, OPERATOR_TONE, mario, MARIO_TONE)
    expect(incoming(page, "Mario Rossi")).to_contain_text("In conversation")
    incoming(page, "Mario Rossi").get_by_role("button", name="Hold").click()
    expect(incoming(page, "Mario Rossi")).to_contain_text("On hold")
    hears_music(mario, OPERATOR_TONE)
    mario.hangup()
    expect(page.locator("#incoming-calls .call")).to_have_count(0)


# A message in the operator's own mailbox, written as the engine does: the file, then the row.
LEAVE_FOR_THE_OPERATOR = """
import numpy as np
from pbx.media.wav import encode_wav_pcm
from pbx.models import Mailbox, VoiceMessage, voicemail_dir
t = np.arange(8000 * 3) / 8000
name = VoiceMessage.new_file_name()
voicemail_dir().mkdir(parents=True, exist_ok=True)
(voicemail_dir() / name).write_bytes(
    encode_wav_pcm((8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), 8000)
)
VoiceMessage.objects.create(
    mailbox=Mailbox.objects.get(extension__number="200"),
    caller="0698765432", caller_name="{name}", duration=3.0, file_name=name,
)
"""


def test_the_voicemail_panel_plays_a_message_left_on_the_server_and_marks_it_heard(
    console_server: ConsoleServer, open_console: Callable[..., Any]
) -> None:
    caller = f"Studio {uuid.uuid4().hex[:6]}"
    run_in_server(console_server, LEAVE_FOR_THE_OPERATOR.replace("{name}", caller))
    page = open_console()

    player = page.locator(f'#voicemail audio[aria-label^="Message from {caller},"]')
    expect(player).to_be_visible()
    duration = player.evaluate(
        """(el) => new Promise((resolve, reject) => {
            el.addEventListener("loadedmetadata", () => resolve(el.duration));
            el.addEventListener("error", () => reject(new Error("no audio")));
            el.preload = "metadata";
            el.load();
        })"""
    )
    assert abs(duration - 3.0) < 0.1  # served by the operator's own /me/ audio view
    indicator = page.locator("#status-voicemail")
    expect(indicator).to_have_attribute("aria-label", re.compile(r"^\d+ new voice messages?$"))
    new_before = int(indicator.get_attribute("aria-label").split()[0])

    page.get_by_role("button", name=f"Mark the message from {caller}", exact=False).click()
    expect(
        page.get_by_role("button", name=re.compile(f"^Mark the message from {caller}, .* as new$"))
    ).to_be_visible()
    left = new_before - 1
    expect(indicator).to_have_attribute(
        "aria-label", "No new voice messages" if left == 0 else re.compile(rf"^{left} new voice")
    )
