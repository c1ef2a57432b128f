"""The Call Distributor pages (SPEC E6): hunt groups, their members, order and ring times."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from pbx.models import (
    Company,
    Extension,
    Fallback,
    HuntGroup,
    HuntMember,
    KeyAction,
    Menu,
    MenuKey,
    Multiselection,
    Site,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    return Client(headers={"accept-language": "en"})


@pytest.fixture
def admin(client: Client, carol: User) -> Client:
    client.force_login(carol)
    return client


@pytest.fixture
def lines(company: Company) -> dict[str, Extension]:
    """201 and 202 in Milano, 301 in Roma, 400 with no site."""
    milano = Site.objects.create(company=company, name="Milano")
    roma = Site.objects.create(company=company, name="Roma")
    found = {}
    for number, site in (("201", milano), ("202", milano), ("301", roma), ("400", None)):
        found[number] = Extension.objects.create(
            company=company, site=site, number=number, display_name=f"Line {number}"
        )
    return found


@pytest.fixture
def group(company: Company, lines: dict[str, Extension]) -> HuntGroup:
    """600 Sales, in Milano: 201 then 301."""
    sales = HuntGroup.objects.create(
        company=company, site=lines["201"].site, number="600", name="Sales"
    )
    HuntMember.objects.create(group=sales, extension=lines["201"], position=0)
    HuntMember.objects.create(group=sales, extension=lines["301"], position=1)
    return sales


@pytest.fixture
def elsewhere() -> dict[str, Any]:
    """Another company's hunt group, member and extension."""
    other = Company.objects.create(name="Other S.r.l.")
    extension = Extension.objects.create(company=other, number="201", display_name="Not ours")
    group = HuntGroup.objects.create(company=other, number="700", name="Theirs")
    member = HuntMember.objects.create(group=group, extension=extension)
    return {"group": group, "member": member, "extension": extension}


def members_of(group: HuntGroup) -> list[tuple[str, int]]:
    return [(m.extension.number, m.ring_time) for m in group.members.select_related("extension")]


def text_of(page: Any) -> str:
    return re.sub(r"\s+", " ", page.content.decode())


def group_form(**changes: str) -> dict[str, str]:
    form = {
        "number": "610",
        "name": "Support",
        "site": "",
        "algorithm": "linear",
        "fallback": "hangup",
        "fallback_number": "",
    }
    form.update(changes)
    return form


# --- who may come in ------------------------------------------------------------------------

URLS = [
    ("get", "/manage/hunt-groups/"),
    ("get", "/manage/hunt-groups/new/"),
    ("post", "/manage/hunt-groups/new/"),
    ("get", "/manage/hunt-groups/{group}/"),
    ("post", "/manage/hunt-groups/{group}/"),
    ("get", "/manage/hunt-groups/{group}/delete/"),
    ("post", "/manage/hunt-groups/{group}/delete/"),
    ("post", "/manage/hunt-groups/{group}/members/"),
    ("post", "/manage/hunt-groups/{group}/members/order/"),
    ("post", "/manage/hunt-groups/{group}/members/{member}/remove/"),
    ("post", "/manage/hunt-groups/{group}/members/{member}/move/"),
    ("post", "/manage/hunt-groups/{group}/members/{member}/ring-time/"),
]


@pytest.mark.parametrize("who", ["alice", "bob"])
@pytest.mark.parametrize(("method", "url"), URLS, ids=[f"{m} {u}" for m, u in URLS])
def test_operators_and_end_users_are_refused_everywhere(
    client: Client, group: HuntGroup, who: str, method: str, url: str, request: Any
) -> None:
    client.force_login(request.getfixturevalue(who))
    member = group.members.first()
    assert member is not None
    body = {"direction": "up", "ring_time": "30", "extension": "1", "order": "1", "name": "X"}

    response = getattr(client, method)(url.format(group=group.pk, member=member.pk), body)

    assert response.status_code == 403
    assert HuntGroup.objects.filter(pk=group.pk, name="Sales").exists()
    assert members_of(group) == [("201", 15), ("301", 15)]


def test_the_pages_render_for_an_administrator(admin: Client, group: HuntGroup) -> None:
    for url in (
        "/manage/hunt-groups/",
        "/manage/hunt-groups/new/",
        f"/manage/hunt-groups/{group.pk}/",
    ):
        assert admin.get(url).status_code == 200, url


# --- the list -------------------------------------------------------------------------------


def test_the_list_groups_by_site_with_number_algorithm_and_members(
    admin: Client, group: HuntGroup, lines: dict[str, Extension], company: Company
) -> None:
    HuntGroup.objects.create(company=company, number="620", name="Night", algorithm="ring_all")

    text = text_of(admin.get("/manage/hunt-groups/"))

    assert re.search(
        r"<h3[^>]*>Milano</h3>.*600</a></td> <td>Sales</td> <td>Linear</td> <td>2</td>", text
    )
    assert re.search(
        r"<h3[^>]*>No site</h3>.*620</a></td> <td>Night</td> <td>Ring all</td> <td>0</td>", text
    )


