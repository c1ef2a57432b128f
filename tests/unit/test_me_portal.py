"""The end-user portal at /me/ (SPEC F1, F2, F4; issue 8): each user reaches their own
extension only, its do-not-disturb and forwarding, phones, call log and voicemail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from pbx.media.announcement import encode_pcm16k_wav
from pbx.media.wav import encode_wav_pcm
from pbx.models import (
    Company,
    ConfigStamp,
    Device,
    Did,
    DidTarget,
    Extension,
    Mailbox,
    Membership,
    Registration,
    Role,
    Trunk,
    VoiceMessage,
)
from pbx.sip.digest import ha1
from selfcare import urls as me_urls
from stats.models import CallRecord, Disposition

pytestmark = pytest.mark.django_db

SECRET = "Bob-old-secret-123456"
ENGLISH = {"accept-language": "en"}


# --- fixtures ---------------------------------------------------------------------------------


def _extension(company: Company, number: str, name: str) -> Extension:
    extension = Extension.objects.create(company=company, number=number, display_name=name)
    device = Device(extension=extension, username=number, label="desk phone")
    device.set_secret(SECRET)
    device.save()
    return extension


@pytest.fixture
def bob_at_201(bob: User, company: Company) -> Extension:
    """Bob the end user's extension, 201, with one desk phone."""
    extension = _extension(company, "201", "Bob Rossi")
    Membership.objects.filter(user=bob).update(extension=extension)
    return extension


@pytest.fixture
def dave_at_202(company: Company) -> Extension:
    """Another end user of the company, at 202."""
    extension = _extension(company, "202", "Dave Verdi")
    user = User.objects.create_user("dave")
    Membership.objects.create(
        user=user,
        company=company,
        role=Role.END_USER,
        extension=extension,
        must_change_password=False,
    )
    return extension


@pytest.fixture
def me(client: Client, bob: User, bob_at_201: Extension) -> Client:
    client.force_login(bob)
    return client


@pytest.fixture(autouse=True)
def voicemail_dir(tmp_path: Path, settings: Any) -> Path:
    """Every file a test of this file writes goes to its own folder, never var/voicemail."""
    folder = tmp_path / "voicemail"
    folder.mkdir()
    settings.CENTRALINO_VOICEMAIL_DIR = folder
    return folder


@pytest.fixture
def lamps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """The mailboxes whose message lamps the engines were told to update."""
    told: list[tuple[int, str]] = []
    monkeypatch.setattr(
        "selfcare.actions.mailbox_changed",
        lambda company_id, number: told.append((company_id, number)),
    )
    return told


def tone_wav(seconds: float = 2.0) -> bytes:
    """A WAV in 8 kHz 16-bit PCM: what the engine records."""
    t = np.arange(int(8000 * seconds)) / 8000
    return encode_wav_pcm((8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), 8000)


def leave_message(
    extension: Extension,
    folder: Path,
    caller: str = "0612345678",
    *,
    heard: bool = False,
    at: datetime | None = None,
    call_id: str = "",
) -> VoiceMessage:
    name = VoiceMessage.new_file_name()
    (folder / name).write_bytes(tone_wav())
    return VoiceMessage.objects.create(
        mailbox=Mailbox.objects.get(extension=extension),
        caller=caller,
        caller_name="Studio Bianchi" if caller == "0612345678" else "",
        received_at=at or timezone.now(),
        duration=2.0,
        file_name=name,
        heard=heard,
        call_id=call_id,
    )


def call(
    company: Company,
    caller: str,
    callee: str,
    at: datetime,
    *,
    answered_by: str = "",
    disposition: str = Disposition.ANSWERED,
    call_id: str | None = None,
) -> CallRecord:
    return CallRecord.objects.create(
        call_id=call_id or f"{caller}-{callee}-{at.timestamp()}",
        company=company,
        direction="internal",
        caller=caller,
        callee=callee,
        answered_by=answered_by,
        started_at=at,
        answered_at=at + timedelta(seconds=5) if answered_by else None,
        ended_at=at + timedelta(seconds=65),
        disposition=disposition,
    )


def page(client: Client, url: str, **params: Any) -> str:
    response = client.get(url, params, headers=ENGLISH)
    assert response.status_code == 200
    return response.content.decode()


# --- the pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/me/", "/me/calls/", "/me/voicemail/"])
def test_each_page_renders_for_its_owner(me: Client, url: str) -> None:
    html = page(me, url)

    assert "Bob Rossi" in html
    assert 'aria-current="page"' in html


def test_the_portal_speaks_italian_by_default(me: Client) -> None:
    html = me.get("/me/").content.decode()

    assert '<html lang="it">' in html


