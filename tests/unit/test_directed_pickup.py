"""Directed pickup: Carol (203) answers a call ringing at Bob (202, a desk phone and a mobile)
by dialling *8202, or by an INVITE with Replaces naming the early dialog her busy lamp showed.
Bob's phones stop ringing; Alice (201), the caller, talks to Carol.
"""

from __future__ import annotations

from typing import Any

from pbx.engine.call import CallState, Disposition
from pbx.engine.directory import ExtensionInfo
from pbx.engine.events import CallChanged, ExtensionState
from pbx.engine.legs import LegState
from pbx.engine.pickup import DirectedPickup, Replaces
from pbx.engine.routing import Party, Route, Router, Unavailable
from pbx.engine.subscriptions import phone_dialog
from pbx.sip.event_bodies import DialogEntry
from pbx.sip.headers import Headers
from pbx.sip.ids import new_call_id, new_tag
from pbx.sip.message import Request
from tests.unit.fakes.directory import COMPANY
from tests.unit.fakes.media import bridged
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.phones import Dialled, Phone
from tests.unit.fakes.sip import ADVERTISE

PICKUP_CODE = "*8"  # EngineConfig.pickup_code's default


def office_with_pickup(*overrides: ExtensionInfo) -> Pbx:
    """The office, with directed pickup wired as runtime.py wires it."""
    pbx = office(*overrides)
    router = pbx.calls.router
    assert isinstance(router, Router)
    router.pickup_code = PICKUP_CODE
    DirectedPickup(pbx.calls)
    return pbx


async def ringing_at_bob(pbx: Pbx) -> tuple[Dialled, Phone, Phone]:
    """Alice calls Bob; both of his phones ring."""
    alice, desk, mobile = pbx.phone("alice"), pbx.phone("bob-desk"), pbx.phone("bob-mobile")
    call = await alice.dial("202")
    await desk.ring()
    await mobile.ring()
    return call, desk, mobile


async def dial_as(
    pbx: Pbx, phone: Phone, number: str, *, company: int = COMPANY, route: Route | None = None
) -> Dialled:
    """What Phone.dial does, for a phone of any company, with the route the engine would give
    (an INVITE with Replaces gets its pickup route before routing: runtime.py)."""
    headers = Headers(
        [
            ("Via", str(phone.via())),
            ("From", f"<sip:{phone.number}@{ADVERTISE}>;tag={new_tag()}"),
            ("To", f"<sip:{number}@{ADVERTISE}>"),
            ("Call-ID", new_call_id(phone.host)),
            ("CSeq", "1 INVITE"),
            ("Contact", phone.contact),
            ("Content-Type", "application/sdp"),
        ]
    )
    invite = Request("INVITE", f"sip:{number}@{ADVERTISE}", headers, phone.sdp())
    key: Any = ("INVITE", invite.branch)
    caller = Party(company, phone.number, phone.name, phone.device)
    mark = len(pbx.log)
    pbx.tasks.spawn(
        pbx.calls.incoming(
            invite, phone.addr, "udp", key, caller, number, "internal", did_route=route
        )
    )
    await pbx.settle()
    made = [e.call_id for e in pbx.log[mark:] if isinstance(e, CallChanged) and e.previous is None]
    phone._dialled.append(invite)
    return Dialled(phone, invite, key, made[0] if made else None)


async def test_dialling_the_code_and_the_extension_answers_its_ringing_call() -> None:
    pbx = office_with_pickup()
    call, desk, mobile = await ringing_at_bob(pbx)
    carol = pbx.phone("carol")

    picking = await carol.dial("*8202")

    assert picking.statuses[-1] == 200
    assert call.statuses[-1] == 200  # Alice's call is answered...
    assert bridged(pbx.media(carol), pbx.media(call.phone))  # ...by Carol
    assert desk.got == ["INVITE", "CANCEL"]  # Bob's phones stop ringing
    assert mobile.got == ["INVITE", "CANCEL"]
    picked = pbx.call(call.call_id)
    assert picked.state is CallState.ANSWERED and picked.answered_by == "carol"
    assert pbx.record(call.call_id)["answered_by"] == "carol"
    ended = pbx.ended(picking.call_id)  # Carol's own call only led her there
    assert (ended.disposition, ended.reason) == (Disposition.ANSWERED, "picked up a ringing call")


async def test_a_picked_up_call_goes_on_as_any_answered_call() -> None:
    pbx = office_with_pickup()
    call, _, _ = await ringing_at_bob(pbx)
    carol = pbx.phone("carol")
    picking = await carol.dial("*8202")
    await picking.ack()

    await carol.hang_up()

    assert call.phone.got[-1] == "BYE"
    assert pbx.ended(call.call_id).disposition is Disposition.ANSWERED
    assert pbx.extension_states("202")[-1] is ExtensionState.IDLE
    assert pbx.extension_states("203") == [
        ExtensionState.IDLE,
        ExtensionState.DIALLING,
        ExtensionState.TALKING,
        ExtensionState.IDLE,
    ]
    assert not pbx.calls.calls and not pbx.ports.open


async def test_the_oldest_call_ringing_at_the_extension_is_picked_up() -> None:
    pbx = office_with_pickup()
    first, _, _ = await ringing_at_bob(pbx)
    second = await pbx.phone("dave").dial("202")

    await pbx.phone("carol").dial("*8202")

    assert pbx.call(first.call_id).state is CallState.ANSWERED
    assert pbx.call(second.call_id).state is CallState.RINGING


