"""The portal's announcements (SPEC E5): upload, record in the browser, speech; play; delete."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from pbx.media import g711, speech
from pbx.models import Announcement, Company, Menu, Multiselection

pytestmark = pytest.mark.django_db


def wav(
    body: bytes, *, tag: int = 1, channels: int = 1, rate: int = 16000, bits: int = 16
) -> bytes:
    """A WAV file built by hand; `body` is the audio as stored."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"data" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


GOOD_WAV = wav(tone(1.5, 16000).astype("<i2").tobytes())
ULAW_WAV = wav(g711.encode_ulaw(tone(2.0, 8000)), tag=7, rate=8000, bits=8)
NOISE = bytes(range(256)) * 125  # 32000 bytes that are not silence


@pytest.fixture
def folder(settings: object, tmp_path: Path) -> Path:
    """Announcements go to a folder of the test, created by the first upload."""
    path = tmp_path / "var" / "announcements"
    settings.CENTRALINO_ANNOUNCEMENTS_DIR = path  # type: ignore[attr-defined]
    return path


@pytest.fixture
def admin(carol: User) -> Client:
    client = Client(headers={"accept-language": "en"})
    client.force_login(carol)
    return client


def upload(client: Client, data: bytes, name: str = "Welcome", file_name: str = "a.wav") -> Any:
    return client.post(
        reverse("manage:announcement-upload"),
        {"upload-name": name, "upload-file": SimpleUploadedFile(file_name, data)},
    )


def stored_files(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.exists() else []


URLS = [
    ("manage:announcements", {}),
    ("manage:announcement-upload", {}),
    ("manage:announcement-record", {}),
    ("manage:announcement-speech", {}),
    ("manage:announcement-delete", {"pk": 1}),
    ("manage:announcement-audio", {"pk": 1}),
]


@pytest.mark.parametrize(("name", "kwargs"), URLS)
@pytest.mark.parametrize("who", ["alice", "bob"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_operators_and_end_users_get_403_everywhere(
    client: Client, request: pytest.FixtureRequest, who: str, name: str, kwargs: dict, method: str
) -> None:
    client.force_login(request.getfixturevalue(who))

    response = getattr(client, method)(reverse(name, kwargs=kwargs))

    assert response.status_code == 403


def test_the_page_renders_with_its_three_ways_to_add(admin: Client, folder: Path) -> None:
    page = admin.get(reverse("manage:announcements"))

    assert page.status_code == 200
    html = page.content.decode()
    for text in (
        "Upload a WAV file",
        "Record in the browser",
        "Generate from text",
        'role="timer"',
    ):
        assert text in html
    assert 'aria-label="Record from the microphone"' in html
    assert "js/recorder.js" in html


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"ID3\x04\x00" + NOISE, "an MP3 file"),
        (b"\x89PNG\r\n\x1a\n" + NOISE, "a PNG image"),
        (b"Hello, this is not audio at all.\n", "a text file, not a WAV file"),
        (wav(NOISE * 2, channels=2, rate=44100), "WAV file in stereo 44.1 kHz 16-bit PCM"),
        (wav(NOISE, rate=8000), "WAV file in mono 8 kHz 16-bit PCM"),
        (GOOD_WAV[:2000], "a truncated WAV file"),
        (wav(bytes(32000)), "no audio: the file holds 1 s of silence"),
        (wav(b""), "no audio"),
        (GOOD_WAV + bytes(10 * 1024 * 1024), "too large"),
    ],
    ids=["mp3", "png", "text", "stereo-44k", "pcm-8k", "truncated", "silence", "empty-data", "big"],
)
def test_a_bad_file_is_refused_with_what_it_is_and_nothing_is_stored(
    admin: Client, folder: Path, data: bytes, words: str
) -> None:
    response = upload(admin, data)

    assert response.status_code == 400
    assert words in response.content.decode()
    assert "File refused" in response.content.decode()
    assert not Announcement.objects.exists()
    assert stored_files(folder) == []


def test_an_empty_file_is_refused(admin: Client, folder: Path) -> None:
    response = upload(admin, b"")

    assert response.status_code == 400
    assert "The submitted file is empty." in response.content.decode()
    assert not Announcement.objects.exists()
    assert stored_files(folder) == []


def test_a_good_file_is_stored_as_uploaded_and_playable(admin: Client, folder: Path) -> None:
    response = upload(admin, GOOD_WAV, name="Benvenuto")

    assert response.status_code == 302
    announcement = Announcement.objects.get()
    assert (announcement.name, announcement.source, announcement.encoding) == (
        "Benvenuto",
        "upload",
        "pcm16k",
    )
    assert announcement.duration == pytest.approx(1.5)
    assert stored_files(folder) == [announcement.path]
    assert announcement.path.read_bytes() == GOOD_WAV
    audio = admin.get(reverse("manage:announcement-audio", args=[announcement.pk]))
    assert audio.status_code == 200
    assert audio["Content-Type"] == "audio/wav"
    assert b"".join(audio.streaming_content) == GOOD_WAV
    page = admin.get(reverse("manage:announcements")).content.decode()
    assert 'aria-label="Listen to Benvenuto"' in page
    assert reverse("manage:announcement-audio", args=[announcement.pk]) in page


