"""Voicemail in the engine (pbx/engine/voicemail.py, voicemail_menu.py): every way a call goes
unanswered leads to the extension's mailbox when it is on; the caller hears the greeting and
a beep and is recorded until # or hanging up or the longest message; what a crash left is
recovered; the mailbox's owner listens by phone with the PIN.

The office of tests/unit/fakes with voicemail in a temporary folder; each extension has a
mailbox with PIN 1234 unless a test says otherwise. The fake speech makes each sentence a one
second tone and lists what was said; the fake endpoint records what the test makes a phone
say (`speak`).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pbx.engine.call import CallState
from pbx.engine.directory import AttendantInfo, HuntGroupInfo, MenuAction, MenuInfo
from pbx.engine.events import MailboxChanged
from pbx.engine.schedule import Period
from pbx.engine.services import LeftMessage, StoredMessage
from pbx.engine.voice_prompts import BEEP, PAUSE, Sentences, SpokenPrompts
from pbx.media.recorder import WavRecorder
from pbx.media.speech import SpeechError
from pbx.media.tone import dominant_frequency, sine
from pbx.media.wav import encode_wav_pcm, parse_wav, write_pcm8k
from tests.unit.fakes.directory import COMPANY, extension
from tests.unit.fakes.media import inline
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.phones import Dialled, Phone

PIN = "1234"
SECONDS = 1.0  # each sentence of the fake speech
GREETING = SECONDS + (len(PAUSE) + len(BEEP)) / 8000  # the spoken greeting, then the beep
RING = 20  # ExtensionInfo.no_answer_timeout's default
say = Sentences("it")


def voicemail_office(tmp_path: Path, *overrides: Any, **mailbox: Any) -> Pbx:
    pbx = office(*overrides, voicemail_dir=tmp_path / "voicemail")
    for number in ("201", "202", "203", "204"):
        pbx.voicemail_store.add(COMPANY, number, pin=PIN, **mailbox)
    return pbx


def greeting_of(number: str) -> str:
    return say("greeting", number=" ".join(number))


def changes(pbx: Pbx) -> list[str]:
    """The mailboxes whose counts changed, in order (MailboxChanged events)."""
    return [e.number for e in pbx.log if isinstance(e, MailboxChanged)]


def hung_up(pbx: Pbx, phone: Phone, call: Dialled) -> bool:
    """The PBX hung up `phone`'s answered call: BYE, the call ended, nothing left running."""
    assert pbx.voicemail is not None and pbx.voicemail_menu is not None
    return (
        phone.got[-1:] == ["BYE"]
        and pbx.call_states(call.call_id)[-1] is CallState.ENDED
        and pbx.voicemail.deposits == {}
        and pbx.voicemail_menu.sessions == {}
        and pbx.clock.next_due() is None
        and pbx.ports.open == []
    )


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


async def unanswered(tmp_path: Path, **mailbox: Any) -> tuple[Pbx, Phone, Dialled]:
    """Alice called Bob, whose desk phone rang out: she hears his mailbox's greeting."""
    pbx = voicemail_office(tmp_path, **mailbox)
    alice = pbx.phone("alice")
    pbx.phone("bob-desk")
    call = await alice.dial("202")
    await pbx.advance(RING)
    return pbx, alice, call


async def recording(tmp_path: Path) -> tuple[Pbx, Phone, Dialled]:
    """...and she heard the beep: she is being recorded."""
    pbx, alice, call = await unanswered(tmp_path)
    await pbx.advance(GREETING)
    assert pbx.media(alice).recordings
    return pbx, alice, call


# --- every unanswered call reaches the mailbox ---------------------------------------------------


async def test_no_answer_is_answered_by_the_mailbox_with_the_spoken_greeting(
    tmp_path: Path,
) -> None:
    pbx, alice, call = await unanswered(tmp_path)
    assert call.statuses[-1] == 200
    assert pbx.call(call.call_id).state is CallState.ANSWERED
    assert pbx.speech.said == [greeting_of("202")]
    assert not pbx.media(alice).recordings  # not over the greeting
    await pbx.advance(GREETING)
    assert len(pbx.media(alice).recordings) == 1
    assert pbx.record(call.call_id)["answered_by"] == "voicemail"


