"""`manage.py extension add|list|remove`: provisioning from a shell."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pbx.actions import add_extension, default_company, remove_extension
from pbx.models import Company, Extension


class Command(BaseCommand):
    help = "Add, list or remove extensions and their SIP credentials."

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
        for ext in rows:
            users = ", ".join(d.username for d in ext.devices.all()) or "-"
            site = ext.site.name if ext.site else "-"
            self.stdout.write(f"{ext.number:<7} {ext.display_name:<30} {site:<15} {users}")

    def _remove(self, company: Company, options: dict[str, Any]) -> None:
        remove_extension(company, options["number"])
        self.stdout.write(f"Extension {options['number']} removed.")


def _messages(error: ValidationError) -> list[str]:
    if hasattr(error, "message_dict"):
        return [f"{field}: {msg}" for field, msgs in error.message_dict.items() for msg in msgs]
    return list(error.messages)
