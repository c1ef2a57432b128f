"""The end-user portal at /me/ (SPEC F1, F2, F4; issue 8): its pages, and who may come in
(each user reaches their own extension only, by page, API or socket)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, reverse
from rest_framework.test import APIClient

from pbx.models import (
    Company,
    Extension,
    Membership,
)
from selfcare import urls as me_urls
from tests.unit.me.helpers import ENGLISH, extension_with_phone, page

pytestmark = pytest.mark.django_db

# --- the pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/me/", "/me/calls/", "/me/voicemail/"])
def test_each_page_renders_for_its_owner(me: Client, url: str) -> None:
    html = page(me, url)

    assert "Bob Rossi" in html
    assert 'aria-current="page"' in html


def test_the_portal_speaks_italian_by_default(me: Client) -> None:
    html = me.get("/me/").content.decode()

    assert '<html lang="it">' in html


def test_an_operator_with_an_extension_has_her_own_pages_too(
    client: Client, alice: User, company: Company
) -> None:
    extension = extension_with_phone(company, "200", "Alice Neri")
    Membership.objects.filter(user=alice).update(extension=extension)
    client.force_login(alice)

    html = page(client, "/me/")

    assert "Alice Neri" in html
    assert 'href="/console/"' in html


# --- who may come in --------------------------------------------------------------------------


def every_me_url() -> list[tuple[str, str]]:
    """(method, path) of every route of the portal, ids filled with 1."""
    urls = []
    for pattern in me_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        kwargs = {name: 1 for name in pattern.pattern.converters}
        url = reverse(f"me:{pattern.name}", kwargs=kwargs)
        urls += [("get", url), ("post", url)]
    return urls


@pytest.mark.parametrize(("method", "url"), every_me_url())
@pytest.mark.parametrize("who", ["bob", "alice", "carol"])
def test_a_user_without_an_extension_is_refused_everywhere(
    client: Client, request: pytest.FixtureRequest, who: str, method: str, url: str
) -> None:
    client.force_login(request.getfixturevalue(who))

    response = getattr(client, method)(url)

    assert response.status_code == 403


@pytest.mark.parametrize(("method", "url"), every_me_url())
def test_a_visitor_is_sent_to_the_login(client: Client, method: str, url: str) -> None:
    response = getattr(client, method)(url)

    assert response.status_code == 302
    assert response.url.startswith(f"/login/?next={url}")


def test_an_end_user_with_no_extension_is_not_sent_round_in_circles(
    client: Client, bob: User
) -> None:
    client.force_login(bob)

    html = client.get("/me/", headers=ENGLISH).content.decode()

    assert "has no extension" in html
    assert 'href="/start/"' not in html


def test_an_end_user_with_an_extension_is_refused_by_the_console_and_the_api(me: Client) -> None:
    api = APIClient()
    api.force_authenticate(User.objects.get(username="bob"))

    assert me.get("/console/").status_code == 403
    for response in (
        api.get("/api/v1/calls/"),
        api.get("/api/v1/extensions/"),
        api.post("/api/v1/dial/", {"number": "202"}, format="json"),
    ):
        assert (response.status_code, response.json()["error"]) == (403, "not_allowed")


@pytest.mark.django_db(transaction=True)
async def test_an_end_user_with_an_extension_is_refused_by_the_consoles_socket(
    bob: User, company: Company
) -> None:
    extension = await Extension.objects.acreate(company=company, number="201", display_name="Bob")
    await Membership.objects.filter(user=bob).aupdate(extension=extension)
    socket = WebsocketCommunicator(
        _application(),
        "/ws/console/",
        headers=[
            (b"origin", b"http://127.0.0.1:8000"),
            (b"cookie", await sync_to_async(_cookie)(bob)),
        ],
    )

    connected, code = await socket.connect()

    assert not connected
    assert code == 4403


def _application() -> Callable[..., Any]:
    from operator_panel.asgi import application

    return application


def _cookie(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()
