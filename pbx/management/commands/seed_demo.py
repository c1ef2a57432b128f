"""`manage.py seed_demo`: create the demo company if missing, and print its logins."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from pbx import demo


class Command(BaseCommand):
    help = "Seed the demo company (idempotent) and print the web logins and SIP credentials."

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo.seed()
        if not result.seeded:
            self.stdout.write(f"Demo not seeded: {result.reason}.")
            return
        if result.created:
            self.stdout.write("Demo data created: " + ", ".join(result.created) + ".")
        web = f"http://{settings.CENTRALINO_BIND}:{settings.CENTRALINO_HTTP_PORT}"
        sip = f"{settings.CENTRALINO_BIND}:{settings.CENTRALINO_SIP_PORT}"
        self.stdout.write("")
        self.stdout.write(
            f"Web logins ({web}/login/: the operator lands on the console, the administrator"
            f" on {web}/manage/; the first login asks for a new password):"
        )
        for username, role, password in result.logins:
            self.stdout.write(f"  {username:<8} {password:<24} {role}")
        self.stdout.write("")
        self.stdout.write(
            f"SIP phones (server {sip}, UDP or TCP, realm {settings.CENTRALINO_REALM}):"
        )
        for number, name, username, secret in result.phones:
            self.stdout.write(f"  {number:<5} {name:<16} user {username:<6} secret {secret}")
        pins = ", ".join(f"{number} {pin}" for number, pin in result.pins)
        self.stdout.write(
            f"Voicemail: dial {settings.CENTRALINO_VOICEMAIL_CODE} from a phone, then its PIN"
            f" and #. PINs: {pins}"
        )
        self.stdout.write(f"(kept in {demo.credentials_path()})")
        self.stdout.write("")
        self.stdout.write(
            f"Try the console: register a phone as {demo.OPERATOR_EXTENSION} (the operator's, set"
            f" to answer automatically), log in as alice, and call {demo.OPERATOR_NUMBER} from"
            " another phone."
        )
        self.stdout.write(
            "Try the reception: dial 700 for the Multiselection"
            + (" (spoken menus)" if result.spoken else " (tones: install espeak-ng for speech)")
            + ", 600 for the hunt group Vendite (201-203 in turn), 610 for Assistenza (204 and"
            " 205 together)."
        )
        self.stdout.write("")