def test_the_site_filter_shows_that_sites_groups_only(
    admin: Client, group: HuntGroup, company: Company
) -> None:
    HuntGroup.objects.create(company=company, number="620", name="Night")
    roma = Site.objects.get(name="Roma")

    assert "Night" in text_of(admin.get("/manage/hunt-groups/?site=none"))
    assert "Sales" not in text_of(admin.get("/manage/hunt-groups/?site=none"))
    assert "No hunt group at this site." in text_of(
        admin.get(f"/manage/hunt-groups/?site={roma.pk}")
    )


# --- creating and editing -------------------------------------------------------------------


def test_a_new_group_is_created_and_opens_for_its_members(
    admin: Client, company: Company, lines: dict[str, Extension]
) -> None:
    roma = Site.objects.get(name="Roma")

    response = admin.post(
        "/manage/hunt-groups/new/", group_form(site=str(roma.pk), algorithm="longest_idle")
    )

    created = HuntGroup.objects.get(company=company, number="610")
    assert response.status_code == 302 and response.url == f"/manage/hunt-groups/{created.pk}/"
    assert (created.name, created.site, created.algorithm) == ("Support", roma, "longest_idle")


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("201", "The number 201 is taken by an extension."),
        ("600", "The number 600 is taken by a hunt group."),
        ("9", "A short number has 2 to 6 digits"),
        ("0600", "A short number has 2 to 6 digits"),
    ],
)
def test_a_number_that_is_taken_or_malformed_is_refused_with_the_reason(
    admin: Client, group: HuntGroup, number: str, reason: str
) -> None:
    response = admin.post("/manage/hunt-groups/new/", group_form(number=number))

    assert response.status_code == 200
    assert reason in text_of(response)
    assert HuntGroup.objects.count() == 1


def test_the_operator_number_is_taken_too(admin: Client, company: Company) -> None:
    company.operator_number = "99"
    company.save()
    response = admin.post("/manage/hunt-groups/new/", group_form(number="99"))
    assert "This is the operator&#x27;s number." in text_of(response)


def test_the_edit_page_explains_each_algorithm_and_keeps_the_number(
    admin: Client, group: HuntGroup
) -> None:
    text = text_of(admin.get(f"/manage/hunt-groups/{group.pk}/"))
    for explanation in (
        "from the first of the list onward",
        "Starts with the line that took the previous call",
        "Starts with the line after the one that took the previous call",
        "idle the longest",
        "Rings every free line at once until one answers",
    ):
        assert explanation in text
    assert 'aria-describedby="algorithm-help"' in text

    admin.post(f"/manage/hunt-groups/{group.pk}/", group_form(number="699", name="Sales desk"))

    group.refresh_from_db()
    assert (group.number, group.name) == ("600", "Sales desk")


@pytest.mark.parametrize(
    ("fallback", "number", "error"),
    [
        ("voicemail", "", "Give the number the call goes to."),
        ("voicemail", "999", "No extension has this number: choose one."),
        ("number", "", "Give the number the call goes to."),
        ("number", "02x", "A number: digits only"),
    ],
)
def test_a_fallback_needs_its_number(
    admin: Client, group: HuntGroup, fallback: str, number: str, error: str
) -> None:
    response = admin.post(
        f"/manage/hunt-groups/{group.pk}/", group_form(fallback=fallback, fallback_number=number)
    )

    assert response.status_code == 200
    assert error in text_of(response)
    group.refresh_from_db()
    assert group.fallback == Fallback.HANGUP


@pytest.mark.parametrize(
    ("fallback", "number", "kept"),
    [
        ("voicemail", "202", "202"),
        ("number", "0612345678", "0612345678"),
        ("operator", "202", ""),  # not used: not kept
        ("hangup", "202", ""),
    ],
)
def test_a_fallback_is_saved_with_the_number_it_uses(
    admin: Client, group: HuntGroup, fallback: str, number: str, kept: str
) -> None:
    response = admin.post(
        f"/manage/hunt-groups/{group.pk}/", group_form(fallback=fallback, fallback_number=number)
    )

    assert response.status_code == 302
    group.refresh_from_db()
    assert (group.fallback, group.fallback_number) == (fallback, kept)


