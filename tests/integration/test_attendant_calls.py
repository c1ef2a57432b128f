"""E3/E4 with real phones: a Multiselection answers, plays its menus and does what keys say.

The caller is baresip (RFC 4733 keys); the extensions a key leads to are baresip phones that
answer by themselves, each sending its own tone. Every prompt is a tone, so what the caller
hears is checked by frequency at the caller, and what the engine sends it (each RTP packet with
the engine's time) says when a prompt started and how often it played.
"""

from __future__ import annotations

import statistics
import struct
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from pbx.engine.directory import MenuAction, MenuInfo
from pbx.media import g711
from pbx.media.announcement import encode_pcm16k_wav
from pbx.media.tone import goertzel, rms, sine
from tests.integration.engine_fixture import CallerWatch, Pbx
from tests.integration.peers.baresip import Baresip, baresip_binary
from tests.integration.peers.waiting import wait_for

T = TypeVar("T")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(baresip_binary() is None, reason="baresip (baresip-core) is not installed"),
]

ATTENDANT = "500"
TOP, SUB = 1, 2
TOP_HZ, SUB_HZ = 600.0, 900.0  # the menus' prompts
CALLER_HZ, FIRST_HZ, SECOND_HZ = 440.0, 1000.0, 700.0  # the phones 201, 202, 203
RINGBACK_HZ = 425.0
GAP = 0.06  # seconds without a packet that end a prompt (packets go every 20 ms)


# --- announcements -----------------------------------------------------------------------


def prompt_pcm16k(path: Path, freq: float, seconds: float) -> str:
    """A tone prompt as the portal stores an upload: 16 kHz 16-bit PCM mono."""
    path.write_bytes(encode_pcm16k_wav(sine(freq, seconds, 16000)))
    return str(path)


def prompt_ulaw8k(path: Path, freq: float, seconds: float) -> str:
    """A tone prompt in the other accepted format: 8 kHz G.711 µ-law mono."""
    body = g711.encode_ulaw(sine(freq, seconds, 8000))
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
    path.write_bytes(
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(body))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(body))
        + body
    )
    return str(path)


# --- what the engine sent to the caller ----------------------------------------------------


def packet_tone(packet: bytes, candidates: tuple[float, ...]) -> float | None:
    """The candidate frequency an RTP packet of G.711 carries, or None (silence, a mix)."""
    payload_type = packet[1] & 0x7F
    if payload_type not in (0, 8):
        return None
    samples = g711.decode("PCMU" if payload_type == 0 else "PCMA", packet[12:])
    level = rms(samples) ** 2
    if level < 100**2:
        return None
    best = max(candidates, key=lambda freq: goertzel(samples, 8000, freq))
    return best if goertzel(samples, 8000, best) > 0.6 * level else None


def prompts_sent(watch: CallerWatch, candidates: tuple[float, ...]) -> list[tuple[float, float]]:
    """(start time, frequency) of each run of packets of one tone with no gap in between."""
    runs: list[tuple[float, float]] = []
    last_at, last_tone = -1.0, None
    for at, packet in list(watch.sent):
        tone = packet_tone(packet, candidates)
        if tone is not None and (tone != last_tone or at - last_at > GAP):
            runs.append((at, tone))
        last_at, last_tone = at, tone
    return runs


def digit_to_prompt(watch: CallerWatch, index: int, freq: float) -> float:
    """Seconds from the caller's key (`index`-th one, by the engine's DigitPressed time) to
    the first packet of the prompt of `freq` Hz sent after it; the first packet sent after
    the key must be that prompt's (the previous one stops at once)."""
    pressed_at = watch.digits[index][0]
    after = watch.packets_after(pressed_at)
    assert after, "nothing sent to the caller after its key"
    at, packet = after[0]
    tone = packet_tone(packet, (TOP_HZ, SUB_HZ, RINGBACK_HZ, CALLER_HZ))
    assert tone == freq, f"the first packet after the key carries {tone} Hz, want {freq} Hz"
    return at - pressed_at