async def test_the_hash_key_ends_the_message_which_is_kept_with_the_caller_and_thanked(
    tmp_path: Path,
) -> None:
    pbx, alice, call = await recording(tmp_path)
    pbx.media(alice).speak(3.0, frequency=440)
    pbx.media(alice).press("#")
    await pbx.settle()

    [left] = pbx.voicemail_store.left
    assert (left.company_id, left.number, left.caller, left.caller_name) == (
        COMPANY,
        "202",
        "201",
        "Alice",
    )
    assert (left.duration, left.call_id) == (3.0, call.call_id)
    assert left.received_at == datetime(2026, 3, 2, 8, 0, 21, 700000, tzinfo=UTC)
    [kept] = pbx.voicemail_store.kept[(COMPANY, "202")]
    audio = parse_wav(Path(kept.path).read_bytes())
    assert (audio.rate, len(audio.samples)) == (8000, 24000)
    assert dominant_frequency(audio.samples) == pytest.approx(440, abs=5)
    assert files(tmp_path / "voicemail") == [left.file_name]  # moved, its JSON gone
    assert changes(pbx) == ["202"]

    assert pbx.speech.said[-1] == say("saved")
    await pbx.advance(SECONDS)
    assert hung_up(pbx, alice, call)
    assert pbx.ended(call.call_id).reason == "voicemail recorded"
    assert pbx.record(call.call_id)["disposition"] == "answered"


async def test_hanging_up_ends_the_message_which_is_kept(tmp_path: Path) -> None:
    pbx, alice, call = await recording(tmp_path)
    pbx.media(alice).speak(4.0)
    await alice.hang_up()
    [left] = pbx.voicemail_store.left
    assert left.duration == 4.0
    assert changes(pbx) == ["202"]
    assert pbx.voicemail is not None and pbx.voicemail.deposits == {}
    assert pbx.clock.next_due() is None


async def test_a_message_stops_at_the_longest_allowed_and_the_caller_is_thanked(
    tmp_path: Path,
) -> None:
    pbx, alice, call = await recording(tmp_path)
    pbx.media(alice).speak(185)
    await pbx.settle()
    [left] = pbx.voicemail_store.left
    assert left.duration == 180
    await pbx.advance(SECONDS)
    assert hung_up(pbx, alice, call)


async def test_a_message_under_a_second_is_dropped(tmp_path: Path) -> None:
    pbx, alice, call = await recording(tmp_path)
    pbx.media(alice).speak(0.5)
    pbx.media(alice).press("#")
    await pbx.settle()
    assert pbx.voicemail_store.left == [] and changes(pbx) == []
    assert files(tmp_path / "voicemail") == []
    assert pbx.speech.said[-1] == say("goodbye")
    await pbx.advance(SECONDS)
    assert hung_up(pbx, alice, call)


async def test_hanging_up_during_the_greeting_leaves_nothing(tmp_path: Path) -> None:
    pbx, alice, call = await unanswered(tmp_path)
    pbx.media(alice).press("#")  # keys over the greeting mean nothing
    await alice.hang_up()
    await pbx.advance(5)
    assert pbx.voicemail_store.left == []
    assert files(tmp_path / "voicemail") == []
    assert pbx.clock.next_due() is None


async def test_busy_is_answered_by_the_mailbox(tmp_path: Path) -> None:
    pbx = voicemail_office(tmp_path)
    alice, bob = pbx.phone("alice"), pbx.phone("bob-desk")
    call = await alice.dial("202")
    await bob.refuse(486)
    assert call.statuses[-1] == 200
    assert pbx.speech.said == [greeting_of("202")]


async def test_a_busy_line_is_answered_by_the_mailbox_without_ringing(tmp_path: Path) -> None:
    pbx = voicemail_office(tmp_path)
    alice, bob, carol = pbx.phone("alice"), pbx.phone("bob-desk"), pbx.phone("carol")
    await carol.dial("202")
    await bob.answer()
    call = await alice.dial("202")
    assert len(bob.invites) == 1  # only Carol's call rang
    assert call.statuses[-1] == 200
    assert pbx.speech.said == [greeting_of("202")]


