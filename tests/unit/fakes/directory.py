"""Who is in the test office: its extensions, the carrier's trunk, where the devices are
registered and where the carrier is found."""

from __future__ import annotations

from typing import Any

from pbx.engine.directory import ExtensionInfo, TrunkInfo
from pbx.engine.registrar import Binding
from pbx.engine.services import Addr
from pbx.sip.ids import new_call_id
from pbx.sip.uri import SipUri

COMPANY = 1


def extension(number: str, name: str, *devices: str, **options: Any) -> ExtensionInfo:
    """An extension of the test company."""
    return ExtensionInfo(COMPANY, number, name, devices, **options)


def office_extensions() -> list[ExtensionInfo]:
    """Alice (201), Bob (202, a desk phone and a mobile), Carol (203) and Dave (204)."""
    return [
        extension("201", "Alice", "alice"),
        extension("202", "Bob", "bob-desk", "bob-mobile"),
        extension("203", "Carol", "carol"),
        extension("204", "Dave", "dave"),
    ]


CARRIER = TrunkInfo(
    1,
    COMPANY,
    "carrier",
    "sip.carrier.example",
    username="acme",
    password="s3cret",
    caller_id="0212345678",
    outbound_prefix="0",
)
CARRIER_ADDR = ("198.51.100.7", 5060)


class FakeRegistrar:
    """`Contacts`: the bindings of registered devices, which never expire."""

    def __init__(self) -> None:
        self.bindings: dict[str, list[Binding]] = {}

    def add(self, username: str, contact: str, source: Addr, transport: str = "udp") -> None:
        binding = Binding(
            username, SipUri.parse(contact), source, transport, float("inf"), new_call_id(), 1
        )
        self.bindings.setdefault(username, []).append(binding)

    def contacts(self, username: str, now: float) -> list[Binding]:
        return [b for b in self.bindings.get(username, []) if b.expires_at > now]


class FakeTrunks:
    """`TrunkAddresses`: the carrier's address per trunk id (None: it cannot be resolved)."""

    def __init__(self) -> None:
        self.addresses: dict[int, Addr | None] = {}

    async def address(self, trunk: TrunkInfo) -> Addr | None:
        return self.addresses.get(trunk.id)
