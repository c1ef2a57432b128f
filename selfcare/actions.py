"""What an end user changes from /me/: do-not-disturb and forwarding, phone secrets, and the
voicemail (messages, PIN, greeting).

Saves go through `Model.save()`, so the configuration signals (pbx/signals.py) move the stamp
and the engine sees the change on its next call. A change to the messages also tells the
engines (pbx.mwi), once committed, so that the phones' message lamps follow.
"""

from __future__ import annotations

import secrets

from django.db import transaction

from pbx import voicemail_store
from pbx.media.announcement import check_announcement
from pbx.models import Extension, Mailbox, VoiceMessage, voicemail_dir
from pbx.mwi import mailbox_changed

GREETING_MAX_BYTES = 10 * 1024 * 1024
GREETING_MAX_SECONDS = 120.0
FORWARDING_FIELDS = ("forward_always", "forward_busy", "forward_no_answer", "no_answer_timeout")


def set_do_not_disturb(extension: Extension, on: bool) -> None:
    extension.do_not_disturb = on
    extension.save(update_fields=["do_not_disturb"])


def save_forwarding(extension: Extension) -> None:
    """Save the forwarding fields only: an administrator may be editing the others."""
    extension.save(update_fields=list(FORWARDING_FIELDS))


def _lamps_follow(mailbox: Mailbox) -> None:
    extension = mailbox.extension
    company_id, number = extension.company_id, extension.number
    transaction.on_commit(lambda: mailbox_changed(company_id, number))


def set_heard(message: VoiceMessage, heard: bool) -> None:
    with transaction.atomic():
        message.heard = heard
        message.save(update_fields=["heard"])
        _lamps_follow(message.mailbox)


def delete_message(message: VoiceMessage) -> None:
    """Delete the row, then (once committed) its file, and tell the lamps."""
    mailbox = message.mailbox
    with transaction.atomic():
        voicemail_store.delete_message(message)
        _lamps_follow(mailbox)


def change_pin(mailbox: Mailbox, pin: str) -> None:
    """A new PIN from the owner, logged in: it also lifts a lock left by wrong PINs by phone."""
    mailbox.set_pin(pin)
    mailbox.failed_pins, mailbox.locked_until = 0, None
    mailbox.save(update_fields=["pin_hash", "failed_pins", "locked_until"])


def store_greeting(mailbox: Mailbox, data: bytes) -> None:
    """Check `data` and make it the mailbox's greeting: the file first, then the row.

    Raises:
        AnnouncementError: the bytes are not an accepted WAV (nothing is written).
    """
    check_announcement(data, max_bytes=GREETING_MAX_BYTES, max_seconds=GREETING_MAX_SECONDS)
    folder = voicemail_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"greeting-{secrets.token_hex(16)}.wav"
    with target.open("xb") as out:
        out.write(data)
    try:
        _replace_greeting(mailbox, target.name)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def remove_greeting(mailbox: Mailbox) -> None:
    """Back to the default greeting."""
    _replace_greeting(mailbox, "")


def _replace_greeting(mailbox: Mailbox, file_name: str) -> None:
    old = mailbox.greeting_path
    with transaction.atomic():
        mailbox.greeting_file = file_name
        mailbox.save(update_fields=["greeting_file"])
        if old is not None:
            transaction.on_commit(lambda: old.unlink(missing_ok=True))
