"""`manage.py seed_demo`: the demo company, seeded once, printed every time."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from pbx import demo
from pbx.media.announcement import check_announcement
from pbx.models import (
    Announcement,
    Company,
    Device,
    Did,
    Extension,
    HuntGroup,
    Mailbox,
    Membership,
    Multiselection,
    Role,
    Trunk,
)
from pbx.sip.digest import ha1


@pytest.fixture(autouse=True)
def var_dir(settings: Any, tmp_path: Path) -> Path:
    settings.VAR_DIR = tmp_path
    return tmp_path


def seed_demo() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, list[Any]]:
    return {
        "companies": list(Company.objects.values_list("id", "name", "time_zone")),
        "extensions": list(
            Extension.objects.values_list("id", "number", "display_name", "site__name")
        ),
        "devices": list(Device.objects.values_list("id", "username", "ha1_md5", "ha1_sha256")),
        "trunks": list(
            Trunk.objects.values_list("id", "name", "host", "port", "transport", "register")
        ),
        "dids": list(Did.objects.values_list("id", "number", "extension__number")),
        "users": list(
            User.objects.values_list(
                "id",
                "username",
                "password",
                "is_superuser",
                "membership__role",
                "membership__extension__number",
            )
        ),
    }


def logins(output: str) -> list[str]:
    return [line for line in output.splitlines() if not line.startswith("Demo data created")]


@pytest.mark.django_db
def test_it_seeds_the_demo_company() -> None:
    seed_demo()

    company = Company.objects.get()
    assert (company.name, company.time_zone) == ("Demo S.r.l.", "Europe/Rome")
    assert sorted(company.sites.values_list("name", flat=True)) == ["Milano", "Roma"]
    assert list(company.extensions.values_list("number", "display_name")) == [
        ("200", "Centralino"),
        ("201", "Mario Rossi"),
        ("202", "Giulia Bianchi"),
        ("203", "Luca Verdi"),
        ("204", "Anna Neri"),
        ("205", "Paolo Russo"),
    ]
    assert sorted(Device.objects.values_list("username", flat=True)) == [
        "200",
        "201",
        "202",
        "203",
        "204",
        "205",
    ]
    trunk = Trunk.objects.get()
    assert (trunk.name, trunk.host, trunk.port, trunk.transport, trunk.register) == (
        "Carrier demo",
        "127.0.0.1",
        5070,
        "udp",
        False,
    )
    assert sorted(Did.objects.values_list("number", "target_kind", "extension__number")) == [
        ("0212345678", "operator", None),
        ("0212345700", "multiselection", None),
        ("0298765432", "extension", "201"),
    ]
    assert Company.objects.get().operator_number == "9"


@pytest.mark.django_db
def test_it_creates_admin_alice_and_bob_with_the_printed_passwords() -> None:
    output = seed_demo()

    for username in ("admin", "alice", "bob"):
        password = next(
            line.split()[1] for line in output.splitlines() if line.split()[:1] == [username]
        )
        assert User.objects.get(username=username).check_password(password)
    assert User.objects.get(username="admin").is_superuser
    members = {
        m.user.username: (m.company.name, m.role, m.extension.number if m.extension else None)
        for m in Membership.objects.select_related("user", "company", "extension")
    }
    assert members == {
        "admin": (demo.COMPANY_NAME, Role.ADMINISTRATOR, None),
        "alice": (demo.COMPANY_NAME, Role.OPERATOR, demo.OPERATOR_EXTENSION),
        "bob": (demo.COMPANY_NAME, Role.END_USER, "201"),
    }
    assert not User.objects.get(username="alice").is_staff


@pytest.mark.django_db
def test_the_printed_sip_secrets_match_the_devices(var_dir: Path) -> None:
    output = seed_demo()

    phones = [line.split() for line in output.splitlines() if " secret " in line]
    assert len(phones) == 6
    for words in phones:
        username, secret = words[words.index("user") + 1], words[words.index("secret") + 1]
        device = Device.objects.get(username=username)
        assert len(secret) >= 16
        assert device.ha1_md5 == ha1(username, device.realm, secret, "MD5")
    saved = json.loads((var_dir / "demo_credentials.json").read_text())
    assert {words[-1] for words in phones} == set(saved["secrets"].values())


@pytest.mark.django_db
def test_one_phones_secret_tells_nothing_of_anothers(var_dir: Path) -> None:
    output = seed_demo()

    secrets = [line.split()[-1] for line in output.splitlines() if " secret " in line]
    assert len(set(secrets)) == len(secrets)
    # No common part: the longest run two secrets share is what chance gives (a few letters).
    first, second = secrets[0], secrets[1]
    shared = max(
        (
            k
            for k in range(1, len(first) + 1)
            for i in range(len(first) - k + 1)
            if first[i : i + k] in second
        ),
        default=0,
    )
    assert shared <= 4


@pytest.mark.django_db
def test_a_second_run_changes_nothing_and_prints_the_same_logins() -> None:
    first = seed_demo()
    before = snapshot()

    second = seed_demo()

    assert snapshot() == before
    assert logins(second) == logins(first)
    assert "Demo data created" not in second


@pytest.mark.django_db
def test_a_password_changed_after_seeding_is_kept_and_not_printed() -> None:
    seed_demo()
    admin = User.objects.get(username="admin")
    admin.set_password("my own password")
    admin.save()

    output = seed_demo()

    admin.refresh_from_db()
    assert admin.check_password("my own password")
    assert demo.CHANGED in next(
        line for line in output.splitlines() if line.split()[:1] == ["admin"]
    )


@pytest.mark.django_db
def test_it_completes_a_partial_demo() -> None:
    seed_demo()
    Extension.objects.filter(number="205").delete()

    output = seed_demo()

    assert "extension 205" in output
    assert Extension.objects.filter(number="205").exists()


def test_it_leaves_a_database_with_other_companies_alone(company: Company) -> None:
    output = seed_demo()

    assert "Demo not seeded" in output
    assert list(Company.objects.all()) == [company]
    assert not User.objects.exists()


@pytest.mark.django_db
def test_the_demo_reception_is_ready_to_try() -> None:
    seed_demo()

    sales = HuntGroup.objects.get(number="600")
    assert [m.extension.number for m in sales.members.all()] == ["201", "202", "203"]
    assert HuntGroup.objects.get(number="610").algorithm == "ring_all"
    attendant = Multiselection.objects.get(number="700")
    main = attendant.menus.get(name="Benvenuto")
    assert {k.key: k.action for k in main.keys.all()} == {
        "1": "hunt_group",
        "2": "menu",
        "0": "operator",
        "#": "replay",
        "timeout": "operator",
    }
    assert attendant.periods.count() == 5
    assert attendant.default_menu is not None
    for announcement in Announcement.objects.all():
        check_announcement(announcement.path.read_bytes())  # a valid file, in one of the formats


@pytest.mark.django_db
def test_each_demo_mailbox_has_the_printed_pin(var_dir: Path) -> None:
    output = seed_demo()

    line = next(line for line in output.splitlines() if line.startswith("Voicemail:"))
    pins = dict(pair.split() for pair in line.split("PINs: ")[1].split(", "))
    assert sorted(pins) == ["200", "201", "202", "203", "204", "205"]
    mailbox = Mailbox.objects.get(extension__number="201")
    assert mailbox.try_pin(pins["201"])
    assert seed_demo().count(f"201 {pins['201']}") == 1  # the same PIN on the next start
