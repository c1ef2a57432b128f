"""The engine's voicemail store over the database and the voicemail folder (SPEC A4, F2), and
the e-mail of a new message.

The engine records a message under ``<voicemail folder>/pending/<node>/`` (see
pbx/engine/voicemail.py); keeping it moves the file into the folder under the name chosen
before recording, then creates the VoiceMessage row: the file before the row. Saving again
what was kept (a crash between the two) keeps it once. Each method runs on a worker thread:
the event loop never waits for the disk or the database.

When the mailbox says so and the extension has an e-mail address, a new message is sent
there with its recording by the `pbx.email_voicemail` task (pbx/tasks.py), on the default
queue; in the embedded mode (eager tasks) on a thread of its own, so that nothing waits for
the mail server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Count, Q, QuerySet

from pbx.connectivity import Outage
from pbx.engine.services import LeftMessage, MailboxInfo, PinCheck, StoredMessage
from pbx.models import Mailbox, VoiceMessage, voicemail_dir

log = logging.getLogger(__name__)


class OrmVoicemailStore:
    """`VoicemailStore` over the database; files in `folder` (the setting by default)."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self._folder = Path(folder) if folder is not None else None
        self._boxes: dict[tuple[int, str], MailboxInfo] = {}  # as last read
        self._outage = Outage(
            log, "the database", "voicemail answers with what this node read last"
        )

    @property
    def folder(self) -> Path:
        return self._folder or voicemail_dir()

    async def mailbox(self, company_id: int, number: str) -> MailboxInfo | None:
        def read() -> MailboxInfo | None:
            close_old_connections()
            box = _mailboxes(company_id, number).select_related("extension__company").first()
            if box is None:
                return None
            return MailboxInfo(
                company_id,
                number,
                enabled=box.enabled,
                greeting=str(self.folder / box.greeting_file) if box.greeting_file else "",
                has_pin=box.has_pin,
                time_zone=box.extension.company.time_zone,
            )

        key = (company_id, number)
        try:
            box = await asyncio.to_thread(read)
        except DatabaseError as error:
            # The call was routed here with the directory's snapshot: the extension exists.
            # Its mailbox as last read, else one as new mailboxes are (on, the spoken greeting);
            # a PIN is asked, and checking it fails until the database is back.
            self._outage.failed(error)
            default = MailboxInfo(company_id, number, has_pin=True, time_zone=settings.TIME_ZONE)
            return self._boxes.get(key, default)
        self._outage.succeeded()
        if box is None:
            self._boxes.pop(key, None)
        else:
            self._boxes[key] = box
        return box

    async def saved(self, message: LeftMessage) -> bool:
        return await asyncio.to_thread(lambda: keep_message(message, self.folder) is not None)

    async def check_pin(self, company_id: int, number: str, pin: str) -> PinCheck:
        def check() -> PinCheck:
            close_old_connections()
            box = _mailboxes(company_id, number).first()
            if box is None or not box.has_pin:
                return PinCheck.NO_PIN
            if box.locked:
                return PinCheck.LOCKED
            if box.try_pin(pin):
                return PinCheck.ACCEPTED
            if box.locked:  # this one was the last wrong PIN allowed
                log.warning("voicemail of %s locked after repeated wrong PINs", number)
                return PinCheck.LOCKED
            return PinCheck.WRONG

        return await asyncio.to_thread(check)

    async def messages(self, company_id: int, number: str) -> list[StoredMessage]:
        def read() -> list[StoredMessage]:
            close_old_connections()
            rows = VoiceMessage.objects.filter(
                mailbox__extension__company_id=company_id, mailbox__extension__number=number
            ).order_by("heard", "-received_at", "-id")
            return [
                StoredMessage(
                    m.id,
                    m.caller,
                    m.caller_name,
                    m.received_at,
                    m.duration,
                    str(self.folder / m.file_name),
                    m.heard,
                )
                for m in rows
            ]

        return await asyncio.to_thread(read)

    async def mark_heard(self, company_id: int, number: str, message_id: int) -> None:
        def write() -> None:
            close_old_connections()
            _messages(company_id, number).filter(pk=message_id).update(heard=True)

        await asyncio.to_thread(write)

    async def delete(self, company_id: int, number: str, message_id: int) -> None:
        def write() -> None:
            close_old_connections()
            for message in _messages(company_id, number).filter(pk=message_id):
                delete_message(message, self.folder)

        await asyncio.to_thread(write)

    async def counts(self, company_id: int, number: str) -> tuple[int, int]:
        def read() -> tuple[int, int]:
            close_old_connections()
            found = _messages(company_id, number).aggregate(
                new=Count("id", filter=Q(heard=False)), heard=Count("id", filter=Q(heard=True))
            )
            return found["new"], found["heard"]

        return await asyncio.to_thread(read)


