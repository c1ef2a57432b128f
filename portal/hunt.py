"""The Call Distributor (SPEC E6): hunt groups by site, each with its number, its algorithm,
what happens when nobody answers, and its members, from any site of the company, in order,
each with its ring time.

A member change (add, remove, move, ring time) answers an htmx request with the member list
alone (manage/hunt/members.html) and a plain form post with a redirect to the group's page,
so every control works without JavaScript too.
"""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from pbx.models import Extension, HuntGroup, HuntMember, KeyAction, MenuKey
from portal.access import admin_view
from portal.hunt_forms import HuntGroupForm, MemberAddForm, RingTimeForm

# --- access: every query starts from the administrator's company ----------------------------


def _get_group(request: HttpRequest, pk: int) -> HuntGroup:
    return get_object_or_404(HuntGroup, pk=pk, company=request.company)  # type: ignore[attr-defined]


def _get_member(group: HuntGroup, member_pk: int) -> HuntMember:
    return get_object_or_404(
        HuntMember.objects.select_related("extension"), pk=member_pk, group=group
    )


def _get_extension(request: HttpRequest, pk: int) -> Extension:
    return get_object_or_404(Extension, pk=pk, company=request.company)  # type: ignore[attr-defined]


# --- groups ---------------------------------------------------------------------------------


@admin_view
def group_list(request: HttpRequest) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    site = request.GET.get("site", "")
    groups = company.hunt_groups.select_related("site").annotate(member_count=Count("members"))
    if site == "none":
        groups = groups.filter(site__isnull=True)
    elif site.isdigit():
        groups = groups.filter(site_id=int(site))
    by_site: dict[str, list[HuntGroup]] = {}
    for group in groups.order_by("site__name", "number"):
        name = group.site.name if group.site else _("No site")
        by_site.setdefault(name, []).append(group)
    context = {"by_site": by_site, "site": site, "sites": company.sites.order_by("name")}
    return render(request, "manage/hunt/list.html", context)


@admin_view
def group_new(request: HttpRequest) -> HttpResponse:
    form = HuntGroupForm(request.POST or None, company=request.company)  # type: ignore[attr-defined]
    if request.method == "POST" and form.is_valid():
        group = form.save()
        messages.success(
            request,
            _("Hunt group %(number)s created: now add its members.") % {"number": group.number},
        )
        return redirect("manage:hunt_group", pk=group.pk)
    return _group_page(request, None, form)


@admin_view
def group_edit(request: HttpRequest, pk: int) -> HttpResponse:
    group = _get_group(request, pk)
    form = HuntGroupForm(request.POST or None, instance=group, company=group.company)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Hunt group %(number)s saved.") % {"number": group.number})
        return redirect("manage:hunt_group", pk=group.pk)
    return _group_page(request, group, form)


@admin_view
def group_delete(request: HttpRequest, pk: int) -> HttpResponse:
    group = _get_group(request, pk)
    users = _dialled_by(group)
    if users:
        messages.error(
            request,
            _("%(users)s send calls to hunt group %(number)s: change them first.")
            % {"users": "; ".join(users), "number": group.number},
        )
        return redirect("manage:hunt_group", pk=group.pk)
    if request.method != "POST":
        return render(request, "manage/confirm_delete.html", {"thing": group})
    group.delete()
    messages.success(request, _("Hunt group %(number)s deleted.") % {"number": group.number})
    return redirect("manage:hunt_groups")


def _dialled_by(group: HuntGroup) -> list[str]:
    """What would send calls to nowhere if `group` went: company numbers, menu keys."""
    found = [_("company number %(number)s") % {"number": did.number} for did in group.dids.all()]
    keys = MenuKey.objects.filter(
        menu__multiselection__company=group.company,
        action=KeyAction.HUNT_GROUP,
        number=group.number,
    ).select_related("menu__multiselection")
    found += [
        _("key %(key)s of menu %(menu)s (%(attendant)s)")
        % {"key": key.key, "menu": key.menu.name, "attendant": key.menu.multiselection.name}
        for key in keys
    ]
    return found


def _group_page(
    request: HttpRequest,
    group: HuntGroup | None,
    form: HuntGroupForm,
    add_form: MemberAddForm | None = None,
) -> HttpResponse:
    company = request.company  # type: ignore[attr-defined]
    context = {
        "group": group,
        "form": form,
        "extensions": company.extensions.order_by("number"),  # the fallback's suggestions
    }
    if group is not None:
        context.update(_members_context(group, add_form))
    return render(request, "manage/hunt/form.html", context)


# --- members --------------------------------------------------------------------------------


def _members_context(
    group: HuntGroup, add_form: MemberAddForm | None = None, note: str = "", error: bool = False
) -> dict[str, object]:
    members = list(group.members.select_related("extension__site"))
    taken = [m.extension_id for m in members]
    candidates = list(group.company.extensions.select_related("site").exclude(pk__in=taken))
    return {
        "group": group,
        "members": members,
        "add_form": add_form or MemberAddForm(candidates=candidates),
        "note": note,
        "note_is_error": error,
    }


