"""The engine's Directory, backed by the database.

It keeps a snapshot of the configuration in memory and checks the ConfigStamp (one indexed
read) before each registration or call set-up: a change made anywhere (admin, CLI, another
node) is seen by the next request, with no ORM query per packet.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from django.db import DatabaseError, close_old_connections

from pbx.connectivity import Outage
from pbx.engine.directory import (
    AttendantInfo,
    DeviceInfo,
    DidRoute,
    ExtensionInfo,
    HuntGroupInfo,
    MenuAction,
    MenuInfo,
    TrunkInfo,
)
from pbx.engine.schedule import Period
from pbx.models import (
    Company,
    ConfigStamp,
    Device,
    Did,
    DidTarget,
    Extension,
    HuntGroup,
    Membership,
    Menu,
    Multiselection,
    Role,
    Trunk,
)

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    version: int = -1
    devices: dict[str, DeviceInfo] = field(default_factory=dict)
    extensions: dict[tuple[int, str], ExtensionInfo] = field(default_factory=dict)
    dids: dict[str, DidRoute] = field(default_factory=dict)
    trunks: list[TrunkInfo] = field(default_factory=list)
    operator_numbers: dict[int, str] = field(default_factory=dict)
    operators: dict[int, frozenset[str]] = field(default_factory=dict)
    administrators: dict[int, frozenset[str]] = field(default_factory=dict)
    hunt_groups: dict[tuple[int, str], HuntGroupInfo] = field(default_factory=dict)
    attendants: dict[tuple[int, str], AttendantInfo] = field(default_factory=dict)


def load_snapshot(version: int) -> Snapshot:
    """Read the whole telephony configuration (small: one company's extensions and trunks)."""
    snap = Snapshot(version)
    usernames: dict[int, list[str]] = {}
    for device in Device.objects.select_related("extension").order_by(
        "extension_id", "position", "id"
    ):
        ext = device.extension
        snap.devices[device.username] = DeviceInfo(
            device.username,
            device.realm,
            device.ha1_md5,
            device.ha1_sha256,
            ext.company_id,
            ext.number,
        )
        usernames.setdefault(ext.id, []).append(device.username)
    for ext in Extension.objects.all():
        snap.extensions[(ext.company_id, ext.number)] = ExtensionInfo(
            ext.company_id,
            ext.number,
            ext.display_name,
            tuple(usernames.get(ext.id, ())),
            ext.do_not_disturb,
            ext.forward_always,
            ext.forward_busy,
            ext.forward_no_answer,
            ext.no_answer_timeout,
            ext.ring_mode,
            ext.ring_outside,
            ext.ring_outside_delay,
            ext.enabled,
        )
    for trunk in Trunk.objects.filter(enabled=True).order_by("id"):
        snap.trunks.append(
            TrunkInfo(
                trunk.id,
                trunk.company_id,
                trunk.name,
                trunk.host,
                trunk.port,
                trunk.transport,
                trunk.username,
                trunk.password,
                trunk.register,
                trunk.register_expires,
                trunk.caller_id,
                trunk.outbound_prefix,
            )
        )
    for company_id, number in Company.objects.values_list("id", "operator_number"):
        if number:
            snap.operator_numbers[company_id] = number
    # Operators' phones pick up the queue; administrators' phones record announcements.
    operators: dict[int, set[str]] = {}
    administrators: dict[int, set[str]] = {}
    for company_id, number, role in Membership.objects.filter(
        role__in=(Role.OPERATOR, Role.ADMINISTRATOR), extension__isnull=False
    ).values_list("company_id", "extension__number", "role"):
        found = operators if role == Role.OPERATOR else administrators
        found.setdefault(company_id, set()).add(number)
    snap.operators = {company_id: frozenset(numbers) for company_id, numbers in operators.items()}
    snap.administrators = {
        company_id: frozenset(numbers) for company_id, numbers in administrators.items()
    }
    for group in HuntGroup.objects.prefetch_related("members__extension"):
        snap.hunt_groups[(group.company_id, group.number)] = HuntGroupInfo(
            group.company_id,
            group.number,
            group.name,
            group.algorithm,
            tuple((m.extension.number, m.ring_time) for m in group.members.all()),
            group.fallback,
            group.fallback_number,
        )
    time_zones = dict(Company.objects.values_list("id", "time_zone"))
    for attendant in Multiselection.objects.prefetch_related(
        "periods", "holidays", "menus__keys", "menus__announcement"
    ):
        snap.attendants[(attendant.company_id, attendant.number)] = _attendant(
            attendant, time_zones[attendant.company_id]
        )
    related = ("trunk", "extension", "hunt_group", "multiselection")
    for did in Did.objects.select_related(*related).filter(trunk__enabled=True):
        target = _did_target(did, snap.operator_numbers.get(did.trunk.company_id, ""))
        if target:
            snap.dids[did.number] = DidRoute(
                did.number, did.trunk.company_id, did.trunk_id, did.target_kind, target
            )
    return snap


def _did_target(did: Did, operator: str) -> str:
    """The internal number a company number leads to ("" when it leads nowhere now)."""
    if did.target_kind == DidTarget.OPERATOR:
        return operator
    target = {
        DidTarget.EXTENSION: did.extension,
        DidTarget.HUNT_GROUP: did.hunt_group,
        DidTarget.MULTISELECTION: did.multiselection,
    }.get(DidTarget(did.target_kind))
    return target.number if target is not None else ""


def _attendant(attendant: Multiselection, time_zone: str) -> AttendantInfo:
    return AttendantInfo(
        attendant.company_id,
        attendant.number,
        attendant.name,
        attendant.active,
        attendant.forward_to,
        time_zone,
        tuple(Period(p.weekday, p.start, p.end, p.menu_id) for p in attendant.periods.all()),
        tuple((h.date, h.menu_id) for h in attendant.holidays.all()),
        attendant.default_menu_id,
        tuple(_menu(menu) for menu in attendant.menus.all()),
    )


def _menu(menu: Menu) -> MenuInfo:
    announcement = menu.announcement
    return MenuInfo(
        menu.id,
        menu.name,
        str(announcement.path) if announcement is not None else "",
        menu.timeout,
        menu.retries,
        tuple(
            (key.key, MenuAction(key.action, key.number, key.target_menu_id))
            for key in menu.keys.all()
        ),
    )


def _current(snapshot: Snapshot) -> Snapshot:
    # This runs on asyncio's worker threads, which live as long as the engine: a connection
    # the database dropped (a PostgreSQL restart) must be replaced, not reused forever.
    close_old_connections()
    version = ConfigStamp.current()
    if version == snapshot.version:
        return snapshot
    return load_snapshot(version)


class OrmDirectory:
    """Directory over the Django models; safe to call from the engine's event loop."""

    def __init__(self) -> None:
        self._snapshot = Snapshot()
        self._lock = asyncio.Lock()
        self._database = Outage(
            log, "the database", "calls and registrations go on with the configuration read last"
        )

    async def refresh(self) -> Snapshot:
        """The configuration as it is now (one stamp read; a reload only if it moved).

        While the database is away (a PostgreSQL restart) the last snapshot read stands in,
        so that phones still register and call; only a directory never read raises.
        """
        async with self._lock:
            try:
                self._snapshot = await asyncio.to_thread(_current, self._snapshot)
            except DatabaseError as error:
                if self._snapshot.version < 0:
                    raise
                self._database.failed(error)
            else:
                self._database.succeeded()
            return self._snapshot

    async def device(self, username: str) -> DeviceInfo | None:
        return (await self.refresh()).devices.get(username)

    async def extension(self, company_id: int, number: str) -> ExtensionInfo | None:
        return (await self._latest()).extensions.get((company_id, number))

    async def did(self, number: str) -> DidRoute | None:
        return (await self.refresh()).dids.get(number)

    async def trunks(self) -> list[TrunkInfo]:
        return list((await self.refresh()).trunks)

    async def outbound_trunk(self, company_id: int) -> TrunkInfo | None:
        snap = await self._latest()
        return next((t for t in snap.trunks if t.company_id == company_id), None)

    async def operator_number(self, company_id: int) -> str:
        return (await self._latest()).operator_numbers.get(company_id, "")

    async def operator_extensions(self, company_id: int) -> frozenset[str]:
        return (await self._latest()).operators.get(company_id, frozenset())

    async def administrator_extensions(self, company_id: int) -> frozenset[str]:
        return (await self._latest()).administrators.get(company_id, frozenset())

    async def hunt_group(self, company_id: int, number: str) -> HuntGroupInfo | None:
        return (await self._latest()).hunt_groups.get((company_id, number))

    async def attendant(self, company_id: int, number: str) -> AttendantInfo | None:
        return (await self._latest()).attendants.get((company_id, number))

    async def _latest(self) -> Snapshot:
        # Every call set-up starts with device() or did(), which read the stamp; the extension
        # and trunk lookups that follow in the same set-up reuse that snapshot.
        if self._snapshot.version < 0:
            return await self.refresh()
        return self._snapshot
