"""What rings for a route: the targets (a trunk, the members' registered phones, an
extension's outside number), the strategy that rings them, and who the callees see calling.

The call layer (calls.py) asks for the plan once the call has a media port, then runs it with a
`Ringer` (ringer.py); when nothing can ring, the plan says why instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pbx.engine.call import Call, CallState, Status
from pbx.engine.hunt import Algorithm, RingAll, RingStrategy, strategy_for, strategy_for_hunt
from pbx.engine.ringer import Target, member_targets, trunk_target
from pbx.engine.routing import MAX_FORWARDS, Party, Route, Unavailable
from pbx.engine.services import Contacts, Routing, SipSender, TrunkAddresses

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RingPlan:
    targets: list[Target]
    strategy: RingStrategy
    presented: Party  # who the callees see calling (a trunk's caller id outside)


@dataclass(frozen=True, slots=True)
class CannotRing:
    """Nothing can ring: the call is unavailable for `reason` with `status`, or, for a hunt
    group none of whose members has a phone registered (`group_fallback`), its fallback decides."""

    reason: str = ""
    status: int = Status.UNAVAILABLE
    group_fallback: bool = False


async def plan_ringing(
    call: Call,
    route: Route,
    *,
    contacts: Contacts,
    stack: SipSender,
    trunks: TrunkAddresses,
    router: Routing,
) -> RingPlan | CannotRing | None:
    """The plan for ringing `route` for `call`; None when the call stopped being routed while
    an address was looked up (it ended, or was answered otherwise)."""
    presented = call.caller
    if route.trunk is not None:
        trunk = route.trunk
        dest = await trunks.address(trunk)
        if call.state is not CallState.ROUTING:
            return None
        if dest is None:
            return CannotRing("trunk unreachable", Status.SERVICE_UNAVAILABLE)
        if trunk.caller_id and call.direction != "inbound":
            presented = Party(presented.company_id, trunk.caller_id, presented.name)
        return RingPlan([trunk_target(trunk, route.number, dest)], RingAll(1), presented)
    targets = member_targets(route.members, contacts, stack)
    if route.hunt is not None:
        if not targets:
            return CannotRing(group_fallback=True)
        return RingPlan(targets, _hunt_strategy(route, targets), presented)
    outside = await _outside_target(call, route, trunks, router)
    if call.state is not CallState.ROUTING:
        return None
    if not targets and outside is None:
        return CannotRing("unreachable")
    strategy = strategy_for(
        route.ring_mode,
        len(targets),
        route.timeout,
        extra=outside is not None,
        extra_delay=route.ring_outside_delay,
    )
    return RingPlan([*targets, outside] if outside is not None else targets, strategy, presented)


async def _outside_target(
    call: Call, route: Route, trunks: TrunkAddresses, router: Routing
) -> Target | None:
    """The outside number an extension's ring mode adds to its devices, if it has one and the
    trunk can be reached."""
    if not route.ring_outside:
        return None
    outside = await router.route(call.caller, route.ring_outside, MAX_FORWARDS)
    if isinstance(outside, Unavailable) or outside.trunk is None:
        log.warning("ring mode of %s: %s is not an outside number", route.number, outside)
        return None
    dest = await trunks.address(outside.trunk)
    if dest is None:
        return None
    return trunk_target(outside.trunk, outside.number, dest)


def _hunt_strategy(route: Route, targets: list[Target]) -> RingStrategy:
    """A hunt group's strategy: each member's registered phones ring together, in turns."""
    groups = [
        [i for i, target in enumerate(targets) if target.member == member.number]
        for member in route.members
    ]
    return strategy_for_hunt(Algorithm(route.ring_mode), groups, route.turns)


def auto_answer_headers(advertise: str) -> tuple[tuple[str, str], ...]:
    """Ask a phone to answer by itself (the operator's, when the console answers or dials for
    them): Call-Info answer-after, which most desk phones and softphones read, and Alert-Info
    auto-answer for the others. A phone that reads neither simply rings."""
    return (
        ("Call-Info", f"<sip:{advertise}>;answer-after=0"),
        ("Alert-Info", f"<sip:{advertise}>;info=alert-autoanswer;delay=0"),
    )
