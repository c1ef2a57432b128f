"""Shared fixtures: the named users of every test (alice, bob, carol) and a company."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Group, User
from django.test import override_settings

from pbx.demo import END_USERS_GROUP, OPERATORS_GROUP
from pbx.models import Company

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True, scope="session")
def fast_password_hasher() -> Iterator[None]:
    """Users created by tests get MD5 hashes: PBKDF2 is slow on purpose, and no test needs it.

    Processes a test starts (manage.py, Celery) keep the real hashers of the settings.
    """
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def company(db: None) -> Company:
    """A company with no sites or extensions yet."""
    return Company.objects.create(name="Acme S.p.A.", time_zone="Europe/Rome")


def _user(username: str, group: str | None = None, **extra: bool) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD, **extra)
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def alice(db: None) -> User:
    """Alice, the operator at the console."""
    return _user("alice", OPERATORS_GROUP)


@pytest.fixture
def bob(db: None) -> User:
    """Bob, an end user with his own extension, call log and voicemail."""
    return _user("bob", END_USERS_GROUP)


@pytest.fixture
def carol(db: None) -> User:
    """Carol, the administrator who configures the PBX."""
    return _user("carol", is_staff=True, is_superuser=True)
