"""Writes that span several models: provisioning extensions and their devices."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from pbx.models import Company, Device, Extension, Site, generate_secret


@dataclass(frozen=True)
class Provisioned:
    extension: Extension
    device: Device
    secret: str  # shown once: only its digest HA1 values are stored


def default_company() -> Company:
    """The company the CLI works on when none is named: the only one, or a new one."""
    companies = list(Company.objects.order_by("id")[:2])
    if len(companies) > 1:
        raise ValidationError("Several companies exist: name one with --company.")
    if companies:
        return companies[0]
    return Company.objects.create(name="La mia azienda")


@transaction.atomic
def add_extension(
    company: Company,
    number: str,
    display_name: str,
    *,
    secret: str | None = None,
    site_name: str | None = None,
    username: str | None = None,
    email: str = "",
) -> Provisioned:
    """Create an extension with one device; raise ValidationError and change nothing on bad input."""
    if Extension.objects.filter(company=company, number=number).exists():
        raise ValidationError(f"Extension {number} already exists.")
    site = None
    if site_name:
        site, _ = Site.objects.get_or_create(company=company, name=site_name)
    extension = Extension(
        company=company, number=number, display_name=display_name, site=site, email=email
    )
    extension.full_clean()
    extension.save()
    device = Device(extension=extension, username=username or number, label="principale")
    if Device.objects.filter(username=device.username).exists():
        raise ValidationError(f"SIP username {device.username} is already taken.")
    secret = secret or generate_secret()
    device.set_secret(secret)
    device.full_clean()
    device.save()
    return Provisioned(extension, device, secret)


@transaction.atomic
def change_extension(
    company: Company, number: str, changes: dict[str, object], *, site_name: str | None = None
) -> Extension:
    """Change some fields of an extension; validate all, save all or nothing."""
    try:
        extension = Extension.objects.select_for_update().get(company=company, number=number)
    except Extension.DoesNotExist:
        raise ValidationError(f"Extension {number} does not exist.") from None
    for field, value in changes.items():
        setattr(extension, field, value)
    if site_name is not None:
        extension.site = (
            Site.objects.get_or_create(company=company, name=site_name)[0] if site_name else None
        )
    extension.full_clean()
    extension.save()
    return extension


@transaction.atomic
def rotate_secrets(company: Company, number: str) -> list[tuple[Device, str]]:
    """Give every device of an extension a new random secret; return them (shown once)."""
    devices = list(Device.objects.filter(extension__company=company, extension__number=number))
    if not devices:
        raise ValidationError(f"Extension {number} does not exist or has no device.")
    return [(device, device.rotate_secret()) for device in devices]


@transaction.atomic
def remove_extension(company: Company, number: str) -> None:
    """Delete an extension and its devices; its phones are refused from the next request."""
    deleted, _ = Extension.objects.filter(company=company, number=number).delete()
    if not deleted:
        raise ValidationError(f"Extension {number} does not exist.")
