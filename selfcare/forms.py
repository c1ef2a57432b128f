"""Forms of the end-user portal: forwarding, the call log's search, the mailbox's settings."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from pbx.models import Extension, Mailbox
from selfcare.actions import FORWARDING_FIELDS, GREETING_MAX_BYTES


class ForwardingForm(forms.ModelForm):
    """Where the extension's calls go: the same fields the console and the administrator see."""

    no_answer_timeout = forms.IntegerField(
        label=_("Ring me for (seconds)"),
        min_value=5,
        max_value=300,
        help_text=_("Then the no-answer forwarding, or voicemail, takes the call."),
    )

    class Meta:
        model = Extension
        fields = list(FORWARDING_FIELDS)
        labels = {
            "forward_always": _("Forward every call to"),
            "forward_busy": _("When I am busy, forward to"),
            "forward_no_answer": _("When I do not answer, forward to"),
        }
        help_texts = {
            "forward_always": _("An extension, or 0 and an outside number. Empty: off."),
            "forward_busy": _("Empty: voicemail takes the call."),
            "forward_no_answer": _("Empty: voicemail takes the call."),
        }
        widgets = {
            name: forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"})
            for name in ("forward_always", "forward_busy", "forward_no_answer")
        }

    @staticmethod
    def _number(value: str) -> str:
        return "".join(value.split())  # "0333 123 4567" as people write it

    def clean_forward_always(self) -> str:
        return self._number(self.cleaned_data["forward_always"])

    def clean_forward_busy(self) -> str:
        return self._number(self.cleaned_data["forward_busy"])

    def clean_forward_no_answer(self) -> str:
        return self._number(self.cleaned_data["forward_no_answer"])


class CallSearchForm(forms.Form):
    """The call log's filters, from the query string; every field may be empty."""

    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    number = forms.CharField(
        label=_("Number or name"),
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"type": "search", "inputmode": "search"}),
    )
    missed = forms.BooleanField(label=_("Missed calls only"), required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since: date | None = data.get("since")
        until: date | None = data.get("until")
        if since and until and since > until:
            raise forms.ValidationError(_("The first day comes after the last one."))
        data["number"] = (data.get("number") or "").strip()
        return data


class MailboxForm(forms.ModelForm):
    class Meta:
        model = Mailbox
        fields = ["enabled", "email_messages"]
        labels = {"enabled": _("Voicemail on"), "email_messages": _("E-mail me each message")}
        help_texts = {
            "enabled": _("Off: callers cannot leave you a message."),
        }


class PinForm(forms.Form):
    pin = forms.CharField(
        label=_("New PIN"),
        min_length=4,
        max_length=10,
        help_text=_("4 to 10 digits, to listen to your messages by phone."),
        widget=forms.PasswordInput(
            attrs={"inputmode": "numeric", "autocomplete": "new-password", "pattern": "[0-9]*"}
        ),
    )
    pin_again = forms.CharField(
        label=_("New PIN again"),
        max_length=10,
        widget=forms.PasswordInput(
            attrs={"inputmode": "numeric", "autocomplete": "new-password", "pattern": "[0-9]*"}
        ),
    )

    def clean_pin(self) -> str:
        pin: str = self.cleaned_data["pin"]
        if not pin.isascii() or not pin.isdigit():
            raise forms.ValidationError(_("A PIN is made of digits only."))
        return pin

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "pin" in data and data["pin"] != data.get("pin_again"):
            self.add_error("pin_again", _("The two PINs differ."))
        return data


class GreetingForm(forms.Form):
    file = forms.FileField(
        label=_("Greeting (WAV file)"),
        help_text=_(
            "16-bit PCM mono 16 kHz, or G.711 µ-law / A-law mono 8 kHz; at most 2 minutes."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".wav,audio/wav,audio/x-wav"}),
    )

    def audio(self) -> bytes:
        """The file's bytes, at most one more than accepted (enough to say it is too large)."""
        upload = self.cleaned_data["file"]
        upload.seek(0)
        data: bytes = upload.read(GREETING_MAX_BYTES + 1)
        return data
