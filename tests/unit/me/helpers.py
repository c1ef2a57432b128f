"""What the tests of the end-user portal share: Bob's desk phone secret, a message on disk, a
call record, a page read in English."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.test import Client
from django.utils import timezone

from pbx.media.wav import encode_wav_pcm
from pbx.models import Company, Device, Extension, Mailbox, VoiceMessage
from stats.models import CallRecord, Disposition

SECRET = "Bob-old-secret-123456"
ENGLISH = {"accept-language": "en"}


def extension_with_phone(company: Company, number: str, name: str) -> Extension:
    """An extension with one desk phone, whose SIP secret is SECRET."""
    extension = Extension.objects.create(company=company, number=number, display_name=name)
    device = Device(extension=extension, username=number, label="desk phone")
    device.set_secret(SECRET)
    device.save()
    return extension


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
