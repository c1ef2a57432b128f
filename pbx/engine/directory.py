"""The engine's one window on configuration: who may register, what a number reaches.

The engine never touches the ORM. It asks a `Directory`; the Django side provides one backed by
the database (pbx/config.py), tests provide `MemoryDirectory`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from pbx.engine.schedule import Period


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A phone allowed to register: its credentials (as HA1) and the extension it belongs to."""

    username: str
    realm: str
    ha1_md5: str
    ha1_sha256: str
    company_id: int
    extension: str


@dataclass(frozen=True, slots=True)
class ExtensionInfo:
    company_id: int
    number: str
    display_name: str
    devices: tuple[str, ...]  # SIP usernames, in ring order
    do_not_disturb: bool = False
    forward_always: str = ""
    forward_busy: str = ""
    forward_no_answer: str = ""
    no_answer_timeout: int = 20
    ring_mode: str = "all"  # "all" | "in_order"
    ring_outside: str = ""  # an outside number (0 first) that rings too, after a delay
    ring_outside_delay: int = 10
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class TrunkInfo:
    id: int
    company_id: int
    name: str
    host: str
    port: int = 5060
    transport: str = "udp"
    username: str = ""
    password: str = ""
    register: bool = False
    register_expires: int = 600
    caller_id: str = ""
    outbound_prefix: str = "0"


@dataclass(frozen=True, slots=True)
class DidRoute:
    """Where a company number arriving from a trunk goes (only extensions so far)."""

    number: str
    company_id: int
    trunk_id: int
    kind: str  # "extension" or "operator"
    target: str


@dataclass(frozen=True, slots=True)
class HuntGroupInfo:
    """A hunt group ("Call Distributor"): its members in configured order with their ring
    times, the algorithm (pbx/engine/hunt.py) and where a call goes when nobody answers."""

    company_id: int
    number: str
    name: str
    algorithm: str
    members: tuple[tuple[str, int], ...]  # (extension number, ring time in seconds)
    fallback: str = "hangup"  # "voicemail" | "operator" | "number" | "hangup"
    fallback_number: str = ""


@dataclass(frozen=True, slots=True)
class MenuAction:
    """What a key does: `action` is one of pbx.models.KeyAction's values."""

    action: str
    number: str = ""
    menu: int | None = None


@dataclass(frozen=True, slots=True)
class MenuInfo:
    id: int
    name: str
    announcement: str  # the announcement's file path; "" for none
    timeout: float = 5
    retries: int = 2
    keys: tuple[tuple[str, MenuAction], ...] = ()  # key ("0".."9", "*", "#", "timeout", ...)

    def action(self, key: str) -> MenuAction | None:
        return next((action for k, action in self.keys if k == key), None)


@dataclass(frozen=True, slots=True)
class AttendantInfo:
    """A Multiselection: which menu answers when, and the menus."""

    company_id: int
    number: str
    name: str
    active: bool = True
    forward_to: str = ""  # where calls go while it is not active
    time_zone: str = "Europe/Rome"
    periods: tuple[Period, ...] = ()
    holidays: tuple[tuple[date, int], ...] = ()
    default_menu: int | None = None
    menus: tuple[MenuInfo, ...] = ()

    def menu(self, menu_id: int | None) -> MenuInfo | None:
        return next((m for m in self.menus if m.id == menu_id), None)


class Directory(Protocol):
    """What the engine asks the configuration. Implementations cache and stay current."""

    async def device(self, username: str) -> DeviceInfo | None: ...

    async def extension(self, company_id: int, number: str) -> ExtensionInfo | None: ...

    async def did(self, number: str) -> DidRoute | None: ...

    async def trunks(self) -> list[TrunkInfo]: ...

    async def outbound_trunk(self, company_id: int) -> TrunkInfo | None: ...

    async def operator_number(self, company_id: int) -> str:
        """The short number of the company's operator queue ("" when it has none)."""
        ...

    async def operator_extensions(self, company_id: int) -> frozenset[str]:
        """The extensions of the company's operators: their phones pick up the queue."""
        ...

    async def administrator_extensions(self, company_id: int) -> frozenset[str]:
        """The extensions of the company's administrators: their phones may record
        announcements."""
        ...

    async def hunt_group(self, company_id: int, number: str) -> HuntGroupInfo | None: ...

    async def attendant(self, company_id: int, number: str) -> AttendantInfo | None: ...


@dataclass
class MemoryDirectory:
    """An in-memory Directory for tests and benchmarks."""

    devices: dict[str, DeviceInfo] = field(default_factory=dict)
    extensions: dict[tuple[int, str], ExtensionInfo] = field(default_factory=dict)
    dids: dict[str, DidRoute] = field(default_factory=dict)
    trunk_list: list[TrunkInfo] = field(default_factory=list)
    operator_numbers: dict[int, str] = field(default_factory=dict)
    operators: dict[int, frozenset[str]] = field(default_factory=dict)
    administrators: dict[int, frozenset[str]] = field(default_factory=dict)
    hunt_groups: dict[tuple[int, str], HuntGroupInfo] = field(default_factory=dict)
    attendants: dict[tuple[int, str], AttendantInfo] = field(default_factory=dict)

    async def device(self, username: str) -> DeviceInfo | None:
        return self.devices.get(username)

    async def extension(self, company_id: int, number: str) -> ExtensionInfo | None:
        return self.extensions.get((company_id, number))

    async def did(self, number: str) -> DidRoute | None:
        return self.dids.get(number)

    async def trunks(self) -> list[TrunkInfo]:
        return list(self.trunk_list)

    async def outbound_trunk(self, company_id: int) -> TrunkInfo | None:
        return next((t for t in self.trunk_list if t.company_id == company_id), None)

    async def operator_number(self, company_id: int) -> str:
        return self.operator_numbers.get(company_id, "")

    async def operator_extensions(self, company_id: int) -> frozenset[str]:
        return self.operators.get(company_id, frozenset())

    async def administrator_extensions(self, company_id: int) -> frozenset[str]:
        return self.administrators.get(company_id, frozenset())

    async def hunt_group(self, company_id: int, number: str) -> HuntGroupInfo | None:
        return self.hunt_groups.get((company_id, number))

    async def attendant(self, company_id: int, number: str) -> AttendantInfo | None:
        return self.attendants.get((company_id, number))