def test_an_operator_with_an_extension_has_her_own_pages_too(
    client: Client, alice: User, company: Company
) -> None:
    extension = _extension(company, "200", "Alice Neri")
    Membership.objects.filter(user=alice).update(extension=extension)
    client.force_login(alice)

    html = page(client, "/me/")

    assert "Alice Neri" in html
    assert 'href="/console/"' in html


# --- do not disturb, forwarding ---------------------------------------------------------------


def test_do_not_disturb_is_saved_and_the_engine_reloads(
    me: Client, bob_at_201: Extension, django_capture_on_commit_callbacks: Any
) -> None:
    before = ConfigStamp.current()

    with django_capture_on_commit_callbacks(execute=True):
        response = me.post("/me/do-not-disturb/", {"do_not_disturb": "on"})

    assert response.status_code == 302
    bob_at_201.refresh_from_db()
    assert bob_at_201.do_not_disturb
    assert ConfigStamp.current() > before
    assert "Turn off do not disturb" in page(me, "/me/")

    me.post("/me/do-not-disturb/", {"do_not_disturb": "off"})
    bob_at_201.refresh_from_db()
    assert not bob_at_201.do_not_disturb


def test_forwarding_is_saved(me: Client, bob_at_201: Extension) -> None:
    response = me.post(
        "/me/forwarding/",
        {
            "forward_always": "",
            "forward_busy": "202",
            "forward_no_answer": "0333 123 4567",
            "no_answer_timeout": "25",
        },
    )

    assert response.status_code == 302
    bob_at_201.refresh_from_db()
    assert (
        bob_at_201.forward_always,
        bob_at_201.forward_busy,
        bob_at_201.forward_no_answer,
        bob_at_201.no_answer_timeout,
    ) == ("", "202", "03331234567", 25)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("forward_always", "201", "cannot forward to itself"),
        ("forward_busy", "mario", "is a number"),
        ("no_answer_timeout", "1", "greater than or equal to 5"),
    ],
)
def test_a_wrong_forwarding_is_refused_and_nothing_changes(
    me: Client, bob_at_201: Extension, field: str, value: str, error: str
) -> None:
    data = {
        "forward_always": "",
        "forward_busy": "",
        "forward_no_answer": "",
        "no_answer_timeout": "20",
    }
    data[field] = value

    response = me.post("/me/forwarding/", data, headers=ENGLISH)

    assert response.status_code == 400
    assert error in response.content.decode()
    bob_at_201.refresh_from_db()
    assert (bob_at_201.forward_always, bob_at_201.forward_busy, bob_at_201.no_answer_timeout) == (
        "",
        "",
        20,
    )


# --- phones -----------------------------------------------------------------------------------


def test_the_registration_state_of_each_phone_is_shown(me: Client, bob_at_201: Extension) -> None:
    Device(extension=bob_at_201, username="201-2", label="mobile").save()
    now = timezone.now()
    for username, expires in (
        ("201", now + timedelta(minutes=30)),
        ("201-2", now - timedelta(seconds=1)),
    ):
        Registration.objects.create(
            node="node1",
            username=username,
            contact=f"sip:{username}@192.0.2.7:5062",
            source_host="192.0.2.7",
            source_port=5062,
            transport="udp",
            expires_at=expires,
            call_id="c",
            cseq=1,
        )

    html = page(me, "/me/")

    assert html.count("Registered from 192.0.2.7 (UDP)") == 1
    assert html.count("Not registered") == 1


def test_the_sip_settings_for_a_new_phone_are_shown_without_a_secret(
    me: Client, settings: Any
) -> None:
    settings.CENTRALINO_ADVERTISE = "pbx.example.com"
    settings.CENTRALINO_SIP_PORT = 5070

    html = page(me, "/me/")

    for text in (
        "<code>pbx.example.com</code>",
        "<code>5070</code>",
        "<code>201</code>",
        "<code>centralino</code>",
    ):
        assert text in html
    assert SECRET not in html


def test_a_new_secret_is_shown_once_and_matches_the_digest(
    me: Client, bob_at_201: Extension
) -> None:
    device = bob_at_201.devices.get()

    response = me.post(f"/me/phones/{device.pk}/new-secret/")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    secret = html.split('<code id="secret">')[1].split("</code>")[0]
    device.refresh_from_db()
    assert len(secret) >= 16
    assert device.ha1_md5 == ha1("201", device.realm, secret, "MD5")
    assert device.ha1_sha256 == ha1("201", device.realm, secret, "SHA-256")
    assert device.ha1_md5 != ha1("201", device.realm, SECRET, "MD5")
    for url in ("/me/", "/me/calls/", "/me/voicemail/"):
        assert secret not in page(me, url)


