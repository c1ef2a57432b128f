"""Forms of the extensions, sites and company numbers pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from pbx.models import Company, Did, DidTarget, Extension, Site, Trunk


class ExtensionForm(forms.ModelForm):
    """An extension's settings; the company is the administrator's, never a field."""

    class Meta:
        model = Extension
        fields = [
            "number",
            "display_name",
            "site",
            "email",
            "mobile",
            "enabled",
            "do_not_disturb",
            "forward_always",
            "forward_busy",
            "forward_no_answer",
            "no_answer_timeout",
            "ring_mode",
            "ring_outside",
            "ring_outside_delay",
        ]

    FIELDSETS = (
        (_("Extension"), ("number", "display_name", "site", "email", "mobile", "enabled")),
        (
            _("Do not disturb and forwarding"),
            (
                "do_not_disturb",
                "forward_always",
                "forward_busy",
                "forward_no_answer",
                "no_answer_timeout",
            ),
        ),
        (_("Ring mode"), ("ring_mode", "ring_outside", "ring_outside_delay")),
    )

    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(str(legend), [self[name] for name in names]) for legend, names in self.FIELDSETS]

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.company = company
        self.fields["site"].queryset = Site.objects.filter(company=company)
        if self.instance.pk:
            self.fields["number"].disabled = True  # phones and menus know it by its number


class NewDeviceForm(forms.Form):
    label = forms.CharField(label=_("Label"), max_length=60, required=False)


class SiteForm(forms.ModelForm):
    class Meta:
        model = Site
        fields = ["name", "address"]

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.company = company

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"]
        same = Site.objects.filter(company=self.instance.company, name=name)
        if self.instance.pk:
            same = same.exclude(pk=self.instance.pk)
        if same.exists():
            raise forms.ValidationError(_("A site with this name exists already."))
        return name


class DidForm(forms.ModelForm):
    """Where a company number goes: an extension, a hunt group, a Multiselection, the
    operator. Only the chosen kind's target is kept."""

    class Meta:
        model = Did
        fields = ["trunk", "number", "target_kind", "extension", "hunt_group", "multiselection"]

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["trunk"].queryset = Trunk.objects.filter(company=company)
        self.fields["extension"].queryset = company.extensions.all()
        self.fields["hunt_group"].queryset = company.hunt_groups.all()
        self.fields["multiselection"].queryset = company.multiselections.all()
        if self.instance.pk:
            self.fields["number"].disabled = True
            self.fields["trunk"].disabled = True

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("target_kind")
        for field, owner in (
            ("extension", DidTarget.EXTENSION),
            ("hunt_group", DidTarget.HUNT_GROUP),
            ("multiselection", DidTarget.MULTISELECTION),
        ):
            if kind != owner:
                data[field] = None
                setattr(self.instance, field, None)
        return data
