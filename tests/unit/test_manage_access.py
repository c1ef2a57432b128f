"""The administrator portal's door and the first-login password change (SPEC E1)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from pbx.models import Membership
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_an_administrator_sees_the_overview(client: Client, carol: User) -> None:
    client.force_login(carol)

    page = client.get("/manage/")

    assert page.status_code == 200
    assert "Acme S.p.A." in page.content.decode()


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_operators_and_end_users_are_refused(
    client: Client, who: str, request: pytest.FixtureRequest
) -> None:
    client.force_login(request.getfixturevalue(who))

    assert client.get("/manage/").status_code == 403


def test_a_visitor_is_sent_to_the_login(client: Client) -> None:
    page = client.get("/manage/")

    assert page.status_code == 302
    assert page.url.startswith("/login/?next=/manage/")


def test_the_first_login_asks_for_a_new_password_before_anything(
    client: Client, carol: User
) -> None:
    Membership.objects.filter(user=carol).update(must_change_password=True)
    client.force_login(carol)

    page = client.get("/manage/")
    assert page.status_code == 302
    assert page.url == "/password/?next=/manage/"
    assert client.get("/api/calls/").status_code == 403
    form = client.get("/password/", headers={"accept-language": "en"})
    assert "first login" in form.content.decode()

    changed = client.post(
        "/password/?next=/manage/",
        {
            "old_password": PASSWORD,
            "new_password1": "a-Fresh-passw0rd",
            "new_password2": "a-Fresh-passw0rd",
        },
    )

    assert changed.status_code == 302
    assert changed.url == "/manage/"
    assert client.get("/manage/").status_code == 200
    carol.refresh_from_db()
    assert carol.check_password("a-Fresh-passw0rd")
    assert not Membership.objects.get(user=carol).must_change_password


def test_a_wrong_old_password_changes_nothing(client: Client, carol: User) -> None:
    Membership.objects.filter(user=carol).update(must_change_password=True)
    client.force_login(carol)

    page = client.post(
        "/password/",
        {"old_password": "wrong", "new_password1": "x-Y-z-12345", "new_password2": "x-Y-z-12345"},
    )

    assert page.status_code == 200
    assert Membership.objects.get(user=carol).must_change_password
    assert client.get("/manage/").status_code == 302