def wait_digits(watch: CallerWatch, count: int) -> None:
    """Wait until the engine has seen `count` keys of the caller."""
    wait_for(
        lambda: len(watch.digits) >= count,
        5,
        what=f"{count} key(s) seen by the engine",
        seen=lambda: watch.digits,
    )


def wait_packets(watch: CallerWatch, freq: float, count: int) -> None:
    """Wait until the engine has sent the caller `count` packets carrying `freq` Hz."""

    def sent() -> int:
        return sum(
            1 for _, packet in list(watch.sent) if packet_tone(packet, (TOP_HZ, SUB_HZ)) == freq
        )

    wait_for(lambda: sent() >= count, 10, what=f"{count} packets of {freq:g} Hz", seen=sent)


def wait_prompt_after(watch: CallerWatch, index: int, freq: float) -> None:
    """Wait until the engine has sent a packet of `freq` Hz after the `index`-th key."""
    pressed_at = watch.digits[index][0]

    def started() -> bool:
        tones = (TOP_HZ, SUB_HZ)
        return any(packet_tone(p, tones) == freq for _, p in watch.packets_after(pressed_at))

    wait_for(started, 5, what=f"the {freq:g} Hz prompt after key {index}")


def press(phone: Baresip, digit: str) -> None:
    """One key press (RFC 4733): no pause after it, the test waits for what it causes."""
    phone.send_dtmf(digit, gap=0)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def server(make_pbx: Callable[..., Pbx]) -> Pbx:
    return make_pbx(extensions=("201", "202", "203", "204"))


@pytest.fixture
def phones(server: Pbx, make_baresip: Callable[..., Baresip]) -> dict[str, Baresip]:
    """201 the caller (440 Hz); 202 (1000 Hz) and 203 (700 Hz) answer by themselves."""
    tones = {"201": CALLER_HZ, "202": FIRST_HZ, "203": SECOND_HZ}
    made = {
        number: make_baresip(
            number, password=server.secrets[number], registrar=server.address, tone_hz=hz
        )
        for number, hz in tones.items()
    }
    for phone in made.values():
        phone.wait_registered()
    return made


def dial_attendant(server: Pbx, caller: Baresip) -> CallerWatch:
    """The caller dials the Multiselection, which answers; returns the engine's log of it."""
    watch = server.watch_next_caller()
    caller.dial(f"sip:{ATTENDANT}@{server.address}")
    caller.wait_established()
    wait_for(
        lambda: server.call_states() == ["attendant"],
        5,
        what="the Multiselection answering",
        seen=server.call_states,
    )
    return watch


def hang_up(server: Pbx, caller: Baresip, *others: Baresip) -> None:
    caller.hangup()
    caller.wait_closed()
    for phone in others:
        phone.wait_closed()
    server.wait_no_calls()


# --- tests ---------------------------------------------------------------------------------


def test_a_caller_walks_the_menus_and_is_put_through_with_audio_both_ways(
    server: Pbx, phones: dict[str, Baresip], tmp_path: Path
) -> None:
    top = MenuInfo(
        TOP,
        "Welcome",
        prompt_pcm16k(tmp_path / "top.wav", TOP_HZ, 4.0),
        timeout=5,
        keys=(("1", MenuAction("menu", menu=SUB)), ("2", MenuAction("extension", "202"))),
    )
    sub = MenuInfo(
        SUB,
        "Sales",
        prompt_ulaw8k(tmp_path / "sub.wav", SUB_HZ, 4.0),
        timeout=5,
        keys=(("*", MenuAction("back")),),
    )
    server.add_attendant(ATTENDANT, top, sub)
    caller, callee = phones["201"], phones["202"]

    watch = dial_attendant(server, caller)
    caller.wait_hearing(TOP_HZ, seconds=0.5)

    press(caller, "1")  # while the welcome plays: the submenu at once
    mark = caller.received_audio().size
    wait_digits(watch, 1)
    caller.wait_hearing(SUB_HZ, seconds=0.5, since=mark)
    to_sub = digit_to_prompt(watch, 0, SUB_HZ)

    press(caller, "*")  # back to the welcome
    mark = caller.received_audio().size
    wait_digits(watch, 2)
    caller.wait_hearing(TOP_HZ, seconds=0.5, since=mark)
    to_top = digit_to_prompt(watch, 1, TOP_HZ)

    press(caller, "2")  # put through to 202
    mark = caller.received_audio().size
    callee.wait_established()
    callee.wait_hearing(CALLER_HZ, seconds=0.5)
    caller.wait_hearing(FIRST_HZ, seconds=0.5, since=mark)
    assert server.call_states() == ["answered"]
    assert [d for _, d in watch.digits] == ["1", "*", "2"]
    assert not phones["203"].has_event("CALL_INCOMING")

    hang_up(server, caller, callee)
    record = server.wait_record(disposition="answered")
    print(f"\nkey to prompt: submenu {to_sub * 1000:.1f} ms, back {to_top * 1000:.1f} ms")
    assert record["callee"] == ATTENDANT
    assert record["answered_by"] == "202"  # who the menu put the caller through to
    assert max(to_sub, to_top) < 0.5


