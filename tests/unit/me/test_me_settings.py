"""/me/: do-not-disturb and forwarding (F4), the phones: registration state, settings for a new
phone, a new secret shown once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from pbx.models import (
    ConfigStamp,
    Device,
    Extension,
    Registration,
)
from pbx.sip.digest import ha1
from tests.unit.me.helpers import ENGLISH, SECRET, page

pytestmark = pytest.mark.django_db

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