async def test_do_not_disturb_is_answered_by_the_mailbox_at_once(tmp_path: Path) -> None:
    pbx = voicemail_office(tmp_path, extension("202", "Bob", "bob-desk", do_not_disturb=True))
    alice, bob = pbx.phone("alice"), pbx.phone("bob-desk")
    call = await alice.dial("202")
    assert bob.invites == []
    assert call.statuses == [100, 200]
    assert pbx.speech.said == [greeting_of("202")]


async def test_an_extension_without_a_registered_phone_is_answered_by_its_mailbox(
    tmp_path: Path,
) -> None:
    pbx = voicemail_office(tmp_path)
    alice = pbx.phone("alice")
    call = await alice.dial("203")  # Carol's phone never registered
    assert call.statuses == [100, 200]
    assert pbx.speech.said == [greeting_of("203")]


async def test_a_menu_key_leads_to_the_mailbox_it_names_without_a_second_answer(
    tmp_path: Path,
) -> None:
    pbx = voicemail_office(tmp_path)
    welcome = MenuInfo(1, "welcome", "welcome.wav", keys=(("6", MenuAction("voicemail", "202")),))
    week = tuple(Period(day, 0, 24 * 60, 1) for day in range(7))
    pbx.directory.attendants[(COMPANY, "800")] = AttendantInfo(
        COMPANY, "800", "Reception", periods=week, menus=(welcome,)
    )
    pbx.prompts.add("welcome.wav")
    alice = pbx.phone("alice")
    call = await alice.dial("800")
    pbx.media(alice).press("6")
    await pbx.settle()
    assert call.statuses == [100, 200]  # answered once, by the menu
    assert pbx.speech.said == [greeting_of("202")]
    assert pbx.call(call.call_id).state is CallState.ANSWERED
    # Its record says the voicemail took it (the console's missed calls list it so).
    assert pbx.record(call.call_id)["answered_by"] == "voicemail"
    await pbx.advance(GREETING)
    pbx.media(alice).speak(2)
    await alice.hang_up()
    assert [m.number for m in pbx.voicemail_store.left] == ["202"]


async def test_a_hunt_group_falling_back_to_voicemail_reaches_that_mailbox(
    tmp_path: Path,
) -> None:
    pbx = voicemail_office(tmp_path)
    pbx.directory.hunt_groups[(COMPANY, "600")] = HuntGroupInfo(
        COMPANY,
        "600",
        "Sales",
        "linear",
        (("203", 10),),
        fallback="voicemail",
        fallback_number="204",
    )
    alice = pbx.phone("alice")
    call = await alice.dial("600")  # Carol, its only member, has no phone registered
    assert call.statuses == [100, 200]
    assert pbx.speech.said == [greeting_of("204")]


async def test_a_hunt_group_without_a_voicemail_fallback_keeps_its_480(tmp_path: Path) -> None:
    pbx = voicemail_office(tmp_path)
    pbx.directory.hunt_groups[(COMPANY, "600")] = HuntGroupInfo(
        COMPANY, "600", "Sales", "linear", (("203", 10),)
    )
    call = await pbx.phone("alice").dial("600")
    assert call.statuses == [100, 480]


@pytest.mark.parametrize(("refusal", "status"), [(None, 480), (486, 486)])
async def test_a_mailbox_turned_off_keeps_the_480_or_486(
    tmp_path: Path, refusal: int | None, status: int
) -> None:
    pbx = voicemail_office(tmp_path, enabled=False)
    alice, bob = pbx.phone("alice"), pbx.phone("bob-desk")
    call = await alice.dial("202")
    if refusal is None:
        await pbx.advance(RING)
    else:
        await bob.refuse(refusal)
    assert call.statuses[-1] == status
    assert pbx.speech.said == []
    assert pbx.ports.open == [] and pbx.clock.next_due() is None