def test_the_next_prompt_starts_within_milliseconds_of_the_key(
    server: Pbx, phones: dict[str, Baresip], tmp_path: Path
) -> None:
    """The engine's time from a DigitPressed to the first RTP packet of the next prompt."""
    top = MenuInfo(
        TOP,
        "Welcome",
        prompt_pcm16k(tmp_path / "top.wav", TOP_HZ, 4.0),
        keys=(("1", MenuAction("menu", menu=SUB)),),
    )
    sub = MenuInfo(
        SUB,
        "Sales",
        prompt_pcm16k(tmp_path / "sub.wav", SUB_HZ, 4.0),
        keys=(("*", MenuAction("back")),),
    )
    server.add_attendant(ATTENDANT, top, sub)
    caller = phones["201"]
    watch = dial_attendant(server, caller)
    wait_packets(watch, TOP_HZ, 5)

    keys = "1*1*1*"
    delays = []
    for index, key in enumerate(keys):
        want = SUB_HZ if key == "1" else TOP_HZ
        press(caller, key)
        wait_digits(watch, index + 1)
        wait_prompt_after(watch, index, want)
        delays.append(digit_to_prompt(watch, index, want))
    hang_up(server, caller)

    ms = [round(d * 1000, 2) for d in delays]
    print(
        f"\nkey to next prompt (engine side): {ms} ms; median {statistics.median(ms):.2f} ms,"
        f" max {max(ms):.2f} ms"
    )
    assert max(delays) < 0.5, ms


def test_two_callers_walk_the_menus_each_on_their_own(
    server: Pbx, phones: dict[str, Baresip], tmp_path: Path
) -> None:
    top = MenuInfo(
        TOP,
        "Welcome",
        prompt_pcm16k(tmp_path / "top.wav", TOP_HZ, 8.0),
        keys=(("1", MenuAction("menu", menu=SUB)),),
    )
    sub = MenuInfo(
        SUB,
        "Sales",
        prompt_pcm16k(tmp_path / "sub.wav", SUB_HZ, 8.0),
        keys=(("*", MenuAction("back")),),
    )
    server.add_attendant(ATTENDANT, top, sub)
    first, second = phones["201"], phones["203"]
    for caller in (first, second):
        caller.dial(f"sip:{ATTENDANT}@{server.address}")
        caller.wait_established()
    wait_for(lambda: server.call_states() == ["attendant"] * 2, 5, what="both in the menu")
    first.wait_hearing(TOP_HZ, seconds=0.5)
    second.wait_hearing(TOP_HZ, seconds=0.5)

    press(first, "1")
    first.wait_hearing(SUB_HZ, seconds=0.5, since=first.received_audio().size)
    second.wait_hearing(TOP_HZ, seconds=0.5, since=second.received_audio().size)
    press(second, "1")
    press(first, "*")
    first.wait_hearing(TOP_HZ, seconds=0.5, since=first.received_audio().size)
    second.wait_hearing(SUB_HZ, seconds=0.5, since=second.received_audio().size)

    for caller in (first, second):
        caller.hangup()
        caller.wait_closed()
    server.wait_no_calls()


