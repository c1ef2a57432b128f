"""The dial plan: what a dialled number reaches, after do-not-disturb, forwarding and busy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pbx.engine.directory import AttendantInfo, Directory, HuntGroupInfo, TrunkInfo
from pbx.engine.hunt import Algorithm, hunt_order
from pbx.engine.services import HuntMemory, MemoryHuntMemory

MAX_FORWARDS = 5


@dataclass(frozen=True, slots=True)
class Party:
    """Who is calling: a phone of an extension (device set) or an outside number (trunk)."""

    company_id: int
    number: str
    name: str = ""
    device: str = ""


@dataclass(frozen=True, slots=True)
class Member:
    """Someone a route rings: an extension and its devices (SIP usernames), in ring order."""

    number: str
    devices: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Route:
    """Ring these members (or this trunk number) for `timeout` seconds."""

    number: str
    members: tuple[Member, ...] = ()
    ring_mode: str = "all"
    timeout: float = 20
    forward_busy: str = ""
    forward_no_answer: str = ""
    trunk: TrunkInfo | None = None
    extension_key: tuple[int, str] | None = None
    operator: bool = False  # the company's operator number: the call waits in the queue
    pickup: bool = False  # ...unless an operator's phone dials it: it takes the oldest call
    auto_answer: bool = False  # ask the phone to answer by itself (the operator's, by 3PCC)
    ring_outside: str = ""  # an outside number that rings too (the extension's ring mode)...
    ring_outside_delay: float = 10  # ...once the devices rang this long
    hunt: HuntGroupInfo | None = None  # a hunt group: `members` in the order to try...
    turns: tuple[float, ...] = ()  # ...each for its ring time
    attendant: AttendantInfo | None = None  # a Multiselection answers the call itself
    record_announcement: bool = False  # an administrator's phone records an announcement
    mailbox: str = ""  # the voicemail feature code: listen to this extension's messages
    directed_pickup: bool = False  # answer the call ringing at extension `number` (pickup.py)
    replaces: str = ""  # ...or the one whose early dialog an INVITE's Replaces names


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The number cannot ring now: the voicemail hook decides what the caller gets."""

    reason: str
    status: int = 480
    voicemail: str = ""  # the extension whose voicemail should take the call, if named


