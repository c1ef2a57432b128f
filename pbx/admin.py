"""Django admin for the telephony configuration (the portals come in later issues)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from pbx.models import (
    Company,
    Device,
    Did,
    Extension,
    Membership,
    Registration,
    Site,
    Trunk,
    generate_secret,
)


class DeviceForm(forms.ModelForm):
    secret = forms.CharField(
        label=_("secret"),
        required=False,
        min_length=8,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Leave empty to generate one. It is shown once after saving, never again."),
    )
    rotate_secret = forms.BooleanField(
        label=_("rotate secret"),
        required=False,
        help_text=_("Replace the secret with a new random one (shown once)."),
    )

    class Meta:
        model = Device
        fields = ["extension", "label", "username", "position"]


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    form = DeviceForm
    list_display = ("username", "extension", "label", "created_at")
    search_fields = ("username", "extension__number", "extension__display_name")

    def save_model(self, request: HttpRequest, obj: Device, form: Any, change: bool) -> None:
        secret = form.cleaned_data.get("secret")
        if (
            not change
            or secret
            or form.cleaned_data.get("rotate_secret")
            or obj.username != form.initial.get("username", obj.username)
        ):
            secret = secret or generate_secret()
            obj.set_secret(secret)
            messages.warning(
                request,
                gettext(
                    "SIP credentials of %(username)s: secret %(secret)s (realm %(realm)s). "
                    "Copy it now: it will not be shown again."
                )
                % {"username": obj.username, "secret": secret, "realm": obj.realm},
            )
        super().save_model(request, obj, form, change)


class DeviceInline(admin.TabularInline):
    model = Device
    fields = ("username", "label", "position")
    readonly_fields = ("username",)
    extra = 0
    can_delete = True
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # devices are added on their own page, where the secret is shown once


@admin.register(Extension)
class ExtensionAdmin(admin.ModelAdmin):
    list_display = ("number", "display_name", "site", "ring_mode", "do_not_disturb", "company")
    list_filter = ("company", "site", "do_not_disturb", "ring_mode")
    search_fields = ("number", "display_name", "email")
    inlines = [DeviceInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "company", "role", "extension")
    list_filter = ("company", "role")
    search_fields = ("user__username", "extension__number", "extension__display_name")
    autocomplete_fields = ("extension",)


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "time_zone")


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "company", "address")
    list_filter = ("company",)


class DidInline(admin.TabularInline):
    model = Did
    extra = 0


class TrunkForm(forms.ModelForm):
    class Meta:
        model = Trunk
        fields = "__all__"
        # The password is never sent back to the browser; left empty, the stored one stays.
        widgets = {"password": forms.PasswordInput(render_value=False)}


@admin.register(Trunk)
class TrunkAdmin(admin.ModelAdmin):
    form = TrunkForm
    list_display = ("name", "company", "host", "port", "transport", "register", "enabled")
    inlines = [DidInline]

    def save_model(self, request: HttpRequest, obj: Trunk, form: Any, change: bool) -> None:
        if change and not form.cleaned_data.get("password"):
            obj.password = Trunk.objects.get(pk=obj.pk).password
        super().save_model(request, obj, form, change)


@admin.register(Did)
class DidAdmin(admin.ModelAdmin):
    list_display = ("number", "trunk", "target_kind", "extension")
    search_fields = ("number",)


@admin.register(Registration)
class RegistrationAdmin(admin.ModelAdmin):
    """Where each phone is registered now (read-only: the engine writes these)."""

    list_display = ("username", "contact", "transport", "expires_at", "node")
    list_filter = ("node", "transport")
    search_fields = ("username", "contact")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
