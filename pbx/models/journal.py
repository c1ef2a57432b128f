"""The dialog journal: each answered leg's SIP dialog, kept while its call lasts so that an
engine restarted after a crash can end the call with a BYE (pbx/dialog_store.py)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class OpenDialog(models.Model):
    """One answered leg of a node's engine: what a BYE on its dialog needs (RFC 3261 12).

    Written by the engine (pbx/dialog_store.py) when a leg answers or changes, deleted when it
    ends; whatever a node's rows still hold at its next start, a crash left behind. Text
    fields throughout: a phone chooses the length of its Call-ID, tags and URIs.
    """

    node = models.CharField(max_length=64)
    leg = models.PositiveBigIntegerField()  # the engine's leg id, unique within one run
    call_id = models.TextField()
    local_tag = models.TextField()
    remote_tag = models.TextField(null=True, blank=True)  # None: an RFC 2543 peer sent none
    local_uri = models.TextField()  # our From, with our tag
    remote_uri = models.TextField()  # our To, with theirs
    remote_target = models.TextField()
    route_set = models.JSONField(default=list, blank=True)
    local_cseq = models.PositiveBigIntegerField()
    secure = models.BooleanField(default=False)
    peer_host = models.CharField(max_length=64)
    peer_port = models.PositiveIntegerField()
    transport = models.CharField(max_length=3)
    saved_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("open dialog")
        verbose_name_plural = _("open dialogs")
        constraints = [
            models.UniqueConstraint(fields=["node", "leg"], name="open_dialog_one_row_per_leg")
        ]

    def __str__(self) -> str:
        return f"{self.node} leg {self.leg}: {self.call_id}"
