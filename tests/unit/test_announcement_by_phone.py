"""Recording an announcement by phone (pbx/engine/announcement_recorder.py): an administrator's
phone dials *55, hears a beep, speaks, and presses # or hangs up; the take, a WAV file, goes to
the announcement store (pbx/announcement_store.py makes an Announcement of it, in 16 kHz PCM).

The office of tests/unit/fakes, Alice (201) being an administrator; recordings go to a
temporary folder. The fake endpoint records what the test makes its phone say (`speak`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from pbx.announcement_store import store_recording
from pbx.engine.announcement_recorder import BEEP, SAVED
from pbx.engine.call import CallState
from pbx.engine.routing import Party, Unavailable
from pbx.engine.services import RecordedAnnouncement
from pbx.media.announcement import load_for_playback
from pbx.media.tone import dominant_frequency
from pbx.media.wav import parse_wav, write_pcm8k
from tests.unit.fakes.directory import COMPANY
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.phones import Dialled, Phone

CODE = "*55"


def admin_office(folder: Path) -> Pbx:
    pbx = office(announcements_dir=folder)
    pbx.directory.administrators[COMPANY] = frozenset({"201"})
    return pbx


async def recording(tmp_path: Path) -> tuple[Pbx, Phone, Dialled]:
    """Alice dialled the code and heard the beep: she is being recorded."""
    pbx = admin_office(tmp_path / "announcements")
    alice = pbx.phone("alice")
    call = await alice.dial(CODE)
    await pbx.advance(len(BEEP) / 8000)
    assert pbx.media(alice).recordings
    return pbx, alice, call


def takes(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.wav")) if folder.exists() else []


# --- recording -----------------------------------------------------------------------------------


async def test_an_administrator_dialling_the_code_is_answered_hears_a_beep_and_is_recorded(
    tmp_path: Path,
) -> None:
    pbx = admin_office(tmp_path / "announcements")
    alice = pbx.phone("alice")
    call = await alice.dial(CODE)
    assert call.statuses == [100, 200]
    assert pbx.call_states(call.call_id) == [CallState.ROUTING, CallState.ANSWERED]
    assert pbx.media(alice).played == [BEEP]
    assert not pbx.media(alice).recordings  # what is said over the beep is not kept
    await pbx.advance(len(BEEP) / 8000)
    assert len(pbx.media(alice).recordings) == 1


async def test_the_hash_key_ends_the_take_which_goes_to_the_store_as_a_wav(tmp_path: Path) -> None:
    pbx, alice, call = await recording(tmp_path)
    pbx.media(alice).speak(2.5, frequency=440)
    await pbx.settle()
    pbx.media(alice).press("#")
    await pbx.settle()

    [saved] = pbx.announcements.saved
    assert (saved.company_id, saved.extension, saved.duration) == (COMPANY, "201", 2.5)
    assert Path(saved.path).parent == tmp_path / "announcements"
    audio = parse_wav(Path(saved.path).read_bytes())
    assert (audio.rate, audio.encoding, len(audio.samples)) == (8000, "PCM", 20000)
    assert dominant_frequency(audio.samples) == pytest.approx(440, abs=5)

    assert pbx.media(alice).played == [BEEP, SAVED]  # two beeps: kept
    assert "BYE" not in alice.got
    await pbx.advance(len(SAVED) / 8000)
    assert alice.got == ["BYE"]
    assert pbx.record(call.call_id)["disposition"] == "answered"
    assert pbx.ended(call.call_id).reason == "announcement recorded"
    assert pbx.ports.open == []
    assert pbx.clock.next_due() is None


async def test_hanging_up_ends_the_take_which_goes_to_the_store(tmp_path: Path) -> None:
    pbx, alice, call = await recording(tmp_path)
    pbx.media(alice).speak(4)
    await alice.hang_up()
    [saved] = pbx.announcements.saved
    assert saved.duration == 4
    assert len(parse_wav(Path(saved.path).read_bytes()).samples) == 32000
    assert pbx.recorder_by_phone is not None and pbx.recorder_by_phone.takes == {}


async def test_a_take_stops_at_the_longest_allowed_and_the_caller_is_told_goodbye(
    tmp_path: Path,
) -> None:
    pbx, alice, call = await recording(tmp_path)
    pbx.media(alice).speak(125)
    await pbx.settle()
    [saved] = pbx.announcements.saved
    assert saved.duration == 120
    await pbx.advance(1)
    assert alice.got == ["BYE"]


async def test_a_take_too_short_is_not_kept(tmp_path: Path) -> None:
    pbx, alice, call = await recording(tmp_path)
    pbx.media(alice).speak(0.2)
    pbx.media(alice).press("#")
    await pbx.settle()
    assert pbx.announcements.saved == []
    assert takes(tmp_path / "announcements") == []
    assert alice.got == ["BYE"]
    assert pbx.ended(call.call_id).reason == "announcement not recorded"


async def test_hanging_up_during_the_beep_keeps_nothing(tmp_path: Path) -> None:
    pbx = admin_office(tmp_path / "announcements")
    alice = pbx.phone("alice")
    await alice.dial(CODE)
    await alice.hang_up()
    await pbx.advance(5)
    assert pbx.announcements.saved == []
    assert takes(tmp_path / "announcements") == []
    assert pbx.clock.next_due() is None


async def test_other_keys_do_not_end_the_take(tmp_path: Path) -> None:
    pbx, alice, call = await recording(tmp_path)
    pbx.media(alice).press("5")
    pbx.media(alice).press("*")
    await pbx.settle()
    assert pbx.announcements.saved == []
    assert pbx.call(call.call_id).state is CallState.ANSWERED


async def test_a_folder_that_cannot_be_written_hangs_up_without_a_take(tmp_path: Path) -> None:
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    pbx = admin_office(blocker / "announcements")
    alice = pbx.phone("alice")
    await alice.dial(CODE)
    await pbx.advance(1)
    assert alice.got == ["BYE"]
    assert pbx.announcements.saved == []


# --- who may record ----------------------------------------------------------------------------------


async def test_a_phone_of_another_extension_is_refused_with_403(tmp_path: Path) -> None:
    pbx = admin_office(tmp_path / "announcements")
    call = await pbx.phone("carol").dial(CODE)
    assert call.statuses == [100, 403]
    assert pbx.record(call.call_id)["disposition"] == "failed"
    assert takes(tmp_path / "announcements") == []
    assert pbx.ports.open == []


async def test_an_outside_caller_is_refused_with_403(tmp_path: Path) -> None:
    pbx = admin_office(tmp_path / "announcements")
    route = await pbx.calls.router.route(Party(COMPANY, "201"), CODE)  # no device: not a phone
    assert route == Unavailable("announcements are recorded from a phone", 403)


async def test_a_forwarding_to_the_code_records_nothing(tmp_path: Path) -> None:
    pbx = admin_office(tmp_path / "announcements")
    route = await pbx.calls.router.route(Party(COMPANY, "201", "Alice", "alice"), CODE, 1)
    assert isinstance(route, Unavailable) and route.status == 404


async def test_without_an_announcements_folder_the_code_is_not_a_number() -> None:
    pbx = office()
    pbx.directory.administrators[COMPANY] = frozenset({"201"})
    call = await pbx.phone("alice").dial(CODE)
    assert call.statuses == [100, 404]


# --- the store: an Announcement in 16 kHz PCM --------------------------------------------------------


def a_take(folder: Path, samples: np.ndarray) -> RecordedAnnouncement:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "phone-take.wav"
    write_pcm8k(path, samples)
    return RecordedAnnouncement(str(path), 0, "201", len(samples) / 8000)


@pytest.mark.django_db
def test_the_store_keeps_the_take_as_a_16_khz_announcement(
    tmp_path: Path, settings: object
) -> None:
    from pbx.models import Announcement, AnnouncementSource, Company

    settings.CENTRALINO_ANNOUNCEMENTS_DIR = tmp_path / "announcements"  # type: ignore[attr-defined]
    company = Company.objects.create(name="Acme S.r.l.")
    t = np.arange(24000) / 8000
    spoken = (6000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    recorded = a_take(tmp_path / "announcements", spoken)
    recorded = RecordedAnnouncement(recorded.path, company.id, "201", 3.0)
    when = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)

    first = store_recording(recorded, when)
    assert first is not None
    assert (first.source, first.encoding, first.duration) == (AnnouncementSource.PHONE, "pcm16k", 3)
    assert first.name == "201, 2026-12-02 10:30"  # the company's time, Rome
    assert not Path(recorded.path).exists()
    audio = parse_wav(first.path.read_bytes())
    assert (audio.rate, len(audio.samples)) == (16000, 48000)
    assert dominant_frequency(load_for_playback(first.path)) == pytest.approx(440, abs=5)

    again = a_take(tmp_path / "announcements", spoken)
    second = store_recording(RecordedAnnouncement(again.path, company.id, "201", 3.0), when)
    assert second is not None and second.name == "201, 2026-12-02 10:30 (2)"
    assert Announcement.objects.count() == 2


@pytest.mark.django_db
def test_the_store_refuses_a_take_of_silence_and_deletes_it(
    tmp_path: Path, settings: object
) -> None:
    from pbx.models import Announcement, Company

    settings.CENTRALINO_ANNOUNCEMENTS_DIR = tmp_path / "announcements"  # type: ignore[attr-defined]
    company = Company.objects.create(name="Acme S.r.l.")
    take = a_take(tmp_path / "announcements", np.zeros(16000, dtype=np.int16))
    assert store_recording(RecordedAnnouncement(take.path, company.id, "201", 2.0)) is None
    assert Announcement.objects.count() == 0
    assert takes(tmp_path / "announcements") == []


@pytest.mark.django_db
def test_the_database_directory_knows_the_administrators_extensions() -> None:
    from django.contrib.auth.models import User

    from pbx.config import load_snapshot
    from pbx.models import Company, Extension, Membership, Role

    company = Company.objects.create(name="Acme S.r.l.")
    for number, role in (("201", Role.ADMINISTRATOR), ("202", Role.OPERATOR), ("203", None)):
        ext = Extension.objects.create(company=company, number=number, display_name=number)
        user = User.objects.create_user(f"user{number}")
        if role is not None:
            Membership.objects.create(user=user, company=company, role=role, extension=ext)
    carol = User.objects.create_user("carol")  # an administrator without an extension
    Membership.objects.create(user=carol, company=company, role=Role.ADMINISTRATOR)

    snapshot = load_snapshot(1)
    assert snapshot.administrators == {company.id: frozenset({"201"})}
    assert snapshot.operators == {company.id: frozenset({"202"})}