async def test_nothing_ringing_there_is_480_and_no_voicemail() -> None:
    pbx = office_with_pickup()
    await ringing_at_bob(pbx)

    nothing = await pbx.phone("carol").dial("*8204")

    assert nothing.statuses[-1] == 480
    assert pbx.ended(nothing.call_id).reason == "nothing rings at 204"


async def test_a_phone_does_not_pick_up_its_own_call() -> None:
    pbx = office_with_pickup()
    call, _, _ = await ringing_at_bob(pbx)

    own = await call.phone.dial("*8202")

    assert own.statuses[-1] == 480
    assert pbx.call(call.call_id).state is CallState.RINGING


async def test_a_phone_of_another_company_cannot_pick_up() -> None:
    zed = ExtensionInfo(2, "209", "Zed", ("zed",))
    pbx = office_with_pickup(zed)
    call, _, _ = await ringing_at_bob(pbx)
    phone = Phone(pbx, "zed", "209", "Zed", "10.0.9.9")
    pbx.registrar.add("zed", "sip:zed@10.0.9.9:5060", phone.addr)

    refused = await dial_as(pbx, phone, "*8202", company=2)

    assert refused.statuses[-1] == 480
    assert pbx.call(call.call_id).state is CallState.RINGING


async def test_an_invite_with_replaces_of_the_early_dialog_picks_the_call_up() -> None:
    pbx = office_with_pickup()
    call, desk, mobile = await ringing_at_bob(pbx)
    invite = desk.invite
    # Its busy lamp showed the early dialog: our INVITE's Call-ID and From tag, and the tag
    # of the desk phone's 180 (RFC 3891: to-tag is ours, the recipient of the new INVITE).
    [phone_tag] = {e.local_tag for e in desk_dialogs(pbx) if e.call_id == invite.call_id}
    replaces = f"{invite.call_id};to-tag={invite.from_addr.tag};from-tag={phone_tag};early-only"

    carol = pbx.phone("carol")
    picking = await dial_as(
        pbx, carol, "202", route=Route("202", directed_pickup=True, replaces=replaces)
    )

    assert picking.statuses[-1] == 200 and call.statuses[-1] == 200
    assert bridged(pbx.media(carol), pbx.media(call.phone))
    assert mobile.got == ["INVITE", "CANCEL"]


def desk_dialogs(pbx: Pbx) -> list[DialogEntry]:
    """What Bob's busy lamp shows now (subscriptions.py, as a NOTIFY would say it)."""
    return [
        phone_dialog(leg, ADVERTISE, "202", "Bob", "")
        for call in pbx.calls.calls.values()
        if call.ringer is not None
        for leg in call.ringer.forks.values()
        if leg.device == "bob-desk"
    ]


async def test_a_replaces_that_names_no_ringing_dialog_is_481() -> None:
    pbx = office_with_pickup()
    call, _, _ = await ringing_at_bob(pbx)

    route = Route("202", directed_pickup=True, replaces="unknown@10.0.0.1;to-tag=a;from-tag=b")
    refused = await dial_as(pbx, pbx.phone("carol"), "202", route=route)

    assert refused.statuses[-1] == 481
    assert pbx.call(call.call_id).state is CallState.RINGING


async def test_an_answered_call_cannot_be_picked_up() -> None:
    pbx = office_with_pickup()
    call, desk, _ = await ringing_at_bob(pbx)
    await desk.answer()

    late = await pbx.phone("carol").dial("*8202")

    assert late.statuses[-1] == 480
    assert pbx.call(call.call_id).answered_by == "bob-desk"


async def test_a_call_whose_phone_has_not_rung_yet_is_picked_up_too() -> None:
    pbx = office_with_pickup()
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    call = await alice.dial("202")  # no 180 yet: the desk phone is only being called

    picking = await pbx.phone("carol").dial("*8202")

    assert picking.statuses[-1] == 200
    assert call.statuses[-1] == 200
    assert desk.got == ["INVITE"]  # RFC 3261 9.1: its CANCEL waits for a provisional...
    await desk.ring()
    assert desk.got == ["INVITE", "CANCEL"]  # ...and goes then
    states = pbx.leg_states("bob-desk")[0]
    assert states[-1] is LegState.ENDING


# --- the dial plan and the header -------------------------------------------------------------


async def test_the_code_routes_to_a_pickup_of_the_extension_from_phones_only() -> None:
    pbx = office_with_pickup()
    router = pbx.calls.router

    from_phone = await router.route(Party(COMPANY, "203", "Carol", "carol"), "*8202")
    from_outside = await router.route(Party(COMPANY, "0612345678"), "*8202")
    not_a_number = await router.route(Party(COMPANY, "203", "Carol", "carol"), "*8abc")

    assert from_phone == Route("202", directed_pickup=True, extension_key=(COMPANY, "202"))
    assert isinstance(from_outside, Unavailable) and from_outside.status == 403
    assert isinstance(not_a_number, Unavailable) and not_a_number.status == 404


def test_a_replaces_header_is_read_with_its_tags_and_early_only() -> None:
    value = "a84b4c76e66710@pc33.example.com;to-tag=8609;from-tag=1928301774;early-only"

    assert Replaces.parse(value) == Replaces(
        "a84b4c76e66710@pc33.example.com", "8609", "1928301774", early_only=True
    )
    assert Replaces.parse("abc").early_only is False
