"""Extensions, phones, sites and company numbers in the administrator portal (SPEC E2)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from pbx.models import (
    Company,
    Device,
    Did,
    DidTarget,
    Extension,
    HuntGroup,
    Multiselection,
    Site,
    Trunk,
)
from pbx.sip.digest import ha1

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client: Client, carol: User) -> Client:
    client.force_login(carol)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"  # the messages checked below are English
    return client


@pytest.fixture
def office(company: Company) -> dict[str, object]:
    milano = Site.objects.create(company=company, name="Milano")
    roma = Site.objects.create(company=company, name="Roma")
    mario = Extension.objects.create(
        company=company, number="201", display_name="Mario Rossi", site=milano
    )
    anna = Extension.objects.create(
        company=company, number="204", display_name="Anna Neri", site=roma
    )
    trunk = Trunk.objects.create(company=company, name="Carrier", host="127.0.0.1")
    return {"milano": milano, "roma": roma, "mario": mario, "anna": anna, "trunk": trunk}


def secret_on(page: str) -> str:
    found = re.search(r'<code id="secret">([^<]+)</code>', page)
    assert found, page
    return found.group(1)


def test_the_list_groups_extensions_by_site_and_searches(
    admin: Client, office: dict[str, object]
) -> None:
    page = admin.get("/manage/extensions/").content.decode()
    page = page[page.index('id="extension-rows"') :]
    assert page.index("Milano") < page.index("Mario Rossi") < page.index("Roma")

    found = admin.get("/manage/extensions/", {"q": "anna"}).content.decode()
    assert "Anna Neri" in found and "Mario Rossi" not in found
    by_site = admin.get("/manage/extensions/", {"site": office["milano"].pk}).content.decode()  # type: ignore[attr-defined]
    assert "Mario Rossi" in by_site and "Anna Neri" not in by_site


def test_a_new_extension_gets_a_phone_whose_secret_is_shown_once(
    admin: Client, company: Company, office: dict[str, object]
) -> None:
    page = admin.post(
        "/manage/extensions/new/",
        {
            "number": "230",
            "display_name": "Nuovo",
            "ring_mode": "all",
            "enabled": "on",
            "no_answer_timeout": 20,
            "ring_outside_delay": 10,
        },
    )

    assert page.status_code == 200
    secret = secret_on(page.content.decode())
    device = Device.objects.get(extension__company=company, extension__number="230")
    assert device.ha1_md5 == ha1(device.username, device.realm, secret, "MD5")
    edit = admin.get(f"/manage/extensions/{device.extension_id}/").content.decode()
    assert secret not in edit


def test_a_number_taken_by_a_hunt_group_is_refused_with_the_reason(
    admin: Client, company: Company, office: dict[str, object]
) -> None:
    HuntGroup.objects.create(company=company, number="600", name="Vendite")

    page = admin.post(
        "/manage/extensions/new/",
        {
            "number": "600",
            "display_name": "X",
            "ring_mode": "all",
            "no_answer_timeout": 20,
            "ring_outside_delay": 10,
        },
    )

    assert "taken by a hunt group" in page.content.decode()
    assert not Extension.objects.filter(number="600").exists()


def test_dnd_forwarding_and_ring_mode_are_saved(admin: Client, office: dict[str, object]) -> None:
    mario = office["mario"]
    admin.post(
        f"/manage/extensions/{mario.pk}/",  # type: ignore[attr-defined]
        {
            "display_name": "Mario Rossi",
            "enabled": "on",
            "do_not_disturb": "on",
            "forward_busy": "204",
            "no_answer_timeout": 15,
            "ring_mode": "in_order",
            "ring_outside": "0333123456",
            "ring_outside_delay": 8,
        },
    )

    mario.refresh_from_db()  # type: ignore[attr-defined]
    assert mario.do_not_disturb and mario.forward_busy == "204"  # type: ignore[attr-defined]
    assert (mario.ring_mode, mario.ring_outside, mario.ring_outside_delay) == (  # type: ignore[attr-defined]
        "in_order",
        "0333123456",
        8,
    )


def test_rotating_a_secret_shows_the_new_one_once(admin: Client, office: dict[str, object]) -> None:
    page = admin.post(f"/manage/extensions/{office['mario'].pk}/phones/", {"label": "cell"})  # type: ignore[attr-defined]
    first = secret_on(page.content.decode())
    device = Device.objects.get(label="cell")

    rotated = secret_on(admin.post(f"/manage/phones/{device.pk}/rotate/").content.decode())

    device.refresh_from_db()
    assert rotated != first
    assert device.ha1_md5 == ha1(device.username, device.realm, rotated, "MD5")


def test_a_company_number_can_go_to_each_kind_of_target(
    admin: Client, company: Company, office: dict[str, object]
) -> None:
    group = HuntGroup.objects.create(company=company, number="600", name="Vendite")
    attendant = Multiselection.objects.create(company=company, number="700", name="Reception")
    trunk = office["trunk"]
    for kind, field, target in (
        ("extension", "extension", office["mario"]),
        ("hunt_group", "hunt_group", group),
        ("multiselection", "multiselection", attendant),
    ):
        number = f"0212345{len(kind):03d}"
        admin.post(
            "/manage/numbers/new/",
            {"trunk": trunk.pk, "number": number, "target_kind": kind, field: target.pk},  # type: ignore[attr-defined]
        )
        did = Did.objects.get(number=number)
        assert did.target_kind == kind and getattr(did, field) == target


def test_a_company_number_without_its_target_is_refused(
    admin: Client, office: dict[str, object]
) -> None:
    page = admin.post(
        "/manage/numbers/new/",
        {"trunk": office["trunk"].pk, "number": "0299999999", "target_kind": DidTarget.HUNT_GROUP},  # type: ignore[attr-defined]
    )

    assert "Choose the hunt group" in page.content.decode()
    assert not Did.objects.exists()


def test_another_companys_rows_are_not_found(admin: Client, office: dict[str, object]) -> None:
    other = Company.objects.create(name="Other")
    theirs = Extension.objects.create(company=other, number="201", display_name="Theirs")
    site = Site.objects.create(company=other, name="Torino")
    device = Device.objects.create(extension=theirs, username="theirs-201")

    assert admin.get(f"/manage/extensions/{theirs.pk}/").status_code == 404
    assert admin.get(f"/manage/sites/{site.pk}/").status_code == 404
    assert admin.post(f"/manage/phones/{device.pk}/rotate/").status_code == 404
    assert "Theirs" not in admin.get("/manage/extensions/").content.decode()


URLS = [
    "/manage/",
    "/manage/extensions/",
    "/manage/extensions/new/",
    "/manage/sites/",
    "/manage/numbers/",
    "/manage/numbers/new/",
]


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("who", ["alice", "bob"])
def test_operators_and_end_users_get_403(
    client: Client, url: str, who: str, request: pytest.FixtureRequest
) -> None:
    client.force_login(request.getfixturevalue(who))

    assert client.get(url).status_code == 403
    assert client.post(url, {}).status_code == 403