async def test_an_extension_without_a_mailbox_keeps_the_480(tmp_path: Path) -> None:
    pbx = office(voicemail_dir=tmp_path / "voicemail")  # no mailbox at all
    call = await pbx.phone("alice").dial("203")
    assert call.statuses == [100, 480]


async def test_the_owners_greeting_is_played_instead_of_the_spoken_one(tmp_path: Path) -> None:
    greeting = tmp_path / "greeting.wav"
    write_pcm8k(greeting, sine(700, 2.0))
    pbx = voicemail_office(tmp_path, greeting=str(greeting))
    alice = pbx.phone("alice")
    await alice.dial("203")
    assert pbx.speech.said == []
    [played] = pbx.media(alice).played
    assert len(played) == 16000 + len(PAUSE) + len(BEEP)
    assert dominant_frequency(played[:16000]) == pytest.approx(700, abs=5)


async def test_without_speech_the_greeting_is_the_beep_alone(tmp_path: Path) -> None:
    pbx = voicemail_office(tmp_path)
    pbx.speech.mute()
    alice = pbx.phone("alice")
    await alice.dial("203")
    [played] = pbx.media(alice).played
    assert np.array_equal(played, BEEP)
    await pbx.advance(len(BEEP) / 8000)
    assert pbx.media(alice).recordings


async def test_below_the_free_space_floor_the_caller_hears_the_mailbox_is_full(
    tmp_path: Path,
) -> None:
    pbx = voicemail_office(tmp_path)
    assert pbx.voicemail is not None
    pbx.voicemail.min_free_mb = 10**12  # more than any disk has
    alice = pbx.phone("alice")
    call = await alice.dial("203")
    assert call.statuses == [100, 200]
    assert pbx.speech.said == [say("full")]
    await pbx.advance(SECONDS)
    assert hung_up(pbx, alice, call)
    assert pbx.ended(call.call_id).reason == "voicemail full"
    assert pbx.voicemail_store.left == [] and files(tmp_path / "voicemail") == []


async def test_a_transfer_to_an_unanswered_extension_does_not_reach_its_mailbox(
    tmp_path: Path,
) -> None:
    pbx = voicemail_office(tmp_path)
    alice, bob = pbx.phone("alice"), pbx.phone("bob-desk")
    call = await alice.dial("202")
    await bob.answer()
    await bob.refer("203")  # Carol has no phone: the transfer fails, Alice stays with Bob
    assert pbx.speech.said == []
    assert pbx.call(call.call_id).state is CallState.ANSWERED


# --- crash safety ----------------------------------------------------------------------------


async def test_the_json_saying_whose_message_it_is_is_written_before_recording(
    tmp_path: Path,
) -> None:
    pbx, alice, call = await recording(tmp_path)
    pending = tmp_path / "voicemail" / "pending" / "node1"
    [wav] = pending.glob("*.wav")
    about = json.loads(wav.with_suffix(".json").read_text())
    assert about == {
        "company_id": COMPANY,
        "number": "202",
        "caller": "201",
        "caller_name": "Alice",
        "call_id": call.call_id,
        "received_at": "2026-03-02T08:00:21.700000+00:00",
        "file_name": wav.name,
    }


def left_by_a_crash(folder: Path, seconds: float, *, name: str = "a" * 32) -> Path:
    """What a node killed mid-recording leaves: the JSON, and a WAV flushed as it went."""
    pending = folder / "pending" / "node1"
    pending.mkdir(parents=True)
    about = {
        "company_id": COMPANY,
        "number": "203",
        "caller": "0612345678",
        "caller_name": "",
        "call_id": "lost-call",
        "received_at": "2026-03-01T10:00:00+00:00",
        "file_name": f"{name}.wav",
    }
    (pending / f"{name}.json").write_text(json.dumps(about))
    with (pending / f"{name}.wav").open("wb") as out:  # never closed by the recorder
        WavRecorder(out).write_samples(sine(440, seconds))
    return pending