def _members_changed(
    request: HttpRequest, group: HuntGroup, note: str, *, error: bool = False
) -> HttpResponse:
    """The member list for htmx (with `note` in its live region), else back to the page."""
    if request.htmx:  # type: ignore[attr-defined]
        return render(
            request, "manage/hunt/members.html", _members_context(group, note=note, error=error)
        )
    (messages.error if error else messages.success)(request, note)
    return redirect(reverse("manage:hunt_group", args=[group.pk]) + "#members")


def _save_order(members: list[HuntMember]) -> None:
    """Number `members` 0, 1, 2... in the order given (the engine rings them so)."""
    with transaction.atomic():
        for position, member in enumerate(members):
            if member.position != position:
                member.position = position
                member.save(update_fields=["position"])


@admin_view
@require_POST
def member_add(request: HttpRequest, pk: int) -> HttpResponse:
    group = _get_group(request, pk)
    taken = group.members.values_list("extension_id", flat=True)
    candidates = list(group.company.extensions.select_related("site").exclude(pk__in=taken))
    form = MemberAddForm(request.POST, candidates=candidates)
    if not form.is_valid():
        if request.htmx:  # type: ignore[attr-defined]
            return render(request, "manage/hunt/members.html", _members_context(group, form))
        return _group_page(
            request, group, HuntGroupForm(instance=group, company=group.company), form
        )
    extension = _get_extension(request, form.cleaned_data["extension"])
    if group.members.filter(extension=extension).exists():
        note = _("%(extension)s is a member already.") % {"extension": extension}
        return _members_changed(request, group, note, error=True)
    last = group.members.aggregate(last=Max("position"))["last"]
    HuntMember.objects.create(
        group=group,
        extension=extension,
        position=0 if last is None else last + 1,
        ring_time=form.cleaned_data["ring_time"],
    )
    note = _("%(extension)s added.") % {"extension": extension}
    return _members_changed(request, group, note)


@admin_view
@require_POST
def member_remove(request: HttpRequest, pk: int, member_pk: int) -> HttpResponse:
    group = _get_group(request, pk)
    member = _get_member(group, member_pk)
    member.delete()
    _save_order(list(group.members.all()))
    note = _("%(extension)s removed.") % {"extension": member.extension}
    return _members_changed(request, group, note)


@admin_view
@require_POST
def member_move(request: HttpRequest, pk: int, member_pk: int) -> HttpResponse:
    group = _get_group(request, pk)
    member = _get_member(group, member_pk)
    step = {"up": -1, "down": 1}.get(request.POST.get("direction", ""))
    if step is None:
        return HttpResponseBadRequest(_("Move up or down."))
    members = list(group.members.all())
    at = next(i for i, m in enumerate(members) if m.pk == member.pk)
    to = min(max(at + step, 0), len(members) - 1)
    members.insert(to, members.pop(at))
    _save_order(members)
    note = _("%(extension)s is now number %(position)d of %(count)d.") % {
        "extension": member.extension,
        "position": to + 1,
        "count": len(members),
    }
    return _members_changed(request, group, note)


@admin_view
@require_POST
def member_order(request: HttpRequest, pk: int) -> HttpResponse:
    """The whole order at once (drag and drop): `order` lists every member's id."""
    group = _get_group(request, pk)
    members = {m.pk: m for m in group.members.all()}
    try:
        order = [int(pk) for pk in request.POST.get("order", "").split(",")]
    except ValueError:
        order = []
    if sorted(order) != sorted(members):
        return HttpResponseBadRequest(_("The order must list every member once."))
    _save_order([members[pk] for pk in order])
    return _members_changed(request, group, _("New order saved."))


@admin_view
@require_POST
def member_ring_time(request: HttpRequest, pk: int, member_pk: int) -> HttpResponse:
    group = _get_group(request, pk)
    member = _get_member(group, member_pk)
    form = RingTimeForm(request.POST)
    if not form.is_valid():
        note = _("%(extension)s: %(error)s") % {
            "extension": member.extension,
            "error": " ".join(form.errors["ring_time"]),
        }
        return _members_changed(request, group, note, error=True)
    member.ring_time = form.cleaned_data["ring_time"]
    member.save(update_fields=["ring_time"])
    note = _("%(extension)s rings for %(seconds)d s.") % {
        "extension": member.extension,
        "seconds": member.ring_time,
    }
    return _members_changed(request, group, note)


urlpatterns = [
    path("hunt-groups/", group_list, name="hunt_groups"),
    path("hunt-groups/new/", group_new, name="hunt_group_new"),
    path("hunt-groups/<int:pk>/", group_edit, name="hunt_group"),
    path("hunt-groups/<int:pk>/delete/", group_delete, name="hunt_group_delete"),
    path("hunt-groups/<int:pk>/members/", member_add, name="hunt_member_add"),
    path("hunt-groups/<int:pk>/members/order/", member_order, name="hunt_member_order"),
    path(
        "hunt-groups/<int:pk>/members/<int:member_pk>/remove/",
        member_remove,
        name="hunt_member_remove",
    ),
    path(
        "hunt-groups/<int:pk>/members/<int:member_pk>/move/", member_move, name="hunt_member_move"
    ),
    path(
        "hunt-groups/<int:pk>/members/<int:member_pk>/ring-time/",
        member_ring_time,
        name="hunt_member_ring_time",
    ),
]