def test_a_new_secret_needs_a_post(me: Client, bob_at_201: Extension) -> None:
    device = bob_at_201.devices.get()

    assert me.get(f"/me/phones/{device.pk}/new-secret/").status_code == 405
    device.refresh_from_db()
    assert device.ha1_md5 == ha1("201", device.realm, SECRET, "MD5")


def test_another_users_phone_cannot_be_given_a_new_secret(
    me: Client, dave_at_202: Extension
) -> None:
    device = dave_at_202.devices.get()

    assert me.post(f"/me/phones/{device.pk}/new-secret/").status_code == 404
    device.refresh_from_db()
    assert device.ha1_md5 == ha1("202", device.realm, SECRET, "MD5")


# --- call log ---------------------------------------------------------------------------------

ROME = datetime(2026, 1, 10, 23, 30, tzinfo=UTC) - timedelta(hours=1)  # 23:30 in Rome (CET)


def test_the_call_log_lists_the_users_calls_only_newest_first(
    me: Client, company: Company, bob_at_201: Extension, dave_at_202: Extension
) -> None:
    other = Company.objects.create(name="Other S.r.l.")
    at = timezone.now() - timedelta(hours=3)
    call(company, "201", "0611111111", at, answered_by="0611111111")  # Bob calls out
    call(company, "0622222222", "201", at + timedelta(minutes=1), answered_by="201")
    call(company, "202", "0633333333", at + timedelta(minutes=2), answered_by="x")  # Dave's
    call(other, "201", "0644444444", at + timedelta(minutes=3), answered_by="x")  # another 201
    call(company, "0655555555", "600", at + timedelta(minutes=4), answered_by="201")  # hunt group

    html = page(me, "/me/calls/")

    assert "0633333333" not in html
    assert "0644444444" not in html
    assert html.index("0655555555") < html.index("0622222222") < html.index("0611111111")
    assert "to 600" in html


def test_a_call_to_a_company_number_routed_to_the_user_is_listed(
    me: Client, company: Company, bob_at_201: Extension
) -> None:
    trunk = Trunk.objects.create(company=company, name="Carrier", host="192.0.2.9")
    Did.objects.create(
        trunk=trunk, number="0298765432", target_kind=DidTarget.EXTENSION, extension=bob_at_201
    )
    call(company, "0612345678", "0298765432", timezone.now(), disposition=Disposition.NO_ANSWER)

    html = page(me, "/me/calls/")

    assert "0612345678" in html
    assert "to 0298765432" in html


def test_missed_calls_are_marked_and_can_be_listed_alone(
    me: Client, company: Company, bob_at_201: Extension, voicemail_dir: Path
) -> None:
    at = timezone.now() - timedelta(hours=1)
    call(company, "0611111111", "201", at, disposition=Disposition.CANCELLED)
    call(company, "0622222222", "201", at + timedelta(minutes=1), answered_by="201")
    call(
        company,
        "0633333333",
        "201",
        at + timedelta(minutes=2),
        answered_by="voicemail",
        call_id="vm1",
    )
    leave_message(bob_at_201, voicemail_dir, "0633333333", call_id="vm1")
    call(company, "201", "0644444444", at + timedelta(minutes=3), disposition=Disposition.NO_ANSWER)
    # The voicemail answered, the caller hung up during the greeting.
    call(company, "0655555555", "201", at + timedelta(minutes=4), answered_by="voicemail")

    html = page(me, "/me/calls/")
    missed = page(me, "/me/calls/", missed="on")

    assert html.count('<tr role="row" class="missed">') == 3
    assert "Voice message" in html
    assert "0611111111" in missed and "0633333333" in missed and "0655555555" in missed
    assert "0622222222" not in missed and "0644444444" not in missed
    assert "1 new message" in page(me, "/me/")
    assert "Missed calls today" in page(me, "/me/")


def test_the_date_range_is_in_the_companys_time_zone_across_midnight(
    me: Client, company: Company, bob_at_201: Extension
) -> None:
    before_midnight = ROME  # 10 January 23:30 in Rome, 22:30 UTC
    after_midnight = ROME + timedelta(hours=1)  # 11 January 00:30 in Rome, still 10 January in UTC
    call(company, "0611111111", "201", before_midnight, answered_by="201")
    call(company, "0622222222", "201", after_midnight, answered_by="201")

    eleventh = page(me, "/me/calls/", since="2026-01-11", until="2026-01-11")
    tenth = page(me, "/me/calls/", until="2026-01-10")
    both = page(me, "/me/calls/", since="2026-01-10", until="2026-01-11")

    assert "0622222222" in eleventh and "0611111111" not in eleventh
    assert "0611111111" in tenth and "0622222222" not in tenth
    assert "0611111111" in both and "0622222222" in both
    assert "00:30" in eleventh  # shown in Rome's time too