async def test_recovery_turns_what_a_crash_left_into_a_message(tmp_path: Path) -> None:
    pbx = voicemail_office(tmp_path)
    folder = tmp_path / "voicemail"
    left_by_a_crash(folder, 2.0)
    assert pbx.voicemail is not None
    assert await pbx.voicemail.recover() == 1
    [left] = pbx.voicemail_store.left
    assert (left.number, left.caller, left.call_id, left.duration) == (
        "203",
        "0612345678",
        "lost-call",
        2.0,
    )
    assert left.received_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert files(folder) == ["a" * 32 + ".wav"]
    samples = parse_wav((folder / left.file_name).read_bytes()).samples
    assert dominant_frequency(samples) == pytest.approx(440, abs=5)
    assert changes(pbx) == ["203"]


async def test_recovery_keeps_a_message_moved_just_before_the_crash_once(tmp_path: Path) -> None:
    pbx = voicemail_office(tmp_path)
    folder = tmp_path / "voicemail"
    pending = left_by_a_crash(folder, 2.0)
    (pending / ("a" * 32 + ".wav")).rename(folder / ("a" * 32 + ".wav"))  # no row yet
    assert pbx.voicemail is not None
    assert await pbx.voicemail.recover() == 1
    assert len(pbx.voicemail_store.kept[(COMPANY, "203")]) == 1
    assert files(folder) == ["a" * 32 + ".wav"]


async def test_recovery_drops_a_recording_under_a_second(tmp_path: Path) -> None:
    pbx = voicemail_office(tmp_path)
    left_by_a_crash(tmp_path / "voicemail", 0.4)
    assert pbx.voicemail is not None
    assert await pbx.voicemail.recover() == 0
    assert files(tmp_path / "voicemail") == []


async def test_recovery_leaves_an_unreadable_json_where_it_is_and_goes_on(tmp_path: Path) -> None:
    pbx = voicemail_office(tmp_path)
    pending = left_by_a_crash(tmp_path / "voicemail", 2.0)
    (pending / "broken.json").write_text('{"file_name": "../../etc/passwd"')
    assert pbx.voicemail is not None
    assert await pbx.voicemail.recover() == 1
    assert (pending / "broken.json").exists()


def failing_for_a_while(pbx: Pbx) -> list[str]:
    """The store fails (the database is away) until the test clears the returned list."""
    outage = ["database down"]
    saved = pbx.voicemail_store.saved

    async def maybe(message: LeftMessage) -> bool:
        if outage:
            raise RuntimeError(outage[0])
        return await saved(message)

    pbx.voicemail_store.saved = maybe  # type: ignore[method-assign]
    return outage


async def test_a_store_that_fails_keeps_the_files_and_is_asked_again_until_it_takes_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pbx, alice, call = await recording(tmp_path)
    outage = failing_for_a_while(pbx)
    pbx.media(alice).speak(2)
    await alice.hang_up()
    pending = tmp_path / "voicemail" / "pending" / "node1"
    assert len(list(pending.glob("*.wav"))) == 1 and len(list(pending.glob("*.json"))) == 1
    for pause in (1, 2, 5, 10, 30, 60, 60):  # a long outage: asked again every minute
        await pbx.advance(pause)
    assert pbx.voicemail_store.left == [] and changes(pbx) == []
    [line] = [r.getMessage() for r in caplog.records if "not stored yet" in r.getMessage()]
    assert "database down" in line and str(pending) in line  # said once, not at each try

    outage.clear()
    await pbx.advance(60)

    [left] = pbx.voicemail_store.left
    assert left.number == "202" and left.duration == pytest.approx(2, abs=0.1)
    assert list(pending.iterdir()) == []
    assert changes(pbx) == ["202"]
    assert pbx.clock.next_due() is None


async def test_a_stop_during_the_outage_leaves_the_files_for_the_next_start(
    tmp_path: Path,
) -> None:
    pbx, alice, call = await recording(tmp_path)
    failing_for_a_while(pbx)
    pbx.media(alice).speak(2)
    await alice.hang_up()
    assert pbx.voicemail is not None
    await pbx.voicemail.saved_all(timeout=0.05)
    pbx.tasks.cancel_all()
    await pbx.settle()
    pending = tmp_path / "voicemail" / "pending" / "node1"
    assert len(list(pending.glob("*.wav"))) == 1 and len(list(pending.glob("*.json"))) == 1


