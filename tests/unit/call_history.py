"""Rows the pages under test read: a voice message with its recording on disk, a call record.
Shared by the tests of the end-user portal (tests/unit/me/) and of the console's voicemail
panel."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from django.utils import timezone

from pbx.media.wav import encode_wav_pcm
from pbx.models import Company, Extension, Mailbox, VoiceMessage
from stats.models import CallRecord, Disposition


def tone_wav(seconds: float = 2.0) -> bytes:
    """A WAV in 8 kHz 16-bit PCM: what the engine records."""
    t = np.arange(int(8000 * seconds)) / 8000
    return encode_wav_pcm((8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), 8000)


def leave_message(
    extension: Extension,
    folder: Path,
    caller: str,
    *,
    name: str = "",
    heard: bool = False,
    at: datetime | None = None,
    call_id: str = "",
    duration: float = 2.0,
) -> VoiceMessage:
    """A message in `extension`'s mailbox, its recording (a 440 Hz tone) in `folder`."""
    file_name = VoiceMessage.new_file_name()
    (folder / file_name).write_bytes(tone_wav())
    return VoiceMessage.objects.create(
        mailbox=Mailbox.objects.get(extension=extension),
        caller=caller,
        caller_name=name,
        received_at=at or timezone.now(),
        duration=duration,
        file_name=file_name,
        heard=heard,
        call_id=call_id,
    )


def call(
    company: Company,
    caller: str,
    callee: str,
    at: datetime,
    *,
    disposition: str,
    answered_by: str = "",
    direction: str = "internal",
    call_id: str | None = None,
) -> CallRecord:
    """A call record started at `at`, answered 5 s later by `answered_by` if any, ended after
    a minute unless still in progress."""
    return CallRecord.objects.create(
        call_id=call_id or f"{caller}-{callee}-{at.timestamp()}",
        company=company,
        direction=direction,
        caller=caller,
        callee=callee,
        answered_by=answered_by,
        started_at=at,
        answered_at=at + timedelta(seconds=5) if answered_by else None,
        ended_at=None if disposition == Disposition.IN_PROGRESS else at + timedelta(seconds=60),
        disposition=disposition,
    )
