"""Every configuration change moves the ConfigStamp, so running engines reload."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from pbx.models import (
    Announcement,
    Company,
    ConfigStamp,
    Device,
    Did,
    Extension,
    Holiday,
    HuntGroup,
    HuntMember,
    Mailbox,
    Membership,
    Menu,
    MenuKey,
    Multiselection,
    SchedulePeriod,
    Site,
    Trunk,
)

# Memberships too: the engine knows which extensions are operators' (they pick up the queue).
# What the hunt algorithms remember (HuntGroup.last_member, LineIdle) is written with
# update(), which sends no signal: a call does not reload the configuration.
WATCHED = (
    Company,
    Site,
    Extension,
    Device,
    Trunk,
    Did,
    Membership,
    Announcement,
    HuntGroup,
    HuntMember,
    Multiselection,
    Menu,
    MenuKey,
    SchedulePeriod,
    Holiday,
    Mailbox,
)


def _changed(sender: type, **kwargs: Any) -> None:
    transaction.on_commit(ConfigStamp.bump)


for model in WATCHED:
    post_save.connect(_changed, sender=model, dispatch_uid=f"stamp-save-{model.__name__}")
    post_delete.connect(_changed, sender=model, dispatch_uid=f"stamp-delete-{model.__name__}")


def _mailbox_for_new_extension(
    sender: type, instance: Extension, created: bool, **kwargs: Any
) -> None:
    """Every extension has voicemail, on by default (SPEC A4)."""
    if created and not kwargs.get("raw"):
        Mailbox.objects.get_or_create(extension=instance)


post_save.connect(
    _mailbox_for_new_extension, sender=Extension, dispatch_uid="mailbox-for-extension"
)
