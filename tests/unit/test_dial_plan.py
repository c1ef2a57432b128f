"""The dial plan: short numbers, the 0 prefix, do-not-disturb, forwarding, busy, loops."""

from __future__ import annotations

from pbx.engine.directory import ExtensionInfo, MemoryDirectory, TrunkInfo
from pbx.engine.routing import Member, Party, Route, Router, Unavailable

CALLER = Party(1, "201", "Mario Rossi", "201")


def _router(
    *extensions: ExtensionInfo, busy: frozenset[str] = frozenset(), trunk: bool = True
) -> Router:
    directory = MemoryDirectory()
    for ext in extensions:
        directory.extensions[(ext.company_id, ext.number)] = ext
    if trunk:
        directory.trunk_list.append(
            TrunkInfo(1, 1, "carrier", "carrier.example", outbound_prefix="0")
        )
    return Router(directory, lambda company, number: number in busy)


async def test_a_short_number_rings_the_devices_of_its_extension() -> None:
    route = await _router(ExtensionInfo(1, "202", "Giulia", ("202", "202-app"))).route(
        CALLER, "202"
    )
    assert isinstance(route, Route)
    assert route.members == (Member("202", ("202", "202-app")),) and route.trunk is None


async def test_a_leading_zero_selects_the_trunk_and_is_stripped() -> None:
    route = await _router().route(CALLER, "0612345678")
    assert isinstance(route, Route)
    assert route.trunk is not None and route.number == "612345678"


async def test_without_a_trunk_a_zero_number_is_not_found() -> None:
    route = await _router(trunk=False).route(CALLER, "0612345678")
    assert route == Unavailable("no such number", 404)


async def test_an_unknown_number_is_not_found() -> None:
    assert await _router().route(CALLER, "299") == Unavailable("no such number", 404)


async def test_do_not_disturb_goes_to_the_voicemail_hook() -> None:
    route = await _router(ExtensionInfo(1, "202", "G", ("202",), do_not_disturb=True)).route(
        CALLER, "202"
    )
    assert route == Unavailable("do not disturb", 480, voicemail="202")


async def test_forward_always_follows_the_target() -> None:
    router = _router(
        ExtensionInfo(1, "202", "G", ("202",), forward_always="203"),
        ExtensionInfo(1, "203", "L", ("203",)),
    )
    route = await router.route(CALLER, "202")
    assert isinstance(route, Route) and route.number == "203"


async def test_forwarding_in_a_circle_stops() -> None:
    router = _router(
        ExtensionInfo(1, "202", "G", ("202",), forward_always="203"),
        ExtensionInfo(1, "203", "L", ("203",), forward_always="202"),
    )
    assert await router.route(CALLER, "202") == Unavailable("forwarding loop", 482)


async def test_a_busy_extension_forwards_on_busy_or_answers_busy() -> None:
    plain = _router(ExtensionInfo(1, "202", "G", ("202",)), busy=frozenset({"202"}))
    assert await plain.route(CALLER, "202") == Unavailable("busy", 486, voicemail="202")
    forwarding = _router(
        ExtensionInfo(1, "202", "G", ("202",), forward_busy="0612345678"), busy=frozenset({"202"})
    )
    route = await forwarding.route(CALLER, "202")
    assert isinstance(route, Route) and route.trunk is not None and route.number == "612345678"
