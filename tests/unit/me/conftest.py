"""Bob the end user at 201 with a desk phone, Dave at 202, Bob logged in (`me`), the message
lamps the engines were told about, and a voicemail folder of each test's own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from pbx.models import Company, Extension, Membership, Role
from tests.unit.me.helpers import extension_with_phone


@pytest.fixture
def bob_at_201(bob: User, company: Company) -> Extension:
    """Bob the end user's extension, 201, with one desk phone."""
    extension = extension_with_phone(company, "201", "Bob Rossi")
    Membership.objects.filter(user=bob).update(extension=extension)
    return extension


@pytest.fixture
def dave_at_202(company: Company) -> Extension:
    """Another end user of the company, at 202."""
    extension = extension_with_phone(company, "202", "Dave Verdi")
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
    """Every file a test here writes goes to its own folder, never var/voicemail."""
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
