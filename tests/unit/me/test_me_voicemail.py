"""/me/voicemail/: messages (F2) played, downloaded, marked, deleted; the mailbox's PIN and
greeting."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.contrib.auth.hashers import check_password
from django.test import Client
from django.utils import timezone

from pbx.media.announcement import encode_pcm16k_wav
from pbx.models import (
    Extension,
    Mailbox,
    VoiceMessage,
)
from tests.unit.me.helpers import ENGLISH, leave_message, page, tone_wav

pytestmark = pytest.mark.django_db

# --- voicemail --------------------------------------------------------------------------------


def test_messages_are_listed_new_first_with_a_named_player(
    me: Client, bob_at_201: Extension, dave_at_202: Extension, voicemail_dir: Path
) -> None:
    now = timezone.now()
    old_heard = leave_message(bob_at_201, voicemail_dir, "0611111111", heard=True, at=now)
    new = leave_message(bob_at_201, voicemail_dir, "0622222222", at=now - timedelta(hours=2))
    leave_message(dave_at_202, voicemail_dir, "0699999999")

    html = page(me, "/me/voicemail/")

    assert html.index("0622222222") < html.index("0611111111")
    assert "0699999999" not in html
    assert f'src="/me/voicemail/{new.pk}/audio/"' in html
    assert f'src="/me/voicemail/{old_heard.pk}/audio/"' in html
    assert 'aria-label="Message from 0622222222, ' in html


def test_a_message_plays_and_downloads_for_its_owner(
    me: Client, bob_at_201: Extension, voicemail_dir: Path
) -> None:
    message = leave_message(bob_at_201, voicemail_dir)

    played = me.get(f"/me/voicemail/{message.pk}/audio/")
    downloaded = me.get(f"/me/voicemail/{message.pk}/download/")

    assert played.status_code == downloaded.status_code == 200
    assert played["Content-Type"] == "audio/wav"
    assert played["Accept-Ranges"] == "bytes"
    assert b"".join(played.streaming_content) == message.path.read_bytes()
    assert downloaded["Content-Disposition"].startswith("attachment; filename=")
    assert "0612345678" in downloaded["Content-Disposition"]


def test_a_message_is_served_by_byte_ranges(
    me: Client, bob_at_201: Extension, voicemail_dir: Path
) -> None:
    message = leave_message(bob_at_201, voicemail_dir)
    data = message.path.read_bytes()

    part = me.get(f"/me/voicemail/{message.pk}/audio/", headers={"range": "bytes=100-199"})
    tail = me.get(f"/me/voicemail/{message.pk}/audio/", headers={"range": "bytes=-44"})
    beyond = me.get(f"/me/voicemail/{message.pk}/audio/", headers={"range": f"bytes={len(data)}-"})

    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert b"".join(part.streaming_content) == data[100:200]
    assert b"".join(tail.streaming_content) == data[-44:]
    assert beyond.status_code == 416


def test_marking_heard_and_new_moves_the_lamps(
    me: Client,
    bob_at_201: Extension,
    voicemail_dir: Path,
    lamps: list[tuple[int, str]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    message = leave_message(bob_at_201, voicemail_dir)

    with django_capture_on_commit_callbacks(execute=True):
        heard = me.post(f"/me/voicemail/{message.pk}/heard/", {"heard": "1"})
    message.refresh_from_db()
    assert heard.status_code == 302
    assert message.heard
    assert "Mark as new" in page(me, "/me/voicemail/")

    with django_capture_on_commit_callbacks(execute=True):
        me.post(f"/me/voicemail/{message.pk}/heard/", {"heard": "0"})
    message.refresh_from_db()
    assert not message.heard
    assert lamps == [(bob_at_201.company_id, "201")] * 2


def test_deleting_a_message_removes_the_row_and_the_file(
    me: Client,
    bob_at_201: Extension,
    voicemail_dir: Path,
    lamps: list[tuple[int, str]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    message = leave_message(bob_at_201, voicemail_dir)
    kept = leave_message(bob_at_201, voicemail_dir, "0622222222")

    with django_capture_on_commit_callbacks(execute=True):
        response = me.post(f"/me/voicemail/{message.pk}/delete/")

    assert response.status_code == 302
    assert not VoiceMessage.objects.filter(pk=message.pk).exists()
    assert not message.path.exists()
    assert kept.path.exists()
    assert lamps == [(bob_at_201.company_id, "201")]


@pytest.mark.parametrize(
    ("method", "action"),
    [("get", "audio"), ("get", "download"), ("post", "delete"), ("post", "heard")],
)
def test_another_users_message_is_not_found(
    me: Client, dave_at_202: Extension, voicemail_dir: Path, method: str, action: str
) -> None:
    theirs = leave_message(dave_at_202, voicemail_dir)

    response = getattr(me, method)(f"/me/voicemail/{theirs.pk}/{action}/")

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert not theirs.heard
    assert theirs.path.exists()


def test_a_message_whose_file_is_gone_is_not_found(
    me: Client, bob_at_201: Extension, voicemail_dir: Path
) -> None:
    message = leave_message(bob_at_201, voicemail_dir)
    message.path.unlink()

    assert me.get(f"/me/voicemail/{message.pk}/audio/").status_code == 404


def test_the_mailbox_settings_are_saved(me: Client, bob_at_201: Extension) -> None:
    response = me.post("/me/voicemail/settings/", {"email_messages": "on"})

    assert response.status_code == 302
    mailbox = Mailbox.objects.get(extension=bob_at_201)
    assert (mailbox.enabled, mailbox.email_messages) == (False, True)
    assert "Your voicemail is off" in page(me, "/me/voicemail/")


def test_a_new_pin_is_stored_hashed(me: Client, bob_at_201: Extension) -> None:
    response = me.post("/me/voicemail/pin/", {"pin": "4821", "pin_again": "4821"})

    assert response.status_code == 302
    mailbox = Mailbox.objects.get(extension=bob_at_201)
    assert mailbox.pin_hash != "4821"
    assert check_password("4821", mailbox.pin_hash)
    assert "from your phone and enter your PIN" in page(me, "/me/voicemail/")


@pytest.mark.parametrize(
    ("pin", "again", "error"),
    [
        ("12a4", "12a4", "digits only"),
        ("123", "123", "at least 4"),
        ("12345678901", "12345678901", "at most 10"),
        ("1234", "4321", "The two PINs differ"),
        ("１２３４", "１２３４", "digits only"),  # full-width digits
    ],
)
def test_a_wrong_pin_is_refused(
    me: Client, bob_at_201: Extension, pin: str, again: str, error: str
) -> None:
    response = me.post("/me/voicemail/pin/", {"pin": pin, "pin_again": again}, headers=ENGLISH)

    assert response.status_code == 400
    assert error in response.content.decode()
    assert not Mailbox.objects.get(extension=bob_at_201).has_pin


def test_a_locked_mailbox_is_shown_on_every_page_and_a_new_pin_unlocks_it(
    me: Client, bob_at_201: Extension
) -> None:
    mailbox = Mailbox.objects.get(extension=bob_at_201)
    mailbox.set_pin("1111")
    mailbox.save()
    for _ in range(5):
        mailbox.try_pin("0000")
    assert mailbox.locked
    rome = mailbox.locked_until.astimezone(ZoneInfo("Europe/Rome"))

    for url in ("/me/", "/me/calls/", "/me/voicemail/"):
        assert f"locked until {rome:%H:%M}" in page(me, url)

    me.post("/me/voicemail/pin/", {"pin": "2468", "pin_again": "2468"})
    mailbox.refresh_from_db()
    assert not mailbox.locked
    assert mailbox.try_pin("2468")
    assert "locked until" not in page(me, "/me/")


def test_a_greeting_is_uploaded_and_replaced(
    me: Client, bob_at_201: Extension, voicemail_dir: Path, django_capture_on_commit_callbacks: Any
) -> None:
    t = np.arange(16000 * 3) / 16000
    wav = encode_pcm16k_wav((8000 * np.sin(2 * np.pi * 500 * t)).astype(np.int16))

    response = me.post("/me/voicemail/greeting/", {"file": _upload("hello.wav", wav)})
    first = Mailbox.objects.get(extension=bob_at_201).greeting_path
    with django_capture_on_commit_callbacks(execute=True):
        me.post("/me/voicemail/greeting/", {"file": _upload("again.wav", wav)})
    second = Mailbox.objects.get(extension=bob_at_201).greeting_path

    assert response.status_code == 302
    assert first is not None and second is not None and first != second
    assert second.parent == voicemail_dir and second.read_bytes() == wav
    assert not first.exists()
    assert "hello" not in second.name
    assert b"".join(me.get("/me/voicemail/greeting/").streaming_content) == wav

    with django_capture_on_commit_callbacks(execute=True):
        me.post("/me/voicemail/greeting/remove/")
    assert Mailbox.objects.get(extension=bob_at_201).greeting_file == ""
    assert list(voicemail_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"ID3\x03\x00\x00\x00" + bytes(200), "an MP3 file"),
        (tone_wav(), "a WAV file in mono 8 kHz 16-bit PCM"),
        (b"hello, this is not audio\n", "a text file"),
    ],
)
def test_a_greeting_in_a_wrong_format_is_refused_and_nothing_is_stored(
    me: Client, bob_at_201: Extension, voicemail_dir: Path, data: bytes, named: str
) -> None:
    response = me.post(
        "/me/voicemail/greeting/", {"file": _upload("greeting.wav", data)}, headers=ENGLISH
    )

    assert response.status_code == 400
    assert named in response.content.decode()
    assert Mailbox.objects.get(extension=bob_at_201).greeting_file == ""
    assert list(voicemail_dir.iterdir()) == []


def _upload(name: str, data: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="audio/wav")