async def test_recovery_while_the_store_fails_keeps_the_message_once_it_answers(
    tmp_path: Path,
) -> None:
    pbx = voicemail_office(tmp_path)
    left_by_a_crash(tmp_path / "voicemail", 2.0)
    outage = failing_for_a_while(pbx)
    assert pbx.voicemail is not None
    assert await pbx.voicemail.recover() == 0  # the start goes on; the message waits
    await pbx.settle()
    outage.clear()
    await pbx.advance(1)
    [left] = pbx.voicemail_store.left
    assert left.call_id == "lost-call"
    assert changes(pbx) == ["203"]


# --- listening by phone ----------------------------------------------------------------------

RECEIVED = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)  # 09:15 in Rome


def message(tmp_path: Path, message_id: int, hz: float, **fields: Any) -> StoredMessage:
    path = tmp_path / f"message-{message_id}.wav"
    write_pcm8k(path, sine(hz, 2.0))
    values: dict[str, Any] = dict(
        caller="203", caller_name="Carol", received_at=RECEIVED, duration=2.0, heard=False
    )
    values.update(fields)
    return StoredMessage(message_id, path=str(path), **values)


def header(caller: str = "2 0 3, Carol", *, new: bool = True, when: str = "") -> str:
    return say(
        "header_new" if new else "header_heard",
        date=when or "lunedì 2 marzo alle 9 e 15",
        caller=caller,
    )


async def logged_in(tmp_path: Path, *messages: StoredMessage) -> tuple[Pbx, Phone, Dialled]:
    """Alice dialled *98 and typed her PIN: the summary is being said."""
    pbx = voicemail_office(tmp_path)
    for m in messages:
        pbx.voicemail_store.put(COMPANY, "201", m)
    alice = pbx.phone("alice")
    call = await alice.dial("*98")
    assert call.statuses == [100, 200]
    await press(pbx, alice, *PIN, "#")
    return pbx, alice, call


async def press(pbx: Pbx, phone: Phone, *digits: str) -> None:
    for digit in digits:
        pbx.media(phone).press(digit)
        await pbx.settle()


def heard(pbx: Pbx, number: str = "201") -> dict[int, bool]:
    return {m.id: m.heard for m in pbx.voicemail_store.kept[(COMPANY, number)]}


async def test_the_feature_code_asks_the_pin_and_plays_new_messages_first_marking_them_heard(
    tmp_path: Path,
) -> None:
    old = message(tmp_path, 1, 600, heard=True, caller="0612345678", caller_name="")
    new = message(tmp_path, 2, 800, received_at=datetime(2026, 2, 27, 17, 0, tzinfo=UTC))
    pbx, alice, call = await logged_in(tmp_path, old, new)
    summary = say("summary", new="un messaggio nuovo", heard="un messaggio già ascoltato")
    assert pbx.speech.said == [say("pin", number="2 0 1"), summary]
    assert heard(pbx) == {1: True, 2: False}

    await pbx.advance(SECONDS)  # the summary
    assert pbx.speech.said[-1] == header(when="venerdì 27 febbraio alle 18")
    assert heard(pbx) == {1: True, 2: True}
    assert changes(pbx) == ["201"]
    playing = pbx.media(alice).played[-1]
    assert len(playing) == 8000 + len(PAUSE) + 16000  # when and who, then the message
    assert dominant_frequency(playing[-16000:]) == pytest.approx(800, abs=5)

    await pbx.advance(SECONDS + 0.3 + 2.0)  # played to its end: the options
    assert pbx.speech.said[-1] == say("options")
    await press(pbx, alice, "9")
    assert pbx.speech.said[-1] == header("0 6 1 2 3 4 5 6 7 8", new=False)
    assert dominant_frequency(pbx.media(alice).played[-1][-16000:]) == pytest.approx(600, abs=5)
    await press(pbx, alice, "#")  # the next one too
    assert pbx.speech.said[-1] == say("end")
    await pbx.advance(SECONDS)
    assert hung_up(pbx, alice, call)
    assert pbx.record(call.call_id)["answered_by"] == "voicemail"