def test_deleting_asks_first_then_deletes(admin: Client, group: HuntGroup) -> None:
    assert "Delete 600 Sales?" in text_of(admin.get(f"/manage/hunt-groups/{group.pk}/delete/"))
    assert HuntGroup.objects.filter(pk=group.pk).exists()

    response = admin.post(f"/manage/hunt-groups/{group.pk}/delete/")

    assert response.status_code == 302 and response.url == "/manage/hunt-groups/"
    assert not HuntGroup.objects.filter(pk=group.pk).exists()
    assert not HuntMember.objects.filter(group_id=group.pk).exists()


def test_a_group_a_menu_sends_calls_to_is_not_deleted(
    admin: Client, group: HuntGroup, company: Company
) -> None:
    attendant = Multiselection.objects.create(company=company, number="800", name="Welcome")
    menu = Menu.objects.create(multiselection=attendant, name="Day")
    MenuKey.objects.create(menu=menu, key="1", action=KeyAction.HUNT_GROUP, number="600")

    response = admin.post(f"/manage/hunt-groups/{group.pk}/delete/", follow=True)

    assert HuntGroup.objects.filter(pk=group.pk).exists()
    assert "key 1 of menu Day (Welcome) send calls to hunt group 600" in text_of(response)


# --- members --------------------------------------------------------------------------------


def test_the_add_select_offers_every_site_grouped_without_the_members(
    admin: Client, group: HuntGroup
) -> None:
    text = text_of(admin.get(f"/manage/hunt-groups/{group.pk}/"))
    select = re.search(r'<select name="extension".*?</select>', text)
    assert select is not None
    groups = re.findall(r'<optgroup label="([^"]+)">(.*?)</optgroup>', select[0])
    assert [(label, re.findall(r">(\d+) Line", options)) for label, options in groups] == [
        ("Milano", ["202"]),
        ("No site", ["400"]),
    ]


def test_members_are_added_from_two_sites(
    admin: Client, group: HuntGroup, lines: dict[str, Extension]
) -> None:
    plain = admin.post(
        f"/manage/hunt-groups/{group.pk}/members/",
        {"extension": lines["202"].pk, "ring_time": "20"},
    )
    assert plain.status_code == 302
    assert plain.url == f"/manage/hunt-groups/{group.pk}/#members"

    fragment = admin.post(
        f"/manage/hunt-groups/{group.pk}/members/",
        {"extension": lines["400"].pk, "ring_time": "25"},
        headers={"hx-request": "true"},
    )

    assert fragment.status_code == 200
    text = text_of(fragment)
    assert text.strip().startswith('<section id="members"') and "400 Line 400 added." in text
    assert members_of(group) == [("201", 15), ("301", 15), ("202", 20), ("400", 25)]
    sites = {m.extension.site.name if m.extension.site else "" for m in group.members.all()}
    assert sites == {"Milano", "Roma", ""}


def test_a_member_is_not_added_twice(
    admin: Client, group: HuntGroup, lines: dict[str, Extension]
) -> None:
    response = admin.post(
        f"/manage/hunt-groups/{group.pk}/members/",
        {"extension": lines["301"].pk, "ring_time": "20"},
        follow=True,
    )
    assert "301 Line 301 is a member already." in text_of(response)
    assert members_of(group) == [("201", 15), ("301", 15)]


def test_members_move_up_and_down(
    admin: Client, group: HuntGroup, lines: dict[str, Extension]
) -> None:
    HuntMember.objects.create(group=group, extension=lines["202"], position=2)
    last = group.members.get(extension=lines["202"])
    first = group.members.get(extension=lines["201"])

    admin.post(f"/manage/hunt-groups/{group.pk}/members/{last.pk}/move/", {"direction": "up"})
    assert [n for n, _ in members_of(group)] == ["201", "202", "301"]

    response = admin.post(
        f"/manage/hunt-groups/{group.pk}/members/{first.pk}/move/",
        {"direction": "down"},
        headers={"hx-request": "true"},
    )
    assert [n for n, _ in members_of(group)] == ["202", "201", "301"]
    assert "201 Line 201 is now number 2 of 3." in text_of(response)

    admin.post(f"/manage/hunt-groups/{group.pk}/members/{last.pk}/move/", {"direction": "up"})
    assert [n for n, _ in members_of(group)] == ["202", "201", "301"]  # first stays first
    bad = admin.post(f"/manage/hunt-groups/{group.pk}/members/{last.pk}/move/", {"direction": "x"})
    assert bad.status_code == 400


