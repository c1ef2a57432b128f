"""The demo company that `make run` seeds, so a new user can register a phone and call at once.

Demo S.r.l. (Europe/Rome), sites Milano and Roma, the operator phone 200 "Centralino" and
extensions 201-205 with one device each (SIP username = number), the web users admin
(superuser), alice (operator) and bob (end user), and the trunk "Carrier demo" to
127.0.0.1:5070/udp bringing 0212345678 (to 200) and 0298765432 (to 201), and the reception of
pbx/demo_reception.py: hunt groups 600 and 610 and the Multiselection 700 with spoken menus.

The database keeps only digest HA1 values, so the secrets and passwords are drawn once per
install and kept in ``var/demo_credentials.json``: every start prints them again from there.
Seeding is idempotent: it creates only what is missing and never overwrites a password or a
secret someone changed (the printout marks those as changed). It leaves alone a database that
already holds other companies and no demo.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import User
from django.db import transaction

from pbx.actions import add_extension
from pbx.demo_reception import seed_reception
from pbx.models import (
    Company,
    Device,
    Did,
    DidTarget,
    Extension,
    Mailbox,
    Membership,
    Role,
    Site,
    Trunk,
    generate_secret,
)
from pbx.sip.digest import ha1

COMPANY_NAME = "Demo S.r.l."
TIME_ZONE = "Europe/Rome"
# (number, name, site)
EXTENSIONS: list[tuple[str, str, str]] = [
    ("200", "Centralino", "Milano"),
    ("201", "Mario Rossi", "Milano"),
    ("202", "Giulia Bianchi", "Milano"),
    ("203", "Luca Verdi", "Milano"),
    ("204", "Anna Neri", "Roma"),
    ("205", "Paolo Russo", "Roma"),
]
OPERATOR_EXTENSION = "200"
TRUNK_NAME = "Carrier demo"
OPERATOR_NUMBER = "9"  # internal phones dial it to reach the operator queue
# (company number, where it goes: an extension's number or "operator", the console's queue)
DIDS: list[tuple[str, str]] = [("0212345678", "operator"), ("0298765432", "201")]
# (username, role, their extension): admin is also the superuser of Django's admin.
USERS: list[tuple[str, Role, str | None]] = [
    ("admin", Role.ADMINISTRATOR, None),
    ("alice", Role.OPERATOR, OPERATOR_EXTENSION),
    ("bob", Role.END_USER, "201"),
]
CHANGED = "(changed since seeding)"


def credentials_path() -> Path:
    return Path(settings.VAR_DIR) / "demo_credentials.json"


def load_credentials(path: Path | None = None) -> dict[str, Any]:
    """The demo's secrets for this install, drawn and saved on first use."""
    path = path or credentials_path()
    if path.exists():
        data: dict[str, Any] = json.loads(path.read_text())
        if "pins" not in data:  # an install seeded before voicemail: its PINs are drawn now
            data["pins"] = _draw_pins()
            _save(path, data)
        return data
    data = {
        "install_key": generate_secret(10),
        "passwords": {username: secrets.token_urlsafe(9) for username, _, _ in USERS},
        "secrets": {number: generate_secret() for number, _, _ in EXTENSIONS},
        "pins": _draw_pins(),
    }
    _save(path, data)
    return data


def _draw_pins() -> dict[str, str]:
    return {number: f"{secrets.randbelow(10**4):04d}" for number, _, _ in EXTENSIONS}