def test_a_caller_who_presses_nothing_is_sent_to_the_timeout_action_after_the_retries(
    server: Pbx, phones: dict[str, Baresip], tmp_path: Path
) -> None:
    retries, timeout, prompt = 1, 0.6, 0.4
    top = MenuInfo(
        TOP,
        "Welcome",
        prompt_pcm16k(tmp_path / "top.wav", TOP_HZ, prompt),
        timeout=timeout,
        retries=retries,
        keys=(
            ("1", MenuAction("menu", menu=SUB)),
            ("timeout", MenuAction("extension", "202")),
            ("invalid", MenuAction("extension", "203")),
        ),
    )
    server.add_attendant(ATTENDANT, top, MenuInfo(SUB, "Unused", ""))
    caller, target = phones["201"], phones["202"]

    watch = dial_attendant(server, caller)
    caller.wait_hearing(TOP_HZ, seconds=0.3)
    target.wait_established(timeout=10)
    caller.wait_hearing(FIRST_HZ, seconds=0.5)
    target.wait_hearing(CALLER_HZ, seconds=0.5)
    assert not phones["203"].has_event("CALL_INCOMING"), "the invalid-key action was taken"

    runs = prompts_sent(watch, (TOP_HZ, RINGBACK_HZ, FIRST_HZ))
    plays = [at for at, tone in runs if tone == TOP_HZ]
    assert len(plays) == retries + 1, f"the prompt played {len(plays)} times: {runs}"
    # Each replay waits for the timeout after the prompt's end; then the timeout action.
    waits = [later - earlier - prompt for earlier, later in zip(plays, plays[1:], strict=False)]
    assert all(abs(w - timeout) < 0.25 for w in waits), waits
    after = [(at, tone) for at, tone in runs if at > plays[-1]]
    assert after[0][1] in (RINGBACK_HZ, FIRST_HZ), runs
    assert after[-1][1] == FIRST_HZ, runs
    assert abs(after[0][0] - plays[-1] - prompt - timeout) < 0.25, runs  # one more timeout
    assert watch.digits == []
    hang_up(server, caller, target)


def test_an_invalid_key_replays_the_menu_then_leads_to_the_invalid_action(
    server: Pbx, phones: dict[str, Baresip], tmp_path: Path
) -> None:
    prompt_packets = 20  # a 0.4 s prompt
    top = MenuInfo(
        TOP,
        "Welcome",
        prompt_pcm16k(tmp_path / "top.wav", TOP_HZ, 0.4),
        timeout=4,
        retries=1,
        keys=(
            ("1", MenuAction("menu", menu=SUB)),
            ("timeout", MenuAction("extension", "202")),
            ("invalid", MenuAction("extension", "203")),
        ),
    )
    server.add_attendant(ATTENDANT, top, MenuInfo(SUB, "Unused", ""))
    caller, target = phones["201"], phones["203"]

    watch = dial_attendant(server, caller)
    caller.wait_hearing(TOP_HZ, seconds=0.3)
    wait_packets(watch, TOP_HZ, prompt_packets)  # the prompt is over: the menu waits for a key

    press(caller, "9")  # no such key: the menu again
    wait_digits(watch, 1)
    wait_packets(watch, TOP_HZ, 2 * prompt_packets)
    assert not target.has_event("CALL_INCOMING"), "sent on after one invalid key of two"

    press(caller, "9")  # the retries are spent: the invalid-key action
    target.wait_established()
    caller.wait_hearing(SECOND_HZ, seconds=0.5)
    target.wait_hearing(CALLER_HZ, seconds=0.5)
    assert not phones["202"].has_event("CALL_INCOMING"), "the timeout action was taken"

    runs = prompts_sent(watch, (TOP_HZ, RINGBACK_HZ, SECOND_HZ))
    plays = [at for at, tone in runs if tone == TOP_HZ]
    assert len(plays) == 2, runs
    first_key, second_key = (at for at, _ in watch.digits)
    assert plays[0] < first_key < plays[1] < second_key, (plays, watch.digits)
    hang_up(server, caller, target)


