"""Engines and phones for integration tests, each stopped at the end of its test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from tests.integration.engine_fixture import Pbx, start_pbx
from tests.integration.peers.baresip import Baresip
from tests.integration.peers.linphone import Linphone
from tests.integration.processes import postgres_url, redis_url, spawn  # noqa: F401 - fixtures

EXTENSIONS = ("201", "202", "203", "204")


@pytest.fixture
def make_pbx() -> Iterator[Callable[..., Pbx]]:
    """Start engines: make_pbx(extensions=..., **EngineConfig options); all stopped at the end."""
    started: list[Pbx] = []

    def make(*, extensions: tuple[str, ...] = EXTENSIONS, **config: Any) -> Pbx:
        server = start_pbx(**config)
        started.append(server)
        for number in extensions:
            server.add_extension(number)
        return server

    try:
        yield make
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def pbx(make_pbx: Callable[..., Pbx]) -> Pbx:
    """A running engine with extensions 201-204 provisioned."""
    return make_pbx()


@pytest.fixture
def make_baresip() -> Iterator[Callable[..., Baresip]]:
    """Start baresip phones: make_baresip(*Baresip args); all of them closed at the end."""
    with ExitStack() as stack:

        def make(*args: Any, **kwargs: Any) -> Baresip:
            return stack.enter_context(Baresip(*args, **kwargs))

        yield make


@pytest.fixture
def make_phone(pbx: Pbx, make_baresip: Callable[..., Baresip]) -> Callable[..., Baresip]:
    """A baresip phone on one of the pbx's extensions, registered: make_phone("201", ...)."""

    def make(number: str, **kwargs: Any) -> Baresip:
        phone = make_baresip(number, password=pbx.secrets[number], registrar=pbx.address, **kwargs)
        phone.wait_registered()
        return phone

    return make


@pytest.fixture
def make_linphone() -> Iterator[Callable[..., Linphone]]:
    """Start linphonec daemons: make_linphone(*Linphone args); all stopped at the end.

    linphonecsh has one control socket per user: a second one waits for the first to stop.
    """
    with ExitStack() as stack:

        def make(*args: Any, **kwargs: Any) -> Linphone:
            return stack.enter_context(Linphone(*args, **kwargs))

        yield make