def test_g711_is_stored_in_its_own_encoding(admin: Client, folder: Path) -> None:
    upload(admin, ULAW_WAV)

    announcement = Announcement.objects.get()
    assert announcement.encoding == "ulaw8k"
    assert announcement.duration == pytest.approx(2.0)


def test_a_name_is_unique_in_the_company(admin: Client, folder: Path) -> None:
    upload(admin, GOOD_WAV, name="Welcome")

    response = upload(admin, GOOD_WAV, name="Welcome")

    assert response.status_code == 400
    assert "Another announcement is already called “Welcome”." in response.content.decode()
    assert Announcement.objects.count() == 1
    assert len(stored_files(folder)) == 1


def test_another_companys_announcement_is_not_found(admin: Client, folder: Path) -> None:
    other = Company.objects.create(name="Other S.r.l.")
    folder.mkdir(parents=True)
    theirs = Announcement.objects.create(
        company=other, name="Theirs", source="upload", file_name="x.wav", encoding="pcm16k"
    )
    theirs.path.write_bytes(GOOD_WAV)

    assert admin.get(reverse("manage:announcement-audio", args=[theirs.pk])).status_code == 404
    assert admin.post(reverse("manage:announcement-delete", args=[theirs.pk])).status_code == 404
    assert theirs.path.exists()


def test_a_browser_recording_is_checked_and_stored(admin: Client, folder: Path) -> None:
    response = admin.post(
        reverse("manage:announcement-record"),
        {"record-name": "Recorded", "record-file": SimpleUploadedFile("recording.wav", GOOD_WAV)},
    )

    assert response.status_code == 201
    assert response.json() == {"redirect": reverse("manage:announcements")}
    announcement = Announcement.objects.get()
    assert (announcement.source, announcement.encoding) == ("browser", "pcm16k")
    assert announcement.path.read_bytes() == GOOD_WAV


def test_a_bad_browser_recording_is_refused_in_json(admin: Client, folder: Path) -> None:
    response = admin.post(
        reverse("manage:announcement-record"),
        {"record-name": "Recorded", "record-file": SimpleUploadedFile("r.wav", wav(bytes(3200)))},
    )

    assert response.status_code == 400
    assert "no audio" in " ".join(response.json()["errors"])
    assert not Announcement.objects.exists()
    assert stored_files(folder) == []


@pytest.mark.skipif(not speech.available(), reason="needs espeak-ng (apt install espeak-ng)")
def test_speech_makes_a_16k_announcement_and_keeps_the_text(admin: Client, folder: Path) -> None:
    response = admin.post(
        reverse("manage:announcement-speech"),
        {
            "speech-name": "Orari",
            "speech-text": "Buongiorno, premete uno.",
            "speech-language": "it",
        },
    )

    assert response.status_code == 302
    announcement = Announcement.objects.get()
    assert (announcement.source, announcement.encoding) == ("speech", "pcm16k")
    assert announcement.text == "Buongiorno, premete uno."
    assert announcement.duration > 0.5
    assert announcement.path.read_bytes()[:4] == b"RIFF"


def test_a_speech_failure_is_a_form_error(
    admin: Client, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(text: str, language: str) -> bytes:
        raise speech.SpeechError("espeak-ng is not installed: apt-get install espeak-ng")

    monkeypatch.setattr(speech, "synthesise", broken)

    response = admin.post(
        reverse("manage:announcement-speech"),
        {"speech-name": "Orari", "speech-text": "Buongiorno.", "speech-language": "it"},
    )

    assert response.status_code == 400
    assert "espeak-ng is not installed" in response.content.decode()
    assert not Announcement.objects.exists()
    assert stored_files(folder) == []


def test_an_announcement_in_use_is_not_deleted_and_the_menus_are_named(
    admin: Client, folder: Path, company: Company
) -> None:
    upload(admin, GOOD_WAV, name="Welcome")
    announcement = Announcement.objects.get()
    reception = Multiselection.objects.create(company=company, number="800", name="Reception")
    Menu.objects.create(multiselection=reception, name="Day", announcement=announcement)
    Menu.objects.create(multiselection=reception, name="Night", announcement=announcement)
    url = reverse("manage:announcement-delete", args=[announcement.pk])

    confirm = admin.get(url).content.decode()
    response = admin.post(url, follow=True)

    for page in (confirm, response.content.decode()):
        assert "the menus “Day” (800 Reception), “Night” (800 Reception) play it" in page
    assert Announcement.objects.filter(pk=announcement.pk).exists()
    assert announcement.path.exists()


def test_an_unused_announcement_is_deleted_with_its_file(
    admin: Client, folder: Path, django_capture_on_commit_callbacks: object
) -> None:
    upload(admin, GOOD_WAV)
    announcement = Announcement.objects.get()

    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        response = admin.post(reverse("manage:announcement-delete", args=[announcement.pk]))

    assert response.status_code == 302
    assert not Announcement.objects.exists()
    assert stored_files(folder) == []


def test_the_list_says_which_menus_use_an_announcement(
    admin: Client, folder: Path, company: Company
) -> None:
    upload(admin, GOOD_WAV, name="Welcome")
    reception = Multiselection.objects.create(company=company, number="800", name="Reception")
    Menu.objects.create(
        multiselection=reception, name="Day", announcement=Announcement.objects.get()
    )

    page = admin.get(reverse("manage:announcements")).content.decode()

    assert ">Day</a>" in page
    assert "16-bit PCM, 16 kHz" in page
    assert "1.5 s" in page
