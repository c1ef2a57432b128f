"""`manage.py extension add|list|set|secret|remove`: provisioning from a shell."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from pbx.models import Company, Device, Extension
from pbx.sip.digest import ha1


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("extension", *args, stdout=out)
    return out.getvalue()


def secret_in(output: str) -> str:
    match = re.search(r"SIP secret:\s+(\S+)", output)
    assert match, output
    return match.group(1)


def test_add_prints_the_username_and_a_long_random_secret(company: Company) -> None:
    output = run("add", "201", "--name", "Mario Rossi")

    assert "SIP username: 201" in output
    secret = secret_in(output)
    assert len(secret) >= 16
    device = Device.objects.get(username="201")
    assert device.extension.display_name == "Mario Rossi"
    assert device.ha1_md5 == ha1("201", device.realm, secret, "MD5")


def test_add_uses_the_given_secret_and_site(company: Company) -> None:
    output = run(
        "add", "202", "--name", "Giulia Bianchi", "--secret", "s3cret-s3cret-42", "--site", "Roma"
    )

    assert secret_in(output) == "s3cret-s3cret-42"
    assert Extension.objects.get(number="202").site.name == "Roma"


def test_a_duplicate_number_is_refused_and_changes_nothing(company: Company) -> None:
    run("add", "201", "--name", "Mario Rossi")
    before = list(Device.objects.values_list("username", "ha1_md5", "ha1_sha256"))

    with pytest.raises(CommandError, match="201 already exists"):
        run("add", "201", "--name", "Someone Else")

    assert list(Device.objects.values_list("username", "ha1_md5", "ha1_sha256")) == before
    assert Extension.objects.get(number="201").display_name == "Mario Rossi"


@pytest.mark.parametrize("number", ["0123", "12a", "1", "1234567"])
def test_a_bad_number_gets_a_clear_error(company: Company, number: str) -> None:
    # The CLI speaks the site's language, Italian by default.
    with pytest.raises(CommandError, match="numero breve ha da 2 a 6 cifre"):
        run("add", number, "--name", "Nobody")

    assert not Extension.objects.exists()
    assert not Device.objects.exists()


def test_list_shows_numbers_names_sites_and_usernames(company: Company) -> None:
    run("add", "201", "--name", "Mario Rossi", "--site", "Milano")
    run("add", "204", "--name", "Anna Neri")

    lines = run("list").splitlines()

    assert lines[0].split() == ["NUMBER", "NAME", "SITE", "DND", "FORWARDING", "PHONES"]
    assert len(lines) == 3
    assert lines[1].split()[:3] == ["201", "Mario", "Rossi"]
    assert "Milano" in lines[1] and lines[1].endswith("201")
    assert lines[2].startswith("204") and lines[2].endswith("204")


def test_list_shows_do_not_disturb_and_forwarding(company: Company) -> None:
    run("add", "201", "--name", "Mario")
    run("add", "202", "--name", "Giulia")
    run("add", "203", "--name", "Luca")
    Extension.objects.filter(number="201").update(do_not_disturb=True, forward_always="202")
    Extension.objects.filter(number="202").update(forward_busy="203", forward_no_answer="201")

    lines = run("list").splitlines()
    header = lines[0]
    dnd, forwarding = header.index("DND"), header.index("FORWARDING")

    assert lines[1][dnd:forwarding].strip() == "on"
    assert lines[1][forwarding:].startswith("always 202")
    assert lines[2][dnd:forwarding].strip() == "-"
    assert lines[2][forwarding:].startswith("busy 203, no answer 201")
    assert lines[3][forwarding:].startswith("-")


def test_remove_deletes_the_extension_and_its_devices(company: Company) -> None:
    run("add", "201", "--name", "Mario Rossi")

    assert "removed" in run("remove", "201")

    assert not Extension.objects.exists()
    assert not Device.objects.exists()


def test_removing_an_unknown_extension_is_an_error(company: Company) -> None:
    run("add", "201", "--name", "Mario Rossi")

    with pytest.raises(CommandError, match="999 does not exist"):
        run("remove", "999")

    assert Extension.objects.count() == 1


def test_an_unknown_company_is_an_error(company: Company) -> None:
    with pytest.raises(CommandError, match="No company named"):
        run("--company", "Nope", "list")


def test_set_changes_only_what_it_is_given(company: Company) -> None:
    run("add", "201", "--name", "Mario Rossi", "--site", "Milano")

    output = run("set", "201", "--dnd", "on", "--forward-busy", "202", "--ring-mode", "in_order")

    assert "201" in output
    ext = Extension.objects.get(number="201")
    assert ext.do_not_disturb and ext.forward_busy == "202" and ext.ring_mode == "in_order"
    assert ext.display_name == "Mario Rossi" and ext.site.name == "Milano"
    run("set", "201", "--dnd", "off", "--forward-busy", "", "--site", "")
    ext.refresh_from_db()
    assert not ext.do_not_disturb and ext.forward_busy == "" and ext.site is None


def test_set_with_a_bad_value_changes_nothing(company: Company) -> None:
    run("add", "201", "--name", "Mario Rossi")

    with pytest.raises(CommandError, match="forward_always"):
        run("set", "201", "--name", "Someone Else", "--forward-always", "abc", "--site", "Nuova")

    ext = Extension.objects.get(number="201")
    assert ext.display_name == "Mario Rossi" and ext.forward_always == "" and ext.site is None
    assert not company.sites.filter(name="Nuova").exists()


def test_set_without_options_or_for_an_unknown_extension_is_an_error(company: Company) -> None:
    run("add", "201", "--name", "Mario Rossi")
    with pytest.raises(CommandError, match="Nothing to change"):
        run("set", "201")
    with pytest.raises(CommandError, match="999"):
        run("set", "999", "--dnd", "on")


def test_secret_gives_every_device_a_new_secret_shown_once(company: Company) -> None:
    old = secret_in(run("add", "201", "--name", "Mario Rossi"))

    output = run("secret", "201")

    new = re.search(r"new secret: (\S+)", output).group(1)  # type: ignore[union-attr]
    device = Device.objects.get(username="201")
    assert new != old and len(new) >= 16
    assert device.ha1_md5 == ha1("201", device.realm, new, "MD5")
    assert device.ha1_md5 != ha1("201", device.realm, old, "MD5")
