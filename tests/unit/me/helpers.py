"""What the tests of the end-user portal share: Bob's desk phone secret, a message on disk, a
call record, a page read in English."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from django.test import Client

from pbx.models import Company, Device, Extension, VoiceMessage
from stats.models import Disposition
from tests.unit import call_history
from tests.unit.call_history import tone_wav

__all__ = ["ENGLISH", "SECRET", "call", "extension_with_phone", "leave_message", "page", "tone_wav"]

SECRET = "Bob-old-secret-123456"
ENGLISH = {"accept-language": "en"}


def extension_with_phone(company: Company, number: str, name: str) -> Extension:
    """An extension with one desk phone, whose SIP secret is SECRET."""
    extension = Extension.objects.create(company=company, number=number, display_name=name)
    device = Device(extension=extension, username=number, label="desk phone")
    device.set_secret(SECRET)
    device.save()
    return extension


def leave_message(
    extension: Extension, folder: Path, caller: str = "0612345678", **fields: Any
) -> VoiceMessage:
    """A 2 s message; from Studio Bianchi (0612345678) unless a test says otherwise."""
    fields.setdefault("name", "Studio Bianchi" if caller == "0612345678" else "")
    return call_history.leave_message(extension, folder, caller, **fields)


# The user's calls, answered unless a test says otherwise.
call = partial(call_history.call, disposition=Disposition.ANSWERED)


def page(client: Client, url: str, **params: Any) -> str:
    response = client.get(url, params, headers=ENGLISH)
    assert response.status_code == 200
    return response.content.decode()