def test_the_whole_order_is_saved_at_once_from_a_drag_and_drop(
    admin: Client, group: HuntGroup, lines: dict[str, Extension]
) -> None:
    HuntMember.objects.create(group=group, extension=lines["202"], position=2)
    ids = {m.extension.number: m.pk for m in group.members.select_related("extension")}
    order = ",".join(str(ids[n]) for n in ("301", "202", "201"))

    response = admin.post(
        f"/manage/hunt-groups/{group.pk}/members/order/",
        {"order": order},
        headers={"hx-request": "true"},
    )

    assert response.status_code == 200
    assert [n for n, _ in members_of(group)] == ["301", "202", "201"]
    assert list(group.members.values_list("position", flat=True)) == [0, 1, 2]
    for incomplete in (
        f"{ids['301']},{ids['202']}",
        f"{ids['301']},{ids['301']},{ids['201']}",
        "x",
    ):
        refused = admin.post(
            f"/manage/hunt-groups/{group.pk}/members/order/", {"order": incomplete}
        )
        assert refused.status_code == 400
    assert [n for n, _ in members_of(group)] == ["301", "202", "201"]


def test_a_removed_member_leaves_the_order_closed_up(
    admin: Client, group: HuntGroup, lines: dict[str, Extension]
) -> None:
    HuntMember.objects.create(group=group, extension=lines["202"], position=2)
    first = group.members.get(extension=lines["201"])

    admin.post(f"/manage/hunt-groups/{group.pk}/members/{first.pk}/remove/")

    assert members_of(group) == [("301", 15), ("202", 15)]
    assert list(group.members.values_list("position", flat=True)) == [0, 1]
    assert Extension.objects.filter(number="201").exists()


@pytest.mark.parametrize(("seconds", "saved"), [("5", 5), ("120", 120), ("4", 15), ("121", 15)])
def test_a_ring_time_is_5_to_120_seconds(
    admin: Client, group: HuntGroup, seconds: str, saved: int
) -> None:
    member = group.members.get(extension__number="201")

    response = admin.post(
        f"/manage/hunt-groups/{group.pk}/members/{member.pk}/ring-time/",
        {"ring_time": seconds},
        headers={"hx-request": "true"},
    )

    member.refresh_from_db()
    assert member.ring_time == saved
    if saved != int(seconds):
        assert "members-note error" in text_of(response)


@pytest.mark.parametrize("seconds", ["4", "121", ""])
def test_a_new_member_needs_a_ring_time_of_5_to_120_seconds(
    admin: Client, group: HuntGroup, lines: dict[str, Extension], seconds: str
) -> None:
    response = admin.post(
        f"/manage/hunt-groups/{group.pk}/members/",
        {"extension": lines["202"].pk, "ring_time": seconds},
    )
    assert response.status_code == 200
    assert 'role="alert">Ring time (s):' in text_of(response)
    assert members_of(group) == [("201", 15), ("301", 15)]


# --- another company's rows -----------------------------------------------------------------


def test_another_companys_group_is_not_found(
    admin: Client, group: HuntGroup, elsewhere: dict[str, Any]
) -> None:
    theirs, member = elsewhere["group"].pk, elsewhere["member"].pk
    for url in (
        f"/manage/hunt-groups/{theirs}/",
        f"/manage/hunt-groups/{theirs}/delete/",
    ):
        assert admin.get(url).status_code == 404, url
    for url, body in (
        (f"/manage/hunt-groups/{theirs}/", group_form(name="Mine now")),
        (f"/manage/hunt-groups/{theirs}/delete/", {}),
        (f"/manage/hunt-groups/{theirs}/members/", {"extension": "1", "ring_time": "20"}),
        (f"/manage/hunt-groups/{theirs}/members/order/", {"order": str(member)}),
        (f"/manage/hunt-groups/{theirs}/members/{member}/remove/", {}),
        (f"/manage/hunt-groups/{theirs}/members/{member}/move/", {"direction": "up"}),
        (f"/manage/hunt-groups/{theirs}/members/{member}/ring-time/", {"ring_time": "30"}),
    ):
        assert admin.post(url, body).status_code == 404, url
    assert HuntGroup.objects.get(pk=theirs).name == "Theirs"
    assert HuntMember.objects.filter(pk=member, ring_time=15).exists()


def test_another_companys_member_or_extension_is_not_found(
    admin: Client, group: HuntGroup, elsewhere: dict[str, Any]
) -> None:
    member = elsewhere["member"].pk
    for url, body in (
        (f"/manage/hunt-groups/{group.pk}/members/{member}/remove/", {}),
        (f"/manage/hunt-groups/{group.pk}/members/{member}/ring-time/", {"ring_time": "30"}),
        (
            f"/manage/hunt-groups/{group.pk}/members/",
            {"extension": elsewhere["extension"].pk, "ring_time": "20"},
        ),
    ):
        assert admin.post(url, body).status_code == 404, url
    assert members_of(group) == [("201", 15), ("301", 15)]
    assert HuntMember.objects.filter(pk=member).exists()


def test_another_companys_groups_are_not_listed(
    admin: Client, group: HuntGroup, elsewhere: dict[str, Any]
) -> None:
    text = text_of(admin.get("/manage/hunt-groups/"))
    assert "Sales" in text and "Theirs" not in text
