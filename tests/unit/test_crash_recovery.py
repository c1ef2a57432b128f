"""Crash recovery (issue 9): the dialog journal keeps each answered leg's dialog until it ends,
the next start sends a BYE on each dialog a crash left in it, and the call records left open
are closed at the last heartbeat of the engine that crashed.

Alice (201) calls Bob (202: a desk phone and a mobile ring together) over the fakes
(tests/unit/fakes/); the journal's database side runs on the test database.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.utils import timezone

from pbx.dialog_store import OrmDialogJournal
from pbx.engine.dialog_journal import (
    CSEQ_MARGIN,
    JournalWriter,
    closing_bye,
    end_lost_dialogs,
    saved_dialog,
)
from pbx.engine.services import MemoryDialogJournal, SavedDialog
from pbx.models import NodeHeartbeat, OpenDialog
from pbx.sip.headers import Via
from stats.models import CallRecord, Disposition
from stats.recorder import OrmCallRecorder
from tests.unit.fakes.clock import FakeClock
from tests.unit.fakes.office import Pbx, office
from tests.unit.fakes.sip import FakeStack


class LoggedJournal(MemoryDialogJournal):
    """A memory journal that also remembers every write it was asked for."""

    def __init__(self, dialogs: list[SavedDialog] | None = None) -> None:
        super().__init__(dialogs or ())
        self.writes: list[tuple[str, int]] = []

    def save(self, dialog: SavedDialog) -> None:
        self.writes.append(("save", dialog.leg_id))
        super().save(dialog)

    def forget(self, leg_id: int) -> None:
        self.writes.append(("forget", leg_id))
        super().forget(leg_id)


def journalled(pbx: Pbx) -> LoggedJournal:
    """A journal the office's events keep, wired as Engine wires its own."""
    journal = LoggedJournal()

    def find_leg(leg_id: int):  # type: ignore[no-untyped-def]
        return pbx.calls.leg_by_id(leg_id) or pbx.dialogs.by_id(leg_id)

    pbx.events.subscribe(JournalWriter(journal, find_leg).on_event)
    return journal


def dialog(**changes: object) -> SavedDialog:
    """A dialog as the journal keeps it: we called 202's phone at 10.0.0.12."""
    values: dict[str, object] = dict(
        leg_id=7,
        call_id="a84b4c76e66710@pc33",
        local_tag="pbx-tag",
        remote_tag="phone-tag",
        local_uri='"Alice" <sip:201@192.0.2.1>;tag=pbx-tag',
        remote_uri="<sip:202@192.0.2.1>;tag=phone-tag",
        remote_target="sip:bob-desk@10.0.0.12:5060",
        route_set=(),
        local_cseq=2,
        secure=False,
        peer=("10.0.0.12", 5060),
        transport="udp",
    )
    values.update(changes)
    return SavedDialog(**values)  # type: ignore[arg-type]


VIA = Via.parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnew;rport")


# --- the journal follows the legs --------------------------------------------------------------


async def test_an_answered_call_keeps_both_legs_dialogs_and_no_ringing_one() -> None:
    pbx = office()
    journal = journalled(pbx)
    alice, desk, mobile = pbx.phone("alice"), pbx.phone("bob-desk"), pbx.phone("bob-mobile")
    call = await alice.dial("202")
    await mobile.ring()
    await pbx.advance(2)
    assert journal.dialogs == {}  # ringing: nothing to end yet

    await desk.answer()

    kept = {d.peer: d for d in journal.dialogs.values()}
    assert set(kept) == {alice.addr, desk.addr}  # not the mobile, which only rang
    theirs = alice.dialog(call.sip_call_id)
    caller = kept[alice.addr]
    assert (caller.call_id, caller.local_tag, caller.remote_tag) == (
        theirs.call_id,
        theirs.remote_tag,
        theirs.local_tag,
    )
    assert caller.remote_target == f"sip:alice@{alice.host}:5060"
    callee = kept[desk.addr]
    assert callee.call_id == desk.invite.call_id
    assert callee.remote_tag == desk.dialog(desk.invite.call_id).local_tag
    assert callee.local_cseq == desk.invite.cseq.number
    assert mobile.got[-1] == "CANCEL"


