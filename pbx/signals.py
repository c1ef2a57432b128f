"""Every configuration change moves the ConfigStamp, so running engines reload."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from pbx.models import Company, ConfigStamp, Device, Did, Extension, Membership, Site, Trunk

# Memberships too: the engine knows which extensions are operators' (they pick up the queue).
WATCHED = (Company, Site, Extension, Device, Trunk, Did, Membership)


def _changed(sender: type, **kwargs: Any) -> None:
    transaction.on_commit(ConfigStamp.bump)


for model in WATCHED:
    post_save.connect(_changed, sender=model, dispatch_uid=f"stamp-save-{model.__name__}")
    post_delete.connect(_changed, sender=model, dispatch_uid=f"stamp-delete-{model.__name__}")