async def test_one_replays_star_goes_back_and_seven_deletes(tmp_path: Path) -> None:
    first, second = message(tmp_path, 1, 600), message(tmp_path, 2, 800, heard=True)
    pbx, alice, call = await logged_in(tmp_path, first, second)
    await press(pbx, alice, "0")  # a key skips the summary
    assert pbx.speech.said[-1] == header()
    await press(pbx, alice, "1")  # again
    assert pbx.speech.said[-2:] == [header(), header(new=False)]
    await press(pbx, alice, "9")
    assert pbx.speech.said[-1] == header(new=False)
    await press(pbx, alice, "*")  # back to the first
    await press(pbx, alice, "*")  # there is none before it
    assert pbx.speech.said[-1] == say("first")
    await pbx.advance(SECONDS)
    assert pbx.speech.said[-1] == header(new=False)
    await press(pbx, alice, "7")
    assert pbx.speech.said[-1] == say("deleted")
    assert heard(pbx) == {2: True}
    assert not Path(first.path).exists()
    assert changes(pbx) == ["201", "201"]  # heard, deleted
    await pbx.advance(SECONDS)  # "deleted", then the message that was second
    assert pbx.speech.said[-1] == header(new=False)
    await press(pbx, alice, "7")
    await pbx.advance(SECONDS)
    assert pbx.speech.said[-1] == say("end")
    assert heard(pbx) == {}
    await pbx.advance(SECONDS)
    assert hung_up(pbx, alice, call)


async def test_without_a_key_the_options_are_said_twice_then_goodbye(tmp_path: Path) -> None:
    pbx, alice, call = await logged_in(tmp_path, message(tmp_path, 1, 600))
    await pbx.advance(60)
    assert pbx.speech.said[-4:] == [header(), say("options"), say("options"), say("goodbye")]
    assert hung_up(pbx, alice, call)


async def test_an_empty_mailbox_says_so(tmp_path: Path) -> None:
    pbx, alice, call = await logged_in(tmp_path)
    assert pbx.speech.said[-1] == say("no_messages")
    await pbx.advance(SECONDS)
    assert hung_up(pbx, alice, call)


async def test_three_wrong_pins_end_the_call_and_repeated_ones_lock_the_mailbox(
    tmp_path: Path,
) -> None:
    pbx = voicemail_office(tmp_path)
    alice = pbx.phone("alice")
    first = await alice.dial("*98")
    for pin in ("1111", "2222", "3333"):
        await press(pbx, alice, *pin, "#")
    assert pbx.speech.said[-1] == f"{say('wrong_pin')} {say('goodbye')}"
    await pbx.advance(SECONDS)
    assert hung_up(pbx, alice, first)

    second = await alice.dial("*98")
    await press(pbx, alice, *"4444#")
    await press(pbx, alice, *"5555#")  # the fifth wrong one in a row
    assert pbx.speech.said[-1] == say("locked")
    await pbx.advance(SECONDS)
    assert hung_up(pbx, alice, second)

    third = await alice.dial("*98")
    await press(pbx, alice, *PIN, "#")  # right, but too late
    assert pbx.speech.said[-1] == say("locked")
    await pbx.advance(SECONDS)
    assert hung_up(pbx, alice, third)


async def test_a_pause_ends_the_pin_and_star_starts_it_again(tmp_path: Path) -> None:
    pbx = voicemail_office(tmp_path)
    alice = pbx.phone("alice")
    await alice.dial("*98")
    await press(pbx, alice, "9", "9", "*", *PIN)
    await pbx.advance(8)
    assert pbx.speech.said[-1] == say("no_messages")