def test_keys_sent_by_sip_info_walk_the_menus_too(server: Pbx, tmp_path: Path) -> None:
    from tests.integration.peers.sipp import sipp_binary

    if sipp_binary() is None:
        pytest.skip("SIPp (sip-tester) is not installed")
    top = MenuInfo(
        TOP,
        "Welcome",
        prompt_pcm16k(tmp_path / "top.wav", TOP_HZ, 4.0),
        keys=(("1", MenuAction("menu", menu=SUB)),),
    )
    sub = MenuInfo(
        SUB,
        "Sales",
        prompt_pcm16k(tmp_path / "sub.wav", SUB_HZ, 4.0),
        keys=(("*", MenuAction("back")),),
    )
    server.add_attendant(ATTENDANT, top, sub)
    watch = server.watch_next_caller()
    # SIPp: INFO "Signal=1" (dtmf-relay) 0.4 s after the answer, INFO "*" (dtmf) 0.4 s later.
    result = server.dial(ATTENDANT, "uac_info_keys", duration_ms=400)
    assert result.ok, result.explain()
    server.wait_no_calls()
    assert [d for _, d in watch.digits] == ["1", "*"]
    prompts = [tone for _, tone in prompts_sent(watch, (TOP_HZ, SUB_HZ))]
    assert prompts == [TOP_HZ, SUB_HZ, TOP_HZ], prompts
    assert digit_to_prompt(watch, 0, SUB_HZ) < 0.5
    assert digit_to_prompt(watch, 1, TOP_HZ) < 0.5


def one_key_menu(tmp_path: Path, key: str, action: MenuAction) -> MenuInfo:
    prompt = prompt_pcm16k(tmp_path / "top.wav", TOP_HZ, 4.0)
    return MenuInfo(TOP, "Welcome", prompt, keys=((key, action),))


def test_a_key_puts_the_caller_through_to_a_hunt_group(
    server: Pbx, phones: dict[str, Baresip], tmp_path: Path
) -> None:
    server.add_hunt_group("600", "linear", (("203", 5), ("202", 5)))
    server.add_attendant(ATTENDANT, one_key_menu(tmp_path, "3", MenuAction("hunt_group", "600")))
    caller, member = phones["201"], phones["203"]
    dial_attendant(server, caller)
    caller.wait_hearing(TOP_HZ, seconds=0.3)
    mark = caller.received_audio().size
    press(caller, "3")
    member.wait_established()  # the group's first member
    caller.wait_hearing(SECOND_HZ, seconds=0.5, since=mark)
    member.wait_hearing(CALLER_HZ, seconds=0.5)
    assert not phones["202"].has_event("CALL_INCOMING")
    hang_up(server, caller, member)


def test_a_key_sends_the_caller_to_an_outside_number_through_the_trunk(
    server: Pbx, phones: dict[str, Baresip], tmp_path: Path
) -> None:
    from tests.integration.peers.sipp import sipp_binary, sipp_uas

    if sipp_binary() is None:
        pytest.skip("SIPp (sip-tester) is not installed")
    caller = phones["201"]
    key = one_key_menu(tmp_path, "8", MenuAction("outside", "0612345678"))
    server.add_attendant(ATTENDANT, key)
    with sipp_uas("uas_answer", rtp_echo=True) as carrier:  # the far end echoes our audio
        server.add_trunk(carrier.port)
        dial_attendant(server, caller)
        caller.wait_hearing(TOP_HZ, seconds=0.3)
        mark = caller.received_audio().size
        press(caller, "8")
        caller.wait_hearing(CALLER_HZ, seconds=0.5, since=mark)  # its own voice, echoed
        hang_up(server, caller)
        received = carrier.wait(10)
    assert received.ok, received.explain()
    assert "INVITE sip:612345678@" in received.messages


