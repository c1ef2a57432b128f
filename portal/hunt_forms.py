"""Forms of the Call Distributor pages: a hunt group's settings and its members."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from pbx.models import Algorithm, Company, Extension, Fallback, HuntGroup, Site

MIN_RING_TIME, MAX_RING_TIME = 5, 120  # seconds, as HuntMember.ring_time allows

# One line per algorithm, shown beside its select (SPEC E6; pbx/engine/hunt.py does it).
ALGORITHM_HELP = {
    Algorithm.LINEAR: _("Rings the lines one at a time, from the first of the list onward."),
    Algorithm.CIRCULAR: _(
        "Starts with the line that took the previous call, then goes on down the list."
    ),
    Algorithm.UNIFORM_SEQUENTIAL: _(
        "Starts with the line after the one that took the previous call: each line in turn."
    ),
    Algorithm.LONGEST_IDLE: _("Starts with the line that has been idle the longest."),
    Algorithm.RING_ALL: _("Rings every free line at once until one answers."),
}


class HuntGroupForm(forms.ModelForm):
    """A hunt group's settings; the company is the administrator's, never a field."""

    class Meta:
        model = HuntGroup
        fields = ["number", "name", "site", "algorithm", "fallback", "fallback_number"]
        widgets = {"fallback_number": forms.TextInput(attrs={"list": "fallback-extensions"})}

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.company = company
        self.fields["site"].queryset = Site.objects.filter(company=company).order_by("name")
        self.fields["site"].empty_label = _("No site")
        self.fields["fallback_number"].help_text = _(
            "For a voicemail: the extension's number. For another number: an extension, "
            "a group, or 0 and an outside number."
        )
        self.fields["algorithm"].widget.attrs["aria-describedby"] = "algorithm-help"
        self.fields["fallback"].label = _("The call goes to")  # its fieldset says when
        self.fields["fallback_number"].label = _("Extension or number")
        if self.instance.pk:
            # Menus, forwards and other groups dial it: it stays as created.
            self.fields["number"].disabled = True
            self.fields["number"].help_text = _(
                "A group keeps its number: menus and forwards dial it."
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("fallback") in (Fallback.OPERATOR, Fallback.HANGUP):
            cleaned["fallback_number"] = ""  # not used: do not keep a stale one
        return cleaned

    def algorithms(self) -> list[tuple[str, str, Any]]:
        """(value, label, explanation) of each algorithm, in the select's order."""
        return [(value, label, ALGORITHM_HELP[value]) for value, label in Algorithm.choices]


def extension_choices(extensions: list[Extension]) -> list[tuple[Any, Any]]:
    """Choices of a select of extensions grouped by site, the extensions without one last."""
    by_site: dict[str, list[tuple[int, str]]] = {}
    for extension in sorted(
        extensions, key=lambda e: (e.site is None, e.site.name if e.site else "", e.number)
    ):
        site = extension.site.name if extension.site else str(_("No site"))
        by_site.setdefault(site, []).append((extension.pk, str(extension)))
    return [("", _("Choose an extension"))] + list(by_site.items())


class MemberAddForm(forms.Form):
    """An extension to add to a group (from any site of the company) and its ring time.

    The view looks the extension up in the administrator's company: another company's id is
    a 404, not a choice error.
    """

    extension = forms.IntegerField(label=_("Extension"), widget=forms.Select)
    ring_time = forms.IntegerField(
        label=_("Ring time (s)"), min_value=MIN_RING_TIME, max_value=MAX_RING_TIME, initial=15
    )

    def __init__(self, *args: Any, candidates: list[Extension], **kwargs: Any) -> None:
        super().__init__(*args, auto_id="add_%s", **kwargs)
        self.fields["extension"].widget.choices = extension_choices(candidates)


class RingTimeForm(forms.Form):
    ring_time = forms.IntegerField(
        label=_("Ring time (s)"), min_value=MIN_RING_TIME, max_value=MAX_RING_TIME
    )