async def test_a_call_that_ends_leaves_the_journal_empty_and_unanswered_legs_cost_no_write() -> (
    None
):
    pbx = office()
    journal = journalled(pbx)
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    await alice.dial("202")
    await desk.answer()
    await pbx.advance(30)

    await desk.hang_up()

    assert journal.dialogs == {}
    assert sorted(op for op, _ in journal.writes) == ["forget", "forget", "save", "save"]


async def test_a_leg_is_saved_again_only_when_its_dialog_changes() -> None:
    pbx = office()
    journal = journalled(pbx)
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    call = await alice.dial("202")
    await desk.answer()
    saves = len(journal.writes)

    await alice.hold()  # the same dialog: the hold changes nothing the BYE needs
    assert len(journal.writes) == saves

    # Alice's phone moves (a new Contact in a re-INVITE): the BYE must go to the new target.
    alice.host = "10.0.9.9"
    await alice.resume()
    caller = next(d for d in journal.dialogs.values() if d.call_id == call.sip_call_id)
    assert caller.remote_target == "sip:alice@10.0.9.9:5060"
    assert len(journal.writes) == saves + 1


async def test_a_clean_hang_up_of_every_call_empties_the_journal() -> None:
    pbx = office()
    journal = journalled(pbx)
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    await alice.dial("202")
    await desk.answer()

    for call in list(pbx.calls.calls.values()):  # what Engine.stop does
        pbx.calls.hangup_call(call, "shutdown")
    await pbx.settle()

    assert journal.dialogs == {}


# --- the BYE after a crash -------------------------------------------------------------------


def test_the_bye_names_the_dialog_with_a_cseq_well_above_the_saved_one() -> None:
    bye, dest = closing_bye(dialog(local_cseq=2), VIA)

    assert bye.method == "BYE"
    assert bye.uri == "sip:bob-desk@10.0.0.12:5060"  # the remote target
    assert bye.call_id == "a84b4c76e66710@pc33"
    assert bye.from_addr.tag == "pbx-tag" and bye.to_addr.tag == "phone-tag"
    assert bye.from_addr.display == "Alice"
    assert (bye.cseq.number, bye.cseq.method) == (2 + CSEQ_MARGIN, "BYE")
    assert bye.headers.get_all("Route") == []
    assert bye.branch == VIA.branch
    assert dest == ("10.0.0.12", 5060)  # where the leg's requests went


def test_the_bye_follows_a_loose_route_set() -> None:
    routes = ("<sip:proxy1.example.com;lr>", "<sip:proxy2.example.com;lr>")

    bye, _dest = closing_bye(dialog(route_set=routes), VIA)

    assert bye.uri == "sip:bob-desk@10.0.0.12:5060"
    assert bye.headers.get_all("Route") == list(routes)


def test_the_bye_follows_a_strict_router_too() -> None:
    routes = ("<sip:strict.example.com>", "<sip:proxy2.example.com;lr>")

    bye, _dest = closing_bye(dialog(route_set=routes), VIA)

    assert bye.uri == "sip:strict.example.com"
    assert bye.headers.get_all("Route") == [
        "<sip:proxy2.example.com;lr>",
        "<sip:bob-desk@10.0.0.12:5060>",
    ]


async def test_on_start_each_lost_dialog_gets_a_bye_at_its_peer_and_the_journal_is_emptied() -> (
    None
):
    journal = LoggedJournal(
        [
            dialog(),
            dialog(
                leg_id=8,
                call_id="other",
                remote_target="sip:alice@10.0.0.11:5070;transport=tcp",
                peer=("10.0.0.11", 40321),  # the port of its connection, gone with the engine
                transport="tcp",
            ),
            dialog(leg_id=9, remote_target="not a uri"),  # unusable: skipped
        ]
    )
    stack = FakeStack(FakeClock())

    sent = await end_lost_dialogs(journal, stack)

    assert sent == 2
    assert [(s.message.method, s.dest) for s in stack.sent] == [
        ("BYE", ("10.0.0.12", 5060)),
        ("BYE", ("10.0.0.11", 5070)),  # over TCP: where the phone takes connections
    ]
    assert "SIP/2.0/TCP" in stack.sent[1].message.headers.get("Via")
    assert all(s.callback is None for s in stack.sent)  # responses are of no interest
    assert journal.dialogs == {}