def test_a_key_puts_the_caller_in_the_operator_queue(
    server: Pbx, phones: dict[str, Baresip], tmp_path: Path
) -> None:
    server.directory.operator_numbers[1] = "9"
    server.add_attendant(ATTENDANT, one_key_menu(tmp_path, "0", MenuAction("operator")))
    caller = phones["201"]
    dial_attendant(server, caller)
    caller.wait_hearing(TOP_HZ, seconds=0.3)
    mark = caller.received_audio().size
    press(caller, "0")
    wait_for(lambda: server.call_states() == ["queued"], 5, what="the call queued")
    caller.wait_hearing(RINGBACK_HZ, seconds=0.5, since=mark)  # while it waits
    hang_up(server, caller)


def test_a_menu_key_can_hang_up(server: Pbx, phones: dict[str, Baresip], tmp_path: Path) -> None:
    top = MenuInfo(
        TOP,
        "Welcome",
        prompt_pcm16k(tmp_path / "top.wav", TOP_HZ, 4.0),
        keys=(("#", MenuAction("hangup")),),
    )
    server.add_attendant(ATTENDANT, top)
    caller = phones["201"]
    dial_attendant(server, caller)
    caller.wait_hearing(TOP_HZ, seconds=0.3)
    press(caller, "#")
    caller.wait_closed()
    server.wait_no_calls()
    assert server.wait_record()["disposition"] == "answered"


def test_a_caller_who_hangs_up_while_the_keys_extension_rings_leaves_nothing_behind(
    server: Pbx, phones: dict[str, Baresip], make_baresip: Callable[..., Baresip], tmp_path: Path
) -> None:
    ringing = make_baresip(
        "204", password=server.secrets["204"], registrar=server.address, answermode="manual"
    )
    ringing.wait_registered()
    server.add_attendant(ATTENDANT, one_key_menu(tmp_path, "4", MenuAction("extension", "204")))
    caller = phones["201"]
    dial_attendant(server, caller)
    caller.wait_hearing(TOP_HZ, seconds=0.3)
    press(caller, "4")
    ringing.wait_incoming()
    caller.hangup()
    caller.wait_closed()
    # baresip 1.0 (libre) reports a CANCEL of a ringing call as "Connection reset by peer".
    assert ringing.wait_closed()["param"] == "Connection reset by peer"
    server.wait_no_calls()


def test_a_key_to_an_unreachable_extension_hangs_up_cleanly(
    server: Pbx, phones: dict[str, Baresip], tmp_path: Path
) -> None:
    server.add_attendant(ATTENDANT, one_key_menu(tmp_path, "4", MenuAction("extension", "204")))
    caller = phones["201"]
    dial_attendant(server, caller)
    caller.wait_hearing(TOP_HZ, seconds=0.3)
    press(caller, "4")  # 204 has no phone registered
    caller.wait_closed()  # the PBX hangs up: the caller had been answered by the menu
    server.wait_no_calls()
    assert server.wait_record()["reason"] == "unreachable"


def test_a_caller_whose_hunt_group_does_not_answer_comes_back_to_the_menu(
    server: Pbx, phones: dict[str, Baresip], make_baresip: Callable[..., Baresip], tmp_path: Path
) -> None:
    """The group's fallback is the Multiselection itself: the caller, answered already by
    the menu, hears the menu again instead of ringback for ever."""
    member = make_baresip(
        "204", password=server.secrets["204"], registrar=server.address, answermode="manual"
    )
    member.wait_registered()
    server.add_hunt_group("610", "linear", (("204", 5),), fallback="number", fallback_number="500")
    top = MenuInfo(
        TOP,
        "Welcome",
        prompt_pcm16k(tmp_path / "top.wav", TOP_HZ, 4.0),
        keys=(("3", MenuAction("hunt_group", "610")), ("2", MenuAction("extension", "202"))),
    )
    server.add_attendant(ATTENDANT, top)
    caller = phones["201"]
    watch = dial_attendant(server, caller)
    caller.wait_hearing(TOP_HZ, seconds=0.3)
    press(caller, "3")
    member.wait_incoming()
    member.hangup()  # busy: nobody else in the group
    member.wait_closed()
    mark = caller.received_audio().size
    wait_for(
        lambda: server.call_states() == ["attendant"],
        5,
        what="the menu again",
        seen=server.call_states,
    )
    caller.wait_hearing(TOP_HZ, seconds=0.5, since=mark)
    press(caller, "2")  # and the menu works as before
    phones["202"].wait_established()
    caller.wait_hearing(FIRST_HZ, seconds=0.5)
    assert [tone for _, tone in prompts_sent(watch, (TOP_HZ,))] == [TOP_HZ, TOP_HZ]
    hang_up(server, caller, phones["202"])


