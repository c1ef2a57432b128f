"""`manage.py extension add|list|set|secret|remove`: provisioning from a shell."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pbx.actions import (
    add_extension,
    change_extension,
    default_company,
    remove_extension,
    rotate_secrets,
)
from pbx.models import Company, Extension, RingMode

# Options of `set` and the Extension fields they change.
_SETTABLE = {
    "name": "display_name",
    "email": "email",
    "mobile": "mobile",
    "forward_always": "forward_always",
    "forward_busy": "forward_busy",
    "forward_no_answer": "forward_no_answer",
    "no_answer_timeout": "no_answer_timeout",
    "ring_mode": "ring_mode",
}


class Command(BaseCommand):
    help = "Add, list, change or remove extensions and their SIP credentials."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--company", help="Company name (default: the only one).")
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Create an extension with one SIP device.")
        add.add_argument("number")
        add.add_argument("--name", required=True)
        add.add_argument("--secret", help="SIP secret (default: a random one, shown once).")
        add.add_argument("--site", help="Site name (created if missing).")
        add.add_argument("--username", help="SIP username (default: the number).")
        add.add_argument("--email", default="")
        sub.add_parser("list", help="List extensions and their SIP usernames.")
        change = sub.add_parser("set", help="Change an extension (only the options given).")
        change.add_argument("number")
        change.add_argument("--name")
        change.add_argument("--site", help="Site name (created if missing; '' for none).")
        change.add_argument("--email")
        change.add_argument("--mobile")
        change.add_argument("--dnd", choices=("on", "off"), help="Do not disturb.")
        for kind in ("always", "busy", "no-answer"):
            change.add_argument(f"--forward-{kind}", metavar="NUMBER", help="'' to clear.")
        change.add_argument("--no-answer-timeout", type=int, metavar="SECONDS")
        change.add_argument("--ring-mode", choices=[m.value for m in RingMode])
        secret = sub.add_parser("secret", help="Give the extension's devices new secrets.")
        secret.add_argument("number")
        remove = sub.add_parser("remove", help="Delete an extension and its devices.")
        remove.add_argument("number")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            company = self._company(options["company"])
            getattr(self, f"_{options['action']}")(company, options)
        except ValidationError as error:
            raise CommandError("; ".join(_messages(error))) from error

    def _company(self, name: str | None) -> Company:
        if name is None:
            return default_company()
        try:
            return Company.objects.get(name=name)
        except Company.DoesNotExist:
            raise CommandError(f"No company named {name!r}.") from None

    def _add(self, company: Company, options: dict[str, Any]) -> None:
        done = add_extension(
            company,
            options["number"],
            options["name"],
            secret=options["secret"],
            site_name=options["site"],
            username=options["username"],
            email=options["email"],
        )
        self.stdout.write(
            f"Extension {done.extension.number} ({done.extension.display_name}) created."
        )
        self.stdout.write(f"SIP username: {done.device.username}")
        self.stdout.write(f"SIP secret:   {done.secret}")
        self.stdout.write(f"SIP realm:    {done.device.realm}")

    def _list(self, company: Company, options: dict[str, Any]) -> None:
        rows = (
            Extension.objects.filter(company=company)
            .select_related("site")
            .prefetch_related("devices")
        )
        line = "{:<7} {:<24} {:<12} {:<4} {:<22} {}"
        self.stdout.write(line.format("NUMBER", "NAME", "SITE", "DND", "FORWARDING", "PHONES"))
        for ext in rows:
            users = ", ".join(d.username for d in ext.devices.all()) or "-"
            site = ext.site.name if ext.site else "-"
            dnd = "on" if ext.do_not_disturb else "-"
            self.stdout.write(
                line.format(ext.number, ext.display_name, site, dnd, _forwarding(ext), users)
            )

    def _set(self, company: Company, options: dict[str, Any]) -> None:
        changes = {
            field: options[option]
            for option, field in _SETTABLE.items()
            if options.get(option) is not None
        }
        if options.get("dnd") is not None:
            changes["do_not_disturb"] = options["dnd"] == "on"
        if not changes and options.get("site") is None:
            raise CommandError("Nothing to change: give at least one option (see --help).")
        extension = change_extension(company, options["number"], changes, site_name=options["site"])
        self.stdout.write(f"Extension {extension.number} ({extension.display_name}) changed.")

    def _secret(self, company: Company, options: dict[str, Any]) -> None:
        for device, secret in rotate_secrets(company, options["number"]):
            self.stdout.write(f"SIP username: {device.username}  new secret: {secret}")

    def _remove(self, company: Company, options: dict[str, Any]) -> None:
        remove_extension(company, options["number"])
        self.stdout.write(f"Extension {options['number']} removed.")


def _forwarding(ext: Extension) -> str:
    """What an extension forwards, shortly: "always 202", "busy 203, no answer 204" or "-"."""
    if ext.forward_always:
        return f"always {ext.forward_always}"
    parts = [
        f"{label} {target}"
        for label, target in (("busy", ext.forward_busy), ("no answer", ext.forward_no_answer))
        if target
    ]
    return ", ".join(parts) or "-"


def _messages(error: ValidationError) -> list[str]:
    if hasattr(error, "message_dict"):
        return [f"{field}: {msg}" for field, msgs in error.message_dict.items() for msg in msgs]
    return list(error.messages)