def test_the_call_log_is_searched_by_the_other_partys_number_or_name(
    me: Client, company: Company, bob_at_201: Extension
) -> None:
    at = timezone.now() - timedelta(hours=1)
    call(company, "201", "0611111111", at, answered_by="0611111111")
    call(company, "0622222222", "201", at + timedelta(minutes=1), answered_by="201")
    CallRecord.objects.filter(caller="0622222222").update(caller_name="Studio Bianchi")

    by_number = page(me, "/me/calls/", number="061 111")
    by_name = page(me, "/me/calls/", number="bianchi")
    by_own_number = page(me, "/me/calls/", number="201")

    assert "0611111111" in by_number and "0622222222" not in by_number
    assert "0622222222" in by_name and "0611111111" not in by_name
    assert "No call matches the search." in by_own_number


def test_a_reversed_date_range_is_reported(me: Client) -> None:
    html = page(me, "/me/calls/", since="2026-01-11", until="2026-01-10")

    assert "The first day comes after the last one." in html


def test_the_call_log_is_paginated(me: Client, company: Company, bob_at_201: Extension) -> None:
    start = timezone.now() - timedelta(days=1)
    for i in range(30):
        call(company, f"06000000{i:02d}", "201", start + timedelta(minutes=i), answered_by="201")

    first = page(me, "/me/calls/")
    second = page(me, "/me/calls/", page=2)

    assert "0600000029" in first and "0600000004" not in first
    assert "0600000004" in second and "Page 2 of 2" in second


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


# --- who may come in --------------------------------------------------------------------------


def every_me_url() -> list[tuple[str, str]]:
    """(method, path) of every route of the portal, ids filled with 1."""
    urls = []
    for pattern in me_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        kwargs = {name: 1 for name in pattern.pattern.converters}
        url = reverse(f"me:{pattern.name}", kwargs=kwargs)
        urls += [("get", url), ("post", url)]
    return urls


@pytest.mark.parametrize(("method", "url"), every_me_url())
@pytest.mark.parametrize("who", ["bob", "alice", "carol"])
def test_a_user_without_an_extension_is_refused_everywhere(
    client: Client, request: pytest.FixtureRequest, who: str, method: str, url: str
) -> None:
    client.force_login(request.getfixturevalue(who))

    response = getattr(client, method)(url)

    assert response.status_code == 403


@pytest.mark.parametrize(("method", "url"), every_me_url())
def test_a_visitor_is_sent_to_the_login(client: Client, method: str, url: str) -> None:
    response = getattr(client, method)(url)

    assert response.status_code == 302
    assert response.url.startswith(f"/login/?next={url}")


def test_an_end_user_with_no_extension_is_not_sent_round_in_circles(
    client: Client, bob: User
) -> None:
    client.force_login(bob)

    html = client.get("/me/", headers=ENGLISH).content.decode()

    assert "has no extension" in html
    assert 'href="/start/"' not in html


def test_an_end_user_with_an_extension_is_refused_by_the_console_and_the_api(me: Client) -> None:
    api = APIClient()
    api.force_authenticate(User.objects.get(username="bob"))

    assert me.get("/console/").status_code == 403
    for response in (
        api.get("/api/v1/calls/"),
        api.get("/api/v1/extensions/"),
        api.post("/api/v1/dial/", {"number": "202"}, format="json"),
    ):
        assert (response.status_code, response.json()["error"]) == (403, "not_allowed")


@pytest.mark.django_db(transaction=True)
async def test_an_end_user_with_an_extension_is_refused_by_the_consoles_socket(
    bob: User, company: Company
) -> None:
    extension = await Extension.objects.acreate(company=company, number="201", display_name="Bob")
    await Membership.objects.filter(user=bob).aupdate(extension=extension)
    socket = WebsocketCommunicator(
        _application(),
        "/ws/console/",
        headers=[
            (b"origin", b"http://127.0.0.1:8000"),
            (b"cookie", await sync_to_async(_cookie)(bob)),
        ],
    )

    connected, code = await socket.connect()

    assert not connected
    assert code == 4403


def _application() -> Callable[..., Any]:
    from operator_panel.asgi import application

    return application


def _cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()
