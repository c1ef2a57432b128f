"""Call records (CDR): written when a call starts, completed when it ends."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Direction(models.TextChoices):
    INTERNAL = "internal", _("Internal")
    INBOUND = "inbound", _("Inbound")
    OUTBOUND = "outbound", _("Outbound")


class Disposition(models.TextChoices):
    IN_PROGRESS = "in_progress", _("In progress")
    ANSWERED = "answered", _("Answered")
    NO_ANSWER = "no_answer", _("No answer")
    BUSY = "busy", _("Busy")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")
    INTERRUPTED = "interrupted", _("Interrupted")


class CallRecord(models.Model):
    """One call as the caller saw it: who, to whom, when it rang, was answered and ended."""

    call_id = models.CharField(max_length=64, unique=True)
    node = models.CharField(max_length=64, default="")
    company = models.ForeignKey(
        "pbx.Company",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calls",
        verbose_name=_("company"),
    )
    direction = models.CharField(_("direction"), max_length=10, choices=Direction.choices)
    caller = models.CharField(_("caller"), max_length=64)
    caller_name = models.CharField(_("caller name"), max_length=120, blank=True)
    callee = models.CharField(_("called"), max_length=64)
    answered_by = models.CharField(_("answered by"), max_length=64, blank=True)
    started_at = models.DateTimeField(_("start"), default=timezone.now, db_index=True)
    answered_at = models.DateTimeField(_("answer"), null=True, blank=True)
    ended_at = models.DateTimeField(_("end"), null=True, blank=True)
    disposition = models.CharField(
        _("outcome"), max_length=12, choices=Disposition.choices, default=Disposition.IN_PROGRESS
    )
    end_reason = models.CharField(max_length=60, blank=True)

    class Meta:
        verbose_name = _("call record")
        verbose_name_plural = _("call records")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["disposition"])]

    def __str__(self) -> str:
        return f"{self.caller} → {self.callee} ({self.get_disposition_display()})"

    @property
    def duration(self) -> float | None:
        """Seconds of conversation, or None if it was never answered or has not ended."""
        if self.answered_at and self.ended_at:
            return (self.ended_at - self.answered_at).total_seconds()
        return None
