"""The Italian catalog: complete, compiled, and what receptionists see in the pages."""

from __future__ import annotations

import ast
import gettext
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from pbx.models import Company, Extension

IT_MESSAGES = Path(settings.BASE_DIR) / "locale" / "it" / "LC_MESSAGES"
PO_FILE = IT_MESSAGES / "django.po"
MO_FILE = IT_MESSAGES / "django.mo"


def po_entries(path: Path) -> list[tuple[str, str, set[str]]]:
    """Return (msgid, msgstr, flags) of each entry of a .po file, the header included.

    Enough of the format for this project's catalog: plural entries give their msgid and
    their forms joined by NUL, "" when any form is missing; contexts make it raise rather
    than pass unchecked.
    """
    entries: list[tuple[str, str, set[str]]] = []
    flags: set[str] = set()
    fields: dict[str, str] = {}
    current = ""

    def finish() -> None:
        nonlocal flags, fields
        if fields:
            forms = [v for k, v in sorted(fields.items()) if k.startswith("msgstr[")]
            text = ("\x00".join(forms) if all(forms) else "") if forms else fields["msgstr"]
            entries.append((fields["msgid"], text, flags))
        flags, fields = set(), {}

    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#,"):
            if any(k.startswith("msgstr") for k in fields):
                finish()
            flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#") or not line.strip():
            continue
        elif line.startswith('"'):
            fields[current] += ast.literal_eval(line)
        else:
            current, _, value = line.partition(" ")
            if current not in ("msgid", "msgstr", "msgid_plural") and not current.startswith(
                "msgstr["
            ):
                raise ValueError(f"{path}: {current} entries are not handled here")
            if current == "msgid" and any(k.startswith("msgstr") for k in fields):
                finish()
            fields[current] = ast.literal_eval(value)
    finish()
    return entries


def mo_catalog(path: Path) -> dict[str, str]:
    """The translations of a compiled catalog, without its header (dates change on every run)."""
    with path.open("rb") as mo:
        catalog = dict(gettext.GNUTranslations(mo)._catalog)  # type: ignore[attr-defined]
    catalog.pop("", None)
    return catalog


def test_every_message_is_translated() -> None:
    entries = po_entries(PO_FILE)
    untranslated = [msgid for msgid, msgstr, _ in entries if msgid and not msgstr]

    assert len(entries) > 50
    assert untranslated == []


def test_no_entry_is_fuzzy() -> None:
    fuzzy = [msgid or "(header)" for msgid, _, flags in po_entries(PO_FILE) if "fuzzy" in flags]

    assert fuzzy == []


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="needs msgfmt (apt install gettext)")
def test_the_committed_mo_matches_the_po(tmp_path: Path) -> None:
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check-format", "-o", fresh, PO_FILE], check=True)

    assert mo_catalog(MO_FILE) == mo_catalog(fresh), (
        "locale/it/LC_MESSAGES/django.mo is stale: "
        "run `manage.py compilemessages -l it --ignore=.venv` and commit it"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accept_language", "expected", "not_expected"),
    [
        ("it", ["Motore telefonico", "Amministrazione", '<html lang="it">'], "Telephony engine"),
        ("en", ["Telephony engine", "Administration", '<html lang="en">'], "Motore telefonico"),
        ("", ["Motore telefonico", '<html lang="it">'], "Telephony engine"),
    ],
)
def test_the_home_page_speaks_the_browsers_language_italian_by_default(
    client: Client, accept_language: str, expected: list[str], not_expected: str
) -> None:
    headers = {"accept-language": accept_language} if accept_language else {}

    page = client.get("/", headers=headers).content.decode()

    for text in expected:
        assert text in page
    assert not_expected not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        (
            "it",
            [
                "Scegli interno da modificare",
                "Numero breve",
                "Modalità squillo",
                "Non disturbare",
                "Dispositivi in sequenza",
            ],
        ),
        ("en", ["Select extension to change", "Short number", "Ring mode", "Do not disturb"]),
    ],
)
def test_the_extension_list_in_the_admin_is_translated(
    client: Client, carol: User, company: Company, accept_language: str, expected: list[str]
) -> None:
    Extension.objects.create(company=company, number="201", display_name="Giulia Bianchi")
    client.force_login(carol)

    response = client.get("/admin/pbx/extension/", headers={"accept-language": accept_language})

    assert response.status_code == 200
    page = response.content.decode()
    for text in expected:
        assert text in page


@pytest.mark.django_db
def test_the_device_and_extension_forms_have_no_english_left_in_italian(
    client: Client, carol: User, company: Company
) -> None:
    Extension.objects.create(company=company, number="201", display_name="Giulia Bianchi")
    client.force_login(carol)

    extensions = client.get("/admin/pbx/extension/", headers={"accept-language": "it"})
    device_form = client.get("/admin/pbx/device/add/", headers={"accept-language": "it"})

    assert "Sede" in extensions.content.decode()
    assert "Azienda" in extensions.content.decode()
    for english in ("Extension:", "Secret", "Leave empty to generate one", "Rotate secret"):
        assert english not in device_form.content.decode()