def _save(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    # Created readable by this user only from the first byte: it holds passwords.
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def device_secret(number: str, credentials: dict[str, Any]) -> str:
    """The demo secret of a device: drawn on its own, so that one phone's secret tells
    nothing of another's. An install seeded before that kept one secret pattern: its
    devices keep what they have (the printout shows it), new ones get their own."""
    drawn = credentials.get("secrets", {}).get(number)
    if drawn:
        return str(drawn)
    return f"demo-{number}-{credentials['install_key']}"


@dataclass
class SeedResult:
    seeded: bool
    created: list[str] = field(default_factory=list)
    # (username, role, password or CHANGED)
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    # (number, name, username, secret or CHANGED)
    phones: list[tuple[str, str, str, str]] = field(default_factory=list)
    # (number, voicemail PIN or CHANGED)
    pins: list[tuple[str, str]] = field(default_factory=list)
    reason: str = ""
    spoken: bool = True  # the demo menus speak (espeak-ng was there), or they are tones


def seed(credentials: dict[str, Any] | None = None) -> SeedResult:
    """Create whatever part of the demo is missing and report the logins to print."""
    if not Company.objects.filter(name=COMPANY_NAME).exists() and Company.objects.exists():
        return SeedResult(False, reason="the database already holds other companies")
    own_file = credentials is None  # the install's credentials: what is learnt is saved
    credentials = credentials or load_credentials()
    result = SeedResult(True)
    with transaction.atomic():
        company = _company(result)
        for number, name, site in EXTENSIONS:
            _extension(company, number, name, site, credentials, result)
        remember = _pins(company, credentials, result)  # the mailboxes came with them
        _trunk(company, result)
        for username, role, number in USERS:
            _user(company, username, role, number, credentials, result)
        reception = seed_reception(company)
        result.created.extend(reception.created)
        result.spoken = reception.spoken
    if remember and own_file:
        _save(credentials_path(), credentials)
    return result


def _company(result: SeedResult) -> Company:
    company, created = Company.objects.get_or_create(
        name=COMPANY_NAME, defaults={"time_zone": TIME_ZONE, "operator_number": OPERATOR_NUMBER}
    )
    if created:
        result.created.append(f"company {COMPANY_NAME}")
    for site in ("Milano", "Roma"):
        if Site.objects.get_or_create(company=company, name=site)[1]:
            result.created.append(f"site {site}")
    return company


def _extension(
    company: Company,
    number: str,
    name: str,
    site: str,
    credentials: dict[str, Any],
    result: SeedResult,
) -> None:
    secret = device_secret(number, credentials)
    if not Extension.objects.filter(company=company, number=number).exists():
        add_extension(company, number, name, secret=secret, site_name=site)
        result.created.append(f"extension {number}")
        result.phones.append((number, name, number, secret))
        return
    device = Device.objects.filter(extension__company=company, extension__number=number).first()
    if device is None:
        return
    expected = ha1(device.username, device.realm, secret, "MD5")
    shown = secret if device.ha1_md5 == expected else CHANGED
    result.phones.append((number, name, device.username, shown))


def _pins(company: Company, credentials: dict[str, Any], result: SeedResult) -> bool:
    """Give each demo mailbox its drawn PIN once, never over one its owner chose, and say
    which PINs still hold. The hash set at seeding is remembered with the credentials, so a
    later start compares hashes instead of running the slow password hasher per mailbox.
    Returns whether the credentials gained something to save."""
    seeded: dict[str, str] = credentials.setdefault("pin_hashes", {})
    changed = False
    for number, _, _ in EXTENSIONS:
        mailbox = Mailbox.objects.filter(
            extension__company=company, extension__number=number
        ).first()
        if mailbox is None:
            continue
        pin = str(credentials["pins"][number])
        if not mailbox.has_pin:
            mailbox.set_pin(pin)
            mailbox.save(update_fields=["pin_hash"])
            seeded[number], changed = mailbox.pin_hash, True
        elif number not in seeded and check_password(pin, mailbox.pin_hash):
            seeded[number], changed = mailbox.pin_hash, True  # seeded before hashes were kept
        result.pins.append((number, pin if seeded.get(number) == mailbox.pin_hash else CHANGED))
    return changed


def _trunk(company: Company, result: SeedResult) -> None:
    trunk, created = Trunk.objects.get_or_create(
        company=company,
        name=TRUNK_NAME,
        defaults={"host": "127.0.0.1", "port": 5070, "transport": "udp", "register": False},
    )
    if created:
        result.created.append(f"trunk {TRUNK_NAME}")
    for number, target in DIDS:
        if Did.objects.filter(number=number).exists():
            continue
        if target == "operator":
            did = Did(trunk=trunk, number=number, target_kind=DidTarget.OPERATOR)
        else:
            extension = Extension.objects.filter(company=company, number=target).first()
            if extension is None:
                continue
            did = Did(
                trunk=trunk, number=number, target_kind=DidTarget.EXTENSION, extension=extension
            )
        did.full_clean()
        did.save()
        result.created.append(f"number {number} -> {target}")


def _user(
    company: Company,
    username: str,
    role: Role,
    number: str | None,
    credentials: dict[str, Any],
    result: SeedResult,
) -> None:
    password = credentials["passwords"][username]
    label = role.value.replace("_", " ")  # printed as before: administrator, operator, end user
    user = User.objects.filter(username=username).first()
    if user is None:
        if role is Role.ADMINISTRATOR:
            user = User.objects.create_superuser(username, f"{username}@demo.invalid", password)
        else:
            user = User.objects.create_user(username, f"{username}@demo.invalid", password)
        result.created.append(f"user {username}")
        result.logins.append((username, label, password))
    else:
        shown = password if user.check_password(password) else CHANGED
        result.logins.append((username, label, shown))
    if not Membership.objects.filter(user=user).exists():
        extension = company.extensions.filter(number=number).first() if number else None
        Membership.objects.create(user=user, company=company, role=role, extension=extension)
