from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.engine_fixture import Pbx, start_pbx, stop_pbx


@pytest.fixture
def pbx() -> Iterator[Pbx]:
    """A running engine with extensions 201-204 provisioned."""
    server = start_pbx()
    for number in ("201", "202", "203", "204"):
        server.add_extension(number)
    try:
        yield server
    finally:
        stop_pbx(server)
