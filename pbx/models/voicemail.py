"""Voicemail: a mailbox per extension and the messages left in it (SPEC A4, F2).

Message files live under settings.CENTRALINO_VOICEMAIL_DIR with random names; the engine writes
the file (in small flushed chunks) before the row that points to it, so a crash mid-recording
leaves a playable file that the next start turns into a message.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from pbx.models.telephony import Extension

PIN_ATTEMPTS = 5  # wrong PINs in a row before the mailbox locks
PIN_LOCK = timedelta(minutes=15)


def voicemail_dir() -> Path:
    return Path(settings.CENTRALINO_VOICEMAIL_DIR)


class Mailbox(models.Model):
    """An extension's voicemail: on by default, with a PIN and an optional own greeting."""

    extension = models.OneToOneField(
        Extension, on_delete=models.CASCADE, related_name="mailbox", verbose_name=_("extension")
    )
    enabled = models.BooleanField(_("voicemail on"), default=True)
    pin_hash = models.CharField(max_length=128, blank=True, editable=False)
    greeting_file = models.CharField(max_length=64, blank=True, editable=False)
    email_messages = models.BooleanField(
        _("e-mail each message"),
        default=False,
        help_text=_("Send each new message, with its recording, to the extension's e-mail."),
    )
    failed_pins = models.PositiveSmallIntegerField(default=0, editable=False)
    locked_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("mailbox")
        verbose_name_plural = _("mailboxes")

    def __str__(self) -> str:
        return f"{self.extension.number}"

    def set_pin(self, pin: str) -> None:
        self.pin_hash = make_password(pin)

    @property
    def has_pin(self) -> bool:
        return bool(self.pin_hash)

    @property
    def locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > timezone.now()

    def try_pin(self, pin: str) -> bool:
        """Check `pin`, counting failures: PIN_ATTEMPTS wrong ones in a row lock the mailbox
        for PIN_LOCK (a locked mailbox refuses even the right PIN). Saves the counters."""
        if self.locked or not self.pin_hash:
            return False
        if check_password(pin, self.pin_hash):
            self.failed_pins, self.locked_until = 0, None
            self.save(update_fields=["failed_pins", "locked_until"])
            return True
        self.failed_pins += 1
        if self.failed_pins >= PIN_ATTEMPTS:
            self.locked_until = timezone.now() + PIN_LOCK
            self.failed_pins = 0
        self.save(update_fields=["failed_pins", "locked_until"])
        return False

    @property
    def greeting_path(self) -> Path | None:
        return voicemail_dir() / self.greeting_file if self.greeting_file else None


class VoiceMessage(models.Model):
    mailbox = models.ForeignKey(
        Mailbox, on_delete=models.CASCADE, related_name="messages", verbose_name=_("mailbox")
    )
    caller = models.CharField(_("caller"), max_length=64)
    caller_name = models.CharField(_("caller name"), max_length=120, blank=True)
    received_at = models.DateTimeField(_("received"), default=timezone.now, db_index=True)
    duration = models.FloatField(_("duration (s)"), default=0)
    file_name = models.CharField(max_length=64, unique=True, editable=False)
    heard = models.BooleanField(_("heard"), default=False)
    call_id = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = _("voice message")
        verbose_name_plural = _("voice messages")
        ordering = ["heard", "-received_at"]  # new ones first

    def __str__(self) -> str:
        return f"{self.caller} → {self.mailbox} ({self.received_at:%Y-%m-%d %H:%M})"

    @staticmethod
    def new_file_name() -> str:
        return f"{secrets.token_hex(16)}.wav"

    @property
    def path(self) -> Path:
        return voicemail_dir() / self.file_name
