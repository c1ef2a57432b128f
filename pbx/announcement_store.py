"""Keeping announcements: `store_announcement` for what the portal receives (an upload, a
browser recording, speech), `store_recording` for a take recorded by phone
(pbx/engine/announcement_recorder.py); both end in `keep_announcement`, which writes the file
before the row under a random name, so a refusal or a taken name leaves nothing behind.

The engine records 8 kHz 16-bit PCM; the portal keeps announcements in the formats it accepts
on upload, so the take is resampled to 16 kHz PCM (libsoxr, `wav.resample`), checked like an
upload (`check_announcement`: a take of silence is refused) and written under a new random
name, the file before the row; the engine's file is deleted then. The work runs on a worker
thread: the event loop never waits for the disk or the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from django.db import IntegrityError, close_old_connections, transaction

from pbx.engine.services import RecordedAnnouncement
from pbx.media.announcement import (
    AnnouncementError,
    CheckedAudio,
    check_announcement,
    encode_pcm16k_wav,
)
from pbx.media.wav import WavFormatError, load_as_pcm8k, resample
from pbx.models import Announcement, AnnouncementSource, Company, announcements_dir

log = logging.getLogger(__name__)

NAME_TRIES = 20  # "name", "name (2)", ...: a company's names are unique
MAX_BYTES = 10 * 1024 * 1024  # the largest announcement file accepted


class NameTaken(ValueError):
    """Another announcement of the company has this name."""


def store_announcement(
    company: Company, name: str, data: bytes, source: str, text: str = ""
) -> Announcement:
    """Check `data` and keep it as a new announcement called `name`.

    Raises:
        AnnouncementError: the bytes are not an accepted WAV (nothing is written).
        NameTaken: the company already has an announcement called `name` (nothing is kept).
    """
    checked = check_announcement(data, max_bytes=MAX_BYTES)
    return keep_announcement(company, [name], data, checked, source, text)


def keep_announcement(
    company: Company,
    names: Sequence[str],
    data: bytes,
    checked: CheckedAudio,
    source: str,
    text: str = "",
) -> Announcement:
    """Write `data` to a new file, then its row under the first of `names` still free.

    Raises:
        NameTaken: every name is taken (the file is removed again).
    """
    folder = announcements_dir()
    folder.mkdir(parents=True, exist_ok=True)
    file_name = Announcement.new_file_name()
    target = folder / file_name
    with target.open("xb") as out:
        out.write(data)
    try:
        for name in names:
            try:
                with transaction.atomic():
                    return Announcement.objects.create(
                        company=company,
                        name=name,
                        source=source,
                        text=text,
                        file_name=file_name,
                        encoding=checked.encoding,
                        duration=checked.duration,
                    )
            except IntegrityError:
                continue  # the name is taken: the next one
        raise NameTaken(names[-1] if names else "")
    except BaseException:
        target.unlink(missing_ok=True)
        raise


class OrmAnnouncementStore:
    """`AnnouncementStore` over the database and the announcements folder."""

    async def save(self, recorded: RecordedAnnouncement) -> None:
        await asyncio.to_thread(store_recording, recorded)


def store_recording(
    recorded: RecordedAnnouncement, now: datetime | None = None
) -> Announcement | None:
    """Keep a take recorded by phone as a 16 kHz PCM announcement; None when it is refused
    (silence, an unreadable file, a company gone). The take's own file is deleted then, and
    kept when the database fails (raised): what was said is not lost."""
    close_old_connections()
    take = Path(recorded.path)
    try:
        stored = _store(recorded, take, now or datetime.now(UTC))
    except Exception:
        log.exception("announcement by phone %s not stored: the take is kept", take)
        raise
    take.unlink(missing_ok=True)
    return stored


def _store(recorded: RecordedAnnouncement, take: Path, now: datetime) -> Announcement | None:
    company = Company.objects.filter(pk=recorded.company_id).first()
    if company is None:
        log.warning("announcement by phone for company %s, which is gone", recorded.company_id)
        return None
    try:
        samples = load_as_pcm8k(take)
        data = encode_pcm16k_wav(resample(samples, 8000, 16000))
        checked = check_announcement(data)
    except (OSError, WavFormatError, AnnouncementError) as error:
        log.warning("announcement by phone from %s refused: %s", recorded.extension, error)
        return None
    local = now.astimezone(ZoneInfo(company.time_zone))
    base = f"{recorded.extension}, {local:%Y-%m-%d %H:%M}"
    names = [base] + [f"{base} ({attempt})" for attempt in range(2, NAME_TRIES + 1)]
    return keep_announcement(company, names, data, checked, AnnouncementSource.PHONE)