def unlocked(read: Callable[[], T]) -> T | None:
    """`read()`, or None while the engine's writer holds the in-memory SQLite table (it
    writes from its own thread; the test's read is not retried by it)."""
    from django.db import OperationalError

    try:
        return read()
    except OperationalError as error:
        if "locked" not in str(error):
            raise
        return None


@pytest.mark.django_db(transaction=True)
def test_a_reception_configured_in_the_database_answers_and_remembers_its_rotation(
    settings: object, tmp_path: Path
) -> None:
    """The portal's models read by OrmDirectory: a schedule, a menu with an uploaded
    announcement, a key to a uniform-sequential hunt group whose last taker is kept in the
    database (HuntGroup.last_member) for the next call."""
    from pbx.actions import add_extension, default_company
    from pbx.models import (
        Announcement,
        Extension,
        HuntGroup,
        HuntMember,
        LineIdle,
        Menu,
        MenuKey,
        Multiselection,
        SchedulePeriod,
    )
    from pbx.runtime import build_engine
    from tests.integration.engine_fixture import start_engine
    from tests.integration.peers.ports import free_port_range

    settings.CENTRALINO_ANNOUNCEMENTS_DIR = str(tmp_path)  # type: ignore[attr-defined]
    company = default_company()
    secrets = {
        number: add_extension(company, number, f"Ext {number}").secret
        for number in ("201", "202", "203")
    }
    welcome = Announcement.objects.create(
        company=company,
        name="Welcome",
        source="upload",
        file_name=Announcement.new_file_name(),
        encoding="pcm16k",
        duration=4.0,
    )
    welcome.path.write_bytes(encode_pcm16k_wav(sine(TOP_HZ, 4.0, 16000)))
    group = HuntGroup.objects.create(
        company=company, number="600", name="Sales", algorithm="uniform_sequential"
    )
    for position, number in enumerate(("202", "203")):
        HuntMember.objects.create(
            group=group,
            extension=Extension.objects.get(company=company, number=number),
            position=position,
            ring_time=5,
        )
    attendant = Multiselection.objects.create(company=company, number=ATTENDANT, name="Reception")
    menu = Menu.objects.create(multiselection=attendant, name="Welcome", announcement=welcome)
    MenuKey.objects.create(menu=menu, key="1", action="hunt_group", number="600")
    for weekday in range(7):
        SchedulePeriod.objects.create(
            multiselection=attendant, weekday=weekday, start=0, end=24 * 60, menu=menu
        )

    rtp = free_port_range(200)
    with ExitStack() as stack:  # last in, first out: the phones unregister, then it stops
        engine = start_engine(
            lambda: build_engine(sip_port=free_port_range(1), rtp_ports=(rtp, rtp + 199))
        )
        stack.callback(engine.stop)
        phones = {
            number: stack.enter_context(
                Baresip(number, password=secret, registrar=engine.address, tone_hz=hz)
            )
            for (number, secret), hz in zip(
                secrets.items(), (CALLER_HZ, FIRST_HZ, SECOND_HZ), strict=True
            )
        }
        for phone in phones.values():
            phone.wait_registered()
        caller = phones["201"]

        caller.dial(f"sip:{ATTENDANT}@{engine.address}")
        caller.wait_established()
        caller.wait_hearing(TOP_HZ, seconds=0.5)
        press(caller, "1")
        phones["202"].wait_established()  # no previous call: the first member
        caller.wait_hearing(FIRST_HZ, seconds=0.5)
        caller.hangup()
        phones["202"].wait_closed()
        engine.wait_no_calls()
        wait_for(
            lambda: unlocked(lambda: HuntGroup.objects.get(pk=group.pk).last_member == "202"),
            5,
            what="the group's last taker in the database",
        )
        # When 202's line became idle, as a date every node and the next run can compare.
        idle = wait_for(
            lambda: unlocked(LineIdle.objects.filter(company=company, number="202").first),
            5,
            what="202's idle time in the database",
        )
        assert abs((idle.idle_since - datetime.now(UTC)).total_seconds()) < 60, idle.idle_since
        # The record: answered when the menu answered, by the member who took it from the menu.
        from stats.models import CallRecord

        record = wait_for(
            lambda: unlocked(
                CallRecord.objects.filter(callee=ATTENDANT, ended_at__isnull=False).first
            ),
            5,
            what="the menu call's record",
        )
        assert record.answered_by == "202"
        assert record.answered_at is not None and record.answered_at < record.ended_at

        caller.dial(f"sip:600@{engine.address}")  # the rotation goes on after 202
        phones["203"].wait_established()
        caller.wait_established()
        calls = [e for e in phones["202"].events if e.get("type") == "CALL_ESTABLISHED"]
        assert len(calls) == 1, "202 took the second call too"
        caller.hangup()
        phones["203"].wait_closed()
        engine.wait_no_calls()