async def test_the_code_and_a_number_ask_for_that_mailboxs_pin(tmp_path: Path) -> None:
    pbx = voicemail_office(tmp_path)
    pbx.voicemail_store.put(COMPANY, "203", message(tmp_path, 1, 600))
    alice = pbx.phone("alice")
    await alice.dial("*98203")
    assert pbx.speech.said == [say("pin", number="2 0 3")]
    await press(pbx, alice, *PIN, "#")
    await press(pbx, alice, "0")
    assert pbx.speech.said[-1] == header()
    assert heard(pbx, "203") == {1: True}
    assert changes(pbx) == ["203"]


async def test_a_mailbox_without_a_pin_cannot_be_listened_to_by_phone(tmp_path: Path) -> None:
    pbx = office(voicemail_dir=tmp_path / "voicemail")
    pbx.voicemail_store.add(COMPANY, "201")
    alice = pbx.phone("alice")
    call = await alice.dial("*98")
    assert pbx.speech.said == [say("no_pin")]
    await pbx.advance(SECONDS)
    assert hung_up(pbx, alice, call)


@pytest.mark.parametrize("failing", ["mailbox", "check_pin", "messages"])
async def test_a_store_that_fails_while_listening_is_said_and_the_call_ends(
    tmp_path: Path, failing: str, caplog: pytest.LogCaptureFixture
) -> None:
    pbx = voicemail_office(tmp_path)
    pbx.voicemail_store.put(COMPANY, "201", message(tmp_path, 1, 600))

    async def broken(*args: Any) -> Any:
        raise RuntimeError("the database is away")

    setattr(pbx.voicemail_store, failing, broken)
    alice = pbx.phone("alice")
    call = await alice.dial("*98")
    await press(pbx, alice, *PIN, "#")
    assert pbx.speech.said[-1] == say("unavailable")
    await pbx.advance(SECONDS)
    assert hung_up(pbx, alice, call)
    [line] = [r.getMessage() for r in caplog.records if "cannot be listened" in r.getMessage()]
    assert "voicemail 201" in line and "the database is away" in line


async def test_the_code_with_an_unknown_number_is_not_found(tmp_path: Path) -> None:
    pbx = voicemail_office(tmp_path)
    call = await pbx.phone("alice").dial("*98299")
    assert call.statuses == [100, 404]


async def test_hanging_up_while_listening_stops_everything(tmp_path: Path) -> None:
    pbx, alice, call = await logged_in(tmp_path, message(tmp_path, 1, 600))
    await alice.hang_up()
    await pbx.advance(60)
    assert pbx.voicemail_menu is not None and pbx.voicemail_menu.sessions == {}
    assert pbx.clock.next_due() is None and pbx.ports.open == []


def test_dates_are_said_in_the_companys_time_zone() -> None:
    when = datetime(2026, 7, 14, 22, 5, tzinfo=UTC)
    assert say.date(when, "Europe/Rome") == "mercoledì 15 luglio alle 0 e 5"
    assert Sentences("en").date(when, "Europe/London") == "Tuesday 14 July at 23 05"
    assert say.caller("", "") == "numero sconosciuto"
    assert say.count("new", 0) == "0 messaggi nuovi"


async def test_each_sentence_is_synthesised_once_even_when_asked_at_once() -> None:
    made: list[str] = []

    def synthesise(text: str, language: str) -> bytes:
        made.append(f"{language}: {text}")
        return encode_wav_pcm(sine(300, 0.5, 16000), 16000)

    prompts = SpokenPrompts("it", blocking=inline, synthesise=synthesise)
    first, second = await asyncio.gather(prompts.say("Ciao."), prompts.say("Ciao."))
    assert first is second and first is not None and len(first) == 4000  # 8 kHz
    assert await prompts.say("Ciao.") is first
    assert made == ["it: Ciao."]


async def test_without_espeak_every_sentence_is_none(caplog: pytest.LogCaptureFixture) -> None:
    def synthesise(text: str, language: str) -> bytes:
        raise SpeechError("espeak-ng is not installed")

    prompts = SpokenPrompts("it", blocking=inline, synthesise=synthesise)
    assert await prompts.say("Uno.") is None
    assert await prompts.say("Due.") is None
    assert caplog.text.count("voicemail speaks with tones only") == 1