class Router:
    def __init__(
        self,
        directory: Directory,
        is_busy: Callable[[int, str], bool],
        trunk_timeout: float = 90,
        hunt_memory: HuntMemory | None = None,
        record_code: str = "",
        voicemail_code: str = "",
        pickup_code: str = "",
    ) -> None:
        self.directory = directory
        self.is_busy = is_busy
        self.trunk_timeout = trunk_timeout
        self.hunt_memory: HuntMemory = hunt_memory or MemoryHuntMemory()
        self.record_code = record_code  # the feature code that records an announcement ("": off)
        self.voicemail_code = voicemail_code  # ...that listens to voicemail, + an extension
        self.pickup_code = pickup_code  # ...that answers a ringing extension, + its number

    async def route(self, caller: Party, dialled: str, depth: int = 0) -> Route | Unavailable:
        """Resolve a number dialled by `caller` within its company."""
        if depth > MAX_FORWARDS:
            return Unavailable("forwarding loop", 482)
        if self.record_code and dialled == self.record_code and depth == 0:
            return await self._record_announcement(caller, dialled)
        if self.voicemail_code and dialled.startswith(self.voicemail_code) and depth == 0:
            return await self._voicemail(caller, dialled, dialled[len(self.voicemail_code) :])
        if self.pickup_code and dialled.startswith(self.pickup_code) and depth == 0:
            return self._pickup(caller, dialled[len(self.pickup_code) :])
        if not dialled or not dialled.isdigit():
            return Unavailable("not a number", 404)
        trunk = await self.directory.outbound_trunk(caller.company_id)
        if (
            trunk is not None
            and trunk.outbound_prefix
            and dialled.startswith(trunk.outbound_prefix)
        ):
            outside = dialled[len(trunk.outbound_prefix) :]
            if len(outside) >= 2:
                return Route(number=outside, trunk=trunk, timeout=self.trunk_timeout)
        if dialled == await self.directory.operator_number(caller.company_id):
            operators = await self.directory.operator_extensions(caller.company_id)
            pickup = bool(caller.device) and caller.number in operators
            return Route(number=dialled, operator=True, pickup=pickup)
        ext = await self.directory.extension(caller.company_id, dialled)
        if ext is None:
            group = await self.directory.hunt_group(caller.company_id, dialled)
            if group is not None:
                return await self._hunt(caller, group, depth)
            attendant = await self.directory.attendant(caller.company_id, dialled)
            if attendant is not None:
                if not attendant.active:
                    if not attendant.forward_to:
                        return Unavailable("Multiselection not active", 480)
                    return await self.route(caller, attendant.forward_to, depth + 1)
                return Route(number=dialled, attendant=attendant)
            return Unavailable("no such number", 404)
        if not ext.enabled:
            return Unavailable("extension disabled", 404)
        if ext.forward_always:
            return await self.route(caller, ext.forward_always, depth + 1)
        if ext.do_not_disturb:
            return Unavailable("do not disturb", 480, voicemail=ext.number)
        if self.is_busy(caller.company_id, ext.number):
            if ext.forward_busy:
                return await self.route(caller, ext.forward_busy, depth + 1)
            return Unavailable("busy", 486, voicemail=ext.number)
        return Route(
            number=ext.number,
            members=(Member(ext.number, ext.devices),),
            ring_mode=ext.ring_mode,
            timeout=ext.no_answer_timeout,
            forward_busy=ext.forward_busy,
            forward_no_answer=ext.forward_no_answer,
            extension_key=(ext.company_id, ext.number),
            ring_outside=ext.ring_outside,
            ring_outside_delay=ext.ring_outside_delay,
        )

    async def _record_announcement(self, caller: Party, dialled: str) -> Route | Unavailable:
        """The feature code that records an announcement: for administrators' phones only."""
        if not caller.device:
            return Unavailable("announcements are recorded from a phone", 403)
        if caller.number not in await self.directory.administrator_extensions(caller.company_id):
            return Unavailable("only administrators record announcements", 403)
        return Route(number=dialled, record_announcement=True)

    async def _voicemail(self, caller: Party, dialled: str, number: str) -> Route | Unavailable:
        """The voicemail feature code, alone (the caller's own mailbox) or followed by an
        extension's number: from a phone only; the PIN is asked all the same."""
        if not caller.device:
            return Unavailable("voicemail is listened to from a phone", 403)
        number = number or caller.number
        if (
            not number.isdigit()
            or await self.directory.extension(caller.company_id, number) is None
        ):
            return Unavailable("no such mailbox", 404)
        return Route(number=dialled, mailbox=number)

    def _pickup(self, caller: Party, number: str) -> Route | Unavailable:
        """The directed pickup code followed by a ringing extension's number, from a phone."""
        if not caller.device:
            return Unavailable("calls are picked up from a phone", 403)
        if not number.isdigit():
            return Unavailable("not a number", 404)
        return Route(number=number, directed_pickup=True, extension_key=(caller.company_id, number))

    async def _hunt(self, caller: Party, group: HuntGroupInfo, depth: int) -> Route | Unavailable:
        """The members to try, free ones only (not busy, not on do-not-disturb, enabled), in
        the order of the group's algorithm; none free: the group's fallback at once."""
        company = caller.company_id
        numbers = [number for number, _ in group.members]
        extensions = {n: await self.directory.extension(company, n) for n in numbers}

        def free(number: str) -> bool:
            ext = extensions[number]
            return (
                ext is not None
                and ext.enabled
                and not ext.do_not_disturb
                and bool(ext.devices)
                and not self.is_busy(company, number)
            )

        algorithm = Algorithm(group.algorithm)
        last = idle = None
        if algorithm in (Algorithm.CIRCULAR, Algorithm.UNIFORM_SEQUENTIAL):
            last = await self.hunt_memory.last_member(company, group.number)
        elif algorithm is Algorithm.LONGEST_IDLE:
            idle = await self.hunt_memory.idle_since(company, numbers)
        order = hunt_order(algorithm, numbers, last=last or "", idle_since=idle, free=free)
        if not order:
            return await self.hunt_fallback(caller, group, depth, "no free member")
        ring_time = dict(group.members)
        members = []
        for number in order:
            ext = extensions[number]
            assert ext is not None  # free() said so
            members.append(Member(number, ext.devices))
        turns = tuple(float(ring_time[n]) for n in order)
        timeout = max(turns) if algorithm is Algorithm.RING_ALL else sum(turns)
        return Route(
            number=group.number,
            members=tuple(members),
            ring_mode=algorithm.value,
            timeout=timeout,
            extension_key=(company, group.number),
            hunt=group,
            turns=turns,
        )

    async def hunt_fallback(
        self, caller: Party, group: HuntGroupInfo, depth: int, reason: str
    ) -> Route | Unavailable:
        """Where a hunt group's call goes when nobody answers (or nobody is free)."""
        if depth >= MAX_FORWARDS:
            return Unavailable("forwarding loop", 482)
        if group.fallback == "operator":
            operator = await self.directory.operator_number(caller.company_id)
            if operator:
                return await self.route(caller, operator, depth + 1)
        elif group.fallback == "number" and group.fallback_number:
            return await self.route(caller, group.fallback_number, depth + 1)
        elif group.fallback == "voicemail" and group.fallback_number:
            return Unavailable(reason, 480, voicemail=group.fallback_number)
        return Unavailable(reason, 480)

    async def forward(self, caller: Party, target: str) -> Route | Unavailable:
        """Where a forwarding (busy / no answer) sends the call."""
        return await self.route(caller, target, depth=1)

    async def did(self, number: str, caller: Party) -> tuple[int, Route | Unavailable] | None:
        """Route a call arriving from a trunk on a company number; None if it is not ours."""
        did = await self.directory.did(number)
        if did is None:
            return None
        inside = Party(did.company_id, caller.number, caller.name)
        return did.company_id, await self.route(inside, did.target)
