"""One login for every web face; the user's role decides where they land."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client

from tests.conftest import PASSWORD


def log_in(client: Client, username: str, password: str = PASSWORD, **extra: str) -> HttpResponse:
    """Post the login form as a browser does; the response is not followed."""
    return client.post("/login/", {"username": username, "password": password, **extra})


def test_alice_the_operator_lands_on_the_console(client: Client, alice: User) -> None:
    logged_in = log_in(client, "alice")
    landed = client.get(logged_in.url)

    assert logged_in.status_code == 302
    assert logged_in.url == "/start/"
    assert landed.status_code == 302
    assert landed.url == "/console/"
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_carol_the_administrator_lands_on_the_administration(client: Client, carol: User) -> None:
    client.force_login(carol)

    assert client.get("/start/").url == "/manage/"


def test_bob_the_end_user_lands_on_his_own_page(client: Client, bob: User) -> None:
    logged_in = log_in(client, "bob")

    assert client.get(logged_in.url).url == "/me/"


def test_a_superuser_without_membership_lands_on_the_admin(client: Client, db: None) -> None:
    User.objects.create_superuser("root", "root@example.com", PASSWORD)

    logged_in = log_in(client, "root")

    assert client.get(logged_in.url).url == "/admin/"


def test_a_user_with_no_role_is_told_so(client: Client, db: None) -> None:
    User.objects.create_user("dave", "dave@example.com", PASSWORD)
    log_in(client, "dave")

    page = client.get("/start/", headers={"accept-language": "en"})
    italian = client.get("/start/", headers={"accept-language": "it"})

    assert page.status_code == 403
    assert "You have no role in any company" in page.content.decode()
    assert italian.status_code == 403
    assert "Non hai un ruolo in nessuna azienda" in italian.content.decode()


def test_the_landing_asks_anonymous_visitors_to_log_in(client: Client, db: None) -> None:
    response = client.get("/start/")

    assert response.status_code == 302
    assert response.url == "/login/?next=/start/"


def test_a_wrong_password_shows_the_error_and_opens_no_session(client: Client, alice: User) -> None:
    response = log_in(client, "alice", "not the password", next="/admin/")

    page = response.content.decode()
    assert response.status_code == 200
    assert 'role="alert"' in page
    assert 'name="next" value="/admin/"' in page
    assert "_auth_user_id" not in client.session


def test_a_wrong_password_is_explained_in_english_and_italian(client: Client, alice: User) -> None:
    form = {"username": "alice", "password": "not the password"}

    english = client.post("/login/", form, headers={"accept-language": "en"}).content.decode()
    italian = client.post("/login/", form, headers={"accept-language": "it"}).content.decode()

    assert "Please enter a correct username and password" in english
    assert "Inserisci nome utente e password corretti" in italian


def test_a_safe_next_wins_over_the_role(client: Client, alice: User) -> None:
    response = log_in(client, "alice", next="/healthz")

    assert response.url == "/healthz"


@pytest.mark.parametrize(
    "next_url", ["https://evil.example.com/", "//evil.example.com/", "http://evil.example.com/x"]
)
def test_a_next_to_another_host_is_ignored(client: Client, alice: User, next_url: str) -> None:
    response = log_in(client, "alice", next=next_url)

    assert response.status_code == 302
    assert response.url == "/start/"


def test_the_login_page_carries_a_safe_next_only(client: Client, db: None) -> None:
    safe = client.get("/login/?next=/healthz").content.decode()
    unsafe = client.get("/login/?next=https://evil.example.com/").content.decode()

    assert 'name="next" value="/healthz"' in safe
    assert '<input type="hidden" name="next" value="">' in unsafe


def test_logout_by_post_ends_the_session(client: Client, alice: User) -> None:
    client.force_login(alice)

    response = client.post("/logout/")

    assert response.status_code == 302
    assert response.url == "/login/"
    assert "_auth_user_id" not in client.session


def test_logout_by_get_is_refused(client: Client, alice: User) -> None:
    client.force_login(alice)

    response = client.get("/logout/")

    assert response.status_code == 405
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_the_login_form_is_labelled_and_focused_on_the_username(client: Client, db: None) -> None:
    page = client.get("/login/", headers={"accept-language": "en"}).content.decode()

    assert '<label for="id_username">' in page
    assert '<label for="id_password">' in page
    assert 'id="id_username"' in page and "autofocus" in page
    assert '<button type="submit">Log in</button>' in page


@pytest.mark.parametrize(
    ("headers", "cookies"),
    [({"accept-language": "it"}, {}), ({"accept-language": "en"}, {"django_language": "it"})],
)
def test_the_login_page_speaks_italian(
    client: Client, db: None, headers: dict[str, str], cookies: dict[str, str]
) -> None:
    for name, value in cookies.items():
        client.cookies[name] = value

    page = client.get("/login/", headers=headers).content.decode()

    assert '<html lang="it">' in page
    assert '<button type="submit">Accedi</button>' in page
    assert "Nome utente" in page


def test_the_header_shows_who_is_logged_in_and_a_logout_button(client: Client, alice: User) -> None:
    anonymous = client.get("/", headers={"accept-language": "en"}).content.decode()
    client.force_login(alice)
    logged_in = client.get("/", headers={"accept-language": "en"}).content.decode()

    assert 'href="/login/">Log in</a>' in anonymous
    assert 'action="/logout/"' not in anonymous
    assert "alice" in logged_in
    assert 'action="/logout/" method="post"' in logged_in
    assert ">Log out</button>" in logged_in


def test_the_home_page_links_to_the_console_and_the_login(client: Client, db: None) -> None:
    page = client.get("/", headers={"accept-language": "en"}).content.decode()

    assert 'href="/console/"' in page
    assert 'href="/login/"' in page


def test_the_login_url_settings_point_at_this_login() -> None:
    assert (settings.LOGIN_URL, settings.LOGIN_REDIRECT_URL, settings.LOGOUT_REDIRECT_URL) == (
        "login",
        "landing",
        "login",
    )
