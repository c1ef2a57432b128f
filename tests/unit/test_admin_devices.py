"""Devices in the admin: the SIP secret is shown once, stored only as HA1, never shown again."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client

from pbx.models import Company, Device, Extension
from pbx.sip.digest import ha1

ADD_URL = "/admin/pbx/device/add/"


def change_url(device: Device) -> str:
    return f"/admin/pbx/device/{device.pk}/change/"


@pytest.fixture
def extension(company: Company) -> Extension:
    return Extension.objects.create(company=company, number="201", display_name="Giulia Bianchi")


@pytest.fixture
def admin(client: Client, admin_user: User) -> Client:
    client.force_login(admin_user)
    return client


def form_data(extension: Extension, username: str, **extra: str) -> dict[str, Any]:
    return {
        "extension": extension.pk,
        "label": "Scrivania",
        "username": username,
        "position": "0",
        "secret": "",
        **extra,
    }


def secret_matches(device: Device, secret: str) -> bool:
    md5 = ha1(device.username, device.realm, secret, "MD5")
    sha256 = ha1(device.username, device.realm, secret, "SHA-256")
    return (device.ha1_md5, device.ha1_sha256) == (md5, sha256)


def shown_secret(response: HttpResponse, device: Device) -> str:
    """The secret that the page after saving showed, found as the word that matches the HA1.

    Matching on the HA1 rather than on the wording keeps this test valid once the message is
    translated.
    """
    shown = [str(message) for message in response.context["messages"]]
    words = {word for text in shown for word in re.findall(r"[A-Za-z0-9]{8,}", text)}
    matching = [word for word in words if secret_matches(device, word)]
    assert len(matching) == 1, f"no secret of {device.username} in the messages {shown}"
    assert matching[0] in response.content.decode()
    return matching[0]


def add_device(admin: Client, extension: Extension, username: str) -> tuple[Device, str]:
    response = admin.post(ADD_URL, form_data(extension, username), follow=True)
    assert response.status_code == 200
    device = Device.objects.get(username=username)
    return device, shown_secret(response, device)


def test_adding_a_device_without_a_secret_generates_one_and_shows_it_once(
    admin: Client, extension: Extension
) -> None:
    device, secret = add_device(admin, extension, "giulia-desk")

    assert len(secret) >= 16
    assert secret not in admin.get("/admin/pbx/device/").content.decode()
    assert secret not in admin.get(change_url(device)).content.decode()


def test_only_the_ha1_values_of_the_secret_are_stored(admin: Client, extension: Extension) -> None:
    device, secret = add_device(admin, extension, "giulia-desk")

    assert device.ha1_md5 == ha1("giulia-desk", device.realm, secret, "MD5")
    assert device.ha1_sha256 == ha1("giulia-desk", device.realm, secret, "SHA-256")
    stored = Device.objects.filter(pk=device.pk).values().get()
    assert [field for field, value in stored.items() if secret in str(value)] == []
    logged = LogEntry.objects.values_list("object_repr", "change_message")
    assert not any(secret in text for entry in logged for text in entry)


def test_the_change_page_never_shows_the_secret_or_its_ha1(
    admin: Client, extension: Extension
) -> None:
    device, secret = add_device(admin, extension, "giulia-desk")

    page = admin.get(change_url(device)).content.decode()

    assert "giulia-desk" in page
    for hidden in (secret, device.ha1_md5, device.ha1_sha256):
        assert hidden not in page


def test_saving_the_change_form_without_rotating_keeps_the_secret(
    admin: Client, extension: Extension
) -> None:
    device, secret = add_device(admin, extension, "giulia-desk")

    response = admin.post(
        change_url(device), form_data(extension, "giulia-desk", label="Sala riunioni"), follow=True
    )

    device.refresh_from_db()
    assert device.label == "Sala riunioni"
    assert secret_matches(device, secret)
    assert secret not in response.content.decode()


def test_ticking_rotate_secret_shows_a_new_secret_and_retires_the_old_one(
    admin: Client, extension: Extension
) -> None:
    device, old_secret = add_device(admin, extension, "giulia-desk")

    response = admin.post(
        change_url(device), form_data(extension, "giulia-desk", rotate_secret="on"), follow=True
    )

    device.refresh_from_db()
    new_secret = shown_secret(response, device)
    assert new_secret != old_secret
    assert len(new_secret) >= 16
    assert not secret_matches(device, old_secret)
    assert old_secret not in response.content.decode()


def test_renaming_a_device_gives_it_a_new_secret_for_the_new_username(
    admin: Client, extension: Extension
) -> None:
    device, old_secret = add_device(admin, extension, "giulia-desk")

    response = admin.post(change_url(device), form_data(extension, "giulia-office"), follow=True)

    device.refresh_from_db()
    assert device.username == "giulia-office"
    new_secret = shown_secret(response, device)
    assert not secret_matches(device, old_secret)
    assert secret_matches(device, new_secret)


def test_adding_a_device_with_a_taken_username_is_refused(
    admin: Client, extension: Extension
) -> None:
    add_device(admin, extension, "giulia-desk")
    before = list(Device.objects.values())

    response = admin.post(ADD_URL, form_data(extension, "giulia-desk"))

    assert response.status_code == 200
    assert "username" in response.context["adminform"].form.errors
    assert list(Device.objects.values()) == before


def test_renaming_a_device_to_a_taken_username_is_refused(
    admin: Client, extension: Extension
) -> None:
    add_device(admin, extension, "giulia-desk")
    mobile, _ = add_device(admin, extension, "giulia-mobile")
    before = list(Device.objects.values())

    response = admin.post(
        change_url(mobile), form_data(extension, "giulia-desk", rotate_secret="on")
    )

    assert response.status_code == 200
    assert "username" in response.context["adminform"].form.errors
    assert list(Device.objects.values()) == before