async def test_the_phones_of_a_lost_call_accept_the_byes_of_the_next_start() -> None:
    """Each phone checks the BYE against its own side of the dialog (tags, CSeq order)."""
    pbx = office()
    journal = journalled(pbx)
    alice, desk = pbx.phone("alice"), pbx.phone("bob-desk")
    call = await alice.dial("202")
    await desk.answer()
    await alice.hold()  # the phones' CSeq spaces move on
    await alice.resume()
    # The engine dies here. The next one starts with the journal the first one left.
    restarted = FakeStack(FakeClock())

    await end_lost_dialogs(MemoryDialogJournal(list(journal.dialogs.values())), restarted)

    byes = {s.dest: s.message for s in restarted.sent}
    assert set(byes) == {alice.addr, desk.addr}
    assert alice.dialog(call.sip_call_id).receive_request(byes[alice.addr]) is None
    assert desk.dialog(desk.invite.call_id).receive_request(byes[desk.addr]) is None


def test_a_leg_without_a_dialog_is_not_kept() -> None:
    class NoDialog:
        dialog = None

    assert saved_dialog(NoDialog()) is None  # type: ignore[arg-type]


# --- the journal in the database ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_database_journal_keeps_each_nodes_dialogs_apart_and_in_order() -> None:
    node1, node2 = OrmDialogJournal("node1"), OrmDialogJournal("node2")
    node2.save(dialog(leg_id=1, call_id="node2's"))
    # One writer thread at a time: the test database (SQLite in memory) locks whole tables.
    await asyncio.to_thread(node2.flush)
    routes = ("<sip:proxy.example.com;lr>",)
    node1.save(dialog(leg_id=1))
    node1.save(dialog(leg_id=2, route_set=routes, remote_tag=None))
    node1.save(dialog(leg_id=1, local_cseq=5))  # the same leg again: replaced
    node1.forget(3)  # never kept: nothing to do
    node1.save(dialog(leg_id=4))
    node1.forget(4)

    lost = sorted(await node1.lost(), key=lambda d: d.leg_id)

    assert lost == [
        dialog(leg_id=1, local_cseq=5),
        dialog(leg_id=2, route_set=routes, remote_tag=None),
    ]
    await node1.clear()
    assert await node1.lost() == []
    assert [d.call_id for d in await node2.lost()] == ["node2's"]
    assert await asyncio.to_thread(OpenDialog.objects.count) == 1


# --- the records of a crashed run ------------------------------------------------------------


def _open_record(
    call_id: str, started: float, answered: float | None = None, node: str = "node1"
) -> CallRecord:
    now = timezone.now()
    return CallRecord.objects.create(
        call_id=call_id,
        node=node,
        direction="internal",
        caller="201",
        callee="202",
        started_at=now - timedelta(seconds=started),
        answered_at=now - timedelta(seconds=answered) if answered is not None else None,
    )


def _beat(seconds_ago: float, node: str = "node1") -> None:
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    NodeHeartbeat.objects.create(node=node, started_at=seen - timedelta(hours=1), seen_at=seen)


@pytest.mark.django_db(transaction=True)
def test_records_left_open_end_at_the_last_heartbeat_not_at_the_restart() -> None:
    talking = _open_record("talking", started=120, answered=110)
    ringing = _open_record("ringing", started=65)
    _open_record("elsewhere", started=100, node="node2")
    _beat(60)
    _beat(1, node="node2")

    closed = asyncio.run(OrmCallRecorder("node1").recover())

    assert closed == 2
    last_beat = NodeHeartbeat.objects.get(node="node1").seen_at
    for record in (talking, ringing):
        record.refresh_from_db()
        assert record.disposition == Disposition.INTERRUPTED
        assert record.end_reason == "engine crash"
        assert record.ended_at == last_beat
    assert talking.duration == pytest.approx(50, abs=0.01)
    assert CallRecord.objects.get(call_id="elsewhere").disposition == Disposition.IN_PROGRESS


@pytest.mark.django_db(transaction=True)
def test_a_record_begun_after_the_last_heartbeat_ends_where_it_was_last_seen() -> None:
    started_late = _open_record("late", started=3, answered=2)
    _beat(4)

    asyncio.run(OrmCallRecorder("node1").recover())

    started_late.refresh_from_db()
    assert started_late.ended_at == started_late.answered_at  # never a negative duration


@pytest.mark.django_db(transaction=True)
def test_without_any_heartbeat_records_end_at_the_restart() -> None:
    record = _open_record("first-run", started=30)
    before = timezone.now()

    asyncio.run(OrmCallRecorder("node1").recover())

    record.refresh_from_db()
    assert record.ended_at is not None and record.ended_at >= before
