"""The dial plan: what a dialled number reaches, after do-not-disturb, forwarding and busy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pbx.engine.directory import Directory, TrunkInfo

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


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The number cannot ring now: the voicemail hook decides what the caller gets."""

    reason: str
    status: int = 480


class Router:
    def __init__(
        self, directory: Directory, is_busy: Callable[[int, str], bool], trunk_timeout: float = 90
    ) -> None:
        self.directory = directory
        self.is_busy = is_busy
        self.trunk_timeout = trunk_timeout

    async def route(self, caller: Party, dialled: str, depth: int = 0) -> Route | Unavailable:
        """Resolve a number dialled by `caller` within its company."""
        if depth > MAX_FORWARDS:
            return Unavailable("forwarding loop", 482)
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
            return Unavailable("no such number", 404)
        if ext.forward_always:
            return await self.route(caller, ext.forward_always, depth + 1)
        if ext.do_not_disturb:
            return Unavailable("do not disturb", 480)
        if self.is_busy(caller.company_id, ext.number):
            if ext.forward_busy:
                return await self.route(caller, ext.forward_busy, depth + 1)
            return Unavailable("busy", 486)
        return Route(
            number=ext.number,
            members=(Member(ext.number, ext.devices),),
            ring_mode=ext.ring_mode,
            timeout=ext.no_answer_timeout,
            forward_busy=ext.forward_busy,
            forward_no_answer=ext.forward_no_answer,
            extension_key=(ext.company_id, ext.number),
        )

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