def test_a_phone_transfers_its_caller_to_the_multiselection_which_puts_it_through(
    server: Pbx, phones: dict[str, Baresip], tmp_path: Path
) -> None:
    """203 answered 201 and sends it to the menu (REFER): 203 is freed, 201 hears the menu,
    presses 2 and talks with 202."""
    top = MenuInfo(
        TOP,
        "Welcome",
        prompt_pcm16k(tmp_path / "top.wav", TOP_HZ, 4.0),
        timeout=5,
        keys=(("2", MenuAction("extension", "202")),),
    )
    server.add_attendant(ATTENDANT, top)
    caller, transferrer, callee = phones["201"], phones["203"], phones["202"]
    caller.dial(f"sip:203@{server.address}")
    transferrer.wait_established()
    caller.wait_established()
    caller.wait_hearing(SECOND_HZ, seconds=0.5)

    mark = caller.received_audio().size
    transferrer.transfer(f"sip:{ATTENDANT}@{server.address}")
    caller.wait_hearing(TOP_HZ, seconds=0.5, since=mark)
    transferrer.wait_closed()  # freed as soon as the menu answered
    wait_for(lambda: server.call_states() == ["attendant"], 5, what="the menu holding the call")

    press(caller, "2")
    callee.wait_established()
    mark = caller.received_audio().size
    callee.wait_hearing(CALLER_HZ, seconds=0.5)
    caller.wait_hearing(FIRST_HZ, seconds=0.5, since=mark)
    hang_up(server, caller, callee)


def test_a_caller_that_vanishes_while_queued_after_the_menu_is_hung_up_after_the_media_timeout(
    make_pbx: Callable[..., Pbx], make_baresip: Callable[..., Baresip], tmp_path: Path
) -> None:
    """A phone that loses power in the operator queue, where a menu sent it: gone after the
    media timeout, not after the queue's own five minutes."""
    server = make_pbx(media_timeout=2, extensions=("201",))
    server.directory.operator_numbers[1] = "9"
    server.add_attendant(ATTENDANT, one_key_menu(tmp_path, "0", MenuAction("operator")))
    caller = make_baresip("201", password=server.secrets["201"], registrar=server.address)
    caller.wait_registered()
    dial_attendant(server, caller)
    caller.wait_hearing(TOP_HZ, seconds=0.3)
    press(caller, "0")
    wait_for(lambda: server.call_states() == ["queued"], 5, what="the call queued")
    with caller.suspended():  # power cut: no RTP, no BYE
        server.wait_no_calls(timeout=8)
    record = server.wait_record()
    assert (record["callee"], record["reason"]) == (ATTENDANT, "media timeout")