def _mailboxes(company_id: int, number: str) -> QuerySet[Mailbox]:
    return Mailbox.objects.filter(extension__company_id=company_id, extension__number=number)


def _messages(company_id: int, number: str) -> QuerySet[VoiceMessage]:
    return VoiceMessage.objects.filter(
        mailbox__extension__company_id=company_id, mailbox__extension__number=number
    )


def keep_message(message: LeftMessage, folder: Path | None = None) -> VoiceMessage | None:
    """Move a recording into the voicemail folder, then create its row (and ask for its
    e-mail). None when nothing is kept: the mailbox is gone (the file is deleted) or there is
    no file. Raises when the database fails; the file is then put back where it was."""
    close_old_connections()
    folder = folder or voicemail_dir()
    pending, target = Path(message.pending), folder / message.file_name
    box = _mailboxes(message.company_id, message.number).select_related("extension").first()
    if box is None:
        log.warning("voicemail for %s, which has no mailbox now: dropped", message.number)
        pending.unlink(missing_ok=True)
        return None
    kept = VoiceMessage.objects.filter(file_name=message.file_name).first()
    if kept is not None:  # kept before a crash: its row is there
        return kept
    if pending.exists():
        os.replace(pending, target)
    elif not target.exists():
        log.warning("voicemail for %s: no recording %s", message.number, message.file_name)
        return None
    try:
        kept = VoiceMessage.objects.create(
            mailbox=box,
            caller=message.caller[:64],
            caller_name=message.caller_name[:120],
            received_at=message.received_at,
            duration=round(message.duration, 2),
            file_name=message.file_name,
            call_id=message.call_id[:64],
        )
    except BaseException:
        with contextlib.suppress(OSError):
            os.replace(target, pending)
        raise
    if box.email_messages and box.extension.email:
        _email_later(kept.pk)
    return kept


def delete_message(message: VoiceMessage, folder: Path | None = None) -> None:
    """Delete a message: the row, then its file once the deletion is committed (no row ever
    points to nothing, whether this runs in a transaction or not). The phone menu and the
    end-user portal both delete through here."""
    path = (folder or voicemail_dir()) / message.file_name
    with transaction.atomic():
        message.delete()
        transaction.on_commit(lambda: path.unlink(missing_ok=True))


# --- e-mail ------------------------------------------------------------------------------------

MAIL = {
    "it": {
        "subject": "Nuovo messaggio vocale da {caller} per il {number}",
        "body": "{caller} ha lasciato un messaggio di {seconds} secondi per il numero {number} "
        "il {date}.\nLa registrazione è allegata.\n\nCentralino",
        "unknown": "un numero sconosciuto",
    },
    "en": {
        "subject": "New voice message from {caller} for {number}",
        "body": "{caller} left a {seconds}-second message for number {number} on {date}.\n"
        "The recording is attached.\n\nCentralino",
        "unknown": "an unknown number",
    },
}


def email_message(message_id: int) -> bool:
    """E-mail a voice message to its extension, the recording attached. False when there is
    nothing to send: the message is gone, or its mailbox no longer asks for e-mail."""
    message = (
        VoiceMessage.objects.select_related("mailbox__extension__company")
        .filter(pk=message_id)
        .first()
    )
    if message is None:
        return False
    extension = message.mailbox.extension
    if not (message.mailbox.email_messages and extension.email):
        return False
    try:
        recording = message.path.read_bytes()
    except FileNotFoundError:
        return False
    texts = MAIL.get(settings.LANGUAGE_CODE[:2], MAIL["en"])
    local = message.received_at.astimezone(ZoneInfo(extension.company.time_zone))
    caller = message.caller or texts["unknown"]
    if message.caller_name:
        caller = f"{message.caller_name} ({caller})"
    values = {
        "caller": caller,
        "number": extension.number,
        "seconds": round(message.duration),
        "date": f"{local:%d/%m/%Y %H:%M}",
    }
    mail = EmailMessage(
        texts["subject"].format(**values), texts["body"].format(**values), to=[extension.email]
    )
    mail.attach(f"messaggio-{local:%Y%m%d-%H%M}.wav", recording, "audio/wav")
    mail.send()
    log.info("voicemail %s e-mailed to extension %s", message_id, extension.number)
    return True


def _email_later(message_id: int) -> None:
    from pbx.tasks import email_voicemail

    if email_voicemail.app.conf.task_always_eager:  # it would run here: not on this thread
        threading.Thread(
            target=_email_now, args=(message_id,), name="voicemail-email", daemon=True
        ).start()
    else:
        email_voicemail.delay(message_id)


def _email_now(message_id: int) -> None:
    from pbx.tasks import email_voicemail

    try:
        email_voicemail.delay(message_id)
    except Exception:
        log.exception("voicemail %s not e-mailed", message_id)
    finally:
        connection.close()
