"""Shared fixtures: the named users of every test (alice, bob, carol) and a company."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from pbx.models import Company, Membership, Role

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True, scope="session")
def fast_password_hasher() -> Iterator[None]:
    """Users created by tests get MD5 hashes: PBKDF2 is slow on purpose, and no test needs it.

    Processes a test starts (manage.py, Celery) keep the real hashers of the settings.
    """
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture(autouse=True, scope="session")
def announcements_in_a_temporary_folder(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Announcement files written by tests (uploads, the demo's speech) never reach var/."""
    folder = tmp_path_factory.mktemp("announcements")
    with override_settings(CENTRALINO_ANNOUNCEMENTS_DIR=folder):
        yield


@pytest.fixture(autouse=True, scope="session")
def voicemail_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Messages and greetings written by tests (engines on the database) never reach var/."""
    folder = tmp_path_factory.mktemp("voicemail")
    with override_settings(CENTRALINO_VOICEMAIL_DIR=folder):
        yield


@pytest.fixture
def company(db: None) -> Company:
    """A company with no sites or extensions yet."""
    return Company.objects.create(name="Acme S.p.A.", time_zone="Europe/Rome")


def _user(username: str, company: Company, role: Role, **extra: bool) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD, **extra)
    Membership.objects.create(user=user, company=company, role=role, must_change_password=False)
    return user


@pytest.fixture
def alice(company: Company) -> User:
    """Alice, the operator at the console."""
    return _user("alice", company, Role.OPERATOR)


@pytest.fixture
def bob(company: Company) -> User:
    """Bob, an end user with his own extension, call log and voicemail."""
    return _user("bob", company, Role.END_USER)


@pytest.fixture
def carol(company: Company) -> User:
    """Carol, the administrator who configures the PBX."""
    return _user("carol", company, Role.ADMINISTRATOR, is_staff=True, is_superuser=True)
