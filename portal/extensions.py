"""Extensions and their phones, sites, and what each company number reaches (SPEC E2).

A new phone's secret is shown once, on the page that made it (a new device, a rotation): the
database keeps only its digest hashes, so it cannot be shown again.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _

from pbx.models import Device, Did, Extension, Registration, Site, generate_secret
from portal.access import admin_view
from portal.extension_forms import DidForm, ExtensionForm, NewDeviceForm, SiteForm

# --- extensions -----------------------------------------------------------------------------


@admin_view
def extension_list(request: HttpRequest) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    query = request.GET.get("q", "").strip()
    site = request.GET.get("site", "")
    extensions = company.extensions.select_related("site").annotate(phones=Count("devices"))
    if query:
        extensions = extensions.filter(
            Q(number__startswith=query) | Q(display_name__icontains=query)
        )
    if site == "none":
        extensions = extensions.filter(site__isnull=True)
    elif site.isdigit():
        extensions = extensions.filter(site_id=int(site))
    extensions = extensions.order_by("site__name", "number")
    by_site: dict[str, list[Extension]] = {}
    for extension in extensions:
        name = extension.site.name if extension.site else _("No site")
        by_site.setdefault(name, []).append(extension)
    context = {
        "by_site": by_site,
        "query": query,
        "site": site,
        "sites": company.sites.order_by("name"),
        "count": sum(len(v) for v in by_site.values()),
    }
    template = "manage/extensions/rows.html" if request.htmx else "manage/extensions/list.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@admin_view
def extension_new(request: HttpRequest) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    form = ExtensionForm(request.POST or None, company=company)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            extension = form.save()
            device, secret = _new_device(extension, _("desk phone"))
        messages.success(request, _("Extension %(number)s created.") % {"number": extension.number})
        return render(
            request,
            "manage/extensions/secret.html",
            {"extension": extension, "device": device, "secret": secret, "new": True},
        )
    return render(request, "manage/extensions/form.html", {"form": form})


@admin_view
def extension_edit(request: HttpRequest, pk: int) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    extension = get_object_or_404(Extension, pk=pk, company=company)
    form = ExtensionForm(request.POST or None, instance=extension, company=company)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Extension %(number)s saved.") % {"number": extension.number})
        return redirect("manage:extension", pk=extension.pk)
    devices = list(extension.devices.all())
    registered = set(
        Registration.objects.filter(
            username__in=[d.username for d in devices], expires_at__gt=timezone.now()
        ).values_list("username", flat=True)
    )
    context = {
        "form": form,
        "extension": extension,
        "devices": [(device, device.username in registered) for device in devices],
        "device_form": NewDeviceForm(),
    }
    return render(request, "manage/extensions/form.html", context)


@admin_view
def extension_delete(request: HttpRequest, pk: int) -> HttpResponse:
    extension = get_object_or_404(Extension, pk=pk, company=request.company)  # type: ignore[attr-defined]
    if request.method != "POST":
        return render(request, "manage/confirm_delete.html", {"thing": extension})
    used = [str(m.group) for m in extension.hunt_memberships.select_related("group")]
    if used:
        messages.error(
            request,
            _("Extension %(number)s is a member of %(groups)s: remove it there first.")
            % {"number": extension.number, "groups": ", ".join(used)},
        )
        return redirect("manage:extension", pk=extension.pk)
    extension.delete()
    messages.success(request, _("Extension %(number)s deleted.") % {"number": extension.number})
    return redirect("manage:extensions")


# --- devices --------------------------------------------------------------------------------


def _new_device(extension: Extension, label: str) -> tuple[Device, str]:
    """A phone for `extension` with a fresh secret (returned: shown once)."""
    username = extension.number
    suffix = 1
    while Device.objects.filter(username=username).exists():
        suffix += 1
        username = f"{extension.number}-{suffix}"
    device = Device(
        extension=extension, username=username, label=label, position=extension.devices.count()
    )
    secret = generate_secret()
    device.set_secret(secret)
    device.full_clean()
    device.save()
    return device, secret


@admin_view
def device_add(request: HttpRequest, pk: int) -> HttpResponse:
    extension = get_object_or_404(Extension, pk=pk, company=request.company)  # type: ignore[attr-defined]
    form = NewDeviceForm(request.POST or None)
    if request.method != "POST" or not form.is_valid():
        return redirect("manage:extension", pk=extension.pk)
    device, secret = _new_device(extension, form.cleaned_data["label"])
    return render(
        request,
        "manage/extensions/secret.html",
        {"extension": extension, "device": device, "secret": secret},
    )


@admin_view
def device_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    device = get_object_or_404(
        Device,
        pk=pk,
        extension__company=request.company,  # type: ignore[attr-defined]
    )
    if request.method != "POST":
        return redirect("manage:extension", pk=device.extension_id)
    secret = device.rotate_secret()
    return render(
        request,
        "manage/extensions/secret.html",
        {"extension": device.extension, "device": device, "secret": secret, "rotated": True},
    )


@admin_view
def device_delete(request: HttpRequest, pk: int) -> HttpResponse:
    device = get_object_or_404(
        Device,
        pk=pk,
        extension__company=request.company,  # type: ignore[attr-defined]
    )
    if request.method == "POST":
        device.delete()
        messages.success(request, _("Phone %(username)s removed.") % {"username": device.username})
    return redirect("manage:extension", pk=device.extension_id)


# --- sites ----------------------------------------------------------------------------------


@admin_view
def site_list(request: HttpRequest) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    form = SiteForm(request.POST or None, company=company)
    if request.method == "POST" and form.is_valid():
        site = form.save()
        messages.success(request, _("Site %(name)s added.") % {"name": site.name})
        return redirect("manage:sites")
    sites = company.sites.annotate(count=Count("extensions")).order_by("name")
    return render(request, "manage/sites/list.html", {"sites": sites, "form": form})


@admin_view
def site_edit(request: HttpRequest, pk: int) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    site = get_object_or_404(Site, pk=pk, company=company)
    if request.method == "POST" and request.POST.get("delete"):
        site.delete()  # its extensions stay, without a site
        messages.success(request, _("Site %(name)s deleted.") % {"name": site.name})
        return redirect("manage:sites")
    form = SiteForm(request.POST or None, instance=site, company=company)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Site %(name)s saved.") % {"name": site.name})
        return redirect("manage:sites")
    return render(request, "manage/sites/form.html", {"form": form, "site": site})


# --- company numbers ------------------------------------------------------------------------


@admin_view
def number_list(request: HttpRequest) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    dids = Did.objects.filter(trunk__company=company).select_related(
        "trunk", "extension", "hunt_group", "multiselection"
    )
    return render(request, "manage/numbers/list.html", {"dids": dids.order_by("number")})


@admin_view
def number_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    did = get_object_or_404(Did, pk=pk, trunk__company=company) if pk else None
    form = DidForm(request.POST or None, instance=did, company=company)
    if request.method == "POST" and form.is_valid():
        try:
            saved = form.save()
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Number %(number)s saved.") % {"number": saved.number})
            return redirect("manage:numbers")
    return render(request, "manage/numbers/form.html", {"form": form, "did": did})


@admin_view
def number_delete(request: HttpRequest, pk: int) -> HttpResponse:
    did = get_object_or_404(Did, pk=pk, trunk__company=request.company)  # type: ignore[attr-defined]
    if request.method != "POST":
        return render(request, "manage/confirm_delete.html", {"thing": did})
    did.delete()
    messages.success(request, _("Number %(number)s deleted.") % {"number": did.number})
    return redirect("manage:numbers")


urlpatterns = [
    path("extensions/", extension_list, name="extensions"),
    path("extensions/new/", extension_new, name="extension-new"),
    path("extensions/<int:pk>/", extension_edit, name="extension"),
    path("extensions/<int:pk>/delete/", extension_delete, name="extension-delete"),
    path("extensions/<int:pk>/phones/", device_add, name="device-add"),
    path("phones/<int:pk>/rotate/", device_rotate, name="device-rotate"),
    path("phones/<int:pk>/delete/", device_delete, name="device-delete"),
    path("sites/", site_list, name="sites"),
    path("sites/<int:pk>/", site_edit, name="site"),
    path("numbers/", number_list, name="numbers"),
    path("numbers/new/", number_edit, name="number-new"),
    path("numbers/<int:pk>/", number_edit, name="number"),
    path("numbers/<int:pk>/delete/", number_delete, name="number-delete"),
]
